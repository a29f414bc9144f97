"""Cluster-robust (sandwich) standard errors of the fixed effects.

Checked against R's clubSandwich (``vcovCR(lmer fit, type = "CR0" | "CR1" | "CR2")``,
tests/fixtures/clubsandwich, made by tests/fixtures/r/make_robust_refs.R) and against a
direct dense computation written here: V_j = Z_j T Z_j' + sigma^2 I built explicitly per
cluster, plain numpy, CR2 by its definition with a Cholesky factor.
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.linalg

import hlm

FIXTURES = Path(__file__).parent / "fixtures" / "clubsandwich"
CASES = sorted(p.stem for p in FIXTURES.glob("*.json"))


@cache
def data(name: str) -> pd.DataFrame:
    return hlm.datasets.load(name)


@cache
def fit(formula: str, name: str, method: str = "REML"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hlm.fit(formula, data(name), method=method)


def scaled_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference relative to sqrt(b_ii b_jj) (the scale of each element)."""
    d = np.sqrt(np.diag(b))
    return float(np.max(np.abs(a - b) / np.outer(d, d)))


def same_name(name: str) -> tuple:
    """lme4's and formulaic's names of one coefficient, made comparable."""
    return tuple(sorted(name.replace("Sector[T.Catholic]", "SectorCatholic").split(":")))


# ------------------------------------------------------------------ clubSandwich
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kind", ["CR0", "CR1", "CR2"])
def test_against_clubsandwich(case, kind):
    ref = json.loads((FIXTURES / f"{case}.json").read_text(encoding="utf-8"))
    res = fit(ref["formula"], ref["data"], ref["method"])
    ours = res.robust_vcov(kind)
    assert [same_name(a) for a in ours.index] == [same_name(b) for b in ref["names"]]
    # the fits themselves agree with lme4 to ~1e-6 (relative) on the HSB models
    assert scaled_error(ours.to_numpy(), np.array(ref[f"vcov_{kind}"])) < 2e-5


def test_bread_is_model_vcov():
    res = fit("MathAch ~ MEANSES * cses + Sector * cses + (cses | School)", "hsb")
    from hlm.results.robust import _cluster_basis, cluster_grams

    H = res._hierarchy
    G, Texp = cluster_grams(H)
    Rx, U, w, _ = _cluster_basis(G, Texp, H.beta, H.sigma2, H.p)
    Phi_inv = (U / w[:, None, :]) @ np.swapaxes(U, 1, 2)
    B = np.linalg.inv((np.swapaxes(Rx, 1, 2) @ Phi_inv @ Rx).sum(axis=0))
    np.testing.assert_allclose(B, res.vcov.to_numpy(), rtol=1e-7)


# ------------------------------------------------------------------ direct dense computation
def dense_sandwich(X, y, Zs, Ts, s2, beta, clusters, kind, w=None):
    """The sandwich by its definition, one dense V_k per cluster.

    Zs, Ts: per random term, the (n, S) columns with a row-level group code array, and T.
    """
    n = len(y)
    w = np.ones(n) if w is None else w
    parts = []
    for k in np.unique(clusters):
        rows = np.flatnonzero(clusters == k)
        V = s2 * np.diag(1.0 / w[rows])
        for (Z, codes), T in zip(Zs, Ts, strict=True):
            for g in np.unique(codes[rows]):
                r = rows[codes[rows] == g]
                pos = np.searchsorted(rows, r)
                V[np.ix_(pos, pos)] += Z[r] @ T @ Z[r].T
        parts.append((X[rows], y[rows] - X[rows] @ beta, V))
    B = np.linalg.inv(sum(Xk.T @ np.linalg.solve(Vk, Xk) for Xk, _, Vk in parts))
    meat = np.zeros_like(B)
    for Xk, ek, Vk in parts:
        if kind == "CR2":
            D = np.linalg.cholesky(Vk).T  # V = D'D
            Gk = D @ (Vk - Xk @ B @ Xk.T) @ D.T
            nu, E = np.linalg.eigh(0.5 * (Gk + Gk.T))
            root = np.where(nu > 1e-12 * s2**2, 1 / np.sqrt(np.abs(nu)), 0.0)
            ek = D.T @ (E * root) @ E.T @ D @ ek
        t = Xk.T @ np.linalg.solve(Vk, ek)
        meat += np.outer(t, t)
    vc = B @ meat @ B
    J = len(parts)
    return vc * (J / (J - 1) if kind == "CR1" else 1.0)


def hsb_d_design(df, names):
    catholic = (df["Sector"] == "Catholic").to_numpy(float)
    cols = {
        "(Intercept)": np.ones(len(df)),
        "MEANSES": df["MEANSES"].to_numpy(float),
        "cses": df["cses"].to_numpy(float),
        "Sector[T.Catholic]": catholic,
        "MEANSES:cses": (df["MEANSES"] * df["cses"]).to_numpy(float),
        "Sector[T.Catholic]:cses": catholic * df["cses"].to_numpy(float),
    }
    return np.column_stack([cols[n] for n in names])


@pytest.mark.parametrize("kind", ["CR0", "CR1", "CR2"])
def test_dense_two_levels_hsb(kind):
    res = fit("MathAch ~ MEANSES * cses + Sector * cses + (cses | School)", "hsb")
    df = data("hsb")
    X = hsb_d_design(df, list(res.fixef.index))
    Z = np.column_stack([np.ones(len(df)), df["cses"]])
    codes = df["School"].cat.codes.to_numpy()
    T = res._est.Sigma[0]
    want = dense_sandwich(
        X,
        df["MathAch"].to_numpy(float),
        [(Z, codes)],
        [T],
        res.sigma**2,
        res.fixef.to_numpy(),
        codes,
        kind,
    )
    assert scaled_error(res.robust_vcov(kind).to_numpy(), want) < 1e-9


def test_dense_three_levels_hsb():
    df = data("hsb")
    df = df[df["School"].cat.codes < 60].copy()
    codes = df["School"].cat.codes.to_numpy()
    df["District"] = pd.Categorical([f"d{c % 15:02d}" for c in codes])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hlm.fit("MathAch ~ MEANSES + cses + (cses | District/School)", df)
    H = res._hierarchy
    X = np.column_stack([np.ones(len(df)), df["MEANSES"], df["cses"]])
    Z = np.column_stack([np.ones(len(df)), df["cses"]])
    district = df["District"].cat.codes.to_numpy()
    Ts = [lev.T for lev in H.levels]
    for kind in ("CR0", "CR2"):
        want = dense_sandwich(
            X,
            df["MathAch"].to_numpy(float),
            [(Z, codes), (Z, district)],
            Ts,
            res.sigma**2,
            res.fixef.to_numpy(),
            district,
            kind,
        )
        assert scaled_error(res.robust_vcov(kind).to_numpy(), want) < 1e-9


def test_dense_weights_cr1_and_cr2_refused():
    df = data("sleepstudy").copy()
    df["w"] = 1.0 + df["Days"] % 3
    res = hlm.fit("Reaction ~ Days + (Days | Subject)", df, weights="w")
    X = np.column_stack([np.ones(len(df)), df["Days"]])
    codes = df["Subject"].cat.codes.to_numpy()
    want = dense_sandwich(
        X,
        df["Reaction"].to_numpy(float),
        [(X, codes)],
        [res._est.Sigma[0]],
        res.sigma**2,
        res.fixef.to_numpy(),
        codes,
        "CR1",
        w=df["w"].to_numpy(float),
    )
    assert scaled_error(res.robust_vcov("CR1").to_numpy(), want) < 1e-9
    with pytest.raises(NotImplementedError, match="prior weights"):
        res.robust_vcov("CR2")


# ------------------------------------------------------------------ the API
def test_robust_se_cached_and_named():
    res = hlm.fit("Reaction ~ Days + (Days | Subject)", data("sleepstudy"))
    se = res.robust_se
    assert se is res.robust_se
    assert se.name == "robust_se"
    assert list(se.index) == list(res.fixef.index)
    np.testing.assert_allclose(se, np.sqrt(np.diag(res.robust_vcov("CR2"))), rtol=1e-14)
    np.testing.assert_allclose(res.robust_vcov("cr1"), res.robust_vcov("CR1"))
    with pytest.raises(ValueError, match="CR0, CR1, CR2"):
        res.robust_vcov("CR3")


def test_block_diag_used_for_uncorrelated_terms():
    # (1 | Subject) + (0 + Days | Subject) is one level with a diagonal T
    res = fit("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", "sleepstudy")
    T = res._hierarchy.levels[0].T
    expected = scipy.linalg.block_diag(*res._est.Sigma)
    np.testing.assert_array_equal(T, expected)
