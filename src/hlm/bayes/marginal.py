"""The integrated likelihood p(y | Sigma, sigma) and the prior densities, in user units.

Given the covariance matrices and sigma, the fixed effects (under their normal or flat prior)
and the random effects integrate out in closed form from the blocked Cholesky factor of the
penalised cross-product matrix (the core's :class:`hlm.linalg.blocked.BlockedCholesky`):

    -2 log p(y_s | .) = n log(2 pi sigma^2) + log det(L_Z L_Z') + log det Q - p log(2 pi)
                        + S_yy / sigma^2 + c - h' Q^{-1} h + sum_proper log(2 pi d_i)
                        - 2 log |det(s_y T)|

with ``Q = S_XX / sigma^2 + P``, ``h = S_Xy / sigma^2 + r`` (``S`` the Schur complement of the
random effects in ``[X y]'[X y]``, ``P, r, c`` the fixed-effect prior moved to the transformed
columns), and ``log p(y) = log p(y_s) - n log s_y + sum(log w) / 2``.  A flat prior has density
1 in the user's units, so models compared by a Bayes factor must share their flat-prior
fixed effects.  Nothing here depends on the number of rows.
"""

from __future__ import annotations

import numpy as np

from hlm.bayes.priors import HuangWand, InverseWishart, Normal
from hlm.bayes.problem import Problem


class IntegratedLikelihood:
    """``log p(y | Sigma_k, sigma, fixed-effect prior)`` for one problem, user units."""

    def __init__(self, prob: Problem):
        self.prob = prob
        self.K = prob.K
        if self.K:
            self.cov, self.chol = prob.factor()
        self.logdet_T = float(np.linalg.slogdet(prob.sy * prob.T)[1])

    def __call__(self, Sigmas, sigma: float, fm=None, fdinv=None) -> float:
        """Log integrated likelihood at user-unit ``Sigmas`` (list of S_k x S_k) and sigma."""
        prob = self.prob
        sy, n, p = prob.sy, prob.n, prob.p
        fm = prob.fix_mean if fm is None else fm
        fdinv = prob.fix_dinv if fdinv is None else fdinv
        sig_s = sigma / sy
        sig2 = sig_s**2
        if self.K:
            try:
                lams = [np.linalg.cholesky(np.asarray(S) / sy**2) / sig_s for S in Sigmas]
            except np.linalg.LinAlgError:
                return -np.inf
            if not self.chol.update(self.cov.pack(lams)):
                return -np.inf
            c = self.chol
            Sm = c.schur_model()
            logdet_Z = c.logdet_Z
        else:
            Sm = prob.B.T @ prob.G @ prob.B
            logdet_Z = 0.0
        P, r = prob.prior_precision_s(fm, fdinv)
        e = fm.copy()
        if prob.icol >= 0:
            e[prob.icol] -= prob.cy
        c0 = float(np.sum(fdinv * e * e))
        Q = Sm[:p, :p] / sig2 + P
        try:
            R = np.linalg.cholesky(Q)
        except np.linalg.LinAlgError:
            return -np.inf
        h = np.linalg.solve(R, Sm[:p, p] / sig2 + r)
        proper = fdinv > 0
        m2 = (
            n * np.log(2 * np.pi * sig2)
            + logdet_Z
            + 2 * np.log(np.diag(R)).sum()
            - p * np.log(2 * np.pi)
            + Sm[p, p] / sig2
            + c0
            - h @ h
            + np.sum(np.log(2 * np.pi / fdinv[proper]))
            - 2 * self.logdet_T
        )
        return float(-0.5 * m2 - n * np.log(sy) + 0.5 * prob.sum_log_w)


def log_prior_sigma(prob: Problem, sigma: float) -> float:
    """Log prior density of the residual SD (user units)."""
    return float(prob.sigma_user.logpdf(sigma))


def log_prior_Sigma(tp, Sigma: np.ndarray) -> float:
    """Log prior density of a term's covariance matrix (user units).

    For a one-column term with an SD prior, the density of the SD (not of the variance):
    callers parametrise that case by log SD.
    """
    user = tp.user
    if isinstance(user, HuangWand):
        return user.logpdf(Sigma, np.asarray(tp.user_A))
    if isinstance(user, InverseWishart):
        return user.logpdf(Sigma)
    return float(user.logpdf(np.sqrt(Sigma[0, 0])))


def log_prior_group(group, mu: float, tau: float) -> float:
    """Log prior density of a hierarchical group's (mean, SD)."""
    out = float(group.user.sd.logpdf(tau))
    if isinstance(group.user.mean, Normal):
        out += float(
            -0.5 * ((mu - group.m0) / group.s0) ** 2 - np.log(group.s0 * np.sqrt(2 * np.pi))
        )
    return out
