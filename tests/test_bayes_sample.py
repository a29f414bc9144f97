"""hlm.sample: the result's layout matches the ML result, reproducibility, diagnostics, errors.

These run the NumPy engine on small data (the compiled kernel is exercised by the slow tests,
which pay numba's compile time once).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hlm
from hlm import priors as P

FAST = {"engine": "numpy", "progress": False}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    J, nj = 12, 8
    g = np.repeat(np.arange(J), nj)
    x = rng.normal(size=J * nj)
    u0, u1 = rng.normal(0, 1.0, J), rng.normal(0, 0.5, J)
    y = 2.0 + 0.7 * x + u0[g] + u1[g] * x + rng.normal(0, 0.8, J * nj)
    return pd.DataFrame({"y": y, "x": x, "w": rng.normal(size=J * nj), "g": [f"s{k}" for k in g]})


@pytest.fixture(scope="module")
def post(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hlm.sample(
            "y ~ x + (x | g)", data, chains=2, draws=200, warmup=100, seed=4, cores=1, **FAST
        )


def test_layout_matches_ml_result(post, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml = hlm.fit("y ~ x + (x | g)", data, method="REML")
    assert list(post.fixef.index) == list(ml.fixef.index)
    vb, vm = post.varcorr(), ml.varcorr()
    assert list(vb.columns[: len(vm.columns)]) == list(vm.columns)
    for col in ("grp", "var1", "var2"):
        assert vb[col].fillna("").tolist() == vm[col].fillna("").tolist()
    rb, rm = post.ranef(), ml.ranef()
    assert rb.keys() == rm.keys()
    assert rb["g"].index.equals(rm["g"].index) and list(rb["g"].columns) == list(rm["g"].columns)
    assert post.ranef_sd()["g"].shape == rm["g"].shape
    iv = post.ranef_interval()
    assert (iv["lower"]["g"] <= rb["g"]).all().all() and (rb["g"] <= iv["upper"]["g"]).all().all()
    assert set(post.coef()["g"].columns) == set(ml.coef()["g"].columns)
    # posterior means near the REML estimates on these data (loose: small J, prior matters)
    assert np.allclose(post.fixef, ml.fixef, atol=3 * ml.fixef_se.max())
    assert post.sigma == pytest.approx(ml.sigma, rel=0.15)


def test_summary_diagnostics_and_arviz(post):
    text = post.summary()
    assert "Fixed effects" in text and "r_hat" in text and "sd(g: x)" in text
    diag = post.diagnostics()
    assert {"ess_bulk", "ess_tail", "r_hat"} <= set(diag.columns)
    assert "corr(g: (Intercept),x)" in diag.index
    idata = post.to_arviz()
    assert {"beta", "sigma", "sd__g", "corr__g", "b__g"} <= set(idata.posterior.data_vars)
    assert idata.posterior["beta"].shape == (2, 200, 2)
    assert idata.posterior["b__g"].shape == (2, 200, 12, 2)


def test_reproducible_from_one_seed_whatever_the_cores(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opts = {"chains": 2, "draws": 30, "warmup": 20, **FAST}
        a = hlm.sample("y ~ x + (1 | g)", data, seed=123, cores=1, **opts)
        b = hlm.sample("y ~ x + (1 | g)", data, seed=123, cores=2, **opts)
        c = hlm.sample("y ~ x + (1 | g)", data, seed=124, cores=1, **opts)
    assert np.array_equal(a.draws.beta, b.draws.beta)
    assert np.array_equal(a.draws.Sigma[0], b.draws.Sigma[0])
    assert not np.array_equal(a.draws.beta, c.draws.beta)
    assert not np.array_equal(a.draws.beta[0], a.draws.beta[1])  # chains differ


def test_short_chains_warn(data):
    with pytest.warns(hlm.ConvergenceWarning, match="ESS below 400"):
        hlm.sample("y ~ x + (1 | g)", data, chains=2, draws=20, warmup=10, seed=1, **FAST)


def test_trace_plot_is_written(post, tmp_path):
    path = tmp_path / "trace.png"
    fig = post.plot_trace(var_names=["sigma", "sd__g"], path=path)
    assert path.stat().st_size > 10_000
    assert len(fig.axes) == 2 * 3  # sigma and two SDs: density and trace each
    path2 = tmp_path / "density.png"
    post.plot_density(var_names=["sigma"], path=path2)
    assert path2.stat().st_size > 5_000


def test_priors_without_conjugate_update_and_hierarchical_group(data):
    pri = P.Priors(
        fixef={"x": P.Normal(0, 10)},
        sigma=P.LogNormal(0.0, 1.0),
        ranef={"g": P.HalfNormal(2.0)},
        groups=[P.Hierarchical(["x", "w"], mean=P.Normal(0, 5), sd=P.HalfCauchy(1.0))],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hlm.sample(
            "y ~ x + w + (1 | g)", data, priors=pri, chains=2, draws=150, warmup=150, seed=2, **FAST
        )
    acc = res.draws.accept.mean(axis=0)
    assert 0.1 < acc[0] < 0.9  # sigma's Metropolis-Hastings step, adapted in warm-up
    assert 0.05 < acc[2] < 0.95 and 0.05 < acc[3] < 0.95  # the SD's two steps
    assert "tau(x,w)" in res.diagnostics().index
    assert res.fixef["x"] == pytest.approx(0.7, abs=0.4)


def test_level_equations_spec(data):
    spec = hlm.Levels(
        "y ~ x", {"(Intercept)": "~ 1", "x": "~ 1"}, group="g", random=["(Intercept)"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hlm.sample(spec, data, chains=1, draws=20, warmup=10, **FAST)
    assert list(res.fixef.index) == ["(Intercept)", "x"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"chains": 0}, "chains"),
        ({"draws": 2}, "draws"),
        ({"priors": {"fixef": {"nope": P.Normal(0, 1)}}}, "unknown fixed effect"),
        ({"priors": {"ranef": {"h": P.HuangWand()}}}, "unknown grouping factor"),
        ({"priors": {"ranef": {"g": P.HalfT(3, 1)}}}, "covariance matrix"),
        ({"priors": {"sigmas": P.HalfT()}}, "unknown prior key"),
        ({"engine": "gpu"}, "engine"),
    ],
)
def test_bad_input_is_named(data, kwargs, match):
    opts = {"chains": 1, "draws": 10, "warmup": 5, "progress": False, **kwargs}
    with pytest.raises(ValueError, match=match):
        hlm.sample("y ~ x + (x | g)", data, **opts)


def test_prior_classes_validate():
    with pytest.raises(ValueError, match="positive"):
        P.HalfT(nu=3, scale=-1)
    with pytest.raises(ValueError, match="at least two"):
        P.Hierarchical(["x"], sd=P.HalfCauchy(1))
    with pytest.raises(ValueError, match="df"):
        P.InverseWishart(1, np.eye(2))
    with pytest.raises(ValueError, match="explicit scale"):
        P.Hierarchical(["a", "b"], sd=P.HalfT(3))


def test_model_without_intercept_and_with_weights(data):
    """The accumulation basis of a model without intercept, and prior weights, reach the
    sampler: posterior means near the ML estimates of the same model."""
    df = data.assign(wt=np.linspace(0.5, 2.0, len(data)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml = hlm.fit("y ~ 0 + x + (1 | g)", df, method="ML", weights="wt")
        res = hlm.sample(
            "y ~ 0 + x + (1 | g)", df, weights="wt", chains=2, draws=200, warmup=100, seed=3, **FAST
        )
    assert list(res.fixef.index) == ["x"]
    assert res.fixef["x"] == pytest.approx(ml.fixef["x"], abs=2 * ml.fixef_se["x"])
    assert res.sigma == pytest.approx(ml.sigma, rel=0.2)
