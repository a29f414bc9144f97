"""Standard errors of variance components: against R, a closed form, and brute force.

Fixtures ``tests/fixtures/engines/se_<case>.json`` come from
``tests/fixtures/engines/varcomp_information.R`` (R, lme4, numDeriv): the expected and
observed information of each reference model's REML/ML likelihood in the variance
components, computed from their definitions at lme4's estimates.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import hlm
from hlm import datasets
from hlm.engines.information import score_and_information, varcomp_covariance
from hlm.engines.varcomp import criterion_at, layout, psi_from_theta, scale_y, theta_from_psi

HERE = Path(__file__).parent / "fixtures"
SE_CASES = sorted(p.stem[3:] for p in (HERE / "engines").glob("se_*.json"))


def load(case):
    r = json.loads((HERE / "engines" / f"se_{case}.json").read_text())
    ref = json.loads((HERE / "lme4" / f"{case}.json").read_text())
    return r, ref


def test_fixture_inventory():
    assert len(SE_CASES) == 18  # 22 reference fits less InstEval and Dyestuff2 (x2 methods)


@pytest.mark.parametrize("case", SE_CASES)
def test_information_matches_r_at_lme4_estimates(case):
    r, ref = load(case)
    model = hlm.LinearMixedModel.from_formula(
        ref["formula"], datasets.load(ref["data"]), method=ref["method"]
    )
    theta = np.atleast_1d(np.asarray(ref["theta"], dtype=float))
    lay = layout(model)
    assert [k[0] for k in lay.keys] == [g if g else "Residual" for g in r["grp"]]
    cov_e = varcomp_covariance(model, theta, ref["sigma"] ** 2)
    assert np.allclose(np.sqrt(np.diag(cov_e)), r["se_expected"], rtol=1e-8)
    assert np.allclose(cov_e.to_numpy(), np.linalg.inv(r["info_expected"]), rtol=1e-7, atol=1e-12)
    cov_o = varcomp_covariance(model, theta, ref["sigma"] ** 2, information="observed")
    assert np.allclose(np.sqrt(np.diag(cov_o)), r["se_observed"], rtol=1e-4)


@pytest.mark.parametrize("case", SE_CASES)
def test_varcorr_se_at_the_fit(case):
    r, ref = load(case)
    res = hlm.fit(ref["formula"], datasets.load(ref["data"]), method=ref["method"])
    se = res.varcorr()["se"].to_numpy()
    tol = 1e-2 if ref["model_id"] == "hsb_d_slopes_outcomes" else 2e-3
    assert np.allclose(se, r["se_expected"], rtol=tol)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_balanced_one_way_closed_form(method):
    """Dyestuff: 6 batches of 5.  REML: the ANOVA estimators' variances,
    var(s2) = 2 s2^2 / (a (n - 1)),  var(tau) = 2/n^2 [(s2 + n tau)^2/(a - 1) + s2^2/(a (n - 1))].
    ML: the inverse of the expected information of the balanced one-way model,
    I = a/2 [[n^2/l^2, n/l^2], [n/l^2, (n - 1)/s2^2 + 1/l^2]] with l = s2 + n tau."""
    res = hlm.fit("Yield ~ 1 + (1 | Batch)", datasets.load("dyestuff"), method=method)
    vc = res.varcorr()
    tau, s2 = vc["vcov"]
    a, n = 6, 5
    lam = s2 + n * tau
    if method == "REML":
        var_s2 = 2 * s2**2 / (a * (n - 1))
        var_tau = 2 / n**2 * (lam**2 / (a - 1) + s2**2 / (a * (n - 1)))
    else:
        info = (
            a
            / 2
            * np.array([[n**2 / lam**2, n / lam**2], [n / lam**2, (n - 1) / s2**2 + 1 / lam**2]])
        )
        var_tau, var_s2 = np.diag(np.linalg.inv(info))
    assert vc["se"].to_numpy() == pytest.approx([np.sqrt(var_tau), np.sqrt(var_s2)], rel=1e-10)


def _crossed_slopes(seed=3):
    rng = np.random.default_rng(seed)
    n, J1, J2 = 240, 12, 5
    import pandas as pd

    g1 = rng.integers(0, J1, n)
    g2 = rng.integers(0, J2, n)
    x = rng.normal(size=n)
    b1 = rng.normal(size=(J1, 2)) * [1.0, 0.5]
    b2 = rng.normal(size=(J2, 2)) * [0.7, 0.3]
    y = 1 + 0.5 * x + b1[g1, 0] + b1[g1, 1] * x + b2[g2, 0] + b2[g2, 1] * x + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "g1": g1.astype(str), "g2": g2.astype(str)})


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_information_and_score_brute_force_crossed_slopes(method):
    """Crossed terms with two columns each: t, T and the identities for the residual entries
    against ``1/2 tr(P V_a P V_b)`` with explicit n x n matrices; the score against central
    differences of the criterion."""
    data = _crossed_slopes()
    m = hlm.LinearMixedModel.from_formula("y ~ x + (x | g1) + (x | g2)", data, method=method)
    lay = layout(m)
    theta = np.array([0.8, 0.2, 0.4, 0.6, -0.1, 0.3])
    s2 = 0.9
    si = score_and_information(m, theta, s2, lay)
    sy2 = scale_y(m) ** 2
    psi = psi_from_theta(m, lay, theta, s2) * sy2  # user units
    # explicit matrices
    y = data["y"].to_numpy()
    X = np.column_stack([np.ones(len(y)), data["x"]])
    Va = []
    for a in range(lay.n - 1):
        b = m.blocks[lay.term[a]]
        Z = np.zeros((len(y), b.J * b.S))
        zc = b.Z(data)
        for s in range(b.S):
            Z[np.arange(len(y)), b.codes * b.S + s] = zc[:, s]
        Va.append(Z @ np.kron(np.eye(b.J), lay.basis(a)) @ Z.T)
    Va.append(np.eye(len(y)))
    V = sum(p * v for p, v in zip(psi, Va, strict=True))
    Vi = np.linalg.inv(V)
    P = Vi - Vi @ X @ np.linalg.solve(X.T @ Vi @ X, X.T @ Vi) if method == "REML" else Vi
    PV = [P @ v for v in Va]
    info = np.array([[0.5 * np.trace(a @ b) for b in PV] for a in PV])
    assert np.allclose(si.info / sy2**2, info, rtol=1e-9)
    # the score is the gradient of -1/2 criterion (cross-product units)
    psi_s = psi / sy2
    for a in range(lay.n):
        h = 1e-6 * max(abs(psi_s[a]), 1e-2)
        up, dn = psi_s.copy(), psi_s.copy()
        up[a] += h
        dn[a] -= h
        fd = (
            -0.5
            * (
                criterion_at(m, theta_from_psi(m, lay, up), up[-1])
                - criterion_at(m, theta_from_psi(m, lay, dn), dn[-1])
            )
            / (2 * h)
        )
        assert si.score[a] == pytest.approx(fd, rel=1e-5, abs=1e-6 * np.abs(si.score).max())


def test_singular_fit_se_is_nan_on_the_boundary():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hlm.fit("Yield ~ 1 + (1 | Batch)", datasets.load("dyestuff2"))
    vc = res.varcorr()
    assert vc["vcov"].iloc[0] == 0 and np.isnan(vc["se"].iloc[0])
    # the residual variance alone: var(s2) = 2 s2^2 / (n - p) under REML
    assert vc["se"].iloc[1] == pytest.approx(np.sqrt(2 * vc["vcov"].iloc[1] ** 2 / 29), rel=1e-8)


@pytest.mark.parametrize("engine", ["profiled", "em", "fisher", "em+fisher"])
def test_every_engine_reports_se(engine):
    res = hlm.fit("Reaction ~ Days + (Days | Subject)", datasets.load("sleepstudy"), engine=engine)
    se = res.varcorr()["se"]
    assert se.notna().all() and (se > 0).all()
    assert res.varcomp_vcov.shape == (4, 4)


def test_varcorr_without_se():
    res = hlm.fit("Reaction ~ Days + (Days | Subject)", datasets.load("sleepstudy"))
    assert "se" not in res.varcorr(se=False).columns
