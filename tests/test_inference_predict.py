"""Predictions, prediction intervals, simulation and R-squared.

References: lme4's ``predict`` and a dense Henderson prediction-error computation in R on
lme4's fit (tests/fixtures/inference/predict.json); performance::r2_nakagawa and the same
quantities by hand in R (r2.json); a dense closed form in numpy for a crossed design.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hlm
from _inference_refs import at_theta, cases, data, fit, vec
from hlm.errors import DataError, DataWarning
from hlm.inference.rows import response_crossproducts, row_design, with_response

PREDICT = cases("predict")
R2 = cases("r2")


def _newdata(case):
    nd = pd.DataFrame(case["newdata"])
    return nd


@pytest.mark.parametrize("case_id", sorted(PREDICT))
def test_predictions_match_lme4(case_id):
    case = PREDICT[case_id]
    res = at_theta(fit(case["data"], case["formula"]), case["theta"])
    nd = _newdata(case)
    np.testing.assert_allclose(res.predict(nd), vec(case["predict"]), rtol=1e-7)
    np.testing.assert_allclose(res.predict(nd, random=False), vec(case["population"]), rtol=1e-7)


@pytest.mark.parametrize("case_id", sorted(PREDICT))
def test_prediction_intervals_match_dense_henderson_in_r(case_id):
    case = PREDICT[case_id]
    res = at_theta(fit(case["data"], case["formula"]), case["theta"])
    nd = _newdata(case)
    conf = res.predict_interval(nd, interval="confidence")
    pred = res.predict_interval(nd, level=0.9)
    np.testing.assert_allclose(conf["se"], vec(case["se_confidence"]), rtol=1e-6)
    np.testing.assert_allclose(pred["se"], vec(case["se_prediction"]), rtol=1e-6)
    z = 1.6448536269514722
    np.testing.assert_allclose(pred["upper"] - pred["fit"], z * pred["se"], rtol=1e-12)
    np.testing.assert_allclose(pred["fit"], vec(case["predict"]), rtol=1e-7)


@pytest.mark.parametrize(
    ("data_name", "formula"),
    [
        ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),  # crossed
        ("Pastes", "strength ~ 1 + (1 | batch/cask)"),  # nested
        ("sleepstudy", "Reaction ~ 0 + Days + (Days | Subject)"),  # no intercept, slope
        ("sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"),
    ],
)
def test_prediction_error_variance_dense_closed_form(data_name, formula):
    """The blocked computation equals the dense inverse of the mixed-model equations
    ``H = [X'X, X'Z Lambda; Lambda'Z'X, Lambda'Z'Z Lambda + I]`` formed from the rows."""
    res = fit(data_name, formula)
    rd = row_design(res.model)
    lams = res.model.cov.lambdas(res.theta)
    cols, lam_blocks = [], []
    for Zk, ck, lam in zip(rd.Z, rd.codes, lams, strict=True):
        J, S = int(ck.max()) + 1, Zk.shape[1]
        Zd = np.zeros((rd.n, J * S))
        for a in range(S):
            Zd[np.arange(rd.n), ck * S + a] = Zk[:, a]
        cols.append(Zd)
        lam_blocks += [lam] * J
    Z = np.hstack(cols)
    from scipy.linalg import block_diag

    ZL = Z @ block_diag(*lam_blocks)
    X = rd.X
    H = np.block([[X.T @ X, X.T @ ZL], [ZL.T @ X, ZL.T @ ZL + np.eye(Z.shape[1])]])
    rows = np.hstack([X, ZL])[::7]
    pev = res.sigma**2 * np.einsum("ij,jk,ik->i", rows, np.linalg.inv(H), rows)
    nd = res.model.frame.data.iloc[::7]
    se = res.predict_interval(nd, interval="confidence")["se"].to_numpy()
    np.testing.assert_allclose(se, np.sqrt(pev), rtol=1e-8)


def test_group_labels_match_across_types_and_new_levels():
    res = fit("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    as_int = pd.DataFrame({"Days": [1.0, 2.0], "Subject": [308, 372]})
    as_str = as_int.assign(Subject=["308", "372"])
    np.testing.assert_allclose(res.predict(as_int), res.predict(as_str))
    new = pd.DataFrame({"Days": [1.0], "Subject": ["999"]})
    assert res.predict(new).iloc[0] == pytest.approx(res.predict(new, random=False).iloc[0])
    with pytest.raises(DataError, match="'Subject'.*not seen"):
        res.predict(new, allow_new_levels=False)
    with pytest.warns(DataWarning, match="none of the new data's groups"):
        res.predict(new)


def test_missing_values_and_unseen_categories():
    res = fit("hsb", "MathAch ~ MEANSES * cses + Sector * cses + (cses | School)")
    nd = pd.DataFrame(
        {
            "MEANSES": [0.1, np.nan],
            "cses": [0.0, 1.0],
            "Sector": ["Public", "Catholic"],
            "School": ["1224", "1224"],
        }
    )
    out = res.predict(nd)
    assert np.isfinite(out.iloc[0]) and np.isnan(out.iloc[1])
    bad = nd.assign(Sector=["Public", "Private"], MEANSES=[0.1, 0.2])
    with pytest.raises(DataError, match="category levels not seen"):
        res.predict(bad)
    with pytest.raises(DataError, match="'cses'"):
        res.predict(nd.drop(columns="cses"))


def test_predict_defaults_to_fitted_rows_and_partial_terms():
    res = fit("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)")
    np.testing.assert_allclose(res.predict(), res.fitted())
    d = data("Penicillin")
    only_plate = res.predict(d, random=["plate"])
    b = res.ranef()["plate"]["(Intercept)"]
    expected = res.fixef.iloc[0] + b.loc[d["plate"].astype(str)].to_numpy()
    np.testing.assert_allclose(only_plate, expected)
    with pytest.raises(ValueError, match="unknown grouping factor"):
        res.predict(d, random=["nope"])


def test_ols_predict():
    d = data("sleepstudy")
    res = hlm.ols("Reaction ~ Days", d)
    out = res.predict(pd.DataFrame({"Days": [0.0, 10.0]}))
    np.testing.assert_allclose(out, res.fixef.iloc[0] + res.fixef.iloc[1] * np.array([0, 10]))


# ---------------------------------------------------------------- simulation
def test_simulate_seeded_and_moments():
    res = fit("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    a = res.simulate(3, seed=11)
    pd.testing.assert_frame_equal(a, res.simulate(3, seed=11))
    assert a.shape == (180, 3) and list(a.columns) == ["sim_1", "sim_2", "sim_3"]
    sims = res.simulate(3000, seed=5).to_numpy()
    d = data("sleepstudy")
    mu = res.fixef.iloc[0] + res.fixef.iloc[1] * d["Days"].to_numpy()
    Sig = res._est.Sigma[0]
    z = np.column_stack((np.ones(180), d["Days"]))
    var = np.einsum("ij,jk,ik->i", z, Sig, z) + res.sigma**2
    se_mean = np.sqrt(var / 3000)
    assert np.all(np.abs(sims.mean(axis=1) - mu) < 5 * se_mean)
    np.testing.assert_allclose(sims.var(axis=1), var, rtol=0.15)
    # same subject, different days: covariance z_i' Sigma z_j
    c = np.cov(sims[0], sims[9])[0, 1]
    assert c == pytest.approx(z[0] @ Sig @ z[9], rel=0.15)


def test_row_design_reproduces_the_response_cross_products():
    for data_name, formula in [
        ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
        ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
        ("sleepstudy", "Reaction ~ 0 + Days + (1 | Subject)"),
    ]:
        res = fit(data_name, formula)
        model = res.model
        rd = row_design(model)
        g, zx = response_crossproducts(model, rd, rd.y)
        np.testing.assert_allclose(g, model.A.G[:, -1], rtol=1e-10, atol=1e-8)
        for new, old in zip(zx, model.A.ZXy, strict=True):
            np.testing.assert_allclose(new, old[:, :, -1], rtol=1e-10, atol=1e-8)
        same = with_response(model, rd, rd.y)
        assert same.objective(res.theta) == pytest.approx(res.criterion, abs=1e-8)


# ---------------------------------------------------------------- R-squared
@pytest.mark.parametrize("case_id", sorted(R2))
def test_r2_matches_r(case_id):
    case = R2[case_id]
    res = at_theta(fit(case["data"], case["formula"]), case["theta"])
    r2 = res.r2()
    # the three variances, computed by hand in R from lme4's fit
    for key in ["var_fixed", "var_random", "var_residual"]:
        assert r2[key] == pytest.approx(case[key], rel=1e-6, abs=1e-12), key
    total = case["var_fixed"] + case["var_random"] + case["var_residual"]
    assert r2["marginal"] == pytest.approx(case["var_fixed"] / total, rel=1e-6, abs=1e-12)
    if case_id == "sleep_uncorr":
        # performance 0.10.2 leaves out the second term of a repeated grouping factor
        # ((0 + Days | Subject)): its R2 uses the intercept variance only
        return
    assert r2["marginal"] == pytest.approx(case["marginal"], rel=1e-6, abs=1e-12)
    assert r2["conditional"] == pytest.approx(case["conditional"], rel=1e-6)


def test_r2_refuses_weights():
    d = data("sleepstudy").assign(w=1.0 + np.arange(180) % 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hlm.fit("Reaction ~ Days + (1 | Subject)", d, weights="w")
    with pytest.raises(NotImplementedError, match="weights"):
        res.r2()
