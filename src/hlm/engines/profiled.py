"""The profiled REML/ML engine: minimise the profiled criterion over theta.

The criterion depends on theta only (beta and sigma are profiled out), is cheap to evaluate
from the cross-products, and is minimised subject to non-negative diagonal elements of each
lambda.  This module holds BOBYQA (a derivative-free trust-region method with bounds, lme4's
default) and the boundary polish; the quasi-Newton path with the analytic gradient, used
where it is faster, is in :mod:`hlm.engines.quasi_newton` (docs/design.md, "Optimizer").
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass
class OptResult:
    """The optimizer's answer."""

    theta: np.ndarray
    criterion: float
    evaluations: int
    seconds: float
    converged: bool
    message: str
    optimizer: str


def minimize_bobyqa(f, x0, lower, *, ftol_abs=1e-8, xtol_abs=1e-8, maxeval=100_000) -> OptResult:
    """Minimise ``f`` over ``x >= lower`` with nlopt's BOBYQA.

    The tolerances are lme4's (``ftol_abs = xtol_abs = 1e-8``): on the reference fits they
    reach lme4's optimum to within 1e-8 of the criterion with about as many evaluations as
    lme4; tightening them to 1e-10 costs 15% more evaluations for no visible gain.
    """
    import nlopt

    x0 = np.asarray(x0, dtype=float)
    count = [0]
    best = [np.inf, x0.copy()]

    def wrapped(x, grad):
        count[0] += 1
        val = f(x)
        if not np.isfinite(val):
            val = 1e300
        if val < best[0]:
            best[0], best[1] = val, x.copy()
        return float(val)

    t0 = time.perf_counter()
    opt = nlopt.opt(nlopt.LN_BOBYQA, x0.size)
    opt.set_min_objective(wrapped)
    lb = np.where(np.isfinite(lower), lower, -np.inf)
    opt.set_lower_bounds(lb)
    opt.set_ftol_abs(ftol_abs)
    opt.set_xtol_abs(xtol_abs)
    opt.set_maxeval(maxeval)
    message = ""
    converged = True
    try:
        opt.optimize(x0)
        code = opt.last_optimize_result()
        message = _RESULT_NAMES.get(code, str(code))
        converged = code in (nlopt.FTOL_REACHED, nlopt.XTOL_REACHED, nlopt.SUCCESS)
    except nlopt.RoundoffLimited:
        message = "roundoff limited"
    except (RuntimeError, ValueError) as exc:
        message, converged = f"nlopt failure: {exc}", False
    seconds = time.perf_counter() - t0
    # the best point evaluated is nlopt's answer or better; no need to evaluate it again
    return OptResult(best[1], float(best[0]), count[0], seconds, converged, message, "nlopt BOBYQA")


_RESULT_NAMES = {
    1: "success",
    2: "stopval reached",
    3: "ftol reached",
    4: "xtol reached",
    5: "maxeval reached",
    6: "maxtime reached",
}


def polish_boundary(f, theta: np.ndarray, diagonal: np.ndarray, *, rel: float = 1e-4, f0=None):
    """Set tiny diagonal elements of theta to exactly zero when that does not hurt.

    A derivative-free optimizer approaches a boundary optimum (a zero variance) only to within
    its tolerance; lme4 reports such a variance as exactly zero.  We try zeroing each small
    diagonal element and keep the change when the criterion does not increase (beyond
    rounding).
    """
    theta = theta.copy()
    fbest = f(theta) if f0 is None else f0
    for i in np.flatnonzero(diagonal):
        if 0.0 < theta[i] < rel:
            trial = theta.copy()
            trial[i] = 0.0
            ft = f(trial)
            if ft <= fbest + 1e-8:
                theta, fbest = trial, min(ft, fbest)
    return theta, fbest
