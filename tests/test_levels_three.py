"""Three-level ``hlm.Levels`` specs: the same fit as lme4 nesting, and recovery of known
parameters on simulated data (rows in children in schools; child ids repeat across schools).

Simulated model (``W`` at level 3, ``X`` at level 2, ``x`` at level 1)::

    y = 10 + 1.0 W + 0.5 X + (2.0 + 0.3 W) x + u0 + r0 + (u1 + r1) x + e
    u ~ N(0, diag(1.0^2, 0.5^2)) per school, r ~ N(0, diag(0.8^2, 0.4^2)) per child,
    e ~ N(0, 1)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hlm
from hlm import DataError, FormulaError

TRUE_FIXEF = {"(Intercept)": 10.0, "W": 1.0, "X": 0.5, "x": 2.0, "W:x": 0.3}
TRUE_SD = {
    ("school", "(Intercept)"): 1.0,
    ("school", "x"): 0.5,
    ("child:school", "(Intercept)"): 0.8,
    ("child:school", "x"): 0.4,
}
NESTED = "y ~ W + X + x + W:x + (x | school/child)"


def simulate(seed: int = 20260101, K: int = 50, J: int = 8, n: int = 8) -> pd.DataFrame:
    """K schools with J children each (ids c0..c{J-1} in every school), n rows per child."""
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(K), J * n)
    unit = np.repeat(np.arange(K * J), n)
    W, X, x = rng.normal(size=K), rng.normal(size=K * J), rng.normal(size=K * J * n)
    u = rng.normal(size=(K, 2)) * [1.0, 0.5]
    r = rng.normal(size=(K * J, 2)) * [0.8, 0.4]
    y = (
        10
        + 1.0 * W[school]
        + 0.5 * X[unit]
        + (2.0 + 0.3 * W[school]) * x
        + u[school, 0]
        + r[unit, 0]
        + (u[school, 1] + r[unit, 1]) * x
        + rng.normal(size=len(x))
    )
    return pd.DataFrame(
        {
            "y": y,
            "x": x,
            "X": X[unit],
            "W": W[school],
            "school": [f"s{k}" for k in school],
            "child": [f"c{j % J}" for j in unit],
        }
    )


def three_level_spec(**changes) -> hlm.Levels:
    kwargs = dict(
        group="child",
        random=["(Intercept)", "x"],
        group3="school",
        level3={("(Intercept)", "(Intercept)"): "~ W", ("x", "(Intercept)"): "~ W"},
    )
    kwargs.update(changes)
    return hlm.Levels("y ~ x", {"(Intercept)": "~ X"}, **kwargs)


@pytest.fixture(scope="module")
def data():
    return simulate()


@pytest.fixture(scope="module")
def fits(data):
    spec = three_level_spec()
    return spec, hlm.fit(spec, data), hlm.fit(NESTED, data)


def test_spec_and_mixed_formula():
    spec = three_level_spec()
    assert spec.random3 == (("(Intercept)", "(Intercept)"), ("x", "(Intercept)"))  # default
    assert spec.mixed_formula() == ("y ~ W + X + x + W:x + (x | school) + (x | child:school)")
    assert spec.gamma_map() == {
        "gamma_000": "(Intercept)",
        "gamma_001": "W",
        "gamma_010": "X",
        "gamma_100": "x",
        "gamma_101": "W:x",
    }


def test_equations():
    text = three_level_spec().equations()
    assert "    y_ijk = pi_0jk + pi_1jk*x_ijk + e_ijk" in text
    assert "Level-2 model (child in school)" in text
    assert "    pi_0jk = beta_00k + beta_01k*X_jk + r_0jk" in text
    assert "    pi_1jk = beta_10k + r_1jk" in text
    assert "    beta_00k = gamma_000 + gamma_001*W_k + u_00k" in text
    assert "    beta_01k = gamma_010\n" in text
    assert "    beta_10k = gamma_100 + gamma_101*W_k + u_10k" in text
    assert "+ u_00k + u_10k*x_ijk + r_0jk + r_1jk*x_ijk + e_ijk" in text
    tex = three_level_spec().equations(latex=True)
    assert r"\gamma_{101}\,\text{W}_{k}\,\text{x}_{ijk}" in tex


def test_same_fit_as_lme4_nesting(fits):
    spec, ours, nested = fits
    assert ours.model.source is spec
    assert ours.ngroups == nested.ngroups == {"child:school": 400, "school": 50}
    assert ours.model.theta_names == nested.model.theta_names
    assert abs(ours.criterion - nested.criterion) <= 1e-8 * abs(nested.criterion)
    np.testing.assert_allclose(ours.fixef[nested.fixef.index], nested.fixef, rtol=1e-6)
    np.testing.assert_allclose(ours.theta, nested.theta, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_same_objective_as_lme4_nesting(data, fits, method):
    spec = fits[0]
    a = hlm.LinearMixedModel.from_formula(spec, data, method=method)
    b = hlm.LinearMixedModel.from_formula(NESTED, data, method=method)
    rng = np.random.default_rng(7)
    for theta in [fits[1].theta, fits[1].theta * 1.3, np.abs(rng.normal(size=6))]:
        assert a.objective(theta) == pytest.approx(b.objective(theta), rel=1e-10)


def test_recovers_known_parameters(fits):
    _, res, _ = fits
    for name, truth in TRUE_FIXEF.items():
        # 3.5 standard errors: a two-sided test at about the 0.05% level per coefficient
        assert abs(res.fixef[name] - truth) <= 3.5 * res.fixef_se[name], name
    vc = res.varcorr()
    for (grp, var), truth in TRUE_SD.items():
        row = vc[(vc["grp"] == grp) & (vc["var1"] == var) & vc["var2"].isna()]
        # an SD from J units has a standard error of about SD / sqrt(2 J): ~10% for the
        # 50 schools, ~4% for the 400 children (plus the share of the fit's noise)
        tol = 0.35 if grp == "school" else 0.2
        assert float(row["sdcor"].iloc[0]) == pytest.approx(truth, rel=tol), (grp, var)
    assert res.sigma == pytest.approx(1.0, rel=0.05)


def test_level3_predictor_must_be_constant_within_schools(data):
    spec = three_level_spec(level3={("(Intercept)", "(Intercept)"): "~ V"})
    with pytest.raises(DataError, match=r"'V' in the level-3 equation .* 50 of 50 groups of sc"):
        hlm.fit(spec, data.assign(V=data["X"]))  # a level-2 variable


def test_level2_predictor_checked_within_child_in_school(data):
    spec = hlm.Levels("y ~ 1", {"(Intercept)": "~ x"}, group="child", group3="school")
    with pytest.raises(DataError, match=r"groups of child:school \(c0:s0, "):
        hlm.fit(spec, data)


def test_random3_slope_of_a_level3_constant_is_refused(data):
    spec = hlm.Levels("y ~ W", group="child", group3="school", random3=[("W", "(Intercept)")])
    with pytest.raises(DataError, match="random3"):
        hlm.fit(spec, data)


def test_three_level_key_errors():
    with pytest.raises(FormulaError, match="has no term 'Z'"):
        three_level_spec(level3={("(Intercept)", "Z"): "~ W"})
    with pytest.raises(FormulaError, match="must be a pair"):
        three_level_spec(random3=["(Intercept)"])
    with pytest.raises(FormulaError, match="must differ"):
        hlm.Levels("y ~ x", group="g", group3="g")


def test_centring_at_three_levels(data):
    spec = hlm.Levels(
        "y ~ x",
        {"(Intercept)": "~ x_mean"},
        group="child",
        group3="school",
        level3={("(Intercept)", "(Intercept)"): "~ x_mean3"},
        center={"x": ["group", "mean", "mean3"]},
    )
    formula, derived = spec.prepare(data)
    assert formula == "y ~ x_mean3 + x_mean + x_cwc + (1 | school) + (1 | child:school)"
    unit = data["school"] + ":" + data["child"]
    np.testing.assert_allclose(derived["x_mean"], data.groupby(unit)["x"].transform("mean"))
    np.testing.assert_allclose(derived["x_cwc"], data["x"] - derived["x_mean"])
    np.testing.assert_allclose(derived["x_mean3"], data.groupby("school")["x"].transform("mean"))
