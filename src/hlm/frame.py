"""From user data to a clean pandas frame of the columns a model uses.

Accepts pandas DataFrames, polars DataFrames, pyarrow Tables and mappings of arrays.  Only
the columns the model names are kept; rows with a missing value in any of them are dropped
and counted (or refused with ``missing="raise"``); infinite values are refused.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hlm.columns import Columns, column_array, frame_array, table_columns, take_rows
from hlm.errors import DataError


class _LazyData:
    """The ``data`` field of :class:`Frame`: a DataFrame made from the arrays on first use."""

    def __set_name__(self, owner, name):
        self.slot = "_" + name

    def __get__(self, frame, owner=None):
        if frame is None:
            return None  # the field's default
        data = frame.__dict__.get(self.slot)
        if data is None and "_columns" in frame.__dict__:
            data = frame.__dict__["_columns"].to_pandas()
            frame.__dict__[self.slot] = data
        return data

    def __set__(self, frame, value):
        frame.__dict__[self.slot] = value


@dataclass(frozen=True)
class Frame:
    """The rows and columns a model uses.

    Attributes
    ----------
    data : pandas.DataFrame
        Used columns only, rows with missing values removed, unused categories removed.  A
        frame made by :func:`prepare_frame` builds it from :attr:`columns` on first use.
    n_dropped : int
        Rows dropped for missing values.
    dropped_by : dict
        Column name -> number of rows missing in that column (a row may count twice).
    """

    data: pd.DataFrame = _LazyData()
    n_dropped: int = 0
    dropped_by: dict = field(default_factory=dict)

    @classmethod
    def from_columns(cls, columns: Columns, n_dropped: int, dropped_by: dict) -> Frame:
        """A frame whose DataFrame is made from ``columns`` only when asked for."""
        frame = cls(None, n_dropped, dropped_by)
        frame.__dict__["_columns"] = columns
        return frame

    @property
    def columns(self) -> Columns:
        """The used columns as arrays (see :class:`Columns`)."""
        if "_columns" not in self.__dict__:
            self.__dict__["_columns"] = to_columns(self.data, table_columns(self.data))
        return self.__dict__["_columns"]


def to_columns(data, columns: list[str]) -> Columns:
    """The ``columns`` of any supported data object as :class:`Columns`.

    A pandas DataFrame is not copied: the arrays view its columns.
    """
    if isinstance(data, pd.DataFrame):
        owner = data.copy(deep=False)  # see Columns: copy-on-write protects our arrays
        arrays = {c: frame_array(owner, c) for c in columns}
        return Columns(arrays, owner.index, owner)
    df = to_pandas(data, columns)
    return Columns({c: frame_array(df, c) for c in columns}, df.index, df)


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
    if isinstance(data, pd.DataFrame) and all(c in data.columns for c in needed):
        return  # the common case without listing every column name
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
    table = to_columns(data, list(dict.fromkeys(columns)))
    if len(table) == 0:
        raise DataError("the data have no rows")
    bad = None
    dropped_by = {}
    for c, values in table.arrays.items():
        na = _missing(values)
        if na is not None and na.any():
            dropped_by[c] = int(na.sum())
            bad = na if bad is None else bad | na
    n_dropped = 0 if bad is None else int(bad.sum())
    if n_dropped:
        if missing == "raise":
            where = ", ".join(f"{c!r} ({k} rows)" for c, k in dropped_by.items())
            raise DataError(f"missing values in {where}; drop them or use missing='drop'")
        table = table.take(~bad)
        if len(table) == 0:
            raise DataError(
                "every row has a missing value in a column the model uses: "
                + ", ".join(f"{c!r} ({k} missing)" for c, k in dropped_by.items())
            )
    arrays = table.arrays
    _numbers_stored_as_objects(arrays, exclude=labels_only)
    _check_finite(arrays)
    _drop_unused_categories(arrays)
    _strings_to_categorical(arrays, exclude=labels_only)
    return Frame.from_columns(table, n_dropped, dropped_by)


def _missing(values) -> np.ndarray | None:
    """Mask of the missing entries of a column's array (None: none can be missing).

    The common dtypes are answered from the array itself: ``pandas.isna`` costs tens of
    microseconds per call, most of a small model's cleaning.
    """
    if isinstance(values, np.ndarray):
        kind = values.dtype.kind
        if kind == "f":
            return np.isnan(values)
        if kind in "iub":
            return None
    elif isinstance(values, pd.Categorical):
        return values.codes < 0
    return np.asarray(pd.isna(values), dtype=bool)


#: ``pandas.api.types.infer_dtype`` kinds of an object column holding only real numbers
_NUMBER_KINDS = ("integer", "floating", "mixed-integer-float", "decimal")
#: kinds of an object column mixing numbers with text or other objects
_MIXED_KINDS = ("mixed-integer", "mixed")


def _numbers_stored_as_objects(arrays: dict, exclude) -> None:
    """Object columns of numbers become float64; predictors mixing numbers and text are refused.

    A column of numbers can reach us with dtype object (built from Python lists with a None,
    or read from a source without a schema); as a categorical it would silently become one
    dummy column per distinct value.  A predictor mixing numbers and text (a stray "n/a" in
    a numeric column) is refused rather than turned into a factor.  Grouping columns
    (``exclude``) are labels whatever their type; :func:`hlm.design.groups.factor_codes`
    handles them.  ``arrays`` (column name -> array) is updated in place.
    """
    for c, values in list(arrays.items()):
        if c in exclude or values.dtype != object:
            continue
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind in _NUMBER_KINDS:
            arrays[c] = np.asarray(pd.to_numeric(values), dtype=np.float64)
        elif kind in _MIXED_KINDS:
            values = np.asarray(values, dtype=object)
            text = [v for v in values if isinstance(v, str | bytes)][:3]
            if not text or not any(_is_number(v) for v in values):
                continue
            raise DataError(
                f"column {c!r} mixes numbers and text (e.g. {', '.join(map(repr, text))}); "
                "convert it to numbers (pandas.to_numeric(..., errors='coerce') makes the "
                "text missing) or to text (.astype(str)) for a categorical predictor"
            )


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _strings_to_categorical(arrays: dict, exclude) -> None:
    """Text predictors become categoricals with sorted levels, as R's factor() does.

    Fixing the levels once, on all rows, keeps the dummy coding identical across row chunks.
    ``arrays`` (column name -> array) is updated in place.
    """
    for c, values in list(arrays.items()):
        if c in exclude:
            continue
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype) or dtype.kind in "fiub":
            continue
        if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            levels = sorted(pd.unique(values), key=str)
            arrays[c] = pd.Categorical(values, categories=levels)


def _check_finite(cols) -> None:
    """Refuse infinite values in float columns (``cols``: name -> array or Series)."""
    for c, col in cols.items():
        dtype = col.dtype
        if dtype.kind == "f" or pd.api.types.is_float_dtype(dtype):
            values = col if isinstance(col, np.ndarray) else col.to_numpy()
            if not np.isfinite(values).all():
                k = int(np.isinf(values).sum())
                raise DataError(
                    f"column {c!r} has {k} infinite value(s); remove or recode them before fitting"
                )


def used_levels(codes: np.ndarray, k: int) -> np.ndarray:
    """Which of ``k`` levels occur among category ``codes`` (-1, missing, is ignored).

    Counting codes is much cheaper than ``nunique()``; on platform integers it is several
    times cheaper than on pandas' int8/int16 codes.
    """
    codes = codes.astype(np.intp)
    if len(codes) and codes.min() < 0:
        codes = codes[codes >= 0]
    return np.bincount(codes, minlength=k) > 0


def _drop_unused_categories(arrays: dict) -> None:
    """Categoricals lose the levels no row uses (``arrays`` is updated in place)."""
    for c, values in list(arrays.items()):
        if not isinstance(values, pd.Categorical):
            continue
        if not used_levels(values.codes, len(values.categories)).all():
            arrays[c] = values.remove_unused_categories()


def level_complete_sample(df, head: int):
    """The first ``head`` rows plus the first row showing each value of each discrete column.

    Coding that formulaic fixes on these rows (dummy columns of ``C(k)`` for an integer
    ``k``, say) covers every level in the data, so later row chunks are coded the same way.
    Categorical columns already know their levels and float columns are not discrete.
    ``df`` is a DataFrame or :class:`Columns`; the sample is of the same kind.
    """
    if len(df) <= head:
        return df
    keep = np.zeros(len(df), dtype=bool)
    keep[:head] = True
    for c in table_columns(df):
        values = column_array(df, c)
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_float_dtype(dtype):
            continue
        keep |= ~pd.Series(np.asarray(values)).duplicated().to_numpy()
    return take_rows(df, np.flatnonzero(keep))
