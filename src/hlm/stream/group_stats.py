"""Per-group sums, counts and extremes over streamed batches, and the centring they give.

The statistics a level-equation spec needs from its data (group means for centring, the
spread of a variable within groups for the constancy checks) are sums and extremes per
group: each batch forms its own under its own group codes, and merging reconciles the
codes by the group values (as :mod:`hlm.stream.levels` does for the model's groups).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hlm.stream.levels import LevelTables


def _grow(arr: np.ndarray, n: int, fill: float) -> np.ndarray:
    if len(arr) >= n:
        return arr
    out = np.full(max(n, int(1.5 * len(arr)) + 16), fill, dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


@dataclass
class GroupStats:
    """Per-group sums, counts and extremes of some columns, for one or more key sets.

    Attributes
    ----------
    keys : list of list of str
        Each key set's grouping columns (``[group]``, or ``[group3, group]``).
    levels : LevelTables
        The groups seen, per key set.
    sums, counts : dict
        ``(key set index, column) -> ndarray`` over the groups (complete rows only).
    low, high : dict
        ``(key set index, column) -> ndarray``: per-group minimum and maximum (numeric).
    first, varies : dict
        ``(key set index, column) -> ndarray``: per-group first value and whether another
        value appeared (text columns).
    absmax : dict
        Column -> largest absolute value.
    grand : dict
        Column -> (sum, count) over complete rows.
    """

    keys: list
    levels: LevelTables = None
    sums: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    low: dict = field(default_factory=dict)
    high: dict = field(default_factory=dict)
    first: dict = field(default_factory=dict)
    varies: dict = field(default_factory=dict)
    absmax: dict = field(default_factory=dict)
    grand: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.levels is None:
            self.levels = LevelTables(self.keys)


def batch_stats(df, keys, means: list, spreads: list, complete) -> GroupStats:
    """Statistics of one batch.

    Parameters
    ----------
    df : pandas.DataFrame
    keys : list of list of str
    means : list of (int, str)
        ``(key set, column)`` whose per-group sums and counts over ``complete`` rows are
        wanted (``key set`` -1: only the grand sum).
    spreads : list of (int, str)
        ``(key set, column)`` whose per-group spread over ``complete`` rows is wanted.
    complete : ndarray of bool
    """
    st = GroupStats(keys)
    if len(df) == 0:
        return st
    rows = df.loc[complete] if not complete.all() else df
    codes = st.levels.code(rows) if len(rows) else [np.zeros(0, dtype=np.int64)] * len(keys)
    sizes = st.levels.sizes
    for k, col in means:
        x = rows[col].to_numpy(dtype=float)
        if k < 0:
            st.grand[col] = (float(x.sum()), len(x))
            continue
        st.sums[(k, col)] = np.bincount(codes[k], weights=x, minlength=sizes[k])
        st.counts[(k, col)] = np.bincount(codes[k], minlength=sizes[k]).astype(float)
    for k, col in spreads:
        values = rows[col]
        if _is_number(values):
            x = values.to_numpy(dtype=float)
            lo = np.full(sizes[k], np.inf)
            hi = np.full(sizes[k], -np.inf)
            np.minimum.at(lo, codes[k], x)
            np.maximum.at(hi, codes[k], x)
            st.low[(k, col)], st.high[(k, col)] = lo, hi
            st.absmax[col] = max(st.absmax.get(col, 0.0), float(np.abs(x).max(initial=0.0)))
        else:
            v = np.asarray(values, dtype=object)
            order = pd.Series(codes[k]).drop_duplicates()
            first = np.empty(sizes[k], dtype=object)
            first[order.to_numpy()] = v[order.index.to_numpy()]
            varies = np.zeros(sizes[k], dtype=bool)
            differs = pd.Series(v != first[codes[k]])
            varies[np.unique(codes[k][differs.to_numpy()])] = True
            st.first[(k, col)], st.varies[(k, col)] = first, varies
    return st


def merge_stats(a: GroupStats, b: GroupStats) -> GroupStats:
    """Statistics of two sets of rows together (``a`` is updated and returned)."""
    bsizes = b.levels.sizes  # b's arrays may have spare rows beyond its groups
    maps = a.levels.merge(b.levels)
    sizes = a.levels.sizes
    for key in b.sums:
        m, nb = maps[key[0]], bsizes[key[0]]
        for d, fill in ((a.sums, 0.0), (a.counts, 0.0)):
            d[key] = _grow(d.get(key, np.zeros(0)), sizes[key[0]], fill)
        a.sums[key][m] += b.sums[key][:nb]
        a.counts[key][m] += b.counts[key][:nb]
    for key in b.low:
        m, nb = maps[key[0]], bsizes[key[0]]
        a.low[key] = _grow(a.low.get(key, np.zeros(0)), sizes[key[0]], np.inf)
        a.high[key] = _grow(a.high.get(key, np.zeros(0)), sizes[key[0]], -np.inf)
        a.low[key][m] = np.minimum(a.low[key][m], b.low[key][:nb])
        a.high[key][m] = np.maximum(a.high[key][m], b.high[key][:nb])
    for key in b.first:
        m, nb = maps[key[0]], bsizes[key[0]]
        first = a.first.get(key, np.empty(0, dtype=object))
        varies = a.varies.get(key, np.zeros(0, dtype=bool))
        if len(first) < sizes[key[0]]:
            first = np.concatenate([first, np.full(sizes[key[0]] - len(first), None, dtype=object)])
            varies = np.concatenate([varies, np.zeros(sizes[key[0]] - len(varies), dtype=bool)])
        mine = first[m]
        known = np.array([x is not None for x in mine], dtype=bool)
        theirs, their_varies = b.first[key][:nb], b.varies[key][:nb]
        clash = known & (mine != theirs)
        varies[m] |= their_varies | clash
        first[m[~known]] = theirs[~known]
        a.first[key], a.varies[key] = first, varies
    for col, v in b.absmax.items():
        a.absmax[col] = max(a.absmax.get(col, 0.0), v)
    for col, (s, c) in b.grand.items():
        s0, c0 = a.grand.get(col, (0.0, 0))
        a.grand[col] = (s0 + s, c0 + c)
    return a


def _is_number(values: pd.Series) -> bool:
    dtype = values.dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


@dataclass
class Centring:
    """Adds a level-equation spec's centred columns to a batch (picklable).

    Attributes
    ----------
    complete : list of str
        Columns that must all be present for a row to count (the spec's raw columns and
        groups).
    derived : list of str
        Names of the added columns.
    rules : list of (str, str, str, int)
        ``(new column, variable, kind, key set)``; key set -1 for level-1 grand centring.
    keys : list of list of str
    coder : KeyCoder
        Finds a row's group among the groups of each key set.
    means : dict
        ``(key set, variable) -> ndarray`` group means, aligned with the key set's groups.
    grand : dict
        Variable -> the value subtracted by grand-mean centring.
    """

    complete: list
    derived: list
    rules: list
    keys: list
    coder: object
    means: dict
    grand: dict

    def __call__(self, raw: pd.DataFrame) -> pd.DataFrame:
        """``raw`` with the centred columns added."""
        ok = np.ones(len(raw), dtype=bool)
        for c in self.complete:
            ok &= raw[c].notna().to_numpy()
        codes = self._codes(raw)
        new = {}
        for name, var, kind, k in self.rules:
            x = pd.to_numeric(raw[var], errors="coerce").to_numpy(dtype=float)
            x = np.where(ok, x, np.nan)
            if kind in ("group", "group3", "mean", "mean3"):
                pos = codes[k]
                mean = np.full(len(raw), np.nan)
                hit = pos >= 0
                mean[hit] = self.means[(k, var)][pos[hit]]
                value = x - mean if kind in ("group", "group3") else mean
            else:
                value = x - self.grand[var]
            new[name] = value
        return raw.assign(**new)

    def _codes(self, raw):
        out = []
        for k, cols in enumerate(self.keys):
            present = np.ones(len(raw), dtype=bool)
            for c in cols:
                present &= raw[c].notna().to_numpy()
            pos = np.full(len(raw), -1, dtype=np.int64)
            if present.any():
                sub = raw.loc[present, cols]
                pos[present] = self.coder.term(k, sub)
            out.append(pos)
        return out


class KeyCoder:
    """Positions of rows' groups among the groups of a :class:`GroupStats` (picklable)."""

    def __init__(self, tables: LevelTables):
        self.term_factors = tables.term_factors
        self.values = {c: f.values for c, f in tables.factors.items()}
        self.index = [t._index for t in tables.terms]

    def term(self, k: int, df: pd.DataFrame) -> np.ndarray:
        """Position of each row's group in key set ``k`` (-1 if never seen)."""
        cols = self.term_factors[k]
        parts = [self.values[c].get_indexer(df[c]) for c in cols]
        if len(cols) == 1:
            return parts[0].astype(np.int64)
        parts = np.column_stack(parts).astype(np.int64)
        bad = (parts < 0).any(axis=1)
        bits = 63 // len(cols)
        key = np.zeros(len(parts), dtype=np.int64)
        for j in range(len(cols)):
            key = (key << bits) | np.where(bad, 0, parts[:, j])
        pos = self.index[k].get_indexer(key).astype(np.int64)
        pos[bad] = -1
        return pos
