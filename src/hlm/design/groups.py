"""Integer codes and labels for grouping factors.

Grouping columns are always labels, never numbers: integers keep their numeric order but are
labelled by their text ("7"), strings keep their exact text ("007" and "7" stay distinct),
categoricals keep their level order.  An interaction ``a:b`` orders its levels as R does:
by the first factor's level, then the second's, keeping only combinations that occur.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hlm.errors import DataWarning, warn


def factor_codes(column: pd.Series, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes (0..J-1, int64) and level labels (object array of str) of one column.

    Parameters
    ----------
    column : pandas.Series
        Without missing values.
    name : str
        The column's name, for warnings.
    """
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy().astype(np.int64)
        cats = column.cat.categories
        if isinstance(cats.dtype, pd.StringDtype):  # no per-label Python loop
            labels = cats.to_numpy(dtype=object)
        else:
            labels = np.array([str(c) for c in cats], dtype=object)
        used = np.bincount(codes, minlength=len(labels)) > 0
        if not used.all():
            remap = np.cumsum(used) - 1
            codes, labels = remap[codes], labels[used]
        return codes, labels
    if pd.api.types.is_float_dtype(dtype):
        warn(
            f"grouping column {name!r} is floating point; its values are used as labels "
            "(convert it to integers or strings to silence this)",
            DataWarning,
        )
    codes, uniques = pd.factorize(column, sort=True)
    labels = np.array([_label(u) for u in uniques], dtype=object)
    return codes.astype(np.int64), labels


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
