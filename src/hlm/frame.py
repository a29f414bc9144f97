"""From user data to a clean pandas frame of the columns a model uses.

Accepts pandas DataFrames, polars DataFrames, pyarrow Tables and mappings of arrays.  Only
the columns the model names are kept; rows with a missing value in any of them are dropped
and counted (or refused with ``missing="raise"``); infinite values are refused.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hlm.errors import DataError


@dataclass(frozen=True)
class Frame:
    """The rows and columns a model uses.

    Attributes
    ----------
    data : pandas.DataFrame
        Used columns only, rows with missing values removed, unused categories removed.
    n_dropped : int
        Rows dropped for missing values.
    dropped_by : dict
        Column name -> number of rows missing in that column (a row may count twice).
    """

    data: pd.DataFrame
    n_dropped: int
    dropped_by: dict


def to_pandas(data, columns=None) -> pd.DataFrame:
    """Convert ``data`` to a pandas DataFrame, selecting ``columns`` first when given.

    Parameters
    ----------
    data : pandas.DataFrame, polars.DataFrame, pyarrow.Table or mapping of arrays
    columns : list of str, optional
        Columns to keep; selecting before converting avoids copying unused columns.
    """
    if isinstance(data, pd.DataFrame):
        if columns is None:
            return data
        # a frame of the selected columns that shares their memory: ``data[cols]`` copies
        # when the columns sit in one block in another order (e.g. read from Parquet)
        return pd.DataFrame({c: data[c] for c in columns}, copy=False)
    module = type(data).__module__.split(".")[0]
    if module == "polars":
        sub = data if columns is None else data.select(list(columns))
        return _arrow_to_pandas(sub.to_arrow())
    if module == "pyarrow":
        sub = data if columns is None else data.select(list(columns))
        return _arrow_to_pandas(sub)
    if isinstance(data, Mapping):
        df = pd.DataFrame({k: data[k] for k in (columns or data.keys())})
        return df
    raise DataError(
        f"data of type {type(data).__name__} is not supported: pass a pandas or polars "
        "DataFrame, a pyarrow Table, or a dict of equal-length arrays"
    )


def _arrow_to_pandas(table) -> pd.DataFrame:
    """Arrow to pandas keeping integer columns with nulls as integers (pandas' nullable Int).

    Arrow's default turns them into float64, which would make integer group ids look like
    floating-point labels ("2.0").
    """
    import pyarrow as pa

    def mapper(t):
        if pa.types.is_integer(t):
            return pd.Int64Dtype()
        return None

    return table.to_pandas(types_mapper=mapper)


def available_columns(data) -> list[str]:
    """Column names of any supported data object."""
    if isinstance(data, pd.DataFrame):
        return [str(c) for c in data.columns]
    module = type(data).__module__.split(".")[0]
    if module == "polars":
        return list(data.columns)
    if module == "pyarrow":
        return list(data.column_names)
    if isinstance(data, Mapping):
        return [str(k) for k in data.keys()]
    return list(to_pandas(data).columns)


def check_columns(needed: list[str], data, what: str = "the formula") -> None:
    """Raise one DataError listing every needed column absent from ``data``."""
    have = set(available_columns(data))
    missing = [c for c in needed if c not in have]
    if missing:
        shown = ", ".join(repr(c) for c in missing)
        close = sorted(have)[:20]
        raise DataError(
            f"{what} names column(s) {shown} not found in the data; available columns: "
            f"{', '.join(close)}{' ...' if len(have) > 20 else ''}"
        )


def prepare_frame(data, columns: list[str], *, missing: str = "drop", labels_only=()) -> Frame:
    """Select ``columns`` from ``data``, drop (or refuse) rows with missing values.

    Parameters
    ----------
    data : supported data object
    columns : list of str
        Every column the model uses (response, predictors, groups, weights).
    missing : {"drop", "raise"}
        What to do with rows that have a missing value in a used column.
    labels_only : collection of str
        Columns used only as grouping factors (left as they are; coded later).

    Returns
    -------
    Frame
    """
    if missing not in ("drop", "raise"):
        raise ValueError(f"missing must be 'drop' or 'raise', got {missing!r}")
    check_columns(columns, data)
    df = to_pandas(data, columns)
    if len(df) == 0:
        raise DataError("the data have no rows")
    # column by column: frame-wide operations would consolidate the columns into one new
    # block, a full copy of the data
    bad = np.zeros(len(df), dtype=bool)
    dropped_by = {}
    # each column looked up once: a DataFrame lookup costs tens of microseconds, which is
    # most of the time of this function on small data
    cols = {c: df[c] for c in df.columns}
    for c, col in cols.items():
        na = col.isna().to_numpy()
        if na.any():
            dropped_by[c] = int(na.sum())
            bad |= na
    n_dropped = int(bad.sum())
    if n_dropped:
        if missing == "raise":
            where = ", ".join(f"{c!r} ({k} rows)" for c, k in dropped_by.items())
            raise DataError(f"missing values in {where}; drop them or use missing='drop'")
        df = df.loc[~bad]
        cols = {c: df[c] for c in df.columns}
        if len(df) == 0:
            raise DataError(
                "every row has a missing value in a column the model uses: "
                + ", ".join(f"{c!r} ({k} missing)" for c, k in dropped_by.items())
            )
    df, cols = _numbers_stored_as_objects(df, cols, exclude=labels_only)
    _check_finite(cols)
    df = _drop_unused_categories(df, cols)
    df = _strings_to_categorical(df, cols, exclude=labels_only)
    return Frame(df, n_dropped, dropped_by)


#: ``pandas.api.types.infer_dtype`` kinds of an object column holding only real numbers
_NUMBER_KINDS = ("integer", "floating", "mixed-integer-float", "decimal")
#: kinds of an object column mixing numbers with text or other objects
_MIXED_KINDS = ("mixed-integer", "mixed")


def _numbers_stored_as_objects(df: pd.DataFrame, cols: dict, exclude):
    """Object columns of numbers become float64; predictors mixing numbers and text are refused.

    A column of numbers can reach us with dtype object (built from Python lists with a None,
    or read from a source without a schema); as a categorical it would silently become one
    dummy column per distinct value.  A predictor mixing numbers and text (a stray "n/a" in
    a numeric column) is refused rather than turned into a factor.  Grouping columns
    (``exclude``) are labels whatever their type; :func:`hlm.design.groups.factor_codes`
    handles them.  Returns the frame and its ``cols`` mapping, both updated.
    """
    fixed = {}
    for c, col in cols.items():
        if c in exclude or not pd.api.types.is_object_dtype(col.dtype):
            continue
        kind = pd.api.types.infer_dtype(col, skipna=True)
        if kind in _NUMBER_KINDS:
            fixed[c] = pd.to_numeric(col).astype(np.float64)
        elif kind in _MIXED_KINDS:
            values = col.to_numpy()
            text = [v for v in values if isinstance(v, str | bytes)][:3]
            if not text or not any(_is_number(v) for v in values):
                continue
            raise DataError(
                f"column {c!r} mixes numbers and text (e.g. {', '.join(map(repr, text))}); "
                "convert it to numbers (pandas.to_numeric(..., errors='coerce') makes the "
                "text missing) or to text (.astype(str)) for a categorical predictor"
            )
    if not fixed:
        return df, cols
    return df.assign(**fixed), {**cols, **fixed}


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _strings_to_categorical(df: pd.DataFrame, cols: dict, exclude) -> pd.DataFrame:
    """Text predictors become categoricals with sorted levels, as R's factor() does.

    Fixing the levels once, on all rows, keeps the dummy coding identical across row chunks.
    ``cols`` maps the names of ``df`` to its columns (looked up once).
    """
    fixed = {}
    for c, col in cols.items():
        if c in exclude:
            continue
        dtype = col.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            continue
        if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            levels = sorted(pd.unique(col), key=str)
            fixed[c] = pd.Categorical(col, categories=levels)
    return df.assign(**fixed) if fixed else df


def _check_finite(cols: dict) -> None:
    for c, col in cols.items():
        if pd.api.types.is_float_dtype(col.dtype):
            values = col.to_numpy()
            if not np.isfinite(values).all():
                k = int(np.isinf(values).sum())
                raise DataError(
                    f"column {c!r} has {k} infinite value(s); remove or recode them before fitting"
                )


def _drop_unused_categories(df: pd.DataFrame, cols: dict) -> pd.DataFrame:
    fixed = {}
    for c, col in cols.items():
        if not isinstance(col.dtype, pd.CategoricalDtype):
            continue
        codes = col.cat.codes.to_numpy()
        used = np.bincount(codes[codes >= 0], minlength=len(col.cat.categories))
        if not used.all():  # counting codes is much cheaper than nunique() on many rows
            fixed[c] = col.cat.remove_unused_categories()
    return df.assign(**fixed) if fixed else df


def level_complete_sample(df: pd.DataFrame, head: int) -> pd.DataFrame:
    """The first ``head`` rows plus the first row showing each value of each discrete column.

    Coding that formulaic fixes on these rows (dummy columns of ``C(k)`` for an integer
    ``k``, say) covers every level in the data, so later row chunks are coded the same way.
    Categorical columns already know their levels and float columns are not discrete.
    """
    if len(df) <= head:
        return df
    keep = np.zeros(len(df), dtype=bool)
    keep[:head] = True
    for c in df.columns:
        dtype = df[c].dtype
        if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_float_dtype(dtype):
            continue
        keep |= ~pd.Series(df[c].to_numpy()).duplicated().to_numpy()
    return df.iloc[np.flatnonzero(keep)]
