"""The fast paths of model building give what the plain pandas / NumPy paths give.

The clean frame is built from column arrays (no DataFrame rebuilds), the designs read those
arrays, the per-group sums use the compiled kernel when the fit's compiled loops are on, and
the rank checks try one Cholesky factorisation first.  Each is compared here with the
straightforward computation it replaces.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest

import hlm
import hlm.compiled as compiled
from hlm.columns import Columns, column_array
from hlm.design import rank
from hlm.design.fixed import FixedDesign
from hlm.design.groups import factor_codes
from hlm.design.kernels import group_sums
from hlm.engines.start import _one_way_ratio
from hlm.frame import prepare_frame


def _messy_frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 60
    x = rng.normal(size=n)
    x[[3, 17]] = np.nan
    g = pd.Categorical(
        rng.choice(["b", "a", "c"], size=n), categories=["a", "b", "c", "unused"]
    )
    g[5] = np.nan
    k = pd.array(rng.integers(0, 4, size=n), dtype="Int64")
    k[9] = pd.NA
    obj = np.array(rng.normal(size=n), dtype=object)
    obj[11] = None
    text = np.array(rng.choice(["lo", "hi", "mid"], size=n), dtype=object)
    text[20] = None
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": x,
            "g": g,
            "k": k,
            "obj": obj,
            "text": text,
            "flag": rng.random(n) > 0.5,
            "s": pd.array(rng.choice(["u", "v"], size=n), dtype="string"),
        },
        index=pd.RangeIndex(100, 100 + n),
    )


def _reference_clean(df: pd.DataFrame, columns: list[str], labels_only=()) -> pd.DataFrame:
    """The clean frame by plain pandas operations on Series."""
    sub = df[columns]
    out = sub.loc[~sub.isna().any(axis=1)].copy()
    for c in columns:
        col = out[c]
        if c not in labels_only and col.dtype == object:
            kind = pd.api.types.infer_dtype(col, skipna=True)
            if kind in ("integer", "floating", "mixed-integer-float", "decimal"):
                out[c] = pd.to_numeric(col).astype(np.float64)
                continue
        if isinstance(col.dtype, pd.CategoricalDtype):
            out[c] = col.cat.remove_unused_categories()
        elif c not in labels_only and (
            pd.api.types.is_object_dtype(col.dtype) or pd.api.types.is_string_dtype(col.dtype)
        ):
            out[c] = pd.Categorical(col, categories=sorted(pd.unique(col), key=str))
    return out


@pytest.mark.parametrize("labels_only", [(), ("text", "s")])
def test_prepare_frame_matches_plain_pandas(labels_only):
    df = _messy_frame()
    cols = ["y", "x", "g", "k", "obj", "text", "flag", "s"]
    frame = prepare_frame(df, cols, labels_only=labels_only)
    expected = _reference_clean(df, cols, labels_only)
    pd.testing.assert_frame_equal(frame.data, expected)
    na = df[cols].isna()
    assert frame.n_dropped == int(na.any(axis=1).sum())
    assert frame.dropped_by == {c: int(na[c].sum()) for c in cols if na[c].any()}
    # the arrays the build reads are those of the DataFrame
    for c in cols:
        np.testing.assert_array_equal(
            np.asarray(frame.columns[c]), np.asarray(frame.data[c].array)
        )


def test_frame_without_missing_rows_keeps_the_index_and_is_protected_from_later_writes():
    df = hlm.datasets.load("sleepstudy").set_index(pd.Index(np.arange(180) * 2))
    frame = prepare_frame(df, ["Reaction", "Days", "Subject"])
    before = df["Reaction"].to_numpy().copy()
    df.loc[0, "Reaction"] = -1.0  # the user edits the data after building
    np.testing.assert_array_equal(frame.columns["Reaction"], before)
    np.testing.assert_array_equal(frame.data["Reaction"].to_numpy(), before)
    assert frame.data.index.equals(pd.Index(np.arange(180) * 2))
    assert frame.data is frame.data  # built once
    emptied = dataclasses.replace(frame, data=frame.data.iloc[:0])
    assert len(emptied.data) == 0 and len(emptied.columns) == 0


def test_designs_read_columns_as_from_the_dataframe():
    df = hlm.datasets.load("hsb")
    frame = prepare_frame(df, ["MathAch", "MEANSES", "cses", "Sector", "School"])
    for rhs in ("MEANSES * cses + Sector * cses", "0 + Sector + cses", "Sector:cses"):
        d1, xy1 = FixedDesign.from_first_chunk("MathAch", rhs, frame.columns)
        d2, xy2 = FixedDesign.from_first_chunk("MathAch", rhs, frame.data)
        assert d1.names == d2.names
        np.testing.assert_array_equal(xy1, xy2)
        np.testing.assert_array_equal(d1.Xy(frame.columns), d2.Xy(frame.data))
    for name in ("School", "Sector"):
        c1, l1 = factor_codes(column_array(frame.columns, name), name)
        c2, l2 = factor_codes(frame.data[name], name)
        np.testing.assert_array_equal(c1, c2)
        np.testing.assert_array_equal(l1, l2)


def test_factor_codes_of_arrays_and_series_agree():
    values = np.array([30, 7, 7, 12, 30])
    for column in (values, pd.Series(values), pd.Series(values).array):
        codes, labels = factor_codes(column, "g")
        np.testing.assert_array_equal(codes, [2, 0, 0, 1, 2])
        assert list(labels) == ["7", "12", "30"]
    cat = pd.Categorical(["b", "a", "b"], categories=["a", "z", "b"])
    codes, labels = factor_codes(cat, "g")
    np.testing.assert_array_equal(codes, [1, 0, 1])
    assert list(labels) == ["a", "b"]


def test_columns_take_and_to_pandas():
    cols = Columns({"a": np.arange(4.0), "b": pd.Categorical(list("xyxy"))}, pd.RangeIndex(4))
    part = cols.take(slice(1, 3))
    assert len(part) == 2 and part.columns == ["a", "b"]
    np.testing.assert_array_equal(part["a"], [1.0, 2.0])
    assert list(part.to_pandas().index) == [1, 2]


def _with_kernels(enabled: bool, fn):
    saved = list(compiled._GROUP_KERNELS)
    compiled._GROUP_KERNELS[:] = [] if enabled else [None]
    try:
        return fn()
    finally:
        compiled._GROUP_KERNELS[:] = saved


@pytest.mark.parametrize(
    ("name", "formula"),
    [
        ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
        ("hsb", "MathAch ~ MEANSES * cses + Sector * cses + (cses | School)"),
        ("hsb", "MathAch ~ cses + (1 | School) + (1 | Sector)"),
    ],
)
def test_compiled_group_sums_give_the_bincount_numbers(name, formula):
    pytest.importorskip("numba")
    df = hlm.datasets.load(name)

    def build():
        return hlm.LinearMixedModel.from_formula(formula, df).A

    fast = _with_kernels(True, build)
    plain = _with_kernels(False, build)
    np.testing.assert_allclose(fast.G, plain.G, rtol=1e-14)
    for a, b in zip(fast.ZZ + fast.ZXy, plain.ZZ + plain.ZXy, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13 * np.abs(b).max())
    rng = np.random.default_rng(1)
    z, xy = rng.normal(size=(50, 2)), rng.normal(size=(50, 3))
    codes = rng.integers(0, 6, size=50)
    for x, y in zip(
        group_sums(z, codes, 6, xy, engine="numba"),
        group_sums(z, codes, 6, xy, engine="numpy"),
        strict=True,
    ):
        np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-14)


def _column_by_column(XtX, names, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(rank, "_clearly_full_rank", lambda XtX: False)
        return rank.independent_columns(XtX, names)


def test_one_cholesky_rank_check_agrees_with_the_column_rule(monkeypatch):
    rng = np.random.default_rng(5)
    names = list("abcdef")
    for trial in range(40):
        X = rng.normal(size=(30, 6))
        if trial % 3 == 1:
            X[:, 4] = X[:, 0] - 2 * X[:, 2]  # exactly aliased
        if trial % 3 == 2:
            X[:, 3] = X[:, 1] + 10.0 ** -rng.uniform(3, 9) * rng.normal(size=30)  # nearly
        XtX = X.T @ X
        assert rank.independent_columns(XtX, names) == _column_by_column(
            XtX, names, monkeypatch
        )


def test_one_way_ratio_with_empty_groups_is_that_of_the_groups_with_rows():
    rng = np.random.default_rng(2)
    zz = rng.uniform(1, 5, 12)
    ze = rng.normal(size=12)
    holes_zz = np.insert(zz, [0, 5, 12], 0.0)
    holes_ze = np.insert(ze, [0, 5, 12], 0.0)
    assert _one_way_ratio(holes_zz, holes_ze, 400.0, 200, 2) == _one_way_ratio(
        zz, ze, 400.0, 200, 2
    )
