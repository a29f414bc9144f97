"""Per-batch statistics with their own group codes, merged by level value, then finalised.

A :class:`Partial` is what one batch (or Dask partition, or a merge of several) knows: the
cross-products of its clean rows under its own codes of the groups, the levels behind those
codes, and its count of dropped rows.  Merging two partials reconciles their levels and adds
their statistics; :func:`finalize` puts the levels (and terms) in lme4's order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from hlm.design.crossprod import CrossProducts
from hlm.stream.levels import LevelTables


@dataclass
class Partial:
    """Statistics of a set of rows under their own group codes.

    Attributes
    ----------
    A : CrossProducts or None
        Cross-products of the clean rows (None when no row was clean); per-level arrays are
        indexed by the codes of ``levels``.
    levels : LevelTables
    n_read : int
        Rows read (clean or not).
    n_dropped : int
        Rows dropped for a missing value.
    dropped_by : dict
        Column -> rows with a missing value in it.
    """

    A: CrossProducts | None
    levels: LevelTables
    n_read: int = 0
    n_dropped: int = 0
    dropped_by: dict = field(default_factory=dict)


def _grow(arr: np.ndarray, rows: int) -> np.ndarray:
    """``arr`` with at least ``rows`` rows (zero-filled), over-allocating by half."""
    if arr.shape[0] >= rows:
        return arr
    out = np.zeros((max(rows, int(1.5 * arr.shape[0]) + 16),) + arr.shape[1:])
    out[: arr.shape[0]] = arr
    return out


def _remap_pair(pair, map_k, map_l, Sk, Sl, shape):
    coo = pair.tocoo()
    rows = map_k[coo.row // Sk] * Sk + coo.row % Sk
    cols = map_l[coo.col // Sl] * Sl + coo.col % Sl
    return sp.csr_matrix((coo.data, (rows, cols)), shape=shape)


class Running:
    """A partial that takes in others in place (the streaming loop's accumulator).

    Per-level arrays keep spare rows, so that levels appearing batch after batch cost
    amortised constant time.
    """

    def __init__(self, first: Partial, *, copy: bool = False):
        self.levels = first.levels.copy() if copy else first.levels
        self.n_read = first.n_read
        self.n_dropped = first.n_dropped
        self.dropped_by = dict(first.dropped_by)
        A = first.A
        self.A = None
        if A is not None:
            self.A = CrossProducts(
                n=A.n,
                sum_log_w=A.sum_log_w,
                G=A.G.copy(),
                ZZ=[z.copy() for z in A.ZZ] if copy else list(A.ZZ),
                ZXy=[z.copy() for z in A.ZXy] if copy else list(A.ZXy),
                pairs=dict(A.pairs),
                shift=A.shift,
                scale=A.scale,
            )

    def add(self, part: Partial) -> None:
        """Take in ``part`` (its levels, statistics and counts)."""
        self.n_read += part.n_read
        self.n_dropped += part.n_dropped
        for c, k in part.dropped_by.items():
            self.dropped_by[c] = self.dropped_by.get(c, 0) + k
        if part.A is None:
            return
        shared = part.levels is self.levels  # coded with our own tables: no remapping
        if shared:
            maps = [np.arange(z.shape[0]) for z in part.A.ZZ]
        else:
            maps = self.levels.merge(part.levels)
        if self.A is None:
            self.A = part.A
            return
        A, B = self.A, part.A
        sizes = self.levels.sizes
        A.n += B.n
        A.sum_log_w += B.sum_log_w
        A.G += B.G
        for k, m in enumerate(maps):
            A.ZZ[k] = _grow(A.ZZ[k], sizes[k])
            A.ZXy[k] = _grow(A.ZXy[k], sizes[k])
            if shared:  # levels 0..J_batch-1 in our codes: a plain, contiguous add
                J = B.ZZ[k].shape[0]
                A.ZZ[k][:J] += B.ZZ[k]
                A.ZXy[k][:J] += B.ZXy[k]
            else:
                A.ZZ[k][m] += B.ZZ[k]
                A.ZXy[k][m] += B.ZXy[k]
        for (k, l), pair in B.pairs.items():
            Sk, Sl = B.ZZ[k].shape[1], B.ZZ[l].shape[1]
            shape = (sizes[k] * Sk, sizes[l] * Sl)
            mine = A.pairs[(k, l)]
            if mine.shape != shape:
                mine = mine.tocsr(copy=True)
                mine.resize(shape)
            A.pairs[(k, l)] = mine + _remap_pair(pair, maps[k], maps[l], Sk, Sl, shape)

    def partial(self) -> Partial:
        """The statistics so far, per-level arrays trimmed to the levels seen."""
        A = self.A
        if A is not None:
            sizes = self.levels.sizes
            A = CrossProducts(
                n=A.n,
                sum_log_w=A.sum_log_w,
                G=A.G,
                ZZ=[z[:J] for z, J in zip(A.ZZ, sizes, strict=True)],
                ZXy=[z[:J] for z, J in zip(A.ZXy, sizes, strict=True)],
                pairs=A.pairs,
                shift=A.shift,
                scale=A.scale,
            )
        return Partial(A, self.levels, self.n_read, self.n_dropped, self.dropped_by)


def merge(a: Partial, b: Partial) -> Partial:
    """The statistics of the rows of ``a`` and ``b`` together (neither is changed)."""
    run = Running(a, copy=True)
    run.add(b)
    return run.partial()


def finalize(part: Partial, templates: list):
    """Put levels in lme4's order and terms in theta order.

    Parameters
    ----------
    part : Partial
        All rows, merged.
    templates : list of RandomBlock
        Per term in formula order, its coding (columns and Z spec), without levels.

    Returns
    -------
    A : CrossProducts
        Terms in lme4's order, levels in lme4's order within each term.  (``part.A``'s
        per-level arrays are released on the way.)
    blocks : list of RandomBlock
        In the same order, with their level labels (``codes`` is None: the rows are not held).
    """
    from hlm.design.random import RandomBlock
    from hlm.model import lme4_term_order

    A = part.A
    finals = part.levels.final()
    S = [z.shape[1] for z in A.ZZ]
    ZZ, ZXy = [], []
    for k, (rank, _) in enumerate(finals):
        zz = np.empty_like(A.ZZ[k])
        zz[rank] = A.ZZ[k]
        A.ZZ[k] = None  # one per-level array in two orders at a time, not all of them
        zx = np.empty_like(A.ZXy[k])
        zx[rank] = A.ZXy[k]
        A.ZXy[k] = None
        ZZ.append(zz)
        ZXy.append(zx)
    pairs = {}
    for (k, l), pair in A.pairs.items():
        Sk, Sl = S[k], S[l]
        pairs[(k, l)] = _remap_pair(pair, finals[k][0], finals[l][0], Sk, Sl, pair.shape)
    order = lme4_term_order([len(labels) for _, labels in finals])
    new_pairs = {}
    for i in range(len(order)):
        for j in range(i + 1, len(order)):
            a, b = order[i], order[j]
            new_pairs[(i, j)] = pairs[(a, b)] if a < b else pairs[(b, a)].T.tocsr()
    out = CrossProducts(
        n=A.n,
        sum_log_w=A.sum_log_w,
        G=A.G,
        ZZ=[ZZ[k] for k in order],
        ZXy=[ZXy[k] for k in order],
        pairs=new_pairs,
        shift=A.shift,
        scale=A.scale,
    )
    blocks = []
    for k in order:
        t = templates[k]
        blocks.append(RandomBlock(t.term, t.group, t.columns, finals[k][1], None, t._spec))
    return out, blocks, order
