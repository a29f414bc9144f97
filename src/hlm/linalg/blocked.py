"""The blocked Cholesky factor of the penalised cross-product matrix.

For relative covariance factor ``Lambda(theta)`` the matrix

    [ Lambda' Z'Z Lambda + I    Lambda' Z'[X y] ]
    [ [X y]' Z Lambda            [X y]'[X y]     ]

is factored as ``L L'`` block by block.  The first random-effects term (the one with most
levels) gives a block-diagonal leading block: one S x S Cholesky per group, done in a batch.
The other terms ("rest", few levels in total) form a dense block that absorbs the fill-in
from crossing with the first term.  The last block is the (p + 1) x (p + 1) factor of the
Schur complement of the random effects in ``[X y]'[X y]``: its last diagonal element is the
root of the penalised residual sum of squares and its leading part is ``R_X``.
Nothing here depends on the number of rows.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from hlm.design.covariance import CovarianceStructure
from hlm.design.crossprod import CrossProducts
from hlm.errors import DataError
from hlm.linalg import batched

#: largest dense "rest" block (sum of J_k S_k over the terms after the first) we form
MAX_DENSE_REST = 30_000


class BlockedCholesky:
    """Holds the static blocks of ``A`` and updates ``L`` for a given theta.

    Parameters
    ----------
    A : CrossProducts
        Statistics with terms already in theta order.
    cov : CovarianceStructure
    """

    def __init__(self, A: CrossProducts, cov: CovarianceStructure):
        self.A = A
        self.cov = cov
        self.m = A.G.shape[0]
        self.K = len(A.ZZ)
        self.J = [zz.shape[0] for zz in A.ZZ]
        self.S = [zz.shape[1] for zz in A.ZZ]
        self.q = [j * s for j, s in zip(self.J, self.S, strict=True)]
        self.qr = sum(self.q[1:])
        if self.qr > MAX_DENSE_REST:
            need = self.qr**2 * 8 / 2**30
            raise DataError(
                f"the grouping factors after the first have {self.qr} random effects in total; "
                f"their dense block would need {need:.1f} GiB. Put the factor with most levels "
                "first or reduce the number of levels of the others"
            )
        self.rest_offsets = np.cumsum([0] + self.q[1:])
        if self.K > 1:
            self._init_rest()
        self.ok = False

    # ---------------------------------------------------------------- static parts
    def _init_rest(self) -> None:
        A, m = self.A, self.m
        self.A_1r = sp.hstack([A.pairs[(0, k)] for k in range(1, self.K)], format="csr")
        Arr = np.zeros((self.qr, self.qr))
        for i, k in enumerate(range(1, self.K)):
            o = self.rest_offsets[i]
            Arr[o : o + self.q[k], o : o + self.q[k]] = la.block_diag(*A.ZZ[k])
            for j, l in enumerate(range(k + 1, self.K), start=i + 1):
                ol = self.rest_offsets[j]
                block = A.pairs[(k, l)].toarray()
                Arr[o : o + self.q[k], ol : ol + self.q[l]] = block
                Arr[ol : ol + self.q[l], o : o + self.q[k]] = block.T
        self.A_rr = Arr
        self.A_rx = np.vstack([A.ZXy[k].reshape(self.q[k], m) for k in range(1, self.K)])

    def _Lambda_rest(self, lams) -> sp.csr_matrix:
        blocks = [
            batched.block_diag_csr(np.broadcast_to(lams[k], (self.J[k], self.S[k], self.S[k])))
            for k in range(1, self.K)
        ]
        return sp.block_diag(blocks, format="csr")

    # ---------------------------------------------------------------- per theta
    def update(self, theta: np.ndarray) -> bool:
        """Factor for ``theta``; returns False when the Schur complement is not positive."""
        A = self.A
        lams = self.cov.lambdas(theta)
        self.lams = lams
        lam1 = lams[0]
        M1 = lam1.T @ A.ZZ[0] @ lam1
        M1 = M1 + np.eye(self.S[0])
        self.L1 = batched.cholesky(M1)
        W1 = batched.solve_lower(self.L1, lam1.T @ A.ZXy[0])  # (J1, S1, m)
        self.W1 = W1
        W1f = W1.reshape(self.q[0], self.m)
        S = A.G - W1f.T @ W1f
        logdet = 2.0 * np.log(np.abs(np.diagonal(self.L1, axis1=1, axis2=2))).sum()
        if self.K > 1:
            P = batched.inverse_lower(self.L1) @ lam1.T  # L1^{-1} lambda1' per group
            Lam_r = self._Lambda_rest(lams)
            Wr = (batched.block_diag_csr(P) @ self.A_1r @ Lam_r).tocsr()
            C = Lam_r.T @ (Lam_r.T @ self.A_rr).T
            C -= (Wr.T @ Wr).toarray()
            C[np.diag_indices_from(C)] += 1.0
            try:
                Lrr = la.cholesky(C, lower=True, check_finite=False)
            except la.LinAlgError:
                self.ok = False
                return False
            Vrx = Lam_r.T @ self.A_rx - Wr.T @ W1f
            Wrx = la.solve_triangular(Lrr, Vrx, lower=True, check_finite=False)
            S = S - Wrx.T @ Wrx
            logdet += 2.0 * np.log(np.abs(np.diag(Lrr))).sum()
            self.Wr, self.Lrr, self.Wrx, self.Lam_r = Wr, Lrr, Wrx, Lam_r
        try:
            self.Lxx = la.cholesky(S, lower=True, check_finite=False)
        except la.LinAlgError:
            self.ok = False
            return False
        self.logdet_Z = logdet
        self.ok = True
        return True

    # ---------------------------------------------------------------- read-outs
    @property
    def p(self) -> int:
        """Number of fixed-effect columns."""
        return self.m - 1

    def logdet_X(self) -> float:
        """``log det(R_X' R_X)`` in the transformed columns."""
        d = np.diag(self.Lxx)[: self.p]
        return 2.0 * np.log(np.abs(d)).sum()

    def pwrss(self) -> float:
        """Penalised weighted residual sum of squares (transformed y units)."""
        return float(self.Lxx[-1, -1] ** 2)

    def beta(self) -> np.ndarray:
        """Fixed effects in the transformed columns."""
        p = self.p
        return la.solve_triangular(self.Lxx[:p, :p].T, self.Lxx[p, :p], lower=False)

    def RX_inv(self) -> np.ndarray:
        """``R_X^{-1}`` (upper triangular, p x p) with ``R_X = Lxx[:p,:p]'``."""
        p = self.p
        return la.solve_triangular(self.Lxx[:p, :p].T, np.eye(p), lower=False)

    def u(self, beta: np.ndarray) -> list[np.ndarray]:
        """Spherical random effects per term, shape (J_k, S_k), transformed y units."""
        p = self.p
        out_rest = []
        if self.K > 1:
            r = self.Wrx[:, p] - self.Wrx[:, :p] @ beta
            ur = la.solve_triangular(self.Lrr.T, r, lower=False)
            r1 = self.W1[:, :, p] - self.W1[:, :, :p] @ beta
            r1 = r1 - (self.Wr @ ur).reshape(self.J[0], self.S[0])
            for i, k in enumerate(range(1, self.K)):
                o = self.rest_offsets[i]
                out_rest.append(ur[o : o + self.q[k]].reshape(self.J[k], self.S[k]))
        else:
            r1 = self.W1[:, :, p] - self.W1[:, :, :p] @ beta
        u1 = batched.solve_upper_t(self.L1, r1[:, :, None])[:, :, 0]
        return [u1] + out_rest

    def conditional_variances(self) -> list[np.ndarray]:
        """Diagonal blocks of ``(L_Z L_Z')^{-1}`` per term, shape (J_k, S_k, S_k).

        Multiplied by ``sigma^2 lambda ... lambda'`` these are the conditional variances of
        the random effects given beta (lme4's ``condVar``).
        """
        L1inv = batched.inverse_lower(self.L1)
        V1 = np.swapaxes(L1inv, 1, 2) @ L1inv
        out = [V1]
        if self.K > 1:
            Lrr_inv = la.solve_triangular(self.Lrr, np.eye(self.qr), lower=True)
            Vrr = Lrr_inv.T @ Lrr_inv
            # extra term of the first block: (L1^{-T} Wr Lrr^{-T}) (...)'
            T = (self.Wr @ Lrr_inv.T).reshape(self.J[0], self.S[0], self.qr)
            T = batched.solve_upper_t(self.L1, T)
            out[0] = V1 + T @ np.swapaxes(T, 1, 2)
            for i, k in enumerate(range(1, self.K)):
                o = self.rest_offsets[i]
                J, S = self.J[k], self.S[k]
                blk = Vrr[o : o + J * S, o : o + J * S].reshape(J, S, J, S)
                out.append(np.einsum("gagb->gab", blk))
        return out
