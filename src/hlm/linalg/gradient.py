"""Analytic gradient of the profiled criterion for models with one random-effects term.

With ``M_g = lambda' ZZ_g lambda + I`` per group, ``e = y - X beta - Z Lambda u`` and
``r^2`` the penalised residual sum of squares, the derivative with respect to the element
``theta_i = lambda[r, c]`` is

    d crit / d theta_i = 2 sum_g B_g[c, r] - (d / r^2) * 2 sum_g (Z'e)_g[r] u_g[c]

where ``d = n`` (ML) or ``n - p`` (REML), ``B_g = M_g^{-1} lambda' ZZ_g`` for ML, and for
REML the log-determinant of the whole penalised system adds the fixed-effects part:
``B_g += C_g H (C_g' lambda' ZZ_g - ZX_g')`` with ``C_g = M_g^{-1} lambda' ZX_g`` and
``H = (R_X' R_X)^{-1}``.  Everything is a sum over groups of S x S products, so the gradient
costs about as much as the criterion.  The transform of the columns of [X y] does not change
it (it only adds constants to the criterion).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from hlm.compiled import group_kernels
from hlm.linalg import batched
from hlm.linalg.blocked import one_term_kernels


def profiled_gradient(chol, reml: bool, n: int) -> np.ndarray:
    """Gradient of the profiled criterion at the theta of the last ``chol.update``.

    Parameters
    ----------
    chol : BlockedCholesky
        Updated, with a single random-effects term.
    reml : bool
    n : int
        Number of observations.
    """
    A = chol.A
    p = chol.p
    lam = chol.lams[0]
    if chol._parts is not None:  # the update ran fused: so does the gradient
        grad = np.empty(len(chol.cov.rows[0]))
        one_term_kernels().gradient_one_term(
            lam, A.ZZ[0], A.ZXy[0], chol.L1, chol.W1, chol.Lxx, reml, float(n - p if reml else n),
            chol.cov.rows[0], chol.cov.cols[0], grad,
        )
        return grad
    L = chol.L1
    ZZ = A.ZZ[0]
    ZXy = A.ZXy[0] if A.basis is None else A.ZXy[0] @ A.basis
    beta = chol.beta()
    d = n - p if reml else n
    r2 = chol.pwrss()
    rows, cols = chol.cov.rows[0], chol.cov.cols[0]
    kernels = group_kernels()
    if kernels is not None:  # the same sums in one compiled loop over the groups
        H = _H(chol, p) if reml else np.zeros((p, p))
        Bsum, Esum = kernels.gradient_sums(lam, ZZ, np.ascontiguousarray(ZXy), L, beta, H, reml)
        return 2.0 * Bsum[cols, rows] - (d / r2) * 2.0 * Esum[rows, cols]
    u = chol.u(beta)[0]  # (J, S)
    # M^{-1} lambda' ZZ per group
    T = lam.T @ ZZ  # (J, S, S)
    B = batched.solve_upper_t(L, batched.solve_lower(L, T))
    if reml:
        C = batched.solve_upper_t(L, chol.W1_model()[:, :, :p])  # (J, S, p)
        H = _H(chol, p)
        CH = C @ H  # (J, S, p)
        inner = np.swapaxes(C, 1, 2) @ T - np.swapaxes(ZXy[:, :, :p], 1, 2)  # (J, p, S)
        B = B + CH @ inner
    Bsum = B.sum(axis=0)
    coef = np.append(-beta, 1.0)
    Ze = ZXy @ coef - np.einsum("gab,bc,gc->ga", ZZ, lam, u)  # (J, S)
    Esum = Ze.T @ u  # (S, S): [r, c] = sum_g Ze[g, r] u[g, c]
    return 2.0 * Bsum[cols, rows] - (d / r2) * 2.0 * Esum[rows, cols]


def _H(chol, p: int) -> np.ndarray:
    """``(R_X' R_X)^{-1}`` from the factor's last block."""
    if p == 0:
        return np.zeros((0, 0))
    # the inverse's lower triangle; the upper one is the input's, zero (dpotrf clean=1)
    H, info = lapack.dpotri(chol.Lxx[:p, :p], lower=1)
    d = H.diagonal().copy()
    H = H + H.T
    np.fill_diagonal(H, d)
    return H
