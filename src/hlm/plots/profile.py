"""Profile likelihood of each theta: the criterion minimised over the other thetas.

For each element ``theta_i`` the profiled criterion (REML criterion or ML deviance, beta
and sigma already profiled out) is minimised over the other elements of theta at points
stepping out from the estimate, until it has risen by ``delta_max`` or the boundary
(``theta_i = 0`` for a diagonal element) is reached.  Self-contained: it uses only
``model.objective`` and BOBYQA.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

from hlm.plots._mpl import new_figure


def profile_theta(result, which=None, delta_max: float = 8.0, max_steps: int = 12, progress=None):
    """Profile the criterion along each theta.

    Parameters
    ----------
    result : MixedModelResult
    which : list of int, optional
        Indices of theta to profile (default all).
    delta_max : float
        Stop stepping once the criterion has risen this much above its minimum.
    max_steps : int
        Most points on each side of the estimate.
    progress : bool, optional
        Progress bar (default: when standard error is a terminal).

    Returns
    -------
    dict
        theta name -> ``(grid, criterion)`` arrays sorted by ``grid``.
    """
    from hlm.engines.profiled import minimize_bobyqa
    from hlm.progress import progress_bar

    model = result.model
    theta_hat = np.asarray(result.theta, dtype=float)
    crit_hat = float(result.criterion)
    lower = np.asarray(model.cov.lower_bounds(), dtype=float)
    names = model.theta_names
    idx = list(range(len(theta_hat))) if which is None else list(which)
    out = {}
    with progress_bar(total=len(idx), desc="profiling", unit="theta", enabled=progress) as bar:
        for i in idx:
            others = [k for k in range(len(theta_hat)) if k != i]

            def at(value, start, i=i, others=others):
                if not others:
                    t = theta_hat.copy()
                    t[i] = value
                    return model.objective(t), start
                def f(x):
                    t = np.empty_like(theta_hat)
                    t[i] = value
                    t[others] = x
                    return model.objective(t)
                opt = minimize_bobyqa(f, start, lower[others], ftol_abs=1e-6, xtol_abs=1e-6)
                return opt.criterion, opt.theta

            points = [(theta_hat[i], crit_hat)]
            for direction in (-1.0, 1.0):
                points += _walk(at, theta_hat, i, others, lower[i], crit_hat, direction,
                                delta_max, max_steps)
            pts = sorted(points)
            out[names[i]] = (np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
            bar.update(1)
    model.objective(theta_hat)  # leave the factor at the estimate
    return out


#: rises of the criterion that the points aim at, so they are spread evenly along the curve
_TARGETS = (0.25, 1.0, 2.0, 3.0, 4.5, 6.0, 8.0, 10.0, 13.0)


def _walk(at, theta_hat, i, others, low, crit_hat, direction, delta_max, max_steps):
    """Points on one side of the estimate, aiming at the rises in ``_TARGETS``.

    Near its minimum the criterion is about ``c * d**2`` in the distance ``d`` from the
    estimate; each new point re-estimates ``c`` from the last one and places the next where
    the rise should reach the next target.
    """
    start = theta_hat[others].copy() if others else None
    d = max(0.02 * abs(theta_hat[i]), 0.002)  # a short first step measures the curvature
    points = []
    last_d = 0.0
    targets = [t for t in _TARGETS if t < delta_max] + [delta_max]
    k = 0
    for _ in range(max_steps):
        value = theta_hat[i] + direction * d
        at_bound = direction < 0 and value <= low
        if at_bound:
            value, d = low, theta_hat[i] - low
        if d <= last_d:
            break
        crit, x = at(value, start)
        if not np.isfinite(crit):
            break
        rise = crit - crit_hat
        points.append((value, crit))
        last_d, start = d, x
        if at_bound or rise >= delta_max:
            break
        while k < len(targets) and rise >= 0.8 * targets[k]:
            k += 1
        if k == len(targets):
            break
        if rise <= 1e-8:
            d *= 4.0  # flat: look further out
            continue
        c = rise / d**2
        d = max(np.sqrt(targets[k] / c), 1.05 * d)
    return points


def profile(result, which=None, level: float = 0.95, progress=None, **options):
    """Plot the profiled criterion (rise above its minimum) against each theta.

    A dashed line marks the ``level`` chi-square(1) quantile: thetas whose rise stays below
    it form the profile-likelihood interval.  See :func:`profile_theta` for ``options``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.ticker import MaxNLocator

    prof = profile_theta(result, which=which, progress=progress, **options)
    cut = scipy.stats.chi2.ppf(level, 1)
    k = len(prof)
    ncol = min(k, 3)
    nrow = -(-k // ncol)
    fig = new_figure(3.3 * ncol + 0.4, 3.0 * nrow)
    crit_hat = float(result.criterion)
    what = "REML criterion" if result.method == "REML" else "deviance"
    theta_hat = dict(zip(result.model.theta_names, result.theta, strict=True))
    for n, (name, (grid, crit)) in enumerate(prof.items()):
        ax = fig.add_subplot(nrow, ncol, n + 1)
        rise = crit - crit_hat
        ax.plot(grid, rise, "-o", ms=3, color="C0")
        ax.axhline(cut, ls="--", color="C3", lw=1, label=f"{level:.0%} cut-off")
        ax.axvline(theta_hat[name], ls=":", color="0.4", lw=1)
        ax.set_ylim(-0.2, max(cut * 1.6, min(float(np.nanmax(rise)), 12.0)) + 0.2)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.set_xlabel(name, fontsize=9)
        ax.set_ylabel(f"rise in {what}")
        if n == 0:
            ax.legend(fontsize=8, frameon=False)
    fig.suptitle(f"Profiled {what} against each theta", fontsize=11)
    return fig
