"""Caterpillar plot: each group's empirical Bayes estimate with an interval, sorted."""

from __future__ import annotations

import numpy as np
import scipy.stats

from hlm.plots._mpl import new_figure


def caterpillar(result, group: str | None = None, level: float = 0.95, max_labels: int = 40):
    """Conditional modes of the random effects with ``level`` intervals, sorted.

    One row of panels per grouping factor, one panel per random-effect column; within a
    factor the groups are sorted by the first column (as lme4's ``dotplot(ranef(fit))``).
    The interval is ``b_j +- z * sqrt(condVar_j)`` (``result.ranef_var()``): the conditional
    distribution of the random effect given the data at the estimated parameters.

    Parameters
    ----------
    result : MixedModelResult
    group : str, optional
        Only this grouping factor.
    level : float
        Coverage of the intervals.
    max_labels : int
        Groups are labelled on the axis when a factor has at most this many.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ranef, rvar = result.ranef(), result.ranef_var()
    groups = [group] if group is not None else list(ranef)
    for g in groups:
        if g not in ranef:
            raise ValueError(f"{g!r} is not a grouping factor; choose from {', '.join(ranef)}")
    z = scipy.stats.norm.ppf(0.5 + level / 2)
    ncol = max(ranef[g].shape[1] for g in groups)
    heights = [max(2.6, 0.17 * len(ranef[g]) + 0.9) if len(ranef[g]) <= max_labels else 4.0
               for g in groups]
    fig = new_figure(3.4 * ncol + 0.8, sum(heights))
    grid = fig.add_gridspec(len(groups), ncol, height_ratios=heights)
    for r, g in enumerate(groups):
        est, var = ranef[g], rvar[g]
        order = np.argsort(est.iloc[:, 0].to_numpy(), kind="stable")
        J = len(est)
        ypos = np.arange(J)
        for c, col in enumerate(est.columns):
            ax = fig.add_subplot(grid[r, c])
            b = est[col].to_numpy()[order]
            half = z * np.sqrt(np.maximum(var[col].to_numpy()[order], 0.0))
            ax.hlines(ypos, b - half, b + half, color="C0", lw=0.8 if J > 100 else 1.2)
            ax.plot(b, ypos, "o", ms=2.5 if J > 100 else 4, color="C3")
            ax.axvline(0.0, ls="--", color="0.4", lw=1)
            ax.set_ylim(-1, J)
            ax.set_title(f"{g}: {col}", fontsize=10)
            ax.set_xlabel("conditional mode")
            if J <= max_labels and c == 0:
                ax.set_yticks(ypos, labels=est.index.to_numpy()[order], fontsize=7)
            elif c == 0:
                ax.set_yticks([])
                ax.set_ylabel(f"{J} levels of {g}, sorted")
            else:
                ax.set_yticks([])
    fig.suptitle(f"Random effects with {level:.0%} intervals", fontsize=11)
    return fig
