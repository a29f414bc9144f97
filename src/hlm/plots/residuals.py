"""Residual diagnostics at level 1 (rows) and level 2 (groups' random effects)."""

from __future__ import annotations

import numpy as np

from hlm.plots._mpl import new_figure, qq_panel, scatter_panel


def marginal_fitted(result) -> np.ndarray:
    """``X beta`` for the rows used in the fit (the fixed part of the fitted values)."""
    from hlm.model import CHUNK_ROWS

    model = result.model
    df = model.frame.data
    beta = result.fixef.to_numpy()
    out = np.empty(len(df))
    for start in range(0, len(df), CHUNK_ROWS):
        Xy = model.design.Xy(df.iloc[start : start + CHUNK_ROWS])
        out[start : start + len(Xy)] = Xy[:, model.keep] @ beta
    if getattr(model, "offset", None) is not None:
        out += model.offset
    return out


def residuals(result, max_level2: int = 4):
    """Level-1 residuals against fitted values and their normal QQ plot; then, for each
    random effect (up to ``max_level2``), the conditional modes against the group's mean
    fixed-part prediction and their normal QQ plot.

    Level-1 residuals are ``y - X beta - Z b`` (``result.residuals()``), against
    ``result.fitted()``.  Level-2 residuals are the conditional modes ``b_j``, against the
    mean of ``X beta`` over the group's rows (for a group-mean-centred level-1 model, the
    level-2 prediction ``gamma' w_j``).  QQ plots are of standardised values; large samples
    are drawn as 4,000 quantiles and scatter plots as 20,000 random rows.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fitted = result.fitted().to_numpy()
    resid = result.residuals().to_numpy()
    level2 = []
    ranef = result.ranef()
    xb = marginal_fitted(result)
    for blk in result.model.blocks:
        if blk.group in [g for g, _, _ in level2]:
            continue
        counts = np.bincount(blk.codes, minlength=blk.J)
        mean_xb = np.bincount(blk.codes, weights=xb, minlength=blk.J) / np.maximum(counts, 1)
        for col in ranef[blk.group].columns:
            level2.append((blk.group, col, (mean_xb, ranef[blk.group][col].to_numpy())))
    shown = level2[:max_level2]
    fig = new_figure(9.0, 3.3 * (1 + len(shown)))
    grid = fig.add_gridspec(1 + len(shown), 2)
    scatter_panel(
        fig.add_subplot(grid[0, 0]), fitted, resid, "Level 1: residuals against fitted",
        "fitted value (X beta + Z b)", "residual",
    )
    qq_panel(fig.add_subplot(grid[0, 1]), resid, "Level 1: normal QQ", "standardised residual")
    for r, (g, col, (x, b)) in enumerate(shown, start=1):
        scatter_panel(
            fig.add_subplot(grid[r, 0]), x, b, f"Level 2 ({g}): {col}",
            f"mean of X beta in {g}", "conditional mode",
        )
        qq_panel(fig.add_subplot(grid[r, 1]), b, f"Level 2 ({g}): {col}, normal QQ",
                 "standardised mode")
    more = len(level2) - len(shown)
    title = "Residual diagnostics" + (f" ({more} more random effects not shown)" if more else "")
    fig.suptitle(title, fontsize=11)
    return fig
