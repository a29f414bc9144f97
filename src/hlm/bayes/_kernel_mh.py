"""Metropolis-Hastings pieces of the compiled Gibbs kernel (numba).

The marginal step on a term's covariance (random walk and independence proposals against the
integrated likelihood), the log prior densities it needs, the one-dimensional steps on log
SD for priors without a conjugate update, and the warm-up adaptation of the proposals.
Imported only when numba is installed.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from hlm.bayes._kernel_linalg import _beta_system, _chol, _factor

# numba compiles NumPy's legacy global generator, not numpy.random.Generator
# ruff: noqa: NPY002

_HALF_T, _HALF_NORMAL, _LOG_NORMAL = 0, 1, 2


@njit(cache=True, nogil=True)
def _log_sd_prior(s, kind, p1, p2):
    """Log density (up to a constant) of an SD prior without conjugate update."""
    if kind == _HALF_NORMAL:
        return -0.5 * (s / p1) ** 2
    ls = math.log(s)
    return -ls - 0.5 * ((ls - p1) / p2) ** 2


@njit(cache=True, nogil=True)
def _log_target_scale(e, k_count, ss, kind, p1, p2):
    """log of SD^-k exp(-ss / (2 SD^2)) prior(SD) SD at SD = exp(e) (the last: d SD / d e)."""
    return (
        -k_count * e - 0.5 * ss * math.exp(-2.0 * e) + _log_sd_prior(math.exp(e), kind, p1, p2) + e
    )


@njit(cache=True, nogil=True)
def _adapt(logstep, k, accepted, rate):
    logstep[k] += rate * ((1.0 if accepted else 0.0) - 0.44)


@njit(cache=True, nogil=True)
def _mh_scale(eta, k_count, ss, kind, p1, p2, logstep, idx, acc, rate):
    """One random-walk step on eta = log(SD) with target SD^-k exp(-ss / (2 SD^2)) prior."""
    prop = eta + math.exp(logstep[idx]) * np.random.standard_normal()
    new = _log_target_scale(prop, k_count, ss, kind, p1, p2)
    ok = math.log(np.random.random()) < new - _log_target_scale(eta, k_count, ss, kind, p1, p2)
    acc[idx] += 1.0 if ok else 0.0
    if rate > 0.0:
        _adapt(logstep, idx, ok, rate)
    return prop if ok else eta


@njit(cache=True, nogil=True)
def _log_prior_phi(tk, L, S, nu, A, df, Psi, tsk, tp1, tp2, Linv):
    """Log prior density of phi = the lower triangle of L (Sigma = L L'), Jacobian included.

    The diagonal of L may take either sign (the density is symmetric in it), so that the
    random walk passes through zero variance smoothly instead of crawling down a log scale.
    """
    if tk == 2:  # a prior on the SD |L_00| (folded: the sign of L_00 is free)
        return _log_sd_prior(abs(L[0, 0]), tsk, tp1, tp2)
    # Sigma^{-1} = L^{-T} L^{-1}; log |Sigma| = 2 sum log L_ii
    for i in range(S):
        for j in range(S):
            Linv[i, j] = 1.0 if i == j else 0.0
    for j in range(S):
        for i in range(S):
            t = Linv[i, j]
            for k in range(i):
                t -= L[i, k] * Linv[k, j]
            Linv[i, j] = t / L[i, i]
    logdet = 0.0
    for i in range(S):
        logdet += 2.0 * math.log(abs(L[i, i]))
    if tk == 0:  # Huang-Wand with its auxiliaries integrated out (their eq. 2)
        out = -0.5 * (nu + 2.0 * S) * logdet
        for i in range(S):
            sinv = 0.0
            for k in range(S):
                sinv += Linv[k, i] * Linv[k, i]
            out -= 0.5 * (nu + S) * math.log(nu * sinv + 1.0 / (A[i] * A[i]))
    else:  # inverse-Wishart
        tr = 0.0
        for i in range(S):
            for j in range(S):
                sinv = 0.0  # (Sigma^{-1})_ij = sum_k Linv[k, i] Linv[k, j]
                for k in range(S):
                    sinv += Linv[k, i] * Linv[k, j]
                tr += Psi[i, j] * sinv
        out = -0.5 * (df + S + 1.0) * logdet - 0.5 * tr
    for i in range(S):  # Jacobian of L -> Sigma: 2^S prod |L_ii|^(S - i), i from 0
        out += (S - i) * math.log(abs(L[i, i]))
    return out


@njit(cache=True, nogil=True)
def _phi_to_L(phi, S, L):
    c = 0
    for j in range(S):
        for i in range(j, S):
            L[i, j] = phi[c]
            c += 1
        for i in range(j):
            L[i, j] = 0.0


@njit(cache=True, nogil=True)
def _L_to_phi(L, S, phi):
    c = 0
    for j in range(S):
        for i in range(j, S):
            phi[c] = L[i, j]
            c += 1


@njit(cache=True, nogil=True)
def _marginal_step(
    phi, phi_p, log_q_ratio, ll_cur, lp_cur, Sigma, sig, sig2, stats, cur, prop, work, prior
):
    """Metropolis-Hastings on phi (Cholesky of Sigma) against the marginal likelihood.

    ``log_q_ratio = log q(phi_p) - log q(phi)`` for an independence proposal (0 for a
    symmetric one).  On acceptance the factorisation buffers of the proposal become the
    current ones.  Returns (accepted, log-likelihood, log prior) of the current state.

    ``stats = (ZZ, ZXy, G, B)``; ``cur`` and ``prop`` are the factor buffers ``(Lam, Lg, W,
    Sm)`` of the current Sigma and of the proposal; ``work`` the scratch arrays; ``prior``
    the prior's codes and parameters (see :func:`hlm.bayes.kernel.chain_k1`).
    """
    ZZ, ZXy, G, B = stats
    Lam, Lg, W, Sm = cur
    Lam2, Lg2, W2, Sm2 = prop
    Sacc, M, T1, Ps, rs, Q, RQ, h, Lp, Linv, Sig_p = work
    tk, nu, A, df, Psi, tsk, tp1, tp2 = prior
    J, S, ma = ZXy.shape
    m = B.shape[1]
    _phi_to_L(phi_p, S, Lp)
    for i in range(S):
        if Lp[i, i] == 0.0:
            return False, ll_cur, lp_cur
        for j in range(S):
            t = 0.0
            for k in range(S):
                t += Lp[i, k] * Lp[j, k]
            Sig_p[i, j] = t
    ld2 = _factor(Sig_p, sig, ZZ, ZXy, G, B, Lam2, Lg2, W2, Sacc, Sm2, M, T1)
    ll_new = -0.5 * (ld2 + _beta_system(Sm2, sig2, Ps, rs, Q, RQ, h))
    lp_new = _log_prior_phi(tk, Lp, S, nu, A, df, Psi, tsk, tp1, tp2, Linv)
    ok = math.log(np.random.random()) < ll_new + lp_new - ll_cur - lp_cur - log_q_ratio
    if not ok:
        return False, ll_cur, lp_cur
    for i in range(S):
        for j in range(S):
            Sigma[i, j] = Sig_p[i, j]
            Lam[i, j] = Lam2[i, j]
    for g in range(J):
        for i in range(S):
            for j in range(S):
                Lg[g, i, j] = Lg2[g, i, j]
            for c in range(ma):
                W[g, i, c] = W2[g, i, c]
    for i in range(m):
        for j in range(m):
            Sm[i, j] = Sm2[i, j]
    _chol(Sigma, S, Lp)  # canonical form: positive diagonal
    _L_to_phi(Lp, S, phi)
    return True, ll_new, lp_new


#: independence proposals per iteration (each costs one factorisation)
_N_INDEPENDENCE = 2
#: degrees of freedom and inflation of the independence proposal
_T_NU = 5.0
_T_INFLATE = 1.3


@njit(cache=True, nogil=True)
def _draw_t(am, D, z, out):
    """A draw from the t proposal: mean am[0], scale factor am[1 + 2D + 1 + ...]."""
    w = 2.0 * np.random.gamma(0.5 * _T_NU, 1.0) / _T_NU
    for i in range(D):
        z[i] = np.random.standard_normal()
    for i in range(D):
        t = 0.0
        for k in range(i + 1):
            t += am[2 + 2 * D + i, k] * z[k]
        out[i] = am[0, i] + _T_INFLATE * t / math.sqrt(w)


@njit(cache=True, nogil=True)
def _log_t(am, D, x, z):
    for i in range(D):
        z[i] = (x[i] - am[0, i]) / _T_INFLATE
    for i in range(D):
        t = z[i]
        for k in range(i):
            t -= am[2 + 2 * D + i, k] * z[k]
        z[i] = t / am[2 + 2 * D + i, i]
    q = 0.0
    for i in range(D):
        q += z[i] * z[i]
    return -0.5 * (_T_NU + D) * math.log(1.0 + q / _T_NU)


@njit(cache=True, nogil=True)
def _log_folded_t(am, D, S, x, z):
    """log of the sum of the t density over the 2^S column-sign flips of L (constants out)."""
    y = np.empty(D)
    best = -1e300
    vals = np.empty(2**S)
    for f in range(2**S):
        c = 0
        for j in range(S):
            sgn = -1.0 if (f >> j) & 1 else 1.0
            for _ in range(j, S):  # column j of L: its entries are contiguous in phi
                y[c] = sgn * x[c]
                c += 1
        vals[f] = _log_t(am, D, y, z)
        if vals[f] > best:
            best = vals[f]
    tot = 0.0
    for f in range(2**S):
        tot += math.exp(vals[f] - best)
    return best + math.log(tot)


@njit(cache=True, nogil=True)
def _adapt_proposal(am, phi, t, D):
    """Running mean (row 0) and scatter (rows D+1..2D) of phi; every 50 iterations after
    100, the Cholesky factors of the random-walk proposal covariance ``2.38^2 / D cov(phi)``
    (rows 1..D) and of ``cov(phi)`` itself for the t proposal (rows 2D+2..3D+1); row 2D+1
    holds the number of iterations the latter was estimated from."""
    n = t + 1.0
    d = np.empty(D)
    for i in range(D):
        d[i] = phi[i] - am[0, i]
        am[0, i] += d[i] / n
    for i in range(D):
        for j in range(D):
            am[1 + D + i, j] += d[i] * (phi[j] - am[0, j])
    if n >= 100 and int(n) % 50 == 0:
        C = np.zeros((D, D))
        for i in range(D):
            for j in range(D):
                C[i, j] = am[1 + D + i, j] / (n - 1.0)
            C[i, i] += 1e-10
        L = np.zeros((D, D))
        _chol(C, D, L)
        for i in range(D):
            for j in range(D):
                am[2 + 2 * D + i, j] = L[i, j]
                am[1 + i, j] = 2.38 / math.sqrt(D) * L[i, j]
        am[1 + 2 * D, 0] = n
