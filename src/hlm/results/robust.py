"""Cluster-robust (sandwich) covariance of the fixed effects, clustered by the top level.

    vcov_CR = B M B,  B = (X'V^{-1}X)^{-1},  M = sum_k X_k'V_k^{-1} A_k e_k e_k' A_k' V_k^{-1} X_k

with ``e_k = y_k - X_k beta`` the marginal residuals of cluster ``k`` (a group of the
highest grouping factor) and ``V_k = Z_k T Z_k' + sigma^2 I`` its fitted marginal
covariance (all levels' random effects inside the cluster).  The adjustment ``A_k`` is

- CR0: ``I`` (Liang & Zeger);
- CR1: ``I`` and the result times ``J / (J - 1)``;
- CR2 (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018, working model = fitted model):
  ``A_k = D_k' G_k^{+1/2} D_k`` with ``D_k'D_k = V_k`` and
  ``G_k = D_k (V_k - X_k B X_k') D_k'``, so that the meat is unbiased when the model's
  covariance is right.  ``G^{+1/2}`` is the symmetric square root of the pseudo-inverse.

Everything is computed from each cluster's cross-products ``C_k'[C_k, y_k]`` with
``C_k = [X_k, Z_k]`` (``Z_k`` holding every random-effect column of every group inside the
cluster), never from n_k x n_k matrices: ``V_k`` is ``sigma^2 I`` plus a matrix in the span
of ``C_k``, and so are ``X_k B X_k'`` and ``G_k``, so in an orthonormal basis ``Q_k`` of
that span (read off the eigenvectors of the scaled ``C_k'C_k``) each matrix is ``r x r``
(``r <= rank C_k``) and acts as a multiple of ``I`` on the complement, where ``X_k' V_k^{-1}``
vanishes.  The adjustment is invariant to the choice of ``D_k``, so the symmetric root is used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hlm.results.hierarchy import Hierarchy

#: eigenvalues of a cluster's scaled cross-product matrix below this times the largest are
#: directions the cluster's columns do not span (e.g. a school-level column next to the
#: intercept within one school)
SPAN_TOL = 1e-11
#: eigenvalues of G below this times sigma^4 are treated as zero in its pseudo-inverse root
#: (clubSandwich's 1e-12, on its covariance scale V / sigma^2)
PINV_TOL = 1e-12

KINDS = ("CR0", "CR1", "CR2")


def robust_vcov(H: Hierarchy, kind: str = "CR2") -> pd.DataFrame:
    """The cluster-robust covariance matrix of the fixed effects.

    Parameters
    ----------
    H : Hierarchy
        The fitted model's per-group cross-products.
    kind : {"CR2", "CR1", "CR0"}

    Returns
    -------
    pandas.DataFrame, shape (p, p)
    """
    kind = str(kind).upper()
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if kind == "CR2" and H.weighted:
        raise NotImplementedError(
            "CR2 standard errors are not implemented for fits with prior weights (the "
            "adjustment depends on how the weights enter V); use kind='CR1' or 'CR0'"
        )
    G, Texp = cluster_grams(H)
    p = H.p
    J = G.shape[0]
    Rx, Phi_U, Phi_w, c = _cluster_basis(G, Texp, H.beta, H.sigma2, p)
    Phi_inv = (Phi_U / Phi_w[:, None, :]) @ np.swapaxes(Phi_U, 1, 2)
    XtVi = np.swapaxes(Rx, 1, 2) @ Phi_inv  # (J, p, m): X_k' V_k^{-1} in the basis
    B = np.linalg.inv((XtVi @ Rx).sum(axis=0))
    if kind == "CR2":
        root = (Phi_U * np.sqrt(Phi_w)[:, None, :]) @ np.swapaxes(Phi_U, 1, 2)
        Phi = (Phi_U * Phi_w[:, None, :]) @ np.swapaxes(Phi_U, 1, 2)
        Gk = root @ (Phi - Rx @ B @ np.swapaxes(Rx, 1, 2)) @ root
        Gk = 0.5 * (Gk + np.swapaxes(Gk, 1, 2))
        nu, W = np.linalg.eigh(Gk)
        inv_root = np.where(nu > PINV_TOL * H.sigma2**2, 1.0 / np.sqrt(np.abs(nu)), 0.0)
        Gih = (W * inv_root[:, None, :]) @ np.swapaxes(W, 1, 2)
        c = np.einsum("kab,kb->ka", root @ Gih @ root, c)
    t = np.einsum("kpm,km->kp", XtVi, c)
    vcov = B @ (t.T @ t) @ B
    if kind == "CR1":
        vcov *= J / (J - 1.0)
    names = H.fixed_names
    return pd.DataFrame(vcov, index=names, columns=names)


def cluster_grams(H: Hierarchy) -> tuple[np.ndarray, np.ndarray]:
    """Each top-level cluster's cross-products in the layout ``[X, y, Z_top, Z_lower...]``.

    A lower level's columns are repeated per group inside the cluster (a group's column is
    zero off its rows); clusters with fewer groups are padded with zero columns.

    Returns
    -------
    G : ndarray (J_top, W, W)
    Texp : ndarray (J_top, W - p - 1, W - p - 1)
        The covariance of the cluster's random effects in the same layout (zero on padding).
    """
    levels = H.levels
    top = levels[-1]
    p = H.p
    Jt = top.J
    top_of_finest = top.of_finest
    base = np.full(Jt, p + 1 + top.S, dtype=np.int64)
    # finest group -> position of each r column in its cluster's layout
    idx = np.zeros((H.K.shape[0], H.K.shape[1]), dtype=np.int64)
    idx[:, top.zslice] = p + 1 + np.arange(top.S)
    idx[:, H.xslice] = np.arange(p)
    idx[:, H.yidx] = p
    placements = [(np.zeros(Jt, dtype=np.int64) + p + 1, np.arange(Jt), top)]
    for lev in reversed(levels[:-1]):
        top_of = np.empty(lev.J, dtype=np.int64)
        top_of[lev.of_finest] = top_of_finest
        order = np.lexsort((np.arange(lev.J), top_of))
        first = np.searchsorted(top_of[order], top_of[order], side="left")
        local = np.empty(lev.J, dtype=np.int64)
        local[order] = np.arange(lev.J) - first
        start = base[top_of] + local * lev.S  # first column of each group's block
        idx[:, lev.zslice] = start[lev.of_finest][:, None] + np.arange(lev.S)
        placements.append((start, top_of, lev))
        base += np.bincount(top_of, minlength=Jt) * lev.S
    W = int(base.max())
    G = np.zeros((Jt, W, W))
    np.add.at(G, (top_of_finest[:, None, None], idx[:, :, None], idx[:, None, :]), H.K)
    Texp = np.zeros((Jt, W - p - 1, W - p - 1))
    for start, top_of, lev in placements:
        pos = (start - p - 1)[:, None] + np.arange(lev.S)
        Texp[top_of[:, None, None], pos[:, :, None], pos[:, None, :]] = lev.T
    return G, Texp


def _cluster_basis(G, Texp, beta, sigma2, p):
    """Per cluster: X, the residual and V in an orthonormal basis of the columns' span.

    Returns ``Rx`` (J, m, p), the eigen-decomposition ``(U, w)`` of ``V`` in the basis and
    the residual's coordinates ``c`` (J, m).  Directions the cluster does not span have zero
    rows in ``Rx`` and ``c`` and eigenvalue ``sigma^2``: they change nothing.
    """
    W = G.shape[1]
    cols = np.r_[0:p, p + 1 : W]
    Kc = G[:, cols][:, :, cols]
    kcy = G[:, cols, p]
    d = np.sqrt(np.diagonal(Kc, axis1=1, axis2=2))
    d = np.where(d > 0, d, 1.0)
    lam, E = np.linalg.eigh(Kc / (d[:, :, None] * d[:, None, :]))
    keep = lam > SPAN_TOL * np.maximum(lam[:, -1:], 1e-300)
    lam = np.where(keep, lam, 1.0)
    Et = np.swapaxes(E, 1, 2)
    # C = Q R with Q'Q = I on the kept directions: R = lam^(1/2) E' diag(d)
    R = (keep * np.sqrt(lam))[:, :, None] * Et * d[:, None, :]
    qy = (keep / np.sqrt(lam)) * np.einsum("kab,kb->ka", Et, kcy / d)
    Rx, Rz = R[:, :, :p], R[:, :, p:]
    c = qy - Rx @ beta
    Phi = sigma2 * np.eye(R.shape[1]) + Rz @ Texp @ np.swapaxes(Rz, 1, 2)
    w, U = np.linalg.eigh(0.5 * (Phi + np.swapaxes(Phi, 1, 2)))
    return Rx, U, w, c
