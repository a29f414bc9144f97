"""Data input: pandas, polars, pyarrow and dicts; missing and infinite values; group labels."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hlm

pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")

FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return hlm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def reference_fit(sleep):
    return hlm.fit(FORMULA, sleep)


def assert_same_fit(a, b, rel=1e-10):
    assert a.criterion == pytest.approx(b.criterion, rel=rel)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-7, atol=1e-9)
    assert list(a.fixef.index) == list(b.fixef.index)
    np.testing.assert_allclose(a.fixef, b.fixef, rtol=1e-8)
    assert a.nobs == b.nobs
    assert a.ngroups == b.ngroups


# --- table libraries -----------------------------------------------------------------------


def test_polars_with_string_groups(sleep, reference_fit):
    frame = pl.from_pandas(sleep.assign(Subject=sleep["Subject"].astype(str)))
    assert frame.schema["Subject"] == pl.String
    assert_same_fit(hlm.fit(FORMULA, frame), reference_fit)


def test_polars_with_categorical_groups(sleep, reference_fit):
    frame = pl.from_pandas(sleep)
    assert frame.schema["Subject"] == pl.Categorical
    res = hlm.fit(FORMULA, frame)
    assert_same_fit(res, reference_fit)
    assert list(res.ranef()["Subject"].index) == list(reference_fit.ranef()["Subject"].index)


def test_pyarrow_table(sleep, reference_fit):
    table = pa.Table.from_pandas(sleep.assign(Subject=sleep["Subject"].astype(str)))
    assert_same_fit(hlm.fit(FORMULA, table), reference_fit)


def test_pyarrow_dictionary_column(sleep, reference_fit):
    table = pa.Table.from_pandas(sleep)  # Categorical -> dictionary array
    assert pa.types.is_dictionary(table.schema.field("Subject").type)
    assert_same_fit(hlm.fit(FORMULA, table), reference_fit)


def test_dict_of_arrays(sleep, reference_fit):
    data = {c: sleep[c].to_numpy() for c in ("Reaction", "Days")}
    data["Subject"] = sleep["Subject"].astype(str).to_numpy()
    assert_same_fit(hlm.fit(FORMULA, data), reference_fit)


def test_unused_columns_are_ignored(sleep, reference_fit):
    wide = sleep.assign(junk=["x"] * len(sleep), other=np.nan)
    assert_same_fit(hlm.fit(FORMULA, wide), reference_fit)


def test_unsupported_data_type():
    with pytest.raises(hlm.DataError, match="not supported"):
        hlm.fit(FORMULA, [[1.0, 2.0, "a"]])


# --- missing values ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def holes(sleep) -> pd.DataFrame:
    """sleepstudy with NaN in Reaction (rows 3, 50), Days (7) and Subject (3 again, 100)."""
    data = sleep.copy()
    data.loc[[3, 50], "Reaction"] = np.nan
    data.loc[[7], "Days"] = np.nan
    data.loc[[3, 100], "Subject"] = np.nan
    return data


def test_missing_values_are_dropped_and_counted(holes):
    res = hlm.fit(FORMULA, holes)
    complete = hlm.fit(FORMULA, holes.dropna())
    assert res.n_dropped == 4  # rows 3, 7, 50, 100
    assert res.nobs == 176
    assert_same_fit(res, complete)
    assert complete.n_dropped == 0
    assert "4 rows with missing values were dropped" in res.summary()
    assert "dropped" not in complete.summary()


@pytest.mark.parametrize("kind", ["polars", "pyarrow"])
def test_missing_values_in_other_libraries(holes, kind):
    plain = holes.assign(Subject=holes["Subject"].astype(object))
    frame = pl.from_pandas(plain) if kind == "polars" else pa.Table.from_pandas(plain)
    res = hlm.fit(FORMULA, frame)
    assert res.n_dropped == 4
    assert_same_fit(res, hlm.fit(FORMULA, holes))


def test_missing_raise_names_the_columns(holes):
    with pytest.raises(hlm.DataError) as info:
        hlm.fit(FORMULA, holes, missing="raise")
    message = str(info.value)
    for col in ("Reaction", "Days", "Subject"):
        assert repr(col) in message


def test_missing_raise_names_only_the_column_with_holes(sleep):
    data = sleep.copy()
    data.loc[5, "Days"] = np.nan
    with pytest.raises(hlm.DataError, match="'Days'") as info:
        hlm.fit(FORMULA, data, missing="raise")
    assert "Reaction" not in str(info.value)


def test_missing_in_an_unused_column_is_not_dropped(sleep, reference_fit):
    res = hlm.fit(FORMULA, sleep.assign(unused=np.nan))
    assert res.n_dropped == 0
    assert_same_fit(res, reference_fit)


def test_missing_option_is_checked(sleep):
    with pytest.raises(ValueError, match="missing"):
        hlm.fit(FORMULA, sleep, missing="ignore")


@pytest.mark.parametrize("column", ["Reaction", "Days"])
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_values_raise_naming_the_column(sleep, column, value):
    data = sleep.copy()
    data.loc[11, column] = value
    with pytest.raises(hlm.DataError, match=f"'{column}'") as info:
        hlm.fit(FORMULA, data)
    assert "infinite" in str(info.value)


def test_absent_columns_are_all_listed(sleep):
    formula = "Reactio ~ Day + np.log(zz) + (Days | Subj) + (1 | other)"
    with pytest.raises(hlm.DataError) as info:
        hlm.fit(formula, sleep)
    message = str(info.value)
    for col in ("Reactio", "Day", "zz", "Subj", "other"):
        assert repr(col) in message, col
    assert "Reaction" in message  # the available columns are shown


# --- grouping labels -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 48
    ids = np.tile([0, 1, 2, 3], n // 4)
    return pd.DataFrame(
        {
            "y": rng.normal(size=n) + np.array([0.0, 1.0, -1.0, 2.0])[ids],
            "x": rng.normal(size=n),
            "s": np.array(["007", "7", "07", "10"])[ids],
            "i": np.array([2, 10, 1, 33])[ids],
            "f": np.array([2.0, 10.0, 1.0, 33.0])[ids],
        }
    )


def test_string_labels_are_kept_verbatim(small):
    res = hlm.fit("y ~ x + (1 | s)", small)
    assert res.ngroups == {"s": 4}
    assert sorted(res.ranef()["s"].index) == ["007", "07", "10", "7"]


def test_integer_labels_keep_numeric_order(small):
    res = hlm.fit("y ~ x + (1 | i)", small)
    assert list(res.ranef()["i"].index) == ["1", "2", "10", "33"]
    as_text = hlm.fit("y ~ x + (1 | s)", small)
    assert res.criterion == pytest.approx(as_text.criterion, rel=1e-10)


def test_float_group_column_warns_and_works(small):
    with pytest.warns(hlm.DataWarning, match="'f'"):
        res = hlm.fit("y ~ x + (1 | f)", small)
    assert res.ngroups == {"f": 4}
    as_int = hlm.fit("y ~ x + (1 | i)", small)
    assert res.criterion == pytest.approx(as_int.criterion, rel=1e-10)


def test_nullable_integer_group_column(small):
    data = small.assign(i=small["i"].astype("Int64"))
    data.loc[0, "i"] = pd.NA
    with warnings.catch_warnings():
        warnings.simplefilter("error", hlm.DataWarning)
        res = hlm.fit("y ~ x + (1 | i)", data)
    assert res.n_dropped == 1
    assert list(res.ranef()["i"].index) == ["1", "2", "10", "33"]


@pytest.mark.parametrize("kind", ["polars", "pyarrow"])
def test_integer_group_column_with_null_in_other_libraries(small, kind):
    """Arrow's default conversion makes such a column float64 ('2.0' labels, a warning)."""
    ids = [None] + [int(v) for v in small["i"].iloc[1:]]
    cols = {"y": small["y"].to_numpy(), "x": small["x"].to_numpy(), "i": ids}
    frame = pl.DataFrame(cols) if kind == "polars" else pa.table(cols)
    with warnings.catch_warnings():
        warnings.simplefilter("error", hlm.DataWarning)
        res = hlm.fit("y ~ x + (1 | i)", frame)
    assert res.n_dropped == 1
    assert list(res.ranef()["i"].index) == ["1", "2", "10", "33"]
