"""Relative covariance factors: from the packed ``theta`` to each term's ``lambda``.

A random-effects term with ``S`` columns has covariance ``Sigma = sigma^2 lambda lambda'``
where ``lambda`` is lower triangular; ``theta`` packs the lower triangles of all terms
column by column, in lme4's term order.  The diagonal of each ``lambda`` is bounded below by
zero, the off-diagonal elements are free.
"""

from __future__ import annotations

import numpy as np


class CovarianceStructure:
    """The map between ``theta`` and the per-term factors ``lambda_k``.

    Parameters
    ----------
    sizes : sequence of int
        ``S_k``, the number of columns of each term, in theta order.
    """

    def __init__(self, sizes):
        self.sizes = [int(s) for s in sizes]
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.slices: list[slice] = []
        start = 0
        for S in self.sizes:
            # column-wise lower triangle, as lme4 packs theta: (0,0), (1,0), ..., (1,1), ...
            pairs = [(r, c) for c in range(S) for r in range(c, S)]
            r = np.array([p[0] for p in pairs], dtype=np.intp)
            c = np.array([p[1] for p in pairs], dtype=np.intp)
            self.rows.append(r)
            self.cols.append(c)
            k = S * (S + 1) // 2
            self.slices.append(slice(start, start + k))
            start += k
        self.ntheta = start

    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        """``lambda_k`` (S_k x S_k, lower triangular) for every term."""
        out = []
        for S, r, c, sl in zip(self.sizes, self.rows, self.cols, self.slices, strict=True):
            lam = np.zeros((S, S))
            lam[r, c] = theta[sl]
            out.append(lam)
        return out

    def pack(self, lambdas) -> np.ndarray:
        """Inverse of :meth:`lambdas`."""
        theta = np.empty(self.ntheta)
        for lam, r, c, sl in zip(lambdas, self.rows, self.cols, self.slices, strict=True):
            theta[sl] = lam[r, c]
        return theta

    def lower_bounds(self) -> np.ndarray:
        """0 for diagonal elements of each lambda, -inf for the others."""
        lb = np.full(self.ntheta, -np.inf)
        for r, c, sl in zip(self.rows, self.cols, self.slices, strict=True):
            lb[sl] = np.where(r == c, 0.0, -np.inf)
        return lb

    def start(self) -> np.ndarray:
        """lme4's starting value: identity factors."""
        return np.where(np.isfinite(self.lower_bounds()), 1.0, 0.0)

    def diagonal_mask(self) -> np.ndarray:
        """True where theta is a diagonal element of some lambda."""
        return np.isfinite(self.lower_bounds())
