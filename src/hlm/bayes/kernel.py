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

Compiled by numba with ``cache=True`` (once per machine); this module (with its helpers in
:mod:`hlm.bayes._kernel_linalg` and :mod:`hlm.bayes._kernel_mh`) is imported only when numba
is installed.  :mod:`hlm.bayes.numpy_gibbs` is the NumPy path, for any number of terms.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from hlm.bayes._kernel_linalg import (
    _beta_system,
    _chol,
    _factor,
    _inv_diag,
    _inv_gamma,
    _inv_wishart,
    _make_pd,
    _solve_upper_t,
)
from hlm.bayes._kernel_mh import (
    _HALF_T,
    _N_INDEPENDENCE,
    _adapt,
    _adapt_proposal,
    _draw_t,
    _L_to_phi,
    _log_folded_t,
    _log_prior_phi,
    _log_sd_prior,
    _marginal_step,
    _mh_scale,
)

# numba compiles NumPy's legacy global generator (np.random.seed, np.random.gamma, ...) and
# not numpy.random.Generator: the legacy calls are deliberate here
# ruff: noqa: NPY002


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
    # what the Metropolis-Hastings step on phi reads and writes, bundled once
    stats = (ZZ, ZXy, G, B)
    fac_cur = (Lam, Lg, W, Sm)  # factor of the current Sigma
    fac_prop = (Lam2, Lg2, W2, Sm2)  # factor of the proposal
    work = (Sacc, M, T1, Ps, rs, Q, RQ, h, Lp, Linv, Sig_p)
    prior = (tk, nu, A, df, Psi, tsk, tp1, tp2)
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
            phi, phi_p, 0.0, ll_cur, lp_cur, Sigma, sig, sig2,
            stats, fac_cur, fac_prop, work, prior,
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
                    phi, phi_p, lq, ll_cur, lp_cur, Sigma, sig, sig2,
                    stats, fac_cur, fac_prop, work, prior,
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
def seed(value):
    """Seed the generator the compiled code draws from (per process)."""
    np.random.seed(value)
