"""hlm against more lme4 reference fits (tests/fixtures/lme4_extra, see README there).

Models: ``(Days || Subject)``, prior weights, categorical predictors with an interaction, a
categorical random slope, nested and crossed terms (Pastes, Penicillin and simulated data with
two and three terms), ``y ~ 0 + x`` with a large-mean predictor, ``log(Reaction)``.
Tolerances as in tests/fixtures/lme4/README.md.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

import hlm
from _extra_refs import (
    as_vector,
    case_ids,
    hlm_name,
    hlm_ranef_column,
    load_data,
    read_sim,
    reference,
    sleepstudy_extra,
)
from hlm.results.fitted import MixedModelResult

# ill-conditioned fixed effects (SE ~1e4): a dedicated test in test_edges.py
SEPARATE = {"sleepstudy_nearcollinear"}
CASES = [c for c in case_ids() if c.split("__")[0] not in SEPARATE]

# y ~ 0 + x with mean(x) = 1e4 once lost ~8 digits (uncentred cross-products without an
# intercept); the nointercept cases below are its regression tests.


def with_marks(cases, failing: dict[str, str]):
    """Parametrize ``cases``; the model ids in ``failing`` are strict xfails (reason)."""
    out = []
    for case in cases:
        reason = failing.get(case.split("__")[0])
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(case, marks=marks, id=case))
    return out


class Fits:
    """Each reference model fitted once per module."""

    def __init__(self):
        self._fits = {}

    def __call__(self, case):
        if case not in self._fits:
            ref = reference(case)
            self._fits[case] = hlm.fit(
                ref["hlm_formula"], load_data(ref), method=ref["method"], weights=ref["weights"]
            )
        return self._fits[case]


@pytest.fixture(scope="module")
def fits():
    return Fits()


def at_theta(res, theta) -> MixedModelResult:
    """The estimates hlm derives from ``theta`` (no optimisation)."""
    return MixedModelResult.from_model(res.model, theta, singular=False, fit_log=res.fit_log)


def term_sd(ref: dict, group: str, column: str) -> float:
    for row in ref["varcorr_table"]:
        if row["grp"] == group and row["var1"] == column and row["var2"] is None:
            return row["sdcor"]
    raise KeyError((group, column))


def lme4_group_of(ref: dict, group: str, column: str) -> str:
    """lme4's varcorr block name (``Subject`` or ``Subject.1``) holding ``column``."""
    for row in ref["varcorr_table"]:
        if row["grp"].split(".")[0] == group and row["var1"] == column:
            return row["grp"]
    raise KeyError((group, column))


# --- generic comparisons, every reference fit ----------------------------------------------


def test_fixture_inventory():
    assert len(case_ids()) == 30
    for case in case_ids():
        ref = reference(case)
        assert case == f"{ref['model_id']}__{ref['method']}"
        assert ref["tool"] == "lme4" and ref["tool_version"] == "1.1.31"
        assert ref["runtime"].startswith("R version 4.2.2")
        assert ref["lmer_call"].startswith(f"lmer({ref['formula']}, data = ")
        assert not ref["warnings"] and not ref["convergence_messages"], case


@pytest.mark.parametrize("case", CASES)
def test_criterion_at_optimum(fits, case):
    ref, res = reference(case), fits(case)
    assert res.criterion <= ref["criterion"] + 1e-6
    assert res.criterion >= ref["criterion"] - 1e-3, "much better than lme4: suspicious"


@pytest.mark.parametrize("case", with_marks(CASES, {}))
def test_objective_at_lme4_theta(case):
    ref = reference(case)
    model = hlm.LinearMixedModel.from_formula(
        ref["hlm_formula"], load_data(ref), method=ref["method"], weights=ref["weights"]
    )
    assert model.objective(as_vector(ref["theta"])) == pytest.approx(
        ref["criterion"], rel=1e-8, abs=0
    )


@pytest.mark.parametrize("case", CASES)
def test_fixef(fits, case):
    ref, res = reference(case), fits(case)
    assert list(res.fixef.index) == [hlm_name(ref, n) for n in ref["fixef_names"]]
    for name in ref["fixef_names"]:
        want = ref["fixef"][name]
        tol = max(1e-5 * abs(want), 1e-4 * ref["fixef_se"][name])
        assert abs(res.fixef[hlm_name(ref, name)] - want) <= tol, name


@pytest.mark.parametrize("case", with_marks(CASES, {}))
def test_fixef_se(fits, case):
    ref, res = reference(case), fits(case)
    for name in ref["fixef_names"]:
        got = res.fixef_se[hlm_name(ref, name)]
        assert got == pytest.approx(ref["fixef_se"][name], rel=1e-4), name


@pytest.mark.parametrize("case", CASES)
def test_sigma(fits, case):
    ref, res = reference(case), fits(case)
    assert res.sigma == pytest.approx(ref["sigma"], rel=1e-4)


@pytest.mark.parametrize("case", CASES)
def test_theta_and_its_names(fits, case):
    ref, res = reference(case), fits(case)
    want = as_vector(ref["theta"])
    assert res.model.theta_names == [hlm_name(ref, n) for n in ref["theta_names"]]
    assert res.theta.shape == want.shape
    assert np.all(np.abs(res.theta - want) <= np.maximum(1e-3 * np.abs(want), 1e-4))


@pytest.mark.parametrize("case", with_marks(CASES, {}))
def test_varcorr(fits, case):
    ref, res = reference(case), fits(case)
    rows = res.varcorr().to_dict("records")
    assert len(rows) == len(ref["varcorr_table"])
    for row, want in zip(rows, ref["varcorr_table"], strict=True):
        assert row["grp"] == want["grp"], want  # lme4 names: "Subject.1", "h:g2"
        for key in ("var1", "var2"):
            got = row[key] if isinstance(row[key], str) else None
            expected = None if want[key] is None else hlm_ranef_column(ref, want[key])
            assert got == expected, want
        if want["var2"] is None:
            assert row["sdcor"] == pytest.approx(want["sdcor"], rel=1e-4), want
        else:
            assert abs(row["sdcor"] - want["sdcor"]) <= 1e-4, want


@pytest.mark.parametrize("case", CASES)
def test_ranef_all_levels(fits, case):
    ref, res = reference(case), fits(case)
    ranef = res.ranef()
    assert sorted(ranef) == sorted(ref["ranef"])
    for group, want in ref["ranef"].items():
        frame = ranef[group]
        assert [str(i) for i in frame.index] == want["levels"], group
        assert list(frame.columns) == [hlm_ranef_column(ref, c) for c in want["columns"]]
        for col in want["columns"]:
            sd = term_sd(ref, lme4_group_of(ref, group, col), col)
            got = frame[hlm_ranef_column(ref, col)].to_numpy()
            np.testing.assert_allclose(got, want[col], rtol=0, atol=1e-4 * sd, err_msg=col)


@pytest.mark.parametrize("case", CASES)
def test_counts(fits, case):
    ref, res = reference(case), fits(case)
    assert res.nobs == ref["nobs"]
    assert res.ngroups == ref["ngroups"]
    assert res.singular is ref["singular"]


@pytest.mark.parametrize("case", CASES)
def test_estimates_at_lme4_theta(fits, case):
    """Given lme4's theta, beta, their covariance, sigma and the modes follow exactly."""
    ref, res = reference(case), fits(case)
    est = at_theta(res, as_vector(ref["theta"]))
    names = [hlm_name(ref, n) for n in ref["fixef_names"]]
    np.testing.assert_allclose(
        est.fixef[names], [ref["fixef"][n] for n in ref["fixef_names"]], rtol=1e-7
    )
    vcov = np.asarray(ref["vcov"], dtype=float)
    np.testing.assert_allclose(
        est.vcov.loc[names, names].to_numpy(), vcov, rtol=1e-6, atol=1e-9 * np.abs(vcov).max()
    )
    assert est.sigma == pytest.approx(ref["sigma"], rel=1e-7)
    for group, want in ref["ranef"].items():
        for col in want["columns"]:
            got = est.ranef()[group][hlm_ranef_column(ref, col)].to_numpy()
            scale = np.max(np.abs(want[col]))
            np.testing.assert_allclose(got, want[col], rtol=0, atol=1e-7 * scale)


# --- (Days || Subject) ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_double_bar_equals_two_explicit_terms(fits, method):
    data = hlm.datasets.load("sleepstudy")
    double = fits(f"sleepstudy_dblbar__{method}")
    explicit = hlm.fit(
        "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", data, method=method
    )
    assert double.criterion == pytest.approx(explicit.criterion, rel=1e-10)
    np.testing.assert_allclose(double.theta, explicit.theta, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(double.fixef, explicit.fixef, rtol=1e-8)
    assert list(double.varcorr()["grp"]) == ["Subject", "Subject.1", "Residual"]
    assert list(double.varcorr()["grp"]) == list(explicit.varcorr()["grp"])
    assert double.ngroups == {"Subject": 18}
    assert list(double.ranef()["Subject"].columns) == ["(Intercept)", "Days"]


# --- prior weights --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_weights_as_array_equal_weights_as_column(fits, method):
    ref = reference(f"sleepstudy_weights__{method}")
    data = sleepstudy_extra()
    by_name = fits(f"sleepstudy_weights__{method}")
    by_array = hlm.fit(
        "Reaction ~ Days + (Days | Subject)",
        data.drop(columns="w"),
        method=method,
        weights=data["w"].to_numpy(),
    )
    assert by_array.criterion == pytest.approx(by_name.criterion, rel=1e-12)
    np.testing.assert_allclose(by_array.fixef, by_name.fixef, rtol=1e-10)
    assert by_array.criterion <= ref["criterion"] + 1e-6
    assert by_array.sigma == pytest.approx(ref["sigma"], rel=1e-4)


def test_weights_change_the_fit(fits):
    weighted = fits("sleepstudy_weights__REML")
    plain = fits("sleepstudy_corr__REML")
    assert abs(weighted.criterion - plain.criterion) > 1.0
    ref = reference("sleepstudy_weights__REML")
    assert ref["weights_definition"] == "w = 1 + (Days %% 3)"  # R's %% is the modulus


# --- categorical predictors -------------------------------------------------------------------


def test_categorical_names_follow_formulaic(fits):
    res = fits("hsb_sector_sex__REML")
    assert list(res.fixef.index) == [
        "(Intercept)",
        "Sector[T.Catholic]",
        "cses",
        "Sex[T.Female]",
        "Sector[T.Catholic]:cses",
    ]
    slope = fits("hsb_sex_slope__REML")
    assert list(slope.ranef()["School"].columns) == ["Sex[Male]", "Sex[Female]"]


# --- nested and crossed ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_sample_term_equals_batch_cask_interaction(fits, method):
    """Pastes ``sample`` is batch:cask, so ``(1|batch) + (1|sample)`` == ``(1|batch/cask)``."""
    two = fits(f"pastes_two_terms__{method}")
    nested = fits(f"pastes_nested__{method}")
    assert two.criterion == pytest.approx(nested.criterion, rel=1e-9)
    np.testing.assert_allclose(two.theta, nested.theta, rtol=1e-4)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_interaction_grouping_factor_equals_sample(method):
    """``(1 | batch:cask)`` is the same grouping as Pastes' ``sample`` column."""
    ref = reference(f"pastes_two_terms__{method}")
    res = hlm.fit("strength ~ 1 + (1 | batch) + (1 | batch:cask)", load_data(ref), method=method)
    assert res.ngroups == {"batch:cask": 30, "batch": 10}
    assert res.criterion == pytest.approx(ref["criterion"], abs=1e-6)
    assert list(res.ranef()["batch:cask"].index[:4]) == ["A:a", "A:b", "A:c", "B:a"]
    sample = ref["ranef"]["sample"]
    want = dict(zip(sample["levels"], sample["(Intercept)"], strict=True))
    got = res.ranef()["batch:cask"]["(Intercept)"]
    for label in ("A:a", "C:b", "J:c"):
        assert got[label] == pytest.approx(want[label], abs=1e-4 * 3.0)


def test_term_order_follows_lme4_with_ties(fits):
    """Written g2 (20 levels), g1 (30), g3 (20): lme4 keeps g1, g3, g2 (ties reversed)."""
    res = fits("crossed_ties__REML")
    assert [b.group for b in res.model.blocks] == ["g1", "g3", "g2"]
    nested = fits("crossed_nested__REML")
    assert [b.group for b in nested.model.blocks] == ["h:g2", "g1", "g2"]


# --- transforms ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_log_response_equals_precomputed_log(fits, method):
    data = hlm.datasets.load("sleepstudy")
    data["logR"] = np.log(data["Reaction"])
    direct = fits(f"sleepstudy_log__{method}")
    assert reference(f"sleepstudy_log__{method}")["formula"].startswith("log(Reaction)")
    pre = hlm.fit("logR ~ Days + (1 | Subject)", data, method=method)
    assert direct.criterion == pytest.approx(pre.criterion, rel=1e-12)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_scale_transform(fits, method):
    """formulaic's stateful ``scale(Days)`` (R's scale: centred, divided by the sd, n - 1)."""
    res = fits(f"sleepstudy_scale__{method}")
    ref = reference(f"sleepstudy_scale__{method}")
    assert list(res.fixef.index) == ["(Intercept)", "scale(Days)"]
    assert res.fixef["scale(Days)"] == pytest.approx(ref["fixef"]["scale(Days)"], rel=1e-5)


# --- no intercept, large-mean predictor ------------------------------------------------------


def exact_profiled_criterion(data: pd.DataFrame, theta: float, reml: bool) -> float:
    """Profiled criterion of ``y ~ 0 + x + (1|g)`` in exact rational arithmetic.

    With V = I + theta^2 Z Z' (block diagonal, V_g^{-1} = I - k 11', k = t/(1 + m t)),
    r^2 = min_b (y - b x)' V^{-1} (y - b x) = c - b^2 / a.  Only the final logs are floats.
    """
    t = Fraction(theta) ** 2
    a = b = c = Fraction(0)
    logdet = 0.0
    for _, grp in data.groupby("g"):
        x = [Fraction(v) for v in grp["x"]]
        y = [Fraction(v) for v in grp["y"]]
        m = len(x)
        k = t / (1 + m * t)
        sx, sy = sum(x), sum(y)
        a += sum(v * v for v in x) - k * sx * sx
        b += sum(u * v for u, v in zip(x, y, strict=True)) - k * sx * sy
        c += sum(v * v for v in y) - k * sy * sy
        logdet += np.log(float(1 + m * t))
    r2 = c - b * b / a
    n = len(data)
    d = n - 1 if reml else n
    value = logdet + d * (1.0 + np.log(2.0 * np.pi * float(r2) / d))
    if reml:
        value += np.log(float(a))
    return float(value)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_nointercept_reference_is_exact(method):
    """lme4's criterion agrees with exact arithmetic at its theta (the fixture is sound)."""
    ref = reference(f"nointercept__{method}")
    data = read_sim("nointercept.csv")
    assert data["x"].mean() == pytest.approx(1e4, rel=1e-3)
    exact = exact_profiled_criterion(data, ref["theta"][0], method == "REML")
    assert exact == pytest.approx(ref["criterion"], rel=1e-12)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_nointercept_objective_matches_exact_arithmetic(method):
    data = read_sim("nointercept.csv")
    model = hlm.LinearMixedModel.from_formula("y ~ 0 + x + (1 | g)", data, method=method)
    for theta in (0.5, 2.0):
        exact = exact_profiled_criterion(data, theta, method == "REML")
        assert model.objective([theta]) == pytest.approx(exact, rel=1e-10, abs=0)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_nointercept_criterion_not_below_true_minimum(fits, method):
    ref = reference(f"nointercept__{method}")
    res = fits(f"nointercept__{method}")
    assert res.criterion == pytest.approx(ref["criterion"], abs=1e-6)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_nointercept_fixef_unaffected(fits, method):
    ref = reference(f"nointercept__{method}")
    res = fits(f"nointercept__{method}")
    assert list(res.fixef.index) == ["x"]
    assert res.fixef["x"] == pytest.approx(ref["fixef"]["x"], rel=1e-9)
