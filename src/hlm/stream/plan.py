"""How each batch of rows is turned into statistics, fixed before (or while) the data pass.

The in-memory path cleans all rows at once, fixes the coding of the fixed effects on the
first 500,000 rows (plus rows showing levels the first chunk lacks), and the shift and scale
of the columns on the same first chunk.  :class:`BatchPlan` does the same, one batch at a
time, so that a streamed fit is the in-memory fit:

* missing values: every batch drops (or refuses) its rows with a missing value in a used
  column and counts them per column;
* text predictors become categoricals with the levels of *all* clean rows, sorted as the
  in-memory path sorts them (found by a discovery pass when later batches may hold more);
* the design (formulaic's coding) and the column transform are fixed on the first
  ``CHUNK_ROWS`` clean rows, as in memory.

The plan is a plain picklable object, sent as is to Dask workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hlm.errors import DataError
from hlm.stream.accumulate import Partial
from hlm.stream.levels import FactorLevels, LevelTables


@dataclass
class BatchPlan:
    """Everything a worker needs to turn a batch of raw rows into a :class:`Partial`.

    Attributes
    ----------
    spec : ModelSpec
    read : list of str
        Columns read from the source.
    columns : list of str
        Columns the model uses (after ``transform``); a row missing any is dropped.
    groups_only : list of str
        Grouping columns that are not predictors (left as labels).
    missing : {"drop", "raise"}
    weights, offset : str or None
        Column names.
    transform : callable or None
        ``DataFrame -> DataFrame`` adding derived columns (a level-equation spec's centring).
    levels : dict
        Predictor column -> its levels over all clean rows (text and categorical columns).
    design : FixedDesign
    templates : list of RandomBlock
        Per term (formula order), its Z coding (no levels).
    shift, scale : ndarray
    """

    spec: object
    read: list
    columns: list
    groups_only: list
    missing: str = "drop"
    weights: str | None = None
    offset: str | None = None
    transform: object = None
    levels: dict = field(default_factory=dict)
    design: object = None
    templates: list = field(default_factory=list)
    shift: np.ndarray | None = None
    scale: np.ndarray | None = None

    # ------------------------------------------------------------------ rows
    def clean(self, raw: pd.DataFrame, first_row: int | None = 0):
        """Derived columns, missing values out (counted), levels fixed.

        Returns
        -------
        df : pandas.DataFrame
            The model's columns, clean rows only.
        n_dropped : int
        dropped_by : dict
        """
        df, n_dropped, dropped_by, _ = self.clean_rows(raw, first_row)
        return df, n_dropped, dropped_by

    def clean_rows(self, raw: pd.DataFrame, first_row: int | None = 0):
        """:meth:`clean`, and the mask of the raw rows kept."""
        from hlm.frame import _check_finite

        data = raw if self.transform is None else self.transform(raw)
        df = pd.DataFrame({c: data[c] for c in self.columns}, copy=False)
        bad = np.zeros(len(df), dtype=bool)
        dropped_by = {}
        for c in df.columns:
            na = df[c].isna().to_numpy()
            if na.any():
                dropped_by[c] = int(na.sum())
                bad |= na
        n_dropped = int(bad.sum())
        if n_dropped:
            if self.missing == "raise":
                where = ", ".join(f"{c!r}" for c in dropped_by)
                first = int(np.flatnonzero(bad)[0])
                at = (
                    f"row {first} of a partition" if first_row is None
                    else f"row {first_row + first} of the data"
                )
                raise DataError(
                    f"missing values in {where} (first in {at}); drop them or use "
                    "missing='drop'"
                )
            df = df.loc[~bad]
        else:
            bad = None
        _check_finite(df)
        if self.weights is not None and len(df):
            from hlm.model import _check_weights

            _check_weights(df[self.weights].to_numpy(dtype=float))
        kept = None if bad is None else ~bad
        return self.apply_levels(df), n_dropped, dropped_by, kept

    def term_factors(self) -> list[list[str]]:
        """Per term (formula order), its grouping columns."""
        return [list(t.factors) for t in self.spec.random]

    def partial(self, raw: pd.DataFrame, first_row: int | None = 0, levels=None) -> Partial:
        """The statistics of a batch of raw rows, under its own group codes.

        ``levels``: a running :class:`LevelTables` to code the groups with (sequential
        passes), so that merging needs no remapping; by default the batch's own.
        """
        df, n_dropped, dropped_by = self.clean(raw, first_row)
        return self.partial_clean(df, len(raw), n_dropped, dropped_by, levels=levels)

    def partial_clean(self, df, n_read, n_dropped, dropped_by, Xy=None, levels=None) -> Partial:
        """:meth:`partial` on rows already cleaned (``Xy``: their raw ``[X y]``, if coded)."""
        from hlm.model import chunk_columns, chunk_cross_products

        if levels is None:
            levels = LevelTables(self.term_factors())
        if len(df) == 0:
            return Partial(None, levels, n_read, n_dropped, dropped_by)
        codes = levels.code(df)
        w = None if self.weights is None else df[self.weights].to_numpy(dtype=float)
        off = None if self.offset is None else df[self.offset].to_numpy(dtype=float)
        Xy, Z = chunk_columns(self.design, self.templates, df, off, Xy=Xy)
        A = chunk_cross_products(Xy, Z, codes, levels.sizes, self.shift, self.scale, w)
        return Partial(A, levels, n_read, n_dropped, dropped_by)

    # ------------------------------------------------------------------ fixing the coding
    def text_columns(self, df: pd.DataFrame) -> list[str]:
        """Predictor columns whose levels must be known before coding (text, categorical)."""
        out = []
        for c in self.columns:
            if c in self.groups_only or c in (self.weights, self.offset):
                continue
            dtype = df[c].dtype
            if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype):
                out.append(c)
            elif pd.api.types.is_string_dtype(dtype):
                out.append(c)
        return out

    def fix_coding(self, head: pd.DataFrame, sample: pd.DataFrame | None = None) -> np.ndarray:
        """Fix the design on ``sample`` (or ``head``) and the transform on ``head``.

        ``head`` is the first ``CHUNK_ROWS`` clean rows; returns its raw ``[X y]``.
        """
        from hlm.design.fixed import FixedDesign
        from hlm.design.random import RandomBlock, term_coding
        from hlm.model import chunk_columns, column_transform

        spec = self.spec
        if sample is not None and len(sample) > len(head):
            self.design, _ = FixedDesign.from_first_chunk(spec.response, spec.fixed, sample)
            Xy = self.design.Xy(head)
        else:
            sample = head
            self.design, Xy = FixedDesign.from_first_chunk(spec.response, spec.fixed, head)
        self.templates = []
        for t in spec.random:
            columns, zspec = term_coding(t, sample)
            self.templates.append(RandomBlock(t, t.group, columns, None, None, zspec))
        w = None if self.weights is None else head[self.weights].to_numpy(dtype=float)
        off = None if self.offset is None else head[self.offset].to_numpy(dtype=float)
        # on a copy: the offset and the hidden ones column are applied again when the
        # head's statistics are formed from the returned raw [X y]
        moved, _ = chunk_columns(self.design, [], head, off, Xy=Xy.copy())
        self.shift, self.scale = column_transform(self.design, moved, w)
        return Xy

    def needs_all_levels(self, head: pd.DataFrame) -> bool:
        """True when coding later batches needs levels that the first rows may not show.

        Call after :meth:`fix_coding` on ``head``.  Text and categorical predictors always
        need them; so do discrete columns inside a categorical term (``C(k)``) and, as in
        memory, any discrete column when the formula has a stateful transform
        (``scale(x)``), whose state the in-memory path fixes on a sample showing every level.
        """
        from hlm.spec.tokens import tokenize

        if self.text_columns(head):
            return True
        specs = [self.design._rhs_spec, self.design._lhs_spec]
        specs += [
            t._spec for t in self.templates if hasattr(t._spec, "encoder_state")
        ]
        discrete = set(discrete_columns(head))
        for s in specs:
            if getattr(s, "transform_state", None) and discrete:
                return True
            for expr, (kind, _state) in s.encoder_state.items():
                if str(getattr(kind, "value", kind)) != "categorical":
                    continue
                names = {tok.text for tok in tokenize(str(expr)) if tok.kind == "atom"}
                if names & discrete:
                    return True
        return False

    def apply_levels(self, df: pd.DataFrame) -> pd.DataFrame:
        """Text and categorical predictors as categoricals with the levels of all rows."""
        if not self.levels:
            return df
        return df.assign(
            **{
                c: pd.Categorical(np.asarray(df[c], dtype=object), categories=lv)
                for c, lv in self.levels.items()
            }
        )


def discrete_columns(df: pd.DataFrame) -> list[str]:
    """Columns the in-memory level-complete sample looks at: not float, not categorical."""
    return [
        c
        for c in df.columns
        if not isinstance(df[c].dtype, pd.CategoricalDtype)
        and not pd.api.types.is_float_dtype(df[c].dtype)
    ]


class Discovery:
    """The first pass, when needed: every level of the text and discrete columns.

    Collects, over the clean rows in order, the first row showing each value of each
    discrete column (as :func:`hlm.frame.level_complete_sample` does in memory) and the
    levels of text and categorical predictors.
    """

    def __init__(self, plan: BatchPlan):
        self.plan = plan
        self.seen: dict[str, FactorLevels] = {}
        self.text: dict[str, FactorLevels] = {}
        self.rows: list[pd.DataFrame] = []

    def add(self, df: pd.DataFrame, skip: int = 0) -> None:
        """Take in a clean batch (before level fixing); rows before ``skip`` are in the head."""
        for c in self.plan.text_columns(df):
            self.text.setdefault(c, FactorLevels(c)).code(df[c])
        keep = np.zeros(len(df), dtype=bool)
        for c in discrete_columns(df):
            if c in self.text:
                continue
            f = self.seen.setdefault(c, FactorLevels(c))
            before = f.size
            codes = f.code(df[c])
            first = ~pd.Series(codes).duplicated().to_numpy()
            keep |= first & (codes >= before)
        keep[:skip] = False
        if keep.any():
            self.rows.append(df.iloc[np.flatnonzero(keep)])

    def merge(self, other: Discovery) -> None:
        """Take in another partition's discovery (the partitions' rows in order)."""
        for c, f in other.text.items():
            self.text.setdefault(c, FactorLevels(c)).merge(f)
        for df in other.rows:
            self.add_rows_after(df)

    def add_rows_after(self, df: pd.DataFrame) -> None:
        """Rows that were first in their partition; keep those that are first overall."""
        keep = np.zeros(len(df), dtype=bool)
        for c in discrete_columns(df):
            if c in self.text:
                continue
            f = self.seen.setdefault(c, FactorLevels(c))
            before = f.size
            codes = f.code(df[c])
            first = ~pd.Series(codes).duplicated().to_numpy()
            keep |= first & (codes >= before)
        if keep.any():
            self.rows.append(df.iloc[np.flatnonzero(keep)])

    def text_levels(self) -> dict:
        """Predictor column -> its levels, ordered as the in-memory path orders them."""
        out = {}
        for c, f in self.text.items():
            values = list(f.values) if f.values is not None else []
            if f.categories is not None:
                used = set(values)
                out[c] = [v for v in f.categories if v in used]
            else:
                out[c] = sorted(values, key=str)
        return out

    def sample(self, head: pd.DataFrame) -> pd.DataFrame:
        """``head`` plus the first row of each value not in it."""
        if not self.rows:
            return head
        return pd.concat([head] + self.rows, ignore_index=True)
