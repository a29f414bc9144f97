"""Complete, no and partial pooling side by side: why hierarchical models at all.

* **Complete pooling** ignores the groups: ordinary least squares of y on X.  When rows of a
  group are correlated (intra-class correlation > 0), its standard errors are too small,
  most of all for predictors that vary between groups; the ratio of variances
  ``(se_partial / se_complete)^2`` is the design effect.
* **No pooling** gives every group its own coefficients for the random-effect columns of
  the grouping factor (group fixed effects; separate per-group regressions when every
  column is group-specific): least squares with those effects absorbed (within-group
  estimation).  Predictors constant within groups cannot be estimated, and nothing is
  said about the population of groups.
* **Partial pooling** is the hierarchical model: group effects drawn from a distribution
  whose variance is estimated, each group's estimate shrunk towards the overall line.

Complete pooling is computed from the model's cross-products; no pooling from per-group
cross-products of ``[Z X y]`` (one pass over the rows), with each group's own estimate
``alpha_g = (Z_g'Z_g)^{-1} Z_g'(y - X beta)`` for groups with full-rank ``Z_g``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: a column whose within-group sum of squares is below this share of its total is
#: constant within groups (or spanned by the group effects): not estimable without pooling
WITHIN_TOL = 1e-10


@dataclass(frozen=True)
class PoolingComparison:
    """The three fits side by side.

    Attributes
    ----------
    table : DataFrame
        One row per fixed effect; columns ``complete, complete_se, none, none_se, partial,
        partial_se, design_effect`` (``(partial_se / complete_se)^2``).  ``none`` is NaN
        for effects that no pooling cannot estimate (absorbed by the group effects).
    variances : DataFrame
        One row per approach: the residual variance it estimates, the between-group
        variance of the intercept it estimates (complete pooling: 0 by assumption; no
        pooling: the spread of the groups' own intercepts, sampling error included), and
        what it ignores.
    groups : DataFrame
        Per group of the grouping factor: its own (no pooling) estimate of each group
        coefficient, the partial-pooling (empirical Bayes) estimate, and the complete-
        pooling value.
    icc : float
        Intra-class correlation ``tau_00 / (tau_00 + sigma^2)`` of the partial-pooling fit
        (the intercept variance's share at x = 0).
    kish_design_effect : float
        ``1 + (m - 1) icc`` with m the average group size: how much complete pooling
        understates the variance of a mean.
    group : str
        The grouping factor used for no pooling.
    partial : MixedModelResult
        The hierarchical fit.
    notes : tuple of str
    """

    table: pd.DataFrame
    variances: pd.DataFrame
    groups: pd.DataFrame
    icc: float
    kish_design_effect: float
    group: str
    partial: object
    notes: tuple = ()

    def summary(self) -> str:
        """A printable comparison."""
        fmt = lambda v: "" if pd.isna(v) else f"{v:.4g}"  # noqa: E731
        lines = [
            f"Pooling comparison, grouping factor {self.group!r} "
            f"({self.partial.ngroups.get(self.group, '?')} groups, {self.partial.nobs} rows)",
            "",
            "Fixed effects (estimate and standard error under each approach):",
            self.table.to_string(float_format=fmt),
            "",
            f"Intra-class correlation {self.icc:.4f}; Kish design effect "
            f"1 + (m - 1) ICC = {self.kish_design_effect:.3f} (m = average group size).",
            "design_effect = (partial_se / complete_se)^2: above 1, complete pooling's "
            "standard error is too small.",
            "",
            "Variances each approach estimates:",
            self.variances.drop(columns="ignores").to_string(float_format=fmt),
            "",
            "What each approach ignores:",
        ]
        lines += [f"  {name}: {text}" for name, text in self.variances["ignores"].items()]
        lines += [
            "",
            "none for a group coefficient is the average of the groups' own estimates "
            "(comparable with partial when the coefficient has no level-2 predictors).",
        ]
        if self.notes:
            lines += [""] + [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def compare_pooling(model, data, *, method: str = "REML") -> PoolingComparison:
    """Fit complete pooling (OLS), no pooling (group fixed effects) and partial pooling (HLM).

    Parameters
    ----------
    model : str or hlm.Levels
        The hierarchical model, as for :func:`hlm.fit`; no pooling uses its first
        grouping factor (the one with most levels) and that factor's random-effect
        columns.
    data : DataFrame or table
    method : {"REML", "ML"}
        For the partial-pooling fit.

    Returns
    -------
    PoolingComparison
        ``.table`` (DataFrame), ``.variances``, ``.groups`` and ``.summary()``.
    """
    from hlm.api import fit

    res = fit(model, data, method=method)
    if not hasattr(res, "varcorr") or not hasattr(res, "ranef"):
        raise ValueError("compare_pooling needs a model with at least one random-effects term")
    m = res.model
    names = list(m.fixed_names)
    beta_c, se_c, s2_c = _complete_pooling(m)
    block = m.blocks[0]
    group = block.group
    zcols = list(dict.fromkeys(c for b in m.blocks if b.group == group for c in b.columns))
    none = _no_pooling(m, group, zcols)
    table = pd.DataFrame(
        {
            "complete": beta_c,
            "complete_se": se_c,
            "none": none["beta"],
            "none_se": none["se"],
            "partial": res.fixef.to_numpy(),
            "partial_se": res.fixef_se.to_numpy(),
        },
        index=pd.Index(names, name="effect"),
    )
    table["design_effect"] = (table["partial_se"] / table["complete_se"]) ** 2
    vc = res.varcorr(se=False)
    tau00 = _intercept_variance(vc, group)
    sigma2 = res.sigma**2
    icc = tau00 / (tau00 + sigma2) if np.isfinite(tau00) else np.nan
    m_bar = m.n / block.J
    kish = 1.0 + (m_bar - 1.0) * icc if np.isfinite(icc) else np.nan
    between_none = none["intercept_spread"]
    variances = pd.DataFrame(
        {
            "residual": [s2_c, none["sigma2"], sigma2],
            "between_intercept": [0.0, between_none, tau00],
            "ignores": [
                "the between-group variance: it is folded into the residual and rows of a "
                "group are treated as independent",
                "the population of groups: group effects are fixed (no shrinkage, no "
                "generalisation beyond these groups; predictors constant within groups "
                "are not estimable)",
                "nothing of the two above: both levels of variance are modelled",
            ],
        },
        index=pd.Index(["complete pooling", "no pooling", "partial pooling"], name="approach"),
    )
    groups = _group_table(res, block, zcols, none, beta_c, names)
    notes = list(none["notes"])
    return PoolingComparison(
        table, variances, groups, float(icc), float(kish), group, res, tuple(notes)
    )


def _transform(m):
    """T, s_y, shift_y, intercept index: the map from the cross-products' columns to X's."""
    from hlm.results.estimates import transform_matrix

    A = m.A
    names = m.fixed_names
    icol = names.index("(Intercept)") if "(Intercept)" in names else None
    shift, scale = A.out_shift, A.out_scale
    return transform_matrix(shift[:-1], scale[:-1], icol), float(scale[-1]), float(shift[-1]), icol


def _complete_pooling(m):
    """OLS of y on X from ``[X y]'[X y]``: beta, its standard errors, sigma^2 (user units)."""
    G = m.A.model_G()
    p = m.p
    XtX, Xty, yty = G[:p, :p], G[:p, p], G[p, p]
    beta_s = np.linalg.solve(XtX, Xty)
    rss = float(yty - beta_s @ Xty)
    T, sy, cy, icol = _transform(m)
    s2 = rss / (m.n - p) * sy * sy
    beta = sy * (T @ beta_s)
    if icol is not None:
        beta[icol] += cy
    vcov = s2 * (T @ np.linalg.inv(XtX) @ T.T)
    return beta, np.sqrt(np.diag(vcov)), s2


def _no_pooling(m, group, zcols):
    """Within-group least squares with the group's coefficients of ``zcols`` absorbed."""
    from hlm.design.kernels import group_sums

    df = m.frame.data
    blocks = [b for b in m.blocks if b.group == group]
    codes = blocks[0].codes
    J = blocks[0].J
    Z = np.column_stack([b.Z(df) for b in blocks])
    zsel = [i for i, c in enumerate(c for b in blocks for c in b.columns) if c in zcols]
    Z = Z[:, sorted(set(zsel))]
    Xy = m.design.Xy(df)
    Xy = np.column_stack([Xy[:, :-1][:, m.keep], Xy[:, -1]])
    if m.offset is not None:
        Xy[:, -1] -= m.offset
    s = Z.shape[1]
    W = np.column_stack([Z, Xy])
    WW, _ = group_sums(W, codes, J, W[:, :1])
    Szz, Szx, Sxx = WW[:, :s, :s], WW[:, :s, s:], WW[:, s:, s:]
    Zinv = np.linalg.pinv(Szz, hermitian=True)
    ranks = np.linalg.matrix_rank(Szz, hermitian=True)
    within = (Sxx - np.swapaxes(Szx, 1, 2) @ Zinv @ Szx).sum(axis=0)
    p = Xy.shape[1] - 1
    total = np.diag(Sxx.sum(axis=0))[:p]
    est = np.diag(within)[:p] > WITHIN_TOL * np.maximum(total, np.finfo(float).tiny)
    idx = np.flatnonzero(est)
    beta = np.full(p, np.nan)
    se = np.full(p, np.nan)
    Wxx = within[np.ix_(idx, idx)]
    b = np.linalg.solve(Wxx, within[idx, p])
    rss = float(within[p, p] - b @ within[idx, p])
    df_res = m.n - int(ranks.sum()) - idx.size
    sigma2 = rss / df_res
    beta[idx] = b
    se[idx] = np.sqrt(np.diag(sigma2 * np.linalg.inv(Wxx)))
    # each group's own coefficients: alpha_g = (Z_g'Z_g)^{-1} Z_g'(y - X beta)
    coef = np.zeros(p + 1)
    coef[idx] = -b
    coef[p] = 1.0
    alpha = np.einsum("gst,gt->gs", Zinv, Szx @ coef)
    full = ranks == s
    alpha[~full] = np.nan
    names = list(zcols)
    # a group coefficient: the average of the groups' own estimates, with its sampling
    # variance sum_g sigma^2 (Z_g'Z_g)^{-1} / J_used^2 (given beta)
    used = int(full.sum())
    for j, c in enumerate(names):
        if c in m.fixed_names and used > 0:
            i = m.fixed_names.index(c)
            beta[i] = float(np.nanmean(alpha[full, j]))
            se[i] = float(np.sqrt(sigma2 * Zinv[full, j, j].sum()) / used)
    spread = np.nan
    if "(Intercept)" in names:
        spread = float(np.nanvar(alpha[:, names.index("(Intercept)")], ddof=1))
    notes = []
    if np.isnan(beta).any():
        dropped = [m.fixed_names[i] for i in np.flatnonzero(np.isnan(beta))]
        notes.append(
            "no pooling cannot estimate " + ", ".join(dropped) + f" (constant within groups of "
            f"{group!r}, or absorbed by the group effects)"
        )
    if (~full).any():
        notes.append(
            f"{int((~full).sum())} groups are too small for their own estimate of "
            + ", ".join(names)
        )
    return {
        "beta": beta,
        "se": se,
        "sigma2": sigma2,
        "alpha": alpha,
        "columns": names,
        "intercept_spread": spread,
        "notes": notes,
    }


def _intercept_variance(vc: pd.DataFrame, group: str) -> float:
    rows = vc[(vc["grp"] == group) & (vc["var1"] == "(Intercept)") & vc["var2"].isna()]
    return float(rows["vcov"].iloc[0]) if len(rows) else np.nan


def _group_table(res, block, zcols, none, beta_c, names) -> pd.DataFrame:
    coef = res.coef()[block.group]
    index = pd.Index(block.levels.astype(str), name=block.group)
    cols = {}
    for j, c in enumerate(zcols):
        cols[(c, "none")] = none["alpha"][:, j]
        cols[(c, "partial")] = coef[c].to_numpy() if c in coef.columns else np.nan
        cols[(c, "complete")] = beta_c[names.index(c)] if c in names else 0.0
    out = pd.DataFrame(cols, index=index)
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["coefficient", "pooling"])
    return out
