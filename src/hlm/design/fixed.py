"""The fixed-effects design: formulaic builds X (and y) from the data, chunk by chunk.

formulaic's model spec, fixed on the first chunk, is reused for later chunks so that every
chunk is coded the same way (same dummy columns, same reference level).  Where every factor
is a column looked up by name, the columns are evaluated with NumPy from that spec
(:mod:`hlm.design.fast_design`, checked once against formulaic's own matrix), and the spec is
remembered for the same formula on data of the same schema (column types and levels), so a
refit of a small model does not pay formulaic's fixed cost again.
"""

from __future__ import annotations

import functools
from collections import OrderedDict

import numpy as np
import pandas as pd
from formulaic import Formula
from formulaic import ModelSpec as FormulaicSpec

from hlm.columns import as_pandas, column_array
from hlm.design.fast_design import FastColumns
from hlm.errors import DataError, FormulaError

INTERCEPT = "(Intercept)"
#: formulaic specs (with their NumPy evaluators) by formula and data schema
_SPECS: OrderedDict = OrderedDict()
_SPECS_MAX = 64


def _rename(name: str) -> str:
    return INTERCEPT if name == "Intercept" else name


@functools.lru_cache(maxsize=256)
def required_variables(rhs: str, what: str) -> tuple[str, ...]:
    """Column names a right-hand side (or ``lhs ~ rhs``) formula uses."""
    try:
        return tuple(sorted(str(v) for v in Formula(rhs).required_variables))
    except Exception as exc:  # formulaic raises several parser error types
        raise FormulaError(f"cannot parse {what} {rhs!r}: {exc}") from exc


class FixedDesign:
    """Builds ``[X y]`` for chunks of rows with a model spec fixed on the first chunk.

    Use :meth:`from_first_chunk`, which also returns the first chunk's ``[X y]`` so that
    small data are materialised once.
    """

    def __init__(
        self, response: str, lhs_spec: FormulaicSpec, rhs_spec: FormulaicSpec, fast=None
    ):
        self.response = response
        self._lhs_spec = lhs_spec
        self._rhs_spec = rhs_spec
        self.names = [_rename(c) for c in rhs_spec.column_names]
        self.has_intercept = INTERCEPT in self.names
        #: NumPy evaluators of (lhs, rhs), or None to use formulaic
        self.fast = fast

    @classmethod
    def from_first_chunk(cls, response: str, rhs: str, first):
        """Fix the coding on ``first`` (a DataFrame or :class:`hlm.columns.Columns`).

        Returns ``(design, Xy_first)``.
        """
        formula = f"{response} ~ {rhs}"
        _check_numeric_response(response, first)
        key = _schema_key(formula, first)
        if key is not None and key in _SPECS:
            _SPECS.move_to_end(key)
            design = cls(response, *_SPECS[key])
            return design, design.Xy(first)
        try:
            mm = Formula(formula).get_model_matrix(as_pandas(first), na_action="ignore")
        except Exception as exc:
            raise FormulaError(f"cannot build the fixed effects of {formula!r}: {exc}") from exc
        if not hasattr(mm, "lhs") or mm.lhs.shape[1] != 1:
            if not hasattr(mm, "lhs"):  # formulaic found no response, e.g. "() ~ x"
                raise FormulaError(f"the response {response!r} names no column; write 'y ~ ...'")
            raise FormulaError(
                f"the response {response!r} must be one numeric column, got "
                f"{mm.lhs.shape[1]} columns {list(mm.lhs.columns)}"
            )
        design = cls(response, mm.lhs.model_spec, mm.rhs.model_spec)
        Xy = design._assemble(mm.rhs, mm.lhs, len(first))
        design.fast = _checked_fast(design, first, Xy)
        if key is not None and design.fast is not None:
            _SPECS[key] = (design._lhs_spec, design._rhs_spec, design.fast)
            if len(_SPECS) > _SPECS_MAX:
                _SPECS.popitem(last=False)
        return design, Xy

    @property
    def p(self) -> int:
        """Number of fixed-effect columns before any rank-deficiency drop."""
        return len(self.names)

    def Xy(self, chunk) -> np.ndarray:
        """``[X y]`` for a chunk of rows, float64, shape (n_chunk, p + 1).

        ``chunk`` is a DataFrame or :class:`hlm.columns.Columns`.
        """
        if self.fast is not None:
            fl, fr = self.fast
            out = np.empty((len(chunk), self.p + 1))
            fr.evaluate(chunk, out=out[:, : self.p])
            fl.evaluate(chunk, out=out[:, self.p :])
            return _check_finite_columns(out, self.names + [self.response])
        chunk = as_pandas(chunk)
        X = self._rhs_spec.get_model_matrix(chunk, na_action="ignore")
        y = self._lhs_spec.get_model_matrix(chunk, na_action="ignore")
        return self._assemble(X, y, len(chunk))

    def _assemble(self, X, y, n) -> np.ndarray:
        out = np.empty((n, self.p + 1))
        out[:, : self.p] = _as_float(X, self.names)
        out[:, self.p] = _as_float(y, [self.response])[:, 0]
        return _check_finite_columns(out, self.names + [self.response])


def _check_finite_columns(out: np.ndarray, names: list[str]) -> np.ndarray:
    """``out``, after refusing columns with missing or infinite values (named)."""
    if not np.isfinite(out).all():
        bad = ~np.isfinite(out).all(axis=0)
        cols = [n for n, b in zip(names, bad, strict=True) if b]
        raise DataError(
            f"the model terms {cols} produce missing or infinite values "
            "(e.g. log of zero or a negative number); fix the data or the transform"
        )
    return out


def _as_float(mat, names) -> np.ndarray:
    try:
        return np.asarray(mat, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"model column(s) {names} are not numeric: {exc}") from exc


def _check_numeric_response(response: str, first) -> None:
    """A response that is a column of text or categories is refused, naming it.

    formulaic would code it as dummy columns (a one-level column silently becomes a constant
    response of ones).
    """
    if response not in first.columns:
        return  # an expression such as np.log(y); formulaic evaluates it
    values = column_array(first, response)
    dtype = values.dtype
    if dtype.kind in "fiu" and isinstance(dtype, np.dtype):
        return  # a NumPy number column, the common case, without pandas' dtype checks
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return
    values = ", ".join(repr(str(v)) for v in pd.unique(values)[:3])
    raise DataError(
        f"the response {response!r} is not numeric (dtype {dtype}, values such as {values}); "
        "a linear mixed model needs a numeric response: convert the column to numbers"
    )


def _schema_key(formula: str, df):
    """What formulaic's coding depends on: the formula, column types and category levels.

    None (no caching) when a column holds raw text, whose levels formulaic finds itself.
    """
    parts = []
    have = df.columns
    for c in required_variables(formula, "the fixed part"):
        if c not in have:
            return None
        dtype = column_array(df, c).dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
            parts.append((c, dtype.str))
        elif isinstance(dtype, pd.CategoricalDtype):
            parts.append((c, "category", _levels_key(dtype.categories), bool(dtype.ordered)))
        elif pd.api.types.is_numeric_dtype(dtype):
            parts.append((c, str(dtype)))
        else:
            return None
    return (formula, tuple(parts))


def _levels_key(categories: pd.Index) -> tuple:
    """The categories as a hashable key: their dtype and values."""
    return (str(categories.dtype), *categories.tolist())


def _checked_fast(design: FixedDesign, first, Xy: np.ndarray):
    """NumPy evaluators for the design when they reproduce formulaic's ``Xy`` on ``first``."""
    fl = FastColumns.from_spec(design._lhs_spec)
    fr = FastColumns.from_spec(design._rhs_spec)
    if fl is None or fr is None or len(fl.names) != 1:
        return None
    try:
        trial = np.column_stack((fr.evaluate(first), fl.evaluate(first)))
    except (TypeError, ValueError, KeyError):
        return None
    if trial.shape != Xy.shape or not np.array_equal(trial, Xy):
        return None
    return fl, fr
