"""The named special cases (``hlm.random_effects_anova`` ...): the specs they build, their
fits against lme4 references and against direct computations."""

from __future__ import annotations

import numpy as np
import pytest

import hlm
from test_reference_lme4 import as_vector, reference

CONSTRUCTORS = [
    (
        lambda: hlm.random_effects_anova("y", "g"),
        hlm.Levels("y ~ 1", group="g"),
        "y ~ 1 + (1 | g)",
    ),
    (
        lambda: hlm.means_as_outcomes("y", ["w", "v"], "g"),
        hlm.Levels("y ~ 1", {"(Intercept)": "~ w + v"}, group="g"),
        "y ~ w + v + (1 | g)",
    ),
    (
        lambda: hlm.varying_intercepts("y", "x + z", "g"),
        hlm.Levels("y ~ x + z", group="g", random=["(Intercept)"]),
        "y ~ x + z + (1 | g)",
    ),
    (
        lambda: hlm.varying_intercepts("y", "x", "g", level2="~ w"),
        hlm.Levels("y ~ x", {"(Intercept)": "~ w"}, group="g"),
        "y ~ w + x + (1 | g)",
    ),
    (
        lambda: hlm.ancova("y", "x", "g"),
        hlm.Levels("y ~ x", {"(Intercept)": "~ C(g)"}, group="g", random=[]),
        "y ~ C(g) + x",
    ),
    (
        lambda: hlm.random_coefficients("y", ["x", "z"], "g"),
        hlm.Levels("y ~ x + z", group="g", random=["(Intercept)", "x", "z"]),
        "y ~ x + z + (x + z | g)",
    ),
    (
        lambda: hlm.intercepts_and_slopes_as_outcomes("y", "x", "w", "g"),
        hlm.Levels(
            "y ~ x", {"(Intercept)": "~ w", "x": "~ w"}, group="g", random=["(Intercept)", "x"]
        ),
        "y ~ w + x + w:x + (x | g)",
    ),
    (
        lambda: hlm.intercepts_and_slopes_as_outcomes("y", "x", "w", "g", random=["(Intercept)"]),
        hlm.Levels("y ~ x", {"(Intercept)": "~ w", "x": "~ w"}, group="g"),
        "y ~ w + x + w:x + (1 | g)",
    ),
    (
        lambda: hlm.cross_level_regression("y", "x", "w", "g"),
        hlm.Levels("y ~ x", {"(Intercept)": "~ w", "x": "~ w"}, group="g", random=[]),
        "y ~ w + x + w:x",
    ),
    (
        lambda: hlm.additive_variance_components("y", "class", "school"),
        hlm.Levels("y ~ 1", group="class", group3="school"),
        "y ~ 1 + (1 | school) + (1 | class:school)",
    ),
]


@pytest.mark.parametrize(("make", "spec", "formula"), CONSTRUCTORS)
def test_constructors_build_the_documented_spec(make, spec, formula):
    built = make()
    assert built == spec
    assert built.mixed_formula() == formula


@pytest.mark.parametrize(
    "func",
    [
        hlm.random_effects_anova,
        hlm.means_as_outcomes,
        hlm.varying_intercepts,
        hlm.ancova,
        hlm.random_coefficients,
        hlm.intercepts_and_slopes_as_outcomes,
        hlm.cross_level_regression,
        hlm.additive_variance_components,
    ],
)
def test_docstrings_give_the_equations(func):
    doc = func.__doc__
    assert "Level 1:" in doc and "Level 2:" in doc and "Mixed:" in doc
    assert func(*["y", "x", "w", "g"][: func.__code__.co_argcount]).equations()


def test_hsb_models_as_special_cases():
    hsb = hlm.datasets.load("hsb")
    fits = {
        "hsb_a_anova": hlm.random_effects_anova("MathAch", "School"),
        "hsb_b_means": hlm.means_as_outcomes("MathAch", "MEANSES", "School"),
        "hsb_c_rcoef": hlm.random_coefficients("MathAch", "cses", "School"),
        "hsb_d_slopes_outcomes": hlm.intercepts_and_slopes_as_outcomes(
            "MathAch", "cses", ["MEANSES", "Sector"], "School"
        ),
    }
    for model_id, spec in fits.items():
        ref = reference(f"{model_id}__REML")
        model = hlm.LinearMixedModel.from_formula(spec, hsb)
        assert model.objective(as_vector(ref["theta"])) == pytest.approx(ref["criterion"], rel=1e-8)


def test_ancova_slope_is_the_pooled_within_group_slope():
    data = hlm.datasets.load("sleepstudy")
    res = hlm.fit(hlm.ancova("Reaction", "Days", "Subject"), data)
    assert isinstance(res, hlm.OLSResult)
    assert len(res.fixef) == 1 + 17 + 1  # intercept, 17 subject contrasts, Days
    g = data["Subject"].astype(str)
    x = data["Days"] - data.groupby(g)["Days"].transform("mean")
    y = data["Reaction"] - data.groupby(g)["Reaction"].transform("mean")
    assert res.fixef["Days"] == pytest.approx(float((x * y).sum() / (x * x).sum()), rel=1e-10)
    direct = hlm.ols("Reaction ~ C(Subject) + Days", data)
    np.testing.assert_allclose(res.fixef.to_numpy(), direct.fixef.to_numpy(), rtol=1e-10)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_additive_variance_components_is_lme4_nesting(method):
    """Pastes: strength of paste samples from casks nested in batches (lme4's Pastes)."""
    ref = reference(f"pastes__{method}")
    assert ref["formula"] == "strength ~ 1 + (1 | batch/cask)"
    spec = hlm.additive_variance_components("strength", "cask", "batch")
    res = hlm.fit(spec, hlm.datasets.load("pastes"), method=method)
    assert ref["criterion"] - 1e-3 <= res.criterion <= ref["criterion"] + 1e-6
    assert res.ngroups == {"cask:batch": 30, "batch": 10}
    sds = dict(zip(res.varcorr()["grp"], res.varcorr()["sdcor"], strict=True))
    assert sds["cask:batch"] == pytest.approx(ref["varcomp"]["cask:batch|(Intercept)"], rel=1e-4)
    assert sds["batch"] == pytest.approx(ref["varcomp"]["batch|(Intercept)"], rel=1e-4)
    assert sds["Residual"] == pytest.approx(ref["sigma"], rel=1e-4)
