"""Assembling a fit's result: the shortcuts give exactly what the general code gives.

``MixedModelResult`` builds its pandas views of the fixed effects (``fixef``, ``fixef_se``,
``vcov``) on first access; results pickle and copy with or without them built.  The
estimates reuse the factor when it still holds the optimum, and the convergence checks call
LAPACK directly and read the diagonal of theta from the term structure.  Each shortcut is
compared with the plain computation it replaces, bit for bit.
"""

from __future__ import annotations

import copy
import pickle
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as la

import hlm
from hlm.design.covariance import CovarianceStructure
from hlm.engines.checks import (
    DELTA,
    SCALE_RATIO,
    _diagonal,
    _from_gradient,
    _scaled_gradient,
    scale_note,
)
from hlm.inference._problem import model_copy
from hlm.results.estimates import estimates_at

MODELS = {
    "sleepstudy": ("Reaction ~ Days + (Days|Subject)", "sleepstudy"),
    "hsb": ("MathAch ~ MEANSES*cses + Sector*cses + (cses|School)", "hsb"),
    "crossed": ("diameter ~ 1 + (1|plate) + (1|sample)", "penicillin"),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def res(request):
    formula, data = MODELS[request.param]
    return hlm.fit(formula, hlm.datasets.load(data))


def eager_views(res):
    """The views as the result built them before they were made lazy."""
    names = res.model.fixed_names
    est = res._est
    return (
        pd.Series(est.beta, index=names, name="estimate"),
        pd.Series(np.sqrt(np.diag(est.vcov)), index=names, name="se"),
        pd.DataFrame(est.vcov, index=names, columns=names),
    )


def assert_same_views(a, b):
    pd.testing.assert_series_equal(a.fixef, b.fixef, check_exact=True)
    pd.testing.assert_series_equal(a.fixef_se, b.fixef_se, check_exact=True)
    pd.testing.assert_frame_equal(a.vcov, b.vcov, check_exact=True)


def test_fixed_effect_views_equal_the_eager_ones(res):
    fixef, se, vcov = eager_views(res)
    pd.testing.assert_series_equal(res.fixef, fixef, check_exact=True)
    pd.testing.assert_series_equal(res.fixef_se, se, check_exact=True)
    pd.testing.assert_frame_equal(res.vcov, vcov, check_exact=True)
    assert type(res.fixef) is pd.Series and type(res.vcov) is pd.DataFrame
    assert res.fixef.name == "estimate" and res.fixef_se.name == "se"
    assert list(res.vcov.columns) == list(res.fixef.index) == res.model.fixed_names
    assert res.fixef.index.dtype == fixef.index.dtype


def test_views_are_built_once_on_first_access():
    res = hlm.fit(*[MODELS["sleepstudy"][0], hlm.datasets.load("sleepstudy")])
    assert not {"fixef", "fixef_se", "vcov"} & set(vars(res))
    first = res.fixef
    assert res.fixef is first and "fixef" in vars(res)
    res.fixef = first.rename("changed")  # still assignable, as a plain attribute was
    assert res.fixef.name == "changed"


@pytest.mark.parametrize("built", [False, True], ids=["views-not-built", "views-built"])
def test_a_result_pickles_and_copies(res, built):
    fresh = copy.copy(res)
    for name in ("fixef", "fixef_se", "vcov"):
        fresh.__dict__.pop(name, None)
    if built:
        fresh.fixef, fresh.fixef_se, fresh.vcov = eager_views(res)
    for other in (pickle.loads(pickle.dumps(fresh)), copy.copy(fresh), copy.deepcopy(fresh)):
        assert_same_views(other, res)
        assert other.criterion == res.criterion
        np.testing.assert_array_equal(other.theta, res.theta)
        for key, table in res.ranef().items():
            pd.testing.assert_frame_equal(other.ranef()[key], table, check_exact=True)
        # the conditional variances are computed on first use, in the copy as well
        for a, b in zip(other.ranef_cov(), res.ranef_cov(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_estimates_reuse_a_factor_that_holds_theta(res):
    model, theta = res.model, np.array(res.theta)
    model.objective(theta * 1.01)  # move the factor away: the general path
    general = estimates_at(model, theta)
    crit = model.objective(theta)
    before = model.evaluations
    reused = estimates_at(model, theta, crit)
    assert model.evaluations == before  # no new evaluation
    assert reused.criterion == general.criterion == crit
    for name in ("beta", "vcov", "sigma"):
        np.testing.assert_array_equal(getattr(reused, name), getattr(general, name))
    for a, b in zip(reused.b + reused.Sigma, general.b + general.Sigma, strict=True):
        np.testing.assert_array_equal(a, b)


def test_estimates_evaluate_when_the_factor_moved(res):
    model, theta = res.model, np.array(res.theta)
    crit = model.objective(theta)
    model.objective(theta * 1.01)
    before = model.evaluations
    est = estimates_at(model, theta, crit)
    assert model.evaluations == before + 1
    assert est.criterion == crit


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_the_scaled_gradient_is_scipy_s_triangular_solve(k):
    rng = np.random.default_rng(k)
    M = rng.normal(size=(k, k))
    H = M @ M.T + k * np.eye(k)
    g = rng.normal(size=k) * 1e-3
    expected = la.solve_triangular(np.linalg.cholesky(H).T, g, lower=False)
    np.testing.assert_array_equal(_scaled_gradient(g, H, True), expected)
    # not positive definite: no scaled gradient
    assert np.isnan(_scaled_gradient(g, -H, True)).all()


@pytest.mark.parametrize("sizes", [[], [1], [2], [3, 1], [1, 2, 1], [4, 4]], ids=str)
def test_the_diagonal_of_theta_is_the_bounds_mask(sizes):
    cov = CovarianceStructure(sizes)
    mask = _diagonal(cov)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, cov.diagonal_mask())


def test_the_hessian_from_gradients_is_the_column_by_column_one():
    model = hlm.LinearMixedModel.from_formula(
        MODELS["sleepstudy"][0], hlm.datasets.load("sleepstudy")
    )
    theta = np.array([0.9, 0.05, 0.2])
    for free in (np.arange(3), np.array([0, 2])):  # all free; one held at its bound
        g0 = np.asarray(model.objective_and_gradient(theta)[1], dtype=float)[free]
        H = np.zeros((free.size, free.size))
        for j in range(free.size):
            x = theta.copy()
            x[free[j]] += DELTA
            gj = np.asarray(model.objective_and_gradient(x)[1], dtype=float)[free]
            H[:, j] = (gj - g0) / DELTA
        count = [0]
        g, Hs = _from_gradient(model, theta, free, count)
        np.testing.assert_array_equal(g, g0)
        np.testing.assert_array_equal(Hs, (H + H.T) / 2.0)
        assert count[0] == free.size + 1


def _model_with_scales(names, scales):
    A = SimpleNamespace(out_scale=np.append(np.asarray(scales, dtype=float), 1.0))
    return SimpleNamespace(A=A, fixed_names=list(names))


@pytest.mark.parametrize(
    "names, scales, noted",
    [
        (["(Intercept)", "x", "z"], [1.0, 2.0, 30.0], False),
        (["(Intercept)", "x", "z"], [1.0, 2.0, 3000.0], True),  # ratio and size
        (["x", "(Intercept)", "z"], [0.5, 1.0, 0.4 / SCALE_RATIO], True),  # ratio and size
        (["(Intercept)", "x"], [1.0, 1.5 * SCALE_RATIO], True),  # one column, too large
        (["(Intercept)", "x"], [1.0, 0.5 / SCALE_RATIO], True),  # one column, too small
        (["x", "z"], [1e-2, 9.0], False),  # ratio 900: inside lme4's range
        (["x", "z"], [1e-2, 11.0], True),  # ratio 1100
        (["(Intercept)"], [1.0], False),  # nothing to compare
    ],
)
def test_the_scale_note_follows_lme4_s_rule(names, scales, noted):
    note = scale_note(_model_with_scales(names, scales))
    assert (note is not None) is noted
    if noted:
        sds = [s for n, s in zip(names, scales, strict=True) if n != "(Intercept)"]
        worst = names[scales.index(max(sds))]
        assert repr(worst) in note and "hlm centres and scales" in note


def test_a_model_copy_does_not_share_the_state_of_its_factor(res):
    """A copy with other cross-products (a new response) must not answer from the
    original's remembered gradients, nor claim its fresh factor holds the original's theta."""
    model, theta = res.model, np.array(res.theta)
    model.objective_and_gradient(theta)  # remembered by the original
    A = copy.copy(model.A)
    A.G = model.A.G.copy()
    A.G[-1, -1] *= 1.5  # another response: y'y changes
    other = model_copy(model, A=A)
    assert "_chol_theta" not in vars(other)
    f, _ = other.objective_and_gradient(theta)
    assert f == other.objective(theta) != model.objective(theta)
