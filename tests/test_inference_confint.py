"""Confidence intervals against lme4 (tests/fixtures/inference/profile.json).

lme4's profile limits come from splines through profile points, so they are compared
relative to the interval's width; the profile itself (the signed root zeta at lme4's
points) is compared point by point.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from _inference_refs import cases, fit, strs, vec
from hlm.inference.profile import Profiler

PROFILE = cases("profile")


def _fit(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(case["data"], case["formula"])


# the slowest profiles (a few seconds each on a loaded 2-core machine) run with -m slow
SLOW_PROFILES = {"sleep_uncorr", "hsb_rcoef"}


def _profile_params():
    out = []
    for case_id in sorted(PROFILE):
        for level in (0.95, 0.90):
            if level == 0.90 and case_id not in ("dyestuff", "sleep_corr", *SLOW_PROFILES):
                continue
            marks = [pytest.mark.slow] if case_id in SLOW_PROFILES else []
            out.append(pytest.param(case_id, level, marks=marks, id=f"{case_id}-{level}"))
    return out


@pytest.mark.parametrize(("case_id", "level"), _profile_params())
def test_profile_intervals_match_lme4(case_id, level):
    case = PROFILE[case_id]
    res = _fit(case)
    names = strs(case["names"])
    keys = {0.95: ("lower", "upper"), 0.90: ("lower90", "upper90")}
    for lo_key, hi_key in [keys[level]]:
        ci = res.confint("profile", level=level)
        assert list(ci.index) == names  # lme4's names and order
        lo, hi = vec(case[lo_key]), vec(case[hi_key])
        width = hi - lo
        # lme4 interpolates splines (and falls back to linear interpolation for the hsb
        # correlation); the limits agree to a small fraction of the width
        tol = 1.5e-3 if case_id == "hsb_rcoef" else 5e-4
        np.testing.assert_array_less(np.abs(ci["lower"].to_numpy() - lo), tol * width)
        np.testing.assert_array_less(np.abs(ci["upper"].to_numpy() - hi), tol * width)


@pytest.mark.parametrize("case_id", ["dyestuff", "sleep_corr"])
def test_profile_zeta_at_lme4_points(case_id):
    case = PROFILE[case_id]
    res = _fit(case)
    prof = Profiler(res)
    assert prof.base == pytest.approx(case["ml_deviance"], abs=1e-6)
    vnames = prof.vp.names()
    fnames = list(res.fixef.index)
    for par, pts in case["profile_points"].items():
        for value, zeta in zip(vec(pts["value"]), vec(pts["zeta"]), strict=True):
            if abs(zeta) > 3:  # far tails: lme4's own profile fits are not always optimal
                continue
            if par in vnames:
                mine = prof.zeta_varpar(vnames.index(par), value)
            else:
                mine = prof.zeta_beta(fnames.index(par), value)
            assert mine == pytest.approx(zeta, abs=2e-4), (par, value)
            # never a worse optimum than lme4's
            assert mine * mine <= zeta * zeta + 1e-4, (par, value)


def test_singular_fit_sd_interval_starts_at_zero():
    case = PROFILE["dyestuff2"]
    ci = _fit(case).confint("profile")
    assert ci.loc["sd_(Intercept)|Batch", "lower"] == 0.0


def test_wald_intervals_fixed_effects_as_lme4():
    for case_id in ["sleep_corr", "hsb_rcoef", "penicillin"]:
        case = PROFILE[case_id]
        res = _fit(case)
        ci = res.confint("wald")
        nfix = len(res.fixef)
        se = res.fixef_se.to_numpy()
        lo = vec([np.nan if v is None else v for v in case["wald_lower"]])[-nfix:]
        hi = vec([np.nan if v is None else v for v in case["wald_upper"]])[-nfix:]
        np.testing.assert_allclose(ci["lower"].to_numpy()[-nfix:], lo, atol=1e-4 * se.max())
        np.testing.assert_allclose(ci["upper"].to_numpy()[-nfix:], hi, atol=1e-4 * se.max())


def test_wald_variance_intervals_delta_method_on_log_scale():
    res = _fit(PROFILE["sleep_corr"])
    ci = res.confint("wald")
    vc = res.varcorr()
    est = vc["sdcor"].to_numpy()[[0, 2, 1, 3]]  # varcorr: SDs, then the correlation
    vci = ci.iloc[:4]
    assert ((vci["lower"] < est) & (est < vci["upper"])).all()
    # symmetric on the log scale for SDs: estimate = geometric mean of the limits
    sd = vci.loc[["sd_(Intercept)|Subject", "sd_Days|Subject", "sigma"]]
    np.testing.assert_allclose(
        np.sqrt(sd["lower"] * sd["upper"]), [est[0], est[2], est[3]], rtol=1e-10
    )
    # a zero SD has no log-scale interval
    d2 = _fit(PROFILE["dyestuff2"]).confint("wald")
    assert d2.iloc[0].isna().all()


def test_lme4_style_names_and_parm():
    res = _fit(PROFILE["sleep_corr"])
    ci = res.confint("wald", names="lme4")
    assert list(ci.index[:4]) == [".sig01", ".sig02", ".sig03", ".sigma"]
    assert list(res.confint("wald", parm="beta_").index) == ["(Intercept)", "Days"]
    assert list(res.confint("profile", parm=["Days"]).index) == ["Days"]
    with pytest.raises(ValueError, match="unknown parameter"):
        res.confint("wald", parm=["nope"])
    with pytest.raises(ValueError, match="method must be"):
        res.confint("bayes")
    with pytest.raises(ValueError, match="level"):
        res.confint(level=95)


def test_repeated_grouping_factor_names_like_lme4():
    case = PROFILE["sleep_uncorr"]
    ci = _fit(case).confint("wald")
    assert list(ci.index[:3]) == ["sd_(Intercept)|Subject", "sd_Days|Subject", "sigma"]


# ---------------------------------------------------------------- parametric bootstrap
def test_bootstrap_is_seeded_and_independent_of_processes():
    res = _fit(PROFILE["dyestuff"])
    a = res.bootstrap(12, seed=7, n_jobs=1, progress=False)
    b = res.bootstrap(12, seed=7, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(a, b)
    c = res.bootstrap(12, seed=8, n_jobs=1, progress=False)
    assert not np.allclose(a.to_numpy(), c.to_numpy())
    assert list(a.columns) == ["sd_(Intercept)|Batch", "sigma", "(Intercept)"]
    assert a.attrs["converged"].all()


def test_bootstrap_percentile_intervals():
    res = _fit(PROFILE["sleep_corr"])
    ci = res.confint("boot", nsim=40, seed=1, n_jobs=2, progress=False)
    reps = ci.attrs["replicates"]
    np.testing.assert_allclose(ci["lower"], reps.quantile(0.025), rtol=1e-12)
    np.testing.assert_allclose(ci["upper"], reps.quantile(0.975), rtol=1e-12)
    # the fixed-effect intervals are of the size of the Wald intervals
    wald = res.confint("wald").loc[["(Intercept)", "Days"]]
    width = (ci["upper"] - ci["lower"]).loc[["(Intercept)", "Days"]]
    ratio = width / (wald["upper"] - wald["lower"])
    assert ((ratio > 0.5) & (ratio < 1.6)).all()


def test_progress_bar_when_asked(capsys):
    res = _fit(PROFILE["dyestuff"])
    res.bootstrap(3, seed=1, n_jobs=1, progress=True)
    assert "bootstrap" in capsys.readouterr().err
    res.bootstrap(3, seed=1, n_jobs=1, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("formula", "fixed", "reduced"),
    [
        ("Reaction ~ Days + (Days | Subject)", "Days", "Reaction ~ 1 + (Days | Subject)"),
        (
            "Reaction ~ Days + (Days | Subject)",
            "(Intercept)",
            "Reaction ~ 0 + Days + (Days | Subject)",
        ),
        ("Reaction ~ 0 + Days + (1 | Subject)", "Days", "Reaction ~ 0 + (1 | Subject)"),
    ],
)
def test_fixed_effect_profile_point_equals_a_refit_with_offset(formula, fixed, reduced):
    """Fixing beta_j = b on the cross-products is the ML fit of y - b x_j on X without x_j."""
    import hlm

    d = _fit(PROFILE["sleep_corr"]).model.frame.data
    res = hlm.fit(formula, d)
    prof = Profiler(res)
    j = list(res.fixef.index).index(fixed)
    b = prof.beta[j] + 1.5 * prof.beta_se[j]
    zeta = prof.zeta_beta(j, b)
    x = np.ones(len(d)) if fixed == "(Intercept)" else d[fixed].to_numpy()
    direct = hlm.fit(reduced, d, method="ML", offset=b * x).criterion
    assert prof.base + zeta**2 == pytest.approx(direct, abs=1e-6)
