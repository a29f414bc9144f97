"""Score and expected information of the variance components, from the cross-products.

For ``V = sum_a psi_a Z D_a Z' + sigma^2 I`` (``D_a`` repeats ``E_a = dSigma_k/dpsi_a``
over the groups of term k), the REML (ML) log-likelihood has

    score_a = -1/2 tr(P V_a) + 1/2 y'P V_a P y,     I_ab = 1/2 tr(P V_a P V_b),

with P the REML projection ``V^{-1} - V^{-1}X(X'V^{-1}X)^{-1}X'V^{-1}`` (ML: ``V^{-1}``).
With ``M0 = Z'P0 Z`` (P0 = sigma^2 P) these are traces of small matrices:

    tr(P V_a) = t_a / sigma^2,           t_a = tr(D_a M0),
    tr(P V_a P V_b) = T_ab / sigma^4,    T_ab = tr(D_a M0 D_b M0),

and, because ``P V P = P`` and V is linear in psi, the residual-variance entries follow
from the same t and T (``psi~ = psi / sigma^2``, ``d = n - p`` for REML, ``n`` for ML):

    I_{a,s2}  = (t_a - (T psi~)_a) / (2 sigma^4),
    I_{s2,s2} = (d - 2 psi~'t + psi~'T psi~) / (2 sigma^4).

The data enter only through ``P y = (y - X beta - Z b) / sigma^2`` (the residual at the
GLS estimate and conditional modes) and ``Z'(y - X beta - Z b)``, both cross-products.
``M0`` is block diagonal minus a low-rank part (:meth:`Omega.zpz_parts`); T is summed block
pair by block pair without forming M0 whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hlm.engines.omega import Omega
from hlm.engines.varcomp import Layout, layout, psi_from_theta, scale_y, theta_from_psi


@dataclass(frozen=True)
class ScoreInfo:
    """Score, expected information and criterion at a point (cross-product units).

    Attributes
    ----------
    score : ndarray (npsi,)
        Gradient of the (restricted) log-likelihood in psi.
    info : ndarray (npsi, npsi)
        Expected (Fisher) information in psi.
    criterion : float
        -2 (restricted) log-likelihood at the point, in the user's units (as reported).
    omega : Omega
        The factor at theta (estimates can be read from it).
    """

    score: np.ndarray
    info: np.ndarray
    criterion: float
    omega: Omega


def _pair_tensor(Y: np.ndarray, Jk, Sk, Jl, Sl) -> np.ndarray:
    """``K[j,k,i,l] = sum_{g,h} Y[g j, h k] Y[g i, h l]`` for Y (Jk Sk x Jl Sl)."""
    Y4 = Y.reshape(Jk, Sk, Jl, Sl)
    if Sk == 1 and Sl == 1:
        return np.array(float((Y * Y).sum())).reshape(1, 1, 1, 1)
    return np.einsum("gjhk,gihl->jkil", Y4, Y4, optimize=True)


def _first_term_tensor(Bd: np.ndarray, U: np.ndarray, S1: int) -> np.ndarray:
    """K for term 1 with itself, where ``M0_11 = blockdiag(Bd) - U U'`` (U: q1 x r)."""
    J1 = Bd.shape[0]
    K = np.einsum("gjk,gil->jkil", Bd, Bd)
    if U.shape[1] == 0:
        return K
    U3 = U.reshape(J1, S1, -1)
    UU = np.einsum("gsr,gtr->gst", U3, U3)  # U_g U_g'
    K -= np.einsum("gjk,gil->jkil", Bd, UU) + np.einsum("gjk,gil->jkil", UU, Bd)
    # sum_{g,h} (U_g U_h')[j,k] (U_g U_h')[i,l] = sum_{a,b} Q[j,i,a,b] Q[k,l,a,b]
    Q = np.empty((S1, S1, U.shape[1], U.shape[1]))
    for j in range(S1):
        for i in range(S1):
            Q[j, i] = U3[:, j, :].T @ U3[:, i, :]
    K += np.einsum("jiab,klab->jkil", Q, Q)
    return K


def _block_sums(M: np.ndarray, J: int, S: int) -> np.ndarray:
    """Sum of the diagonal S x S blocks of a (J S x J S) matrix."""
    idx = np.arange(J)
    return M.reshape(J, S, J, S)[idx, :, idx, :].sum(axis=0)


def trace_terms(om: Omega, lay: Layout, reml: bool):
    """``t`` (npsi - 1,) and ``T`` (npsi - 1, npsi - 1) for the random-effects elements."""
    Bd, N1r, Nrr, U, Rr = om.zpz_parts(reml)
    J, S, K_terms = om.J, om.S, om.K
    qr = om.qr
    # diagonal-block sums Delta_k of M0 and the pair tensors K_kl
    J1, S1 = J[0], S[0]
    U3 = U.reshape(J1, S1, -1)
    Delta = [Bd.sum(axis=0) - np.einsum("gsr,gtr->st", U3, U3)]
    tensors = {(0, 0): _first_term_tensor(Bd, U, S1)}
    if K_terms > 1:
        Mrr = Nrr - Rr.T @ Rr
        M1r = N1r.toarray() - U @ Rr
        for i, k in enumerate(range(1, K_terms)):
            o = om.offsets[i]
            sl_k = slice(o, o + om.q[k])
            Delta.append(_block_sums(Mrr[sl_k, sl_k], J[k], S[k]))
            tensors[(0, k)] = _pair_tensor(M1r[:, sl_k], J1, S1, J[k], S[k])
            for j, l in enumerate(range(k, K_terms), start=i):
                ol = om.offsets[j]
                sl_l = slice(ol, ol + om.q[l])
                tensors[(k, l)] = _pair_tensor(Mrr[sl_k, sl_l], J[k], S[k], J[l], S[l])
    del qr
    nre = lay.n - 1
    E = [lay.basis(a) for a in range(nre)]
    t = np.array([np.sum(E[a] * Delta[lay.term[a]]) for a in range(nre)])
    T = np.empty((nre, nre))
    for a in range(nre):
        for b in range(a, nre):
            k, l = lay.term[a], lay.term[b]
            if k <= l:
                val = np.einsum("ij,kl,jkil->", E[a], E[b], tensors[(k, l)])
            else:
                val = np.einsum("ij,kl,jkil->", E[b], E[a], tensors[(l, k)])
            T[a, b] = T[b, a] = val
    return t, T


def score_and_information(model, theta: np.ndarray, sigma2: float, lay: Layout | None = None):
    """Score and expected information of psi at (theta, sigma^2), cross-product units.

    Parameters
    ----------
    model : LinearMixedModel
    theta : ndarray
        Relative covariance parameters (``Sigma_k = sigma^2 lambda_k lambda_k'``).
    sigma2 : float
        Residual variance in cross-product units (the user's divided by ``s_y^2``).
    lay : Layout, optional

    Returns
    -------
    ScoreInfo, or None when theta is not feasible.
    """
    lay = layout(model) if lay is None else lay
    om = Omega(model, theta)
    if not om.ok:
        return None
    reml = model.reml
    t, T = trace_terms(om, lay, reml)
    psi = psi_from_theta(model, lay, theta, sigma2)
    rel = psi[:-1] / sigma2  # psi~ (relative to sigma^2)
    d = model.n - model.p if reml else model.n
    s4 = sigma2 * sigma2
    nre = lay.n - 1
    info = np.empty((lay.n, lay.n))
    info[:nre, :nre] = T / (2.0 * s4)
    Trel = T @ rel
    info[:nre, -1] = info[-1, :nre] = (t - Trel) / (2.0 * s4)
    info[-1, -1] = (d - 2.0 * rel @ t + rel @ Trel) / (2.0 * s4)
    # score: -1/2 tr(P V_a) + 1/2 |D_a^{1/2} Z'P y|^2 with P y = residual / sigma^2
    zr = om.Zt_residual()
    Gamma = [np.einsum("gs,gt->st", z, z) for z in zr]
    quad = np.array([np.sum(lay.basis(a) * Gamma[lay.term[a]]) for a in range(nre)])
    score = np.empty(lay.n)
    score[:nre] = -0.5 * t / sigma2 + 0.5 * quad / s4
    trP = (d - rel @ t) / sigma2
    score[-1] = -0.5 * trP + 0.5 * om.residual_ss() / s4
    return ScoreInfo(score, info, criterion_from_omega(model, om, sigma2), om)


def criterion_from_omega(model, om: Omega, sigma2: float) -> float:
    """-2 (restricted) log-likelihood at (theta, sigma^2) from a factor (user units)."""
    sy = scale_y(model)
    d = model.n - model.p if model.reml else model.n
    crit = om.logdet_Z + d * np.log(2.0 * np.pi * sigma2 * sy * sy) + om.pwrss / sigma2
    if model.reml:
        crit += om.logdet_X + 2.0 * float(np.log(model.A.out_scale[:-1]).sum())
    return float(crit - model.A.sum_log_w)


def free_on_boundary(lay: Layout, psi: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Elements that are estimated and not on the boundary.

    A variance estimated at exactly zero is on the boundary of the parameter space, and so
    are the covariances of its row: no standard error is given for them.
    """
    free = ~fixed.copy()
    for a in range(lay.n - 1):
        if lay.row[a] == lay.col[a] and psi[a] == 0.0:
            k, i = lay.term[a], lay.row[a]
            same_row = (lay.term == k) & ((lay.row == i) | (lay.col == i))
            free &= ~same_row
    return free


def observed_information(model, theta, sigma2: float, lay: Layout | None = None) -> np.ndarray:
    """Observed information (minus the Hessian of the log-likelihood) in psi.

    Central differences of the analytic score (cross-product units); needs every
    ``Sigma_k`` positive definite enough for the steps (an interior point).
    """
    lay = layout(model) if lay is None else lay
    psi = psi_from_theta(model, lay, np.asarray(theta, dtype=float), sigma2)
    H = np.empty((lay.n, lay.n))
    scale = np.sqrt(np.abs(np.outer(psi, psi)).max())
    for b in range(lay.n):
        h = 1e-5 * max(abs(psi[b]), 1e-3 * scale)
        grads = []
        for sign in (1.0, -1.0):
            trial = psi.copy()
            trial[b] += sign * h
            th = theta_from_psi(model, lay, trial)
            si = None if th is None else score_and_information(model, th, trial[-1], lay)
            if si is None:
                raise ValueError(
                    "the observed information needs an interior point (every covariance "
                    "matrix positive definite); use the expected information"
                )
            grads.append(si.score)
        H[:, b] = -(grads[0] - grads[1]) / (2.0 * h)
    return 0.5 * (H + H.T)


def varcomp_covariance(
    model, theta, sigma2_user: float, fixed=None, information: str = "expected"
) -> pd.DataFrame:
    """Covariance matrix of the variance components (inverse information).

    Parameters
    ----------
    model : LinearMixedModel
    theta : ndarray
    sigma2_user : float
        Residual variance in the user's units.
    fixed : ndarray of bool, optional
        Elements held at known values (no standard error).
    information : {"expected", "observed"}
        Fisher's expected information (default; what Fisher scoring uses and HLM
        reports) or the observed information (minus the Hessian of the log-likelihood,
        by central differences of the analytic score).

    Returns
    -------
    DataFrame
        Indexed both ways by ``(grp, var1, var2)``; rows and columns of fixed elements and
        of elements on the boundary (a variance estimated at zero, its covariances) are NaN.
    """
    lay = layout(model)
    sy2 = scale_y(model) ** 2
    s2 = sigma2_user / sy2
    fixed = np.zeros(lay.n, dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    if information not in ("expected", "observed"):
        raise ValueError(f"information must be 'expected' or 'observed', got {information!r}")
    si = score_and_information(model, np.asarray(theta, dtype=float), s2, lay)
    cov = np.full((lay.n, lay.n), np.nan)
    if si is not None:
        psi = psi_from_theta(model, lay, theta, s2)
        free = free_on_boundary(lay, psi, fixed)
        idx = np.flatnonzero(free)
        info = si.info if information == "expected" else observed_information(model, theta, s2, lay)
        sub = info[np.ix_(idx, idx)]
        cov[np.ix_(idx, idx)] = np.linalg.pinv(sub, hermitian=True) * sy2 * sy2
    index = pd.MultiIndex.from_tuples(lay.keys, names=["grp", "var1", "var2"])
    return pd.DataFrame(cov, index=index, columns=index)


def varcomp_covariance_of(result) -> pd.DataFrame:
    """:func:`varcomp_covariance` of a fitted model, with its fixed components.

    When the information cannot be formed (a model too large for the dense pieces it
    needs) the matrix is NaN and a warning says why.
    """
    from hlm.errors import DataError, DataWarning, warn

    model = result.model
    lay = layout(model)
    keys = {tuple(k) for k in (getattr(result.fit_log, "fixed", ()) or ())}
    fixed = np.array([k in keys for k in lay.keys], dtype=bool)
    try:
        return varcomp_covariance(model, result.theta, result.sigma**2, fixed=fixed)
    except (DataError, MemoryError) as exc:
        warn(f"standard errors of the variance components are not available: {exc}", DataWarning)
        index = pd.MultiIndex.from_tuples(lay.keys, names=["grp", "var1", "var2"])
        return pd.DataFrame(np.nan, index=index, columns=index)
