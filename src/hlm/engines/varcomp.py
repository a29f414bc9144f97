"""Variance components as a vector ``psi``: layout, conversion to and from ``theta``.

The EM and Fisher-scoring engines, the information matrix and GLS at known variances work
on the variance components themselves,

    psi = (vech(Sigma_1), ..., vech(Sigma_K), sigma^2),

with each term's entries in the order of the rows of ``varcorr()``: the variances
``Sigma_k[i, i]`` first, then the covariances ``Sigma_k[i, j]`` for ``i < j`` row by row; the
residual variance last.  The profiled engine works on theta (``Sigma_k = sigma^2 lambda_k
lambda_k'``); :func:`theta_from_psi` and :func:`psi_from_theta` convert.

Engines work in the units of the cross-products (the response divided by its scale
``s_y``): ``psi_user = s_y^2 psi``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hlm.results.tables import unique_group_names


@dataclass(frozen=True)
class Layout:
    """Where each element of ``psi`` lives.

    Attributes
    ----------
    term : ndarray of int
        Random-effects term (theta order) of each element; -1 for the residual.
    row, col : ndarray of int
        Position in the term's ``Sigma`` (row <= col); -1 for the residual.
    keys : list of tuple
        ``(grp, var1, var2)`` as in ``varcorr()`` (var2 None for variances), and
        ``("Residual", None, None)`` last.
    sizes : list of int
        ``S_k`` per term.
    """

    term: np.ndarray
    row: np.ndarray
    col: np.ndarray
    keys: list
    sizes: list

    @property
    def n(self) -> int:
        """Number of variance components (length of psi)."""
        return len(self.term)

    @property
    def is_variance(self) -> np.ndarray:
        """True for variances (including the residual), False for covariances."""
        return self.row == self.col

    def basis(self, a: int) -> np.ndarray:
        """``E_a = dSigma_k / dpsi_a`` (S_k x S_k) for a random-effects element ``a``."""
        S = self.sizes[self.term[a]]
        E = np.zeros((S, S))
        i, j = self.row[a], self.col[a]
        E[i, j] = E[j, i] = 1.0
        return E

    def of_term(self, k: int) -> np.ndarray:
        """Indices of term k's elements in psi."""
        return np.flatnonzero(self.term == k)


def layout(model) -> Layout:
    """The layout of psi for a model (its ``blocks`` in theta order)."""
    names = unique_group_names([b.group for b in model.blocks])
    term, row, col, keys = [], [], [], []
    for k, (b, name) in enumerate(zip(model.blocks, names, strict=True)):
        for i in range(b.S):
            term.append(k), row.append(i), col.append(i)
            keys.append((name, b.columns[i], None))
        for i in range(b.S):
            for j in range(i + 1, b.S):
                term.append(k), row.append(i), col.append(j)
                keys.append((name, b.columns[i], b.columns[j]))
    term.append(-1), row.append(-1), col.append(-1)
    keys.append(("Residual", None, None))
    return Layout(np.array(term), np.array(row), np.array(col), keys, [b.S for b in model.blocks])


def sigmas_from_psi(lay: Layout, psi: np.ndarray) -> list[np.ndarray]:
    """Per-term covariance matrices ``Sigma_k`` from psi."""
    out = [np.zeros((S, S)) for S in lay.sizes]
    for a in range(lay.n - 1):
        k, i, j = lay.term[a], lay.row[a], lay.col[a]
        out[k][i, j] = out[k][j, i] = psi[a]
    return out


def psi_from_sigmas(lay: Layout, Sigmas, sigma2: float) -> np.ndarray:
    """Inverse of :func:`sigmas_from_psi`, with the residual variance appended."""
    psi = np.empty(lay.n)
    for a in range(lay.n - 1):
        psi[a] = Sigmas[lay.term[a]][lay.row[a], lay.col[a]]
    psi[-1] = sigma2
    return psi


def psd_cholesky(Sigma: np.ndarray, rtol: float = 1e-10) -> np.ndarray | None:
    """Lower-triangular ``lambda`` with ``lambda lambda' = Sigma`` for a semidefinite Sigma.

    Unlike a plain Cholesky factorisation this accepts zero pivots (a zero variance, or a
    correlation of +-1): the pivot's column is then zero below the diagonal.  Returns None
    when Sigma is not positive semidefinite (beyond rounding).
    """
    S = Sigma.shape[0]
    scale = max(float(np.max(np.abs(np.diag(Sigma)))), np.finfo(float).tiny)
    tol = rtol * scale
    lam = np.zeros((S, S))
    for j in range(S):
        d = Sigma[j, j] - lam[j, :j] @ lam[j, :j]
        if d < -tol:
            return None
        if d <= tol:
            rest = Sigma[j + 1 :, j] - lam[j + 1 :, :j] @ lam[j, :j]
            if np.any(np.abs(rest) > np.sqrt(tol * scale) * 10):
                return None  # a zero pivot with a non-zero column: not semidefinite
            continue
        lam[j, j] = np.sqrt(d)
        lam[j + 1 :, j] = (Sigma[j + 1 :, j] - lam[j + 1 :, :j] @ lam[j, :j]) / lam[j, j]
    return lam


def theta_from_psi(model, lay: Layout, psi: np.ndarray) -> np.ndarray | None:
    """theta of ``Sigma_k / sigma^2``; None when some Sigma_k is not semidefinite."""
    sigma2 = psi[-1]
    if not sigma2 > 0:
        return None
    lams = []
    for Sk in sigmas_from_psi(lay, psi):
        lam = psd_cholesky(Sk / sigma2)
        if lam is None:
            return None
        lams.append(lam)
    return model.cov.pack(lams)


def psi_from_theta(model, lay: Layout, theta: np.ndarray, sigma2: float) -> np.ndarray:
    """psi of ``Sigma_k = sigma^2 lambda_k lambda_k'``."""
    lams = model.cov.lambdas(np.asarray(theta, dtype=float))
    return psi_from_sigmas(lay, [sigma2 * (lam @ lam.T) for lam in lams], sigma2)


def scale_y(model) -> float:
    """``s_y``: the response is held as ``(y - shift) / s_y`` in the cross-products."""
    return float(model.A.out_scale[-1])


def update_chol(model, theta) -> bool:
    """Factor ``model.chol`` at theta, recording which theta it holds (as ``objective`` does).

    Results read conditional variances from the factor later and check
    ``model._chol_theta`` first, so every update must keep it true.
    """
    theta = np.asarray(theta, dtype=float).reshape(-1)
    model._chol_theta = theta.copy()
    return bool(model.chol.update(theta))


def criterion_at(model, theta: np.ndarray, sigma2: float, *, update: bool = True) -> float:
    """-2 log-likelihood (ML) or -2 restricted log-likelihood (REML) at (theta, sigma^2).

    Not profiled: ``sigma2`` (in cross-product units) is given.  At
    ``sigma2 = pwrss / d`` it equals the profiled criterion ``model.objective(theta)``.

    Parameters
    ----------
    update : bool
        Factor ``model.chol`` at theta first (False: it already holds theta).
    """
    c = model.chol
    if update and not update_chol(model, theta):
        return np.inf
    sy = scale_y(model)
    d = model.n - model.p if model.reml else model.n
    pwrss = c.pwrss()
    crit = c.logdet_Z + d * np.log(2.0 * np.pi * sigma2 * sy * sy) + pwrss / sigma2
    if model.reml:
        crit += c.logdet_X() + 2.0 * float(np.log(model.A.out_scale[:-1]).sum())
    return float(crit - model.A.sum_log_w)


def profiled_sigma2(model) -> float:
    """``pwrss / d`` from ``model.chol`` (cross-product units): sigma^2 profiled at theta."""
    d = model.n - model.p if model.reml else model.n
    return model.chol.pwrss() / d
