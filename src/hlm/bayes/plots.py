"""Trace and density plots through ArviZ and matplotlib."""

from __future__ import annotations


def _default_vars(res) -> list:
    names = ["beta", "sigma"]
    idata_vars = []
    for grp, cols in zip(res.groups, res.columns, strict=True):
        idata_vars.append(f"sd__{grp}")
        if len(cols) > 1:
            idata_vars.append(f"corr__{grp}")
    return names + idata_vars


def _matplotlib():
    try:
        import matplotlib

        if matplotlib.get_backend().lower() not in ("agg",) and not _interactive():
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plots need matplotlib: pip install 'hlm[bayes]'") from e
    return plt


def _interactive() -> bool:
    import sys

    return hasattr(sys, "ps1") or "ipykernel" in sys.modules


def _figure(axes, path):
    import numpy as np

    fig = np.asarray(axes).ravel()[0].figure
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_trace(res, var_names=None, path=None):
    """ArviZ ``plot_trace``: one row per parameter, density left and trace right."""
    from hlm.bayes.diagnostics import _arviz

    _matplotlib()
    az = _arviz()
    axes = az.plot_trace(
        res.to_arviz(),
        var_names=var_names or _default_vars(res),
        compact=False,
        combined=False,
    )
    return _figure(axes, path)


def plot_density(res, var_names=None, path=None):
    """ArviZ ``plot_posterior``: posterior densities with the mean and the 95% HDI."""
    from hlm.bayes.diagnostics import _arviz

    _matplotlib()
    az = _arviz()
    axes = az.plot_posterior(
        res.to_arviz(), var_names=var_names or _default_vars(res), hdi_prob=0.95
    )
    return _figure(axes, path)
