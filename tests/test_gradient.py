"""The analytic gradient of the profiled criterion against central finite differences."""

import numpy as np
import pytest

import hlm
from hlm.linalg.gradient import profiled_gradient

CASES = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("hsb", "MathAch ~ MEANSES * cses + Sector * cses + (cses | School)"),
    ("dyestuff", "Yield ~ 1 + (1 | Batch)"),
]


@pytest.mark.parametrize("method", ["ML", "REML"])
@pytest.mark.parametrize(("name", "formula"), CASES)
def test_gradient_matches_finite_differences(name, formula, method):
    m = hlm.LinearMixedModel.from_formula(formula, hlm.datasets.load(name), method=method)
    rng = np.random.default_rng(0)
    for _ in range(3):
        theta = m.cov.start() * rng.uniform(0.2, 1.5) + rng.uniform(-0.1, 0.1, m.cov.ntheta)
        theta = np.where(m.cov.diagonal_mask(), np.abs(theta), theta)
        m.objective(theta)
        g = profiled_gradient(m.chol, m.reml, m.n)
        h = 1e-6
        fd = np.array(
            [
                (m.objective(theta + h * e) - m.objective(theta - h * e)) / (2 * h)
                for e in np.eye(theta.size)
            ]
        )
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-5 * np.abs(fd).max())


SCALAR_CASES = [
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    ("pastes", "strength ~ 1 + (1 | batch / cask)"),
    ("pastes", "strength ~ 0 + (1 | batch) + (1 | batch:cask)"),
    ("sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"),
    ("sleepstudy", "Reaction ~ 0 + Days + (1 | Subject) + (0 + Days | Subject)"),
]


@pytest.mark.parametrize("method", ["ML", "REML"])
@pytest.mark.parametrize(("name", "formula"), SCALAR_CASES)
def test_scalar_terms_gradient_matches_finite_differences(name, formula, method):
    """Crossed and nested scalar terms (the dense-block path), with and without intercept."""
    m = hlm.LinearMixedModel.from_formula(formula, hlm.datasets.load(name), method=method)
    assert m.has_gradient
    rng = np.random.default_rng(1)
    for _ in range(3):
        theta = rng.uniform(0.05, 1.5, m.cov.ntheta)
        _, g = m.objective_and_gradient(theta)
        h = 1e-6
        fd = np.array(
            [
                (m.objective(theta + h * e) - m.objective(theta - h * e)) / (2 * h)
                for e in np.eye(theta.size)
            ]
        )
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())


def test_gradient_is_zero_where_a_scalar_variance_is_zero():
    m = hlm.LinearMixedModel.from_formula(
        SCALAR_CASES[0][1], hlm.datasets.load("penicillin"), method="REML"
    )
    _, g = m.objective_and_gradient(np.array([0.0, 1.0]))
    assert g[0] == 0.0 and g[1] != 0.0


@pytest.mark.filterwarnings("ignore::hlm.DataWarning")
def test_no_gradient_for_vector_terms_with_others():
    m = hlm.LinearMixedModel.from_formula(
        "Reaction ~ Days + (Days | Subject) + (1 | Days)", hlm.datasets.load("sleepstudy")
    )
    assert not m.has_gradient
    with pytest.raises(ValueError, match="optimizer='bobyqa'"):
        m.fit(optimizer="lbfgsb")
