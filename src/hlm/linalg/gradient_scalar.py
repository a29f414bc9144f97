"""Analytic gradient of the profiled criterion when every random-effects term is scalar.

Scalar terms (``(1 | g)``, ``(1 | a:b)``, ``(0 + x | g)``), crossed or nested, give
``Lambda = sum_k theta_k P_k`` with ``P_k`` the projection on term k's random effects.  With
``M = Lambda' Z'Z Lambda + I = L L'``, ``u`` the spherical random effects at beta hat,
``r^2`` the penalised residual sum of squares and ``H = M^{-1} Lambda' Z'X``:

    d log|M|          / d theta_k = (2 / theta_k) (J_k - tr_k(M^{-1}))
    d r^2             / d theta_k = -(2 / theta_k) ||u_k||^2
    d log|R_X' R_X|   / d theta_k = -(2 / theta_k) ||H_k R_X^{-1}||_F^2

(``tr_k`` sums the diagonal of term k's block; the second line uses the normal equations
``Lambda' Z' e = u``; the third ``d(R_X'R_X) = -(2 / theta_k) H_k' H_k``).  Each is O(theta_k)
at theta_k = 0, where the gradient is 0.

With the blocked factor ``L = [[L_1, 0], [W_r', L_rr]]`` (first term diagonal, the others a
dense block), the traces need ``C^{-1} = (L_rr L_rr')^{-1}`` (one ``dpotri``, about twice the
work of the factorisation itself) and, for the first term,
``tr(C^{-1} Lambda_r A_r1 D A_1r Lambda_r)`` with ``D = diag(theta_1^2 / M_1^2)``, which is one
more mat-vec of the precomputed fill-in map.  So criterion and gradient together cost about
three criterion evaluations, whatever the number of terms, and nothing here depends on n.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la
from scipy.linalg import lapack


def all_scalar(chol) -> bool:
    """True when every term of the factor has one column."""
    return all(s == 1 for s in chol.S)


def scalar_terms_gradient(chol, reml: bool, n: int) -> np.ndarray:
    """Gradient at the theta of the last ``chol.update`` (every term scalar).

    Parameters
    ----------
    chol : BlockedCholesky
        Updated; every term has ``S_k = 1``.
    reml : bool
    n : int
        Number of observations.
    """
    K, J, p = chol.K, chol.J, chol.p
    theta = np.array([chol.lams[k][0, 0] for k in range(K)])
    beta = chol.beta()
    u = chol.u(beta)
    r2 = chol.pwrss()
    d = n - p if reml else n
    M1 = chol.L1[:, 0, 0] ** 2
    trace = np.empty(K)
    trace[0] = (1.0 / M1).sum()
    if K > 1:
        Cinv, info = lapack.dpotri(chol.Lrr, lower=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"dpotri failed (info {info})")
        diag = np.diag(Cinv).copy()
        lr = chol._lambda_rest_diag(chol.lams)
        # tr(C^{-1} Lambda_r A_r1 D A_1r Lambda_r) through the fill-in map: only the
        # positions it fills are needed, and by symmetry only those in the lower triangle
        # (dpotri leaves the upper one unset)
        i, j, mult, P = _lower_fill(chol)
        weight = Cinv.reshape(-1)[i * chol.qr + j] * (lr[i] * lr[j]) * mult
        D = theta[0] ** 2 / M1**2
        trace[0] += float(weight @ (P @ D))
        for i, k in enumerate(range(1, K)):
            o = chol.rest_offsets[i]
            trace[k] = diag[o : o + J[k]].sum()
    usq = np.array([float(uk.reshape(-1) @ uk.reshape(-1)) for uk in u])
    hsq = _reml_terms(chol, p) if reml else np.zeros(K)
    g = np.zeros(K)
    pos = theta > 0
    Jk = np.asarray(J, dtype=float)
    g[pos] = (2.0 / theta[pos]) * ((Jk[pos] - trace[pos]) - d * usq[pos] / r2 - hsq[pos])
    return g


def _lower_fill(chol):
    """Row, column, multiplicity and map rows of the fill positions with row >= column."""
    cached = getattr(chol, "_lower_fill_cache", None)
    if cached is None:
        pos = chol.fill.positions
        i, j = np.divmod(pos, chol.qr)
        keep = i >= j
        mult = np.where(i[keep] == j[keep], 1.0, 2.0)
        cached = (i[keep], j[keep], mult, chol.fill.P[np.flatnonzero(keep)])
        chol._lower_fill_cache = cached
    return cached


def _reml_terms(chol, p: int) -> np.ndarray:
    """``||H_k R_X^{-1}||_F^2`` per term, ``H = M^{-1} Lambda' Z'X`` (model columns)."""
    W1 = chol.W1_model()[:, 0, :p]  # L^{-1} Lambda' Z'X, first block
    L1 = chol.L1[:, 0, 0]
    Lx = chol.Lxx[:p, :p]
    out = np.empty(chol.K)
    if chol.K > 1:
        Wrx = chol.Wrx if chol.basis is None else chol.Wrx @ chol.basis
        # back-substitution with L' = [[L_1', W_r], [0, L_rr']]
        H_r = la.solve_triangular(chol.Lrr, Wrx[:, :p], lower=True, trans="T", check_finite=False)
        H_1 = (W1 - chol.Wr @ H_r) / L1[:, None]
        for i, k in enumerate(range(1, chol.K)):
            o = chol.rest_offsets[i]
            Q = la.solve_triangular(Lx, H_r[o : o + chol.J[k]].T, lower=True, check_finite=False)
            out[k] = float((Q * Q).sum())
    else:
        H_1 = W1 / L1[:, None]
    Q = la.solve_triangular(Lx, H_1.T, lower=True, check_finite=False)
    out[0] = float((Q * Q).sum())
    return out
