"""Row-level designs for simulating responses and refitting on new responses.

Simulation needs the rows (a new response is one value per row), but a refit needs only
the cross-products that involve the response: ``X'y``, ``y'y`` and the per-group ``Z'y``.
:class:`RowDesign` holds, once, what those need: the fixed-effect columns in the user's
units (for the mean) and in the model's accumulation basis (shifted, scaled and weighted
exactly as the cross-products were formed), each term's Z and group codes, the weights and
the offset.  :func:`with_response` then swaps the response's cross-products into a copy of
the model without touching the other statistics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hlm.inference._problem import model_copy


@dataclass(frozen=True)
class RowDesign:
    """The rows of a fitted mixed model, materialised once.

    Attributes
    ----------
    X : ndarray (n, p)
        Fixed-effect columns kept in the fit, user's units.
    Xacc : ndarray (n, m_acc - 1)
        The same columns as accumulated (hidden ones column first when the model has no
        intercept), shifted, scaled and multiplied by ``sqrt(w)``.
    y : ndarray (n,)
        The response as fitted (transformed, offset not subtracted).
    Z : list of ndarray (n, S_k)
    codes : list of ndarray (n,)
    sqrtw : ndarray (n,) or None
    offset : ndarray (n,) or None
    """

    X: np.ndarray
    Xacc: np.ndarray
    y: np.ndarray
    Z: list
    codes: list
    sqrtw: np.ndarray | None
    offset: np.ndarray | None

    @property
    def n(self) -> int:
        """Number of rows."""
        return len(self.y)


def row_design(model) -> RowDesign:
    """Build :class:`RowDesign` for ``model`` (one pass over its cleaned rows)."""
    from hlm.model import _WEIGHTS, CHUNK_ROWS

    df = model.frame.data
    n = len(df)
    keep = np.asarray(model.keep)
    X = np.empty((n, len(keep)))
    y = np.empty(n)
    Z = [np.empty((n, b.S)) for b in model.blocks]
    for start in range(0, n, CHUNK_ROWS):
        chunk = df.iloc[start : start + CHUNK_ROWS]
        stop = start + len(chunk)
        Xy = model.design.Xy(chunk)
        X[start:stop] = Xy[:, keep]
        y[start:stop] = Xy[:, -1]
        for Zk, b in zip(Z, model.blocks, strict=True):
            Zk[start:stop] = b.Z(chunk)
    sqrtw = None
    if model.weights_info is not None:
        sqrtw = np.sqrt(df[_WEIGHTS].to_numpy(dtype=float))
    A = model.A
    Xacc = X if A.basis is None else np.column_stack((np.ones(n), X))
    Xacc = (Xacc - A.shift[:-1]) / A.scale[:-1]
    if sqrtw is not None:
        Xacc = Xacc * sqrtw[:, None]
    codes = [np.asarray(b.codes) for b in model.blocks]
    offset = None if model.offset is None else np.asarray(model.offset, dtype=float)
    return RowDesign(X, Xacc, y, Z, codes, sqrtw, offset)


def response_crossproducts(model, rd: RowDesign, y: np.ndarray):
    """``(G column, ZXy columns)`` of a new response ``y`` (user's units, offset included)."""
    A = model.A
    ys = y if rd.offset is None else y - rd.offset
    ys = (ys - A.shift[-1]) / A.scale[-1]
    if rd.sqrtw is not None:
        ys = ys * rd.sqrtw
    g = np.append(rd.Xacc.T @ ys, ys @ ys)
    zx = []
    for Zk, ck, ZXy in zip(rd.Z, rd.codes, A.ZXy, strict=True):
        J = ZXy.shape[0]
        Zw = Zk if rd.sqrtw is None else Zk * rd.sqrtw[:, None]
        zx.append(
            np.stack(
                [np.bincount(ck, weights=Zw[:, a] * ys, minlength=J) for a in range(Zk.shape[1])],
                axis=1,
            )
        )
    return g, zx


def with_response(model, rd: RowDesign, y: np.ndarray):
    """A copy of ``model`` whose response is ``y`` (only the response's statistics change)."""
    A = model.A
    g, zx = response_crossproducts(model, rd, y)
    G = A.G.copy()
    G[:, -1] = g
    G[-1, :] = g
    ZXy = []
    for old, new in zip(A.ZXy, zx, strict=True):
        arr = old.copy()
        arr[:, :, -1] = new
        ZXy.append(arr)
    return model_copy(model, A=dataclasses.replace(A, G=G, ZXy=ZXy))


def simulate_rows(result, rd: RowDesign, rng, *, use_u: bool = False) -> np.ndarray:
    """One simulated response vector from the fitted model (offset included).

    ``y = X beta + sum_k rowsum(Z_k * b_k[codes_k]) + sigma * e / sqrt(w)`` with new random
    effects ``b_k ~ N(0, Sigma_k)`` per group, or the fitted conditional modes when
    ``use_u`` (lme4's ``use.u = TRUE``).
    """
    beta = result.fixef.to_numpy()
    mu = rd.X @ beta
    est = result._est
    for k, (Zk, ck) in enumerate(zip(rd.Z, rd.codes, strict=True)):
        if use_u:
            bk = est.b[k]
        else:
            Sig = est.Sigma[k]
            J, S = est.b[k].shape
            L = _psd_root(Sig)
            bk = rng.standard_normal((J, S)) @ L.T
        mu = mu + np.einsum("ij,ij->i", Zk, bk[ck])
    e = rng.standard_normal(rd.n) * result.sigma
    if rd.sqrtw is not None:
        e = e / rd.sqrtw
    if rd.offset is not None:
        mu = mu + rd.offset
    return mu + e


def _psd_root(S: np.ndarray) -> np.ndarray:
    """A matrix ``L`` with ``L L' = S`` for a positive semi-definite S (eigen root)."""
    vals, vecs = np.linalg.eigh(S)
    return vecs * np.sqrt(np.maximum(vals, 0.0))
