"""``hlm.Levels``: the four HSB models against lme4, mixed formulas, equations, gammas,
errors. Three-level models are in test_levels_three.py, the text form in
test_levels_text.py.

The acceptance check: the HSB models of Raudenbush & Bryk (2002, ch. 4) written as level
equations reproduce the lme4 fits in tests/fixtures/lme4 (hsb_a ... hsb_d) within the
tolerances of tests/fixtures/lme4/README.md (the same checks as test_reference_lme4.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hlm
from hlm import DataError, FormulaError
from test_reference_lme4 import as_vector, fixef_name_map, group_key, loose, reference

HSB_SPECS = {
    "hsb_a_anova": lambda: hlm.Levels("MathAch ~ 1", group="School"),
    "hsb_b_means": lambda: hlm.Levels("MathAch ~ 1", {"(Intercept)": "~ MEANSES"}, group="School"),
    "hsb_c_rcoef": lambda: hlm.Levels(
        "MathAch ~ cses", group="School", random=["(Intercept)", "cses"]
    ),
    "hsb_d_slopes_outcomes": lambda: hlm.Levels(
        "MathAch ~ cses",
        {"(Intercept)": "~ MEANSES + Sector", "cses": "~ MEANSES + Sector"},
        group="School",
        random=["(Intercept)", "cses"],
    ),
}
HSB_CASES = [f"{m}__{meth}" for m in HSB_SPECS for meth in ("REML", "ML")]


@pytest.fixture(scope="module")
def hsb():
    return hlm.datasets.load("hsb")


@pytest.fixture(scope="module")
def hsb_fits(hsb):
    out = {}
    for case in HSB_CASES:
        model_id, method = case.split("__")
        out[case] = hlm.fit(HSB_SPECS[model_id](), hsb, method=method)
    return out


# --- acceptance: the four HSB models against lme4 -----------------------------------------


@pytest.mark.parametrize("case", HSB_CASES)
def test_hsb_levels_reproduce_lme4(hsb, hsb_fits, case):
    ref, res = reference(case), hsb_fits[case]
    assert isinstance(res.model.source, hlm.Levels)
    assert res.nobs == ref["nobs"] == 7185
    # criterion at the optimum, and the objective at lme4's theta
    assert ref["criterion"] - 1e-3 <= res.criterion <= ref["criterion"] + 1e-6
    at_theta = res.model.objective(as_vector(ref["theta"]))
    assert at_theta == pytest.approx(ref["criterion"], rel=1e-8, abs=0)
    mapping = fixef_name_map(ref["fixef"], list(res.fixef.index), hsb)
    assert sorted(mapping.values()) == sorted(res.fixef.index)
    rel = loose(ref, 1e-4, 1e-3)
    for name, ours in mapping.items():
        tol = max(1e-5 * abs(ref["fixef"][name]), 1e-4 * ref["fixef_se"][name])
        assert abs(res.fixef[ours] - ref["fixef"][name]) <= tol, name
        assert res.fixef_se[ours] == pytest.approx(ref["fixef_se"][name], rel=rel), name
    assert res.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    theta, want = np.asarray(res.theta), as_vector(ref["theta"])
    assert np.all(np.abs(theta - want) <= np.maximum(1e-3 * np.abs(want), 1e-4))
    rows = res.varcorr().to_dict("records")
    for row, want in zip(rows, ref["varcorr_table"], strict=True):
        assert group_key(row["grp"]) == group_key(want["grp"])
        if want["var2"] is None:
            assert row["sdcor"] == pytest.approx(want["sdcor"], rel=rel)
        else:
            assert abs(row["sdcor"] - want["sdcor"]) <= rel


@pytest.mark.parametrize("model_id", list(HSB_SPECS))
def test_hsb_mixed_formula_is_the_reference_model(model_id):
    spec = HSB_SPECS[model_id]()
    ref = reference(f"{model_id}__REML")
    if model_id == "hsb_d_slopes_outcomes":  # lme4 wrote it with '*'
        assert ref["formula"] == "MathAch ~ MEANSES * cses + Sector * cses + (cses | School)"
        expected = (
            "MathAch ~ MEANSES + Sector + cses + MEANSES:cses + Sector:cses + (cses | School)"
        )
    else:
        expected = ref["formula"]
    assert spec.mixed_formula() == expected


# --- mixed formulas ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "formula"),
    [
        ({"level1": "y ~ x"}, "y ~ x + (1 | g)"),
        ({"level1": "y ~ x", "random": []}, "y ~ x"),
        ({"level1": "y ~ x", "random": ["x"]}, "y ~ x + (0 + x | g)"),
        ({"level1": "y ~ x + z", "random": ["(Intercept)", "z"]}, "y ~ x + z + (z | g)"),
        ({"level1": "y ~ 0 + x", "random": ["x"]}, "y ~ 0 + x + (0 + x | g)"),
        (
            {"level1": "y ~ x", "level2": {"x": "~ w"}, "random": ["(Intercept)", "x"]},
            "y ~ x + w:x + (x | g)",
        ),
        ({"level1": "y ~ x", "level2": {"x": "w"}}, "y ~ x + w:x + (1 | g)"),
        ({"level1": "y ~ 1", "level2": {"(Intercept)": "~ w * v"}}, "y ~ w + v + w:v + (1 | g)"),
        ({"level1": "y ~ x", "level2": {"x": "~ 0 + w"}}, "y ~ w:x + (1 | g)"),
        ({"level1": "y ~ np.log(x)"}, "y ~ np.log(x) + (1 | g)"),
        (
            {"level1": "y ~ {x + 1}", "level2": {"{x + 1}": "~ w"}},
            "y ~ {x + 1} + w:{x + 1} + (1 | g)",
        ),
        ({"level1": "y ~ C(k)", "random": ["(Intercept)", "C(k)"]}, "y ~ C(k) + (C(k) | g)"),
        ({"level1": "y ~ x*z", "level2": {"z:x": "~ w"}}, "y ~ x + z + x:z + w:x:z + (1 | g)"),
    ],
)
def test_mixed_formula(kwargs, formula):
    kwargs = dict(kwargs)
    spec = hlm.Levels(kwargs.pop("level1"), kwargs.pop("level2", None), group="g", **kwargs)
    assert spec.mixed_formula() == formula
    hlm.spec.parse_formula(formula)  # the engine can read it


def test_spec_normalises_and_compares():
    a = hlm.Levels("y ~ x", group="g")
    b = hlm.Levels("y ~ x", {"(Intercept)": "~ 1", "x": "1"}, group="g", random=["(Intercept)"])
    assert a == b and hash(a) == hash(b)
    assert a.level2 == {"(Intercept)": "1", "x": "1"} and a.random == ("(Intercept)",)
    assert a != hlm.Levels("y ~ x", group="g", random=[])
    assert "Levels('y ~ x'" in repr(a)


# --- equations and gammas ----------------------------------------------------------------

EQUATIONS_D = """\
Level-1 model
    MathAch_ij = beta_0j + beta_1j*cses_ij + r_ij

Level-2 model (School)
    beta_0j = gamma_00 + gamma_01*MEANSES_j + gamma_02*Sector[T.Catholic]_j + u_0j
    beta_1j = gamma_10 + gamma_11*MEANSES_j + gamma_12*Sector[T.Catholic]_j + u_1j

Mixed model
    MathAch_ij = gamma_00 + gamma_01*MEANSES_j + gamma_02*Sector[T.Catholic]_j
               + gamma_10*cses_ij + gamma_11*MEANSES_j*cses_ij
               + gamma_12*Sector[T.Catholic]_j*cses_ij
               + u_0j + u_1j*cses_ij + r_ij

Fixed effects
    gamma_00 -> (Intercept)
    gamma_01 -> MEANSES
    gamma_02 -> Sector[T.Catholic]
    gamma_10 -> cses
    gamma_11 -> MEANSES:cses
    gamma_12 -> Sector[T.Catholic]:cses"""


def test_equations_and_gamma_map_of_model_d(hsb_fits):
    res = hsb_fits["hsb_d_slopes_outcomes__REML"]
    spec = res.model.source
    assert spec.equations() == EQUATIONS_D
    gammas = spec.gamma_map()
    assert gammas == {
        "gamma_00": "(Intercept)",
        "gamma_01": "MEANSES",
        "gamma_02": "Sector[T.Catholic]",
        "gamma_10": "cses",
        "gamma_11": "MEANSES:cses",
        "gamma_12": "Sector[T.Catholic]:cses",
    }
    assert set(gammas.values()) == set(res.fixef.index)  # every gamma is a fitted column
    tex = spec.equations(latex=True)
    assert tex.startswith("\\begin{aligned}") and tex.endswith("\\end{aligned}")
    assert r"\gamma_{12}\,\text{Sector[T.Catholic]}_{j}\,\text{cses}_{ij}" in tex
    assert r"\beta_{1j} = \gamma_{10}" in tex and r"u_{1j}" in tex


def test_gammas_before_data_use_term_names():
    spec = HSB_SPECS["hsb_d_slopes_outcomes"]()
    assert spec.gamma_map()["gamma_12"] == "Sector:cses"
    assert "gamma_02*Sector_j" in spec.equations()


def test_categorical_predictors_get_one_gamma_per_column():
    rng = np.random.default_rng(3)
    n, J = 600, 30
    g = np.repeat(np.arange(J), n // J)
    df = pd.DataFrame(
        {
            "y": rng.normal(size=n) + rng.normal(size=J)[g],
            "x": rng.normal(size=n),
            "k": rng.choice(["a", "b", "c"], size=n),  # level 1, three levels
            "w": np.array(["p", "q", "r"])[g % 3],  # level 2, three levels
            "g": g.astype(str),
        }
    )
    spec = hlm.Levels("y ~ x + k", {"(Intercept)": "~ w", "x": "~ w"}, group="g")
    res = hlm.fit(spec, df)
    gammas = spec.gamma_map()
    assert sorted(gammas.values()) == sorted(res.fixef.index)
    assert gammas["gamma_01"] == "w[T.q]" and gammas["gamma_02"] == "w[T.r]"
    assert gammas["gamma_10"] == "x" and gammas["gamma_12"] == "w[T.r]:x"
    assert gammas["gamma_20"] == "k[T.b]" and gammas["gamma_30"] == "k[T.c]"
    assert "beta_3j = gamma_30" in spec.equations()


def test_many_coefficients_separate_indices():
    names = [f"x{k}" for k in range(11)]
    spec = hlm.Levels("y ~ " + " + ".join(names), group="g")
    gammas = spec.gamma_map()
    assert gammas["gamma_11,0"] == "x10" and gammas["gamma_0,0"] == "(Intercept)"


def test_fit_without_random_effects_is_ols(hsb):
    spec = hlm.Levels("MathAch ~ cses", {"cses": "~ Sector"}, group="School", random=[])
    res = hlm.fit(spec, hsb)
    assert isinstance(res, hlm.OLSResult) and res.source is spec
    assert list(res.fixef.index) == ["(Intercept)", "cses", "Sector[T.Catholic]:cses"]
    assert "u_" not in spec.equations()


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: hlm.Levels("y ~ x", {"z": "~ w"}, group="g"), "'z' is not a level-1 coef"),
        (lambda: hlm.Levels("y ~ x", group="g", random=["z"]), "'z' is not a level-1"),
        (lambda: hlm.Levels("y ~ x + (1 | g)", group="g"), "random effects are chosen"),
        (lambda: hlm.Levels("y ~ x", {"x": "y ~ w"}, group="g"), "right-hand side only"),
        (lambda: hlm.Levels("x", group="g"), "needs one '~'"),
        (lambda: hlm.Levels("y ~ 0 + x", group="g"), "has no intercept"),
        (lambda: hlm.Levels("y ~ x", {"x": "~ x"}, group="g"), "arises twice"),
        (lambda: hlm.Levels("y ~ x + w", {"(Intercept)": "~ w"}, group="g"), "arises twice"),
        (lambda: hlm.Levels("y ~ x", group="g", level3={}, random3=[("x", "x")]), "group3"),
        (lambda: hlm.Levels("y ~ x", group=""), "grouping column"),
        (lambda: hlm.Levels("y ~ x", group="g", center={"x": "median"}), "kinds are"),
        (lambda: hlm.Levels("y ~ x", group="g", center={"z": "group"}), "no equation uses"),
        (lambda: hlm.Levels("y ~ x", group="g", center={"x": "mean"}), "x_mean"),
        (lambda: hlm.Levels("y ~ x", group="g", center={"x": ["group", "grand"]}), "two"),
        (
            lambda: hlm.Levels("y ~ x", {"(Intercept)": "~ x"}, group="g", center={"x": "group"}),
            "constant zero",
        ),
    ],
)
def test_spec_errors(call, message):
    with pytest.raises(FormulaError, match=message.replace("(", r"\(")):
        call()


def test_level2_predictor_varying_within_groups_names_the_groups(hsb):
    spec = hlm.Levels("MathAch ~ 1", {"(Intercept)": "~ SES"}, group="School")
    with pytest.raises(
        DataError,
        match=r"'SES' in the level-2 equation .* varies within 160 of 160 groups of School "
        r"\(1224, 1288",
    ):
        hlm.fit(spec, hsb)
    few = hsb.assign(MEANSES=hsb["MEANSES"].where(hsb["School"] != "1288", hsb["SES"]))
    spec = hlm.Levels("MathAch ~ 1", {"(Intercept)": "~ MEANSES"}, group="School")
    with pytest.raises(DataError, match=r"varies within 1 of 160 groups of School \(1288\)"):
        hlm.fit(spec, few)


def test_random_coefficient_constant_within_groups(hsb):
    spec = hlm.Levels("MathAch ~ MEANSES", group="School", random=["(Intercept)", "MEANSES"])
    with pytest.raises(DataError, match="'MEANSES' is random .* constant within every group"):
        hlm.fit(spec, hsb)


def test_missing_columns_and_derived_clash(hsb):
    with pytest.raises(DataError, match="not found"):
        hlm.fit(hlm.Levels("MathAch ~ nothing", group="School"), hsb)
    spec = hlm.Levels("MathAch ~ SES", group="School", center={"SES": "group"})
    with pytest.raises(DataError, match="SES_cwc"):
        hlm.fit(spec, hsb.assign(SES_cwc=1.0))
