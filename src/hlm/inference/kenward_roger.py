"""Kenward-Roger adjusted covariance of the fixed effects and denominator df.

Kenward & Roger (1997), in the form of R's pbkrtest (Halekoh & Hojsgaard 2014): the
marginal covariance is linear in the variance parameters,
``V = sum_i gamma_i G_i`` with ``G_i = Z_k kron(I, E_i) Z_k'`` for each element of each term's
covariance matrix and ``G_r = I`` for the residual variance, so with
``Phi = (X'V^-1X)^-1``, ``P_i = -X'V^-1 G_i V^-1 X``, ``Q_ij = X'V^-1 G_i V^-1 G_j V^-1 X``
and ``W = 2 [tr(P~ G_i P~ G_j)]^-1`` (the inverse expected REML information),

    Phi_A = Phi + 2 Phi [sum_ij W_ij (Q_ij - P_i Phi P_j)] Phi,

and an F test of ``L beta`` gets a scaling and denominator df from ``A1`` and ``A2`` (traces
of ``Theta Phi P_i Phi`` products, ``Theta = L'(L Phi L')^-1 L``).

Nothing here is ``n x n``: with ``V = sigma^2 (I + Z Lambda Lambda' Z')``, Woodbury gives
``Z'V^-1Z``, ``Z'V^-1X``, ``X'V^-1X``, ``Z'V^-2Z``, ... from the cross-products ``K = Z'Z``,
``B = Z'X``, ``C = X'X`` and ``F = Lambda (Lambda'K Lambda + I)^-1 Lambda'`` (q x q): with
one random-effects term these are block diagonal (one block per group), otherwise dense,
and then limited to ``q <= MAX_DENSE`` random effects.  The computation runs in the
scaled columns of the cross-products; ``Phi_A`` transforms back like ``vcov(beta)``.
Kenward-Roger is defined for REML fits without prior weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hlm.linalg import batched
from hlm.results.estimates import transform_matrix

#: largest number of random effects for the dense (several-term) computation
MAX_DENSE = 4000


@dataclass(frozen=True)
class KenwardRoger:
    """Kenward-Roger ingredients at a REML fit (user's units).

    Attributes
    ----------
    vcov : ndarray (p, p)
        ``Phi``, the model-based covariance of beta.
    vcov_adjusted : ndarray (p, p)
        ``Phi_A``.
    P : list of ndarray (p, p)
    W : ndarray (g, g)
    beta : ndarray (p,)
    notes : tuple of str
    """

    vcov: np.ndarray
    vcov_adjusted: np.ndarray
    P: list
    W: np.ndarray
    beta: np.ndarray
    notes: tuple = ()

    def test(self, L: np.ndarray, beta: np.ndarray | None = None):
        """``(F, ddf, q, F_unscaled)`` of ``L beta = 0``.

        ``F`` is pbkrtest's scaled F statistic for several rows; for one row it is the
        unscaled ``t^2`` on ``Phi_A``, as in lmerTest's t tests.
        """
        L = np.atleast_2d(np.asarray(L, dtype=float))
        b = self.beta if beta is None else beta
        Phi = self.vcov
        q = int(np.linalg.matrix_rank(L))
        Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
        U = [Theta @ Phi @ P @ Phi for P in self.P]
        tr = np.array([np.trace(u) for u in U])
        A1 = float(tr @ self.W @ tr)
        A2 = float(
            sum(self.W[i, j] * np.sum(U[i] * U[j].T) for i in range(len(U)) for j in range(len(U)))
        )
        B = (A1 + 6.0 * A2) / (2.0 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        den = 3.0 * q + 2.0 * (1.0 - g)
        c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
        V0 = 1.0 + c1 * B
        V0 = 0.0 if abs(V0) < 1e-10 else V0
        V1, V2 = 1.0 - c2 * B, 1.0 - c3 * B
        x = 1.0 - A2 / q
        ratio = 1.0 if abs(x) < 1e-14 and abs(V1) < 1e-14 else x / V1
        rho = ratio**2 * V0 / V2 / q
        ddf = 4.0 + (q + 2.0) / (q * rho - 1.0)
        Lb = L @ b
        wald = float(Lb @ np.linalg.solve(L @ self.vcov_adjusted @ L.T, Lb))
        Fu = wald / q
        F = Fu
        if len(L) > 1:  # pbkrtest scales the F statistic of a joint test
            scaling = 1.0 if abs(ddf - 2.0) < 0.01 else ddf * (1.0 - A2 / q) / (ddf - 2.0)
            F = Fu * scaling
        return F, float(ddf), q, Fu


def kenward_roger(result) -> KenwardRoger:
    """Compute :class:`KenwardRoger` for a REML fit (see the module docstring)."""
    from hlm.inference._problem import model_copy

    model = result.model
    if result.method != "REML":
        raise ValueError(
            "Kenward-Roger's method is defined for REML fits; refit with method='REML'"
        )
    if model.weights_info is not None:
        raise NotImplementedError(
            "Kenward-Roger's method is not available for models with prior weights; use "
            "df='satterthwaite'"
        )
    J = [b.J for b in model.blocks]
    S = [b.S for b in model.blocks]
    q = sum(j * s for j, s in zip(J, S, strict=True))
    single = len(J) == 1
    if not single and q > MAX_DENSE:
        raise NotImplementedError(
            f"Kenward-Roger with several random-effects terms needs dense {q} x {q} matrices "
            f"(limit {MAX_DENSE}); use df='satterthwaite'"
        )
    m = model_copy(model)
    m.objective(result.theta)
    A, c = m.A, m.chol
    p = m.p
    basis = np.eye(A.G.shape[0]) if A.basis is None else A.basis
    C = (basis.T @ A.G @ basis)[:p, :p]
    lams = c.lams
    # K = Z'Z, B = Z'X (scaled model columns), Lambda
    K = _zz(A, J, S)
    B = np.vstack([(zx @ basis).reshape(j * s, -1) for zx, j, s in zip(A.ZXy, J, S, strict=True)])
    B = B[:, :p]
    Lam = sp.block_diag(
        [
            batched.block_diag_csr(np.broadcast_to(lam, (j, s, s)).copy())
            for lam, j, s in zip(lams, J, S, strict=True)
        ],
        format="csr",
    )
    M = (Lam.T @ K @ Lam).tocsr() + sp.identity(q, format="csr")
    if single:
        blocks = _blocks(M, J[0], S[0])
        Minv = batched.block_diag_csr(np.linalg.inv(blocks))
        F = (Lam @ Minv @ Lam.T).tocsr()
    else:
        F = Lam @ (Lam @ np.linalg.inv(M.toarray())).T
        F = np.asarray(F)
        K = K.toarray()
    s2 = float(c.pwrss()) / (m.n - p)  # sigma^2 in the scaled units
    KF = K @ F
    Uzz = K - KF @ K
    Uzx = B - KF @ B
    FB = F @ B
    Uxx = C - B.T @ FB
    U2xx = C - 2.0 * B.T @ FB + FB.T @ (K @ FB)
    Phi = s2 * np.linalg.inv(Uxx)
    E = _patterns(J, S)
    R = [np.asarray(Ei @ Uzx) for Ei in E]
    UzzR = [np.asarray(Uzz @ Ri) for Ri in R]
    Y = Uzz - KF @ Uzz  # (I - KF) U_zz = Z'(I - H)^2 Z
    IKF_Uzx = Uzx - KF @ Uzx
    g = len(E) + 1
    P = [-(Uzx.T @ Ri) / s2**2 for Ri in R] + [-U2xx / s2**2]
    Q = np.empty((g, g), dtype=object)
    Kt = np.empty((g, g))
    EU = [Ei @ Uzz for Ei in E]
    for i in range(g - 1):
        for j in range(i, g - 1):
            Q[i, j] = R[i].T @ UzzR[j] / s2**3
            Kt[i, j] = Kt[j, i] = _trace_product(EU[i], EU[j]) / s2**2
        Q[i, g - 1] = R[i].T @ IKF_Uzx / s2**3
        Kt[i, g - 1] = Kt[g - 1, i] = _trace_product(E[i], Y) / s2**2
    Q[g - 1, g - 1] = (U2xx - Uzx.T @ np.asarray(F @ Uzx)) / s2**3
    Kt[g - 1, g - 1] = (m.n - 2.0 * _trace_product(F, K) + _trace_product(KF, KF)) / s2**2
    for i in range(g):
        for j in range(i):
            Q[i, j] = Q[j, i].T
    IE2 = np.empty((g, g))
    for i in range(g):
        for j in range(i, g):
            IE2[i, j] = IE2[j, i] = (
                Kt[i, j] - 2.0 * np.sum(Phi * Q[i, j]) + np.sum((Phi @ P[i]) * (P[j] @ Phi))
            )
    notes = ()
    ev = np.linalg.eigvalsh(IE2)
    if np.min(np.abs(ev)) > 1e-10:
        W = 2.0 * np.linalg.inv(IE2)
    else:
        W = 2.0 * np.linalg.pinv(IE2)
        notes = ("the REML information of the variance parameters is singular (boundary fit?)",)
    U = np.zeros((p, p))
    for i in range(g):
        for j in range(g):
            U += W[i, j] * (Q[i, j] - P[i] @ Phi @ P[j])
    PhiA = Phi + 2.0 * Phi @ U @ Phi
    # back to the user's units: beta = s_y T beta_s
    names = m.fixed_names
    icol = names.index("(Intercept)") if "(Intercept)" in names else None
    T = transform_matrix(A.out_shift[:-1], A.out_scale[:-1], icol)
    sy = float(A.out_scale[-1])
    Tinv = np.linalg.inv(T)
    to_user = sy**2
    P_user = [Tinv.T @ Pi @ Tinv / to_user**2 for Pi in P]
    W_user = W * to_user**2
    return KenwardRoger(
        vcov=to_user * T @ Phi @ T.T,
        vcov_adjusted=to_user * T @ PhiA @ T.T,
        P=P_user,
        W=W_user,
        beta=result.fixef.to_numpy(),
        notes=notes,
    )


def _zz(A, J, S) -> sp.csr_matrix:
    """``Z'Z`` as a sparse q x q matrix from the per-group blocks and the pair products."""
    K = len(J)
    rows = []
    for k in range(K):
        row = []
        for l in range(K):
            if k == l:
                row.append(batched.block_diag_csr(A.ZZ[k]))
            elif k < l:
                row.append(A.pairs[(k, l)])
            else:
                row.append(A.pairs[(l, k)].T)
        rows.append(row)
    return sp.bmat(rows, format="csr")


def _blocks(M, J: int, S: int) -> np.ndarray:
    """The (J, S, S) diagonal blocks of a block-diagonal sparse matrix."""
    D = M.toarray() if J * S <= 64 else None
    if D is not None:
        return np.stack([D[g * S : (g + 1) * S, g * S : (g + 1) * S] for g in range(J)])
    out = np.zeros((J, S, S))
    coo = M.tocoo()
    g = coo.row // S
    out[g, coo.row % S, coo.col % S] = coo.data
    return out


def _patterns(J, S) -> list:
    """``kron(I, E)`` for every covariance element (a <= b) of every term, as sparse q x q."""
    q = sum(j * s for j, s in zip(J, S, strict=True))
    out = []
    offset = 0
    for Jk, Sk in zip(J, S, strict=True):
        for c in range(Sk):
            for r in range(c, Sk):
                base = offset + np.arange(Jk) * Sk
                if r == c:
                    rows, cols = base + r, base + r
                else:
                    rows = np.concatenate((base + r, base + c))
                    cols = np.concatenate((base + c, base + r))
                out.append(sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(q, q)))
        offset += Jk * Sk
    return out


def _trace_product(X, Y) -> float:
    """``tr(X Y)`` for sparse or dense square matrices."""
    if sp.issparse(X):
        return float(X.multiply(Y.T).sum())
    if sp.issparse(Y):
        return float(Y.multiply(X.T).sum())
    return float(np.sum(X * Y.T))
