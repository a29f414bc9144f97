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
from scipy.linalg import lapack

from hlm.compiled import group_kernels
from hlm.design.covariance import CovarianceStructure
from hlm.design.crossprod import CrossProducts
from hlm.errors import DataError
from hlm.linalg import batched
from hlm.linalg.pairs import PairProduct

_ONE_TERM_KERNELS = []


def one_term_kernels():
    """The fused compiled evaluation of one-term models (:mod:`hlm.linalg._numba_one_term`).

    None whenever :func:`group_kernels` is None (no numba, or ``HLM_NUMBA=0``).
    """
    if group_kernels() is None:
        return None
    if not _ONE_TERM_KERNELS:
        try:
            from hlm.linalg import _numba_one_term as module
        except ImportError:
            module = None
        _ONE_TERM_KERNELS.append(module)
    return _ONE_TERM_KERNELS[0]


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
        self.m_acc = A.G.shape[0]  # columns of [X y] as accumulated
        self.basis = A.basis  # maps them to the model's columns (None: the same)
        self.m = self.m_acc if A.basis is None else A.basis.shape[1]
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
        self._parts = None

    # ---------------------------------------------------------------- static parts
    def _init_rest(self) -> None:
        A, m = self.A, self.m_acc
        self.A_1r = sp.hstack([A.pairs[(0, k)] for k in range(1, self.K)], format="csr")
        self.A_1r_T = self.A_1r.T.tocsr()
        self.fill = PairProduct(self.A_1r, self.J[0], self.S[0])
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
        self.rest_scalar = all(self.S[k] == 1 for k in range(1, self.K))

    def _Lambda_rest(self, lams) -> sp.csr_matrix:
        blocks = [
            batched.block_diag_csr(np.broadcast_to(lams[k], (self.J[k], self.S[k], self.S[k])))
            for k in range(1, self.K)
        ]
        return sp.block_diag(blocks, format="csr")

    def _lambda_rest_diag(self, lams) -> np.ndarray:
        return np.concatenate([np.full(self.J[k], lams[k][0, 0]) for k in range(1, self.K)])

    # ---------------------------------------------------------------- per theta
    def update(self, theta: np.ndarray) -> bool:
        """Factor for ``theta``; returns False when the Schur complement is not positive."""
        self._parts = None
        if self.fused:
            return self._update_fused(theta)
        A = self.A
        lams = self.cov.lambdas(theta)
        self.lams = lams
        self._Wr = None
        lam1 = lams[0]
        kernels = group_kernels() if self.K == 1 else None
        if kernels is not None:  # one compiled loop over the groups (see _numba_groups)
            J1, S1 = self.J[0], self.S[0]
            self.L1 = np.empty((J1, S1, S1))
            W1 = np.empty((J1, S1, self.m_acc))
            logdet_1 = kernels.factor_groups(lam1, A.ZZ[0], A.ZXy[0], self.L1, W1)
        elif self.S[0] == 1:  # scalar term: everything is elementwise
            l1 = lam1[0, 0]
            M1 = (l1 * l1) * A.ZZ[0] + 1.0
            self.L1 = np.sqrt(M1)
            W1 = (l1 * A.ZXy[0]) / self.L1
        elif self.S[0] == 2:
            M1, W1 = self._update_two(lam1)
        else:
            M1 = lam1.T @ A.ZZ[0] @ lam1
            M1 = M1 + np.eye(self.S[0])
            self.L1 = batched.cholesky(M1)
            W1 = batched.solve_lower(self.L1, lam1.T @ A.ZXy[0])  # (J1, S1, m)
        self.W1 = W1
        W1f = W1.reshape(self.q[0], self.m_acc)
        S = A.G - W1f.T @ W1f
        if kernels is not None:
            logdet = logdet_1
        else:
            logdet = 2.0 * np.log(np.abs(np.diagonal(self.L1, axis1=1, axis2=2))).sum()
        if self.K > 1:
            # P1_g = L_g^{-1} lambda1'; the fill-in is A_1r' (P1' P1) A_1r
            P1 = batched.solve_lower(self.L1, np.broadcast_to(lam1.T, M1.shape).copy())
            B = np.swapaxes(P1, 1, 2) @ P1
            R = self.A_rr - self.fill(B)
            V = self.A_rx - self.A_1r_T @ (np.swapaxes(P1, 1, 2) @ W1).reshape(
                self.q[0], self.m_acc
            )
            if self.rest_scalar:
                lr = self._lambda_rest_diag(lams)
                C = R * np.outer(lr, lr)
                Vrx = lr[:, None] * V
            else:
                Lam_r = self._Lambda_rest(lams)
                C = np.asarray(Lam_r.T @ (Lam_r.T @ R).T)
                Vrx = np.asarray(Lam_r.T @ V)
            C[np.diag_indices_from(C)] += 1.0
            Lrr, info = lapack.dpotrf(C, lower=1, clean=1, overwrite_a=1)
            if info != 0:
                self.ok = False
                return False
            Wrx, info = lapack.dtrtrs(Lrr, Vrx, lower=1)
            S = S - Wrx.T @ Wrx
            logdet += 2.0 * np.log(np.abs(np.diag(Lrr))).sum()
            self.Lrr, self.Wrx, self.P1 = Lrr, Wrx, P1
        self.S_acc = S
        Lxx, info = lapack.dpotrf(self.schur_model(), lower=1, clean=1)
        if info != 0:
            self.ok = False
            return False
        self.Lxx = Lxx
        self.logdet_Z = logdet
        self.ok = True
        return True

    @property
    def fused(self) -> bool:
        """True when updates run as one compiled call (one term, columns as accumulated)."""
        return self.K == 1 and self.basis is None and one_term_kernels() is not None

    def _update_fused(self, theta: np.ndarray) -> bool:
        """One term, model columns as accumulated: the whole update in one compiled call.

        Fresh arrays every time: results computed at one theta may keep references to them.
        """
        A = self.A
        J1, S1, m = self.J[0], self.S[0], self.m_acc
        lam = np.empty((S1, S1))
        self.L1 = np.empty((J1, S1, S1))
        self.W1 = np.empty((J1, S1, m))
        self.S_acc = np.empty((m, m))
        Lxx = np.empty((m, m), order="F")  # LAPACK's layout, as the other path gives
        ok, logdet_Z, logdet_X, r2 = one_term_kernels().factor_one_term(
            theta, self.cov.rows[0], self.cov.cols[0], lam, A.ZZ[0], A.ZXy[0], A.G,
            self.L1, self.W1, self.S_acc, Lxx,
        )
        self.lams = [lam]
        self._Wr = None
        self.ok = bool(ok)
        if not ok:
            return False
        self.Lxx = Lxx
        self.logdet_Z = logdet_Z
        #: (logdet_X, pwrss) from the compiled call; None after the NumPy path
        self._parts = (logdet_X, r2)
        return True

    def _update_two(self, lam1):
        """Closed forms for a first term with two columns (intercept and slope, typically).

        Elementwise arithmetic on length-J vectors beats batched 2 x 2 matrix products.
        """
        if not hasattr(self, "_zz2"):
            ZZ, ZXy = self.A.ZZ[0], self.A.ZXy[0]
            self._zz2 = (ZZ[:, 0, 0].copy(), ZZ[:, 0, 1].copy(), ZZ[:, 1, 1].copy())
            self._zx2 = (np.ascontiguousarray(ZXy[:, 0, :]), np.ascontiguousarray(ZXy[:, 1, :]))
        z00, z01, z11 = self._zz2
        X0, X1 = self._zx2
        a, b, c = lam1[0, 0], lam1[1, 0], lam1[1, 1]
        T00, T10 = z00 * a + z01 * b, z01 * a + z11 * b
        T11 = z11 * c
        M00 = a * T00 + b * T10 + 1.0
        M01 = a * (z01 * c) + b * T11
        M11 = c * T11 + 1.0
        l11 = np.sqrt(M00)
        l21 = M01 / l11
        l22 = np.sqrt(M11 - l21 * l21)
        J = len(l11)
        L = np.zeros((J, 2, 2))
        L[:, 0, 0], L[:, 1, 0], L[:, 1, 1] = l11, l21, l22
        self.L1 = L
        W = np.empty((J, 2, self.m_acc))
        W0 = (a * X0 + b * X1) / l11[:, None]
        W[:, 0, :] = W0
        W[:, 1, :] = (c * X1 - l21[:, None] * W0) / l22[:, None]
        M = np.empty((J, 2, 2))
        M[:, 0, 0], M[:, 0, 1], M[:, 1, 0], M[:, 1, 1] = M00, M01, M01, M11
        return M, W

    @property
    def Wr(self) -> sp.csr_matrix:
        """``L_1^{-1} Lambda_1' A_1r Lambda_r`` (sparse, q1 x qr), formed on demand."""
        if self._Wr is None:
            Lam_r = self._Lambda_rest(self.lams)
            self._Wr = (batched.block_diag_csr(self.P1) @ self.A_1r @ Lam_r).tocsr()
        return self._Wr

    # ---------------------------------------------------------------- read-outs
    def schur_model(self) -> np.ndarray:
        """The Schur complement of the random effects in ``[X y]'[X y]``, model columns."""
        if self.basis is None:
            return self.S_acc
        return self.basis.T @ self.S_acc @ self.basis

    @property
    def p(self) -> int:
        """Number of fixed-effect columns."""
        return self.m - 1

    def logdet_X(self) -> float:
        """``log det(R_X' R_X)`` in the transformed columns."""
        if self._parts is not None:
            return self._parts[0]
        d = np.diag(self.Lxx)[: self.p]
        return 2.0 * np.log(np.abs(d)).sum()

    def pwrss(self) -> float:
        """Penalised weighted residual sum of squares (transformed y units)."""
        if self._parts is not None:
            return self._parts[1]
        if self.basis is None:
            return float(self.Lxx[-1, -1] ** 2)
        # Without an intercept the model's columns are far from centred and Lxx[-1, -1]
        # comes out of a cancellation; the quadratic form in the centred accumulation basis
        # at beta hat is accurate, and stationary in beta, so beta's own error hardly counts.
        v = self.basis @ np.append(-self.beta(), 1.0)
        return float(v @ self.S_acc @ v)

    def beta(self) -> np.ndarray:
        """Fixed effects in the transformed columns."""
        p = self.p
        if p == 0:
            return np.zeros(0)
        # R_X beta = Lxx[p, :p] with R_X = Lxx[:p, :p]': LAPACK directly (this runs at every
        # evaluation of the gradient; scipy's wrapper costs more than the solve here)
        beta, info = lapack.dtrtrs(self.Lxx[:p, :p], self.Lxx[p, :p], lower=1, trans=1)
        return beta

    def RX_inv(self) -> np.ndarray:
        """``R_X^{-1}`` (upper triangular, p x p) with ``R_X = Lxx[:p,:p]'``."""
        p = self.p
        # LAPACK directly: scipy's solve_triangular costs 30-500 us on a 3 x 3 slice
        Linv, info = lapack.dtrtri(self.Lxx[:p, :p], lower=1)
        return np.triu(Linv.T)

    def W1_model(self) -> np.ndarray:
        """``W1`` in the model's columns, shape (J1, S1, p + 1)."""
        return self.W1 if self.basis is None else self.W1 @ self.basis

    def u(self, beta: np.ndarray) -> list[np.ndarray]:
        """Spherical random effects per term, shape (J_k, S_k), transformed y units."""
        p = self.p
        out_rest = []
        W1 = self.W1_model()
        if self.K > 1:
            Wrx = self.Wrx if self.basis is None else self.Wrx @ self.basis
            r = Wrx[:, p] - Wrx[:, :p] @ beta
            ur = la.solve_triangular(self.Lrr.T, r, lower=False, check_finite=False)
            r1 = W1[:, :, p] - W1[:, :, :p] @ beta
            r1 = r1 - (self.Wr @ ur).reshape(self.J[0], self.S[0])
            for i, k in enumerate(range(1, self.K)):
                o = self.rest_offsets[i]
                out_rest.append(ur[o : o + self.q[k]].reshape(self.J[k], self.S[k]))
        else:
            r1 = W1[:, :, p] - W1[:, :, :p] @ beta
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
            Lrr_inv = la.solve_triangular(self.Lrr, np.eye(self.qr), lower=True, check_finite=False)
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
