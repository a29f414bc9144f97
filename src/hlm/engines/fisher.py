"""Fisher scoring on the variance components, with step-halving.

The variance components ``psi = (vech Sigma_1, ..., vech Sigma_K, sigma^2)`` are updated by

    psi <- psi + h I(psi)^{-1} score(psi),

with the expected information I and the score of :mod:`hlm.engines.information` (REML or
ML; their cost does not depend on n), and h = 1, 1/2, 1/4, ... until the (restricted)
log-likelihood does not decrease and every ``Sigma_k`` is positive semidefinite.  A
variance that a step would make negative is set to zero together with the covariances of
its row; a variance at zero whose score points outwards is held there (an active set), so
boundary optima (a variance of exactly zero) are reached in a few steps rather than
approached geometrically.  This is the scoring algorithm of the classic HLM literature
(Longford 1987; Raudenbush & Bryk 2002, ch. 14), on the cross-products.

Where the expected information is a poor model of the curvature (a misspecified model,
e.g. a random intercept without a fixed one) scoring creeps.  After two steps that needed
halving, gained less than a tenth of the predicted gain, or more than half of the previous
step's gain (slow linear convergence), steps use the observed information (Newton-Raphson,
by central differences of the analytic score) while it is positive definite.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from hlm.engines.information import score_and_information
from hlm.engines.varcomp import (
    Layout,
    criterion_at,
    layout,
    profiled_sigma2,
    psi_from_theta,
    theta_from_psi,
    update_chol,
)


@dataclass
class ScoringResult:
    """Where Fisher scoring stopped (cross-product units)."""

    psi: np.ndarray
    theta: np.ndarray
    criterion: float
    iterations: int
    evaluations: int
    loglik_path: list
    converged: bool
    message: str
    seconds: float
    info: np.ndarray


def project(lay: Layout, psi: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Set negative (estimated) variances to zero, and the covariances of their rows."""
    psi = psi.copy()
    for a in range(lay.n - 1):
        if lay.row[a] == lay.col[a] and psi[a] < 0.0 and not fixed[a]:
            k, i = lay.term[a], lay.row[a]
            psi[(lay.term == k) & ((lay.row == i) | (lay.col == i))] = 0.0
    return psi


def active_set(lay: Layout, psi: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Variances at zero whose score is not positive, and the covariances of their rows."""
    active = np.zeros(lay.n, dtype=bool)
    for a in range(lay.n - 1):
        if lay.row[a] == lay.col[a] and psi[a] == 0.0 and score[a] <= 0.0:
            k, i = lay.term[a], lay.row[a]
            active |= (lay.term == k) & ((lay.row == i) | (lay.col == i))
    return active


def start_psi(model, lay: Layout, theta0=None) -> np.ndarray:
    """Starting variance components: theta0 (default identity factors) and sigma^2 profiled."""
    theta = model.cov.start() if theta0 is None else np.asarray(theta0, dtype=float)
    if not update_chol(model, theta):
        raise ValueError("the starting value theta0 is not feasible")
    return psi_from_theta(model, lay, theta, profiled_sigma2(model))


def _observed_or(model, theta, sigma2, lay, info, idx):
    """The observed information when it is positive definite on ``idx``, else ``info``."""
    from hlm.engines.information import observed_information

    try:
        obs = observed_information(model, theta, sigma2, lay)
    except ValueError:
        return info
    if np.all(np.linalg.eigvalsh(obs[np.ix_(idx, idx)]) > 0):
        return obs
    return info


def fisher_scoring(
    model,
    psi0: np.ndarray,
    *,
    fixed: np.ndarray | None = None,
    lay: Layout | None = None,
    maxiter: int = 200,
    tol: float = 1e-10,
) -> ScoringResult:
    """Maximise the (restricted) likelihood over psi by Fisher scoring with step-halving.

    Parameters
    ----------
    model : LinearMixedModel
    psi0 : ndarray
        Start, cross-product units (see :mod:`hlm.engines.varcomp`).
    fixed : ndarray of bool, optional
        Elements of psi held at their value in psi0.
    maxiter : int
        Most scoring steps.
    tol : float
        Stop when the predicted gain ``score' I^{-1} score`` in -2 log-likelihood is below
        ``tol`` (the estimates are then within about ``sqrt(tol)`` standard errors).
    """
    t0 = time.perf_counter()
    lay = layout(model) if lay is None else lay
    fixed = np.zeros(lay.n, dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    psi = np.asarray(psi0, dtype=float).copy()
    theta = theta_from_psi(model, lay, psi)
    if theta is None:
        raise ValueError("starting variance components are not positive semidefinite")
    si = score_and_information(model, theta, psi[-1], lay)
    if si is None:
        raise ValueError("starting variance components give a singular model")
    # the criterion from the core factor, as for every trial below (its pwrss keeps the
    # digits of centred columns when the model has no intercept)
    crit = criterion_at(model, theta, psi[-1])
    path = [-0.5 * crit]
    evaluations, converged, message = 1, False, "maximum number of iterations reached"
    stalls, prev_change = 0, np.inf
    it = 0
    for it in range(1, maxiter + 1):
        free = ~fixed & ~active_set(lay, psi, si.score)
        idx = np.flatnonzero(free)
        if idx.size == 0:
            converged, message = True, "every variance component is fixed or on the boundary"
            it -= 1
            break
        g = si.score[idx]
        info = si.info
        if stalls >= 2:  # scoring creeps: Newton-Raphson with the observed information
            info = _observed_or(model, theta, psi[-1], lay, info, idx)
        step = np.linalg.lstsq(info[np.ix_(idx, idx)], g, rcond=None)[0]
        gain = float(g @ step)
        if gain < tol:
            converged, message = True, "predicted gain below tolerance"
            it -= 1
            break
        h, accepted = 1.0, False
        while h > 1e-10:
            trial = psi.copy()
            trial[idx] += h * step
            trial = project(lay, trial, fixed)
            th = theta_from_psi(model, lay, trial)
            if th is not None:
                evaluations += 1
                ct = criterion_at(model, th, trial[-1])
                if np.isfinite(ct) and ct <= crit + 1e-12 * max(1.0, abs(crit)):
                    accepted = True
                    break
            h *= 0.5
        if not accepted:
            converged = gain < 1e-6
            message = "step-halving failed to improve the likelihood" + (
                " (at the optimum to rounding)" if converged else ""
            )
            it -= 1
            break
        change = crit - ct
        # expected-information steps that need halving, or gain far less than predicted,
        # mean the expected information is a poor model of the curvature here
        slow = h < 1.0 or change < 0.1 * gain or change > 0.5 * prev_change
        stalls = stalls + 1 if slow else 0
        prev_change = change
        psi, theta, crit = trial, th, ct
        si = score_and_information(model, theta, psi[-1], lay)
        path.append(-0.5 * crit)
        if change < 1e-12 * max(1.0, abs(crit)) and h == 1.0 and gain < 1e-6:
            converged, message = True, "criterion change below rounding"
            break
    return ScoringResult(
        psi,
        theta,
        crit,
        it,
        evaluations,
        path,
        converged,
        message,
        time.perf_counter() - t0,
        si.info,
    )
