"""Edge cases, the result object, conditional variances and invariances of the fit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hlm
from _extra_refs import as_vector, load_data, reference, sleepstudy_extra
from hlm.engines.log import FitLog
from hlm.results.fitted import MixedModelResult

SLEEP = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return hlm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def sleep_fit(sleep):
    return hlm.fit(SLEEP, sleep)


def fit_quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hlm.fit(*args, **kwargs)


# --- singular fit ------------------------------------------------------------------------


def test_dyestuff2_is_exactly_singular():
    with pytest.warns(hlm.SingularFitWarning):
        res = hlm.fit("Yield ~ 1 + (1 | Batch)", hlm.datasets.load("dyestuff2"))
    assert res.singular is True
    assert res.theta[0] == 0.0
    batch = res.varcorr().iloc[0]
    assert batch["grp"] == "Batch"
    assert batch["vcov"] == 0.0 and batch["sdcor"] == 0.0
    assert np.all(res.ranef()["Batch"].to_numpy() == 0.0)
    assert "singular" in res.summary()


def test_regular_fit_is_not_singular(sleep_fit):
    assert sleep_fit.singular is False
    assert "singular" not in sleep_fit.summary()


# --- rank-deficient fixed effects ------------------------------------------------------------


def test_collinear_column_is_dropped_with_a_warning(sleep):
    data = sleep.assign(Days2=2.0 * sleep["Days"])
    with pytest.warns(hlm.RankDeficiencyWarning, match="'Days2'"):
        res = hlm.fit("Reaction ~ Days + Days2 + (Days | Subject)", data)
    plain = hlm.fit(SLEEP, sleep)
    assert res.dropped_columns == ["Days2"]
    assert list(res.fixef.index) == ["(Intercept)", "Days"]
    assert res.criterion == pytest.approx(plain.criterion, rel=1e-10)
    np.testing.assert_allclose(res.fixef, plain.fixef, rtol=1e-8)
    np.testing.assert_allclose(res.fixef_se, plain.fixef_se, rtol=1e-6)
    assert "Days2" in res.summary()


def test_constant_column_is_aliased_with_the_intercept(sleep):
    with pytest.warns(hlm.RankDeficiencyWarning, match="'k'"):
        res = hlm.fit("Reaction ~ Days + k + (Days | Subject)", sleep.assign(k=3.0))
    assert list(res.fixef.index) == ["(Intercept)", "Days"]


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_nearly_collinear_column_is_kept_like_lme4(method):
    """Days2 = Days + 1e-4 * pattern: ~7e-5 of its norm lies outside (1, Days).

    lme4 keeps it (R's qr tolerance 1e-7 applies to norms, not squared norms).
    """
    ref = reference(f"sleepstudy_nearcollinear__{method}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", hlm.RankDeficiencyWarning)
        res = hlm.fit(ref["hlm_formula"], load_data(ref), method=method)
    assert list(res.fixef.index) == ref["fixef_names"]
    assert res.criterion == pytest.approx(ref["criterion"], abs=1e-6)
    for name in ref["fixef_names"]:
        assert abs(res.fixef[name] - ref["fixef"][name]) <= 1e-4 * ref["fixef_se"][name]


# --- unidentifiable models and bad input --------------------------------------------------------


@pytest.fixture(scope="module")
def tiny() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 40
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "g": np.tile(["a", "b", "c", "d"], n // 4),
            "one": "only",
            "row": [f"r{i}" for i in range(n)],
            "pair": [f"p{i // 2}" for i in range(n)],
        }
    )


@pytest.mark.parametrize(
    ("formula", "words"),
    [
        ("y ~ x + (1 | one)", ["'one'", "one level"]),
        ("y ~ x + (1 | row)", ["'row'", "40 levels for 40"]),
        ("y ~ x + (x | pair)", ["(x | pair)", "40 random effects for 40"]),
    ],
)
def test_unidentifiable_models_raise(tiny, formula, words):
    with pytest.raises(hlm.IdentifiabilityError) as info:
        hlm.fit(formula, tiny)
    for word in words:
        assert word in str(info.value)


def test_pair_groups_are_fine_for_a_random_intercept(tiny):
    res = fit_quietly("y ~ x + (1 | pair)", tiny)
    assert res.ngroups == {"pair": 20}


def test_formula_without_random_term(tiny):
    with pytest.raises(hlm.HLMError, match="random-effects term"):
        hlm.fit("y ~ x", tiny)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.inf])
def test_bad_weights_raise(tiny, bad):
    w = np.ones(len(tiny))
    w[3] = bad
    with pytest.raises(hlm.DataError, match="weights|infinite"):
        hlm.fit("y ~ x + (1 | g)", tiny, weights=w)
    with pytest.raises(hlm.DataError):
        hlm.fit("y ~ x + (1 | g)", tiny.assign(w=w), weights="w")


def test_weights_of_wrong_length(tiny):
    with pytest.raises(hlm.DataError, match="39"):
        hlm.fit("y ~ x + (1 | g)", tiny, weights=np.ones(len(tiny) - 1))


def test_method_is_case_insensitive(sleep):
    ml = hlm.fit(SLEEP, sleep, method="ml")
    ML = hlm.fit(SLEEP, sleep, method="ML")
    assert ml.method == "ML"
    assert ml.criterion == ML.criterion
    assert hlm.fit(SLEEP, sleep, method="reml").method == "REML"
    with pytest.raises(ValueError, match="method"):
        hlm.fit(SLEEP, sleep, method="OLS")


def test_categorical_random_slope_with_levels_after_row_1000():
    """The coding of a term's left side must see every level, not just the first rows."""
    rng = np.random.default_rng(3)
    k = np.repeat([0, 1, 2], [500, 500, 200])  # level 2 only in rows 1000..1199
    g = rng.integers(0, 40, len(k))
    y = k + rng.normal(size=(40, 3))[g, k] + rng.normal(size=len(k))
    data = pd.DataFrame({"y": y, "k": k, "ks": k.astype(str), "g": g.astype(str)})
    model = hlm.LinearMixedModel.from_formula("y ~ 1 + (0 + C(k) | g)", data)
    assert model.blocks[0].columns == ["C(k)[0]", "C(k)[1]", "C(k)[2]"]
    text = hlm.LinearMixedModel.from_formula("y ~ 1 + (0 + ks | g)", data)
    theta = text.cov.start()
    assert model.objective(theta) == pytest.approx(text.objective(theta), rel=1e-10)


# --- the result object -----------------------------------------------------------------------


def test_result_attributes_and_types(sleep_fit):
    res = sleep_fit
    assert isinstance(res, hlm.MixedModelResult)
    assert isinstance(res.fixef, pd.Series) and list(res.fixef.index) == ["(Intercept)", "Days"]
    assert isinstance(res.fixef_se, pd.Series)
    assert isinstance(res.vcov, pd.DataFrame)
    assert list(res.vcov.index) == list(res.vcov.columns) == list(res.fixef.index)
    np.testing.assert_allclose(np.sqrt(np.diag(res.vcov)), res.fixef_se, rtol=1e-14)
    assert isinstance(res.theta, np.ndarray) and res.theta.shape == (3,)
    assert not res.theta.flags.writeable
    assert isinstance(res.ngroups, dict) and res.ngroups == {"Subject": 18}
    assert isinstance(res.fit_log.evaluations, int) and res.fit_log.evaluations > 0
    assert isinstance(res.converged, bool) and res.converged is True
    assert isinstance(res.singular, bool)
    assert isinstance(res.sigma, float) and res.sigma > 0
    assert isinstance(res.criterion, float)
    assert isinstance(res.nobs, int) and res.nobs == 180
    assert isinstance(res.n_dropped, int) and res.n_dropped == 0
    assert res.method == "REML" and res.formula == SLEEP
    assert res.loglik == pytest.approx(-0.5 * res.criterion)
    assert res.aic == pytest.approx(res.criterion + 2 * 6)
    assert res.bic == pytest.approx(res.criterion + 6 * np.log(180))
    table = res.varcorr()
    assert list(table.columns) == ["grp", "var1", "var2", "vcov", "sdcor", "se"]


def test_fitted_plus_residuals_is_the_response(sleep, sleep_fit):
    total = sleep_fit.fitted() + sleep_fit.residuals()
    np.testing.assert_allclose(total.to_numpy(), sleep["Reaction"].to_numpy(), rtol=1e-12)


def test_fitted_and_residuals_follow_dropped_rows(sleep):
    data = sleep.copy()
    data.loc[[0, 17], "Reaction"] = np.nan
    res = hlm.fit(SLEEP, data)
    fitted, resid = res.fitted(), res.residuals()
    assert len(fitted) == len(resid) == 178
    assert 0 not in fitted.index and 17 not in fitted.index
    np.testing.assert_allclose(fitted + resid, data["Reaction"].dropna(), rtol=1e-12)


def test_fitted_values_from_their_parts(sleep, sleep_fit):
    ranef = sleep_fit.ranef()["Subject"]
    subject = sleep["Subject"].astype(str)
    b0 = ranef.loc[subject, "(Intercept)"].to_numpy()
    b1 = ranef.loc[subject, "Days"].to_numpy()
    beta = sleep_fit.fixef
    want = beta["(Intercept)"] + b0 + (beta["Days"] + b1) * sleep["Days"].to_numpy()
    np.testing.assert_allclose(sleep_fit.fitted().to_numpy(), want, rtol=1e-12)


def test_coef_is_fixef_plus_ranef(sleep_fit):
    coef = sleep_fit.coef()["Subject"]
    ranef = sleep_fit.ranef()["Subject"]
    assert list(coef.index) == list(ranef.index)
    for col in ("(Intercept)", "Days"):
        np.testing.assert_allclose(coef[col], sleep_fit.fixef[col] + ranef[col], rtol=1e-14)


# --- conditional variances of the random effects ---------------------------------------------


def test_ranef_var_from_the_raw_data(sleep, sleep_fit):
    """sigma^2 lambda (lambda' Z_g'Z_g lambda + I)^{-1} lambda' per subject, from the rows."""
    res = sleep_fit
    lam = np.array([[res.theta[0], 0.0], [res.theta[1], res.theta[2]]])
    cov = res.ranef_cov()[0]
    var = res.ranef_var()["Subject"]
    for j, (label, rows) in enumerate(sleep.groupby("Subject", observed=True)):
        Z = np.column_stack([np.ones(len(rows)), rows["Days"]])
        inner = np.linalg.inv(lam.T @ Z.T @ Z @ lam + np.eye(2))
        want = res.sigma**2 * lam @ inner @ lam.T
        np.testing.assert_allclose(cov[j], want, rtol=1e-9, atol=1e-12 * want.max())
        np.testing.assert_allclose(var.loc[str(label)], np.diag(want), rtol=1e-9)
    assert (var.to_numpy() > 0).all()


def test_ranef_var_with_weights_from_the_raw_data():
    data = sleepstudy_extra()
    res = hlm.fit("Reaction ~ Days + (1 | Subject)", data, weights="w")
    lam = res.theta[0]
    var = res.ranef_var()["Subject"]["(Intercept)"]
    for label, rows in data.groupby("Subject", observed=True):
        ztwz = rows["w"].sum()
        want = res.sigma**2 * lam * lam / (lam * lam * ztwz + 1.0)
        assert var.loc[str(label)] == pytest.approx(want, rel=1e-9)


CONDVAR_MODELS = ["sleepstudy_corr", "penicillin", "pastes_nested"]


def compare_condvar(res, ref, rtol):
    covs = dict(zip([b.group for b in res.model.blocks], res.ranef_cov(), strict=True))
    assert sorted(covs) == sorted(ref["ranef"])
    for group, want in ref["ranef"].items():
        levels = [str(v) for v in res.ranef()[group].index]
        assert levels == want["levels"]
        post = np.array(want["postVar"], dtype=float)  # (J, S, S)
        got = covs[group]
        assert got.shape == post.shape, group
        np.testing.assert_allclose(got, post, rtol=rtol, atol=rtol * np.abs(post).max())
        diag = res.ranef_var()[group].to_numpy()
        np.testing.assert_allclose(diag, np.diagonal(post, axis1=1, axis2=2), rtol=rtol)


@pytest.mark.parametrize("model_id", CONDVAR_MODELS)
def test_ranef_var_matches_lme4_condvar(model_id):
    ref = reference(f"{model_id}__REML")
    res = hlm.fit(ref["hlm_formula"], load_data(ref))
    compare_condvar(res, ref, rtol=1e-4)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("model_id", CONDVAR_MODELS + ["crossed_nested", "hsb_sex_slope"])
def test_ranef_var_at_lme4_theta(model_id, method):
    ref = reference(f"{model_id}__{method}")
    model = hlm.LinearMixedModel.from_formula(ref["hlm_formula"], load_data(ref), method=method)
    log = FitLog(engine="none", optimizer="none", evaluations=0, seconds=0.0, converged=True)
    at = MixedModelResult.from_model(model, as_vector(ref["theta"]), singular=False, fit_log=log)
    compare_condvar(at, ref, rtol=1e-8)


# --- invariances ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def penicillin() -> pd.DataFrame:
    return hlm.datasets.load("penicillin")


PEN = "diameter ~ 1 + (1 | plate) + (1 | sample)"


@pytest.mark.parametrize(("name", "formula"), [("sleep", SLEEP), ("penicillin", PEN)])
def test_row_order_does_not_matter(request, name, formula):
    data = request.getfixturevalue(name)
    order = np.random.default_rng(2).permutation(len(data))
    a = hlm.fit(formula, data)
    b = hlm.fit(formula, data.iloc[order])
    assert b.criterion == pytest.approx(a.criterion, rel=1e-8)
    np.testing.assert_allclose(b.fixef, a.fixef, rtol=1e-8)
    np.testing.assert_allclose(b.fixef_se, a.fixef_se, rtol=1e-6)


def test_relabelling_groups_does_not_matter(penicillin):
    a = hlm.fit(PEN, penicillin)
    plates = {p: f"P{99 - i}" for i, p in enumerate(penicillin["plate"].cat.categories)}
    samples = {s: f"S{9 - i}" for i, s in enumerate(penicillin["sample"].cat.categories)}
    relabelled = penicillin.assign(
        plate=penicillin["plate"].astype(str).map(plates),
        sample=penicillin["sample"].astype(str).map(samples),
    )
    b = hlm.fit(PEN, relabelled)
    assert b.criterion == pytest.approx(a.criterion, rel=1e-8)
    np.testing.assert_allclose(b.fixef, a.fixef, rtol=1e-8)
    np.testing.assert_allclose(b.theta, a.theta, rtol=1e-5)
    # the same plate keeps the same random effect under its new name
    ra, rb = a.ranef()["plate"]["(Intercept)"], b.ranef()["plate"]["(Intercept)"]
    for old, new in plates.items():
        assert rb[new] == pytest.approx(ra[old], rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("method", ["ML", "REML"])
@pytest.mark.parametrize("a", [-3.7, 0.01])
def test_affine_response_shifts_the_criterion(sleep, method, a):
    c = 1234.5
    n, p = len(sleep), 2
    d = n if method == "ML" else n - p
    shift = 2 * d * np.log(abs(a))
    moved = sleep.assign(Reaction=a * sleep["Reaction"] + c)
    m1 = hlm.LinearMixedModel.from_formula(SLEEP, sleep, method=method)
    m2 = hlm.LinearMixedModel.from_formula(SLEEP, moved, method=method)
    theta = [0.9, 0.02, 0.2]
    assert m2.objective(theta) - m1.objective(theta) == pytest.approx(shift, rel=1e-10)
    r1, r2 = m1.fit(), m2.fit()
    assert r2.criterion - r1.criterion == pytest.approx(shift, rel=1e-8)
    np.testing.assert_allclose(r2.theta, r1.theta, rtol=1e-5, atol=1e-7)
    want = a * r1.fixef.to_numpy() + np.array([c, 0.0])
    np.testing.assert_allclose(r2.fixef.to_numpy(), want, rtol=1e-7)
    assert r2.sigma == pytest.approx(abs(a) * r1.sigma, rel=1e-6)
