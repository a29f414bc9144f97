"""Predictions for new data, with prediction intervals; simulation of new responses.

``predict(newdata, random=True)`` is ``x' beta + z' b_g`` with the conditional modes of the
groups seen in fitting; a group not seen in fitting has no estimate and is predicted at the
population level (``b = 0``), or is an error with ``allow_new_levels=False``.
``random=False`` gives the population-level prediction ``x' beta`` for every row; a list of
grouping factors keeps only those terms.

Prediction intervals (``predict_interval``) are normal intervals whose variance adds, for a
new observation,

- the prediction error of ``x' beta_hat + z' b_hat``: ``sigma^2 [v' A^-1 v + r' (X'V^-1X /
  sigma^2)^-1 r]`` with ``v = Lambda' z`` the row's random-effect columns in the spherical
  scale, ``A = L_Z L_Z'`` and ``r = x - (Lambda'Z'X)' A^-1 v`` (Henderson's prediction error
  variance of the mixed-model equations; it accounts for the correlation of beta_hat and
  b_hat), computed from the blocked Cholesky factor with no pass over the fitted rows;
- for a group not seen in fitting (or a term left out), the full variance ``z' Sigma z`` of
  its random effect;
- the residual variance ``sigma^2`` (``interval="prediction"``; not for
  ``interval="confidence"``).

The variance parameters are treated as known (as in lme4's and most software's intervals),
so the intervals are somewhat too narrow with few groups.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.linalg as la
import scipy.sparse as sp
from scipy import stats

from hlm.errors import DataError, DataWarning, warn
from hlm.inference.newdata import build_fixed, fixed_columns, group_codes

#: rows per batch of the interval computation (bounds the dense q_rest x rows block)
_BATCH = 2_000


def _included(model, random) -> list[bool]:
    if random is True:
        return [True] * len(model.blocks)
    if random is False or random is None:
        return [False] * len(model.blocks)
    wanted = [random] if isinstance(random, str) else list(random)
    groups = {b.group for b in model.blocks}
    unknown = [g for g in wanted if g not in groups]
    if unknown:
        raise ValueError(f"unknown grouping factor(s) {unknown}; the model has {sorted(groups)}")
    return [b.group in wanted for b in model.blocks]


def _design(result, newdata, random, allow_new_levels, offset, cache, *, all_z=False):
    """Complete-row mask, X, Z, codes and offset of ``newdata``.

    Terms left out by ``random`` get codes -1 (and Z only when ``all_z``, for intervals
    that carry their variance).
    """
    from hlm.design.random import required_columns
    from hlm.frame import check_columns, to_pandas

    model = result.model
    incl = _included(model, random)
    needed = fixed_columns(model.spec.fixed)
    for b, use in zip(model.blocks, incl, strict=True):
        if use:
            needed += required_columns(b.term)
        elif all_z:
            needed += [c for c in required_columns(b.term) if c not in b.term.factors]
    needed = list(dict.fromkeys(needed))
    check_columns(needed, newdata, "the model")
    df = to_pandas(newdata, needed)
    n = len(df)
    ok = np.ones(n, dtype=bool)
    for c in needed:
        ok &= ~df[c].isna().to_numpy()
    rows = df.loc[ok] if not ok.all() else df
    X = build_fixed(model.design._rhs_spec, model.keep, rows)
    Z, codes = [], []
    for b, use in zip(model.blocks, incl, strict=True):
        Z.append(b.Z(rows) if (use or all_z) else None)
        if not use:
            codes.append(np.full(len(rows), -1, dtype=np.int64))
            continue
        c = group_codes(model, b, rows, cache)
        if (c < 0).any():
            _unseen(b, rows, c, allow_new_levels)
        codes.append(c)
    off = _offset(model, offset, df, ok)
    return ok, X, Z, codes, off, incl


def _unseen(b, rows, c, allow_new_levels) -> None:
    labels = rows[list(b.term.factors)].astype(str).agg(":".join, axis=1).to_numpy()
    unseen = pd.unique(labels[c < 0])
    if not allow_new_levels:
        shown = ", ".join(repr(u) for u in unseen[:10])
        raise DataError(
            f"{len(unseen)} group(s) of {b.group!r} were not seen in fitting ({shown}"
            f"{' ...' if len(unseen) > 10 else ''}); use allow_new_levels=True to "
            "predict them at the population level"
        )
    if (c < 0).all():
        warn(
            f"none of the new data's groups of {b.group!r} was seen in fitting: every "
            "prediction is at the population level for that term (check that the "
            "group labels match the fitted data's)",
            DataWarning,
        )


def _offset(model, offset, df, ok):
    if model.offset is None:
        if offset is not None:
            raise ValueError("the model was fitted without an offset; do not pass offset=")
        return None
    if offset is None:
        raise ValueError(
            "the model was fitted with an offset: pass offset= (a column name or an array "
            "with one value per row of the new data)"
        )
    if isinstance(offset, str):
        raise ValueError("pass the offset as an array (the column was selected out)")
    v = np.asarray(offset, dtype=float).reshape(-1)
    if len(v) != len(df):
        raise DataError(f"offset has {len(v)} values but the new data have {len(df)} rows")
    return v[ok]


def predict(result, newdata=None, *, random=True, allow_new_levels=True, offset=None):
    """Predicted values for ``newdata`` (default: the fitted rows); see the module docstring.

    Returns
    -------
    pandas.Series
        Indexed like ``newdata``; NaN for rows with a missing value in a used column.
    """
    if newdata is None:
        return _fitted(result, random)
    if isinstance(offset, str):
        offset = _column(newdata, offset)
    ok, X, Z, codes, off, _ = _design(result, newdata, random, allow_new_levels, offset, {})
    fit = X @ result.fixef.to_numpy()
    for Zk, ck, bk in zip(Z, codes, result._est.b, strict=True):
        if Zk is None:
            continue
        seen = ck >= 0
        fit[seen] += np.einsum("ij,ij->i", Zk[seen], bk[ck[seen]])
    if off is not None:
        fit = fit + off
    return pd.Series(_scatter(fit, ok), index=_index(newdata, ok), name="predicted")


def _column(newdata, name):
    from hlm.frame import to_pandas

    return to_pandas(newdata, [name])[name].to_numpy(dtype=float)


def _fitted(result, random):
    if random is True:
        return result.fitted().rename("predicted")
    model = result.model
    return predict(
        result,
        model.frame.data,
        random=random,
        offset=model.offset,
    )


def _scatter(values, ok) -> np.ndarray:
    out = np.full(len(ok), np.nan)
    out[ok] = values
    return out


def _index(newdata, ok):
    if isinstance(newdata, pd.DataFrame):
        return newdata.index
    return pd.RangeIndex(len(ok))


def predict_interval(
    result,
    newdata=None,
    level=0.95,
    *,
    random=True,
    allow_new_levels=True,
    offset=None,
    interval="prediction",
) -> pd.DataFrame:
    """Predictions with normal intervals; see the module docstring.

    Parameters
    ----------
    interval : {"prediction", "confidence"}
        A new observation (residual variance included) or its conditional mean.

    Returns
    -------
    pandas.DataFrame
        ``fit, se, lower, upper`` per row (``se`` is the SD of the prediction error).
    """
    from hlm.inference._problem import model_copy

    if interval not in ("prediction", "confidence"):
        raise ValueError(f"interval must be 'prediction' or 'confidence', got {interval!r}")
    if newdata is None:
        newdata = result.model.frame.data
        offset = result.model.offset
    elif isinstance(offset, str):
        offset = _column(newdata, offset)
    ok, X, Z, codes, off, incl = _design(
        result, newdata, random, allow_new_levels, offset, {}, all_z=True
    )
    fit = X @ result.fixef.to_numpy()
    for Zk, ck, bk in zip(Z, codes, result._est.b, strict=True):
        if Zk is not None:
            seen = ck >= 0
            fit[seen] += np.einsum("ij,ij->i", Zk[seen], bk[ck[seen]])
    if off is not None:
        fit = fit + off
    model = model_copy(result.model)
    model.objective(result.theta)
    sigma2 = result.sigma**2
    var = np.empty(len(fit))
    for s in range(0, len(fit), _BATCH):
        sl = slice(s, s + _BATCH)
        Zb = [None if z is None else z[sl] for z in Z]
        cb = [None if c is None else c[sl] for c in codes]
        var[sl] = sigma2 * _pev(model, X[sl], Zb, cb) + _new_group_var(result, Zb, cb, len(X[sl]))
    if interval == "prediction":
        var = var + sigma2
    se = np.sqrt(var)
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    out = pd.DataFrame(
        {
            "fit": _scatter(fit, ok),
            "se": _scatter(se, ok),
            "lower": _scatter(fit - z * se, ok),
            "upper": _scatter(fit + z * se, ok),
        },
        index=_index(newdata, ok),
    )
    out.attrs["level"] = level
    out.attrs["interval"] = interval
    return out


def _new_group_var(result, Z, codes, nrow: int) -> np.ndarray:
    """``z' Sigma_k z`` summed over the terms whose group is not predicted (code -1).

    A group not seen in fitting, or a term left out of the prediction (``random=False``),
    has an unknown random effect: its whole variance enters the interval.
    """
    total = np.zeros(nrow)
    for k, (Zk, ck) in enumerate(zip(Z, codes, strict=True)):
        Sig = result._est.Sigma[k]
        total += np.einsum("ij,jk,ik->i", Zk, Sig, Zk) * (ck < 0)
    return total


def _pev(model, X, Z, codes) -> np.ndarray:
    """Prediction error variance / sigma^2 of ``x' beta_hat + z' b_hat`` per row.

    Left-out terms and unseen groups contribute nothing here (their effect is not
    predicted; its variance is added by :func:`_new_group_var`).
    """
    c = model.chol
    A = model.A
    names = model.fixed_names
    icol = names.index("(Intercept)") if "(Intercept)" in names else None
    from hlm.results.estimates import transform_matrix

    T = transform_matrix(A.out_shift[:-1], A.out_scale[:-1], icol)
    p = model.p
    nrow = len(X)
    xs = X @ T  # rows of x' T: the scaled-basis covariates
    lams = c.lams
    W1 = c.W1_model()  # (J1, S1, p + 1)
    # term 0: block-diagonal factor
    w1 = np.zeros((nrow, c.S[0]))
    r = xs.copy()
    if Z[0] is not None:
        seen = codes[0] >= 0
        g = codes[0][seen]
        v1 = Z[0][seen] @ lams[0]  # rows of (lambda' z)'
        from hlm.linalg import batched

        w = batched.solve_lower(c.L1[g], v1[:, :, None])[:, :, 0]
        w1[seen] = w
        r[seen] -= np.einsum("is,isp->ip", w, W1[g][:, :, :p])
    pev = np.einsum("ij,ij->i", w1, w1)
    if c.K > 1:
        qr = c.qr
        V = np.zeros((qr, nrow))
        for i, k in enumerate(range(1, c.K)):
            if Z[k] is None:
                continue
            seen = codes[k] >= 0
            o = c.rest_offsets[i]
            S = c.S[k]
            vk = Z[k][seen] @ lams[k]
            rows_idx = np.flatnonzero(seen)
            for a in range(S):
                V[o + codes[k][seen] * S + a, rows_idx] += vk[:, a]
        # subtract Wr' w1 (Wr = L1^-1 Lambda1' A_1r Lambda_r, sparse q1 x qr)
        q1 = c.q[0]
        if Z[0] is not None:
            seen = np.flatnonzero(codes[0] >= 0)
            ri = (codes[0][seen][:, None] * c.S[0] + np.arange(c.S[0])).ravel()
            ci = np.repeat(seen, c.S[0])
            W1s = sp.csr_matrix((w1[seen].ravel(), (ri, ci)), shape=(q1, nrow))
            V -= np.asarray((c.Wr.T @ W1s).todense())
        wr = la.solve_triangular(c.Lrr, V, lower=True)
        Wrx = c.Wrx if c.basis is None else c.Wrx @ c.basis
        r -= (Wrx[:, :p].T @ wr).T
        pev += np.einsum("ij,ij->j", wr, wr)
    RXinv = c.RX_inv()
    u = r @ RXinv  # rows of (R_X^-T r)'
    return pev + np.einsum("ij,ij->i", u, u)
