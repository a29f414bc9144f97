"""One compiled call per evaluation of a one-term model: criterion parts, then gradient.

For a single random-effects term the whole evaluation is small dense algebra: per group an
S x S Cholesky (:func:`~hlm.linalg._numba_groups.factor_groups`), then the Schur complement
``G - sum_g W_g' W_g`` of the random effects in ``[X y]'[X y]`` and its (p + 1) x (p + 1)
Cholesky.  On small data (sleepstudy: 18 groups, p = 2) the arithmetic takes a few
microseconds and the NumPy/LAPACK calls around it ten times that, so both steps, and the
gradient's (beta, ``(R_X' R_X)^{-1}`` and the group sums of :mod:`hlm.linalg.gradient`),
run here in one call each.  :class:`hlm.linalg.blocked.BlockedCholesky` keeps the same
factors as its NumPy/LAPACK path (tests/test_group_kernels.py compares them).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hlm.linalg._numba_groups import factor_groups, gradient_sums


@njit(cache=True, nogil=True)
def factor_one_term(theta, rows, cols, lam, ZZ, ZXy, G, L, W, Sxx, Lxx):  # pragma: no cover
    """Fill ``lam``, the group factors ``L, W``, ``Sxx = G - W'W`` and ``Lxx = chol(Sxx)``.

    Returns ``(ok, logdet_Z, logdet_X, r2)``: ``ok`` is False when ``Sxx`` is not positive
    definite (then the other values are meaningless); ``logdet_Z = log det(L_Z L_Z')``,
    ``logdet_X = log det(R_X' R_X)`` and ``r2`` the penalised residual sum of squares, all
    in the transformed columns.
    """
    S = lam.shape[0]
    for a in range(S):
        for b in range(S):
            lam[a, b] = 0.0
    for i in range(theta.shape[0]):
        lam[rows[i], cols[i]] = theta[i]
    m = G.shape[0]
    for a in range(m):
        for b in range(m):
            Sxx[a, b] = G[a, b]
    if S == 1:
        logdet_Z = _factor_one(lam[0, 0], ZZ, ZXy, L, W, Sxx)
    elif S == 2:
        logdet_Z = _factor_two(lam[0, 0], lam[1, 0], lam[1, 1], ZZ, ZXy, L, W, Sxx)
    else:
        logdet_Z = factor_groups(lam, ZZ, ZXy, L, W)
        for g in range(W.shape[0]):
            for k in range(S):
                for a in range(m):
                    w = W[g, k, a]
                    for b in range(a + 1):
                        Sxx[a, b] -= w * W[g, k, b]
    for a in range(m):
        for b in range(a):
            Sxx[b, a] = Sxx[a, b]
    if not cholesky_into(Sxx, Lxx):
        return False, logdet_Z, 0.0, 0.0
    logdet_X = 0.0
    for a in range(m - 1):
        logdet_X += 2.0 * np.log(Lxx[a, a])
    r2 = Lxx[m - 1, m - 1] * Lxx[m - 1, m - 1]
    return True, logdet_Z, logdet_X, r2


@njit(cache=True, nogil=True)
def cholesky_into(A, L):  # pragma: no cover - compiled
    """``L`` = lower Cholesky factor of the small ``A``, upper triangle zero (as LAPACK's
    ``dpotrf`` with ``clean=1``); False when ``A`` is not positive definite."""
    m = A.shape[0]
    for a in range(m):
        for b in range(a + 1):
            acc = A[a, b]
            for k in range(b):
                acc -= L[a, k] * L[b, k]
            if a == b:
                if not acc > 0.0:
                    return False
                L[a, a] = np.sqrt(acc)
            else:
                L[a, b] = acc / L[b, b]
        for b in range(a + 1, m):
            L[a, b] = 0.0
    return True


@njit(cache=True, nogil=True)
def gradient_one_term(lam, ZZ, ZXy, L, W, Lxx, reml, d, rows, cols, grad):  # pragma: no cover
    """The profiled criterion's gradient after :func:`factor_one_term` (into ``grad``).

    ``d = n - p`` (REML) or ``n`` (ML); see :mod:`hlm.linalg.gradient` for the formula.
    """
    m = Lxx.shape[0]
    p = m - 1
    # beta: R_X beta = Lxx[p, :p] with R_X = Lxx[:p, :p]' (back substitution)
    beta = np.empty(p)
    for a in range(p - 1, -1, -1):
        acc = Lxx[p, a]
        for k in range(a + 1, p):
            acc -= Lxx[k, a] * beta[k]
        beta[a] = acc / Lxx[a, a]
    # H = (R_X' R_X)^{-1} = Linv' Linv with Linv = Lxx[:p, :p]^{-1} (lower)
    H = np.zeros((p, p))
    if reml:
        Linv = np.zeros((p, p))
        for c in range(p):
            Linv[c, c] = 1.0 / Lxx[c, c]
            for a in range(c + 1, p):
                acc = 0.0
                for k in range(c, a):
                    acc -= Lxx[a, k] * Linv[k, c]
                Linv[a, c] = acc / Lxx[a, a]
        for a in range(p):
            for b in range(a + 1):
                acc = 0.0
                for k in range(a, p):
                    acc += Linv[k, a] * Linv[k, b]
                H[a, b] = acc
                H[b, a] = acc
    if lam.shape[0] == 2:
        Bsum, Esum = _gradient_sums_two(lam, ZZ, ZXy, L, W, beta, H, reml)
    else:
        Bsum, Esum = gradient_sums(lam, ZZ, ZXy, L, beta, H, reml)
    r2 = Lxx[p, p] * Lxx[p, p]
    for i in range(rows.shape[0]):
        r, c = rows[i], cols[i]
        grad[i] = 2.0 * Bsum[c, r] - (d / r2) * 2.0 * Esum[r, c]


@njit(cache=True, nogil=True)
def _factor_one(l, ZZ, ZXy, L, W, Sxx):  # pragma: no cover - compiled
    """Scalar term: ``L_g = sqrt(l^2 ZZ_g + 1)``, ``W_g = l ZXy_g / L_g``; ``Sxx -= W'W``.

    Fills the lower triangle of ``Sxx`` only; returns ``sum_g log L_g^2``.
    """
    m = ZXy.shape[2]
    logdet = 0.0
    for g in range(ZZ.shape[0]):
        M = l * l * ZZ[g, 0, 0] + 1.0
        logdet += np.log(M)
        lg = np.sqrt(M)
        L[g, 0, 0] = lg
        f = l / lg
        for a in range(m):
            W[g, 0, a] = f * ZXy[g, 0, a]
        for a in range(m):
            w = W[g, 0, a]
            for b in range(a + 1):
                Sxx[a, b] -= w * W[g, 0, b]
    return logdet


@njit(cache=True, nogil=True)
def _factor_two(a, b, c, ZZ, ZXy, L, W, Sxx):  # pragma: no cover - compiled
    """Two columns, ``lambda = [[a, 0], [b, c]]``: closed-form 2 x 2 factors per group.

    Fills the lower triangle of ``Sxx`` only; returns ``sum_g log det M_g``.
    """
    m = ZXy.shape[2]
    logdet = 0.0
    for g in range(ZZ.shape[0]):
        z00, z01, z11 = ZZ[g, 0, 0], ZZ[g, 0, 1], ZZ[g, 1, 1]
        # M = lambda' ZZ lambda + I
        t10 = z01 * a + z11 * b
        M00 = a * (z00 * a + z01 * b) + b * t10 + 1.0
        M10 = c * t10
        M11 = c * c * z11 + 1.0
        l11 = np.sqrt(M00)
        l21 = M10 / l11
        d22 = M11 - l21 * l21
        l22 = np.sqrt(d22)
        logdet += np.log(M00 * d22)
        L[g, 0, 0] = l11
        L[g, 0, 1] = 0.0
        L[g, 1, 0] = l21
        L[g, 1, 1] = l22
        # W = L^{-1} lambda' ZXy
        for j in range(m):
            x0, x1 = ZXy[g, 0, j], ZXy[g, 1, j]
            w0 = (a * x0 + b * x1) / l11
            W[g, 0, j] = w0
            W[g, 1, j] = (c * x1 - l21 * w0) / l22
        for i in range(m):
            w0, w1 = W[g, 0, i], W[g, 1, i]
            for j in range(i + 1):
                Sxx[i, j] -= w0 * W[g, 0, j] + w1 * W[g, 1, j]
    return logdet


@njit(cache=True, nogil=True)
def criterion_gradient(z, args):  # pragma: no cover - compiled
    """The profiled criterion and its gradient in the optimizer's variables ``z``.

    ``args = (mult, rows, cols, ZZ, ZXy, G, reml, n, p, log_sy2, logdet_scale_X,
    sum_log_w)``: ``theta = mult * z`` (the optimizer's scaling), ``log_sy2`` the log of the
    squared scale of y, ``logdet_scale_X`` the log-determinant the scaling of X's columns
    adds to REML's ``log det(X'V^{-1}X)``; see ``LinearMixedModel._criterion_from_chol``.
    A Schur complement that is not positive definite gives ``inf``.
    """
    mult, rows, cols, ZZ, ZXy, G, reml, n, p, log_sy2, logdet_scale_X, sum_log_w = args
    theta = z * mult
    J, S, m = ZXy.shape[0], ZXy.shape[1], ZXy.shape[2]
    lam = np.empty((S, S))
    L = np.empty((J, S, S))
    W = np.empty((J, S, m))
    Sxx = np.empty((m, m))
    Lxx = np.empty((m, m))
    grad = np.zeros(z.shape[0])
    ok, logdet_Z, logdet_X, r2 = factor_one_term(
        theta, rows, cols, lam, ZZ, ZXy, G, L, W, Sxx, Lxx
    )
    if not ok:
        return np.inf, grad
    d = float(n - p) if reml else float(n)
    dev = logdet_Z + d * (1.0 + np.log(2.0 * np.pi * r2 / d) + log_sy2)
    if reml:
        dev += logdet_X + logdet_scale_X
    gradient_one_term(lam, ZZ, ZXy, L, W, Lxx, reml, d, rows, cols, grad)
    return dev - sum_log_w, grad * mult


@njit(cache=True, nogil=True)
def _gradient_sums_two(lam, ZZ, ZXy, L, W, beta, H, reml):  # pragma: no cover - compiled
    """:func:`~hlm.linalg._numba_groups.gradient_sums` for two columns, in closed form.

    Reuses ``W_g = L_g^{-1} lambda' ZXy_g`` from the factorisation: ``M_g^{-1} lambda'
    ZXy_g = L_g^{-T} W_g``.
    """
    J = ZZ.shape[0]
    m = ZXy.shape[2]
    p = m - 1
    a, b, c = lam[0, 0], lam[1, 0], lam[1, 1]
    B00 = B01 = B10 = B11 = 0.0
    E00 = E01 = E10 = E11 = 0.0
    C0 = np.empty(p)
    C1 = np.empty(p)
    for g in range(J):
        l11, l21, l22 = L[g, 0, 0], L[g, 1, 0], L[g, 1, 1]
        z00, z01, z11 = ZZ[g, 0, 0], ZZ[g, 0, 1], ZZ[g, 1, 1]
        # T = lambda' ZZ_g, X = M_g^{-1} T column by column (forward, then back)
        T00, T01 = a * z00 + b * z01, a * z01 + b * z11
        T10, T11 = c * z01, c * z11
        y0 = T00 / l11
        y1 = (T10 - l21 * y0) / l22
        X10 = y1 / l22
        X00 = (y0 - l21 * X10) / l11
        y0 = T01 / l11
        y1 = (T11 - l21 * y0) / l22
        X11 = y1 / l22
        X01 = (y0 - l21 * X11) / l11
        B00 += X00
        B01 += X01
        B10 += X10
        B11 += X11
        # C = M^{-1} lambda' ZX_g (2 x p) and u = M^{-1} lambda' (Z'y - Z'X beta)
        w0 = W[g, 0, p]
        w1 = W[g, 1, p]
        for j in range(p):
            v1 = W[g, 1, j] / l22
            v0 = (W[g, 0, j] - l21 * v1) / l11
            C0[j] = v0
            C1[j] = v1
            w0 -= W[g, 0, j] * beta[j]
            w1 -= W[g, 1, j] * beta[j]
        u1 = w1 / l22
        u0 = (w0 - l21 * u1) / l11
        # (Z'e)_g = Z'y - Z'X beta - ZZ_g lambda u
        lu0, lu1 = a * u0, b * u0 + c * u1
        r0 = ZXy[g, 0, p] - z00 * lu0 - z01 * lu1
        r1 = ZXy[g, 1, p] - z01 * lu0 - z11 * lu1
        for j in range(p):
            r0 -= ZXy[g, 0, j] * beta[j]
            r1 -= ZXy[g, 1, j] * beta[j]
        E00 += r0 * u0
        E01 += r0 * u1
        E10 += r1 * u0
        E11 += r1 * u1
        if reml:
            # B += C H (C' T - ZX'): K = C' T - ZX' (p x 2), then (C H) K
            for j in range(p):
                k0 = C0[j] * T00 + C1[j] * T10 - ZXy[g, 0, j]
                k1 = C0[j] * T01 + C1[j] * T11 - ZXy[g, 1, j]
                h0 = 0.0
                h1 = 0.0
                for k in range(p):
                    h0 += C0[k] * H[k, j]
                    h1 += C1[k] * H[k, j]
                B00 += h0 * k0
                B01 += h0 * k1
                B10 += h1 * k0
                B11 += h1 * k1
    Bsum = np.empty((2, 2))
    Esum = np.empty((2, 2))
    Bsum[0, 0], Bsum[0, 1], Bsum[1, 0], Bsum[1, 1] = B00, B01, B10, B11
    Esum[0, 0], Esum[0, 1], Esum[1, 0], Esum[1, 1] = E00, E01, E10, E11
    return Bsum, Esum
