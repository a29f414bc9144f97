"""HLM-style output: reliability, ICC, chi-square tests, OLS by group, variance explained,
summary(style="hlm").

Checked two ways: against published HLM numbers for the High School and Beyond data
(Raudenbush & Bryk 2002, ch. 4; an HLM 6.02 output), with loose tolerances since those
fits were made by HLM, not lme4; and against direct per-group computations written here
with plain numpy (explicit OLS on each group's rows, explicit V_j for the GLS at level 3).
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
import scipy.linalg

import hlm
from hlm.errors import HLMError, NestingError

HSB_A = "MathAch ~ 1 + (1 | School)"
HSB_B = "MathAch ~ MEANSES + (1 | School)"
HSB_C = "MathAch ~ cses + (cses | School)"
HSB_D = "MathAch ~ MEANSES * cses + Sector * cses + (cses | School)"
SLEEP = "Reaction ~ Days + (Days | Subject)"


@cache
def data(name: str) -> pd.DataFrame:
    return hlm.datasets.load(name)


@cache
def fit(formula: str, name: str = "hsb"):
    return hlm.fit(formula, data(name))


def hsb_districts() -> pd.DataFrame:
    """60 HSB schools put into 15 made-up districts of 4: a three-level nesting."""
    df = data("hsb")
    df = df[df["School"].cat.codes < 60].copy()
    codes = df["School"].cat.codes.to_numpy()
    df["District"] = pd.Categorical([f"d{c % 15:02d}" for c in codes])
    return df


@cache
def fit3():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hlm.fit("MathAch ~ MEANSES + cses + (1 | District/School)", hsb_districts())


# ------------------------------------------------------------------ published HLM numbers
# Raudenbush & Bryk (2002), Hierarchical Linear Models, 2nd ed., ch. 4 (HSB, REML):
# one-way ANOVA: reliability .901, chi-square 1660.23 on 159 df, ICC .18;
# means-as-outcomes: reliability .740, chi-square 633.52 on 158 df;
# random-coefficient model: reliability of the intercept .907, chi-squares 1770.86 (intercept)
# and 213.44 (cses slope) on 159 df.  HLM's estimates differ from lme4's in the last digits,
# hence the tolerances.


def test_published_one_way_anova():
    res = fit(HSB_A)
    assert res.reliability().mean()["(Intercept)"] == pytest.approx(0.901, abs=0.002)
    test = res.variance_tests().loc[("School", "(Intercept)")]
    assert test["chi2"] == pytest.approx(1660.23, rel=1e-3)
    assert test["df"] == 159
    assert test["n_groups_used"] == 160
    assert test["p"] < 1e-10
    assert res.icc()["School"] == pytest.approx(0.18, abs=0.005)


def test_published_means_as_outcomes():
    res = fit(HSB_B)
    assert res.reliability().mean()["(Intercept)"] == pytest.approx(0.740, abs=0.002)
    test = res.variance_tests().loc[("School", "(Intercept)")]
    assert test["chi2"] == pytest.approx(633.52, rel=1e-3)
    assert test["df"] == 158


def test_published_random_coefficients():
    res = fit(HSB_C)
    assert res.reliability().mean()["(Intercept)"] == pytest.approx(0.907, abs=0.002)
    tests = res.variance_tests()
    assert tests.loc[("School", "(Intercept)"), "chi2"] == pytest.approx(1770.86, rel=1e-3)
    assert tests.loc[("School", "cses"), "chi2"] == pytest.approx(213.44, rel=1e-3)
    assert list(tests["df"]) == [159, 159]


def test_published_hlm6_level1_ols():
    # HLM 6.02 output, HSB with MINORITY, FEMALE and SES random ("Level-1 OLS regressions";
    # http://www1.udel.edu/it/help/math-stat-software/hlm-statistical-output-file.html).
    # HLM lists no OLS fit for schools 1308, 1317, 1433 (one sex only, or no minority
    # students): rank deficient, so unusable here too.
    published = {
        "1224": (12.88837, -8.72320, -3.00562, 1.47322),
        "1288": (13.13595, -2.86801, 0.88435, 2.71298),
        "1296": (3.68352, 5.55066, -1.69086, 0.91791),
        "1358": (12.71682, -9.79049, -1.27271, 3.29899),
        "1374": (14.61781, -9.02146, -4.15738, 4.69677),
        "1461": (15.12214, -14.59908, -2.15309, 5.02255),
        "1477": (14.47103, -2.04262, -0.70881, 1.10533),
    }
    res = fit("MathAch ~ Minority + Sex + SES + (Minority + Sex + SES | School)")
    table = res.ols_by_group()
    ols = table["ols"]
    for school, values in published.items():
        np.testing.assert_allclose(ols.loc[school].to_numpy(), values, atol=6e-6)
    assert not table.loc[["1308", "1317", "1433"], ("usable", "")].any()


# ------------------------------------------------------------------ direct computations
def direct_by_group(res, df, group, zcols, level2):
    """OLS per group with numpy, V_j = sigma^2 (Z_j'Z_j)^{-1}, gamma' w_j by hand."""
    T = res._est.Sigma[0]
    s2 = res.sigma**2
    fe = res.fixef
    out = {}
    for label, g in df.groupby(group, observed=True):
        Z = np.column_stack([np.ones(len(g))] + [g[c].to_numpy(float) for c in zcols])
        y = g[res.model.spec.response].to_numpy(float)
        beta_hat = np.linalg.lstsq(Z, y, rcond=None)[0]
        V = s2 * np.linalg.inv(Z.T @ Z)
        pred = np.array([sum(fe[k] * w(g) for k, w in eq.items()) for eq in level2])
        out[str(label)] = (beta_hat, V, pred)
    return T, out


def hsb_d_level2():
    def one(g):
        return 1.0

    def meanses(g):
        return float(g["MEANSES"].iloc[0])

    def catholic(g):
        return float(g["Sector"].iloc[0] == "Catholic")

    intercept = {"(Intercept)": one, "MEANSES": meanses, "Sector[T.Catholic]": catholic}
    slope = {"cses": one, "MEANSES:cses": meanses, "Sector[T.Catholic]:cses": catholic}
    return [intercept, slope]


@pytest.mark.parametrize(
    "formula,name,group,zcols,level2",
    [
        (HSB_D, "hsb", "School", ["cses"], hsb_d_level2()),
        (SLEEP, "sleepstudy", "Subject", ["Days"], None),
    ],
)
def test_against_direct_ols(formula, name, group, zcols, level2):
    res = fit(formula, name)
    if level2 is None:
        level2 = [{"(Intercept)": lambda g: 1.0}, {zcols[0]: lambda g: 1.0}]
    T, direct = direct_by_group(res, data(name), group, zcols, level2)
    labels = list(direct)
    beta_hat = np.array([direct[k][0] for k in labels])
    V = np.array([direct[k][1] for k in labels])
    pred = np.array([direct[k][2] for k in labels])
    v = np.diagonal(V, axis1=1, axis2=2)
    rel = np.diag(T) / (np.diag(T) + v)
    np.testing.assert_allclose(res.reliability().loc[labels].to_numpy(), rel, rtol=1e-9)
    chi2 = ((beta_hat - pred) ** 2 / v).sum(axis=0)
    tests = res.variance_tests()
    np.testing.assert_allclose(tests["chi2"].to_numpy(), chi2, rtol=1e-9)
    assert list(tests["df"]) == [len(labels) - len(eq) for eq in level2]
    table = res.ols_by_group().loc[labels]
    np.testing.assert_allclose(table["ols"].to_numpy(), beta_hat, rtol=1e-9, atol=1e-9)
    eb = pred + res.ranef()[group].loc[labels].to_numpy()
    np.testing.assert_allclose(table["eb"].to_numpy(), eb, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(table["shrinkage"].to_numpy(), eb - beta_hat, atol=1e-8)
    sizes = data(name)[group].astype(str).value_counts().loc[labels]
    np.testing.assert_array_equal(table[("n", "")].to_numpy(), sizes.to_numpy())


def test_eb_is_coef_without_level2_predictors():
    res = fit(HSB_C)
    table = res.ols_by_group()
    coef = res.coef()["School"][["(Intercept)", "cses"]]
    np.testing.assert_allclose(table["eb"].to_numpy(), coef.to_numpy(), rtol=1e-12)


def test_unusable_groups_left_out_and_counted():
    df = data("sleepstudy").copy()
    subjects = df["Subject"].cat.categories
    # one subject with a single row, one whose rows all have the same Days: no own OLS fit
    one_row = (df["Subject"] == subjects[0]) & (df["Days"] > 0)
    same_days = (df["Subject"] == subjects[1]) & (df["Days"] != 3)
    df = df.loc[~one_row & ~same_days].copy()
    df.loc[df["Subject"] == subjects[1], "Days"] = 3
    df = pd.concat([df, df[df["Subject"] == subjects[1]]])  # two rows, same Days
    res = hlm.fit(SLEEP, df)
    table = res.ols_by_group()
    assert not table.loc[[str(subjects[0]), str(subjects[1])], ("usable", "")].any()
    assert table[("usable", "")].sum() == 16
    assert table.loc[str(subjects[0]), ("n", "")] == 1
    rel = res.reliability()
    assert rel.loc[[str(subjects[0]), str(subjects[1])]].isna().all().all()
    assert rel.notna().all(axis=1).sum() == 16
    tests = res.variance_tests()
    assert list(tests["n_groups_used"]) == [16, 16]
    assert list(tests["df"]) == [15, 15]
    assert np.isfinite(tests["chi2"]).all()
    assert "use 16 of 18 groups" in res.summary(style="hlm")


# ------------------------------------------------------------------ three levels
def test_three_levels_against_direct_gls():
    res = fit3()
    df = hsb_districts()
    fe = res.fixef
    s2 = res.sigma**2
    H = res._hierarchy
    school, district = H.levels
    assert (school.group, district.group) == ("School:District", "District")
    tau_s, tau_d = float(school.T[0, 0]), float(district.T[0, 0])
    xb = fe["(Intercept)"] + fe["MEANSES"] * df["MEANSES"] + fe["cses"] * df["cses"]
    e = df["MathAch"] - xb
    b_d = res.ranef()["District"]["(Intercept)"]
    # level 3: GLS of the marginal residual on 1 with V = blockdiag(s2 I + tau_s 11')
    d3, v3 = [], []
    for _, g in df.groupby("District", observed=True):
        blocks = [
            s2 * np.eye(len(s)) + tau_s * np.ones((len(s), len(s)))
            for _, s in g.groupby("School", observed=True)
        ]
        order = np.concatenate([s.index for _, s in g.groupby("School", observed=True)])
        Vinv = np.linalg.inv(scipy.linalg.block_diag(*blocks))
        one = np.ones(len(order))
        info = one @ Vinv @ one
        d3.append(one @ Vinv @ e.loc[order].to_numpy() / info)
        v3.append(1.0 / info)
    d3, v3 = np.array(d3), np.array(v3)
    np.testing.assert_allclose(res.reliability("District")["(Intercept)"], tau_d / (tau_d + v3))
    tests = res.variance_tests()
    assert tests.loc[("District", "(Intercept)"), "chi2"] == pytest.approx(
        float(np.sum(d3**2 / v3)), rel=1e-9
    )
    # MEANSES varies within (made-up) districts: only the intercept is a level-3 gamma
    assert tests.loc[("District", "(Intercept)"), "df"] == 15 - 1
    assert tests.loc[("School:District", "(Intercept)"), "df"] == 60 - 2
    # level 2: OLS of the residual less the district's mode, V = s2 / n_j
    sch = df.assign(r=e - b_d.loc[df["District"].astype(str)].to_numpy())
    g = sch.groupby(["School", "District"], observed=True)
    labels = [f"{s}:{d}" for s, d in g.size().index]
    d2, v2 = g["r"].mean().to_numpy(), s2 / g.size().to_numpy()
    rel2 = res.reliability("School:District")["(Intercept)"].loc[labels].to_numpy()
    np.testing.assert_allclose(rel2, tau_s / (tau_s + v2), rtol=1e-9)
    ols2 = res.ols_by_group("School:District").loc[labels]
    pred2 = fe["(Intercept)"] + fe["MEANSES"] * g["MEANSES"].first().to_numpy()
    np.testing.assert_allclose(ols2[("ols", "(Intercept)")], d2 + pred2, rtol=1e-9)
    assert tests.loc[("School:District", "(Intercept)"), "chi2"] == pytest.approx(
        float(np.sum(d2**2 / v2)), rel=1e-9
    )
    icc = res.icc()
    total = tau_s + tau_d + s2
    np.testing.assert_allclose(icc.to_numpy(), [tau_s / total, tau_d / total])
    assert list(icc.index) == ["School:District", "District"]


# ------------------------------------------------------------------ ICC, variance explained
def test_icc_random_intercept_and_slopes():
    res = fit(HSB_A)
    vc = res.varcorr()
    tau, s2 = vc["vcov"].iloc[0], vc["vcov"].iloc[-1]
    assert res.icc()["School"] == pytest.approx(tau / (tau + s2), rel=1e-12)
    res = fit(HSB_C)
    tau00 = res._est.Sigma[0][0, 0]
    assert res.icc()["School"] == pytest.approx(tau00 / (tau00 + res.sigma**2), rel=1e-12)


def test_variance_explained():
    base, fuller = fit(HSB_A), fit(HSB_B)
    out = hlm.variance_explained(base, fuller)
    t0, t1 = base._est.Sigma[0][0, 0], fuller._est.Sigma[0][0, 0]
    row = out.loc[("School", "(Intercept)")]
    assert row["proportion"] == pytest.approx((t0 - t1) / t0, rel=1e-12)
    assert row["proportion"] == pytest.approx(0.69, abs=0.01)  # R&B ch. 4: about .69
    res = out.loc[("Residual", "")]
    assert res["proportion"] == pytest.approx(1 - fuller.sigma**2 / base.sigma**2, rel=1e-9)
    both = hlm.variance_explained(fit(HSB_C), fit(HSB_D))
    assert list(both.index) == [("School", "(Intercept)"), ("School", "cses"), ("Residual", "")]
    with pytest.raises(HLMError, match="same rows"):
        hlm.variance_explained(base, fit(SLEEP, "sleepstudy"))


# ------------------------------------------------------------------ errors and layout
def test_crossed_model_raises():
    df = data("sleepstudy").assign(DayF=lambda d: d["Days"].astype(str))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the DayF variance is on the boundary
        res = hlm.fit("Reaction ~ Days + (1 | Subject) + (1 | DayF)", df)
    for call in (res.reliability, res.icc, res.variance_tests, res.ols_by_group):
        with pytest.raises(NestingError, match="nested designs"):
            call()
    with pytest.raises(NestingError, match="crossed"):
        res.robust_se  # noqa: B018
    assert isinstance(NestingError("x"), HLMError)


def test_unknown_group_and_style():
    res = fit(HSB_A)
    with pytest.raises(HLMError, match="not a grouping factor"):
        res.reliability("Sector")
    with pytest.raises(ValueError, match="style"):
        res.summary(style="stata")
    assert res.summary() == res.summary(style="lme4")


def test_summary_hlm_layout():
    res = fit(HSB_D)
    text = res.summary(style="hlm")
    assert "Final estimation of fixed effects" in text
    assert "Final estimation of variance components" in text
    assert "For (Intercept), random over School" in text
    assert "For cses slope, random over School" in text
    assert "Robust SE (CR2)" in text
    assert f"{res.robust_se['MEANSES']:.6f}" in text
    tests = res.variance_tests()
    assert f"{tests.loc[('School', 'cses'), 'chi2']:.5f}" in text
    assert f"{res.reliability().mean()['cses']:.3f}" in text
    assert "Mixed model: " + HSB_D in text


class _Spec:
    """A stand-in for a level-equation spec: prepare(), equations(), gamma_map()."""

    def prepare(self, df):
        return HSB_B, df

    def equations(self, latex=False):
        return "Level-1: MathAch = beta_0 + r\nLevel-2: beta_0 = gamma_00 + gamma_01 MEANSES + u_0"

    def gamma_map(self):
        return {"gamma_00": "(Intercept)", "gamma_01": "MEANSES"}


def test_summary_uses_level_equations():
    res = hlm.fit(_Spec(), data("hsb"))
    text = res.summary(style="hlm")
    assert "Level-2: beta_0 = gamma_00 + gamma_01 MEANSES + u_0" in text
    assert "gamma_01  MEANSES" in text
    assert "Mixed model:" not in text


def test_offset_is_part_of_the_response():
    df = data("sleepstudy")
    plain = fit(SLEEP, "sleepstudy")
    shifted = hlm.fit(SLEEP, df, offset=5.0 * df["Days"])
    assert shifted.fixef["Days"] == pytest.approx(plain.fixef["Days"] - 5.0, rel=1e-6)
    np.testing.assert_allclose(shifted.robust_se, plain.robust_se, rtol=1e-6)
    np.testing.assert_allclose(
        shifted.variance_tests()["chi2"], plain.variance_tests()["chi2"], rtol=1e-6
    )
    ols0, ols1 = plain.ols_by_group()["ols"], shifted.ols_by_group()["ols"]
    np.testing.assert_allclose(ols1["Days"], ols0["Days"] - 5.0, rtol=1e-9)
    np.testing.assert_allclose(ols1["(Intercept)"], ols0["(Intercept)"], rtol=1e-9)
