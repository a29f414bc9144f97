"""The Gibbs sweep in NumPy, for any number of random-effects terms (nested or crossed).

The same steps as the compiled kernel (:mod:`hlm.bayes.kernel`): for each term, an adaptive
random-walk Metropolis step on the Cholesky factor of its covariance against the marginal
likelihood (``beta`` and ``b`` integrated out; no independence proposal here), the joint draw
of ``(beta, b)``, the conjugate or Metropolis-Hastings updates of the covariances given ``b``,
sigma^2 and the hierarchical groups.  The factorisation is the core's
:class:`hlm.linalg.blocked.BlockedCholesky`, updated at ``theta = pack(chol(Sigma_k) /
sigma)``; the draw of ``(beta, b)`` reuses its blocks,

    beta ~ N(Q^{-1} h, Q^{-1}),  Q = S_XX / sigma^2 + P,  h = S_Xy / sigma^2 + r,
    u = L_Z^{-T} (W v + sigma z),  v = [-beta; 1],  b_k = Lambda_k u_k,

with ``S`` the Schur complement of the random effects in ``[X y]'[X y]``, ``L_Z`` the
random-effects part of the blocked factor and ``W = L_Z^{-1} Lambda' Z'[X y]``.
Nothing here depends on the number of rows.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la

from hlm.bayes.problem import (
    SD_HALFNORMAL,
    SD_HALFT,
    TERM_HUANGWAND,
    TERM_INVWISHART,
    TERM_SD_MH,
    Problem,
)
from hlm.linalg import batched


def inv_wishart(rng, df: float, Psi: np.ndarray) -> np.ndarray:
    """A draw from IW(df, Psi) (Bartlett decomposition)."""
    S = Psi.shape[0]
    L = np.linalg.cholesky(Psi)
    Am = np.tril(rng.standard_normal((S, S)), -1)
    Am[np.diag_indices(S)] = np.sqrt(rng.chisquare(df - np.arange(S)))
    M = la.solve_triangular(Am, L.T, lower=True).T  # L A^{-T}
    return M @ M.T


def make_pd(Sigma: np.ndarray) -> np.ndarray:
    """Sigma with a diagonal jitter (1e-12 of its mean variance, growing tenfold) when it is
    singular to rounding; see :func:`hlm.bayes.kernel._make_pd`."""
    scale = float(np.mean(np.diag(Sigma)))
    jit = 1e-12 * (scale if scale > 0 else 1.0)
    out = Sigma
    for _ in range(40):
        try:
            L = np.linalg.cholesky(out)
            if np.all(np.diag(L) ** 2 > 1e-14 * np.diag(out)):
                return out
        except np.linalg.LinAlgError:
            pass
        out = out + jit * np.eye(len(out))
        jit *= 10.0
    return out


def log_prior_L(tp, L: np.ndarray) -> float:
    """Log prior of a term's Cholesky factor L (diagonal of either sign), Jacobian included;
    the same density as :func:`hlm.bayes.kernel._log_prior_phi`."""
    S = L.shape[0]
    d = np.abs(np.diag(L))
    if np.any(d == 0):
        return -np.inf
    if tp.kind == TERM_SD_MH:
        return log_sd_prior(d[0], tp.sd.kind, tp.sd.p1, tp.sd.p2)
    Linv = la.solve_triangular(L, np.eye(S), lower=True)
    Sinv = Linv.T @ Linv
    logdet = 2.0 * np.log(d).sum()
    if tp.kind == TERM_HUANGWAND:
        out = -0.5 * (tp.nu + 2 * S) * logdet
        out -= 0.5 * (tp.nu + S) * np.log(tp.nu * np.diag(Sinv) + 1.0 / tp.A**2).sum()
    else:
        out = -0.5 * (tp.df + S + 1) * logdet - 0.5 * np.sum(tp.Psi * Sinv)
    return float(out + np.sum((S - np.arange(S)) * np.log(d)))


def log_sd_prior(s: float, kind: int, p1: float, p2: float) -> float:
    """Log density (up to a constant) of an SD prior updated by Metropolis-Hastings."""
    if kind == SD_HALFNORMAL:
        return -0.5 * (s / p1) ** 2
    ls = np.log(s)
    return -ls - 0.5 * ((ls - p1) / p2) ** 2


class NumpyGibbs:
    """State and sweep of one chain (transformed units, see :mod:`hlm.bayes.problem`)."""

    def __init__(self, prob: Problem, rng: np.random.Generator, Sigma0, sigma2_0):
        self.prob = prob
        self.rng = rng
        self.cov, self.chol = prob.factor()
        self.Sigma = [np.array(s, dtype=float) for s in Sigma0]
        self.sigma2 = float(sigma2_0)
        self.a_sigma = 1.0
        self.a = [np.asarray(tp.A, dtype=float) ** 2 for tp in prob.terms]
        self.tril = [np.tril_indices(S.shape[0]) for S in self.Sigma]
        D = [len(t[0]) for t in self.tril]
        #: per term: running mean, scatter and count of phi, the proposal factor, log step
        self.am = [
            {
                "mean": np.zeros(d),
                "scatter": np.zeros((d, d)),
                "n": 0,
                "L": np.eye(d),
                "logstep": np.log(0.2),
                "acc": 0.0,
            }
            for d in D
        ]
        ng = len(prob.fix_groups)
        self.gmu = np.array([g.m0 for g in prob.fix_groups])
        self.gtau = np.ones(ng)
        self.ga = np.ones(ng)
        self.fm = prob.fix_mean.copy()
        self.fd = prob.fix_dinv.copy()
        for gi, grp in enumerate(prob.fix_groups):
            self.fm[grp.index] = self.gmu[gi]
            self.fd[grp.index] = 1.0
        self.logstep = np.zeros(4 + ng)
        self.acc = np.zeros(4 + ng)
        self.beta = np.zeros(prob.p)
        self.b = [np.zeros((zz.shape[0], zz.shape[1])) for zz in prob.ZZ]

    # ------------------------------------------------------------------ helpers
    def _Zr(self, k: int, vacc: np.ndarray) -> np.ndarray:
        """Per group of term k: ``Z_k'(y - X beta - sum_{l != k} Z_l b_l)``, shape (J_k, S_k)."""
        prob = self.prob
        out = prob.ZXy[k] @ vacc
        for l in range(prob.K):
            if l == k:
                continue
            P = prob.pairs[(k, l)] if k < l else prob.pairs[(l, k)].T
            out = out - (P @ self.b[l].reshape(-1)).reshape(out.shape)
        return out

    def _rss(self, vacc: np.ndarray) -> float:
        prob = self.prob
        rss = vacc @ prob.G @ vacc
        for k in range(prob.K):
            bk = self.b[k]
            rss -= 2.0 * np.sum(bk * (prob.ZXy[k] @ vacc))
            rss += np.einsum("gi,gij,gj->", bk, prob.ZZ[k], bk)
            for l in range(k + 1, prob.K):
                rss += 2.0 * bk.reshape(-1) @ (prob.pairs[(k, l)] @ self.b[l].reshape(-1))
        return max(float(rss), 0.0)

    def _mh_log_scale(self, eta, k_count, ss, code, idx, rate):
        prop = eta + np.exp(self.logstep[idx]) * self.rng.standard_normal()

        def lt(e):
            return -k_count * e - 0.5 * ss * np.exp(-2 * e) + log_sd_prior(np.exp(e), *code) + e

        ok = np.log(self.rng.random()) < lt(prop) - lt(eta)
        self.acc[idx] += ok
        if rate > 0:
            self.logstep[idx] += rate * (float(ok) - 0.44)
        return prop if ok else eta

    def _loglik(self, Sigmas, sig, P, r) -> float:
        """log p(y | Sigma, sigma) up to a constant, beta (its prior) and b integrated out."""
        p = self.prob.p
        sig2 = sig * sig
        try:
            lams = [np.linalg.cholesky(S) / sig for S in Sigmas]
        except np.linalg.LinAlgError:
            return -np.inf
        if not self.chol.update(self.cov.pack(lams)):
            return -np.inf
        c = self.chol
        Sm = c.schur_model()
        R = np.linalg.cholesky(Sm[:p, :p] / sig2 + P)
        h = la.solve_triangular(R, Sm[:p, p] / sig2 + r, lower=True)
        return -0.5 * (c.logdet_Z + 2 * np.log(np.diag(R)).sum() + Sm[p, p] / sig2 - h @ h)

    def _marginal_step(self, k, tp, ll, sig, P, r, rate) -> float:
        """Random-walk Metropolis on term k's Cholesky factor (signed diagonal)."""
        st, rng = self.am[k], self.rng
        rows, cols = self.tril[k]
        L = np.linalg.cholesky(self.Sigma[k])
        phi = L[rows, cols]
        prop = phi + np.exp(st["logstep"]) * (st["L"] @ rng.standard_normal(len(phi)))
        Lp = np.zeros_like(L)
        Lp[rows, cols] = prop
        lp_new = log_prior_L(tp, Lp)
        ok = False
        if np.isfinite(lp_new):
            Sig_p = [S if i != k else Lp @ Lp.T for i, S in enumerate(self.Sigma)]
            ll_new = self._loglik(Sig_p, sig, P, r)
            ok = np.log(rng.random()) < ll_new + lp_new - ll - log_prior_L(tp, L)
        if ok:
            self.Sigma[k] = Lp @ Lp.T
            ll = ll_new
            phi = np.linalg.cholesky(self.Sigma[k])[rows, cols]
        self.acc[1] += ok / max(len(self.am), 1)
        if rate > 0:
            st["logstep"] += rate * (float(ok) - 0.3)
            st["n"] += 1
            d = phi - st["mean"]
            st["mean"] += d / st["n"]
            st["scatter"] += np.outer(d, phi - st["mean"])
            if st["n"] >= 100 and st["n"] % 50 == 0:
                C = st["scatter"] / (st["n"] - 1) + 1e-10 * np.eye(len(phi))
                st["L"] = 2.38 / np.sqrt(len(phi)) * np.linalg.cholesky(C)
        return ll

    def _draw_a(self, k, tp) -> None:
        """Huang-Wand auxiliaries given Sigma: a_i ~ IG((nu + S)/2, nu (Sigma^-1)_ii + 1/A^2)."""
        S = self.Sigma[k].shape[0]
        Sd = np.diag(np.linalg.inv(self.Sigma[k]))
        self.a[k] = (tp.nu * Sd + 1.0 / tp.A**2) / self.rng.gamma(0.5 * (tp.nu + S), size=S)

    # ------------------------------------------------------------------ one sweep
    def sweep(self, rate: float = 0.0) -> None:
        """One Gibbs iteration; ``rate`` > 0 adapts the Metropolis-Hastings step sizes."""
        prob, rng = self.prob, self.rng
        p = prob.p
        sig2 = self.sigma2
        sig = np.sqrt(sig2)
        P, r = prob.prior_precision_s(self.fm, self.fd)
        self.Sigma = [make_pd(S) for S in self.Sigma]
        # 0. each term's Sigma against the marginal likelihood ((beta, b) integrated out)
        ll = self._loglik(self.Sigma, sig, P, r)
        for k, tp in enumerate(prob.terms):
            ll = self._marginal_step(k, tp, ll, sig, P, r, rate)
            if tp.kind == TERM_HUANGWAND:
                self._draw_a(k, tp)
        # 1. (beta, b) jointly, through the core's blocked Cholesky
        lams = [np.linalg.cholesky(S) / sig for S in self.Sigma]
        if not self.chol.update(self.cov.pack(lams)):
            raise FloatingPointError("the penalised cross-product matrix is not positive")
        c = self.chol
        Sm = c.schur_model()
        Q = Sm[:p, :p] / sig2 + P
        h = Sm[:p, p] / sig2 + r
        R = np.linalg.cholesky(Q)
        z = la.solve_triangular(R, h, lower=True) + rng.standard_normal(p)
        self.beta = la.solve_triangular(R.T, z, lower=False)
        v = np.append(-self.beta, 1.0)
        vacc = prob.B @ v
        u = self._draw_u(v, sig)
        self.b = [uk @ lam.T for uk, lam in zip(u, lams, strict=True)]
        # 2. covariance of each term
        for k, tp in enumerate(prob.terms):
            self._term(k, tp, vacc, sig2, rate)
        # 3. sigma^2
        rss = self._rss(vacc)
        sp = prob.sigma_prior
        if sp.kind == SD_HALFT:
            sig2 = (sp.p1 / self.a_sigma + 0.5 * rss) / rng.gamma(0.5 * (sp.p1 + prob.n))
            self.a_sigma = (sp.p1 / sig2 + 1 / sp.p2**2) / rng.gamma(0.5 * (sp.p1 + 1))
        else:
            code = (sp.kind, sp.p1, sp.p2)
            sig2 = np.exp(2 * self._mh_log_scale(0.5 * np.log(sig2), prob.n, rss, code, 0, rate))
        self.sigma2 = float(sig2)
        # 4. hierarchical groups of fixed effects (user units)
        if prob.fix_groups:
            self._groups(rate)

    def _draw_u(self, v: np.ndarray, sig: float) -> list:
        """``u = L_Z^{-T}(W v + sigma z)`` per term, the core's solve with noise added."""
        c, rng = self.chol, self.rng
        W1 = c.W1_model()
        r1 = W1 @ v + sig * rng.standard_normal(W1.shape[:2])
        rest = []
        if c.K > 1:
            Wrx = c.Wrx if c.basis is None else c.Wrx @ c.basis
            rr = Wrx @ v + sig * rng.standard_normal(c.qr)
            ur = la.solve_triangular(c.Lrr.T, rr, lower=False)
            r1 = r1 - (c.Wr @ ur).reshape(r1.shape)
            for i, k in enumerate(range(1, c.K)):
                o = c.rest_offsets[i]
                rest.append(ur[o : o + c.q[k]].reshape(c.J[k], c.S[k]))
        u1 = batched.solve_upper_t(c.L1, r1[:, :, None])[:, :, 0]
        return [u1] + rest

    def _term(self, k, tp, vacc, sig2, rate) -> None:
        rng = self.rng
        b = self.b[k]
        J, S = b.shape
        if tp.kind == TERM_HUANGWAND:  # Huang-Wand through its auxiliary variables
            Psi = np.diag(2.0 * tp.nu / self.a[k]) + b.T @ b
            self.Sigma[k] = make_pd(inv_wishart(rng, tp.nu + S - 1 + J, Psi))
            self._draw_a(k, tp)
        elif tp.kind == TERM_INVWISHART:
            self.Sigma[k] = make_pd(inv_wishart(rng, tp.df + J, tp.Psi + b.T @ b))
        else:
            code = (tp.sd.kind, tp.sd.p1, tp.sd.p2)
            tau = np.sqrt(self.Sigma[k][0, 0])
            eta = self._mh_log_scale(np.log(tau), J, float(b[:, 0] @ b[:, 0]), code, 2, rate)
            tau_c = np.exp(eta)
            u = b[:, 0] / tau_c
            R = self._Zr(k, vacc)[:, 0]
            q1, q2 = float(u @ R), float(u * u @ self.prob.ZZ[k][:, 0, 0])

            def lt(e):
                t = np.exp(e)
                return -(t * t * q2 - 2 * t * q1) / (2 * sig2) + log_sd_prior(t, *code) + e

            prop = eta + np.exp(self.logstep[3]) * rng.standard_normal()
            ok = np.log(rng.random()) < lt(prop) - lt(eta)
            self.acc[3] += ok
            if rate > 0:
                self.logstep[3] += rate * (float(ok) - 0.44)
            if ok:
                tau_c = np.exp(prop)
            self.b[k] = (u * tau_c)[:, None]
            self.Sigma[k] = np.array([[tau_c**2]])

    def _groups(self, rate) -> None:
        prob, rng = self.prob, self.rng
        bu = prob.beta_user(self.beta)
        for gi, grp in enumerate(prob.fix_groups):
            x = bu[grp.index]
            cnt = len(x)
            t2 = self.gtau[gi] ** 2
            if grp.mean_kind == 1:
                prec = 1 / grp.s0**2 + cnt / t2
                mean = (grp.m0 / grp.s0**2 + x.sum() / t2) / prec
                self.gmu[gi] = mean + rng.standard_normal() / np.sqrt(prec)
            ss = float(np.sum((x - self.gmu[gi]) ** 2))
            sd = grp.sd
            if sd.kind == SD_HALFT:
                t2 = (sd.p1 / self.ga[gi] + 0.5 * ss) / rng.gamma(0.5 * (sd.p1 + cnt))
                self.ga[gi] = (sd.p1 / t2 + 1 / sd.p2**2) / rng.gamma(0.5 * (sd.p1 + 1))
                self.gtau[gi] = np.sqrt(t2)
            else:
                code = (sd.kind, sd.p1, sd.p2)
                eta = self._mh_log_scale(np.log(self.gtau[gi]), cnt, ss, code, 4 + gi, rate)
                self.gtau[gi] = np.exp(eta)
            self.fm[grp.index] = self.gmu[gi]
            self.fd[grp.index] = 1.0 / self.gtau[gi] ** 2
