"""Likelihood-ratio tests (hlm.anova) against R (tests/fixtures/inference/lrt.json).

The reference statistics come from lme4's ``anova`` and from ``logLik`` of R's ``lm`` and
``lmer`` fits; the boundary-corrected p-values from the closed-form mixtures computed in R.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import hlm
from _inference_refs import cases, data, fit, vec
from hlm.errors import HLMWarning
from hlm.inference.boundary import Reference

LRT = cases("lrt")
# cases whose larger model adds variances (the p-value is the mixture's)
MIXTURE = {
    "sleep_ri_vs_none",
    "sleep_slope",
    "sleep_three",
    "hsb_ri_vs_none",
    "hsb_slope",
    "penicillin_crossed",
}


def _fits(case):
    out = []
    for f in case["formulas"]:
        if "|" in f:
            out.append(fit(case["data"], f, "REML"))
        else:
            out.append(hlm.ols(f, data(case["data"])))
    return out


@pytest.mark.parametrize("case_id", sorted(LRT))
def test_anova_matches_r(case_id):
    case = LRT[case_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HLMWarning)
        table = hlm.anova(*_fits(case))
    assert table.attrs["criterion"] == case["criterion"]
    np.testing.assert_array_equal(table["npar"].to_numpy(), vec(case["npar"]))
    np.testing.assert_allclose(table["deviance"].to_numpy(), vec(case["deviance"]), atol=2e-6)
    np.testing.assert_allclose(table["aic"].to_numpy(), vec(case["aic"]), atol=2e-6)
    np.testing.assert_allclose(table["bic"].to_numpy(), vec(case["bic"]), atol=2e-6)
    np.testing.assert_allclose(table["loglik"].to_numpy(), vec(case["loglik"]), atol=1e-6)
    chisq = vec([np.nan if v is None else v for v in case["chisq"]])
    np.testing.assert_allclose(table["chisq"].to_numpy()[1:], chisq[1:], atol=5e-6)
    expected_p = case["p_mixture"] if case_id in MIXTURE else case["p_chi2"]
    p = vec([np.nan if v is None else v for v in expected_p])
    np.testing.assert_allclose(table["p"].to_numpy()[1:], p[1:], rtol=2e-4)


def test_null_names_the_distribution():
    table = hlm.anova(*_fits(LRT["sleep_three"]))
    assert list(table.columns) == [
        "npar",
        "aic",
        "bic",
        "loglik",
        "deviance",
        "chisq",
        "df",
        "p",
        "null",
    ]
    assert list(table["null"]) == ["", "0.5 chi2(0) + 0.5 chi2(1)", "0.5 chi2(1) + 0.5 chi2(2)"]
    assert list(table["df"].iloc[1:]) == [1, 2]


def test_models_are_sorted_by_complexity():
    fits = _fits(LRT["sleep_three"])
    a = hlm.anova(*fits)
    b = hlm.anova(fits[2], fits[0], fits[1])
    np.testing.assert_allclose(a["deviance"], b["deviance"])
    assert list(a.index) == list(b.index)


def test_fixed_effects_differ_refits_by_ml_with_a_note():
    case = LRT["sleep_fixed_ml"]
    with pytest.warns(HLMWarning, match="refitted 2 REML fit"):
        table = hlm.anova(*_fits(case))
    assert any("refitted" in n for n in table.attrs["notes"])
    assert table["null"].iloc[1] == "chi2(1)"


def test_refit_true_compares_ml_fits_like_lme4():
    # lme4 refits by ML even when only the random effects differ
    fits = _fits(LRT["sleep_slope"])
    with pytest.warns(HLMWarning):
        table = hlm.anova(*fits, refit=True)
    assert table.attrs["criterion"] == "ML"
    ml = [fit("sleepstudy", f, "ML").criterion for f in LRT["sleep_slope"]["formulas"]]
    np.testing.assert_allclose(table["deviance"], ml, atol=1e-6)


def test_refit_false_refuses_invalid_comparison():
    with pytest.raises(ValueError, match="not comparable"):
        hlm.anova(*_fits(LRT["sleep_fixed_ml"]), refit=False)


def test_different_rows_refused():
    d = data("sleepstudy")
    a = fit("sleepstudy", "Reaction ~ Days + (1 | Subject)")
    b = hlm.fit("Reaction ~ Days + (1 | Subject)", d.iloc[:170])
    with pytest.raises(ValueError, match="different numbers of rows"):
        hlm.anova(a, b)


def test_aicc_column():
    fits = _fits(LRT["sleep_slope"])
    table = hlm.anova(*fits, aicc=True)
    k, n = table["npar"].to_numpy(), 180
    np.testing.assert_allclose(table["aicc"], table["aic"] + 2 * k * (k + 1) / (n - k - 1))
    assert fits[1].aicc == pytest.approx(fits[1].aic + 2 * 6 * 7 / (180 - 7))


def test_levels_spec_without_random_effects_is_compared():
    d = data("hsb")
    ols = hlm.fit(hlm.Levels("MathAch ~ 1", group="School", random=[]), d)
    ri = fit("hsb", "MathAch ~ 1 + (1 | School)")
    table = hlm.anova(ols, ri)
    ref = LRT["hsb_ri_vs_none"]
    np.testing.assert_allclose(table["chisq"].iloc[1], vec(ref["chisq"][1:]), atol=5e-6)
    assert table["null"].iloc[1] == "0.5 chi2(0) + 0.5 chi2(1)"


def test_single_fit_gives_the_f_table():
    res = fit("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    assert list(hlm.anova(res).index) == ["Days"]


# ---------------------------------------------------------------- reference distributions
def test_mixture_survival_function_closed_form():
    from scipy import stats

    ref = Reference("m", ((0.5, 0), (0.5, 1)))
    assert ref.sf(0.0) == 1.0
    assert ref.sf(3.84) == pytest.approx(0.5 * stats.chi2.sf(3.84, 1))
    # the 5% critical value of the 50:50 chi2(0):chi2(1) mixture is chi2(1)'s 10% point
    assert ref.sf(stats.chi2.isf(0.10, 1)) == pytest.approx(0.05)
    ref2 = Reference("m", ((0.5, 1), (0.5, 2)))
    assert ref2.sf(5.0) == pytest.approx(0.5 * stats.chi2.sf(5, 1) + 0.5 * stats.chi2.sf(5, 2))


def test_two_variances_at_once_is_conservative_and_says_so():
    d = data("sleepstudy")
    ols = hlm.ols("Reaction ~ Days", d)
    full = fit("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    table = hlm.anova(ols, full)
    assert table["null"].iloc[1] == "chi2(3) (conservative)"
    assert any("2 variances" in n for n in table.attrs["notes"])
