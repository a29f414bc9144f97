"""Plots of a fitted mixed model (matplotlib; ``pip install 'hlm[plots]'``).

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global
state, no window); save it with ``fig.savefig("file.png")`` or let a notebook show it.

- :func:`caterpillar`: empirical Bayes estimates with intervals, sorted;
- :func:`shrinkage`: each group's own OLS estimate against its EB estimate, by group size;
- :func:`residuals`: level-1 and level-2 residuals against fitted values, normal QQ plots;
- :func:`profile`: the profiled criterion against each theta.
"""

from __future__ import annotations

from hlm.plots.caterpillar import caterpillar
from hlm.plots.profile import profile, profile_theta
from hlm.plots.residuals import residuals
from hlm.plots.shrinkage import shrinkage

#: plot kinds accepted by ``result.plot(kind)`` and ``hlm fit --plot KIND=FILE``
KINDS = ("caterpillar", "shrinkage", "residuals", "profile")

__all__ = ["KINDS", "caterpillar", "plot", "profile", "profile_theta", "residuals", "shrinkage"]


def plot(result, kind: str, **options):
    """The plot ``kind`` (one of :data:`KINDS`) of ``result``."""
    funcs = {
        "caterpillar": caterpillar,
        "shrinkage": shrinkage,
        "residuals": residuals,
        "profile": profile,
    }
    if kind not in funcs:
        raise ValueError(f"unknown plot {kind!r}; choose from {', '.join(KINDS)}")
    if kind != "profile":
        options.pop("progress", None)  # only the profile is slow enough for a bar
    return funcs[kind](result, **options)
