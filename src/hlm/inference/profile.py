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
    fix_beta_model,
    minimize_from,
    ml_copy,
)
from hlm.inference.varpar import VarPar, psd_cholesky

#: tolerance of the interval limits, relative to the first search step (about z SEs)
XTOL = 1e-5
#: BOBYQA's tolerance for a profile point: a deviance error of 1e-7 moves zeta near the
#: cut-off by about 3e-8
PROFILE_TOL = 1e-7


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
        # the optima of the profile points computed so far, per parameter: a new point
        # starts from the nearest one's (lme4 starts from the previous point's)
        self._points: dict = {}

    # ---------------------------------------------------------------- zeta functions
    def _signed(self, x, x_hat, dev) -> float:
        diff = dev - self.base
        if diff < -1e-6:
            self.lower_found.append((x, dev))
        return float(np.sign(x - x_hat) * np.sqrt(max(diff, 0.0)))

    def _start(self, key, x: float, x_hat: float) -> np.ndarray:
        best, start = abs(x - x_hat), self.theta
        for xi, th in self._points.get(key, ()):
            if abs(x - xi) < best:
                best, start = abs(x - xi), th
        return start

    def _remember(self, key, x: float, theta) -> None:
        if theta is not None:
            self._points.setdefault(key, []).append((x, np.asarray(theta, dtype=float)))

    def zeta_beta(self, j: int, b: float) -> float:
        """Signed root at ``beta_j = b``."""
        reduced = fix_beta_model(self.model, j, b)
        key = ("beta", j)
        dev, theta = self._min_over_theta(reduced.objective, self._start(key, b, self.beta[j]))
        self._remember(key, b, theta)
        return self._signed(b, self.beta[j], dev)

    def zeta_varpar(self, i: int, x: float) -> float:
        """Signed root at ``psi_i = x`` (an SD, a correlation or sigma)."""
        kind = self.vp.kind[i]
        key = ("psi", i)
        start = self._start(key, x, self.psi[i])
        if kind == "sigma":
            dev, theta = self._min_over_theta(lambda th: _crit(self.model, th, x), start)
        elif kind == "sd":
            dev, theta = self._profile_sd(i, x, start)
        else:
            dev, theta = self._profile_cor(i, x, start)
        self._remember(key, x, theta)
        return self._signed(x, self.psi[i], dev)

    def _min_over_theta(self, f, start, lower=None):
        """``(minimum, argmin)`` of ``f`` by BOBYQA from ``start``."""
        lb = self.lower if lower is None else lower
        return minimize_from(f, start, lb, tol=PROFILE_TOL)

    def _profile_sd(self, i: int, s: float, start: np.ndarray):
        cov = self.model.cov
        k, r = self.vp.term[i], self.vp.row[i]
        sl = cov.slices[k]
        in_row = sl.start + np.flatnonzero(cov.rows[k] == r)
        if s <= 0:  # row r of lambda_k is zero; sigma profiled out as usual
            free = np.setdiff1d(np.arange(cov.ntheta), in_row)
            if free.size == 0:
                return float(self.model.objective(np.zeros(cov.ntheta))), None

            def f0(z):
                th = np.zeros(cov.ntheta)
                th[free] = z
                return self.model.objective(th)

            dev, _ = self._min_over_theta(f0, start[free], self.lower[free])
            return dev, None

        # free parameters: sigma, theta outside the row, and the row's direction u; the
        # row is (s / sigma) u / |u|, so that the SD is s whatever the other values
        rest = np.setdiff1d(np.arange(cov.ntheta), in_row)
        n_rest = rest.size
        is_diag = cov.rows[k][in_row - sl.start] == cov.cols[k][in_row - sl.start]

        def unpack(z):
            sigma, u = z[0], z[1 + n_rest :]
            nu = float(np.sqrt(np.sum(u * u)))
            if not sigma > 0 or nu == 0:
                return None, sigma
            th = np.empty(cov.ntheta)
            th[rest] = z[1 : 1 + n_rest]
            th[in_row] = (s / sigma) * u / nu
            return th, sigma

        def f(z):
            th, sigma = unpack(z)
            return np.inf if th is None else _crit(self.model, th, sigma)

        parts = criterion_parts(self.model, start)
        sigma0 = parts.sigma if parts is not None else self.sigma
        u0 = start[in_row].copy()
        if not np.any(u0):  # a boundary estimate: start from the diagonal direction
            u0[is_diag] = 1.0
        z0 = np.concatenate(([sigma0], start[rest], u0))
        lb = np.concatenate(([1e-12 * sigma0], self.lower[rest], np.where(is_diag, 0.0, -np.inf)))
        dev, z = self._min_over_theta(f, z0, lb)
        return dev, unpack(z)[0]

    def _profile_cor(self, i: int, rho: float, start: np.ndarray):
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

        # start: the warm start's term factor, re-factored with its two variables first
        lam0 = cov.lambdas(start)[k]
        Sig0 = lam0 @ lam0.T
        lp = _factor(Sig0[np.ix_(order, order)])
        z0 = np.concatenate(
            (
                [lp[0, 0], np.hypot(lp[1, 0], lp[1, 1])],
                [lp[a, b] for a, b in rest],
                start[others],
            )
        )
        lb = np.concatenate(
            ([0.0, 0.0], [0.0 if a == b else -np.inf for a, b in rest], self.lower[others])
        )
        dev, z = self._min_over_theta(f, z0, lb)
        return dev, unpack(z)

    # ---------------------------------------------------------------- intervals
    def interval(self, zeta, x_hat: float, step: float, z: float, lo=-np.inf, hi=np.inf):
        """``(lower, upper)`` where ``zeta(x) = -z`` and ``+z`` (bounded by lo, hi)."""
        return (
            _limit(zeta, x_hat, -step, -z, lo),
            _limit(zeta, x_hat, step, z, hi),
        )


def _limit(zeta, x_hat, step, target, bound):
    """Root of ``zeta(x) = target`` on the side of ``x_hat`` given by ``step``'s sign.

    The profile is close to linear in the parameter, so the bracket is found by secant
    extrapolation from ``x_hat`` (with some overshoot), then refined by Brent's method;
    a bound that the profile does not reach the cut-off before is the limit itself.
    """
    direction = np.sign(step)
    if x_hat == bound:
        return bound
    memo: dict = {x_hat: 0.0}  # zeta is zero at the estimate by definition

    def f(v):
        if v not in memo:
            memo[v] = zeta(v)
        return memo[v]

    a = x_hat
    x = x_hat + step
    for _ in range(60):
        if direction * (x - bound) >= 0:  # stepped past the bound: test the bound itself
            zb = f(bound)
            if not np.isfinite(zb) or abs(zb) < abs(target):
                return bound
            x = bound
            break
        zx = f(x)
        if not np.isfinite(zx):
            return np.nan
        if abs(zx) >= abs(target):
            break
        a = x
        # where the line through (x_hat, 0) and (x, zeta(x)) reaches the target, plus 10%
        grow = abs(target) / abs(zx) * 1.1 if abs(zx) > 1e-3 else 4.0
        x = x_hat + (x - x_hat) * min(max(grow, 1.2), 8.0)
    else:
        return np.nan
    try:
        return float(
            optimize.brentq(
                lambda v: f(v) - target, a, x, xtol=XTOL * max(abs(step), 1e-12), rtol=1e-9
            )
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
    psi_se = _psi_se(result, prof.vp)
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
            lo, hi = (-1.0, 1.0) if kind == "cor" else (0.0, np.inf)
            step = z * psi_se[idx]
            if not (np.isfinite(step) and step > 0):  # no usable Wald SE (boundary fit)
                step = 0.5 if kind == "cor" else 0.25 * (x_hat if x_hat > 0 else prof.sigma)
            rows[name] = prof.interval(
                lambda x, i=idx: prof.zeta_varpar(i, x), x_hat, step, z, lo, hi
            )
        else:
            j = idx - len(vnames)
            est[name] = prof.beta[j]
            rows[name] = prof.interval(
                lambda b, j=j: prof.zeta_beta(j, b), prof.beta[j], z * prof.beta_se[j], z
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


def _psi_se(result, vp) -> np.ndarray:
    """Wald standard errors of the SDs, correlations and sigma (first steps of the search)."""
    try:
        vc = result._varpar_covariance
        J = vp.jacobian(result.theta, result.sigma)
        return np.sqrt(np.maximum(np.diag(J @ vc.vcov_varpar @ J.T), 0.0))
    except (ValueError, np.linalg.LinAlgError):
        return np.full(vp.ntheta + 1, np.nan)


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
