"""``hlm.ols``: least squares for models without random effects, against R's ``lm``.

Reference numbers: tests/fixtures/ols/ols_reference.json, written by R's ``lm`` and
``logLik(fit, REML = TRUE)`` (tests/fixtures/r/make_ols_refs.R; provenance in the file).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hlm
from hlm import DataError, FormulaError, RankDeficiencyWarning
from test_reference_lme4 import fixef_name_map

REFS = json.loads(
    (Path(__file__).parent / "fixtures" / "ols" / "ols_reference.json").read_text("utf-8")
)
CASES = [k for k in REFS if k != "provenance"]


def fit_case(case: str, method: str):
    ref = REFS[case]
    data = hlm.datasets.load(ref["data"])
    return ref, data, hlm.ols(ref["formula"], data, method=method, weights=ref["weights"])


def test_provenance():
    assert REFS["provenance"]["generated_by"] == "tests/fixtures/r/make_ols_refs.R"
    assert REFS["provenance"]["runtime"].startswith("R version")
    assert len(CASES) == 3


@pytest.mark.parametrize("case", CASES)
def test_reml_matches_lm(case):
    ref, data, res = fit_case(case, "REML")
    mapping = fixef_name_map(ref["coef"], list(res.fixef.index), data)
    for name, ours in mapping.items():
        assert res.fixef[ours] == pytest.approx(ref["coef"][name], rel=1e-9, abs=1e-12)
        assert res.fixef_se[ours] == pytest.approx(ref["se"][name], rel=1e-9)
    assert res.sigma == pytest.approx(ref["sigma"], rel=1e-10)
    assert res.nobs == ref["nobs"]
    # the REML criterion is -2 * logLik(lm, REML = TRUE)
    assert res.loglik == pytest.approx(ref["logLik_REML"], abs=1e-7)
    assert res.criterion == pytest.approx(-2 * ref["logLik_REML"], abs=1e-6)
    assert res.aic == pytest.approx(ref["AIC_REML"], abs=1e-6)
    assert res.deviance == pytest.approx(-2 * ref["logLik_ML"], abs=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_ml_matches_lm(case):
    ref, data, res = fit_case(case, "ML")
    n, p = res.nobs, len(res.fixef)
    shrink = np.sqrt((n - p) / n)  # ML uses sigma^2 = RSS / n
    assert res.sigma == pytest.approx(ref["sigma"] * shrink, rel=1e-10)
    mapping = fixef_name_map(ref["coef"], list(res.fixef.index), data)
    for name, ours in mapping.items():
        assert res.fixef_se[ours] == pytest.approx(ref["se"][name] * shrink, rel=1e-9)
    assert res.loglik == pytest.approx(ref["logLik_ML"], abs=1e-7)
    assert res.aic == pytest.approx(ref["AIC_ML"], abs=1e-6)
    assert res.bic == pytest.approx(ref["BIC_ML"], abs=1e-6)
    assert res.reml_criterion == pytest.approx(-2 * ref["logLik_REML"], abs=1e-6)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_criterion_is_the_mixed_criterion_at_zero_variance(method):
    """The mixed model's profiled criterion at theta = 0 is the linear model's."""
    hsb = hlm.datasets.load("hsb")
    fixed = "MathAch ~ MEANSES + Sector + cses + MEANSES:cses + Sector:cses"
    res = hlm.ols(fixed, hsb, method=method)
    mixed = hlm.LinearMixedModel.from_formula(fixed + " + (1 | School)", hsb, method=method)
    assert mixed.objective([0.0]) == pytest.approx(res.criterion, rel=1e-10)


def test_levels_without_random_effects_fit_by_ols():
    hsb = hlm.datasets.load("hsb")
    spec = hlm.cross_level_regression("MathAch", "cses", "MEANSES + Sector", "School")
    res = hlm.fit(spec, hsb)
    assert isinstance(res, hlm.OLSResult) and res.source is spec
    direct = hlm.ols(REFS["hsb_cross_level"]["formula"], hsb)
    np.testing.assert_allclose(res.fixef, direct.fixef, rtol=1e-12)
    assert res.criterion == pytest.approx(direct.criterion, rel=1e-12)
    assert set(spec.gamma_map().values()) == set(res.fixef.index)
    with pytest.raises(TypeError, match="least squares"):
        hlm.fit(spec, hsb, maxeval=10)
    assert hlm.ols(spec, hsb).criterion == pytest.approx(res.criterion, rel=1e-12)


def test_aliased_column_is_dropped_with_a_warning():
    data = hlm.datasets.load("sleepstudy")
    data = data.assign(Weeks=data["Days"] / 7)
    with pytest.warns(RankDeficiencyWarning, match="'Weeks'"):
        res = hlm.ols("Reaction ~ Days + Weeks", data)
    plain = hlm.ols("Reaction ~ Days", data)
    assert res.dropped_columns == ["Weeks"] and list(res.fixef.index) == ["(Intercept)", "Days"]
    np.testing.assert_allclose(res.fixef, plain.fixef)
    assert res.criterion == pytest.approx(plain.criterion, rel=1e-12)


def test_offset_and_missing_rows():
    data = hlm.datasets.load("sleepstudy")
    data = data.assign(known=2.5 * data["Days"], Reaction2=data["Reaction"] - 2.5 * data["Days"])
    a = hlm.ols("Reaction ~ Days", data, offset="known")
    b = hlm.ols("Reaction2 ~ Days", data)
    np.testing.assert_allclose(a.fixef, b.fixef)
    assert a.criterion == pytest.approx(b.criterion, rel=1e-12)
    data.loc[data.index[:4], "Reaction"] = np.nan
    c = hlm.ols("Reaction ~ Days", data)
    assert c.nobs == 176 and c.n_dropped == 4
    assert "(4 rows with missing values were dropped)" in c.summary()


def test_summary_and_errors():
    data = hlm.datasets.load("sleepstudy")
    res = hlm.ols("Reaction ~ Days", data)
    text = res.summary()
    assert "Linear model fit by least squares" in text and "Days" in text
    assert "REML criterion" in text and repr(res).startswith("<OLSResult REML")
    with pytest.raises(FormulaError, match="random-effects terms"):
        hlm.ols("Reaction ~ Days + (1 | Subject)", data)
    with pytest.raises(DataError, match="2 coefficients for 2 rows"):
        hlm.ols("Reaction ~ Days", data.iloc[:2])
    with pytest.raises(ValueError, match="method"):
        hlm.ols("Reaction ~ Days", data, method="GLS")
