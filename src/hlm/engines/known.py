"""Variance components at known values: GLS, and fits with some components held fixed.

``hlm.fit(..., variance=known)`` takes the components in one of these layouts (see
docs/engines.md):

* the layout of ``varcorr()``: a DataFrame with columns ``grp, var1, var2, vcov`` (other
  columns ignored; a row whose ``vcov`` is NaN is estimated), or a dict keyed by
  ``(grp, var1, var2)`` tuples, ``(grp, var1)`` for a variance, and ``"Residual"``, with
  the variance or covariance as value;
* lme4's parametrisation: ``{"theta": [...], "sigma": s}`` (everything fixed: GLS), or
  ``{"theta": [...]}`` (the relative covariance fixed, sigma estimated).

Values are variances and covariances in the response's units, as ``varcorr()["vcov"]``.
When every component is given the fit is GLS: beta, its covariance and the empirical
Bayes estimates at those variances.  When some are given, the rest are estimated by
maximising the (restricted) likelihood with the given ones held fixed.  A variance fixed
at 0 removes that random effect (its covariances are 0 too).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from hlm.engines.known_spec import Known, VarianceSpecError, parse_known
from hlm.engines.log import FitLog
from hlm.engines.varcomp import (
    Layout,
    criterion_at,
    layout,
    profiled_sigma2,
    psi_from_theta,
    scale_y,
    sigmas_from_psi,
    theta_from_psi,
    update_chol,
)
from hlm.errors import ConvergenceWarning, SingularFitWarning, warn

__all__ = ["Known", "VarianceSpecError", "fit_known", "parse_known"]


# ----------------------------------------------------------------------------- which engine
def zero_theta_mask(model, lay: Layout, known: Known) -> np.ndarray | None:
    """theta elements held at zero, when the fixed components are all zeros of theta.

    A variance fixed at 0 zeroes row and column i of lambda_k; a covariance with the
    term's first column fixed at 0 zeroes ``lambda_k[i, 0]``.  Returns None when the
    specification is not of this kind (a non-zero value, a fixed residual, or another
    zero covariance), i.e. when the profiled criterion cannot hold it.
    """
    if known.mask[-1] or known.theta is not None:
        return None
    cov = model.cov
    zero = np.zeros(cov.ntheta, dtype=bool)
    for a in np.flatnonzero(known.mask):
        if known.values[a] != 0.0:
            return None
        k, i, j = lay.term[a], lay.row[a], lay.col[a]
        sl = cov.slices[k]
        r, c = cov.rows[k], cov.cols[k]
        if i == j:
            zero[sl] |= (r == i) | (c == i)
        elif i == 0:
            zero[sl] |= (r == j) & (c == 0)
        else:
            return None
    return zero


def em_can_hold(lay: Layout, known: Known) -> bool:
    """EM's M-step is exact for a fixed residual, whole fixed terms and zero variances."""
    for k in range(len(lay.sizes)):
        idx = lay.of_term(k)
        m = known.mask[idx]
        if m.all() or not m.any():
            continue
        if np.any(known.values[idx][m] != 0.0):
            return False
        # zeros only: fine if they are variances with their rows (set by _check) or
        # covariances that follow from zero variances
        for a in idx[m]:
            if lay.row[a] != lay.col[a]:
                i, j = lay.row[a], lay.col[a]
                zero_var = [
                    b
                    for b in idx
                    if lay.row[b] == lay.col[b] and lay.row[b] in (i, j) and known.mask[b]
                ]
                if not zero_var:
                    return False
    return True


# ----------------------------------------------------------------------------- fits
def estimates_with_sigma(model, theta: np.ndarray, sigma2_user: float):
    """Estimates at theta with sigma^2 given instead of profiled (user units)."""
    from hlm.results.estimates import estimates_at

    est = estimates_at(model, theta)
    ratio = sigma2_user / est.sigma**2 if est.sigma > 0 else np.nan
    crit = criterion_at(model, theta, sigma2_user / scale_y(model) ** 2)
    profiled_b_var = est.b_var_fn

    def b_var():
        return [v * ratio for v in profiled_b_var()]

    return dataclasses.replace(
        est,
        criterion=crit,
        vcov=est.vcov * ratio,
        sigma=float(np.sqrt(sigma2_user)),
        Sigma=[S * ratio for S in est.Sigma],
        b_var_fn=b_var,
    )


def _estimated_diagonal(model, lay: Layout, known: Known) -> np.ndarray:
    """Diagonal theta elements of the variances that are estimated (not fixed)."""
    cov = model.cov
    mask = cov.diagonal_mask().copy()
    for a in np.flatnonzero(known.mask[:-1]):
        if lay.row[a] == lay.col[a]:
            k, i = lay.term[a], lay.row[a]
            idx = np.arange(cov.ntheta)[cov.slices[k]]
            mask[idx[(cov.rows[k] == i) & (cov.cols[k] == i)]] = False
    return mask


def _result(model, theta, sigma2_user, *, profiled_sigma, log_kwargs, known, lay):
    from hlm.results.fitted import MixedModelResult

    notes = list(log_kwargs.pop("warnings", ()))
    if not log_kwargs["converged"]:
        msg = f"the fit with fixed variance components did not converge ({log_kwargs['message']})"
        warn(msg, ConvergenceWarning)
        notes.append(msg)
    singular = bool(np.any(theta[_estimated_diagonal(model, lay, known)] < 1e-4))
    if singular:
        msg = "boundary (singular) fit: a variance is (close to) zero or a correlation is +-1"
        warn(msg, SingularFitWarning)
        notes.append(msg)
    log = FitLog(warnings=tuple(notes), fixed=known.keys(lay), **log_kwargs)
    if profiled_sigma:
        return MixedModelResult.from_model(model, theta, singular=singular, fit_log=log)
    est = estimates_with_sigma(model, theta, sigma2_user)
    return MixedModelResult(model=model, est=est, singular=singular, fit_log=log)


def fit_known(model, known_spec, *, engine: str | None = None, **options):
    """Fit with the variance components of ``known_spec`` fixed (all of them: GLS).

    Parameters
    ----------
    model : LinearMixedModel
    known_spec
        See the module docstring.
    engine : {None, "profiled", "em", "fisher", "em+fisher"}
        For a partial specification: None picks "profiled" when the fixed components are
        zeros the profiled criterion can hold (variances at 0), else "fisher".
    """
    lay = layout(model)
    known = parse_known(model, known_spec)
    t0 = time.perf_counter()
    if known.theta is not None and not known.mask[-1]:
        return _result(
            model,
            known.theta,
            None,
            profiled_sigma=True,
            known=known,
            lay=lay,
            log_kwargs=_log("gls", "none (theta given; sigma profiled)", 1, t0, True, "GLS"),
        )
    if known.complete:
        theta = known.theta if known.theta is not None else _theta_of(model, lay, known.values)
        return _result(
            model,
            theta,
            known.values[-1],
            profiled_sigma=False,
            known=known,
            lay=lay,
            log_kwargs=_log("gls", "none (variance components given)", 1, t0, True, "GLS"),
        )
    zero = zero_theta_mask(model, lay, known)
    if engine is None:
        engine = "profiled" if zero is not None else "fisher"
    if engine == "profiled":
        if zero is None:
            raise VarianceSpecError(
                "the profiled engine holds only variances fixed at 0 (its criterion profiles "
                "sigma out, so it cannot hold a non-zero value or the residual); use "
                "engine='fisher' (or leave engine unset) for this variance= specification"
            )
        return _fit_profiled_zeros(model, known, lay, zero, t0, **options)
    if engine in ("em", "em+fisher") and not em_can_hold(lay, known):
        raise VarianceSpecError(
            f"engine {engine!r} can hold a fixed residual variance, whole fixed terms and "
            "variances fixed at 0, not a single non-zero entry of a term whose other entries "
            "are estimated; use engine='fisher' for this variance= specification"
        )
    return _fit_iterative(model, known, lay, engine, t0, **options)


def _log(engine, optimizer, evaluations, t0, converged, message, **extra) -> dict:
    return dict(
        engine=engine,
        optimizer=optimizer,
        evaluations=int(evaluations),
        seconds=time.perf_counter() - t0,
        converged=bool(converged),
        message=message,
        **extra,
    )


def _theta_of(model, lay, psi_user) -> np.ndarray:
    sy2 = scale_y(model) ** 2
    theta = theta_from_psi(model, lay, psi_user / sy2)
    if theta is None:
        raise VarianceSpecError("the given variance components are not positive semidefinite")
    return theta


def _fit_profiled_zeros(model, known, lay, zero, t0, maxeval: int = 100_000):
    from hlm.engines.profiled import minimize_bobyqa, polish_boundary

    cov = model.cov
    free = np.flatnonzero(~zero)
    full = cov.start() * (~zero)

    def f(x):
        th = full.copy()
        th[free] = x
        return model.objective(th)

    start = model.evaluations
    opt = minimize_bobyqa(f, full[free], cov.lower_bounds()[free], maxeval=maxeval)
    x, _ = polish_boundary(f, opt.theta, cov.diagonal_mask()[free], f0=opt.criterion)
    theta = full.copy()
    theta[free] = x
    converged = opt.converged or opt.message == "roundoff limited"
    return _result(
        model,
        theta,
        None,
        profiled_sigma=True,
        known=known,
        lay=lay,
        log_kwargs=_log(
            "profiled", opt.optimizer, model.evaluations - start, t0, converged, opt.message
        ),
    )


def _start(model, lay, known) -> np.ndarray:
    """A feasible start: fixed values, free variances at sigma^2, free covariances 0."""
    sy2 = scale_y(model) ** 2
    update_chol(model, model.cov.start())
    s2 = profiled_sigma2(model) if not known.mask[-1] else known.values[-1] / sy2
    psi = np.where(known.mask, known.values / sy2, 0.0)
    free_var = ~known.mask & lay.is_variance
    psi[free_var] = s2
    psi[-1] = s2
    for _ in range(60):
        if theta_from_psi(model, lay, psi) is not None:
            return psi
        psi[free_var[:-1].nonzero()[0]] *= 2.0  # fixed covariances need larger variances
    raise VarianceSpecError("no positive semidefinite start found for this variance= specification")


def _fit_iterative(model, known, lay, engine, t0, maxiter: int = 200, tol: float = 1e-10):
    from hlm.engines.em import run_em
    from hlm.engines.fisher import fisher_scoring

    sy2 = scale_y(model) ** 2
    psi0 = _start(model, lay, known)
    iterations, path, evals = 0, [], 0
    if engine in ("em", "em+fisher"):
        fixed_sigmas = {
            k: sigmas_from_psi(lay, psi0)[k]
            for k in range(len(lay.sizes))
            if known.mask[lay.of_term(k)].all()
        }
        fixed_s2 = psi0[-1] if known.mask[-1] else None
        em = run_em(
            model,
            theta_from_psi(model, lay, psi0),
            psi0[-1],
            fixed_sigmas=fixed_sigmas,
            fixed_sigma2=fixed_s2,
            accelerate=engine == "em",
            maxiter=10_000 if engine == "em" else 50,
            tol=tol if engine == "em" else 1e-3,
            xtol=1e-8 if engine == "em" else np.inf,
        )
        iterations, path, evals = em.iterations, list(em.loglik_path), em.evaluations
        psi0 = psi_from_theta(model, lay, em.theta, em.sigma2)
        psi0[known.mask] = known.values[known.mask] / sy2  # exactly the given values
        if engine == "em":
            return _result(
                model,
                em.theta,
                em.sigma2 * sy2,
                profiled_sigma=False,
                known=known,
                lay=lay,
                log_kwargs=_log(
                    "em",
                    "EM (SQUAREM)",
                    evals,
                    t0,
                    em.converged,
                    em.message,
                    iterations=iterations,
                    loglik_path=tuple(path),
                ),
            )
    fs = fisher_scoring(model, psi0, fixed=known.mask, lay=lay, maxiter=maxiter, tol=tol)
    path += list(fs.loglik_path[1:] if path else fs.loglik_path)
    return _result(
        model,
        fs.theta,
        fs.psi[-1] * sy2,
        profiled_sigma=False,
        known=known,
        lay=lay,
        log_kwargs=_log(
            engine,
            "Fisher scoring" if engine == "fisher" else "EM then Fisher scoring",
            evals + fs.evaluations,
            t0,
            fs.converged,
            fs.message,
            iterations=iterations + fs.iterations,
            loglik_path=tuple(path),
        ),
    )
