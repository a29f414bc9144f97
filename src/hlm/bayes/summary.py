"""Text summary of a :class:`hlm.bayes.posterior.PosteriorResult`; formats only."""

from __future__ import annotations

import pandas as pd


def _num(v: float) -> str:
    return f"{v:.4f}"


def summary_text(res, level: float = 0.95) -> str:
    """Posterior summary laid out like the ML/REML summary, with ESS and R-hat."""
    diag = res.diagnostics()
    lo, hi = diag.columns[2], diag.columns[3]
    lines = [
        "Bayesian linear mixed model (Gibbs sampler on cross-products)",
        f"Formula: {res.formula}",
        f"Draws: {res.chains} chains x {res.n_draws} (after {res.warmup} warm-up), "
        f"engine {res.engine}, {res.seconds:.2f} s",
        "",
        "Random effects (posterior mean, SD and interval of each SD / correlation):",
    ]
    vc = res.varcorr(level)
    rows = []
    for _, r in vc.iterrows():
        name = r["var1"] if isinstance(r["var1"], str) else ""
        if isinstance(r["var2"], str):
            name = f"corr({r['var1']}, {r['var2']})"
        rows.append(
            (
                r["grp"],
                name,
                _num(r["vcov"]),
                _num(r["sdcor"]),
                _num(r["sdcor_sd"]),
                _num(r["sdcor_lower"]),
                _num(r["sdcor_upper"]),
            )
        )
    table = pd.DataFrame(rows, columns=["Groups", "Name", "Variance", "SD/Corr", "post.SD", lo, hi])
    lines.append(table.to_string(index=False))
    groups = ", ".join(f"{g}, {k}" for g, k in res.ngroups.items())
    lines.append(f"Number of obs: {res.nobs}, groups:  {groups}")
    lines.append("")
    lines.append("Fixed effects:")
    fx = diag.loc[res.fixed_names]
    lines.append(fx.to_string(float_format=lambda v: f"{v:.4f}"))
    if res.hier_names:
        lines.append("")
        lines.append("Hierarchical priors on fixed effects (mean, SD):")
        names = [f"mu({n})" for n in res.hier_names] + [f"tau({n})" for n in res.hier_names]
        lines.append(diag.loc[names].to_string(float_format=lambda v: f"{v:.4f}"))
    lines.append("")
    lines.append("Convergence (split R-hat, bulk and tail ESS; ArviZ):")
    other = diag.drop(index=res.fixed_names)
    lines.append(
        other[["ess_bulk", "ess_tail", "r_hat"]].to_string(float_format=lambda v: f"{v:.3f}")
    )
    notes = res.convergence_notes
    if notes:
        lines.append("")
        lines.extend(f"Warning: {n}; run longer chains (draws=...)" for n in notes)
    return "\n".join(lines)
