"""EM for the variance components (empirical Bayes / maximum likelihood), on the cross-products.

The random effects b are the missing data (Dempster, Rubin & Tsutakawa 1981; Raudenbush &
Bryk 2002, ch. 14); for REML the fixed effects are missing too (flat prior).  With
``b_k = lambda_k u_k`` and the blocked Cholesky factor of the profiled engine at the current
(theta, sigma^2):

* E-step: conditional means ``u_hat`` (``chol.u(beta)``) and conditional variances
  ``sigma^2 V_g`` of each group's u (``chol.conditional_variances()``); for REML ``V_g``
  gains ``H_g H_g'`` with ``H = L^{-T} W_X R_X^{-1}``, the spread that the uncertainty in
  beta adds;
* M-step: ``Sigma_k = lambda_k (u_k'u_k + sigma^2 sum_g V_g) lambda_k' / J_k`` and
  ``sigma^2 = (|r|^2 + sigma^2 (q [+ p] - sum_g tr V_g)) / n``, where
  ``|r|^2 = pwrss - |u|^2`` is the residual sum of squares at the conditional means.

Each iteration costs one factor update: nothing depends on n.  The (restricted)
log-likelihood never decreases from one EM iteration to the next.  Plain EM converges
linearly, slowly where the likelihood is flat; SQUAREM (Varadhan & Roland 2008, scheme S3)
extrapolates from two EM steps in (theta, log sigma^2) and keeps the extrapolated point
only if its log-likelihood is at least that of the EM step it replaces, so the path stays
monotone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hlm.engines.varcomp import criterion_at, profiled_sigma2, psd_cholesky, update_chol


@dataclass
class EMResult:
    """Where EM stopped (cross-product units)."""

    theta: np.ndarray
    sigma2: float
    criterion: float
    iterations: int
    loglik_path: list
    converged: bool
    message: str
    seconds: float
    evaluations: int = 0
    steps: list = field(default_factory=list)


class EMMap:
    """The EM update ``(theta, sigma^2) -> (theta', sigma^2')`` of a model.

    Parameters
    ----------
    model : LinearMixedModel
    fixed_sigmas : dict, optional
        Term index -> ``Sigma_k`` (cross-product units) held fixed.
    fixed_sigma2 : float, optional
        Residual variance held fixed (cross-product units).
    """

    def __init__(self, model, fixed_sigmas=None, fixed_sigma2=None):
        self.model = model
        self.fixed_sigmas = dict(fixed_sigmas or {})
        self.fixed_sigma2 = fixed_sigma2
        self.calls = 0

    def __call__(self, theta: np.ndarray, sigma2: float):
        """One E- and M-step.

        Returns
        -------
        (criterion at the input, theta', sigma2'), or None if theta is not feasible.
        """
        m = self.model
        c = m.chol
        self.calls += 1
        if not update_chol(m, theta):
            return None
        crit = criterion_at(m, theta, sigma2, update=False)
        p = m.p
        beta = c.beta()
        u = c.u(beta)
        V = c.conditional_variances()
        if m.reml and p > 0:
            V = [Vk + HHk for Vk, HHk in zip(V, self._beta_spread(c, p), strict=True)]
        lams = [lam.copy() for lam in c.lams]
        q = sum(uk.size for uk in u)
        trV = sum(float(np.trace(Vk, axis1=1, axis2=2).sum()) for Vk in V)
        rss = c.pwrss() - sum(float((uk * uk).sum()) for uk in u)
        extra = q + (p if m.reml else 0) - trV
        if self.fixed_sigma2 is None:
            sigma2_new = (rss + sigma2 * extra) / m.n
        else:
            sigma2_new = self.fixed_sigma2
        new_lams = []
        for k, (uk, Vk, lam) in enumerate(zip(u, V, lams, strict=True)):
            if k in self.fixed_sigmas:
                Sk = self.fixed_sigmas[k]
            else:
                Ek = (uk.T @ uk + sigma2 * Vk.sum(axis=0)) / uk.shape[0]
                Sk = lam @ Ek @ lam.T
            lk = psd_cholesky(0.5 * (Sk + Sk.T) / sigma2_new)
            if lk is None:  # rounding only: an EM update is semidefinite by construction
                w, Q = np.linalg.eigh(0.5 * (Sk + Sk.T) / sigma2_new)
                lk = psd_cholesky((Q * np.maximum(w, 0.0)) @ Q.T)
            new_lams.append(lk)
        return crit, m.cov.pack(new_lams), float(sigma2_new)

    @staticmethod
    def _beta_spread(c, p: int) -> list[np.ndarray]:
        """Diagonal blocks of ``H H'``, ``H = L^{-T} W_X R_X^{-1}`` (REML's extra variance).

        ``chol.u(beta) = L^{-T}(W_y - W_X beta)`` is linear in beta, so the columns of
        ``L^{-T} W_X`` are ``u(0) - u(e_j)``.
        """
        u0 = c.u(np.zeros(p))
        cols = []
        for j in range(p):
            e = np.zeros(p)
            e[j] = 1.0
            cols.append([a - b for a, b in zip(u0, c.u(e), strict=True)])
        RXinv = c.RX_inv()
        out = []
        for k in range(len(u0)):
            LW = np.stack([col[k] for col in cols], axis=-1)  # (J_k, S_k, p)
            H = LW @ RXinv
            out.append(H @ np.swapaxes(H, 1, 2))
        return out


def _phi(theta, sigma2):
    return np.append(theta, np.log(sigma2))


def _unphi(phi):
    return phi[:-1], float(np.exp(phi[-1]))


def run_em(
    model,
    theta0: np.ndarray,
    sigma2_0: float | None = None,
    *,
    accelerate: bool = True,
    maxiter: int = 10_000,
    tol: float = 1e-10,
    xtol: float = 1e-8,
    fixed_sigmas=None,
    fixed_sigma2=None,
) -> EMResult:
    """Iterate EM (SQUAREM-accelerated by default) from ``theta0``.

    Parameters
    ----------
    model : LinearMixedModel
    theta0 : ndarray
    sigma2_0 : float, optional
        Starting residual variance (cross-product units); default profiled at theta0.
    accelerate : bool
        SQUAREM extrapolation (each cycle: two EM steps, one extrapolated point, accepted
        only if the log-likelihood does not fall below the second EM step's input).
    maxiter : int
        Most EM steps (E-steps).
    tol, xtol : float
        Stop when a cycle changes the criterion (-2 log-likelihood) by less than ``tol``
        relative to ``max(1, |criterion|)`` and (theta, log sigma^2) by less than ``xtol``.
    """
    t0 = time.perf_counter()
    F = EMMap(model, fixed_sigmas, fixed_sigma2)
    theta = np.asarray(theta0, dtype=float).copy()
    if sigma2_0 is None:
        if not update_chol(model, theta):
            raise ValueError("the starting value theta0 is not feasible")
        sigma2_0 = profiled_sigma2(model) if fixed_sigma2 is None else fixed_sigma2
    out = F(theta, sigma2_0)
    if out is None:
        raise ValueError("the starting value theta0 is not feasible")
    crit0, th1, s1 = out
    phi0, phi1 = _phi(theta, sigma2_0), _phi(th1, s1)
    path = [-0.5 * crit0]
    converged, message = False, "maximum number of iterations reached"
    while F.calls < maxiter:
        out = F(*_unphi(phi1))  # E-step at phi1: its criterion and phi2 = F(phi1)
        if out is None:
            message = "an EM step left the feasible region"
            break
        crit1, th2, s2 = out
        path.append(-0.5 * crit1)
        phi2 = _phi(th2, s2)
        base_phi, base_crit = phi0, crit0
        if accelerate:
            r = phi1 - phi0
            v = phi2 - phi1 - r
            nv = float(np.linalg.norm(v))
            alpha = -float(np.linalg.norm(r)) / nv if nv > 0 else -1.0
            alpha = min(alpha, -1.0)
            nxt = None
            while alpha < -1.0:
                cand = phi0 - 2.0 * alpha * r + alpha * alpha * v
                res = F(*_unphi(cand))
                if res is not None and res[0] <= crit1:
                    nxt = (cand, res)
                    break
                alpha = 0.5 * (alpha - 1.0)
                if alpha > -1.0 + 1e-3:
                    alpha = -1.0
            if nxt is None:  # plain EM: phi2, whose E-step gives the next point
                res = F(*_unphi(phi2))
                if res is None:
                    message = "an EM step left the feasible region"
                    break
                nxt = (phi2, res)
            cand, (crit_c, th_n, s_n) = nxt
            path.append(-0.5 * crit_c)
            phi0, crit0, phi1 = cand, crit_c, _phi(th_n, s_n)
        else:
            phi0, crit0, phi1 = phi1, crit1, phi2
        dcrit = base_crit - crit0
        dx = float(np.max(np.abs(phi0 - base_phi)))
        if dcrit < tol * max(1.0, abs(crit0)) and dx < xtol:
            converged, message = True, "criterion and parameter changes below tolerance"
            break
    theta, sigma2 = _unphi(phi0)
    lams = model.cov.lambdas(theta)
    theta = model.cov.pack([psd_cholesky(lam @ lam.T) for lam in lams])  # diagonal >= 0
    return EMResult(
        theta,
        sigma2,
        crit0,
        F.calls,
        path,
        converged,
        message,
        time.perf_counter() - t0,
        evaluations=F.calls,
    )
