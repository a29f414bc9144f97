"""The compiled per-group loops of one-term models give the NumPy paths' numbers."""

import numpy as np
import pytest

import hlm
import hlm.linalg.blocked as blocked

pytest.importorskip("numba")

CASES = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("hsb", "MathAch ~ MEANSES * cses + Sector * cses + (cses | School)"),
    ("dyestuff", "Yield ~ 1 + (1 | Batch)"),
    ("sleepstudy", "Reaction ~ 0 + Days + (Days | Subject)"),
    ("hsb", "MathAch ~ SES + (1 + SES + cses | School)"),
]


def _with_kernels(enabled: bool, fn):
    saved = list(blocked._GROUP_KERNELS)
    blocked._GROUP_KERNELS[:] = [] if enabled else [None]
    try:
        if enabled:
            assert blocked.group_kernels() is not None
        return fn()
    finally:
        blocked._GROUP_KERNELS[:] = saved


@pytest.mark.parametrize("method", ["ML", "REML"])
@pytest.mark.parametrize(("name", "formula"), CASES)
def test_compiled_and_numpy_paths_agree(name, formula, method):
    m = hlm.LinearMixedModel.from_formula(formula, hlm.datasets.load(name), method=method)
    rng = np.random.default_rng(3)
    for _ in range(3):
        theta = np.where(
            m.cov.diagonal_mask(),
            rng.uniform(0.05, 1.5, m.cov.ntheta),
            rng.uniform(-0.5, 0.5, m.cov.ntheta),
        )
        f1, g1 = _with_kernels(True, lambda t=theta: m.objective_and_gradient(t))
        f0, g0 = _with_kernels(False, lambda t=theta: m.objective_and_gradient(t))
        assert f1 == pytest.approx(f0, rel=1e-12)
        np.testing.assert_allclose(g1, g0, rtol=1e-8, atol=1e-9 * np.abs(g0).max())
