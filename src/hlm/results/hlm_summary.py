"""Text summary in the layout of HLM 8: level equations, fixed effects with model-based and
robust standard errors, variance components with chi-square tests and reliabilities.

Formats only: every number comes from the result's methods.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats

from hlm.results.hlm_output import reliability as reliability_table


def _p(p: float) -> str:
    if not np.isfinite(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _model_lines(res) -> list[str]:
    source = res.model.source
    equations = getattr(source, "equations", None)
    if callable(equations):
        return [str(equations()).rstrip()]
    return [
        f"Mixed model: {res.formula}",
        "(fit an hlm.Levels specification to see the level equations)",
    ]


def _gamma_names(res) -> dict:
    """Fixed-effect name -> gamma name, when the model spec can say (``gamma_map()``)."""
    gamma_map = getattr(res.model.source, "gamma_map", None)
    if not callable(gamma_map):
        return {}
    return {fixed: gamma for gamma, fixed in dict(gamma_map()).items()}


def fixed_effect_df(res, H) -> pd.Series:
    """HLM's approximate degrees of freedom for each fixed effect.

    A fixed effect in the equation of a coefficient that varies randomly over the ``J``
    groups of a level gets ``J - (number of fixed effects in that equation)`` (the highest
    such level); one in no such equation gets ``n - p``.
    """
    found: dict[str, float] = {}
    for l in reversed(range(len(H.levels))):
        for cols in H.assignment(l):
            for c in cols:
                found.setdefault(H.fixed_names[c], float(H.levels[l].J - len(cols)))
    rest = float(res.nobs - len(res.fixef))
    return pd.Series([found.get(n, rest) for n in res.fixef.index], index=res.fixef.index)


def _robust(res) -> tuple[pd.Series, str]:
    try:
        return res.robust_se, "CR2"
    except NotImplementedError:
        vc = res.robust_vcov(kind="CR1")
        return pd.Series(np.sqrt(np.diag(vc)), index=vc.index), "CR1"


def _fixed_lines(res, H) -> list[str]:
    robust, kind = _robust(res)
    dfs = fixed_effect_df(res, H)
    gammas = _gamma_names(res)
    finest = H.levels[0]
    blocks, seen = [], set()
    for q, cols in enumerate(H.assignment(0)):
        col = finest.columns[q]
        title = col if col == "(Intercept)" else f"{col} slope"
        names = [H.fixed_names[c] for c in cols]
        over = ", ".join(lev.group for lev in H.levels if col in lev.columns)
        blocks.append((f"For {title}, random over {over}", names))
        seen.update(names)
    rest = [n for n in res.fixef.index if n not in seen]
    if rest:
        blocks.append(("Level-1 effects without a random part", rest))
    header = ["", "Coefficient", "Std. error", f"Robust SE ({kind})", "t-ratio", "Approx. d.f."]
    rows = []
    for title, names in blocks:
        rows.append([title, "", "", "", "", "", ""])
        for n in names:
            est, se = float(res.fixef[n]), float(res.fixef_se[n])
            t = est / se if se > 0 else np.nan
            p = 2.0 * scipy.stats.t.sf(abs(t), dfs[n]) if np.isfinite(t) else np.nan
            label = f"   {gammas[n]}  {n}" if n in gammas else f"   {n}"
            rows.append(
                [
                    label,
                    f"{est:.6f}",
                    f"{se:.6f}",
                    f"{float(robust[n]):.6f}",
                    f"{t:.3f}",
                    f"{int(dfs[n])}",
                    _p(p),
                ]
            )
    table = _table(header + ["p-value"], rows)
    note = "t-ratios and p-values use the model-based standard errors."
    return ["Final estimation of fixed effects", *table, note]


def _random_lines(res, H) -> list[str]:
    tests = res.variance_tests()
    header = ["Random effect", "Std. deviation", "Variance component", "d.f.", "Chi-square"]
    header += ["p-value", "Reliability"]
    rows, notes = [], []
    for lev in H.levels:
        rel = reliability_table(H, lev.group).mean()
        used = 0
        for q, col in enumerate(lev.columns):
            var = float(lev.T[q, q])
            test = tests.loc[(lev.group, col)]
            used = int(test["n_groups_used"])
            name = col if col == "(Intercept)" else f"{col} slope"
            rows.append(
                [
                    f"{lev.group}: {name}",
                    f"{np.sqrt(max(var, 0.0)):.5f}",
                    f"{var:.5f}",
                    f"{int(test['df'])}",
                    f"{test['chi2']:.5f}",
                    _p(float(test["p"])),
                    f"{rel[col]:.3f}",
                ]
            )
        if used < lev.J:
            notes.append(
                f"The chi-square statistics and reliabilities for {lev.group!r} use {used} of "
                f"{lev.J} groups; the others have too few rows (or a rank-deficient design) "
                "for their own OLS fit."
            )
    rows.append(["level-1, r", f"{res.sigma:.5f}", f"{res.sigma**2:.5f}", "", "", "", ""])
    return ["Final estimation of variance components", *_table(header, rows), *notes]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))

    def fmt(r):
        first = r[0].ljust(widths[0])
        rest = [r[i].rjust(widths[i]) for i in range(1, len(r))]
        return "  ".join([first] + rest).rstrip()

    return [rule, fmt(header), rule, *[fmt(r) for r in rows], rule]


def hlm_summary_text(res) -> str:
    """The HLM-layout summary of a :class:`MixedModelResult` as text."""
    H = res._hierarchy
    how = "restricted maximum likelihood" if res.method == "REML" else "full maximum likelihood"
    groups = ", ".join(f"{lev.group} {lev.J}" for lev in reversed(H.levels))
    crit = "REML criterion" if res.method == "REML" else "Deviance"
    lines = [
        f"Hierarchical linear model, method of estimation: {how}",
        f"The outcome variable is {res.model.spec.response}",
        f"Level-1 units: {res.nobs}; groups: {groups}",
    ]
    if res.n_dropped:
        lines.append(f"({res.n_dropped} rows with missing values were dropped)")
    lines += ["", *_model_lines(res), ""]
    lines += [
        f"{crit} = {res.criterion:.6f}; estimated parameters = {res.npar}",
        "",
        *_fixed_lines(res, H),
        "",
        *_random_lines(res, H),
    ]
    notes = list(res.fit_log.warnings)
    if notes:
        lines += ["", *[f"Note: {n}" for n in notes]]
    return "\n".join(lines)
