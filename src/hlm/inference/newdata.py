"""Design matrices for new data: the fitted model's coding applied to other rows.

The fixed part is built with the formulaic model spec fixed at fitting time (same dummy
columns, same reference levels, same stateful transforms); a categorical value not seen in
fitting is an error naming the column (formulaic alone would code it as the reference
level with a warning).  Groups are matched to the fitted levels by their labels, with
integer-valued numbers compared as integers (``7``, ``7.0`` and ``"7"`` are the same
group); unmatched groups get code -1.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hlm.errors import DataError


@dataclass(frozen=True)
class NewRows:
    """Model matrices of new rows (complete rows only; ``ok`` marks them)."""

    ok: np.ndarray
    X: np.ndarray
    Z: list
    codes: list
    offset: np.ndarray | None


def fixed_columns(model_or_spec) -> list[str]:
    """Data columns used by the fixed part (response excluded)."""
    from hlm.design.fixed import required_variables

    return list(required_variables(model_or_spec, "the fixed part"))


def build_fixed(spec, keep, df: pd.DataFrame) -> np.ndarray:
    """``X`` of ``df`` with the fitted coding (formulaic spec ``spec``), columns ``keep``."""
    try:
        from formulaic.errors import DataMismatchWarning
    except ImportError:  # pragma: no cover - older formulaic
        DataMismatchWarning = Warning  # noqa: N806
    # formulaic codes an unseen level as the reference level and only warns; recording
    # the warning (rather than turning it into an error, which formulaic may swallow)
    # lets us refuse instead
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataMismatchWarning)
        mm = spec.get_model_matrix(df, na_action="ignore")
    mismatch = [w for w in caught if issubclass(w.category, DataMismatchWarning)]
    if mismatch:
        raise DataError(
            f"the new data have category levels not seen when fitting: {mismatch[0].message}; "
            "predictions for unseen levels of fixed-effect factors are not defined"
        )
    for w in caught:  # pass other warnings on
        if not issubclass(w.category, DataMismatchWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    X = np.asarray(mm, dtype=float)
    return X[:, np.asarray(keep)]


def canonical_labels(col: pd.Series) -> np.ndarray:
    """Group labels as text, integer-valued numbers written as integers."""
    values = col.to_numpy()
    if isinstance(col.dtype, pd.CategoricalDtype):
        values = col.astype(object).to_numpy()
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = _canon(v)
    return out


def _canon_label(label: str) -> str:
    """A fitted label as :func:`_canon` writes it (float labels such as ``7.0`` -> ``7``)."""
    if label.endswith(".0") and label[:-2].lstrip("-").isdigit():
        return label[:-2]
    return label


def _canon(v) -> str:
    if isinstance(v, bool | np.bool_):
        return str(v)
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    return str(v)


def level_keys(model, block) -> dict:
    """``{(label, ...): code}`` of a fitted term's groups.

    A term with one grouping factor needs only its level labels (so a fit loaded without
    its rows still predicts); an interaction's labels are split by the fitted rows.
    """
    if len(block.term.factors) == 1:
        return {(_canon_label(str(v)),): i for i, v in enumerate(block.levels)}
    df = model.frame.data
    parts = [canonical_labels(df[f]) for f in block.term.factors]
    keys = pd.DataFrame({str(i): p for i, p in enumerate(parts)})
    keys["code"] = block.codes
    first = keys.drop_duplicates("code")
    cols = [str(i) for i in range(len(parts))]
    return {tuple(r[:-1]): int(r[-1]) for r in first[cols + ["code"]].itertuples(index=False)}


def group_codes(model, block, df: pd.DataFrame, cache: dict) -> np.ndarray:
    """Codes of ``df``'s groups in a fitted term (-1 for groups not seen in fitting)."""
    key = id(block)
    if key not in cache:
        cache[key] = level_keys(model, block)
    table = cache[key]
    parts = [canonical_labels(df[f]) for f in block.term.factors]
    return np.array([table.get(k, -1) for k in zip(*parts, strict=True)], dtype=np.int64)
