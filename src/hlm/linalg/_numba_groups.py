"""Compiled per-group loops of a one-term model (imported only when numba is installed).

For a single random-effects term every group g has its own small system
``M_g = lambda' ZZ_g lambda + I`` (S x S, S = 1 or 2 typically).  In NumPy each step is a
batched operation whose fixed cost (a few microseconds) is most of the time when J is small;
one compiled loop over the groups does the same arithmetic in a fraction of that.  The
NumPy paths in :mod:`hlm.linalg.blocked` and :mod:`hlm.linalg.gradient` compute the same
numbers and are used when numba is not installed (tests/test_group_kernels.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def factor_groups(lam, ZZ, ZXy, L, W):  # pragma: no cover - compiled
    """Per group: ``L_g = chol(lambda' ZZ_g lambda + I)``, ``W_g = L_g^{-1} lambda' ZXy_g``.

    Fills ``L`` (J, S, S) and ``W`` (J, S, m); returns ``log det M = sum_g 2 log |L_g|``.
    """
    J, S, _ = ZZ.shape
    m = ZXy.shape[2]
    T = np.empty((S, S))
    M = np.empty((S, S))
    V = np.empty((S, m))
    logdet = 0.0
    for g in range(J):
        # T = ZZ_g lambda; M = lambda' T + I
        for a in range(S):
            for b in range(S):
                acc = 0.0
                for k in range(b, S):
                    acc += ZZ[g, a, k] * lam[k, b]
                T[a, b] = acc
        for a in range(S):
            for b in range(a + 1):
                acc = 0.0
                for k in range(a, S):
                    acc += lam[k, a] * T[k, b]
                M[a, b] = acc + (1.0 if a == b else 0.0)
        # Cholesky of M (lower), in L[g]
        for a in range(S):
            for b in range(a + 1):
                acc = M[a, b]
                for k in range(b):
                    acc -= L[g, a, k] * L[g, b, k]
                if a == b:
                    L[g, a, a] = np.sqrt(acc)
                else:
                    L[g, a, b] = acc / L[g, b, b]
            for b in range(a + 1, S):
                L[g, a, b] = 0.0
            logdet += 2.0 * np.log(L[g, a, a])
        # V = lambda' ZXy_g; W = L^{-1} V (forward substitution)
        for a in range(S):
            for j in range(m):
                acc = 0.0
                for k in range(a, S):
                    acc += lam[k, a] * ZXy[g, k, j]
                V[a, j] = acc
        for a in range(S):
            for j in range(m):
                acc = V[a, j]
                for k in range(a):
                    acc -= L[g, a, k] * W[g, k, j]
                W[g, a, j] = acc / L[g, a, a]
    return logdet


@njit(cache=True, nogil=True)
def gradient_sums(lam, ZZ, ZXy, L, beta, H, reml):  # pragma: no cover - compiled
    """The two group sums of the one-term gradient (see :mod:`hlm.linalg.gradient`).

    ``ZXy`` in the model's columns (J, S, p + 1); ``L`` from :func:`factor_groups`;
    ``H = (R_X' R_X)^{-1}`` (used for REML).  Returns ``(Bsum, Esum)``, both S x S:
    ``Bsum = sum_g M_g^{-1} lambda' ZZ_g [+ C_g H (C_g' lambda' ZZ_g - ZX_g')]`` and
    ``Esum[r, c] = sum_g (Z'e)_g[r] u_g[c]``.
    """
    J, S, _ = ZZ.shape
    m = ZXy.shape[2]
    p = m - 1
    Bsum = np.zeros((S, S))
    Esum = np.zeros((S, S))
    T = np.empty((S, S))  # lambda' ZZ_g
    X = np.empty((S, S))
    Vx = np.empty((S, m))  # lambda' ZXy_g, then M^{-1} lambda' ZXy_g
    r = np.empty(S)
    u = np.empty(S)
    CH = np.empty((S, p))
    inner = np.empty((p, S))
    for g in range(J):
        for a in range(S):
            for b in range(S):
                acc = 0.0
                for k in range(a, S):
                    acc += lam[k, a] * ZZ[g, k, b]
                T[a, b] = acc
            for j in range(m):
                acc = 0.0
                for k in range(a, S):
                    acc += lam[k, a] * ZXy[g, k, j]
                Vx[a, j] = acc
        # X = M^{-1} T and Vx = M^{-1} Vx by two triangular solves with L_g
        X[:, :] = T
        _solve_M(L, g, X)
        _solve_M(L, g, Vx)
        # u_g = M^{-1} lambda' (Z'y - Z'X beta): spherical random effects
        for a in range(S):
            acc = Vx[a, p]
            for j in range(p):
                acc -= Vx[a, j] * beta[j]
            u[a] = acc
        # (Z'e)_g = Z'y - Z'X beta - ZZ_g lambda u
        for a in range(S):
            acc = ZXy[g, a, p]
            for j in range(p):
                acc -= ZXy[g, a, j] * beta[j]
            for b in range(S):
                lu = 0.0
                for k in range(b + 1):
                    lu += lam[b, k] * u[k]
                acc -= ZZ[g, a, b] * lu
            r[a] = acc
        for a in range(S):
            for b in range(S):
                Esum[a, b] += r[a] * u[b]
                Bsum[a, b] += X[a, b]
        if reml:
            # C_g = M^{-1} lambda' ZX_g is Vx[:, :p]
            for a in range(S):
                for j in range(p):
                    acc = 0.0
                    for k in range(p):
                        acc += Vx[a, k] * H[k, j]
                    CH[a, j] = acc
            for j in range(p):
                for b in range(S):
                    acc = -ZXy[g, b, j]
                    for k in range(S):
                        acc += Vx[k, j] * T[k, b]
                    inner[j, b] = acc
            for a in range(S):
                for b in range(S):
                    acc = 0.0
                    for j in range(p):
                        acc += CH[a, j] * inner[j, b]
                    Bsum[a, b] += acc
    return Bsum, Esum


@njit(cache=True, nogil=True, inline="always")
def _solve_M(L, g, Y):  # pragma: no cover - compiled
    """``Y <- M_g^{-1} Y`` in place, with ``M_g = L_g L_g'`` (forward, then back)."""
    S, ncol = Y.shape
    for col in range(ncol):
        for a in range(S):
            acc = Y[a, col]
            for k in range(a):
                acc -= L[g, a, k] * Y[k, col]
            Y[a, col] = acc / L[g, a, a]
        for a in range(S - 1, -1, -1):
            acc = Y[a, col]
            for k in range(a + 1, S):
                acc -= L[g, k, a] * Y[k, col]
            Y[a, col] = acc / L[g, a, a]
