"""The PyMC (nutpie) peer of ``hlm.sample``: the same model, non-centred, comparable priors.

Priors as hlm's defaults: flat on the fixed effects, half-t(3, scale) on sigma, and for the
term's covariance an LKJ(1) correlation with half-t(2, scale_k) SDs (hlm's Huang-Wand
prior has exactly these marginals; the joint differs slightly).  The scales are hlm's
automatic ones, read from the hlm problem so both use the same numbers.
"""

from __future__ import annotations

import time

import numpy as np


def auto_scales(formula, data):
    """hlm's automatic prior scales (sigma, per term column) for ``formula``."""
    import hlm
    from hlm.bayes.problem import build_problem

    m = hlm.LinearMixedModel.from_formula(formula, data, method="ML")
    prob = build_problem(m, None)
    return prob.sigma_user.scale, prob.terms[0].user_A, m


def build_pymc(formula, data):
    """A non-centred PyMC model of a one-term linear mixed model; returns (model, names)."""
    import pymc as pm
    from formulaic import model_matrix

    sig_scale, A, m = auto_scales(formula, data)
    blk = m.blocks[0]
    df = m.frame.data
    X = np.asarray(model_matrix(m.spec.fixed, df), dtype=float)
    X = X[:, m.keep]
    Z = np.asarray(blk.Z(df), dtype=float)
    y = df[m.spec.response].to_numpy(dtype=float)
    g = np.asarray(blk.codes)
    J, S = blk.J, blk.S
    with pm.Model() as pm_model:
        beta = pm.Flat("beta", shape=X.shape[1])
        sigma = pm.HalfStudentT("sigma", nu=3, sigma=sig_scale)
        if S > 1:
            chol, _, _ = pm.LKJCholeskyCov(
                "chol",
                n=S,
                eta=1.0,
                sd_dist=pm.HalfStudentT.dist(nu=2, sigma=A, shape=S),
                compute_corr=True,
            )
            z = pm.Normal("z", 0.0, 1.0, shape=(J, S))
            b = pm.Deterministic("b", z @ chol.T)
        else:
            sd = pm.HalfStudentT("sd", nu=2, sigma=A[0])
            z = pm.Normal("z", 0.0, 1.0, shape=J)
            b = pm.Deterministic("b", (z * sd)[:, None])
        mu = pm.math.dot(X, beta) + pm.math.sum(Z * b[g], axis=1)
        pm.Normal("y", mu=mu, sigma=sigma, observed=y)
    return pm_model, list(m.fixed_names), S


def run_nutpie(formula, data, *, chains=4, draws=1000, tune=1000, seed=1):
    """Compile and sample with nutpie; returns (idata, compile_s, sample_s)."""
    import nutpie

    pm_model, names, S = build_pymc(formula, data)
    t = time.perf_counter()
    compiled = nutpie.compile_pymc_model(pm_model)
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    idata = nutpie.sample(
        compiled,
        chains=chains,
        draws=draws,
        tune=tune,
        seed=seed,
        progress_bar=False,
        cores=2,
    )
    sample_s = time.perf_counter() - t
    return idata, names, S, compile_s, sample_s


def scalar_draws(idata, names, S) -> dict:
    """Name -> (chain, draw) arrays matching hlm's diagnostics names."""
    post = idata.posterior
    out = {}
    beta = post["beta"].values
    for i, n in enumerate(names):
        out[n] = beta[..., i]
    out["sigma"] = post["sigma"].values
    if S > 1:
        sds = post["chol_stds"].values
        corr = post["chol_corr"].values
        for i in range(S):
            out[f"sd{i}"] = sds[..., i]
        k = 0
        for i in range(S):
            for j in range(i + 1, S):
                out[f"corr{k}"] = corr[..., i, j]
                k += 1
    else:
        out["sd0"] = post["sd"].values
    return out
