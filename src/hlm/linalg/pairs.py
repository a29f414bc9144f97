"""The fill-in ``A_1r' B A_1r`` of crossed terms, as one sparse mat-vec per theta.

With the first term block-diagonal, the rest block of the factor needs
``Q = A_1r' B A_1r`` where ``A_1r = Z_1' Z_rest`` is fixed and ``B`` is block diagonal with
one S1 x S1 block ``B_g`` per level of the first factor that changes with theta.  Each entry
of ``Q`` is a fixed linear combination of the entries of the ``B_g``:

    Q[i, j] = sum_g sum_{a,b} A_1r[(g,a), i] B_g[a, b] A_1r[(g,b), j]

so we precompute the sparse matrix ``P`` with ``vec(Q) = P vec(B)`` once, and each theta costs
one sparse mat-vec with as many non-zeros as there are products of entries sharing a level of
the first factor (for InstEval about two million), instead of two sparse matrix products.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class PairProduct:
    """Precomputed map ``vec(B_g) -> A_1r' B A_1r`` (dense, qr x qr).

    Parameters
    ----------
    A_1r : scipy.sparse matrix, shape (J1 * S1, qr)
        Cross-products of the first term's columns with the other terms' columns.
    J1, S1 : int
        Levels and columns of the first term.
    """

    def __init__(self, A_1r, J1: int, S1: int):
        A = sp.csr_matrix(A_1r)
        A.sum_duplicates()
        A.eliminate_zeros()
        qr = A.shape[1]
        self.shape = (qr, qr)
        rows = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
        group = rows // S1
        within = rows % S1
        # entries are sorted by row, hence by group: each group's entries are contiguous
        counts = np.bincount(group, minlength=J1)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        per_entry = counts[group]  # partners of each entry (all entries of its group)
        left = np.repeat(np.arange(len(rows)), per_entry)
        offset = np.arange(len(left)) - np.repeat(np.cumsum(per_entry) - per_entry, per_entry)
        right = starts[group[left]] + offset
        out_index = A.indices[left].astype(np.int64) * qr + A.indices[right]
        values = A.data[left] * A.data[right]
        positions, out_row = _rank(out_index, qr * qr)
        self.positions = positions
        if S1 == 1:
            # the products come grouped by level of the first factor, so P' is a CSR matrix
            # with one row per level as they stand: no sort, no COO conversion
            indptr = np.concatenate(([0], np.cumsum(counts.astype(np.int64) ** 2)))
            PT = sp.csr_matrix((values, out_row, indptr), shape=(J1, len(positions)))
            self.P = PT.T  # CSC view, (positions x J1)
        else:
            weight_index = group[left] * S1 * S1 + within[left] * S1 + within[right]
            self.P = sp.csr_matrix(
                (values, (out_row, weight_index)), shape=(len(positions), J1 * S1 * S1)
            )
            self.P.sum_duplicates()

    @property
    def nnz(self) -> int:
        """Number of stored products."""
        return int(self.P.nnz)

    def __call__(self, B: np.ndarray) -> np.ndarray:
        """Dense ``A_1r' B A_1r`` for blocks ``B`` of shape (J1, S1, S1)."""
        out = np.zeros(self.shape[0] * self.shape[1])
        out[self.positions] = self.P @ B.reshape(-1)
        return out.reshape(self.shape)


#: largest qr^2 for which positions are ranked with a dense table instead of a sort
DENSE_RANK_MAX = 1 << 26


def _rank(index: np.ndarray, size: int):
    """Sorted distinct values of ``index`` (in ``[0, size)``) and each entry's rank among them.

    ``np.unique(index, return_inverse=True)``, without its sort when a table of ``size``
    entries is affordable (InstEval: 3.6 million products over 1.3 million positions).
    """
    if size > DENSE_RANK_MAX:
        return np.unique(index, return_inverse=True)
    seen = np.zeros(size, dtype=bool)
    seen[index] = True
    positions = np.flatnonzero(seen)
    rank = np.zeros(size, dtype=np.int64)
    rank[positions] = np.arange(len(positions))
    return positions, rank[index]
