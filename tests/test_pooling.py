"""compare_pooling: complete pooling = OLS, no pooling = group fixed effects, partial = HLM.

The first two are checked against least squares on explicit design matrices (numpy), built
here from the data with their own dummy columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hlm
from hlm import datasets


@pytest.fixture(scope="module")
def hsb():
    return datasets.load("hsb")


def ols(X, y):
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    rank = np.linalg.matrix_rank(X)
    s2 = resid @ resid / (len(y) - rank)
    return beta, s2


def test_random_intercept_model(hsb):
    pc = hlm.compare_pooling("MathAch ~ SES + MEANSES + (1 | School)", hsb)
    t = pc.table
    assert list(t.columns) == [
        "complete",
        "complete_se",
        "none",
        "none_se",
        "partial",
        "partial_se",
        "design_effect",
    ]
    y = hsb["MathAch"].to_numpy(float)
    X = np.column_stack([np.ones(len(y)), hsb["SES"], hsb["MEANSES"]]).astype(float)
    beta, s2 = ols(X, y)
    se = np.sqrt(np.diag(s2 * np.linalg.inv(X.T @ X)))
    assert np.allclose(t["complete"], beta, rtol=1e-10)
    assert np.allclose(t["complete_se"], se, rtol=1e-8)
    # no pooling: school dummies absorb the intercept and MEANSES (constant in a school)
    D = pd.get_dummies(hsb["School"]).to_numpy(float)
    Xn = np.column_stack([hsb["SES"].to_numpy(float), D])
    bn, s2n = ols(Xn, y)
    sen = np.sqrt(s2n * np.linalg.inv(Xn.T @ Xn)[0, 0])
    assert t.loc["SES", "none"] == pytest.approx(bn[0], rel=1e-9)
    assert t.loc["SES", "none_se"] == pytest.approx(sen, rel=1e-7)
    assert np.isnan(t.loc["MEANSES", "none"])
    # each school's own intercept: its dummy coefficient
    own = pc.groups[("(Intercept)", "none")].to_numpy()
    assert np.allclose(own, bn[1:], rtol=1e-8)
    # partial pooling is the HLM fit; its SE of the level-2 effect exceeds OLS's
    res = hlm.fit("MathAch ~ SES + MEANSES + (1 | School)", hsb)
    assert np.allclose(t["partial"], res.fixef)
    assert t.loc["MEANSES", "design_effect"] > 1.5
    assert pc.icc == pytest.approx(
        res.varcorr()["vcov"].iloc[0] / res.varcorr()["vcov"].sum(), rel=1e-12
    )
    assert pc.kish_design_effect == pytest.approx(1 + (len(y) / 160 - 1) * pc.icc)
    assert pc.variances.loc["complete pooling", "residual"] == pytest.approx(s2, rel=1e-10)
    assert pc.variances.loc["no pooling", "residual"] == pytest.approx(s2n, rel=1e-8)
    text = pc.summary()
    assert "design_effect" in text and "ignores" in text and "Kish" in text
    assert str(pc) == text


def test_random_slope_model_separate_regressions(hsb):
    pc = hlm.compare_pooling("MathAch ~ cses + (cses | School)", hsb)
    own = pc.groups.xs("none", axis=1, level="pooling")
    # every coefficient group-specific: no pooling is a separate OLS per school
    for school in ["1224", "1288", "9586"]:
        rows = hsb["School"].astype(str) == school
        X = np.column_stack([np.ones(rows.sum()), hsb.loc[rows, "cses"]]).astype(float)
        b, _ = ols(X, hsb.loc[rows, "MathAch"].to_numpy(float))
        assert np.allclose(own.loc[school].to_numpy(), b, rtol=1e-8)
    assert pc.table.loc["cses", "none"] == pytest.approx(own["cses"].mean(), rel=1e-12)
    # partial pooling shrinks: the spread of the EB slopes is below the OLS slopes' spread
    partial = pc.groups.xs("partial", axis=1, level="pooling")
    assert partial["cses"].var() < own["cses"].var()


def test_needs_random_effects(hsb):
    with pytest.raises(Exception, match="random"):
        hlm.compare_pooling("MathAch ~ SES", hsb)
