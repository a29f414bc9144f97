"""Shrinkage plot: each group's own OLS estimate against its empirical Bayes estimate."""

from __future__ import annotations

import numpy as np

from hlm.plots._mpl import new_figure


def shrinkage(result, group: str | None = None):
    """Per-group OLS estimates against the empirical Bayes (shrunken) ones, by group size.

    For each random coefficient two panels: the EB estimate against the OLS estimate (the
    identity line marks no shrinkage; points coloured by group size), and both estimates'
    deviations from the group's level-2 prediction ``gamma' w_j`` against group size,
    joined by a segment per group: the EB deviation is the OLS deviation pulled toward 0,
    the more so the smaller the group.  From ``result.ols_by_group(group)``; nested designs
    only; groups too small for their own fit are left out and counted in the title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import LogNorm, Normalize

    tab = result.ols_by_group(group)
    name = tab.index.name or "group"
    n = tab[("n", "")].to_numpy()
    usable = tab[("usable", "")].to_numpy().astype(bool)
    coefs = [c for kind, c in tab.columns if kind == "ols"]
    ranef = result.ranef()[name].reindex(tab.index.astype(str))
    wide = n.max() / max(n.min(), 1) > 20
    lo_n, hi_n = max(n.min(), 1), max(n.max(), n.min() + 1)
    norm = LogNorm(vmin=lo_n, vmax=hi_n) if wide else Normalize(vmin=lo_n, vmax=hi_n)
    fig = new_figure(9.5, 3.6 * len(coefs))
    grid = fig.add_gridspec(len(coefs), 2)
    for r, c in enumerate(coefs):
        ols = tab[("ols", c)].to_numpy()[usable]
        eb = tab[("eb", c)].to_numpy()[usable]
        pred = eb - ranef[c].to_numpy()[usable]
        nu = n[usable]
        ax = fig.add_subplot(grid[r, 0])
        pts = ax.scatter(ols, eb, c=nu, s=14, cmap="viridis", norm=norm, alpha=0.85)
        lo, hi = min(ols.min(), eb.min()), max(ols.max(), eb.max())
        ax.plot([lo, hi], [lo, hi], "--", color="0.4", lw=1, label="no shrinkage")
        ax.set_xlabel(f"OLS estimate within {name}")
        ax.set_ylabel("empirical Bayes estimate")
        ax.set_title(f"{c}: EB against OLS")
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        fig.colorbar(pts, ax=ax, label="rows in group")
        ax2 = fig.add_subplot(grid[r, 1])
        d_ols, d_eb = ols - pred, eb - pred
        ax2.vlines(nu, np.minimum(d_ols, d_eb), np.maximum(d_ols, d_eb), color="0.75", lw=0.8)
        ax2.plot(nu, d_ols, "o", ms=3.5, mfc="none", color="C1", label="OLS")
        ax2.plot(nu, d_eb, "o", ms=3, color="C0", label="empirical Bayes")
        ax2.axhline(0.0, ls="--", color="0.4", lw=1)
        if wide:
            ax2.set_xscale("log")
        ax2.set_xlabel("rows in group")
        ax2.set_ylabel("estimate minus level-2 prediction")
        ax2.set_title(f"{c}: shrinkage by group size")
        ax2.legend(fontsize=8, frameon=False)
    left = int((~usable).sum())
    note = f" ({left} groups too small for their own fit left out)" if left else ""
    fig.suptitle(f"Shrinkage of {name} estimates{note}", fontsize=11)
    return fig
