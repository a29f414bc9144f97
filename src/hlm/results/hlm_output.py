"""HLM-style outputs: reliabilities, intra-class correlations, homogeneity chi-squares,
per-group OLS estimates beside the empirical Bayes ones, proportion of variance explained.

Notation of Raudenbush & Bryk (2002): a group ``j`` of a level has its own estimate
``beta_hat_j`` of that level's random coefficients (OLS of its rows at the finest grouping
level), with error covariance ``V_j`` (``sigma^2 (Z_j'Z_j)^{-1}``); ``T`` (tau) is the
covariance of the coefficients' random effects.  The computations live in
:mod:`hlm.results.hierarchy`; this module turns them into tables.

Groups whose own fit is impossible (fewer rows than coefficients, or a rank-deficient
``Z_j``, e.g. a slope variable constant within the group) are left out of the reliabilities
and chi-squares and counted (``usable`` in :func:`ols_by_group`, ``n_groups_used`` in
:func:`variance_tests`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats

from hlm.errors import HLMError
from hlm.results.hierarchy import Hierarchy


def level_index(H: Hierarchy, group: str | None) -> int:
    """The level of grouping factor ``group`` (None: the finest, HLM's level 2)."""
    if group is None:
        return 0
    names = [lev.group for lev in H.levels]
    if group not in names:
        raise HLMError(
            f"{group!r} is not a grouping factor of this model; its grouping factors are "
            + ", ".join(repr(n) for n in names)
        )
    return names.index(group)


def reliability(H: Hierarchy, group: str | None = None) -> pd.DataFrame:
    """Reliability of each group's own estimate of each random coefficient.

    ``lambda_qj = tau_qq / (tau_qq + V_j,qq)`` (Raudenbush & Bryk 2002, eq. 3.42, applied
    to each coefficient ``q`` of a vector-valued term with its own variance and the
    diagonal element of ``V_j``): the share of the variance of the group's OLS estimate
    that is true between-group variance.  This per-coefficient form was chosen over the
    matrix analogue ``diag(T (T + V_j)^{-1})``, which also credits a coefficient with
    information borrowed through the covariances; the two agree when ``T`` and ``V_j`` are
    diagonal (e.g. a group-mean-centred slope with uncorrelated effects) and differ little
    otherwise (HSB random-coefficient model: 0.9076 and 0.2637 against 0.9076 and 0.2636).

    Parameters
    ----------
    H : Hierarchy
    group : str, optional
        Grouping factor; default the finest (the groups of the level-1 units).  A higher
        level's reliabilities use its groups' GLS estimates (see ``Hierarchy.own_fit``).

    Returns
    -------
    pandas.DataFrame
        One row per group, one column per random coefficient; NaN for groups whose own fit
        is impossible, so ``.mean()`` is the average reliability over usable groups, the
        number HLM prints.
    """
    l = level_index(H, group)
    lev = H.levels[l]
    own = H.own_fit(l)
    tau = np.diag(lev.T)
    v = np.diagonal(own.V, axis1=1, axis2=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = tau / (tau + v)
    return pd.DataFrame(rel, index=_index(lev), columns=list(lev.columns))


def icc(H: Hierarchy) -> pd.Series:
    """Share of the variance at each grouping level, at ``x = 0``.

    For a random-intercept model this is the intra-class correlation
    ``tau_00 / (tau_00 + sigma^2)``.  With random slopes the variance of ``y`` depends on
    the slope variables; at ``x = 0`` only the intercept variances remain, so each level's
    share is ``tau_00(level) / (sum of tau_00 over levels + sigma^2)`` (a level without a
    random intercept has share 0).  With three levels the shares of the two grouping levels
    are returned; the correlation of two rows in the same lowest-level group is the sum of
    the shares of that level and the levels above it.

    Returns
    -------
    pandas.Series
        Indexed by grouping factor, finest first.
    """
    tau00 = []
    for lev in H.levels:
        q = lev.columns.index("(Intercept)") if "(Intercept)" in lev.columns else None
        tau00.append(0.0 if q is None else float(lev.T[q, q]))
    total = sum(tau00) + H.sigma2
    return pd.Series([t / total for t in tau00], index=[lev.group for lev in H.levels], name="icc")


def variance_tests(H: Hierarchy) -> pd.DataFrame:
    """Raudenbush & Bryk's chi-square test of each variance component (2002, eq. 3.103).

    ``chi2_q = sum_j (beta_hat_qj - gamma_q' w_j)^2 / V_j,qq`` over the groups with a usable
    own fit, where ``gamma_q' w_j`` is the coefficient's level-2 prediction from the fitted
    fixed effects (the fixed-effect columns of its equation, see
    ``Hierarchy.assignment``).  Under ``tau_qq = 0`` it is approximately chi-square with
    ``J_used - (number of fixed effects in the equation)`` degrees of freedom
    (``J_used - S_q - 1`` for an equation with an intercept and ``S_q`` predictors).

    For the lower levels of a model with three or more levels, ``beta_hat_qj`` is computed
    after removing the conditional modes of the random effects of the levels above, so that
    each test is about its own level's variance.

    Returns
    -------
    pandas.DataFrame
        Indexed by (group, coefficient); columns ``chi2, df, p, n_groups_used``.
    """
    rows, index = [], []
    for l, lev in enumerate(H.levels):
        own = H.own_fit(l)
        used = own.usable
        v = np.diagonal(own.V, axis1=1, axis2=2)[used]
        dev = own.d[used]
        n_used = int(used.sum())
        for q, (col, cols) in enumerate(zip(lev.columns, H.assignment(l), strict=True)):
            chi2 = float(np.sum(dev[:, q] ** 2 / v[:, q]))
            df = n_used - len(cols)
            p = float(scipy.stats.chi2.sf(chi2, df)) if df > 0 else float("nan")
            rows.append((chi2, df, p, n_used))
            index.append((lev.group, col))
    return pd.DataFrame(
        rows,
        index=pd.MultiIndex.from_tuples(index, names=["group", "coefficient"]),
        columns=["chi2", "df", "p", "n_groups_used"],
    )


def ols_by_group(H: Hierarchy, group: str | None = None) -> pd.DataFrame:
    """Each group's own OLS estimates beside the empirical Bayes ones.

    ``ols`` is the group's own estimate of its random coefficients (OLS of its rows on
    the term's columns; level-1 effects that have no random part at this level are held at
    their fitted values, and with three levels the random effects of the levels above at
    their conditional modes).  ``eb`` is the empirical Bayes estimate of the same
    coefficient: its level-2 prediction ``gamma_q' w_j`` plus the group's conditional
    mode (for a model without level-2 predictors this is ``coef()``).  ``shrinkage`` is
    ``eb - ols``.

    Returns
    -------
    pandas.DataFrame
        One row per group; columns ``("n", "")``, ``("usable", "")``, then ``("ols", c)``,
        ``("eb", c)``, ``("shrinkage", c)`` for each coefficient ``c``.  ``ols`` and
        ``shrinkage`` are NaN where the group's own fit is impossible.
    """
    l = level_index(H, group)
    lev = H.levels[l]
    own = H.own_fit(l)
    ols = own.d + own.pred
    eb = own.pred + lev.b
    cols = list(lev.columns)
    parts = {("n", ""): lev.n_rows, ("usable", ""): own.usable}
    for name, arr in (("ols", ols), ("eb", eb), ("shrinkage", eb - ols)):
        for q, c in enumerate(cols):
            parts[(name, c)] = arr[:, q]
    out = pd.DataFrame(parts, index=_index(lev))
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    return out


def variance_explained(base, fuller) -> pd.DataFrame:
    """Proportion reduction in each variance component from ``base`` to ``fuller``.

    ``(var_base - var_fuller) / var_base`` for each random coefficient's variance and for
    the residual variance, matched by grouping factor and column name (Raudenbush & Bryk
    2002, ch. 4: the share of the base model's variance that the added predictors
    account for).  Components of ``base`` that ``fuller`` lacks get NaN.

    Parameters
    ----------
    base, fuller : MixedModelResult
        Two fits to the same rows, ``fuller`` with more fixed effects.

    Returns
    -------
    pandas.DataFrame
        Indexed by (group, coefficient); columns ``base, fuller, proportion``.
    """
    if base.nobs != fuller.nobs or base.model.spec.response != fuller.model.spec.response:
        raise HLMError(
            "variance_explained compares two fits of the same response to the same rows; "
            f"got {base.model.spec.response!r} on {base.nobs} rows and "
            f"{fuller.model.spec.response!r} on {fuller.nobs} rows"
        )
    vb, vf = _components(base), _components(fuller)
    rows = []
    for key, v0 in vb.items():
        v1 = vf.get(key, np.nan)
        prop = (v0 - v1) / v0 if v0 > 0 else np.nan
        rows.append((key[0], key[1], v0, v1, prop))
    out = pd.DataFrame(rows, columns=["group", "coefficient", "base", "fuller", "proportion"])
    return out.set_index(["group", "coefficient"])


def _components(res) -> dict:
    out: dict = {}
    for blk, Sig in zip(res.model.blocks, res._est.Sigma, strict=True):
        for i, col in enumerate(blk.columns):
            out.setdefault((blk.group, col), float(Sig[i, i]))
    out[("Residual", "")] = res.sigma**2
    return out


def _index(lev) -> pd.Index:
    return pd.Index(lev.labels, name=lev.group)
