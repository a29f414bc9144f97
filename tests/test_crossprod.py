"""Cross-products of row chunks add up to those of all rows (``hlm.design.crossprod``).

The rule: fix the column shift and scale before the pass (``shift_and_scale``), accumulate
each chunk with them, merge with ``+``.  Then the model built with any ``chunk_rows`` is the
same model.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hlm
from _extra_refs import read_sim
from hlm.design.crossprod import CrossProducts, accumulate, shift_and_scale

FORMULA = "y ~ x + (x | g1) + (1 | g2)"
THETA = [0.9, 0.2, 0.4, 0.5]


@pytest.fixture(scope="module")
def crossed() -> pd.DataFrame:
    """600 rows, g1 (30 levels) crossed with g2 (20 levels); written by the R script."""
    return read_sim("crossed_slope.csv")


def raw_inputs(data: pd.DataFrame):
    """``[1 x y]``, per-term Z, codes and level counts for ``FORMULA``, built by hand."""
    n = len(data)
    Xy = np.column_stack([np.ones(n), data["x"], data["y"]])
    Z = [np.column_stack([np.ones(n), data["x"]]), np.ones((n, 1))]
    codes, J = [], []
    for col in ("g1", "g2"):
        c, levels = pd.factorize(data[col], sort=True)
        codes.append(c.astype(np.int64))
        J.append(len(levels))
    return Xy, Z, codes, J


def chunked(data, bounds, shift, scale, w=None) -> CrossProducts:
    """Accumulate rows ``bounds[i]:bounds[i+1]`` separately and merge with ``+``."""
    Xy, Z, codes, J = raw_inputs(data)
    total = None
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        part = accumulate(
            Xy[lo:hi].copy(),
            [z[lo:hi] for z in Z],
            [c[lo:hi] for c in codes],
            J,
            shift,
            scale,
            sqrtw=None if w is None else np.sqrt(w[lo:hi]),
            sum_log_w=0.0 if w is None else float(np.log(w[lo:hi]).sum()),
        )
        total = part if total is None else total + part
    return total


def assert_close(a, b, rel=1e-12):
    """Equal up to ``rel`` of the larger norm (entries near zero have no relative digits)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape
    assert np.linalg.norm(a - b) <= rel * max(np.linalg.norm(a), np.linalg.norm(b), 1e-300)


def assert_same_stats(A: CrossProducts, B: CrossProducts):
    assert A.n == B.n
    assert A.sum_log_w == pytest.approx(B.sum_log_w, rel=1e-12, abs=1e-12)
    assert_close(A.G, B.G)
    assert len(A.ZZ) == len(B.ZZ) == 2
    for a, b in zip(A.ZZ, B.ZZ, strict=True):
        assert_close(a, b)
    for a, b in zip(A.ZXy, B.ZXy, strict=True):
        assert_close(a, b)
    assert sorted(A.pairs) == sorted(B.pairs) == [(0, 1)]
    assert A.pairs[(0, 1)].shape == (30 * 2, 20 * 1)
    assert_close(A.pairs[(0, 1)].toarray(), B.pairs[(0, 1)].toarray())


def whole(data, shift, scale, w=None) -> CrossProducts:
    return chunked(data, [0, len(data)], shift, scale, w)


def fixed_transform(data, w=None):
    Xy, _, _, _ = raw_inputs(data)
    return shift_and_scale(Xy.copy(), w, 0)


@pytest.mark.parametrize("bounds", [[0, 1, 600], [0, 37, 74, 300, 599, 600], [0, 200, 400, 600]])
def test_chunk_sums_equal_whole(crossed, bounds):
    shift, scale = fixed_transform(crossed)
    assert_same_stats(chunked(crossed, bounds, shift, scale), whole(crossed, shift, scale))


def test_chunk_sums_equal_whole_with_weights(crossed):
    w = 0.5 + np.arange(len(crossed)) % 4
    shift, scale = fixed_transform(crossed, w)
    A = chunked(crossed, [0, 150, 151, 430, 600], shift, scale, w)
    B = whole(crossed, shift, scale, w)
    assert_same_stats(A, B)
    assert A.sum_log_w == pytest.approx(np.log(w).sum(), rel=1e-12)


def test_chunks_with_absent_levels(crossed):
    """Sorted by g1, each chunk holds a few g1 levels: the others contribute zero blocks."""
    data = crossed.sort_values(["g1", "g2"], kind="stable").reset_index(drop=True)
    shift, scale = fixed_transform(data)
    first = chunked(data, [0, 40], shift, scale)
    present = np.unique(pd.factorize(data["g1"], sort=True)[0][:40])
    absent = np.setdiff1d(np.arange(30), present)
    assert len(absent) > 20
    assert np.all(first.ZZ[0][absent] == 0) and np.all(first.ZXy[0][absent] == 0)
    assert_same_stats(chunked(data, [0, 40, 95, 333, 600], shift, scale), whole(data, shift, scale))


def test_shift_and_scale_centres_with_an_intercept(crossed):
    shift, scale = fixed_transform(crossed)
    assert shift[0] == 0.0 and scale[0] == 1.0
    assert shift[1] == pytest.approx(crossed["x"].mean(), rel=1e-12)
    assert scale[1] == pytest.approx(crossed["x"].std(ddof=0), rel=1e-12)
    G = whole(crossed, shift, scale).G
    assert abs(G[0, 1]) < 1e-9 * len(crossed)  # the centred x is orthogonal to 1
    assert G[1, 1] == pytest.approx(len(crossed), rel=1e-12)


def test_merging_different_shifts_raises(crossed):
    shift, scale = fixed_transform(crossed)
    A = chunked(crossed, [0, 300], shift, scale)
    other_shift = shift.copy()
    other_shift[1] += 0.1
    B = chunked(crossed, [300, 600], other_shift, scale)
    with pytest.raises(ValueError, match="shift"):
        A + B
    other_scale = scale * 2.0
    C = chunked(crossed, [300, 600], shift, other_scale)
    with pytest.raises(ValueError):
        A + C


# --- chunk_rows in LinearMixedModel.from_formula --------------------------------------------


@pytest.fixture(scope="module")
def unchunked(crossed):
    model = hlm.LinearMixedModel.from_formula(FORMULA, crossed)
    return model, model.objective(THETA), model.fit()


@pytest.mark.parametrize("k", [37, 150, 599])
def test_chunk_rows_same_objective_and_fit(crossed, unchunked, k):
    model0, value0, res0 = unchunked
    model = hlm.LinearMixedModel.from_formula(FORMULA, crossed, chunk_rows=k)
    assert model.n == model0.n == 600
    assert model.objective(THETA) == pytest.approx(value0, rel=1e-10)
    res = model.fit()
    assert res.criterion == pytest.approx(res0.criterion, rel=1e-10)
    np.testing.assert_allclose(res.fixef, res0.fixef, rtol=1e-6)
    np.testing.assert_allclose(res.theta, res0.theta, rtol=1e-5, atol=1e-7)


def test_chunk_rows_with_weights_and_ml(crossed):
    w = 1.0 + np.arange(len(crossed)) % 3
    kwargs = {"method": "ML", "weights": w}
    base = hlm.LinearMixedModel.from_formula(FORMULA, crossed, **kwargs)
    small = hlm.LinearMixedModel.from_formula(FORMULA, crossed, chunk_rows=64, **kwargs)
    assert small.objective(THETA) == pytest.approx(base.objective(THETA), rel=1e-10)


def test_chunk_rows_with_level_missing_from_first_chunk():
    """hsb sorted by Sector: the first chunks are all Public; the dummy is still coded."""
    data = hlm.datasets.load("hsb").sort_values(["Sector", "School"], kind="stable")
    formula = "MathAch ~ Sector * cses + (1 | School)"
    base = hlm.LinearMixedModel.from_formula(formula, data)
    model = hlm.LinearMixedModel.from_formula(formula, data, chunk_rows=1000)
    assert (data["Sector"].iloc[:1000] == "Public").all()
    assert model.fixed_names == base.fixed_names
    assert "Sector[T.Catholic]" in model.fixed_names
    assert model.objective([0.4]) == pytest.approx(base.objective([0.4]), rel=1e-10)


def test_chunk_rows_with_integer_categorical_levels_in_later_chunks():
    """C(k) of an integer column: levels first seen in a later chunk must still be coded."""
    rng = np.random.default_rng(7)
    n = 900
    k = np.repeat([0, 1, 2], 300)  # sorted: chunk 1 sees only k == 0
    g = rng.integers(0, 30, n)
    y = 0.5 * k + rng.normal(size=30)[g] + rng.normal(size=n)
    data = pd.DataFrame({"y": y, "k": k, "g": g.astype(str)})
    formula = "y ~ C(k) + (1 | g)"
    base = hlm.LinearMixedModel.from_formula(formula, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = hlm.LinearMixedModel.from_formula(formula, data, chunk_rows=250)
    assert base.fixed_names == ["(Intercept)", "C(k)[T.1]", "C(k)[T.2]"]
    assert model.fixed_names == base.fixed_names
    assert model.objective([0.7]) == pytest.approx(base.objective([0.7]), rel=1e-10)
