"""Slow correctness checks of the sampler (``pytest -m slow tests/test_bayes_slow.py -s``).

* simulation-based calibration (Talts et al. 2018): parameters drawn from the prior, data
  from the model, the rank of each true value among thinned posterior draws is uniform when
  the sampler is right; tested by a chi-square test on binned ranks, for the compiled kernel
  (one term with two columns) and the NumPy engine (two nested terms);
* the compiled and NumPy engines give the same posterior;
* with flat priors on a large data set the posterior means approach the ML estimates;
* agreement with nutpie on sleepstudy and HSB (fixture written by benchmarks/bayes_bench.py).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hlm
from hlm import priors as P

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).parent / "fixtures" / "bayes"


def _quiet_sample(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hlm.sample(*args, progress=False, **kwargs)


# ---------------------------------------------------------------------- SBC
def _draw_huang_wand(rng, nu, A):
    S = len(A)
    a = 1.0 / rng.gamma(0.5, A**2)  # a_k ~ IG(1/2, 1/A_k^2)
    return stats.invwishart.rvs(df=nu + S - 1, scale=np.diag(2 * nu / a), random_state=rng)


def _sbc_chi2(ranks: np.ndarray, L: int, bins: int) -> float:
    """p-value of the chi-square test of uniform ranks in 0..L, binned."""
    counts = np.bincount(ranks * bins // (L + 1), minlength=bins)
    return float(stats.chisquare(counts).pvalue)


def test_sbc_compiled_kernel_two_column_term():
    rng = np.random.default_rng(2024)
    J, nj, reps, L, thin = 8, 6, 400, 99, 10
    A = np.array([1.0, 0.5])
    pri = P.Priors(fixef=P.Normal(0, 1), sigma=P.HalfT(3, 1.0), ranef={"g": P.HuangWand(2, A)})
    g = np.repeat(np.arange(J), nj)
    names = ["(Intercept)", "x", "sigma", "sd0", "sd1", "corr"]
    ranks = {k: [] for k in names}
    for _ in range(reps):
        beta = rng.normal(0, 1, 2)
        sigma = abs(stats.t.rvs(3, random_state=rng))
        Sigma = np.atleast_2d(_draw_huang_wand(rng, 2.0, A))
        b = rng.multivariate_normal(np.zeros(2), Sigma, size=J)
        x = rng.normal(size=J * nj)
        y = beta[0] + beta[1] * x + b[g, 0] + b[g, 1] * x + sigma * rng.normal(size=J * nj)
        df = pd.DataFrame({"y": y, "x": x, "g": g})
        res = _quiet_sample(
            "y ~ x + (x | g)",
            df,
            priors=pri,
            chains=1,
            draws=(L + 1) * thin,
            warmup=500,
            seed=int(rng.integers(2**31)),
            engine="numba",
        )
        d = res.draws
        post = {
            "(Intercept)": d.beta[0, :, 0],
            "x": d.beta[0, :, 1],
            "sigma": d.sigma[0],
            "sd0": d.sd(0)[0, :, 0],
            "sd1": d.sd(0)[0, :, 1],
            "corr": d.corr(0)[0, :, 0],
        }
        sd = np.sqrt(np.diag(Sigma))
        true = {
            "(Intercept)": beta[0],
            "x": beta[1],
            "sigma": sigma,
            "sd0": sd[0],
            "sd1": sd[1],
            "corr": Sigma[0, 1] / (sd[0] * sd[1]),
        }
        for k in names:
            ranks[k].append(int(np.sum(post[k][thin - 1 :: thin][:L] < true[k])))
    pvals = {k: _sbc_chi2(np.array(v), L, 10) for k, v in ranks.items()}
    print({k: np.bincount(np.array(v) * 10 // (L + 1), minlength=10).tolist() for k, v in ranks.items()})  # noqa: E501
    print(f"SBC compiled kernel ({reps} replications, {L} thinned draws, 10 bins):", pvals)
    # six tests: a Bonferroni level of 0.001 each
    assert min(pvals.values()) > 0.001 / 6, pvals


def test_sbc_numpy_engine_two_nested_terms():
    rng = np.random.default_rng(7)
    J1, J2, nj, reps, L, thin = 5, 3, 4, 150, 49, 6
    pri = P.Priors(
        fixef=P.Normal(0, 1),
        sigma=P.HalfT(3, 1.0),
        ranef={"a": P.HalfT(3, 1.0), "b:a": P.LogNormal(-0.5, 0.7)},
    )
    a = np.repeat(np.arange(J1), J2 * nj)
    bb = np.tile(np.repeat(np.arange(J2), nj), J1)
    names = ["(Intercept)", "sigma", "sd_a", "sd_ba"]
    ranks = {k: [] for k in names}
    for _ in range(reps):
        beta0 = rng.normal()
        sigma = abs(stats.t.rvs(3, random_state=rng))
        sd_a = abs(stats.t.rvs(3, random_state=rng))
        sd_ba = float(np.exp(rng.normal(-0.5, 0.7)))
        ua = rng.normal(0, sd_a, J1)
        uba = rng.normal(0, sd_ba, J1 * J2)
        y = beta0 + ua[a] + uba[a * J2 + bb] + sigma * rng.normal(size=len(a))
        df = pd.DataFrame({"y": y, "a": a, "b": bb})
        res = _quiet_sample(
            "y ~ 1 + (1 | a/b)",
            df,
            priors=pri,
            chains=1,
            draws=(L + 1) * thin,
            warmup=300,
            seed=int(rng.integers(2**31)),
            engine="numpy",
            cores=1,
        )
        d = res.draws
        ka, kba = res.groups.index("a"), res.groups.index("b:a")
        post = {
            "(Intercept)": d.beta[0, :, 0],
            "sigma": d.sigma[0],
            "sd_a": d.sd(ka)[0, :, 0],
            "sd_ba": d.sd(kba)[0, :, 0],
        }
        true = {"(Intercept)": beta0, "sigma": sigma, "sd_a": sd_a, "sd_ba": sd_ba}
        for k in names:
            ranks[k].append(int(np.sum(post[k][thin - 1 :: thin][:L] < true[k])))
    pvals = {k: _sbc_chi2(np.array(v), L, 5) for k, v in ranks.items()}
    print(f"SBC NumPy engine, nested terms ({reps} replications, {L} draws, 5 bins):", pvals)
    assert min(pvals.values()) > 0.001 / 4, pvals


# ---------------------------------------------------------------------- engines agree
def _means_and_mcse(res):
    import arviz as az

    from hlm.bayes.diagnostics import scalar_parameters

    out = {}
    for k, v in scalar_parameters(res).items():
        out[k] = (float(v.mean()), float(np.ravel(az.mcse(v, method="mean"))[0]))
    return out


def test_compiled_and_numpy_engines_agree_on_sleepstudy():
    d = hlm.datasets.load("sleepstudy")
    f = "Reaction ~ Days + (Days | Subject)"
    a = _means_and_mcse(_quiet_sample(f, d, chains=4, draws=3000, seed=1, engine="numba"))
    b = _means_and_mcse(_quiet_sample(f, d, chains=2, draws=1500, seed=2, engine="numpy"))
    for k in a:
        z = (a[k][0] - b[k][0]) / np.hypot(a[k][1], b[k][1])
        assert abs(z) < 4.5, (k, a[k], b[k])


# ---------------------------------------------------------------------- flat priors -> ML
def test_posterior_means_approach_ml_with_flat_priors_on_large_data():
    rng = np.random.default_rng(5)
    J, nj = 300, 60
    g = np.repeat(np.arange(J), nj)
    x = rng.normal(size=J * nj)
    u = rng.multivariate_normal([0, 0], [[1.0, 0.3], [0.3, 0.5]], size=J)
    y = 3 + 0.8 * x + u[g, 0] + u[g, 1] * x + rng.normal(0, 1.5, J * nj)
    df = pd.DataFrame({"y": y, "x": x, "g": g})
    f = "y ~ x + (x | g)"
    flat = P.Priors(sigma=P.HalfT(3, 1e4), ranef={"g": P.HuangWand(2, [1e4, 1e4])})
    res = _quiet_sample(f, df, priors=flat, chains=4, draws=2000, seed=3)
    ml = hlm.fit(f, df, method="ML")
    # beta: the posterior mean is the GLS estimate at the posterior variances; O(1/J) apart
    assert np.all(np.abs(res.fixef - ml.fixef) < 0.1 * ml.fixef_se)
    assert res.sigma == pytest.approx(ml.sigma, rel=0.005)
    vb, vm = res.varcorr(), ml.varcorr()
    # SDs: the posterior mean exceeds the mode by O(1/J) (here about 1%)
    assert np.allclose(vb["sdcor"][:2], vm["sdcor"][:2], rtol=0.03)
    assert vb["sdcor"][2] == pytest.approx(vm["sdcor"][2], abs=0.05)


# ---------------------------------------------------------------------- nutpie
@pytest.mark.parametrize("cell", ["sleepstudy", "hsb"])
def test_agrees_with_nutpie(cell):
    refs = json.loads((FIXTURES / "nutpie_refs.json").read_text())["cells"][cell]
    data = hlm.datasets.load(cell)
    res = _quiet_sample(refs["formula"], data, chains=4, draws=2000, seed=9)
    mine = {
        **{n: res.draws.beta[..., i] for i, n in enumerate(res.fixed_names)},
        "sigma": res.draws.sigma,
    }
    import arviz as az

    for k, v in mine.items():
        ref = refs["summary"][k]
        se = np.hypot(float(np.ravel(az.mcse(v, method="mean"))[0]), ref["mcse"])
        assert abs(v.mean() - ref["mean"]) < 4 * se, (k, v.mean(), ref)
        assert v.std() == pytest.approx(ref["sd"], rel=0.1)
    # variance components: the priors differ (Huang-Wand vs LKJ x half-t); SDs within 15%
    sd = res.draws.sd(0)
    for i in range(sd.shape[-1]):
        ref = refs["summary"][f"sd{i}"]["mean"]
        assert sd[..., i].mean() == pytest.approx(ref, rel=0.15)
