"""The boundary-corrected likelihood-ratio test checked by simulation (slow).

Random intercept against none, data simulated under the null (no group effect): the
0.5 chi2(0) + 0.5 chi2(1) reference distribution should reject about 5% of the time at the
5% level.  The simulation refits on cross-products only (a null data set changes only the
response), in both cores.  Run with::

    PYTHONPATH=src python -m pytest -m slow tests/test_inference_simulation.py -s

The measured sizes are printed (and reported in docs/inference.md).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hlm
from hlm.inference.anova import anova
from hlm.inference.boundary import reference
from hlm.inference.lrt_simulation import lrt_bootstrap, simulate_lrt

NSIM = 4000


def _null_fits(groups: int, size: int, method: str, seed: int):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame(
        {"y": rng.standard_normal(groups * size), "g": np.repeat(np.arange(groups), size)}
    )
    null = hlm.ols("y ~ 1", d, method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the template fit may be singular
        alt = hlm.fit("y ~ 1 + (1 | g)", d, method=method)
    return null, alt


def _size(groups, size, method, seed):
    null, alt = _null_fits(groups, size, method, seed)
    stats, ok = simulate_lrt(null, alt, NSIM, seed=seed + 1, n_jobs=2, progress=False)
    assert ok.all()
    ref = reference(null, alt, 1, True)
    assert ref.name == "0.5 chi2(0) + 0.5 chi2(1)"
    p = np.array([ref.sf(s) for s in stats])
    naive = np.mean(stats > 3.841458820694124)  # the chi2(1) 5% point
    return float(np.mean(p < 0.05)), float(naive), float(np.mean(stats <= 1e-8))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_size_50_groups_of_10(method):
    size, naive, zero = _size(50, 10, method, seed=2024)
    mc_se = np.sqrt(0.05 * 0.95 / NSIM)
    print(
        f"\n50 groups of 10, {method}: size {size:.4f} (MC SE {mc_se:.4f}), naive chi2(1) "
        f"{naive:.4f}, P(T = 0) {zero:.3f}"
    )
    assert abs(size - 0.05) <= 0.015
    assert naive < size  # the naive chi2(1) test is conservative


@pytest.mark.slow
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_size_10_groups_of_10_reported(method):
    size, naive, zero = _size(10, 10, method, seed=77)
    print(
        f"\n10 groups of 10, {method}: size {size:.4f}, naive chi2(1) {naive:.4f}, "
        f"P(T = 0) {zero:.3f}"
    )
    assert size <= 0.05 + 0.015  # the mixture is known to be conservative with few groups


def test_lrt_bootstrap_small():
    null, alt = _null_fits(20, 5, "REML", seed=3)
    out = lrt_bootstrap(null, alt, 30, seed=4, n_jobs=1, progress=False)
    table = anova(null, alt)
    assert out["chisq"] == pytest.approx(table["chisq"].iloc[1])
    assert 0 < out["p_boot"] <= 1
    assert out["null"] == "0.5 chi2(0) + 0.5 chi2(1)"
