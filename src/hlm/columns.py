"""The clean columns of a model's rows as arrays: :class:`Columns` and helpers.

Model building reads columns from either a pandas DataFrame or a :class:`Columns` table;
the helpers here take both.
"""

from __future__ import annotations

import pandas as pd


class Columns:
    """The clean columns of a model's rows as arrays, looked up by name.

    pandas 3 builds a new Series for every ``df[name]`` and a new DataFrame costs hundreds
    of microseconds, more than the rest of a small model's build; the build reads every
    column several times, so it works on these arrays (NumPy arrays, ``pandas.Categorical``
    or other pandas extension arrays) and a DataFrame is made only when asked for
    (:meth:`to_pandas`, :attr:`Frame.data`).

    Parameters
    ----------
    arrays : dict
        Column name -> array, all of the same length.
    index : pandas.Index
        Row labels of the rows (those of the user's data).
    owner : object, optional
        Kept alive with the arrays: a shallow copy of the user's DataFrame whose blocks the
        arrays view, so that pandas' copy-on-write copies the user's frame (not ours) if the
        user later writes into it.
    """

    def __init__(self, arrays: dict, index: pd.Index, owner=None):
        self.arrays = arrays
        self.index = index
        self._owner = owner
        self._pandas = None

    @property
    def columns(self) -> list[str]:
        """Column names, in order."""
        return list(self.arrays)

    def __getitem__(self, name: str):
        return self.arrays[name]

    def __contains__(self, name) -> bool:
        return name in self.arrays

    def __len__(self) -> int:
        return len(self.index)

    def take(self, rows) -> Columns:
        """The rows ``rows`` (a boolean mask, integer positions or a slice)."""
        return Columns(
            {c: a[rows] for c, a in self.arrays.items()}, self.index[rows], self._owner
        )

    def to_pandas(self) -> pd.DataFrame:
        """The columns as a DataFrame with the rows' labels (built once, then reused)."""
        if self._pandas is None:
            self._pandas = pd.DataFrame(self.arrays, index=self.index, copy=False)
        return self._pandas


def as_pandas(table) -> pd.DataFrame:
    """``table`` (a DataFrame or :class:`Columns`) as a DataFrame, for formulaic."""
    return table.to_pandas() if isinstance(table, Columns) else table


def column_array(table, name: str):
    """The values of column ``name`` of ``table`` (a DataFrame or :class:`Columns`).

    A NumPy array for NumPy-backed columns, else the pandas extension array (e.g.
    ``pandas.Categorical``); never a Series, which pandas 3 rebuilds on every lookup.
    """
    if isinstance(table, Columns):
        return table.arrays[name]
    return frame_array(table, name)


def table_columns(table) -> list[str]:
    """Column names of a DataFrame or :class:`Columns`."""
    return table.columns if isinstance(table, Columns) else list(table.columns)


def take_rows(table, rows):
    """Rows of a DataFrame or :class:`Columns` by position (slice or integer array)."""
    return table.take(rows) if isinstance(table, Columns) else table.iloc[rows]


def frame_array(df: pd.DataFrame, name: str):
    """Column ``name`` of ``df`` as an array (see :func:`column_array`)."""
    loc = df.columns.get_loc(name)
    # pandas' own accessor of a column's array skips building a Series; it is not public,
    # so fall back to the Series when it is missing or the name is not unique
    getter = getattr(df, "_get_column_array", None)
    if getter is not None and isinstance(loc, int):
        values = getter(loc)
    else:
        values = df[name].array
    if isinstance(values, pd.arrays.NumpyExtensionArray):
        values = values.to_numpy()
    return values
