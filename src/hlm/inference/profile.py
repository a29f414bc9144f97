"""Profile-likelihood confidence intervals (lme4's ``confint(fit, method = "profile")``).

For a parameter ``x`` with estimate ``x_hat``, the signed root of the profiled deviance

    zeta(x) = sign(x - x_hat) * sqrt(min_{other parameters} dev(x, ...) - dev_hat)

is close to a standard normal quantile; the interval at level ``1 - alpha`` is where
``|zeta| <= z_{1 - alpha/2}``.  As in lme4, the deviance is the ML deviance (a REML fit is
refitted by ML first, from its cross-products) and the variance parameters are profiled on
the scale of standard deviations, correlations and sigma.  Every profile point is a fit on
the cross-products, with no pass over the rows:

- a fixed effect ``beta_j = b``: the model ``y - b x_j ~ X_{-j}``, whose cross-products are
  a linear map of those of ``[Z X y]`` (:func:`hlm.inference._problem.fix_beta_model`);
- the residual SD ``sigma = s``: ``min_theta dev(theta, s)``;
- a random-effect SD ``sd_i = s`` (row i of ``lambda_k`` times sigma): with
  ``sigma = s / ||lambda_k[i, :]||`` tied to theta, ``min_theta dev(theta, sigma(theta))``;
- a correlation ``rho``: the term's factor is re-parametrised (its two variables first)
  so that the correlation is fixed and everything else is free, sigma profiled out.

Where lme4 interpolates splines through profile points, the limits here are the roots of
``zeta(x) = +-z`` found by Brent's method.  A lower limit of an SD is 0 when the profile
does not reach the cut-off before the boundary; a correlation's limits are at most +-1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

from hlm.errors import HLMWarning, warn
from hlm.inference._problem import (
    beta_at,
    criterion_parts,
    fit_theta,
    fix_beta_model,
    ml_copy,
)
from hlm.inference.varpar import VarPar, psd_cholesky

#: relative tolerance of the interval limits
XTOL = 1e-7


class Profiler:
    """Signed-root profiles of a fit's parameters (on its ML refit).

    Parameters
    ----------
    result : MixedModelResult
    """

    def __init__(self, result):
        from hlm.inference.anova import ml_refit

        self.model = ml_copy(result.model)
        if result.method == "ML":
            theta = np.asarray(result.theta, dtype=float)
        else:
            theta = ml_refit(result)[0]
        parts = criterion_parts(self.model, theta)
        self.theta = theta
        self.sigma = parts.sigma
        self.base = parts.criterion(self.sigma)
        self.vp = VarPar(self.model, result._groups)
        self.psi = self.vp.from_theta(theta, self.sigma)
        beta, sigma, Cu = beta_at(self.model, theta)
        self.beta = beta
        self.beta_se = sigma * np.sqrt(np.diag(Cu))
        self.lower = self.model.cov.lower_bounds()
        self.lower_found = []  # (parameter, value, deviance) where a better fit was found

    # ---------------------------------------------------------------- zeta functions
    def _signed(self, x, x_hat, dev) -> float:
        diff = dev - self.base
        if diff < -1e-6:
            self.lower_found.append((x, dev))
        return float(np.sign(x - x_hat) * np.sqrt(max(diff, 0.0)))

    def zeta_beta(self, j: int, b: float) -> float:
        """Signed root at ``beta_j = b``."""
        reduced = fix_beta_model(self.model, j, b)
        _, dev, _ = fit_theta(reduced, self.theta)
        return self._signed(b, self.beta[j], dev)

    def zeta_varpar(self, i: int, x: float) -> float:
        """Signed root at ``psi_i = x`` (an SD, a correlation or sigma)."""
        kind = self.vp.kind[i]
        if kind == "sigma":
            dev = self._min_over_theta(lambda th: _crit(self.model, th, x))
        elif kind == "sd":
            dev = self._profile_sd(i, x)
        else:
            dev = self._profile_cor(i, x)
        return self._signed(x, self.psi[i], dev)

    def _min_over_theta(self, f, start=None, lower=None) -> float:
        from hlm.engines.profiled import minimize_bobyqa

        x0 = self.theta if start is None else start
        lb = self.lower if lower is None else lower
        return float(minimize_bobyqa(f, x0, lb).criterion)

    def _profile_sd(self, i: int, s: float) -> float:
        cov = self.model.cov
        k, r = self.vp.term[i], self.vp.row[i]
        sl = cov.slices[k]
        in_row = sl.start + np.flatnonzero(cov.rows[k] == r)
        if s <= 0:  # row r of lambda_k is zero; sigma profiled out as usual
            free = np.setdiff1d(np.arange(cov.ntheta), in_row)

            def f0(z):
                th = np.zeros(cov.ntheta)
                th[free] = z
                return self.model.objective(th)

            if free.size == 0:
                return float(self.model.objective(np.zeros(cov.ntheta)))
            return self._min_over_theta(f0, self.theta[free], self.lower[free])

        def f(th):
            ell = float(np.sqrt(np.sum(th[in_row] ** 2)))
            if ell <= 0:
                return np.inf
            return _crit(self.model, th, s / ell)

        start = self.theta.copy()
        if np.sum(start[in_row] ** 2) == 0:  # a boundary estimate: leave zero
            start[in_row[-1]] = s / self.sigma
        return self._min_over_theta(f, start)

    def _profile_cor(self, i: int, rho: float) -> float:
        cov = self.model.cov
        k = self.vp.term[i]
        r, c = self.vp.row[i], self.vp.col[i]
        S = cov.sizes[k]
        order = [c, r] + [v for v in range(S) if v not in (c, r)]
        sl = cov.slices[k]
        pr, pc = cov.rows[k], cov.cols[k]
        # the term's free parameters: a = lam'[0,0], t = norm of row 1, rows 2.. of lam'
        rest = [(a, b) for a, b in zip(pr, pc, strict=True) if a >= 2]
        n_free = 2 + len(rest)
        others = np.setdiff1d(np.arange(cov.ntheta), np.arange(sl.start, sl.stop))
        root = np.sqrt(max(1.0 - rho * rho, 0.0))

        def unpack(z):
            lam_p = np.zeros((S, S))
            lam_p[0, 0] = z[0]
            lam_p[1, 0], lam_p[1, 1] = rho * z[1], root * z[1]
            for v, (a, b) in zip(z[2:], rest, strict=True):
                lam_p[a, b] = v
            back = np.empty(S, dtype=int)
            back[order] = np.arange(S)
            Sig = (lam_p @ lam_p.T)[np.ix_(back, back)]
            lam = _factor(Sig)
            if lam is None:
                return None
            th = np.empty(cov.ntheta)
            th[others] = z[n_free:]
            th[sl] = lam[pr, pc]
            return th

        def f(z):
            th = unpack(z)
            return np.inf if th is None else self.model.objective(th)

        # start: the current term factor, re-factored with its two variables first
        lam0 = cov.lambdas(self.theta)[k]
        Sig0 = lam0 @ lam0.T
        lp = _factor(Sig0[np.ix_(order, order)])
        z0 = np.concatenate(
            (
                [lp[0, 0], np.hypot(lp[1, 0], lp[1, 1])],
                [lp[a, b] for a, b in rest],
                self.theta[others],
            )
        )
        lb = np.concatenate(
            ([0.0, 0.0], [0.0 if a == b else -np.inf for a, b in rest], self.lower[others])
        )
        return self._min_over_theta(f, z0, lb)

    # ---------------------------------------------------------------- intervals
    def interval(self, zeta, x_hat: float, step: float, z: float, lo=-np.inf, hi=np.inf):
        """``(lower, upper)`` where ``zeta(x) = -z`` and ``+z`` (bounded by lo, hi)."""
        return (
            _limit(zeta, x_hat, -step, -z, lo),
            _limit(zeta, x_hat, step, z, hi),
        )


def _limit(zeta, x_hat, step, target, bound):
    """Root of ``zeta(x) = target`` on the side of ``x_hat`` given by ``step``'s sign."""
    direction = np.sign(step)
    if x_hat == bound:
        return bound
    a, _za = x_hat, 0.0
    x = x_hat + step
    for _ in range(60):
        if direction * (x - bound) >= 0:  # stepped past the bound: test the bound itself
            zb = zeta(bound)
            if not np.isfinite(zb) or abs(zb) < abs(target):
                return bound
            x, zx = bound, zb
            break
        zx = zeta(x)
        if not np.isfinite(zx):
            return np.nan
        if abs(zx) >= abs(target):
            break
        a, _za = x, zx
        step *= 2.0
        x = x_hat + step
    else:
        return np.nan
    scale = max(abs(x_hat), abs(step), 1e-12)
    try:
        return float(
            optimize.brentq(lambda v: zeta(v) - target, a, x, xtol=XTOL * scale, rtol=1e-10)
        )
    except ValueError:  # no sign change: a non-monotone profile
        return np.nan


def _crit(model, theta, sigma) -> float:
    parts = criterion_parts(model, theta)
    return np.inf if parts is None or not sigma > 0 else parts.criterion(sigma)


def _factor(Sig: np.ndarray) -> np.ndarray | None:
    """Lower factor of a PSD matrix through its correlation matrix (zero SDs allowed)."""
    d = np.sqrt(np.maximum(np.diag(Sig), 0.0))
    safe = np.where(d > 0, d, 1.0)
    R = Sig / np.outer(safe, safe)
    R[np.diag_indices_from(R)] = 1.0
    R[d == 0, :] = 0.0
    R[:, d == 0] = 0.0
    R[np.diag_indices_from(R)] = 1.0
    L = psd_cholesky(np.clip(R, -1.0, 1.0))
    return None if L is None else d[:, None] * L


def profile_confint(result, level: float = 0.95, parm=None, names: str = "readable"):
    """Profile intervals for the variance parameters and the fixed effects.

    Returns
    -------
    pandas.DataFrame
        Index: variance parameters (see :mod:`hlm.inference.varpar`) then fixed effects;
        columns ``lower, upper``.  ``attrs["estimate"]`` holds the ML estimates the
        profiles are centred on.
    """
    prof = Profiler(result)
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    vnames = prof.vp.names(names)
    all_names = vnames + list(result.fixef.index)
    wanted = _select(parm, all_names, len(vnames))
    rows, est = {}, {}
    for idx in wanted:
        name = all_names[idx]
        if idx < len(vnames):
            x_hat = prof.psi[idx]
            est[name] = x_hat
            kind = prof.vp.kind[idx]
            if not np.isfinite(x_hat):  # a correlation of a zero-variance effect
                rows[name] = (np.nan, np.nan)
                continue
            if kind == "cor":
                lo, hi, step = -1.0, 1.0, 0.1
            else:
                lo, hi = 0.0, np.inf
                step = 0.25 * x_hat if x_hat > 0 else 0.25 * prof.sigma
            rows[name] = prof.interval(
                lambda x, i=idx: prof.zeta_varpar(i, x), x_hat, step, z, lo, hi
            )
        else:
            j = idx - len(vnames)
            est[name] = prof.beta[j]
            rows[name] = prof.interval(
                lambda b, j=j: prof.zeta_beta(j, b), prof.beta[j], prof.beta_se[j], z
            )
    if prof.lower_found:
        warn(
            "profiling found parameter values with a lower deviance than the fit's: the fit "
            "may not have converged to the optimum",
            HLMWarning,
        )
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["lower", "upper"])
    out.attrs["estimate"] = pd.Series(est)
    out.attrs["method"] = "profile"
    out.attrs["level"] = level
    return out


def _select(parm, all_names, n_varpar) -> list[int]:
    if parm is None:
        return list(range(len(all_names)))
    if isinstance(parm, str):
        if parm == "theta_":
            return list(range(n_varpar))
        if parm == "beta_":
            return list(range(n_varpar, len(all_names)))
        parm = [parm]
    out = []
    for p in parm:
        if p not in all_names:
            raise ValueError(f"unknown parameter {p!r}; parameters are {all_names}")
        out.append(all_names.index(p))
    return out
