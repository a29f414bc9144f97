"""Bridge sampling of the log marginal likelihood (Meng & Wong 1996; Gronau et al. 2017).

Only the variance parameters need sampling: the fixed and random effects integrate out in
closed form (:mod:`hlm.bayes.marginal`), and so do the Huang-Wand auxiliary variables (their
prior has a closed-form density).  The coordinates are unconstrained: ``log sigma``, the
log-Cholesky factor of each term's covariance (log SD for a one-column term with an SD
prior), ``log tau`` and ``mu`` of each hierarchical group.  The posterior draws are split in
halves: the first fits a normal proposal, the second and as many proposal draws bridge.  The
iterative estimator and its relative mean squared error (Fruehwirth-Schnatter 2004, with the
effective sample size of the posterior half) follow Gronau et al. (2017).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import integrate, special

from hlm.bayes.draws import packed_index
from hlm.bayes.marginal import (
    IntegratedLikelihood,
    log_prior_group,
    log_prior_Sigma,
    log_prior_sigma,
)
from hlm.bayes.problem import TERM_SD_MH


@dataclass(frozen=True)
class BridgeEstimate:
    """A log marginal likelihood with its Monte Carlo standard error.

    Attributes
    ----------
    value : float
        ``log p(y)``.
    se : float
        Approximate standard error of ``value`` (the relative error of ``p(y)``).
    iterations : int
        Iterations of the bridge fixed point.
    method : str
    """

    value: float
    se: float
    iterations: int
    method: str = "bridge sampling"


class Coordinates:
    """Map posterior draws to unconstrained coordinates and back; the log posterior there."""

    def __init__(self, prob):
        self.prob = prob
        self.lik = IntegratedLikelihood(prob)
        self.S = [zz.shape[1] for zz in prob.ZZ]

    def from_draws(self, res) -> np.ndarray:
        """Coordinates of every draw, shape (chains, draws, dim)."""
        d = res.draws
        cols = [np.log(d.sigma)[..., None]]
        for k, S in enumerate(self.S):
            idx = packed_index(S)
            full = d.Sigma[k][..., idx]  # (C, D, S, S)
            L = np.linalg.cholesky(full)
            if self.prob.terms[k].kind == TERM_SD_MH:
                cols.append(np.log(L[..., 0, 0])[..., None])
                continue
            r, c = np.tril_indices(S)
            v = L[..., r, c]
            diag = r == c
            v[..., diag] = np.log(v[..., diag])
            cols.append(v)
        ng = len(self.prob.fix_groups)
        for gi, g in enumerate(self.prob.fix_groups):
            cols.append(np.log(d.groups[..., ng + gi])[..., None])
            if g.mean_kind == 1:
                cols.append(d.groups[..., gi][..., None])
        return np.concatenate(cols, axis=-1)

    def log_posterior(self, x: np.ndarray) -> float:
        """Unnormalised log posterior density at coordinates x (Jacobian included)."""
        prob = self.prob
        sigma = np.exp(x[0])
        out = log_prior_sigma(prob, sigma) + x[0]
        pos = 1
        Sigmas = []
        for k, S in enumerate(self.S):
            tp = prob.terms[k]
            if tp.kind == TERM_SD_MH:
                Sig = np.array([[np.exp(2 * x[pos])]])
                out += log_prior_Sigma(tp, Sig) + x[pos]
                pos += 1
            else:
                r, c = np.tril_indices(S)
                D = len(r)
                v = x[pos : pos + D].copy()
                diag = r == c
                logd = v[diag]
                v[diag] = np.exp(logd)
                L = np.zeros((S, S))
                L[r, c] = v
                Sig = L @ L.T
                # Jacobian of (log-diagonal Cholesky) -> Sigma
                out += log_prior_Sigma(tp, Sig) + S * np.log(2.0)
                out += np.sum((S - np.arange(S) + 1) * logd)
                pos += D
            Sigmas.append(Sig)
        fm, fd = prob.fix_mean.copy(), prob.fix_dinv.copy()
        for g in prob.fix_groups:
            tau = np.exp(x[pos])
            pos += 1
            mu = g.m0
            if g.mean_kind == 1:
                mu = x[pos]
                pos += 1
            out += log_prior_group(g, mu, tau) + np.log(tau)
            fm[g.index] = mu
            fd[g.index] = 1.0 / tau**2
        if not np.isfinite(out):
            return -np.inf
        return out + self.lik(Sigmas, sigma, fm, fd)


def bridge_estimate(res, *, seed=None, tol: float = 1e-10, maxiter: int = 1000) -> BridgeEstimate:
    """The log marginal likelihood of a :class:`PosteriorResult` by bridge sampling."""
    from hlm.bayes.diagnostics import _arviz

    coords = Coordinates(res.prob)
    x = coords.from_draws(res)
    C, D, dim = x.shape
    half = D // 2
    fit = x[:, :half].reshape(-1, dim)
    post = x[:, half:]
    mean = fit.mean(axis=0)
    cov = np.atleast_2d(np.cov(fit, rowvar=False))
    L = np.linalg.cholesky(cov + 1e-12 * np.eye(dim))
    rng = np.random.default_rng(seed)
    n1 = C * (D - half)  # posterior draws used in the bridge
    n2 = n1  # proposal draws
    prop = mean + rng.standard_normal((n2, dim)) @ L.T

    def log_g(z):
        u = np.linalg.solve(L, (z - mean).T)
        return (
            -0.5 * np.sum(u * u, axis=0) - np.log(np.diag(L)).sum() - 0.5 * dim * np.log(2 * np.pi)
        )

    post_flat = post.reshape(-1, dim)
    lq_post = np.array([coords.log_posterior(z) for z in post_flat])
    lq_prop = np.array([coords.log_posterior(z) for z in prop])
    l1 = lq_post - log_g(post_flat)  # log q/g at the posterior draws
    l2 = lq_prop - log_g(prop)  # and at the proposal draws
    shift = np.median(l1)
    l1, l2 = l1 - shift, l2 - shift
    s1, s2 = n1 / (n1 + n2), n2 / (n1 + n2)
    logr = 0.0
    it = 0
    while it < maxiter:
        it += 1
        # numerator: mean over proposal draws of q/(s1 q + s2 r g); denominator: mean over
        # posterior draws of g/(s1 q + s2 r g); all in logs
        num = special.logsumexp(l2 - np.logaddexp(np.log(s1) + l2, np.log(s2) + logr)) - np.log(n2)
        den = special.logsumexp(-np.logaddexp(np.log(s1) + l1, np.log(s2) + logr)) - np.log(n1)
        new = num - den
        if abs(new - logr) < tol:
            logr = new
            break
        logr = new
    # relative mean squared error (Fruehwirth-Schnatter 2004)
    f_prop = np.exp(l2 - np.logaddexp(np.log(s1) + l2, np.log(s2) + logr))
    f_post = np.exp(-np.logaddexp(np.log(s1) + l1, np.log(s2) + logr))
    ess = (
        float(_arviz().ess(f_post.reshape(C, D - half), method="mean"))
        if C * (D - half) > 8
        else n1
    )
    re2 = np.var(f_prop) / (n2 * np.mean(f_prop) ** 2) + np.var(f_post) / (
        max(ess, 1.0) * np.mean(f_post) ** 2
    )
    return BridgeEstimate(value=float(logr + shift), se=float(np.sqrt(re2)), iterations=it)


def log_marginal_no_ranef(prob) -> BridgeEstimate:
    """``log p(y)`` of the model without random effects (same fixed part and priors) by
    adaptive quadrature over log sigma: a one-dimensional integral."""
    if prob.fix_groups:
        raise NotImplementedError(
            "the marginal likelihood of a model without random effects is computed for "
            "normal or flat fixed-effect priors only, not Hierarchical groups"
        )
    from hlm.bayes.problem import Problem

    reduced = Problem(
        **{
            **prob.__dict__,
            "ZZ": [],
            "ZXy": [],
            "pairs": {},
            "terms": [],
            "Sigma0": [],
            "columns": [],
            "levels": [],
            "groups": [],
        }
    )
    lik = IntegratedLikelihood(reduced)

    def f(t):
        return lik([], np.exp(t)) + log_prior_sigma(prob, np.exp(t)) + t

    ts = np.linspace(np.log(prob.sy) - 12, np.log(prob.sy) + 6, 2001)
    vals = np.array([f(t) for t in ts])
    top = ts[np.argmax(vals)]
    peak = vals.max()
    val, err = integrate.quad(
        lambda t: np.exp(f(t) - peak),
        top - 12,
        top + 12,
        points=[top],
        limit=200,
        epsabs=0,
        epsrel=1e-10,
    )
    return BridgeEstimate(
        value=float(peak + np.log(val)), se=float(err / val), iterations=0, method="quadrature"
    )
