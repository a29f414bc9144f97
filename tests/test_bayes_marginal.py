"""The integrated likelihood and the marginal likelihood against closed forms.

Known answers come from dense linear algebra written here from the textbook formulas (the
multivariate normal density of y with the n x n covariance, via scipy), and from numerical
integration of that density over the variance parameters (scipy.integrate), not from hlm.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats  # noqa: F401

import hlm
from hlm.bayes.bridge import log_marginal_no_ranef
from hlm.bayes.marginal import IntegratedLikelihood
from hlm.bayes.priors import HalfT, HuangWand, Normal, Priors
from hlm.bayes.problem import build_problem


def _data(J=6, nj=4, slope=False, seed=3):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), nj)
    x = rng.normal(2.0, 1.5, size=J * nj)
    y = 1.0 + 0.5 * x + rng.normal(0, 0.9, J)[g] + rng.normal(size=J * nj)
    if slope:
        y += rng.normal(0, 0.3, J)[g] * x
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k}" for k in g]})


def _dense(df, slope):
    X = np.column_stack([np.ones(len(df)), df["x"]])
    codes = pd.factorize(df["g"])[0]
    J = codes.max() + 1
    Zcols = [np.ones(len(df))] + ([df["x"].to_numpy()] if slope else [])
    S = len(Zcols)
    Z = np.zeros((len(df), J * S))
    for s, col in enumerate(Zcols):
        Z[np.arange(len(df)), codes * S + s] = col
    return X, Z, J, S, df["y"].to_numpy()


def _model(df, formula, priors):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = hlm.LinearMixedModel.from_formula(formula, df, method="ML")
    return build_problem(m, priors)


@pytest.mark.parametrize("slope", [False, True])
def test_integrated_likelihood_normal_prior_matches_dense(slope):
    df = _data(slope=slope)
    pri = Priors(fixef={"(Intercept)": Normal(1.0, 3.0), "x": Normal(-0.5, 2.0)})
    formula = "y ~ x + (x | g)" if slope else "y ~ x + (1 | g)"
    prob = _model(df, formula, pri)
    lik = IntegratedLikelihood(prob)
    X, Z, J, S, y = _dense(df, slope)
    m, Dcov = np.array([1.0, -0.5]), np.diag([9.0, 4.0])
    Sigma = np.array([[0.8, 0.1], [0.1, 0.2]])[:S, :S]
    for sigma in (0.7, 1.3):
        V = sigma**2 * np.eye(len(y)) + Z @ np.kron(np.eye(J), Sigma) @ Z.T + X @ Dcov @ X.T
        exact = stats.multivariate_normal(X @ m, V).logpdf(y)
        assert lik([Sigma], sigma) == pytest.approx(exact, abs=1e-8)


def test_integrated_likelihood_flat_prior_matches_restricted_likelihood():
    df = _data(slope=True)
    prob = _model(df, "y ~ x + (x | g)", None)
    lik = IntegratedLikelihood(prob)
    X, Z, J, S, y = _dense(df, True)
    Sigma = np.array([[0.5, -0.05], [-0.05, 0.1]])
    sigma = 0.9
    V = sigma**2 * np.eye(len(y)) + Z @ np.kron(np.eye(J), Sigma) @ Z.T
    Vi = np.linalg.inv(V)
    XtViX = X.T @ Vi @ X
    beta = np.linalg.solve(XtViX, X.T @ Vi @ y)
    r = y - X @ beta
    n, p = X.shape
    # int N(y; X beta, V) d beta (flat prior of density 1)
    exact = (
        -0.5 * (n - p) * np.log(2 * np.pi)
        - 0.5 * np.linalg.slogdet(V)[1]
        - 0.5 * np.linalg.slogdet(XtViX)[1]
        - 0.5 * r @ Vi @ r
    )
    assert lik([Sigma], sigma) == pytest.approx(exact, abs=1e-8)


def _priors():
    return Priors(fixef=Normal(0.0, 5.0), sigma=HalfT(3.0, 2.0), ranef={"g": HuangWand(2.0, 1.0)})


def _mvn_logpdf(y, V):
    """log N(y; 0, V) by a dense Cholesky factor (the textbook formula)."""
    L = np.linalg.cholesky(V)
    z = np.linalg.solve(L, y)
    return -0.5 * (len(y) * np.log(2 * np.pi) + z @ z) - np.log(np.diag(L)).sum()


def _exact_log_ml(df, with_ranef: bool):
    """log p(y) by numerical integration of the dense density over log sigma (, log tau)."""
    X, Z, J, S, y = _dense(df, False)
    Dcov = 25.0 * np.eye(2)
    half_t = HalfT(3.0, 2.0)

    def lp(ls, lt):
        s = np.exp(ls)
        V = s**2 * np.eye(len(y)) + X @ Dcov @ X.T
        out = half_t.logpdf(s) + ls
        if lt is not None:
            t = np.exp(lt)
            V = V + t**2 * Z @ Z.T
            out += HalfT(2.0, 1.0).logpdf(t) + lt  # Huang-Wand with S = 1 is half-t(nu, A)
        return float(out + _mvn_logpdf(y, V))

    if not with_ranef:
        grid = np.linspace(-3, 3, 200)
        peak = max(lp(t, None) for t in grid)
        val = integrate.quad(lambda t: np.exp(lp(t, None) - peak), -4, 4, limit=200)[0]
        return peak + np.log(val)
    # tensor Gauss-Legendre rule on (log sigma, log tau): the integrand is smooth and
    # negligible outside the box
    nodes, weights = np.polynomial.legendre.leggauss(60)
    a_s, b_s, a_t, b_t = -1.5, 1.2, -7.0, 2.5
    ls = 0.5 * (b_s - a_s) * nodes + 0.5 * (b_s + a_s)
    lt = 0.5 * (b_t - a_t) * nodes + 0.5 * (b_t + a_t)
    vals = np.array([[lp(u, v) for v in lt] for u in ls])
    w = np.outer(weights * 0.5 * (b_s - a_s), weights * 0.5 * (b_t - a_t))
    peak = vals.max()
    return peak + np.log(np.sum(w * np.exp(vals - peak)))


def test_no_random_effects_marginal_likelihood_by_quadrature():
    df = _data()
    prob = _model(df, "y ~ x + (1 | g)", _priors())
    est = log_marginal_no_ranef(prob)
    assert est.value == pytest.approx(_exact_log_ml(df, False), abs=1e-5)


@pytest.mark.filterwarnings("ignore::hlm.ConvergenceWarning")
def test_bridge_sampling_and_bayes_factor_match_numerical_integration():
    df = _data()
    res = hlm.sample(
        "y ~ x + (1 | g)",
        df,
        priors=_priors(),
        chains=2,
        draws=400,
        warmup=150,
        seed=11,
        engine="numpy",
        cores=1,
        progress=False,
    )
    est = res.log_marginal_likelihood(seed=5)
    exact = _exact_log_ml(df, True)
    assert abs(est.value - exact) < 4 * est.se + 0.02, (est, exact)
    bf = res.variance_bayes_factor("g", seed=5)
    exact_bf = exact - _exact_log_ml(df, False)
    assert abs(bf.log_bf - exact_bf) < 4 * bf.se + 0.02
    assert np.isfinite(bf.log_bf_bic)
    assert "BIC approximation" in str(bf)


def test_bayes_factor_refuses_different_flat_fixed_effects():
    df = _data()
    opts = {"chains": 1, "draws": 20, "warmup": 10, "engine": "numpy", "progress": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = hlm.sample("y ~ x + (1 | g)", df, **opts)
        b = hlm.sample("y ~ 1 + (1 | g)", df, **opts)
    with pytest.raises(ValueError, match="flat"):
        hlm.bayes_factor(a, b)
