"""A blocked Cholesky factor of the mixed-model equations, kept whole for second derivatives.

The profiled engine's factor (:mod:`hlm.linalg.blocked`) keeps what the criterion needs.
Fisher scoring and the information matrix need more: the blocks of ``Z'PZ`` (P the
REML/ML projection), which are built from the pieces kept here.  With ``V0 = I + Z Lambda
Lambda' Z'`` (the marginal covariance over sigma^2),

    Omega = [[Lambda'Z'Z Lambda + I, Lambda'Z'[X y]], [[X y]'Z Lambda, [X y]'[X y]]] = L L'

is factored by blocks: term 1 (the term with most levels, block diagonal, one S1 x S1
factor per group), the other terms ("rest", dense), then [X y].  Everything comes from
the cross-products of :class:`hlm.design.crossprod.CrossProducts`; nothing depends on n.
All quantities are in cross-product units (the response divided by ``s_y``) and in the
model's columns (``A.basis`` applied).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from hlm.errors import DataError

#: largest dense q1 x r array (term-1 effects by rest-plus-X columns) formed for Z'PZ
MAX_DENSE_ENTRIES = 60_000_000


def _block_diag(blocks: np.ndarray) -> sp.csr_matrix:
    """Sparse block diagonal of a stack of equal square blocks, shape (J, S, S)."""
    J, S, _ = blocks.shape
    rows = np.repeat(np.arange(J * S).reshape(J, S), S, axis=1).reshape(-1)
    cols = np.tile(np.arange(J * S).reshape(J, 1, S), (1, S, 1)).reshape(-1)
    return sp.csr_matrix((blocks.reshape(-1), (rows, cols)), shape=(J * S, J * S))


def _solve_lower(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Batched ``L^{-1} B`` for lower-triangular ``L`` (J, S, S), B (J, S, c)."""
    if L.shape[1] == 1:
        return B / L
    return np.linalg.solve(L, B)


def _solve_upper_t(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Batched ``L^{-T} B``."""
    if L.shape[1] == 1:
        return B / L
    return np.linalg.solve(np.swapaxes(L, 1, 2), B)


class Omega:
    """The factor of ``Omega`` at ``theta`` with the solves the engines need.

    Parameters
    ----------
    model : LinearMixedModel
    theta : ndarray

    Attributes
    ----------
    ok : bool
        False when a Schur complement was not positive definite (theta infeasible).
    beta : ndarray (p,)
        GLS fixed effects (transformed columns).
    u : list of ndarray (J_k, S_k)
        Spherical conditional modes; ``b_k = u_k lambda_k'``.
    pwrss : float
        Penalised residual sum of squares.
    logdet_Z, logdet_X : float
        ``log det(Lambda'Z'Z Lambda + I)`` and ``log det(R_X R_X')`` (transformed columns).
    """

    def __init__(self, model, theta: np.ndarray):
        A = model.A
        self.model = model
        self.lams = model.cov.lambdas(np.asarray(theta, dtype=float))
        basis = A.basis
        self.ZXy = [z if basis is None else z @ basis for z in A.ZXy]
        self.G = A.model_G()
        self.m = self.G.shape[0]
        self.p = self.m - 1
        self.K = len(A.ZZ)
        self.J = [zz.shape[0] for zz in A.ZZ]
        self.S = [zz.shape[1] for zz in A.ZZ]
        self.q = [j * s for j, s in zip(self.J, self.S, strict=True)]
        self.q1, self.qr = self.q[0], sum(self.q[1:])
        self.offsets = np.cumsum([0] + self.q[1:])  # of each rest term inside the rest block
        self.ok = self._factor(A)

    # ---------------------------------------------------------------- factor
    def _factor(self, A) -> bool:
        lam1 = self.lams[0]
        B = A.ZZ[0]
        self.B1 = B
        C = lam1.T @ B @ lam1 + np.eye(self.S[0])
        try:
            self.L1 = np.linalg.cholesky(C)
        except np.linalg.LinAlgError:
            return False
        self.P1 = _solve_lower(self.L1, np.broadcast_to(lam1.T, C.shape).copy())  # L^-1 lam'
        self.W1 = self.P1 @ self.ZXy[0]  # (J1, S1, m)
        self.Phi = self.P1 @ B  # (J1, S1, S1): L_g^-1 lam' Z_g'Z_g
        W1f = self.W1.reshape(self.q1, self.m)
        Sxy = self.G - W1f.T @ W1f
        self.logdet_Z = 2.0 * float(np.log(np.abs(np.diagonal(self.L1, 0, 1, 2))).sum())
        if self.K > 1:
            self._factor_rest(A, W1f)
            Sxy = Sxy - self.Wrx.T @ self.Wrx
        try:
            self.Lxx = la.cholesky(Sxy, lower=True)
        except la.LinAlgError:
            return False
        p = self.p
        self.RX = self.Lxx[:p, :p]
        self.logdet_X = 2.0 * float(np.log(np.abs(np.diag(self.RX))).sum())
        self.pwrss = float(self.Lxx[p, p] ** 2)
        self.beta = la.solve_triangular(self.RX.T, self.Lxx[p, :p], lower=False)
        self._modes()
        return True

    def _factor_rest(self, A, W1f) -> None:
        K, m = self.K, self.m
        A1r = sp.hstack([A.pairs[(0, k)] for k in range(1, K)], format="csr")
        Arr = np.zeros((self.qr, self.qr))
        for i, k in enumerate(range(1, K)):
            o = self.offsets[i]
            Arr[o : o + self.q[k], o : o + self.q[k]] = la.block_diag(*A.ZZ[k])
            for j, l in enumerate(range(k + 1, K), start=i + 1):
                ol = self.offsets[j]
                blk = A.pairs[(k, l)].toarray()
                Arr[o : o + self.q[k], ol : ol + self.q[l]] = blk
                Arr[ol : ol + self.q[l], o : o + self.q[k]] = blk.T
        Arx = np.vstack([self.ZXy[k].reshape(self.q[k], m) for k in range(1, K)])
        self.A1r = A1r
        self.Psi = (_block_diag(self.P1) @ A1r).tocsr()  # L1^-1 Lam1' A_1r
        self.Nrr = Arr - (self.Psi.T @ self.Psi).toarray()  # Z_r' V1^-1 Z_r
        Nrx = Arx - self.Psi.T @ W1f
        self.Lam_r = sp.block_diag(
            [sp.kron(sp.identity(self.J[k]), sp.csr_matrix(self.lams[k])) for k in range(1, K)],
            format="csr",
        )
        LrT = self.Lam_r.T
        C = np.asarray((LrT @ (LrT @ self.Nrr).T).T)
        C[np.diag_indices_from(C)] += 1.0
        self.Lrr = la.cholesky(C, lower=True)
        self.Wrx = la.solve_triangular(self.Lrr, np.asarray(LrT @ Nrx), lower=True)
        self.logdet_Z += 2.0 * float(np.log(np.abs(np.diag(self.Lrr))).sum())

    def _modes(self) -> None:
        p = self.p
        beta = self.beta
        r1 = self.W1[:, :, p] - self.W1[:, :, :p] @ beta  # (J1, S1)
        self.u = []
        if self.K > 1:
            rr = self.Wrx[:, p] - self.Wrx[:, :p] @ beta
            ur = la.solve_triangular(self.Lrr.T, rr, lower=False)
            r1 = r1 - (self.Psi @ (self.Lam_r @ ur)).reshape(self.J[0], self.S[0])
        self.u.append(_solve_upper_t(self.L1, r1[:, :, None])[:, :, 0])
        if self.K > 1:
            for i, k in enumerate(range(1, self.K)):
                o = self.offsets[i]
                self.u.append(ur[o : o + self.q[k]].reshape(self.J[k], self.S[k]))

    # ---------------------------------------------------------------- read-outs
    def b(self) -> list[np.ndarray]:
        """Conditional modes ``b_k = lambda_k u_k`` per term, shape (J_k, S_k)."""
        return [u @ lam.T for u, lam in zip(self.u, self.lams, strict=True)]

    def Zt_residual(self) -> list[np.ndarray]:
        """``Z_k' (y - X beta - Z b)`` per term, shape (J_k, S_k), from the cross-products."""
        A, p = self.model.A, self.p
        coef = np.append(-self.beta, 1.0)
        b = self.b()
        out = []
        for k in range(self.K):
            zr = self.ZXy[k] @ coef - np.einsum("gst,gt->gs", A.ZZ[k], b[k])
            for l in range(self.K):
                if l == k:
                    continue
                pair = A.pairs[(k, l)] if k < l else A.pairs[(l, k)].T
                zr = zr - (pair @ b[l].reshape(-1)).reshape(self.J[k], self.S[k])
            out.append(zr)
        del p
        return out

    def residual_ss(self) -> float:
        """``|y - X beta - Z b|^2 = pwrss - |u|^2``."""
        return self.pwrss - float(sum((u * u).sum() for u in self.u))

    # ---------------------------------------------------------------- Z'PZ
    def zpz_parts(self, reml: bool):
        """The pieces of ``M0 = Z' P0 Z`` (P0 the projection of V0, sigma^2 = 1).

        ``M0 = Z'V1^{-1}Z - R'R``, where V1 is V0 without the rest terms, and R (r x q) has
        the rows of ``L^{-1}`` for the rest terms and, for REML, for X.  Returns

        * ``Bd`` (J1, S1, S1): diagonal blocks of ``Z_1'V1^{-1}Z_1`` (it is block diagonal);
        * ``N1r`` (sparse q1 x qr): ``Z_1'V1^{-1}Z_r``; ``Nrr`` (qr x qr): ``Z_r'V1^{-1}Z_r``;
        * ``U`` (q1 x r) = ``R[:, term 1]'`` and ``Rr`` (r x qr) = ``R[:, rest]``.
        """
        p = self.p
        J1, S1 = self.J[0], self.S[0]
        Bd = self.B1 - np.swapaxes(self.Phi, 1, 2) @ self.Phi
        X1 = self.ZXy[0][:, :, :p]  # Z_1'X per group (J1, S1, p)
        W1x = self.W1[:, :, :p]
        r = self.qr + (p if reml else 0)
        if self.q1 * max(r, 1) > MAX_DENSE_ENTRIES:
            raise DataError(
                f"the information matrix of the variance components needs a {self.q1} x {r} "
                "dense array for this model, beyond the size hlm forms; standard errors of "
                "the variance components are not available for it"
            )
        U = np.zeros((self.q1, r))
        Rr = np.zeros((r, self.qr))
        N1r = Nrr = None
        if self.K > 1:
            # N1r = A_1r - blockdiag(Phi') Psi
            N1r = (self.A1r - _block_diag(np.swapaxes(self.Phi, 1, 2).copy()) @ self.Psi).tocsr()
            Nrr = self.Nrr
            LrT = self.Lam_r.T
            Fr1 = la.solve_triangular(self.Lrr, np.asarray(LrT @ N1r.T.toarray()), lower=True)
            Frr = la.solve_triangular(self.Lrr, np.asarray(LrT @ Nrr), lower=True)
            U[:, : self.qr] = Fr1.T
            Rr[: self.qr] = Frr
        if reml:
            # F_x = RX^{-1} (X'Z - W1x' F1 - Wrx' F_r): columns of term 1, then rest
            Fx1 = np.swapaxes(X1, 1, 2) - np.swapaxes(W1x, 1, 2) @ self.Phi  # (J1, p, S1)
            Fx1 = np.swapaxes(Fx1, 0, 1).reshape(p, self.q1)
            if self.K > 1:
                Wrx = self.Wrx[:, :p]
                Fx1 = Fx1 - Wrx.T @ U[:, : self.qr].T
                Xr = np.vstack(
                    [self.ZXy[k][:, :, :p].reshape(self.q[k], p) for k in range(1, self.K)]
                )
                Fxr = (
                    Xr.T
                    - np.asarray(self.Psi.T @ W1x.reshape(self.q1, p)).T
                    - Wrx.T @ Rr[: self.qr]
                )
                Rr[self.qr :] = la.solve_triangular(self.RX, Fxr, lower=True)
            U[:, self.qr :] = la.solve_triangular(self.RX, Fx1, lower=True).T
        del J1, S1
        return Bd, N1r, Nrr, U, Rr
