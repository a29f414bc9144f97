"""Text summary of a fitted model, laid out like lme4's ``summary()``; formats only."""

from __future__ import annotations

import pandas as pd


def _fmt(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}f}"


def summary_text(res) -> str:
    """The summary of a :class:`MixedModelResult` as text."""
    lines = []
    title = "REML criterion" if res.method == "REML" else "ML (deviance)"
    how = "REML" if res.method == "REML" else "maximum likelihood"
    lines.append(f"Linear mixed model fit by {how}")
    lines.append(f"Formula: {res.formula}")
    lines.append("")
    stats = pd.DataFrame(
        {"AIC": [res.aic], "BIC": [res.bic], "logLik": [res.loglik], title: [res.criterion]}
    )
    lines.append(stats.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    lines.append("")
    lines.append("Random effects:")
    vc = res.varcorr()
    rows = []
    for _, r in vc.iterrows():
        if r["var2"] is None or (isinstance(r["var2"], float) and pd.isna(r["var2"])):
            name = r["var1"] if isinstance(r["var1"], str) else ""
            rows.append((r["grp"], name, _fmt(r["vcov"]), _fmt(r["sdcor"])))
    corr = vc[vc["var2"].notna()]
    table = pd.DataFrame(rows, columns=["Groups", "Name", "Variance", "Std.Dev."])
    lines.append(table.to_string(index=False))
    for _, r in corr.iterrows():
        lines.append(f"  Corr({r['grp']}: {r['var1']}, {r['var2']}) = {r['sdcor']:.3f}")
    groups = ", ".join(f"{g}, {k}" for g, k in res.ngroups.items())
    lines.append(f"Number of obs: {res.nobs}, groups:  {groups}")
    if res.n_dropped:
        lines.append(f"({res.n_dropped} rows with missing values were dropped)")
    lines.append("")
    lines.append("Fixed effects:")
    ft = res.fixef_table().rename(
        columns={"estimate": "Estimate", "se": "Std. Error", "t": "t value"}
    )
    lines.append(ft.to_string(float_format=lambda v: f"{v:.4f}"))
    notes = list(res.fit_log.warnings)
    if res.singular and not any("singular" in n for n in notes):
        notes.append("boundary (singular) fit")
    if notes:
        lines.append("")
        lines.extend(f"Note: {n}" for n in notes)
    log = res.fit_log
    lines.append("")
    lines.append(
        f"Optimizer: {log.optimizer}, {log.evaluations} evaluations, "
        f"{'converged' if log.converged else 'NOT converged'}"
    )
    return "\n".join(lines)
