"""Wald t and F tests against lmerTest and pbkrtest (tests/fixtures/inference).

Satterthwaite and Kenward-Roger quantities are compared at lme4's own theta (stored with
the references), so the comparison tests the df computations, not the optimizers; the
fit's own optimum is compared with looser tolerances.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hlm
from _inference_refs import at_theta, cases, data, fit, name_map, strs, term_map, vec
from hlm.inference.hypothesis import HypothesisError, parse_hypothesis
from hlm.inference.satterthwaite import joint_df

TTESTS = cases("ttests")
CONTESTS = cases("ftests", "contests")
TYPE3 = cases("ftests", "type3")


def _table_cases():
    out = []
    for cid in sorted(TTESTS):
        out += [(cid, "REML", "satterthwaite"), (cid, "REML", "kenward_roger")]
        out.append((cid, "ML", "satterthwaite"))
    return out


@pytest.mark.parametrize(("case_id", "method", "ddf"), _table_cases())
def test_fixef_table_matches_lmertest(case_id, method, ddf):
    case = TTESTS[case_id]
    ref = case[method][ddf]
    res = fit(case["data"], case["formula"], method)
    names = name_map(strs(ref["names"]), list(res.fixef.index), data(case["data"]))
    order = [names[n] for n in strs(ref["names"])]
    # at lme4's theta: the df, se and t of lmerTest / pbkrtest to numerical precision
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact = at_theta(res, case[method]["theta"]).fixef_table(df=ddf.replace("_", "-"))
    tab = exact.loc[order]
    np.testing.assert_allclose(tab["se"], vec(ref["se"]), rtol=1e-6)
    np.testing.assert_allclose(tab["t"], vec(ref["t"]), rtol=1e-6)
    np.testing.assert_allclose(tab["df"], vec(ref["df"]), rtol=1e-5)
    np.testing.assert_allclose(np.log(tab["p"]), np.log(vec(ref["p"])), rtol=1e-5, atol=1e-6)
    # at hlm's own optimum: as close as the optima are
    own = res.fixef_table(df=ddf.replace("_", "-")).loc[order]
    np.testing.assert_allclose(own["df"], vec(ref["df"]), rtol=5e-4)
    assert list(own.columns) == ["estimate", "se", "t", "df", "p"]


def test_fixef_table_keeps_columns_and_default_is_satterthwaite():
    res = fit("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    tab = res.fixef_table()
    assert list(tab.columns[:3]) == ["estimate", "se", "t"]
    np.testing.assert_allclose(tab["se"], res.fixef_se)
    assert tab.attrs["df_method"] == "satterthwaite"
    assert np.isinf(res.fixef_table(df="asymptotic")["df"]).all()
    resid = res.fixef_table(df="residual")
    assert (resid["df"] == 178).all()
    with pytest.raises(ValueError, match="df must be"):
        res.fixef_table(df="wrong")


@pytest.mark.parametrize("case_id", sorted(CONTESTS))
@pytest.mark.parametrize("ddf", ["satterthwaite", "kenward_roger"])
def test_joint_tests_match_lmertest_contest(case_id, ddf):
    case = CONTESTS[case_id]
    res = at_theta(fit(case["data"], case["formula"]), case["theta"])
    names = name_map(strs(case["names"]), list(res.fixef.index), data(case["data"]))
    rows = case["rows"] if isinstance(case["rows"], list) else [case["rows"]]
    L = pd.DataFrame([{names[k]: v for k, v in r.items()} for r in rows]).fillna(0.0)
    out = res.wald_test(L, vec(case["rhs"]), df=ddf.replace("_", "-"))
    ref = case[ddf]
    for col in ["sum_sq", "mean_sq", "num_df", "den_df", "F"]:
        np.testing.assert_allclose(out[col].to_numpy(float), vec(ref[col]), rtol=1e-5)
    np.testing.assert_allclose(out["p"], vec(ref["p"]), rtol=1e-4)


def test_string_hypothesis_equals_matrix():
    res = fit("hsb", "MathAch ~ MEANSES * cses + Sector * cses + (cses | School)")
    names = list(res.fixef.index)
    inter = [n for n in names if "Sector" in n and "cses" in n][0]
    by_text = res.wald_test(f"MEANSES:cses = {inter} = 0")
    L = np.zeros((2, len(names)))
    L[0, names.index("MEANSES:cses")] = 1
    L[1, names.index(inter)] = 1
    by_matrix = res.wald_test(L)
    np.testing.assert_allclose(by_text["F"], by_matrix["F"], rtol=1e-12)
    np.testing.assert_allclose(by_text["den_df"], by_matrix["den_df"], rtol=1e-10)


@pytest.mark.parametrize("case_id", sorted(TYPE3))
@pytest.mark.parametrize("ddf", ["satterthwaite", "kenward_roger"])
def test_type3_table_matches_lmertest_anova(case_id, ddf):
    case = TYPE3[case_id]
    res = at_theta(fit(case["data"], case["formula"]), case["theta"])
    tab = res.anova(df=ddf.replace("_", "-"))
    ref = case[ddf]
    terms = term_map(strs(ref["terms"]), list(tab.index))
    tab = tab.loc[[terms[t] for t in strs(ref["terms"])]]
    for col in ["sum_sq", "mean_sq", "num_df", "den_df", "F"]:
        np.testing.assert_allclose(tab[col].to_numpy(float), vec(ref[col]), rtol=1e-5)
    np.testing.assert_allclose(np.log(tab["p"]), np.log(vec(ref["p"])), rtol=1e-5)


def test_type3_refuses_aliased_columns():
    d = data("sleepstudy").assign(Days2=lambda x: 2 * x["Days"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hlm.fit("Reaction ~ Days + Days2 + (1 | Subject)", d)
    with pytest.raises(NotImplementedError, match="aliased"):
        res.anova()


def test_ols_tests_are_exact_t_tests():
    from scipy import stats

    d = data("sleepstudy")
    res = hlm.ols("Reaction ~ Days", d)
    tab = res.fixef_table()
    assert (tab["df"] == 178).all()
    np.testing.assert_allclose(tab["p"], 2 * stats.t.sf(np.abs(tab["t"]), 178))


# ---------------------------------------------------------------- hypothesis strings
NAMES = ["(Intercept)", "x1", "x10", "Sector[T.Catholic]", "MEANSES:cses"]


def test_parse_chain_and_rhs():
    L, r, labels = parse_hypothesis("x1 = x10 = 0", NAMES)
    # returned in reduced row echelon form: the same as "x1 = 0, x10 = 0"
    np.testing.assert_array_equal(L, [[0, 1, 0, 0, 0], [0, 0, 1, 0, 0]])
    np.testing.assert_array_equal(r, [0, 0])
    assert labels == ["x1 = 0", "x10 = 0"]
    L, r, _ = parse_hypothesis("x1 = x10", NAMES)
    np.testing.assert_array_equal(L, [[0, 1, -1, 0, 0]])
    L, r, _ = parse_hypothesis("2*x1 - 0.5 x10 + `MEANSES:cses` = 3, Sector[T.Catholic]", NAMES)
    np.testing.assert_array_equal(L, [[0, 1, -0.25, 0, 0.5], [0, 0, 0, 1, 0]])
    np.testing.assert_array_equal(r, [1.5, 0])
    L, r, _ = parse_hypothesis("(Intercept) + 1 = 2", NAMES)
    np.testing.assert_array_equal(r, [1])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("x2 = 0", "expected a fixed-effect name"),
        ("", "empty"),
        ("x1 x10", "expected '\\+'"),
        ("1 = 2", "does not involve"),
        ("x1 = ", "empty side"),
    ],
)
def test_parse_errors_say_what_is_wrong(text, match):
    with pytest.raises(HypothesisError, match=match):
        parse_hypothesis(text, NAMES)


def test_joint_df_rule():
    assert joint_df(np.array([10.0])) == 10.0
    assert joint_df(np.array([5.0, 5.0])) == 5.0
    assert joint_df(np.array([1.5, 30.0])) == 2.0
    nu = np.array([10.0, 20.0])
    E = np.sum(nu / (nu - 2))
    assert joint_df(nu) == pytest.approx(2 * E / (E - 2))


def test_parse_redundant_and_contradictory():
    L, r, _ = parse_hypothesis("x1 = 0, 2 x1 = 0", NAMES)
    assert L.shape == (1, 5)
    with pytest.raises(HypothesisError, match="contradictory"):
        parse_hypothesis("x1 = 0, x1 = 1", NAMES)
