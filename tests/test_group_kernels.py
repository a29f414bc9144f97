"""The compiled per-group loops of one-term models give the NumPy paths' numbers."""

import numpy as np
import pytest

import hlm
import hlm.compiled as compiled

pytest.importorskip("numba")

CASES = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("hsb", "MathAch ~ MEANSES * cses + Sector * cses + (cses | School)"),
    ("dyestuff", "Yield ~ 1 + (1 | Batch)"),
    ("sleepstudy", "Reaction ~ 0 + Days + (Days | Subject)"),
    ("hsb", "MathAch ~ SES + (1 + SES + cses | School)"),
]


def _with_kernels(enabled: bool, fn):
    saved = list(compiled._GROUP_KERNELS)
    compiled._GROUP_KERNELS[:] = [] if enabled else [None]
    try:
        if enabled:
            assert compiled.group_kernels() is not None
        return fn()
    finally:
        compiled._GROUP_KERNELS[:] = saved


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


def test_kernels_off_means_no_fused_update():
    m = hlm.LinearMixedModel.from_formula(CASES[0][1], hlm.datasets.load("sleepstudy"))
    assert _with_kernels(True, lambda: m.chol.fused)
    assert not _with_kernels(False, lambda: m.chol.fused)


@pytest.mark.parametrize(("name", "formula"), CASES)
def test_fused_update_holds_the_lapack_factors(name, formula):
    """The one-call update leaves the same factors as the NumPy/LAPACK path, in its layout."""
    m = hlm.LinearMixedModel.from_formula(formula, hlm.datasets.load(name))
    theta = np.where(m.cov.diagonal_mask(), 0.7, 0.1)

    def state():
        m.objective(theta)
        c = m.chol
        return c.fused, c.L1.copy(), c.W1.copy(), c.S_acc.copy(), c.Lxx, c.logdet_Z, c.logdet_X()

    f1, L1, W1, S1, Lxx1, ldz1, ldx1 = _with_kernels(True, state)
    f0, L0, W0, S0, Lxx0, ldz0, ldx0 = _with_kernels(False, state)
    assert f0 is False
    assert f1 is (m.A.basis is None)  # no intercept: the model's columns are a basis
    np.testing.assert_allclose(L1, L0, rtol=1e-12)
    np.testing.assert_allclose(W1, W0, rtol=1e-10, atol=1e-12 * np.abs(W0).max())
    np.testing.assert_allclose(S1, S0, rtol=1e-10, atol=1e-12 * np.abs(S0).max())
    np.testing.assert_allclose(np.tril(Lxx1), np.tril(Lxx0), rtol=1e-9, atol=1e-12)
    assert np.triu(Lxx1, 1).max(initial=0.0) == 0.0 == np.abs(np.triu(Lxx1, 1)).max(initial=0.0)
    assert Lxx1.flags.f_contiguous  # LAPACK's layout, which later solves expect
    assert ldz1 == pytest.approx(ldz0, rel=1e-12)
    assert ldx1 == pytest.approx(ldx0, rel=1e-12)


def test_fused_path_with_weights_and_ml():
    df = hlm.datasets.load("sleepstudy")
    w = 1.0 + (np.arange(len(df)) % 3)
    m = hlm.LinearMixedModel.from_formula(
        "Reaction ~ Days + (Days | Subject)", df, method="ML", weights=w
    )
    theta = np.array([0.8, 0.05, 0.3])
    f1, g1 = _with_kernels(True, lambda: m.objective_and_gradient(theta))
    f0, g0 = _with_kernels(False, lambda: m.objective_and_gradient(theta))
    assert f1 == pytest.approx(f0, rel=1e-12)
    np.testing.assert_allclose(g1, g0, rtol=1e-8)


@pytest.mark.parametrize("method", ["ML", "REML"])
@pytest.mark.parametrize(("name", "formula"), CASES)
def test_compiled_optimizer_and_scipy_lbfgsb_agree(name, formula, method):
    """The compiled BFGS (one call) and scipy's L-BFGS-B on the NumPy path: same optimum."""
    df = hlm.datasets.load(name)

    def fit():
        return hlm.fit(formula, df, method=method, optimizer="lbfgsb")

    r1 = _with_kernels(True, fit)
    r0 = _with_kernels(False, fit)
    if r1.model.chol.fused:
        assert "compiled" in r1.fit_log.optimizer
    assert "compiled" not in r0.fit_log.optimizer
    assert r1.criterion == pytest.approx(r0.criterion, abs=1e-6)
    np.testing.assert_allclose(r1.theta, r0.theta, atol=2e-4)
    assert r1.fit_log.converged and r0.fit_log.converged
