"""The compiled Gibbs sweep for a model with one random-effects term (numba, cached).

One iteration, in the transformed units of :mod:`hlm.bayes.problem`, costs
O(J (S^3 + S^2 m + S m^2) + m^3) and never touches a data row:

0. ``Sigma | sigma^2, y`` with ``(beta, b)`` integrated out: an adaptive random-walk
   Metropolis step on the Cholesky factor of Sigma (diagonal of either sign), then an
   independence step from a multivariate t fitted in warm-up; the target is the exact
   marginal likelihood from the same blocked factorisation (log-determinant and Schur
   complement) times the prior (for Huang-Wand, its closed-form density with the auxiliary
   variables integrated out; they are then drawn given the new Sigma).  This step does not
   care how well ``b`` is identified, so the chain keeps moving when a variance is near zero
   or a correlation is weakly identified, where the centred Gibbs step alone (2.) crawls;
1. ``(beta, b) | Sigma, sigma^2``: one joint Gaussian draw through the blocked Cholesky of the
   penalised cross-product matrix (the core's factorisation, :mod:`hlm.linalg.blocked`, here
   in loops): per group ``L_g = chol(Lambda' ZZ_g Lambda + I)``, ``W_g = L_g^{-1} Lambda'
   ZXy_g``; the Schur complement ``S = G - sum W_g' W_g`` gives ``beta`` (its prior added),
   then ``u_g = L_g^{-T} (W_g v + sigma z_g)``, ``b_g = Lambda u_g`` with ``v = [-beta; 1]``.
2. the term's covariance given ``b``: Huang-Wand prior through its auxiliary variables
   (``Sigma | b, a`` inverse-Wishart, ``a | Sigma`` inverse-gamma), a plain inverse-Wishart
   conjugate draw, or (SD priors without a conjugate update) adaptive Metropolis-Hastings
   steps on log SD, centred (``b`` fixed) and non-centred (``b / SD`` fixed);
3. ``sigma^2 | rest``: residual sum of squares from the cross-products; conjugate through an
   auxiliary variable for a half-t prior, Metropolis-Hastings otherwise;
4. hierarchical priors on groups of fixed effects: their mean (normal) and SD.

Compiled by numba with ``cache=True`` (once per machine); this module is imported only when
numba is installed.  :mod:`hlm.bayes.numpy_gibbs` is the NumPy path, for any number of terms.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# numba compiles NumPy's legacy global generator (np.random.seed, np.random.gamma, ...) and
# not numpy.random.Generator: the legacy calls are deliberate here
# ruff: noqa: NPY002

_HALF_T, _HALF_NORMAL, _LOG_NORMAL = 0, 1, 2


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
    phi,
    phi_p,
    log_q_ratio,
    ll_cur,
    lp_cur,
    Sigma,
    sig,
    sig2,
    ZZ,
    ZXy,
    G,
    B,
    Lam,
    Lg,
    W,
    Sm,
    Lam2,
    Lg2,
    W2,
    Sm2,
    Sacc,
    M,
    T1,
    Ps,
    rs,
    Q,
    RQ,
    h,
    tk,
    nu,
    A,
    df,
    Psi,
    tsk,
    tp1,
    tp2,
    Lp,
    Linv,
    Sig_p,
):
    """Metropolis-Hastings on phi (Cholesky of Sigma) against the marginal likelihood.

    ``log_q_ratio = log q(phi_p) - log q(phi)`` for an independence proposal (0 for a
    symmetric one).  On acceptance the factorisation buffers of the proposal become the
    current ones.  Returns (accepted, log-likelihood, log prior) of the current state.
    """
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
def chain_k1(
    ZZ,
    ZXy,
    G,
    B,
    n,
    T,
    sy,
    cy,
    icol,
    fm0,
    fd0,
    grp_of,
    gmk,
    gm0,
    gs0,
    gsk,
    gp1,
    gp2,
    sk,
    sp1,
    sp2,
    tk,
    nu,
    A,
    df,
    Psi,
    tsk,
    tp1,
    tp2,
    beta,
    b,
    Sigma,
    scal,
    a,
    am,
    gmu,
    gtau,
    ga,
    logstep,
    acc,
    n_iter,
    adapt,
    t0,
    o_beta,
    o_sigma,
    o_Sigma,
    o_b,
    o_grp,
    b_sum,
    b_sq,
):
    """Run ``n_iter`` sweeps, updating the state arrays in place.

    State: ``beta`` (p, transformed), ``b`` (J, S), ``Sigma`` (S, S), ``scal = [sigma^2,
    a_sigma]``, ``a`` (S: Huang-Wand auxiliaries), ``am`` (2 + 3D, D) with D = S(S+1)/2: the
    adaptive proposals of the marginal step (layout in :func:`_adapt_proposal`; ``logstep[1]``
    the random walk's global scale, ``acc[1]`` its acceptances and ``acc[4 + n_groups]`` those
    of the independence proposal), ``gmu, gtau, ga`` (hierarchical groups), ``logstep`` /
    ``acc`` (Metropolis-Hastings log step sizes and acceptance counts: index 0 sigma, 1 the
    marginal step, 2 and 3 the centred and non-centred SD steps of a one-column term, 4 + g
    group g).  Draws of iteration ``it`` are written, in user units, to row ``it`` of the
    ``o_*`` arrays when ``o_beta`` has rows (``o_b`` only when it has rows); ``b_sum`` and
    ``b_sq`` accumulate the first two moments of ``b`` (user units) when storing.  During
    adaptation (``adapt``) the proposal covariance of the marginal step follows the running
    covariance of phi (``t0`` counts earlier adaptation iterations).
    """
    J, S, ma = ZXy.shape
    m = B.shape[1]
    p = m - 1
    D = S * (S + 1) // 2
    ng = gm0.shape[0]
    store = o_beta.shape[0] > 0
    store_b = o_b.shape[0] > 0
    Lam = np.zeros((S, S))
    Lg = np.zeros((J, S, S))
    W = np.zeros((J, S, ma))
    Lam2 = np.zeros((S, S))
    Lg2 = np.zeros((J, S, S))
    W2 = np.zeros((J, S, ma))
    Rg = np.zeros((J, S))
    Sacc = np.zeros((ma, ma))
    Sm = np.zeros((m, m))
    Sm2 = np.zeros((m, m))
    Q = np.zeros((p, p))
    RQ = np.zeros((p, p))
    h = np.zeros(p)
    fm = fm0.copy()
    fd = fd0.copy()
    Ps = np.zeros((p, p))
    rs = np.zeros(p)
    vacc = np.zeros(ma)
    M = np.zeros((S, S))
    T1 = np.zeros((S, ma))
    w = np.zeros(S)
    Bx = np.zeros((S, S))
    LC = np.zeros((S, S))
    Lp = np.zeros((S, S))
    Linv = np.zeros((S, S))
    Sig_p = np.zeros((S, S))
    hh = np.zeros(S)
    wl = np.zeros((S, S))
    wa = np.zeros((S, S))
    bu = np.zeros(p)
    Sd = np.zeros(S)
    phi = np.zeros(D)
    phi_p = np.zeros(D)
    zD = np.zeros(D)
    prior_dirty = True
    for it in range(n_iter):
        rate = 0.0
        if adapt:
            rate = min(0.5, 1.0 / math.sqrt(t0 + it + 1.0))
        # ---- fixed-effect prior in transformed units (changes with hierarchical groups)
        if prior_dirty:
            for i in range(p):
                for j in range(p):
                    t = 0.0
                    for k in range(p):
                        t += T[k, i] * fd[k] * T[k, j]
                    Ps[i, j] = sy * sy * t
                t = 0.0
                for k in range(p):
                    e = fm[k] - (cy if k == icol else 0.0)
                    t += T[k, i] * fd[k] * e
                rs[i] = sy * t
            prior_dirty = ng > 0
        sig2 = scal[0]
        sig = math.sqrt(sig2)
        # ---- 0. Sigma | sigma, y with (beta, b) integrated out (random-walk Metropolis)
        _make_pd(Sigma, S, LC)
        ld = _factor(Sigma, sig, ZZ, ZXy, G, B, Lam, Lg, W, Sacc, Sm, M, T1)
        ll_cur = -0.5 * (ld + _beta_system(Sm, sig2, Ps, rs, Q, RQ, h))
        _chol(Sigma, S, LC)
        _L_to_phi(LC, S, phi)
        lp_cur = _log_prior_phi(tk, LC, S, nu, A, df, Psi, tsk, tp1, tp2, Linv)
        # random-walk proposal, scaled by the adapted covariance
        step = math.exp(logstep[1])
        for i in range(D):
            zD[i] = np.random.standard_normal()
        for i in range(D):
            t = 0.0
            for k in range(i + 1):
                t += am[1 + i, k] * zD[k]
            phi_p[i] = phi[i] + step * t
        ok, ll_cur, lp_cur = _marginal_step(
            phi,
            phi_p,
            0.0,
            ll_cur,
            lp_cur,
            Sigma,
            sig,
            sig2,
            ZZ,
            ZXy,
            G,
            B,
            Lam,
            Lg,
            W,
            Sm,
            Lam2,
            Lg2,
            W2,
            Sm2,
            Sacc,
            M,
            T1,
            Ps,
            rs,
            Q,
            RQ,
            h,
            tk,
            nu,
            A,
            df,
            Psi,
            tsk,
            tp1,
            tp2,
            Lp,
            Linv,
            Sig_p,
        )
        acc[1] += 1.0 if ok else 0.0
        if rate > 0.0:
            logstep[1] += rate * ((1.0 if ok else 0.0) - 0.3)
        # independence proposal: a multivariate t fitted to phi in warm-up, folded over the
        # signs of L's columns (the target does not see them)
        if am[1 + 2 * D, 0] >= 200.0:
            for _ in range(_N_INDEPENDENCE):
                _draw_t(am, D, zD, phi_p)
                lq = _log_folded_t(am, D, S, phi_p, zD) - _log_folded_t(am, D, S, phi, zD)
                ok, ll_cur, lp_cur = _marginal_step(
                    phi,
                    phi_p,
                    lq,
                    ll_cur,
                    lp_cur,
                    Sigma,
                    sig,
                    sig2,
                    ZZ,
                    ZXy,
                    G,
                    B,
                    Lam,
                    Lg,
                    W,
                    Sm,
                    Lam2,
                    Lg2,
                    W2,
                    Sm2,
                    Sacc,
                    M,
                    T1,
                    Ps,
                    rs,
                    Q,
                    RQ,
                    h,
                    tk,
                    nu,
                    A,
                    df,
                    Psi,
                    tsk,
                    tp1,
                    tp2,
                    Lp,
                    Linv,
                    Sig_p,
                )
                acc[4 + ng] += 1.0 if ok else 0.0
        if adapt:  # running mean and covariance of phi set the proposal's shape
            _adapt_proposal(am, phi, t0 + it, D)
        if tk == 0:  # the step integrated the auxiliaries out: draw them given the new Sigma
            _inv_diag(Sigma, S, LC, hh, Sd)
            for i in range(S):
                a[i] = _inv_gamma(0.5 * (nu + S), nu * Sd[i] + 1.0 / (A[i] * A[i]))
        _beta_system(Sm, sig2, Ps, rs, Q, RQ, h)
        # ---- 1. joint draw of (beta, b) given Sigma, sigma
        for i in range(p):
            h[i] += np.random.standard_normal()
        _solve_upper_t(RQ, h, p)
        for i in range(p):
            beta[i] = h[i]
        for k in range(ma):  # vacc = B [-beta; 1]
            t = B[k, p]
            for i in range(p):
                t -= B[k, i] * beta[i]
            vacc[k] = t
        for g in range(J):
            for i in range(S):
                t = 0.0
                r = 0.0
                for c in range(ma):
                    t += W[g, i, c] * vacc[c]
                    r += ZXy[g, i, c] * vacc[c]
                w[i] = t + sig * np.random.standard_normal()
                Rg[g, i] = r  # Z_g'(y - X beta)
            _solve_upper_t(Lg[g], w, S)
            for i in range(S):
                t = 0.0
                for k in range(i + 1):
                    t += Lam[i, k] * w[k]
                b[g, i] = t
        # ---- 2. the term's covariance given b
        if tk == 0:  # Huang-Wand through its auxiliary variables a
            for i in range(S):
                for j in range(S):
                    t = 2.0 * nu / a[i] if i == j else 0.0
                    for g in range(J):
                        t += b[g, i] * b[g, j]
                    Bx[i, j] = t
            _inv_wishart(nu + S - 1.0 + J, Bx, S, Sigma, wl, wa)
            _make_pd(Sigma, S, LC)
            _inv_diag(Sigma, S, LC, hh, Sd)
            for i in range(S):
                a[i] = _inv_gamma(0.5 * (nu + S), nu * Sd[i] + 1.0 / (A[i] * A[i]))
        elif tk == 1:  # inverse-Wishart, conjugate
            for i in range(S):
                for j in range(S):
                    t = Psi[i, j]
                    for g in range(J):
                        t += b[g, i] * b[g, j]
                    Bx[i, j] = t
            _inv_wishart(df + J, Bx, S, Sigma, wl, wa)
            _make_pd(Sigma, S, LC)
        else:  # one SD with a Metropolis-Hastings prior: centred, then non-centred step
            ss = 0.0
            for g in range(J):
                ss += b[g, 0] * b[g, 0]
            tau = math.sqrt(Sigma[0, 0])
            eta = _mh_scale(math.log(tau), J, ss, tsk, tp1, tp2, logstep, 2, acc, rate)
            tau_c = math.exp(eta)
            # non-centred: b = tau u with u = b / tau_c fixed; the likelihood moves with tau
            q1 = 0.0
            q2 = 0.0
            for g in range(J):
                ug = b[g, 0] / tau_c
                q1 += ug * Rg[g, 0]
                q2 += ug * ug * ZZ[g, 0, 0]
            prop = eta + math.exp(logstep[3]) * np.random.standard_normal()
            tp = math.exp(prop)
            lt_new = -(tp * tp * q2 - 2.0 * tp * q1) / (2.0 * sig2)
            lt_new += _log_sd_prior(tp, tsk, tp1, tp2) + prop
            lt_old = -(tau_c * tau_c * q2 - 2.0 * tau_c * q1) / (2.0 * sig2)
            lt_old += _log_sd_prior(tau_c, tsk, tp1, tp2) + eta
            ok = math.log(np.random.random()) < lt_new - lt_old
            acc[3] += 1.0 if ok else 0.0
            if rate > 0.0:
                _adapt(logstep, 3, ok, rate)
            if ok:
                for g in range(J):
                    b[g, 0] *= tp / tau_c
                tau_c = tp
            Sigma[0, 0] = tau_c * tau_c
        # ---- 3. sigma^2 from the residual sum of squares on the cross-products
        rss = 0.0
        for k in range(ma):
            t = 0.0
            for l in range(ma):
                t += G[k, l] * vacc[l]
            rss += vacc[k] * t
        for g in range(J):
            for i in range(S):
                rss -= 2.0 * b[g, i] * Rg[g, i]
                t = 0.0
                for j in range(S):
                    t += ZZ[g, i, j] * b[g, j]
                rss += b[g, i] * t
        if rss < 0.0:
            rss = 0.0
        if sk == _HALF_T:
            sig2 = _inv_gamma(0.5 * (sp1 + n), sp1 / scal[1] + 0.5 * rss)
            scal[1] = _inv_gamma(0.5 * (sp1 + 1.0), sp1 / sig2 + 1.0 / (sp2 * sp2))
        else:
            eta = _mh_scale(0.5 * math.log(sig2), n, rss, sk, sp1, sp2, logstep, 0, acc, rate)
            sig2 = math.exp(2.0 * eta)
        scal[0] = sig2
        # ---- 4. hierarchical groups of fixed effects (user units)
        if ng > 0:
            for i in range(p):
                t = 0.0
                for k in range(p):
                    t += T[i, k] * beta[k]
                bu[i] = sy * t + (cy if i == icol else 0.0)
            for gi in range(ng):
                cnt = 0.0
                tot = 0.0
                for i in range(p):
                    if grp_of[i] == gi:
                        cnt += 1.0
                        tot += bu[i]
                t2 = gtau[gi] * gtau[gi]
                if gmk[gi] == 1:
                    prec = 1.0 / (gs0[gi] * gs0[gi]) + cnt / t2
                    mean = (gm0[gi] / (gs0[gi] * gs0[gi]) + tot / t2) / prec
                    gmu[gi] = mean + np.random.standard_normal() / math.sqrt(prec)
                else:
                    gmu[gi] = gm0[gi]
                ss = 0.0
                for i in range(p):
                    if grp_of[i] == gi:
                        ss += (bu[i] - gmu[gi]) ** 2
                if gsk[gi] == _HALF_T:
                    t2 = _inv_gamma(0.5 * (gp1[gi] + cnt), gp1[gi] / ga[gi] + 0.5 * ss)
                    ga[gi] = _inv_gamma(0.5 * (gp1[gi] + 1.0), gp1[gi] / t2 + 1.0 / gp2[gi] ** 2)
                    gtau[gi] = math.sqrt(t2)
                else:
                    eta = _mh_scale(
                        math.log(gtau[gi]),
                        cnt,
                        ss,
                        gsk[gi],
                        gp1[gi],
                        gp2[gi],
                        logstep,
                        4 + gi,
                        acc,
                        rate,
                    )
                    gtau[gi] = math.exp(eta)
                for i in range(p):
                    if grp_of[i] == gi:
                        fm[i] = gmu[gi]
                        fd[i] = 1.0 / (gtau[gi] * gtau[gi])
        # ---- store, in user units
        if store:
            for i in range(p):
                t = 0.0
                for k in range(p):
                    t += T[i, k] * beta[k]
                o_beta[it, i] = sy * t + (cy if i == icol else 0.0)
            o_sigma[it] = sy * math.sqrt(sig2)
            c = 0
            for j in range(S):
                for i in range(j, S):
                    o_Sigma[it, c] = sy * sy * Sigma[i, j]
                    c += 1
            for gi in range(ng):
                o_grp[it, gi] = gmu[gi]
                o_grp[it, ng + gi] = gtau[gi]
            for g in range(J):
                for i in range(S):
                    v = sy * b[g, i]
                    b_sum[g, i] += v
                    b_sq[g, i] += v * v
                    if store_b:
                        o_b[it, g, i] = v


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


@njit(cache=True, nogil=True)
def seed(value):
    """Seed the generator the compiled code draws from (per process)."""
    np.random.seed(value)
