"""GLS at known variance components and fits with some components fixed (variance=)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hlm
from hlm import datasets
from hlm.engines.known import VarianceSpecError

SLEEP = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep():
    return datasets.load("sleepstudy")


def dense_gls(data, Sigma, sigma2):
    """beta, its covariance and the BLUPs of sleepstudy's (Days | Subject) at given variances,
    from the textbook formulas with explicit n x n matrices."""
    y = data["Reaction"].to_numpy(float)
    days = data["Days"].to_numpy(float)
    X = np.column_stack([np.ones_like(days), days])
    subj = pd.factorize(data["Subject"], sort=True)[0]
    J = subj.max() + 1
    Z = np.zeros((len(y), 2 * J))
    Z[np.arange(len(y)), 2 * subj] = 1.0
    Z[np.arange(len(y)), 2 * subj + 1] = days
    G = np.kron(np.eye(J), Sigma)
    V = Z @ G @ Z.T + sigma2 * np.eye(len(y))
    Vi = np.linalg.inv(V)
    vcov = np.linalg.inv(X.T @ Vi @ X)
    beta = vcov @ X.T @ Vi @ y
    b = (G @ Z.T @ Vi @ (y - X @ beta)).reshape(J, 2)
    cond = G - G @ Z.T @ Vi @ Z @ G  # Var(b | y) given beta
    cond = np.array([cond[2 * j : 2 * j + 2, 2 * j : 2 * j + 2] for j in range(J)])
    return beta, vcov, b, cond


def test_gls_at_given_variances_matches_textbook_formulas(sleep):
    Sigma = np.array([[500.0, 20.0], [20.0, 40.0]])
    known = {
        ("Subject", "(Intercept)"): 500.0,
        ("Subject", "Days"): 40.0,
        ("Subject", "(Intercept)", "Days"): 20.0,
        "Residual": 700.0,
    }
    res = hlm.fit(SLEEP, sleep, variance=known)
    beta, vcov, b, cond = dense_gls(sleep, Sigma, 700.0)
    assert res.fit_log.engine == "gls"
    assert np.allclose(res.fixef, beta, rtol=1e-10)
    assert np.allclose(res.vcov.to_numpy(), vcov, rtol=1e-9)
    assert np.allclose(res.ranef()["Subject"].to_numpy(), b, atol=1e-8)
    hlm.fit(SLEEP, sleep)  # another fit must not disturb this result's lazy pieces
    assert np.allclose(res.ranef_cov()[0], cond, rtol=1e-8)
    assert res.sigma == pytest.approx(np.sqrt(700.0))
    vc = res.varcorr()
    assert np.allclose(vc["vcov"], [500.0, 40.0, 20.0, 700.0])
    assert vc["se"].isna().all()  # nothing was estimated
    # the criterion is the (restricted) likelihood at those values: below the optimum's
    fitted = hlm.fit(SLEEP, sleep)
    assert res.criterion > fitted.criterion


def test_gls_at_the_estimates_reproduces_the_fit(sleep):
    fitted = hlm.fit(SLEEP, sleep)
    for known in (fitted.varcorr(), {"theta": fitted.theta, "sigma": fitted.sigma}):
        res = hlm.fit(SLEEP, sleep, variance=known)
        assert res.criterion == pytest.approx(fitted.criterion, abs=1e-8)
        assert np.allclose(res.fixef_se, fitted.fixef_se, rtol=1e-10)
        assert np.allclose(res.ranef()["Subject"], fitted.ranef()["Subject"], atol=1e-8)


def test_theta_alone_profiles_sigma(sleep):
    fitted = hlm.fit(SLEEP, sleep)
    res = hlm.fit(SLEEP, sleep, variance={"theta": fitted.theta})
    assert res.sigma == pytest.approx(fitted.sigma, rel=1e-10)
    assert ("Residual", None, None) not in res.fit_log.fixed


@pytest.mark.parametrize("engine", [None, "profiled", "em", "fisher", "em+fisher"])
def test_variance_fixed_at_zero_removes_the_effect(sleep, engine):
    """(Days | Subject) with the Days variance fixed at 0 is (1 | Subject)."""
    reduced = hlm.fit("Reaction ~ Days + (1 | Subject)", sleep)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a variance the user fixed at 0 is not a warning
        res = hlm.fit(SLEEP, sleep, variance={("Subject", "Days"): 0.0}, engine=engine)
    assert res.criterion == pytest.approx(reduced.criterion, abs=1e-6)
    assert np.allclose(res.fixef, reduced.fixef, rtol=1e-5)
    assert np.allclose(res.fixef_se, reduced.fixef_se, rtol=1e-4)
    assert (res.ranef()["Subject"]["Days"] == 0).all()
    vc = res.varcorr()
    assert vc["vcov"].iloc[1] == 0 and vc["vcov"].iloc[2] == 0
    assert vc["se"].iloc[1:3].isna().all()
    se_reduced = reduced.varcorr()["se"].to_numpy()
    assert vc["se"].iloc[[0, 3]].to_numpy() == pytest.approx(se_reduced, rel=1e-3)
    assert set(res.fit_log.fixed) == {("Subject", "Days", None), ("Subject", "(Intercept)", "Days")}


@pytest.mark.parametrize("engine", ["fisher", "em", "em+fisher"])
def test_fixed_residual_variance_is_a_constrained_optimum(sleep, engine):
    res = hlm.fit(SLEEP, sleep, variance={"Residual": 700.0}, engine=engine)
    ref = hlm.fit(SLEEP, sleep, variance={"Residual": 700.0}, engine="fisher")
    assert res.sigma**2 == pytest.approx(700.0)
    assert res.criterion == pytest.approx(ref.criterion, abs=1e-6)
    # stationary in the free components: the score there is zero
    from hlm.engines.information import score_and_information
    from hlm.engines.varcomp import scale_y

    m = res.model
    si = score_and_information(m, np.array(res.theta), 700.0 / scale_y(m) ** 2)
    scale = np.sqrt(np.diag(si.info))
    assert np.all(np.abs(si.score[:-1] / scale[:-1]) < 1e-4)
    # and better than the unconstrained fit at any other residual variance
    assert res.criterion >= hlm.fit(SLEEP, sleep).criterion


def test_default_engine_for_nonzero_values_is_fisher(sleep):
    res = hlm.fit(SLEEP, sleep, variance={("Subject", "Days"): 30.0})
    assert res.fit_log.engine == "fisher"
    assert res.varcorr()["vcov"].iloc[1] == pytest.approx(30.0)
    with pytest.raises(VarianceSpecError, match="engine='fisher'"):
        hlm.fit(SLEEP, sleep, variance={("Subject", "Days"): 30.0}, engine="profiled")
    with pytest.raises(VarianceSpecError, match="engine='fisher'"):
        hlm.fit(SLEEP, sleep, variance={("Subject", "Days"): 30.0}, engine="em")


def test_levels_spec_with_partial_variance():
    """Issue 4: fixing a variance at 0 in a level-equation spec."""
    data = datasets.load("hsb")
    both = hlm.Levels("MathAch ~ cses", group="School", random=["(Intercept)", "cses"])
    one = hlm.Levels("MathAch ~ cses", group="School", random=["(Intercept)"])
    res = hlm.fit(both, data, variance={("School", "cses"): 0})
    ref = hlm.fit(one, data)
    assert res.criterion == pytest.approx(ref.criterion, abs=1e-6)
    assert np.allclose(res.fixef, ref.fixef, rtol=1e-5)
    # a non-zero value: the cses slope variance held at 0.5
    res = hlm.fit(both, data, variance={("School", "cses"): 0.5})
    assert res.varcorr()["vcov"].iloc[1] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("known", "match"),
    [
        ({("Subject", "Age"): 1.0}, "not in this model"),
        ({("Subject", "Days"): -1.0}, "must be >= 0"),
        ({"Residual": 0.0}, "residual variance must be positive"),
        ({("Subject", "Days"): 0.0, ("Subject", "(Intercept)", "Days"): 3.0}, "must be 0"),
        (
            {
                ("Subject", "(Intercept)"): 1.0,
                ("Subject", "Days"): 1.0,
                ("Subject", "(Intercept)", "Days"): 2.0,
            },
            "not positive semidefinite",
        ),
        ({("Subject", "Days"): "big"}, "not a number"),
        ({"theta": [1.0, 0.0]}, "theta has 2 elements"),
        (pd.DataFrame({"grp": ["Subject"], "var1": ["Days"]}), "needs the columns"),
        ([1, 2], "variance= takes"),
        ({}, "names no variance"),
    ],
)
def test_bad_specifications_are_refused(sleep, known, match):
    with pytest.raises(VarianceSpecError, match=match):
        hlm.fit(SLEEP, sleep, variance=known)


def test_ambiguous_group_name():
    data = datasets.load("sleepstudy")
    f = "Reaction ~ Days + (1 | Subject) + (1 | Subject)"
    with pytest.raises(VarianceSpecError, match="several terms"):
        hlm.fit(f, data, variance={("Subject", "(Intercept)"): 1.0})
    res = hlm.fit(f, data, variance={("Subject.1", "(Intercept)"): 0.0})
    assert res.varcorr()["vcov"].iloc[1] == 0.0


def test_saved_and_loaded_fit_keeps_fixed_components(sleep, tmp_path):
    res = hlm.fit(SLEEP, sleep, variance={("Subject", "Days"): 30.0})
    path = tmp_path / "fit.hlm"
    res.save(path)
    back = hlm.load(path)
    assert back.criterion == pytest.approx(res.criterion, abs=1e-9)
    vc, vc_back = res.varcorr(), back.varcorr()
    assert np.isnan(vc_back["se"].iloc[1])
    assert np.allclose(vc_back["se"].drop(index=1), vc["se"].drop(index=1), rtol=1e-10)
