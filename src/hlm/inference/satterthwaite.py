"""Satterthwaite's denominator degrees of freedom for Wald tests of fixed effects.

For a contrast ``l' beta`` with variance ``v(phi) = l' C(phi) l``, where ``phi = (theta,
sigma)`` are the variance parameters and ``C = sigma^2 (X'V^-1X)^-1`` in the user's units,

    df = 2 v^2 / (g' A g),   g = dv/dphi,   A = vcov(phi) = 2 H^-1,

with ``H`` the Hessian of the criterion (REML or ML, as fitted) in ``phi`` (Satterthwaite
1946; Giesbrecht & Burns 1985; the same construction as R's lmerTest, Kuznetsova et al.
2017).  The criterion, unprofiled in sigma, is

    crit(theta, sigma) = a(theta) + P(theta) / sigma^2 + d log(2 pi sigma^2) - sum log w,

so its sigma-derivatives are closed forms; the theta-derivatives of ``a``, ``P`` and of
``C / sigma^2`` come from Richardson-extrapolated central differences of the profiled
problem (:mod:`hlm.inference.derivatives`): a few dozen evaluations on the cross-products,
none on the rows.  Joint tests of several contrasts use lmerTest's construction: the
contrasts are rotated to uncorrelated ones, each gets its df, and the F statistic's
denominator df matches the mean of the sum of their squared t's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hlm.inference._problem import criterion_parts, model_copy, vcov_unscaled
from hlm.inference.derivatives import derivatives

#: eigenvalues of the Hessian within this of zero count as zero (lmerTest's tolerance)
EIGEN_TOL = 1e-8


@dataclass(frozen=True)
class VarparCovariance:
    """What Satterthwaite's method needs, at the estimates.

    Attributes
    ----------
    varpar : ndarray (k + 1,)
        ``(theta, sigma)``.
    hessian : ndarray (k + 1, k + 1)
        Of the criterion in ``varpar``.
    vcov_varpar : ndarray (k + 1, k + 1)
        ``2 H^-1`` (a pseudo-inverse over the positive eigenvalues).
    jacobian : ndarray (k + 1, p, p)
        ``d vcov(beta) / d varpar``.
    vcov_beta : ndarray (p, p)
    notes : tuple of str
        Warnings about the Hessian (negative or zero eigenvalues).
    """

    varpar: np.ndarray
    hessian: np.ndarray
    vcov_varpar: np.ndarray
    jacobian: np.ndarray
    vcov_beta: np.ndarray
    notes: tuple

    def df(self, L) -> np.ndarray:
        """Satterthwaite df of each row of ``L`` (1-d contrasts), shape (rows,)."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        v = np.einsum("ri,ij,rj->r", L, self.vcov_beta, L)
        g = np.einsum("ri,kij,rj->rk", L, self.jacobian, L)
        denom = np.einsum("rk,kl,rl->r", g, self.vcov_varpar, g)
        with np.errstate(divide="ignore", invalid="ignore"):
            return 2.0 * v * v / denom


def varpar_covariance(result) -> VarparCovariance:
    """Hessian of the criterion and Jacobian of ``vcov(beta)`` at a fit's estimates."""
    model = model_copy(result.model)
    theta = np.asarray(result.theta, dtype=float)
    sigma = float(result.sigma)
    p = model.p

    def f(th):
        parts = criterion_parts(model, th)
        if parts is None:
            return np.full(2 + p * p, np.nan)
        Cu = vcov_unscaled(model)  # the factor is already at th
        return np.concatenate(([parts.logdet, parts.pwrss], Cu.ravel()))

    f0, grad, hess = derivatives(f, theta)
    k = theta.size
    P, d = f0[1], criterion_parts(model, theta).d
    H = np.empty((k + 1, k + 1))
    H[:k, :k] = hess[0] + hess[1] / sigma**2
    H[:k, k] = H[k, :k] = -2.0 * grad[1] / sigma**3
    H[k, k] = 6.0 * P / sigma**4 - 2.0 * d / sigma**2
    Cu = f0[2:].reshape(p, p)
    jac = np.empty((k + 1, p, p))
    jac[:k] = sigma**2 * np.moveaxis(grad[2:].reshape(p, p, k), -1, 0)
    jac[k] = 2.0 * sigma * Cu
    vcov_varpar, notes = _twice_pinv(H)
    return VarparCovariance(
        varpar=np.append(theta, sigma),
        hessian=H,
        vcov_varpar=vcov_varpar,
        jacobian=jac,
        vcov_beta=sigma**2 * Cu,
        notes=notes,
    )


def _twice_pinv(H: np.ndarray):
    """``2 H^-1`` over the positive eigenvalues, with lmerTest's warnings as notes."""
    if not np.isfinite(H).all():
        n = H.shape[0]
        return np.full((n, n), np.nan), (
            "the Hessian of the criterion could not be evaluated (a step left the feasible "
            "region); Satterthwaite df are not available",
        )
    values, vectors = np.linalg.eigh(H)
    notes = []
    neg = values < -EIGEN_TOL
    zero = np.abs(values) <= EIGEN_TOL
    if neg.any():
        notes.append(
            f"the Hessian of the criterion has {int(neg.sum())} negative eigenvalue(s) "
            f"({', '.join(f'{v:.1e}' for v in values[neg])}): the fit may not have converged"
        )
    if zero.any():
        notes.append(
            f"the Hessian of the criterion has {int(zero.sum())} eigenvalue(s) close to zero: "
            "a variance parameter is poorly determined (often a boundary fit)"
        )
    pos = values > EIGEN_TOL
    Vp = vectors[:, pos]
    return 2.0 * (Vp / values[pos]) @ Vp.T, tuple(notes)


def joint_df(nu: np.ndarray, tol: float = 1e-8) -> float:
    """Denominator df of an F test from the df of its uncorrelated 1-d parts (lmerTest).

    ``E = sum nu_i / (nu_i - 2)``, ``df = 2E / (E - q)``; 2 when any ``nu_i <= 2``.
    """
    nu = np.asarray(nu, dtype=float)
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * E / (E - nu.size)
