"""Small operations on a fitted model's profiled problem, shared by the inference modules.

Everything here works on the cross-products held by a :class:`hlm.LinearMixedModel` and
calls its ``objective(theta)``; nothing passes over the rows.  Copies of a model share
its (read-only) cross-products but get their own Cholesky factor, because evaluating the
objective updates the factor in place.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from hlm.design.crossprod import CrossProducts
from hlm.linalg.blocked import BlockedCholesky
from hlm.results.estimates import transform_matrix


def model_copy(model, *, A=None, method=None, p=None, fixed_names=None):
    """A shallow copy of ``model`` with its own Cholesky factor.

    Parameters
    ----------
    model : LinearMixedModel
    A : CrossProducts, optional
        Replacement cross-products (e.g. with a new response).
    method : {"REML", "ML"}, optional
    p : int, optional
        Number of fixed-effect columns of ``A`` when it has fewer than ``model``.
    fixed_names : list of str, optional
        Their names.
    """
    m = copy.copy(model)
    if A is not None:
        m.A = A
    if method is not None:
        m.method = method
    if p is not None:
        m.p = p
    if fixed_names is not None:
        m.fixed_names = list(fixed_names)
    m.chol = BlockedCholesky(m.A, m.cov)
    m.evaluations = 0
    # the new factor holds no theta yet, and gradients remembered by the original (a shared
    # dict after copy.copy) belong to its cross-products, not to these
    m.__dict__.pop("_chol_theta", None)
    m.__dict__.pop("_gradient_memo", None)
    return m


def ml_copy(model):
    """The same model with the ML criterion (the cross-products are shared)."""
    return model_copy(model, method="ML")


def fit_theta(model, theta0, *, maxeval: int = 100_000, tol: float = 1e-8):
    """Minimise ``model.objective`` from ``theta0``; returns ``(theta, criterion, converged)``.

    The same optimizer and boundary polish as :func:`hlm.engines.driver.fit_profiled`,
    without building a result object.  ``tol`` is BOBYQA's absolute tolerance on the
    criterion and on theta (lme4's 1e-8 by default).
    """
    from hlm.engines.profiled import minimize_bobyqa, polish_boundary

    cov = model.cov
    opt = minimize_bobyqa(
        model.objective, theta0, cov.lower_bounds(), maxeval=maxeval, ftol_abs=tol, xtol_abs=tol
    )
    theta, crit = polish_boundary(model.objective, opt.theta, cov.diagonal_mask(), f0=opt.criterion)
    converged = opt.converged or opt.message == "roundoff limited"
    return np.asarray(theta, dtype=float), float(crit), bool(converged)


def minimize_from(f, x0, lower, *, tol: float = 1e-8, maxeval: int = 100_000, restarts: int = 1):
    """Minimise ``f`` over ``x >= lower`` by BOBYQA from a warm start; ``(fmin, xmin)``.

    Unlike :func:`hlm.engines.profiled.minimize_bobyqa` (whose first steps are nlopt's
    default, ``|x_i|`` for a nonzero coordinate), the first step in every coordinate is at
    least 0.05: started next to an optimum with a tiny off-diagonal element, nlopt's
    default step in that coordinate is tiny too and BOBYQA can stop before it moves.
    """
    import nlopt

    x0 = np.asarray(x0, dtype=float)
    lb = np.where(np.isfinite(lower), lower, -np.inf)
    best = [np.inf, x0.copy()]

    def wrapped(x, grad):
        val = f(x)
        if not np.isfinite(val):
            val = 1e300
        if val < best[0]:
            best[0], best[1] = val, x.copy()
        return float(val)

    def run(x):
        opt = nlopt.opt(nlopt.LN_BOBYQA, x0.size)
        opt.set_min_objective(wrapped)
        opt.set_lower_bounds(lb)
        opt.set_initial_step(np.maximum(0.25 * np.abs(x), 0.05))
        opt.set_ftol_abs(tol)
        opt.set_xtol_abs(tol)
        opt.set_maxeval(maxeval)
        try:
            opt.optimize(np.maximum(x, lb))
        except (nlopt.RoundoffLimited, RuntimeError, ValueError):
            pass  # the best point evaluated is still the answer

    # BOBYQA can stop early where progress is slow (e.g. next to a bound); a restart with a
    # fresh trust region from its answer costs a few evaluations when it was the optimum
    run(x0)
    for _ in range(restarts):
        before = best[0]
        run(best[1].copy())
        if before - best[0] <= 10 * tol:
            break
    return float(best[0]), best[1]


@dataclass(frozen=True)
class CriterionParts:
    """The pieces of the criterion at one theta, in the user's units.

    ``criterion(sigma) = logdet + pwrss / sigma^2 + d log(2 pi sigma^2) - sum_log_w``
    with ``d = n`` (ML) or ``n - p`` (REML); minimised over sigma at ``sigma^2 = pwrss/d``.

    Attributes
    ----------
    logdet : float
        ``log det(L_Z L_Z')``, plus ``log det(X'V^-1 X / sigma^2)`` in the user's columns
        for REML.
    pwrss : float
        Penalised weighted residual sum of squares.
    d : int
    sum_log_w : float
    """

    logdet: float
    pwrss: float
    d: int
    sum_log_w: float

    def criterion(self, sigma: float) -> float:
        """The (non-profiled) criterion at residual SD ``sigma``."""
        s2 = sigma * sigma
        return self.logdet + self.pwrss / s2 + self.d * np.log(2.0 * np.pi * s2) - self.sum_log_w

    @property
    def sigma(self) -> float:
        """The sigma that minimises :meth:`criterion`."""
        return float(np.sqrt(self.pwrss / self.d))


def criterion_parts(model, theta) -> CriterionParts | None:
    """Evaluate the factor at ``theta`` and split the criterion (None where infeasible)."""
    if not np.isfinite(model.objective(theta)):
        return None
    c = model.chol
    sy = float(model.A.out_scale[-1])
    logdet = float(c.logdet_Z)
    d = model.n - model.p if model.reml else model.n
    if model.reml:
        logdet += c.logdet_X() + 2.0 * float(np.log(model.A.out_scale[:-1]).sum())
    return CriterionParts(logdet, float(c.pwrss()) * sy * sy, int(d), float(model.A.sum_log_w))


def _transform(model):
    names = model.fixed_names
    icol = names.index("(Intercept)") if "(Intercept)" in names else None
    shift, scale = model.A.out_shift, model.A.out_scale
    return transform_matrix(shift[:-1], scale[:-1], icol), icol, float(shift[-1]), float(scale[-1])


def beta_at(model, theta) -> tuple[np.ndarray, float, np.ndarray]:
    """``(beta, sigma, vcov_unscaled)`` at ``theta`` in the user's units.

    ``vcov(beta) = sigma^2 * vcov_unscaled``; sigma is the profiled estimate (REML or ML
    as the model's method).  Cheaper than :func:`hlm.results.estimates.estimates_at`: no
    random effects or conditional variances.
    """
    parts = criterion_parts(model, theta)
    if parts is None:
        raise ValueError("theta is outside the feasible region")
    c = model.chol
    T, icol, cy, sy = _transform(model)
    beta = sy * (T @ c.beta())
    if icol is not None:
        beta[icol] += cy
    RXinv = c.RX_inv()
    return beta, parts.sigma, T @ RXinv @ RXinv.T @ T.T


def vcov_unscaled(model, theta=None) -> np.ndarray:
    """``vcov(beta) / sigma^2`` at ``theta`` (default: where the factor was last updated)."""
    if theta is not None and not np.isfinite(model.objective(theta)):
        return np.full((model.p, model.p), np.nan)
    T = _transform(model)[0]
    RXinv = model.chol.RX_inv()
    return T @ RXinv @ RXinv.T @ T.T


@dataclass
class MappedCrossProducts(CrossProducts):
    """Cross-products whose model columns are a linear map of the accumulated ones.

    ``basis`` maps the accumulated columns to the model's; ``model_shift`` and
    ``model_scale`` say how each model column relates to the user's units
    (``value = model_shift + model_scale * column``).  Used for the reduced models of the
    fixed-effect profiles, where ``y - b x_j`` and ``X`` without column j are linear
    combinations of the columns of ``[X y]``.
    """

    model_shift: np.ndarray | None = None
    model_scale: np.ndarray | None = None

    @property
    def out_shift(self) -> np.ndarray:
        return self.model_shift

    @property
    def out_scale(self) -> np.ndarray:
        return self.model_scale


def fix_beta_model(model, j: int, b: float):
    """The ML model with ``beta_j`` fixed at ``b``: response ``y - b x_j``, X without column j.

    Built from the model's cross-products by a change of basis, with no pass over the rows.
    When j is the intercept, the other columns become uncentred again (the reduced model has
    no intercept).
    """
    A = model.A
    m = model.p + 1
    shift, scale = np.asarray(A.out_shift, float), np.asarray(A.out_scale, float)
    names = model.fixed_names
    icol = names.index("(Intercept)") if "(Intercept)" in names else None
    keep = [k for k in range(model.p) if k != j]
    keeps_intercept = icol is not None and icol != j
    T = np.zeros((m, len(keep) + 1))
    new_shift = np.zeros(len(keep) + 1)
    new_scale = np.ones(len(keep) + 1)
    for col, k in enumerate(keep):
        T[k, col] = 1.0
        new_scale[col] = scale[k]
        if keeps_intercept:
            new_shift[col] = shift[k]
        elif icol is not None:  # intercept dropped: x_k / s_k = column_k + (c_k / s_k) * 1
            T[icol, col] += shift[k] / scale[k]
    # y' = y - b x_j, with y = c_y + s_y * col_y and x_j = c_j + s_j * col_j
    sy, cy = scale[-1], shift[-1]
    cy_new = cy if keeps_intercept else 0.0
    T[-1, -1] = 1.0
    T[j, -1] -= b * scale[j] / sy
    const = (cy - cy_new - b * shift[j]) / sy
    if const != 0.0:
        # a constant needs the ones column: the intercept (absent only when no column is
        # shifted, i.e. the model has no intercept and then every shift is zero)
        T[icol, -1] += const
    new_scale[-1], new_shift[-1] = sy, cy_new
    base = np.eye(A.G.shape[0]) if A.basis is None else A.basis
    mapped = MappedCrossProducts(
        n=A.n,
        sum_log_w=A.sum_log_w,
        G=A.G,
        ZZ=A.ZZ,
        ZXy=A.ZXy,
        pairs=A.pairs,
        shift=A.shift,
        scale=A.scale,
        basis=base @ T,
        model_shift=new_shift,
        model_scale=new_scale,
    )
    return model_copy(
        model, A=mapped, method="ML", p=len(keep), fixed_names=[names[k] for k in keep]
    )
