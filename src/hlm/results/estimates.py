"""Estimates at a given theta, mapped back from the transformed columns to the user's units.

The cross-products hold ``(value - shift) / scale`` columns, i.e. ``X_s = X T`` with ``T``
unit-triangular times diagonal.  So ``beta = s_y T beta_s + shift_y e_0`` and
``vcov(beta) = s_y^2 T vcov_s T'``; random effects only scale by ``s_y``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np


@dataclass(frozen=True)
class Estimates:
    """Everything that follows from theta, in the user's units.

    Attributes
    ----------
    theta : ndarray
    criterion : float
    beta : ndarray (p,)
    vcov : ndarray (p, p)
    sigma : float
    b : list of ndarray (J_k, S_k)
        Conditional modes of the random effects per term.
    b_var : list of ndarray (J_k, S_k, S_k)
        Their conditional variances (given beta), computed on first use: with crossed
        factors they need the inverse of the dense block, which can cost more than the fit.
    Sigma : list of ndarray (S_k, S_k)
        Covariance matrix of each term.
    """

    theta: np.ndarray
    criterion: float
    beta: np.ndarray
    vcov: np.ndarray
    sigma: float
    b: list
    Sigma: list
    b_var_fn: Callable = field(repr=False, compare=False)

    @property
    def b_var(self) -> list:
        """Conditional variances of the random effects per term, (J_k, S_k, S_k)."""
        cached = self.__dict__.get("_b_var")
        if cached is None:
            cached = self.b_var_fn()
            object.__setattr__(self, "_b_var", cached)
        return cached


def transform_matrix(shift: np.ndarray, scale: np.ndarray, intercept: int | None) -> np.ndarray:
    """``T`` with ``X_s = X T`` for the fixed-effect columns (y excluded)."""
    T = np.diag(1.0 / scale)
    if intercept is not None:
        T[intercept, :] -= shift / scale
        T[intercept, intercept] = 1.0
    return T


def estimates_at(model, theta: np.ndarray, criterion: float | None = None) -> Estimates:
    """Profile out beta and sigma at ``theta`` and read off every estimate.

    Parameters
    ----------
    model : LinearMixedModel
    theta : ndarray (ntheta,)
    criterion : float, optional
        The criterion at ``theta`` when the caller already has it (the optimizer's value at
        its optimum).  Given and finite, and with the model's factor still at ``theta``
        (the optimizer's last evaluation was there), the factor is not formed again;
        otherwise the criterion is evaluated, which also moves the factor to ``theta``.
    """
    held = getattr(model, "_chol_theta", None)  # the theta the factor holds
    if (
        criterion is not None
        and np.isfinite(criterion)
        and held is not None
        and held.shape == theta.shape
        and bool((held == theta).all())
    ):
        # the factor already holds theta: read the criterion off it, as model.objective
        # would after forming it again (one evaluation saved)
        crit = model._criterion_from_chol()
    else:
        crit = model.objective(theta)
    c = model.chol
    A = model.A
    p = model.p
    names = model.fixed_names
    icol = names.index("(Intercept)") if "(Intercept)" in names else None
    shift, scale = A.out_shift, A.out_scale
    sy, cy = float(scale[-1]), float(shift[-1])
    T = transform_matrix(shift[:-1], scale[:-1], icol)
    beta_s = c.beta()
    beta = sy * (T @ beta_s)
    if icol is not None:
        beta[icol] += cy
    d = model.n - p if model.reml else model.n
    sigma2 = c.pwrss() * sy**2 / d
    RXinv = c.RX_inv()
    vcov = sigma2 * (T @ RXinv @ RXinv.T @ T.T)
    u = c.u(beta_s)
    lams = c.lams
    b = [sy * (uk @ lam.T) for uk, lam in zip(u, lams, strict=True)]
    Sigma = [sigma2 * (lam @ lam.T) for lam in lams]
    b_var = partial(conditional_variances, model, theta, sigma2, lams)
    return Estimates(theta, crit, beta, vcov, float(np.sqrt(sigma2)), b, Sigma, b_var)


def conditional_variances(model, theta, sigma2, lams) -> list[np.ndarray]:
    """Conditional variances of the random effects at ``theta``, (J_k, S_k, S_k) per term.

    ``Estimates.b_var`` calls this on first use (bound with :func:`functools.partial`, so a
    result pickles); the model's factor may have moved to another theta since (profiles,
    refits, the convergence checks), and is then formed again at ``theta``.
    """
    if not np.array_equal(getattr(model, "_chol_theta", None), theta):
        model.objective(theta)
    V = model.chol.conditional_variances()
    return [sigma2 * (lam @ Vk @ lam.T) for Vk, lam in zip(V, lams, strict=True)]
