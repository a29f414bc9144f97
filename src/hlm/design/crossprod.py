"""Cross-products of ``[Z X y]``: the only statistics the fit needs.

For a chunk of rows, with ``Xy`` already shifted, scaled and multiplied by ``sqrt(w)``:

* ``G = Xy' Xy`` (m x m, m = p + 1);
* per random term k: ``ZZ[k][g] = sum_{i in g} z_i z_i'`` (J_k x S_k x S_k) and
  ``ZXy[k][g] = sum_{i in g} z_i Xy_i'`` (J_k x S_k x m);
* per pair of terms k < l: ``Z_k' Z_l`` as a sparse (J_k S_k) x (J_l S_l) matrix.

All of these are sums over rows, so the statistics of row chunks add up exactly to those of
the whole data, provided every chunk uses the same shift and scale (fixed before the pass).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from hlm.design.kernels import group_sums

#: rows used to choose the shift and scale of the columns
SHIFT_SAMPLE = 50_000


@dataclass
class CrossProducts:
    """Sufficient statistics of a linear mixed model.

    Attributes
    ----------
    n : int
        Number of rows.
    sum_log_w : float
        Sum of the log prior weights (0 without weights).
    G : ndarray, shape (m, m)
        ``[X y]'[X y]`` of the transformed columns.
    ZZ : list of ndarray, each (J_k, S_k, S_k)
    ZXy : list of ndarray, each (J_k, S_k, m)
    pairs : dict
        ``(k, l) -> Z_k' Z_l`` (scipy CSR) for every pair of terms k < l.
    shift, scale : ndarray, shape (m,)
        The transform applied to each column of ``[X y]`` before accumulation:
        ``(value - shift) / scale``.
    basis : ndarray, shape (m, m_model), optional
        Set when the model has no intercept: the statistics are then accumulated for
        ``[1, X, y]`` (a hidden column of ones, so that every other column can be centred
        without loss of precision), and the model's columns ``[X/s, y/s_y]`` are
        ``[1, X_s, y_s] @ basis``.  Schur complements are formed in the accumulation basis
        and mapped with ``basis``, which keeps the digits that centring saves.
    """

    n: int
    sum_log_w: float
    G: np.ndarray
    ZZ: list
    ZXy: list
    pairs: dict = field(default_factory=dict)
    shift: np.ndarray | None = None
    scale: np.ndarray | None = None
    basis: np.ndarray | None = None

    @property
    def out_shift(self) -> np.ndarray:
        """Shift of the model's columns (zero for those of a model without intercept)."""
        return self.shift if self.basis is None else np.zeros(self.basis.shape[1])

    @property
    def out_scale(self) -> np.ndarray:
        """Scale of the model's columns ``[X y]``."""
        return self.scale if self.basis is None else self.scale[1:]

    def model_G(self) -> np.ndarray:
        """``[X y]'[X y]`` in the model's (scaled) columns."""
        return self.G if self.basis is None else self.basis.T @ self.G @ self.basis

    def __add__(self, other: CrossProducts) -> CrossProducts:
        """Merge the statistics of two disjoint sets of rows (same shift and scale)."""
        same = np.array_equal(self.shift, other.shift) and np.array_equal(self.scale, other.scale)
        if not same:
            raise ValueError("cross-products with different shifts or scales cannot be merged")
        return CrossProducts(
            n=self.n + other.n,
            sum_log_w=self.sum_log_w + other.sum_log_w,
            G=self.G + other.G,
            ZZ=[a + b for a, b in zip(self.ZZ, other.ZZ, strict=True)],
            ZXy=[a + b for a, b in zip(self.ZXy, other.ZXy, strict=True)],
            pairs={k: self.pairs[k] + other.pairs[k] for k in self.pairs},
            shift=self.shift,
            scale=self.scale,
            basis=self.basis,
        )

    def select(self, keep: np.ndarray) -> CrossProducts:
        """Keep the fixed-effect columns ``keep`` (indices into X); y stays last."""
        basis = None
        keep = np.asarray(keep, dtype=np.intp)
        if self.basis is None:
            idx = np.append(keep, self.G.shape[0] - 1)
        else:  # the hidden ones column stays first
            idx = np.concatenate(([0], keep + 1, [self.G.shape[0] - 1]))
            basis = self.basis[np.ix_(idx, np.append(keep, self.basis.shape[1] - 1))]
        return CrossProducts(
            n=self.n,
            sum_log_w=self.sum_log_w,
            G=self.G[np.ix_(idx, idx)],
            ZZ=self.ZZ,
            ZXy=[a[:, :, idx] for a in self.ZXy],
            pairs=self.pairs,
            shift=self.shift[idx],
            scale=self.scale[idx],
            basis=basis,
        )


def hidden_intercept_basis(shift: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``basis`` with ``[X/s, y/s_y] = [1, (X - c)/s, (y - c_y)/s_y] @ basis``."""
    m = len(shift) - 1
    basis = np.zeros((m + 1, m))
    basis[0] = shift[1:] / scale[1:]
    basis[1:] = np.eye(m)
    return basis


def shift_and_scale(Xy: np.ndarray, w: np.ndarray | None, intercept: int | None):
    """Choose the column transform on a first chunk of rows.

    With an intercept column, every other column (and y) is centred at its (weighted) mean and
    divided by its standard deviation: a unit-triangular-times-diagonal change of basis of X,
    which leaves the profiled criterion unchanged up to the known log-determinant of the
    scaling, and keeps cross-products exact when columns have large means.  Without an
    intercept, centring would change the model, so columns are only scaled.

    Parameters
    ----------
    Xy : ndarray (n, m)
    w : ndarray (n,) or None
        Prior weights.
    intercept : int or None
        Index of the intercept column in X.

    Returns
    -------
    shift, scale : ndarray (m,)
    """
    if len(Xy) > SHIFT_SAMPLE:  # a sample fixes the transform as well as all rows do
        step = len(Xy) // SHIFT_SAMPLE
        Xy = Xy[::step]
        w = None if w is None else w[::step]
    wt = np.ones(len(Xy)) if w is None else w
    total = wt.sum()
    mean = (wt @ Xy) / total
    if intercept is None:
        shift = np.zeros(Xy.shape[1])
        spread = np.sqrt((wt @ (Xy * Xy)) / total)
    else:
        shift = mean
        shift[intercept] = 0.0
        dev = Xy - shift
        spread = np.sqrt((wt @ (dev * dev)) / total)
    scale = np.where(spread > 0, spread, 1.0)
    if intercept is not None:
        scale[intercept] = 1.0
    return shift, scale


def accumulate(
    Xy: np.ndarray,
    Z: list,
    codes: list,
    J: list,
    shift,
    scale,
    sqrtw=None,
    sum_log_w: float = 0.0,
    engine: str = "auto",
) -> CrossProducts:
    """Cross-products of one chunk of rows.

    Parameters
    ----------
    Xy : ndarray (n, m)
        Raw ``[X y]`` of the chunk (transformed here, in place).
    Z : list of ndarray (n, S_k)
        Raw columns of each random term (weighted here).
    codes : list of ndarray (n,)
        Group code of every row, per term.
    J : list of int
        Number of levels per term (over all the data, not just this chunk).
    shift, scale : ndarray (m,)
        The transform fixed before the pass.
    sqrtw : ndarray (n,) or None
        Square roots of the prior weights.
    sum_log_w : float
        Sum of the log weights of the chunk.
    engine : {"auto", "numpy", "numba"}
        Kernel for the per-group sums (see :mod:`hlm.design.kernels`).
    """
    Xy -= shift
    Xy /= scale
    if sqrtw is not None:
        Xy *= sqrtw[:, None]
        Z = [z * sqrtw[:, None] for z in Z]
    n, m = Xy.shape
    G = Xy.T @ Xy
    ZZ, ZXy = [], []
    for z, c, Jk in zip(Z, codes, J, strict=True):
        zz, zx = group_sums(z, c, Jk, Xy, engine=engine)
        ZZ.append(zz)
        ZXy.append(zx)
    pairs = {}
    for k in range(len(Z)):
        for l in range(k + 1, len(Z)):
            pairs[(k, l)] = _pair(Z[k], codes[k], J[k], Z[l], codes[l], J[l])
    return CrossProducts(n, sum_log_w, G, ZZ, ZXy, pairs, shift, scale)


def _pair(zk, ck, Jk, zl, cl, Jl) -> sp.csr_matrix:
    """``Z_k' Z_l`` as a sparse matrix; duplicate (row, column) entries are summed."""
    Sk, Sl = zk.shape[1], zl.shape[1]
    out = None
    for a in range(Sk):
        for b in range(Sl):
            block = sp.coo_matrix(
                (zk[:, a] * zl[:, b], (ck * Sk + a, cl * Sl + b)), shape=(Jk * Sk, Jl * Sl)
            ).tocsr()
            out = block if out is None else out + block
    out.sum_duplicates()
    return out
