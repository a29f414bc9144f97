"""Integer codes and labels for grouping factors.

Grouping columns are always labels, never numbers: integers keep their numeric order but are
labelled by their text ("7"), strings keep their exact text ("007" and "7" stay distinct),
categoricals keep their level order.  An interaction ``a:b`` orders its levels as R does:
by the first factor's level, then the second's, keeping only combinations that occur.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hlm.errors import DataError, DataWarning, warn
from hlm.frame import used_levels


def factor_codes(column, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes (0..J-1, int64) and level labels (object array of str) of one column.

    Parameters
    ----------
    column : pandas.Series or array
        Without missing values (a NumPy array or a pandas extension array such as
        ``pandas.Categorical``).
    name : str
        The column's name, for warnings.
    """
    if isinstance(column, pd.Series):
        column = column.array
    if isinstance(column, pd.arrays.NumpyExtensionArray):
        column = column.to_numpy()
    dtype = column.dtype
    if isinstance(column, pd.Categorical):
        codes = column.codes.astype(np.int64)
        cats = column.categories
        if isinstance(cats.dtype, pd.StringDtype):  # no per-label Python loop
            labels = cats.to_numpy(dtype=object)
        else:
            labels = np.array([str(c) for c in cats], dtype=object)
        used = used_levels(codes, len(labels))
        if not used.all():
            remap = np.cumsum(used) - 1
            codes, labels = remap[codes], labels[used]
        return codes, labels
    is_object = pd.api.types.is_object_dtype(dtype)
    kind = pd.api.types.infer_dtype(column, skipna=True) if is_object else ""
    if kind in ("mixed-integer", "mixed-integer-float", "mixed"):
        return _mixed_codes(pd.Series(column), name)
    if pd.api.types.is_float_dtype(dtype) or kind == "floating":
        warn(
            f"grouping column {name!r} is floating point; its values are used as labels "
            "(convert it to integers or strings to silence this)",
            DataWarning,
        )
    codes, uniques = pd.factorize(column, sort=True)
    labels = np.array([_label(u) for u in uniques], dtype=object)
    return codes.astype(np.int64), labels


def _mixed_codes(column: pd.Series, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes of a column mixing types (e.g. ``7`` and ``"007"``): its values as text labels.

    Two different values with the same text (the number ``7`` and the string ``"7"``) would
    become one label for two groups, or two groups that print alike; that is refused.
    """
    texts = column.map(_label)
    n_values = len(pd.unique(column))
    n_texts = len(pd.unique(texts))
    if n_texts < n_values:
        clash = texts[~column.duplicated()]
        same = clash[clash.duplicated(keep=False)]
        shown = ", ".join(repr(_plain(v)) for v in column[same.index][:4])
        raise DataError(
            f"grouping column {name!r} mixes types and different values print alike "
            f"({shown}); convert it to one type first, e.g. data[{name!r}].astype(str) to "
            "merge them or a mapping to keep them apart"
        )
    types = sorted({type(v).__name__ for v in column[~column.duplicated()]})
    warn(
        f"grouping column {name!r} mixes value types ({', '.join(types)}); its values are "
        "used as text labels (convert the column to one type to silence this)",
        DataWarning,
    )
    codes, uniques = pd.factorize(texts, sort=True)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def _plain(value):
    """A NumPy scalar as the Python value it holds (for messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _label(value) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return repr(float(value))
    return str(value)


def interaction_codes(columns: list[tuple[np.ndarray, np.ndarray]]):
    """Combine several factors' (codes, labels) into the codes of their interaction.

    Levels are ordered by the first factor, then the second, and so on; only combinations
    that occur are kept.  Labels join the parts with ``":"``.
    """
    if len(columns) == 1:
        return columns[0]
    key = np.zeros(len(columns[0][0]), dtype=np.int64)
    for codes, labels in columns:
        key = key * len(labels) + codes
    codes, uniques = pd.factorize(key, sort=True)
    # decode each unique key back into its parts for the labels
    parts = []
    rem = uniques.astype(np.int64)
    for _, labels in reversed(columns):
        parts.append(labels[rem % len(labels)])
        rem = rem // len(labels)
    parts.reverse()
    labels = np.array([":".join(p) for p in zip(*parts, strict=True)], dtype=object)
    return codes.astype(np.int64), labels
