"""matplotlib, imported on first use with a message naming the extra."""

from __future__ import annotations


def new_figure(width: float, height: float):
    """A pyplot-free Figure with constrained layout."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("plots need matplotlib: pip install 'hlm[plots]'") from exc
    return Figure(figsize=(width, height), layout="constrained")


def normal_quantiles(n: int, max_points: int = 4000):
    """Plotting positions ``(i - 0.5) / n`` as normal quantiles, thinned to ``max_points``.

    Returns the probabilities and their quantiles; a QQ plot of a large sample then draws
    the sample's quantiles at these probabilities instead of every point.
    """
    import numpy as np
    import scipy.stats

    k = min(n, max_points)
    p = (np.arange(1, k + 1) - 0.5) / k
    return p, scipy.stats.norm.ppf(p)


def qq_panel(ax, values, title: str, ylabel: str) -> None:
    """A normal QQ plot of standardised ``values`` with the identity line."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    sd = v.std(ddof=1) if len(v) > 1 else 1.0
    z = (v - v.mean()) / (sd if sd > 0 else 1.0)
    p, q = normal_quantiles(len(z))
    sample = np.quantile(z, p) if len(z) > len(p) else np.sort(z)
    ax.plot(q, sample, "o", ms=2.5, alpha=0.7, color="C0", rasterized=len(q) > 2000)
    lim = [min(q.min(), sample.min()), max(q.max(), sample.max())]
    ax.plot(lim, lim, "--", color="0.4", lw=1)
    ax.set_xlabel("normal quantile")
    ax.set_ylabel(ylabel)
    ax.set_title(title)


def scatter_panel(ax, x, y, title: str, xlabel: str, ylabel: str, max_points: int = 20_000):
    """Residuals against fitted values (a random subset for large data), a zero line."""
    import numpy as np

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    note = ""
    if len(x) > max_points:
        idx = np.random.default_rng(0).choice(len(x), max_points, replace=False)
        x, y = x[idx], y[idx]
        note = f" ({max_points:,} random points)"
    ax.plot(x, y, "o", ms=2, alpha=0.35 if len(x) > 500 else 0.7, color="C0", rasterized=True)
    ax.axhline(0.0, ls="--", color="0.4", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title + note)
