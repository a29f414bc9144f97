"""Bad input, case by case (issue 10): a clear error naming the column, term or value and
saying what to do, or a correct result with a clear flag.  Nothing silently wrong.

Cases already covered elsewhere are checked again here briefly so that this file is the
whole list; the heavier variants stay in tests/test_edges.py and tests/test_data_input.py.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hlm

TRUST = Path(__file__).parent / "fixtures" / "trust"
F = "y ~ x + (1 | g)"


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    """60 rows, 10 groups of 6, a random intercept and a slope in x."""
    rng = np.random.default_rng(10)
    g = np.repeat(np.arange(10), 6)
    x = rng.normal(size=60)
    y = 1 + 0.5 * x + rng.normal(size=10)[g] + rng.normal(size=60)
    return pd.DataFrame({"y": y, "x": x, "g": [f"s{k}" for k in g], "gi": g})


def fit_quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hlm.errors.HLMWarning)
        return hlm.fit(*args, **kwargs)


def same_fit(a, b, rel=1e-9):
    assert a.criterion == pytest.approx(b.criterion, rel=rel)
    np.testing.assert_allclose(a.fixef, b.fixef, rtol=1e-7)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-6, atol=1e-9)


# --- empty data, every row dropped ---------------------------------------------------------------


def test_empty_data(df):
    with pytest.raises(hlm.DataError, match="no rows"):
        hlm.fit(F, df.iloc[:0])


def test_every_row_dropped_names_the_columns(df):
    with pytest.raises(hlm.DataError, match=r"every row.*'x' \(60 missing\)"):
        hlm.fit(F, df.assign(x=np.nan))


# --- missing columns -----------------------------------------------------------------------------


def test_missing_columns_are_all_listed(df):
    with pytest.raises(hlm.DataError) as info:
        hlm.fit("yy ~ x + z1 + (z2 | gg)", df)
    for name in ("'yy'", "'z1'", "'z2'", "'gg'"):
        assert name in str(info.value)
    assert "available columns" in str(info.value)


# --- NaN / None in y, X and the grouping column --------------------------------------------------


@pytest.mark.parametrize("column", ["y", "x", "g"])
def test_missing_values_dropped_and_counted(df, column):
    holes = df.copy()
    holes[column] = holes[column].astype(object)
    holes.loc[[2, 30], column] = None
    holes.loc[[41], column] = np.nan
    res = hlm.fit(F, holes)
    assert res.n_dropped == 3 and res.nobs == 57
    assert "3 rows with missing values were dropped" in res.summary()
    same_fit(res, hlm.fit(F, df.drop(index=[2, 30, 41])))
    with pytest.raises(hlm.DataError, match=f"'{column}' \\(3 rows\\).*missing='drop'"):
        hlm.fit(F, holes, missing="raise")


# --- infinite values -----------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["y", "x", "gf"])
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_values_anywhere_raise(df, column, value):
    data = df.assign(gf=df["gi"].astype(float))
    data.loc[7, column] = value
    formula = "y ~ x + (1 | gf)" if column == "gf" else F
    with pytest.raises(hlm.DataError, match=f"'{column}' has 1 infinite"):
        fit_quietly(formula, data)


def test_infinite_offset_and_weights_raise(df):
    bad = np.zeros(len(df))
    bad[3] = np.inf
    with pytest.raises(hlm.DataError, match="infinite"):
        hlm.fit(F, df, offset=bad)
    with pytest.raises(hlm.DataError, match="infinite"):
        hlm.fit(F, df, weights=1.0 + bad)


def test_infinity_in_numbers_stored_as_objects(df):
    data = df.assign(x=df["x"].astype(object))
    data.loc[5, "x"] = np.inf
    with pytest.raises(hlm.DataError, match="'x' has 1 infinite"):
        hlm.fit(F, data)


# --- the response --------------------------------------------------------------------------------


def test_constant_response(df):
    with pytest.raises(hlm.DataError, match="response 'y' is constant"):
        hlm.fit(F, df.assign(y=3.25))
    with pytest.raises(hlm.DataError, match="response 'y' is constant"):
        hlm.fit(F, df.assign(y=0.1), method="ML")


def test_response_reproduced_exactly_by_the_predictors(df):
    with pytest.raises(hlm.DataError, match="exact linear function of the fixed effects"):
        hlm.fit(F, df.assign(y=2.0 * df["x"] - 1.0))


def test_text_response(df):
    with pytest.raises(hlm.DataError, match="response 'y' is not numeric"):
        hlm.fit(F, df.assign(y=np.where(df["x"] > 0, "high", "low")))


# --- too few groups, too small groups ------------------------------------------------------------


def test_single_group(df):
    with pytest.raises(hlm.IdentifiabilityError, match="'g' has only one level"):
        hlm.fit(F, df.assign(g="all"))


def test_all_groups_of_size_one(df):
    with pytest.raises(hlm.IdentifiabilityError, match="every group has a single row"):
        hlm.fit("y ~ x + (1 | row)", df.assign(row=np.arange(len(df))))


def test_as_many_random_effects_as_observations(df):
    pairs = df.assign(pair=np.arange(len(df)) // 2)
    with pytest.raises(hlm.IdentifiabilityError, match="60 random effects for 60 obs"):
        hlm.fit("y ~ x + (x | pair)", pairs)


def test_tiny_groups_are_fine(df):
    """Singletons mixed with larger groups: identifiable, and the fit is regular."""
    g = df["gi"].to_numpy().copy()
    g[:6] = 100 + np.arange(6)  # six singleton groups
    res = fit_quietly(F, df.assign(g=g))
    assert res.ngroups == {"g": 15} and np.isfinite(res.criterion)


# --- collinear predictors ------------------------------------------------------------------------


def test_collinear_predictors_dropped_with_a_warning_naming_them(df):
    data = df.assign(x2=3.0 * df["x"] + 1.0, x3=-df["x"])
    with pytest.warns(hlm.RankDeficiencyWarning, match="'x2', 'x3'"):
        res = hlm.fit("y ~ x + x2 + x3 + (1 | g)", data)
    assert res.dropped_columns == ["x2", "x3"]
    assert "x2" in res.summary()
    same_fit(res, hlm.fit(F, df))


# --- grouping columns ----------------------------------------------------------------------------


def test_float_grouping_column_warns_and_is_used_as_labels(df):
    data = df.assign(gf=df["gi"] + 0.5)
    with pytest.warns(hlm.DataWarning, match="'gf' is floating point"):
        res = hlm.fit("y ~ x + (1 | gf)", data)
    assert sorted(res.ranef()["gf"].index)[:2] == ["0.5", "1.5"]
    same_fit(res, hlm.fit(F, df))


def test_mixed_type_grouping_column_is_labels_with_a_warning(df):
    mixed = [k if k % 2 else f"id{k}" for k in df["gi"]]
    with pytest.warns(hlm.DataWarning, match="'g' mixes value types"):
        res = hlm.fit(F, df.assign(g=pd.Series(mixed, dtype=object)))
    assert res.ngroups == {"g": 10}
    same_fit(res, hlm.fit(F, df))


def test_mixed_types_that_print_alike_are_refused(df):
    clash = pd.Series([7 if k == 0 else ("7" if k == 1 else str(k)) for k in df["gi"]])
    with pytest.raises(hlm.DataError, match=r"'g' mixes types.*\(7, '7'\)"):
        hlm.fit(F, df.assign(g=clash.astype(object)))


@pytest.mark.parametrize("kind", ["pandas", "polars", "pyarrow"])
def test_ids_007_and_7_are_distinct(df, kind):
    labels = np.array(["007", "7", "07", "0007", "7.0", "70", "a", "b", "c", "d"])
    data = df.assign(g=labels[df["gi"]])
    if kind == "polars":
        data = pytest.importorskip("polars").from_pandas(data)
    elif kind == "pyarrow":
        data = pytest.importorskip("pyarrow").Table.from_pandas(data)
    res = hlm.fit(F, data)
    assert res.ngroups == {"g": 10}
    assert sorted(res.ranef()["g"].index) == sorted(labels)


def test_numbers_stored_as_objects_are_numbers(df):
    res = hlm.fit(F, df.assign(x=df["x"].astype(object)))
    assert list(res.fixef.index) == ["(Intercept)", "x"]
    same_fit(res, hlm.fit(F, df))


def test_predictor_mixing_numbers_and_text_is_refused(df):
    x = df["x"].astype(object)
    x[4] = "n/a"
    with pytest.raises(hlm.DataError, match=r"'x' mixes numbers and text \(e\.g\. 'n/a'\)"):
        hlm.fit(F, df.assign(x=x))


# --- predictors on wildly different scales -------------------------------------------------------


def scales_reference():
    return json.loads((TRUST / "scales_lme4.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def scales():
    return pd.read_csv(TRUST / "scales.csv", dtype={"g": str})


@pytest.mark.parametrize("case", range(4))
def test_wildly_different_scales_fit_exactly(scales, case):
    """a ~ 1e-6 and b ~ 5e9 (sd 1e9), with a random slope on a: hlm on the raw data equals
    lme4 on the data rescaled to unit spread, mapped back (tests/fixtures/r/make_trust_refs.R)."""
    ref = scales_reference()
    k = ref["rescaled"]
    want = ref["fits"][case]
    with warnings.catch_warnings():
        warnings.simplefilter("error", hlm.errors.HLMWarning)
        res = hlm.fit(want["formula"], scales, method=want["method"])
    # ML is invariant to rescaling X; REML changes by -2 log|det D| = 2 log(1e3)
    shift = 0.0 if want["method"] == "ML" else -2.0 * np.log(k["a"] * k["b"])
    assert res.criterion == pytest.approx(want["criterion"] + shift, abs=1e-6)
    unit = {"(Intercept)": 1.0, "a": k["a"], "b": k["b"]}
    for name, value in want["fixef"].items():
        assert res.fixef[name] / unit[name] == pytest.approx(value, rel=1e-6)
        assert res.fixef_se[name] / unit[name] == pytest.approx(want["fixef_se"][name], rel=1e-4)
    # variance components: the slope's variance (and covariance) carry the unit of a
    vc = res.varcorr()["vcov"].to_numpy()
    units = np.array([1.0, k["a"] ** 2, k["a"], 1.0]) if len(vc) == 4 else np.ones(2)
    want_vc = np.array(want["vcov"])
    np.testing.assert_allclose(vc / units, want_vc, rtol=1e-4, atol=1e-4 * want_vc.max())
    assert res.converged and not res.singular


def test_wildly_different_scales_are_reported(scales):
    with warnings.catch_warnings():
        warnings.simplefilter("error", hlm.errors.HLMWarning)  # a note, not a warning
        res = hlm.fit("y ~ a + b + (1 | g)", scales)
    note = "predictors on very different scales"
    assert any(note in w for w in res.fit_log.warnings)
    assert note in res.summary()
    assert "'a'" in res.summary() and "'b'" in res.summary()
    plain = hlm.fit(F, pd.DataFrame({"y": scales["y"], "x": scales["a"] * 1e6, "g": scales["g"]}))
    assert not any(note in w for w in plain.fit_log.warnings)


# --- level equations -----------------------------------------------------------------------------


def test_level2_predictor_that_varies_within_groups(df):
    spec = hlm.Levels("y ~ 1", {"(Intercept)": "~ x"}, group="g")
    with pytest.raises(hlm.DataError, match=r"'x' in the level-2 equation.*center=\{'x'"):
        hlm.fit(spec, df)


# --- random slope on a variable constant within every group --------------------------------------


@pytest.mark.parametrize("w", ["continuous", "binary", "categorical"])
def test_random_slope_constant_within_every_group(df, w):
    rng = np.random.default_rng(4)
    values = {
        "continuous": rng.normal(size=10),
        "binary": np.arange(10) % 2 * 1.0,
        "categorical": np.array(list("abcabcabca")),
    }[w]
    data = df.assign(w=values[df["gi"]])
    with pytest.raises(hlm.IdentifiabilityError, match=r"'w' is constant within every level"):
        hlm.fit("y ~ x + w + (1 + w | g)", data)
    with pytest.raises(hlm.DataError, match="constant within every group"):
        hlm.fit(hlm.Levels("y ~ w", group="g", random=["(Intercept)", "w"]), data)
    # as a fixed (level-2) predictor it is fine
    assert np.isfinite(fit_quietly("y ~ x + w + (1 | g)", data).criterion)


# --- weights -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "words"), [(0.0, "zero or negative"), (-2.0, "negative"), (np.inf, "infinite")]
)
def test_bad_weights(df, value, words):
    w = np.ones(len(df))
    w[9] = value
    with pytest.raises(hlm.DataError, match=words):
        hlm.fit(F, df, weights=w)


def test_missing_weights_are_dropped_and_counted(df):
    w = np.ones(len(df))
    w[9] = np.nan
    res = hlm.fit(F, df, weights=w)
    assert res.n_dropped == 1
    same_fit(res, hlm.fit(F, df.drop(index=[9])))


# --- the same variable as predictor and grouping factor ------------------------------------------


def test_grouping_factor_also_a_categorical_predictor(df):
    with pytest.raises(hlm.IdentifiabilityError, match=r"'\(Intercept\)' of term '\(1 \| g\)'"):
        hlm.fit("y ~ x + g + (1 | g)", df)


def test_grouping_factor_also_a_numeric_predictor_is_fine(df):
    """A linear trend in the group number plus a random intercept per group (lme4 fits it)."""
    res = hlm.fit("y ~ x + gi + (1 | gi)", df)
    twin = hlm.fit("y ~ x + t + (1 | gi)", df.assign(t=df["gi"].astype(float)))
    same_fit(res, twin)


# --- many groups ---------------------------------------------------------------------------------


def test_million_groups_of_two():
    """10^6 groups of 2 rows (2e6 rows), a random intercept: the closed form of the balanced
    one-way ML fit (tests/test_nist.py) is reproduced; about 3 s and 0.6 GB."""
    J, n = 1_000_000, 2
    rng = np.random.default_rng(6)
    g = np.repeat(np.arange(J), n)
    y = 1.0 + rng.normal(size=J)[g] + rng.normal(size=J * n)
    res = hlm.fit("y ~ 1 + (1 | g)", pd.DataFrame({"y": y, "g": g}), method="ML")
    means = y.reshape(J, n).mean(axis=1)
    msw = float(((y.reshape(J, n) - means[:, None]) ** 2).sum()) / (J * (n - 1))
    msb = n * float(((means - y.mean()) ** 2).sum()) / (J - 1)
    tau2 = ((1 - 1 / J) * msb - msw) / n
    vc = res.varcorr()["vcov"].to_numpy()
    assert vc[1] == pytest.approx(msw, rel=1e-6)
    assert vc[0] == pytest.approx(tau2, rel=1e-6)
    assert res.ngroups == {"g": J} and res.converged


# --- non-convergence -----------------------------------------------------------------------------


def test_non_convergence_warns_with_what_to_try(df):
    with pytest.warns(hlm.ConvergenceWarning) as record:
        res = hlm.fit("y ~ x + (x | g)", df, maxeval=4, optimizer="bobyqa")
    text = " ".join(str(w.message) for w in record)
    assert "maxeval" in text and "theta0=res.theta" in text
    assert res.converged is False and res.fit_log.converged is False
    assert "NOT converged" in res.summary()


# --- data files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "line", "fields"),
    [
        ("1.0,2.0,a\n2.0,3.0\n3.0,1.0,b\n", 3, 2),  # too few fields: never padded with NaN
        ("1.0,2.0,a\n2.0,3.0,b\n3.0,1.0,b,9\n", 4, 4),  # too many
        ('1.0,2.0,a\n"2.0,3.0,b\n', 3, 1),  # an unbalanced quote swallows the rest
    ],
)
def test_malformed_csv_line_is_an_error_with_its_line_number(tmp_path, body, line, fields):
    path = tmp_path / "data.csv"
    path.write_text("y,x,g\n" + body, encoding="utf-8")
    with pytest.raises(hlm.DataError, match=rf"data.csv: line {line} has {fields} fields"):
        hlm.io.read_data(path)


def test_csv_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("y,x,g\n1,2,Mu\xf1oz\n2,3,b\n".encode("latin-1"))
    with pytest.raises(hlm.DataError, match="not UTF-8 text"):
        hlm.io.read_data(path)


def test_csv_ids_007_and_7_stay_distinct(tmp_path):
    path = tmp_path / "ids.csv"
    rows = [f"{1.0 + 0.1 * i},{i % 3},{('007', '7', '07')[i % 3]}" for i in range(12)]
    path.write_text("y,x,id\n" + "\n".join(rows) + "\n", encoding="utf-8")
    data = hlm.io.read_data(path)
    assert sorted(map(str, pd.unique(data["id"]))) == ["007", "07", "7"]
