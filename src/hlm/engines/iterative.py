"""The EM, Fisher-scoring and EM-then-Fisher engines as fits: model in, result out."""

from __future__ import annotations

import time

import numpy as np

from hlm.engines.em import run_em
from hlm.engines.fisher import fisher_scoring, start_psi
from hlm.engines.log import FitLog, fit_notes
from hlm.engines.profiled import polish_boundary
from hlm.engines.varcomp import layout, psi_from_theta

#: EM steps of "em+fisher" before Fisher scoring takes over, and the criterion change
#: (-2 log-likelihood) per cycle below which it hands over earlier
EM_PHASE_STEPS = 50
EM_PHASE_TOL = 1e-3
#: EM's band of small diagonal elements of lambda tried at zero after it stops
EM_BOUNDARY_REL = 0.05


def finish(
    model,
    theta,
    *,
    engine,
    optimizer,
    iterations,
    evaluations,
    seconds,
    converged,
    message,
    path,
    boundary_rel=1e-4,
):
    """Zero small variances where that does not raise the criterion; build the result.

    ``boundary_rel``: diagonal elements of lambda below it are tried at zero.  EM creeps
    towards a zero variance (each step shrinks it by a factor near one), so its fits try
    a wider band than the optimiser's 1e-4; a zero is kept only if the criterion does not
    rise (by more than 1e-8).
    """
    from hlm.results.fitted import MixedModelResult

    cov = model.cov
    theta, _ = polish_boundary(
        model.objective, np.asarray(theta, dtype=float), cov.diagonal_mask(), rel=boundary_rel
    )
    stalled = (
        f"the {engine} engine stopped without converging ({message}); try "
        "engine='profiled', or a simpler random-effects structure"
    )
    notes, singular = fit_notes(model, theta, None if converged else stalled)
    log = FitLog(
        engine=engine,
        optimizer=optimizer,
        evaluations=int(evaluations),
        seconds=float(seconds),
        converged=bool(converged),
        message=message,
        warnings=tuple(notes),
        iterations=int(iterations),
        loglik_path=tuple(float(v) for v in path),
    )
    return MixedModelResult.from_model(model, theta, singular=singular, fit_log=log)


def fit_em(
    model, *, theta0=None, accelerate: bool = True, maxiter: int = 10_000, tol: float = 1e-10
):
    """Fit by EM (SQUAREM-accelerated unless ``accelerate=False``); see :mod:`hlm.engines.em`."""
    theta0 = model.cov.start() if theta0 is None else np.asarray(theta0, dtype=float)
    em = run_em(model, theta0, accelerate=accelerate, maxiter=maxiter, tol=tol)
    name = "EM (SQUAREM)" if accelerate else "EM"
    return finish(
        model,
        em.theta,
        engine="em",
        optimizer=name,
        iterations=em.iterations,
        evaluations=em.evaluations,
        seconds=em.seconds,
        converged=em.converged,
        message=em.message,
        path=em.loglik_path,
        boundary_rel=EM_BOUNDARY_REL,
    )


def fit_fisher(model, *, theta0=None, maxiter: int = 200, tol: float = 1e-10):
    """Fit by Fisher scoring with step-halving; see :mod:`hlm.engines.fisher`."""
    lay = layout(model)
    psi0 = start_psi(model, lay, theta0)
    fs = fisher_scoring(model, psi0, lay=lay, maxiter=maxiter, tol=tol)
    return finish(
        model,
        fs.theta,
        engine="fisher",
        optimizer="Fisher scoring",
        iterations=fs.iterations,
        evaluations=fs.evaluations,
        seconds=fs.seconds,
        converged=fs.converged,
        message=fs.message,
        path=fs.loglik_path,
    )


def fit_em_fisher(
    model, *, theta0=None, em_steps: int = EM_PHASE_STEPS, maxiter: int = 200, tol: float = 1e-10
):
    """EM to get close, Fisher scoring to finish (as HLM 8 does)."""
    t0 = time.perf_counter()
    lay = layout(model)
    theta0 = model.cov.start() if theta0 is None else np.asarray(theta0, dtype=float)
    em = run_em(model, theta0, accelerate=False, maxiter=em_steps, tol=EM_PHASE_TOL, xtol=np.inf)
    psi0 = psi_from_theta(model, lay, em.theta, em.sigma2)
    fs = fisher_scoring(model, psi0, lay=lay, maxiter=maxiter, tol=tol)
    path = list(em.loglik_path) + list(fs.loglik_path[1:])
    return finish(
        model,
        fs.theta,
        engine="em+fisher",
        optimizer="EM then Fisher scoring",
        iterations=em.iterations + fs.iterations,
        evaluations=em.evaluations + fs.evaluations,
        seconds=time.perf_counter() - t0,
        converged=fs.converged,
        message=f"EM: {em.iterations} steps; Fisher scoring: {fs.message}",
        path=path,
    )
