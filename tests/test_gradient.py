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
