"""Levels of grouping factors discovered batch by batch, put in lme4's order at the end.

Each batch (or Dask partition) codes its groups by order of appearance; the statistics are
summed per level under those codes, and the codes of two batches are reconciled by the
level values themselves.  After the last batch the levels are put in the order the
in-memory path gives them (:func:`hlm.design.groups.factor_codes`: numbers by value, text
by its sorted order, categoricals by their categories; an interaction ``a:b`` by ``a``'s
level, then ``b``'s), and the per-level statistics are permuted to match.  So a group may
be split over any number of batches or partitions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hlm.errors import DataError


class FactorLevels:
    """The values of one grouping column seen so far, in order of discovery.

    Parameters
    ----------
    name : str
        The column's name.
    """

    def __init__(self, name: str):
        self.name = name
        self.values: pd.Index | None = None
        #: for a categorical column, the union of the batches' categories, in order of
        #: first appearance (their order is the level order)
        self.categories: pd.Index | None = None

    @property
    def size(self) -> int:
        """Number of distinct values seen."""
        return 0 if self.values is None else len(self.values)

    def code(self, column: pd.Series) -> np.ndarray:
        """Discovery codes (int64) of a batch's column without missing values."""
        if isinstance(column.dtype, pd.CategoricalDtype):
            self._add_categories(column.cat.categories)
            local, uniques = pd.factorize(column)
            uniques = pd.Index(np.asarray(uniques, dtype=object))
        else:
            local, uniques = pd.factorize(column)
            uniques = pd.Index(uniques)
        where = self.absorb(uniques)
        return where[local].astype(np.int64, copy=False)

    def _add_categories(self, cats) -> None:
        cats = pd.Index(np.asarray(cats, dtype=object))
        if self.categories is None:
            self.categories = cats
        elif not self.categories.equals(cats):
            new = cats[self.categories.get_indexer(cats) < 0]
            if len(new):
                self.categories = self.categories.append(new)

    def absorb(self, uniques: pd.Index) -> np.ndarray:
        """Positions of ``uniques`` among the values seen, adding the new ones at the end."""
        if self.values is None:
            self.values = uniques
            return np.arange(len(uniques), dtype=np.int64)
        where = self.values.get_indexer(uniques).astype(np.int64)
        new = where < 0
        if new.any():
            start = len(self.values)
            self.values = self.values.append(uniques[new])
            where[new] = np.arange(start, start + int(new.sum()))
        return where

    def merge(self, other: FactorLevels) -> np.ndarray:
        """Take in another batch's levels; returns the map of its codes to this one's."""
        if other.categories is not None:
            self._add_categories(other.categories)
        if other.values is None:
            return np.zeros(0, dtype=np.int64)
        return self.absorb(other.values)

    def copy(self) -> FactorLevels:
        """An independent copy (indexes are immutable, so a shallow copy is enough)."""
        out = FactorLevels(self.name)
        out.values, out.categories = self.values, self.categories
        return out

    def final(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rank, labels)``: the lme4 code of each discovery code, and the labels in order."""
        from hlm.design.groups import factor_codes

        if self.values is None:
            return np.zeros(0, dtype=np.int64), np.array([], dtype=object)
        if self.categories is not None:
            series = pd.Series(pd.Categorical(np.asarray(self.values), categories=self.categories))
        else:
            series = pd.Series(self.values)
        return factor_codes(series, self.name)

    def lookup(self) -> tuple[pd.Index, np.ndarray]:
        """``(values, rank)`` to code new rows with final codes (for per-row outputs)."""
        rank, _ = self.final()
        return self.values, rank


class TermLevels:
    """Levels of a term's grouping factor: one column, or an interaction of several.

    Parameters
    ----------
    factors : list of FactorLevels
        The columns of the interaction (one for a plain factor), shared between terms.
    """

    def __init__(self, factors: list[FactorLevels]):
        self.factors = factors
        #: per level of an interaction, the discovery codes of its parts (J, k)
        self.parts = np.zeros((0, len(factors)), dtype=np.int64)
        self._index = pd.Index(np.zeros(0, dtype=np.int64))

    @property
    def size(self) -> int:
        """Number of levels seen."""
        if len(self.factors) == 1:
            return self.factors[0].size
        return len(self.parts)

    def code(self, codes: list[np.ndarray]) -> np.ndarray:
        """Discovery codes of the term from its parts' discovery codes (one array each)."""
        if len(codes) == 1:
            return codes[0]
        stacked = np.column_stack(codes)
        local, uniques = pd.factorize(self._pack(stacked))
        rows = np.empty(len(uniques), dtype=np.int64)
        rows[local] = np.arange(len(local))  # a row showing each unique key
        where = self._absorb(uniques, stacked[rows])
        return where[local]

    def _pack(self, parts: np.ndarray) -> np.ndarray:
        k = parts.shape[1]
        bits = 63 // k
        if parts.size and parts.max() >= (1 << bits):
            raise DataError(
                f"an interaction of {k} grouping factors with more than {1 << bits} levels "
                "each is not supported"
            )
        key = np.zeros(len(parts), dtype=np.int64)
        for j in range(k):
            key = (key << bits) | parts[:, j]
        return key

    def _absorb(self, keys: np.ndarray, parts: np.ndarray) -> np.ndarray:
        where = self._index.get_indexer(keys).astype(np.int64)
        new = where < 0
        if new.any():
            start = len(self._index)
            self._index = self._index.append(pd.Index(keys[new]))
            self.parts = np.vstack([self.parts, parts[new]])
            where[new] = np.arange(start, start + int(new.sum()))
        return where

    def merge(self, other: TermLevels, factor_maps: list[np.ndarray]) -> np.ndarray:
        """Take in another batch's term levels, whose parts map by ``factor_maps``."""
        if len(self.factors) == 1:
            return factor_maps[0]
        parts = np.column_stack([m[other.parts[:, j]] for j, m in enumerate(factor_maps)])
        if len(parts) == 0:
            return np.zeros(0, dtype=np.int64)
        return self._absorb(self._pack(parts), parts)

    def final(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rank, labels)`` in lme4's order (see the module docstring)."""
        if len(self.factors) == 1:
            return self.factors[0].final()
        finals = [f.final() for f in self.factors]
        parts = np.column_stack([r[self.parts[:, j]] for j, (r, _) in enumerate(finals)])
        order = np.lexsort(parts.T[::-1])  # first part varies slowest
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        labels = np.array(
            [
                ":".join(finals[j][1][parts[i, j]] for j in range(len(finals)))
                for i in order
            ],
            dtype=object,
        )
        return rank, labels


class LevelTables:
    """The grouping columns and terms of a model, as seen in one batch or merged batches.

    Parameters
    ----------
    term_factors : list of list of str
        Per random-effects term (in formula order), its grouping columns.
    """

    def __init__(self, term_factors: list[list[str]]):
        self.term_factors = [list(f) for f in term_factors]
        names = list(dict.fromkeys(c for fs in term_factors for c in fs))
        self.factors = {c: FactorLevels(c) for c in names}
        self.terms = [TermLevels([self.factors[c] for c in fs]) for fs in term_factors]

    def code(self, df: pd.DataFrame) -> list[np.ndarray]:
        """Discovery codes of each term for a clean batch."""
        by_col = {c: f.code(df[c]) for c, f in self.factors.items()}
        pairs = zip(self.terms, self.term_factors, strict=True)
        return [t.code([by_col[c] for c in fs]) for t, fs in pairs]

    @property
    def sizes(self) -> list[int]:
        """Levels seen per term."""
        return [t.size for t in self.terms]

    def merge(self, other: LevelTables) -> list[np.ndarray]:
        """Take in ``other``'s levels; returns per term the map of its codes to ours."""
        maps = {c: f.merge(other.factors[c]) for c, f in self.factors.items()}
        return [
            t.merge(o, [maps[c] for c in fs])
            for t, o, fs in zip(self.terms, other.terms, self.term_factors, strict=True)
        ]

    def copy(self) -> LevelTables:
        """An independent copy."""
        out = LevelTables(self.term_factors)
        out.factors = {c: f.copy() for c, f in self.factors.items()}
        out.terms = []
        for t, fs in zip(self.terms, self.term_factors, strict=True):
            nt = TermLevels([out.factors[c] for c in fs])
            nt.parts, nt._index = t.parts, t._index
            out.terms.append(nt)
        return out

    def final(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per term, ``(rank, labels)``: final code of each discovery code, and the labels."""
        return [t.final() for t in self.terms]


class FinalCoder:
    """Codes new rows with a fitted model's final group codes (for per-row outputs).

    Parameters
    ----------
    tables : LevelTables
        The merged levels of the fit.
    """

    def __init__(self, tables: LevelTables):
        self.term_factors = tables.term_factors
        self.factors = {}
        for c, f in tables.factors.items():
            self.factors[c] = (f.values, f.categories is not None)
        self.terms = []
        for t in tables.terms:
            rank, _ = t.final()
            if len(t.factors) == 1:
                self.terms.append((None, rank))
            else:
                self.terms.append((t._index, rank, t.parts.shape[1]))

    def code(self, df: pd.DataFrame) -> list[np.ndarray]:
        """Final codes per term of a clean batch (every level must have been in the fit)."""
        by_col = {}
        for c, (values, categorical) in self.factors.items():
            col = df[c]
            if categorical:
                col = pd.Series(np.asarray(col, dtype=object))
            where = values.get_indexer(col)
            if (where < 0).any():
                bad = col[where < 0].iloc[0]
                raise DataError(f"group {bad!r} of {c!r} was not in the data of the fit")
            by_col[c] = where.astype(np.int64)
        out = []
        for entry, fs in zip(self.terms, self.term_factors, strict=True):
            if entry[0] is None:
                out.append(entry[1][by_col[fs[0]]])
                continue
            index, rank, k = entry
            parts = np.column_stack([by_col[c] for c in fs])
            bits = 63 // k
            key = np.zeros(len(parts), dtype=np.int64)
            for j in range(k):
                key = (key << bits) | parts[:, j]
            where = index.get_indexer(key)
            if (where < 0).any():
                raise DataError(f"a combination of {fs} was not in the data of the fit")
            out.append(rank[where])
        return out
