"""Plots: they draw what the result holds (sorted modes, intervals, profiles)."""

from __future__ import annotations

import numpy as np
import pytest

import hlm

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def sleep():
    return hlm.fit("Reaction ~ Days + (Days | Subject)", hlm.datasets.load("sleepstudy"))


@pytest.fixture(scope="module")
def crossed():
    return hlm.fit("diameter ~ 1 + (1 | plate) + (1 | sample)", hlm.datasets.load("penicillin"))


def test_caterpillar_is_sorted_with_condvar_intervals(sleep):
    fig = sleep.plot_caterpillar(level=0.95)
    ax = fig.axes[0]
    re, rv = sleep.ranef()["Subject"], sleep.ranef_var()["Subject"]
    order = np.argsort(re["(Intercept)"].to_numpy())
    x = ax.lines[0].get_xdata()
    assert np.allclose(x, re["(Intercept)"].to_numpy()[order])
    seg = ax.collections[0].get_segments()
    half = np.array([s[1, 0] - s[0, 0] for s in seg]) / 2
    assert np.allclose(half, 1.959964 * np.sqrt(rv["(Intercept)"].to_numpy()[order]), rtol=1e-5)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == list(re.index[order])
    assert len(fig.axes) == 2


def test_caterpillar_crossed_has_a_row_per_factor(crossed):
    fig = crossed.plot("caterpillar")
    assert [a.get_title() for a in fig.axes] == ["plate: (Intercept)", "sample: (Intercept)"]


def test_shrinkage_uses_ols_by_group(sleep):
    fig = sleep.plot_shrinkage()
    tab = sleep.ols_by_group()
    pts = fig.axes[0].collections[0].get_offsets()
    assert np.allclose(pts[:, 0], tab[("ols", "(Intercept)")].to_numpy())
    assert np.allclose(pts[:, 1], tab[("eb", "(Intercept)")].to_numpy())


def test_shrinkage_refuses_crossed(crossed):
    with pytest.raises(hlm.errors.NestingError):
        crossed.plot("shrinkage")


def test_residuals_panels(sleep):
    fig = sleep.plot_residuals()
    assert len(fig.axes) == 6  # level 1 + two random coefficients, two panels each
    y = fig.axes[0].lines[0].get_ydata()
    assert np.allclose(np.sort(y), np.sort(sleep.residuals().to_numpy()))


def test_profile_is_minimal_at_the_estimate(sleep):
    from hlm.plots import profile_theta

    prof = profile_theta(sleep, progress=False)
    assert list(prof) == sleep.model.theta_names
    for i, (grid, crit) in enumerate(prof.values()):
        assert np.all(crit >= sleep.criterion - 1e-6)
        assert grid.min() < sleep.theta[i] < grid.max()
        assert crit[0] - sleep.criterion > 3.84 and crit[-1] - sleep.criterion > 3.84
    # after profiling, the model still evaluates the estimate's criterion
    assert sleep.model.objective(sleep.theta) == pytest.approx(sleep.criterion, abs=1e-8)


def test_profile_one_theta_is_the_criterion_itself():
    from hlm.plots import profile_theta

    res = hlm.fit("Yield ~ 1 + (1 | Batch)", hlm.datasets.load("dyestuff"))
    grid, crit = profile_theta(res, progress=False)["Batch.(Intercept)"]
    direct = [res.model.objective([g]) for g in grid]
    assert np.allclose(crit, direct)
    fig = res.plot("profile", progress=False)
    assert len(fig.axes) == 1


def test_unknown_kind():
    res = hlm.fit("Yield ~ 1 + (1 | Batch)", hlm.datasets.load("dyestuff"))
    with pytest.raises(ValueError, match="unknown plot"):
        res.plot("pie")
