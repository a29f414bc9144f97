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
import scipy.linalg as la

from hlm.linalg import batched


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
    L = chol.L1
    ZZ = A.ZZ[0]
    ZXy = A.ZXy[0] if A.basis is None else A.ZXy[0] @ A.basis
    beta = chol.beta()
    u = chol.u(beta)[0]  # (J, S)
    # M^{-1} lambda' ZZ per group
    T = lam.T @ ZZ  # (J, S, S)
    B = batched.solve_upper_t(L, batched.solve_lower(L, T))
    if reml:
        C = batched.solve_upper_t(L, chol.W1_model()[:, :, :p])  # (J, S, p)
        Lx = chol.Lxx[:p, :p]
        Linv = la.solve_triangular(Lx, np.eye(p), lower=True)
        H = Linv.T @ Linv
        CH = C @ H  # (J, S, p)
        inner = np.swapaxes(C, 1, 2) @ T - np.swapaxes(ZXy[:, :, :p], 1, 2)  # (J, p, S)
        B = B + CH @ inner
    Bsum = B.sum(axis=0)
    coef = np.append(-beta, 1.0)
    Ze = ZXy @ coef - np.einsum("gab,bc,gc->ga", ZZ, lam, u)  # (J, S)
    Esum = Ze.T @ u  # (S, S): [r, c] = sum_g Ze[g, r] u[g, c]
    d = n - p if reml else n
    r2 = chol.pwrss()
    rows, cols = chol.cov.rows[0], chol.cov.cols[0]
    return 2.0 * Bsum[cols, rows] - (d / r2) * 2.0 * Esum[rows, cols]
