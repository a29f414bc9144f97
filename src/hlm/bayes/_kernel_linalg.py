"""Small dense linear algebra and random draws for the compiled Gibbs kernel (numba).

Loops over S x S and m x m arrays (S columns of a random-effects term, m = p + 1): at these
sizes explicit loops beat LAPACK's call overhead by far.  :func:`_factor` is the blocked
Cholesky factorisation of the penalised cross-product matrix for one term (the core's
:mod:`hlm.linalg.blocked`, written as loops) and :func:`_beta_system` the fixed-effect part
of the integrated likelihood.  Imported only when numba is installed.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# numba compiles NumPy's legacy global generator (np.random.gamma, ...), not
# numpy.random.Generator: the legacy calls are deliberate here
# ruff: noqa: NPY002


@njit(cache=True, nogil=True)
def _chol(M, S, L):
    """Lower Cholesky of the S x S matrix M into L (zeros above the diagonal)."""
    for j in range(S):
        s = M[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        d = math.sqrt(s) if s > 0.0 else 1e-300
        L[j, j] = d
        for i in range(j + 1, S):
            t = M[i, j]
            for k in range(j):
                t -= L[i, k] * L[j, k]
            L[i, j] = t / d
        for i in range(j):
            L[i, j] = 0.0


@njit(cache=True, nogil=True)
def _make_pd(Sigma, S, L):
    """Keep a covariance state numerically positive definite.

    A draw can come out singular to rounding when a variance is many orders of magnitude
    below another (a random slope next to nothing); a diagonal jitter of 1e-12 of the mean
    variance (growing tenfold until the Cholesky pivots are positive) changes the state far
    below Monte Carlo error and keeps every later step finite.
    """
    scale = 0.0
    for i in range(S):
        scale += Sigma[i, i] / S
    if not scale > 0.0:
        scale = 1.0
    jit = 1e-12 * scale
    for _ in range(40):
        ok = True
        for j in range(S):
            s = Sigma[j, j]
            for k in range(j):
                s -= L[j, k] * L[j, k]
            if not s > 1e-14 * Sigma[j, j] or not s > 0.0:
                ok = False
                break
            d = math.sqrt(s)
            L[j, j] = d
            for i in range(j + 1, S):
                t = Sigma[i, j]
                for k in range(j):
                    t -= L[i, k] * L[j, k]
                L[i, j] = t / d
        if ok:
            return
        for i in range(S):
            Sigma[i, i] += jit
        jit *= 10.0


@njit(cache=True, nogil=True)
def _solve_lower(L, x, S):
    """In place: x <- L^{-1} x."""
    for i in range(S):
        t = x[i]
        for k in range(i):
            t -= L[i, k] * x[k]
        x[i] = t / L[i, i]


@njit(cache=True, nogil=True)
def _solve_upper_t(L, x, S):
    """In place: x <- L'^{-1} x."""
    for i in range(S - 1, -1, -1):
        t = x[i]
        for k in range(i + 1, S):
            t -= L[k, i] * x[k]
        x[i] = t / L[i, i]


@njit(cache=True, nogil=True)
def _inv_gamma(shape, rate):
    """A draw from IG(shape, rate)."""
    return rate / np.random.gamma(shape, 1.0)


@njit(cache=True, nogil=True)
def _inv_wishart(df, Psi, S, out, work_L, work_A):
    """A draw from IW(df, Psi) into ``out`` (Bartlett: Sigma = (L A^{-T})(L A^{-T})')."""
    _chol(Psi, S, work_L)
    for i in range(S):
        for j in range(S):
            work_A[i, j] = 0.0
        work_A[i, i] = math.sqrt(2.0 * np.random.gamma(0.5 * (df - i), 1.0))
        for j in range(i):
            work_A[i, j] = np.random.standard_normal()
    # M = L A^{-T}: solve A X' = L' row by row, i.e. M' = A^{-1} L'
    M = np.zeros((S, S))
    col = np.zeros(S)
    for r in range(S):  # row r of M = (A^{-1} (row r of L)')'
        for k in range(S):
            col[k] = work_L[r, k]
        _solve_lower(work_A, col, S)
        for k in range(S):
            M[r, k] = col[k]
    for i in range(S):
        for j in range(S):
            t = 0.0
            for k in range(S):
                t += M[i, k] * M[j, k]
            out[i, j] = t


@njit(cache=True, nogil=True)
def _inv_diag(Sigma, S, L, tmp, out):
    """out_i = (Sigma^{-1})_ii = ||L^{-1} e_i||^2 with L = chol(Sigma)."""
    _chol(Sigma, S, L)
    for i in range(S):
        for k in range(S):
            tmp[k] = 1.0 if k == i else 0.0
        _solve_lower(L, tmp, S)
        t = 0.0
        for k in range(S):
            t += tmp[k] * tmp[k]
        out[i] = t


@njit(cache=True, nogil=True)
def _factor(Sigma, sig, ZZ, ZXy, G, B, Lam, Lg, W, Sacc, Sm, M, T1):
    """Blocked Cholesky at (Sigma, sigma): fills Lam, Lg, W, Sm; returns log det(L_Z L_Z')."""
    J, S, ma = ZXy.shape
    m = B.shape[1]
    _chol(Sigma, S, Lam)
    for i in range(S):
        for j in range(S):
            Lam[i, j] /= sig
    for i in range(ma):
        for j in range(ma):
            Sacc[i, j] = G[i, j]
    logdet = 0.0
    for g in range(J):
        for i in range(S):  # M = Lam' ZZ_g Lam + I
            for j in range(S):
                t = 0.0
                for k in range(i, S):
                    for l in range(j, S):
                        t += Lam[k, i] * ZZ[g, k, l] * Lam[l, j]
                M[i, j] = t + (1.0 if i == j else 0.0)
        _chol(M, S, Lg[g])
        for i in range(S):
            logdet += 2.0 * math.log(Lg[g, i, i])
        for i in range(S):  # T1 = Lam' ZXy_g
            for c in range(ma):
                t = 0.0
                for k in range(i, S):
                    t += Lam[k, i] * ZXy[g, k, c]
                T1[i, c] = t
        for c in range(ma):  # W_g = L_g^{-1} T1
            for i in range(S):
                t = T1[i, c]
                for k in range(i):
                    t -= Lg[g, i, k] * W[g, k, c]
                W[g, i, c] = t / Lg[g, i, i]
        for i in range(ma):
            for j in range(i + 1):
                t = 0.0
                for k in range(S):
                    t += W[g, k, i] * W[g, k, j]
                Sacc[i, j] -= t
    for i in range(ma):
        for j in range(i + 1, ma):
            Sacc[i, j] = Sacc[j, i]
    if ma == m and B[0, 0] == 1.0 and B[ma - 1, 0] == 0.0 and B[0, ma - 1] == 0.0:
        identity = True  # the usual case: a model with an intercept (B = I, checked below)
        for k in range(ma):
            for l in range(ma):
                if B[k, l] != (1.0 if k == l else 0.0):
                    identity = False
        if identity:
            for i in range(m):
                for j in range(m):
                    Sm[i, j] = Sacc[i, j]
            return logdet
    for i in range(m):  # Sm = B' Sacc B
        for j in range(m):
            t = 0.0
            for k in range(ma):
                for l in range(ma):
                    t += B[k, i] * Sacc[k, l] * B[l, j]
            Sm[i, j] = t
    return logdet


@njit(cache=True, nogil=True)
def _beta_system(Sm, sig2, Ps, rs, Q, RQ, h):
    """``Q = S_XX / sigma^2 + P``, ``RQ = chol(Q)``, ``h <- RQ^{-1} (S_Xy / sigma^2 + r)``.

    Returns the part of -2 log p(y | Sigma, sigma) that depends on them and on S:
    ``log det Q + S_yy / sigma^2 - ||h||^2`` (beta integrated out under its normal prior).
    """
    p = Q.shape[0]
    for i in range(p):
        for j in range(p):
            Q[i, j] = Sm[i, j] / sig2 + Ps[i, j]
        h[i] = Sm[i, p] / sig2 + rs[i]
    _chol(Q, p, RQ)
    _solve_lower(RQ, h, p)
    out = Sm[p, p] / sig2
    for i in range(p):
        out += 2.0 * math.log(RQ[i, i]) - h[i] * h[i]
    return out
