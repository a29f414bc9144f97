"""Run the profiled engine on a model and assemble the result."""

from __future__ import annotations

from hlm.engines.checks import check_fit
from hlm.engines.log import FitLog, fit_notes
from hlm.engines.profiled import minimize_bobyqa, polish_boundary
from hlm.engines.quasi_newton import STEP, minimize_lbfgsb
from hlm.engines.start import start_theta
from hlm.engines.theta_scale import ScaledTheta
from hlm.results.estimates import estimates_at


def fit_profiled(model, *, theta0=None, maxeval: int = 100_000, optimizer: str = "auto"):
    """Minimise the profiled criterion of ``model`` and return a MixedModelResult.

    Parameters
    ----------
    model : LinearMixedModel
    theta0 : array-like, optional
        Starting value (default: identity factors, as lme4, for BOBYQA; moment estimates of
        scalar terms for the gradient path, see :mod:`hlm.engines.start`).
    maxeval : int
        Most objective evaluations.
    optimizer : {"auto", "lbfgsb", "bobyqa"}
        ``"auto"``: the quasi-Newton path with the analytic gradient where that is faster
        (see ``LinearMixedModel.prefers_gradient``), BOBYQA otherwise; ``"lbfgsb"`` forces
        the gradient path (one term, or scalar terms only); ``"bobyqa"`` forces the
        derivative-free search (lme4's default).  The gradient path is scipy's L-BFGS-B,
        or for one-term models with numba the compiled bounded BFGS of
        :mod:`hlm.engines._numba_bfgs` (one call for the whole search).
    """
    from hlm.results.fitted import MixedModelResult

    cov = model.cov
    lower = cov.lower_bounds()
    start_evals = model.evaluations
    if optimizer not in ("auto", "lbfgsb", "bobyqa"):
        raise ValueError(f"optimizer must be 'auto', 'lbfgsb' or 'bobyqa', got {optimizer!r}")
    if optimizer == "lbfgsb" and not model.has_gradient:
        raise ValueError(
            "optimizer='lbfgsb' needs the analytic gradient, available for one random-effects "
            "term or scalar terms only; use optimizer='bobyqa' or 'auto'"
        )
    use_gradient = optimizer == "lbfgsb" or (optimizer == "auto" and model.prefers_gradient)
    m = ScaledTheta(model)  # theta in units of each Z column's spread (engines/theta_scale.py)
    if theta0 is not None:
        x0 = m.from_theta(theta0)
    else:  # BOBYQA keeps lme4's start; the gradient path starts from moment estimates
        x0 = m.start(start_theta(model)) if use_gradient else cov.start()
    if use_gradient:
        compiled = None
        if model.chol.fused:  # one term: the whole minimisation in one compiled call
            from hlm.engines._numba_bfgs import one_term_minimizer

            compiled = one_term_minimizer(model, STEP / m.factor)
        opt = minimize_lbfgsb(
            m.objective_and_gradient,
            m.objective,
            x0,
            lower,
            cov.diagonal_mask(),
            maxeval=maxeval,
            compiled=compiled,
        )
    else:
        opt = minimize_bobyqa(m.objective, x0, lower, maxeval=maxeval)
    theta, crit = polish_boundary(m.objective, opt.theta, cov.diagonal_mask(), f0=opt.criterion)
    converged = opt.converged or opt.message == "roundoff limited"
    stalled = (
        f"the optimizer stopped without converging ({opt.message}); raise maxeval=..., "
        "start again from where it stopped (theta0=res.theta), or simplify the "
        "random-effects structure"
    )
    notes, singular = fit_notes(model, theta, None if converged else stalled)
    evaluations = model.evaluations - start_evals
    # the estimates first, while the factor still holds the optimum (often the optimizer's
    # last evaluation): the checks below move it to nearby points
    theta_model = m.to_theta(theta)
    est = estimates_at(model, theta_model, crit)
    checks = check_fit(m, theta, crit)  # lme4's checkConv: gradient, Hessian, scales
    log = FitLog(
        engine="profiled",
        optimizer=opt.optimizer,
        evaluations=evaluations,
        seconds=opt.seconds,
        converged=bool(converged and checks.ok),
        message=opt.message,
        warnings=tuple(notes) + checks.messages + checks.notes,
        checks=checks.as_dict(),
    )
    return MixedModelResult.from_model(model, theta_model, singular=singular, fit_log=log, est=est)
