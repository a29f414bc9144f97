"""The tables of one fitted model as header + rows of strings (shared by the Markdown,
HTML and text outputs): fit statistics, fixed effects, variance components."""

from __future__ import annotations

import math

from hlm.report.tabular import fmt


def fit_statistics(res) -> tuple[list[str], list[list[str]]]:
    """Method, criterion, log-likelihood, AIC, BIC, observations, groups."""
    crit = "REML criterion" if res.method == "REML" else "Deviance (-2 log L)"
    rows = [
        ["Method", res.method],
        [crit, fmt(res.criterion)],
        ["Log-likelihood", fmt(res.loglik)],
        ["AIC", fmt(res.aic)],
        ["BIC", fmt(res.bic)],
        ["Observations", fmt(int(res.nobs))],
    ]
    for g, k in getattr(res, "ngroups", {}).items():
        rows.append([f"Groups: {g}", fmt(int(k))])
    if getattr(res, "n_dropped", 0):
        rows.append(["Rows dropped (missing values)", fmt(int(res.n_dropped))])
    return ["Statistic", "Value"], rows


def fixed_effects(res) -> tuple[list[str], list[list[str]]]:
    """Estimate, standard error and t value of each fixed effect."""
    rows = []
    for name in res.fixef.index:
        est, se = float(res.fixef[name]), float(res.fixef_se[name])
        t = est / se if se > 0 else math.nan
        rows.append([str(name), fmt(est), fmt(se), fmt(t, 3)])
    return ["Term", "Estimate", "Std. error", "t value"], rows


def variance_components(res) -> tuple[list[str], list[list[str]]]:
    """Variances and standard deviations per group and column; correlations; residual."""
    rows = []
    if not hasattr(res, "varcorr"):
        return ["Group", "Name", "Variance", "Std. dev."], [
            ["Residual", "", fmt(res.sigma**2), fmt(res.sigma)]
        ]
    vc = res.varcorr()
    for r in vc.itertuples(index=False):
        two = isinstance(r.var2, str)
        if two:
            rows.append([str(r.grp), f"corr({r.var1}, {r.var2})", "", fmt(r.sdcor, 3)])
        else:
            name = r.var1 if isinstance(r.var1, str) else ""
            rows.append([str(r.grp), name, fmt(r.vcov), fmt(r.sdcor)])
    return ["Group", "Name", "Variance", "Std. dev. / corr."], rows


def notes(res) -> list[str]:
    """Warnings about the fit (convergence, singularity, dropped columns)."""
    log = getattr(res, "fit_log", None)
    out = list(log.warnings) if log is not None else []
    if getattr(res, "singular", False) and not any("singular" in n for n in out):
        out.append("boundary (singular) fit")
    return out
