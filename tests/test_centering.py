"""Centering: ``hlm.center``, ``hlm.group_mean`` and ``center=`` in ``hlm.Levels``.

Every expected number is computed directly, group by group, with plain loops.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hlm
from hlm import DataError


@pytest.fixture
def small():
    return pd.DataFrame(
        {
            "g": ["a", "a", "a", "b", "b", "c"],
            "x": [1.0, 2.0, 6.0, 10.0, np.nan, 4.0],
            "z": [3.0, 3.0, 3.0, 7.0, 7.0, 5.0],  # a level-2 variable
            "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )


def loop_group_means(keys, values):
    """Group mean of each row's group, missing values left out, by explicit loops."""
    sums, counts = {}, {}
    for k, v in zip(keys, values, strict=True):
        if not np.isnan(v):
            sums[k] = sums.get(k, 0.0) + v
            counts[k] = counts.get(k, 0) + 1
    return np.array([sums[k] / counts[k] if counts.get(k) else np.nan for k in keys])


def test_group_centring(small):
    out = hlm.center(small, "x", by="g")
    assert list(out.columns) == ["g", "x", "z", "y", "x_cwc"]
    expected = [1 - 3, 2 - 3, 6 - 3, 0.0, np.nan, 0.0]
    np.testing.assert_allclose(out["x_cwc"], expected)
    assert "x_cwc" not in small.columns  # the input is not modified


def test_grand_centring(small):
    out = hlm.center(small, ["x", "y"], kind="grand")
    np.testing.assert_allclose(out["x_cgm"], small["x"] - (1 + 2 + 6 + 10 + 4) / 5)
    np.testing.assert_allclose(out["y_cgm"], small["y"] - 3.5)
    # with by=: each group counts once (HLM's grand mean of a level-2 variable)
    out = hlm.center(small, "z", by="g", kind="grand", name="z_c")
    np.testing.assert_allclose(out["z_c"], small["z"] - (3 + 7 + 5) / 3)


def test_group_mean(small):
    out = hlm.group_mean(small, "x", by="g")
    np.testing.assert_allclose(out["x_mean"], loop_group_means(small["g"], small["x"]))
    np.testing.assert_allclose(out["x_mean"], [3, 3, 3, 10, 10, 4])


def test_several_keys_and_other_libraries(small):
    two = small.assign(h=["p", "q", "p", "p", "p", "p"])
    out = hlm.center(two, "x", by=["g", "h"])
    keys = list(zip(two["g"], two["h"], strict=True))
    np.testing.assert_allclose(out["x_cwc"], two["x"] - loop_group_means(keys, two["x"]))
    out = hlm.group_mean(small.to_dict("list"), "y", by="g")
    np.testing.assert_allclose(out["y_mean"], [2, 2, 2, 4.5, 4.5, 6])


def test_errors(small):
    with pytest.raises(ValueError, match="needs the grouping column"):
        hlm.center(small, "x", kind="group")
    with pytest.raises(ValueError, match="kind must be"):
        hlm.center(small, "x", by="g", kind="mean")
    with pytest.raises(DataError, match="not numeric"):
        hlm.center(small, "g", by="g")
    with pytest.raises(DataError, match="not found"):
        hlm.center(small, "w", by="g")
    with pytest.raises(DataError, match="already have"):
        hlm.center(small.assign(x_cwc=0.0), "x", by="g")


# --- center= in a spec ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def hsb():
    return hlm.datasets.load("hsb")


def test_group_centred_ses_is_cses(hsb):
    by_hand = hlm.Levels("MathAch ~ cses", group="School", random=["(Intercept)", "cses"])
    spec = hlm.Levels(
        "MathAch ~ SES", group="School", random=["(Intercept)", "SES"], center={"SES": "group"}
    )
    formula, derived = spec.prepare(hsb)
    assert formula == "MathAch ~ SES_cwc + (SES_cwc | School)"
    np.testing.assert_allclose(derived["SES_cwc"], hsb["cses"], atol=1e-12)
    assert "SES_cwc" not in hsb.columns
    a, b = hlm.fit(spec, hsb), hlm.fit(by_hand, hsb)
    assert a.criterion == pytest.approx(b.criterion, rel=1e-10)
    assert a.fixef["SES_cwc"] == pytest.approx(b.fixef["cses"], rel=1e-7)
    assert "SES_cwc = SES minus the mean of SES in its School" in spec.equations()


def test_means_use_the_rows_the_model_uses(hsb):
    # a row dropped for a missing outcome must not count in its school's mean SES
    data = hsb.copy()
    data.loc[data.index[:10], "MathAch"] = np.nan
    spec = hlm.Levels(
        "MathAch ~ SES",
        {"(Intercept)": "~ SES_mean"},
        group="School",
        center={"SES": ["group", "mean"]},
    )
    _, derived = spec.prepare(data)
    keep = data["MathAch"].notna()
    ses = data["SES"].where(keep).to_numpy()
    expected = loop_group_means(data["School"].astype(str), ses)
    np.testing.assert_allclose(derived["SES_mean"][keep], expected[keep.to_numpy()])
    np.testing.assert_allclose(
        derived["SES_cwc"][keep], (ses - expected)[keep.to_numpy()], atol=1e-12
    )
    res = hlm.fit(spec, data)
    assert res.nobs == len(hsb) - 10 and res.n_dropped == 10


def test_grand_centring_of_a_level2_variable_counts_schools_once(hsb):
    spec = hlm.Levels(
        "MathAch ~ cses", {"(Intercept)": "~ MEANSES"}, group="School", center={"MEANSES": "grand"}
    )
    formula, derived = spec.prepare(hsb)
    assert formula == "MathAch ~ MEANSES_cgm + cses + (1 | School)"
    per_school = hsb.groupby("School", observed=True)["MEANSES"].first()
    np.testing.assert_allclose(derived["MEANSES_cgm"], hsb["MEANSES"] - per_school.mean())
    # a level-1 variable is centred at its mean over rows
    spec = hlm.Levels("MathAch ~ SES", group="School", center={"SES": "grand"})
    _, derived = spec.prepare(hsb)
    np.testing.assert_allclose(derived["SES_cgm"], hsb["SES"] - hsb["SES"].mean())


def test_contextual_effect(hsb):
    """With raw SES, the coefficient of the school mean is the contextual effect:
    between-school minus within-school effect (Raudenbush & Bryk 2002, sec. 5.2)."""
    within = hlm.Levels(
        "MathAch ~ SES",
        {"(Intercept)": "~ SES_mean"},
        group="School",
        center={"SES": ["group", "mean"]},
    )
    raw = hlm.Levels(
        "MathAch ~ SES", {"(Intercept)": "~ SES_mean"}, group="School", center={"SES": "mean"}
    )
    a, b = hlm.fit(within, hsb), hlm.fit(raw, hsb)
    # the same model, re-parametrised: gamma_01(raw) = gamma_01(within) - gamma_10
    assert a.criterion == pytest.approx(b.criterion, rel=1e-9)
    contextual = a.fixef["SES_mean"] - a.fixef["SES_cwc"]
    assert b.fixef["SES_mean"] == pytest.approx(contextual, rel=1e-5)
    assert b.fixef["SES"] == pytest.approx(a.fixef["SES_cwc"], rel=1e-5)
