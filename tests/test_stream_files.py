"""Streaming fits from Parquet and CSV files: the in-memory answer, and lme4's.

References: the lme4 fits of tests/fixtures/lme4 (R script and versions in its README) for
the models; the in-memory fit of the same data for the statistics at equal theta (the
issue's criterion: merged cross-products and criterion within 1e-10 relative; at the
optimum, criterion within 1e-10 and estimates within 1e-6 relative).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hlm
import hlm.model
from _stream_helpers import raw_units, reference, rel, synthetic
from hlm.errors import DataError
from test_reference_lme4 import fixef_name_map

pytest.importorskip("pyarrow")


@pytest.fixture
def small_head(monkeypatch):
    """Fix the design on the first 1,000 rows, so that small data span many batches."""
    monkeypatch.setattr(hlm.model, "CHUNK_ROWS", 1000)


def _fit_quiet(model, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hlm.fit(model, data, **kw)


# CSV has no level order: a text predictor's levels are sorted (Sector: Catholic, Public),
# so the HSB model with Sector is compared with lme4 from Parquet only (R's order kept)
CASES = [
    (case, fmt)
    for case in ["sleepstudy_corr__REML", "hsb_d_slopes_outcomes__ML", "penicillin__REML",
                 "pastes__ML"]
    for fmt in ["parquet", "csv"]
    if not (fmt == "csv" and case.startswith("hsb_d"))
]


@pytest.mark.parametrize("case,fmt", CASES)
def test_streamed_fit_matches_lme4(case, fmt, tmp_path, small_head):
    ref = reference(case)
    data = hlm.datasets.load(ref["data"])
    path = tmp_path / f"data.{fmt}"
    if fmt == "parquet":
        data.to_parquet(path, row_group_size=700)
    else:
        data.to_csv(path, index=False)
    res = _fit_quiet(ref["formula"], str(path), method=ref["method"], batch_rows=1100)
    assert res.nobs == ref["nobs"]
    assert res.criterion == pytest.approx(ref["criterion"], rel=1e-7)
    mapping = fixef_name_map(ref["fixef"], list(res.fixef.index), data)
    for name, ours in mapping.items():
        expected = ref["fixef"][name]
        assert abs(res.fixef[ours] - expected) <= max(1e-5 * abs(expected), 1e-6), name
    assert res.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    # and the in-memory fit of the same data, to the tolerances
    mem = _fit_quiet(ref["formula"], data, method=ref["method"])
    assert res.criterion == pytest.approx(mem.criterion, rel=1e-10)
    assert rel(res.fixef, mem.fixef) < 1e-6
    for group, table in mem.ranef().items():  # same levels in the same (lme4) order
        assert list(res.ranef()[group].index) == list(table.index)


MODELS = [
    ("y ~ x + s + C(k) + (1 + x | g)", {}),
    ("y ~ x + s + (1 | g) + (1 | h)", {"weights": "w", "offset": "o"}),
    ("y ~ 0 + x + (x || g)", {"method": "ML"}),
    ("y ~ x + (1 | g:h) + (1 | h)", {}),
]


@pytest.mark.parametrize("formula,kw", MODELS)
def test_cross_products_and_criterion_equal_in_memory(formula, kw, tmp_path, small_head):
    df = synthetic()
    path = tmp_path / "d.parquet"
    df.to_parquet(path, row_group_size=900)
    mem = hlm.LinearMixedModel.from_formula(formula, df, **kw)
    streamed = hlm.LinearMixedModel.from_formula(formula, str(path), **kw)
    assert isinstance(streamed, hlm.LinearMixedModel)
    assert streamed.n == mem.n and streamed.frame.n_dropped == mem.frame.n_dropped
    assert streamed.frame.dropped_by == mem.frame.dropped_by
    assert streamed.fixed_names == mem.fixed_names
    assert [b.group for b in streamed.blocks] == [b.group for b in mem.blocks]
    for bs, bm in zip(streamed.blocks, mem.blocks, strict=True):
        assert list(bs.levels) == list(bm.levels)
    Gs, Zs = raw_units(streamed)
    Gm, Zm = raw_units(mem)
    assert rel(Gs, Gm) < 1e-10
    for a, b in zip(Zs, Zm, strict=True):
        assert rel(a, b) < 1e-10
    for a, b in zip(streamed.A.ZZ, mem.A.ZZ, strict=True):
        assert rel(a, b) < 1e-10
    for key, pair in mem.A.pairs.items():
        assert rel(streamed.A.pairs[key].toarray(), pair.toarray()) < 1e-10
    assert streamed.A.sum_log_w == pytest.approx(mem.A.sum_log_w, rel=1e-10)
    rng = np.random.default_rng(3)
    for _ in range(3):
        theta = mem.cov.start() * rng.uniform(0.2, 1.5, mem.cov.ntheta)
        assert streamed.objective(theta) == pytest.approx(mem.objective(theta), rel=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rs, rm = streamed.fit(), mem.fit()
    assert rs.criterion == pytest.approx(rm.criterion, rel=1e-10)
    assert rel(rs.fixef, rm.fixef) < 1e-6
    assert rel(rs.theta, rm.theta) < 1e-4


def test_same_shift_gives_same_statistics(tmp_path, small_head):
    # without missing values the first 1,000 rows are the same, hence the same transform
    df = synthetic().dropna()
    path = tmp_path / "d.parquet"
    df.to_parquet(path, row_group_size=700)
    formula = "y ~ x + s + (1 + x | g)"
    mem = hlm.LinearMixedModel.from_formula(formula, df, chunk_rows=1000)
    streamed = hlm.LinearMixedModel.from_formula(formula, str(path))
    assert np.array_equal(streamed.A.shift, mem.A.shift)
    assert rel(streamed.A.G, mem.A.G) < 1e-12
    assert rel(streamed.A.ZXy[0], mem.A.ZXy[0]) < 1e-12


def test_many_files_glob_directory_and_dataset(tmp_path, small_head):
    import pyarrow.dataset as ds

    df = synthetic()
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, start in enumerate(range(0, len(df), 1500)):
        df.iloc[start : start + 1500].to_parquet(folder / f"part-{i:02d}.parquet")
    formula = "y ~ x + s + (1 | g)"
    mem = _fit_quiet(formula, df)
    for data in [str(folder / "*.parquet"), str(folder), ds.dataset(str(folder))]:
        res = _fit_quiet(formula, data, batch_rows=1000)
        assert res.criterion == pytest.approx(mem.criterion, rel=1e-10)
        assert rel(res.fixef, mem.fixef) < 1e-6


def test_csv_types_widen_as_a_whole_file_reader_would(tmp_path):
    # an integer-looking column that turns decimal late in the file: pyarrow infers int64
    # from the first block; the pass starts again with float64, as pandas reads the file
    df = synthetic(n=40_000).dropna()
    df["x"] = np.round(df["x"] * 100).astype(int).astype(object)
    df.loc[df.index[-1], "x"] = 1.5
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    back = pd.read_csv(path)
    assert back["x"].dtype == float
    res = _fit_quiet("y ~ x + (1 | g)", str(path), batch_rows=10_000)
    mem = _fit_quiet("y ~ x + (1 | g)", back)
    assert res.criterion == pytest.approx(mem.criterion, rel=1e-10)


def test_malformed_csv_line_is_an_error_with_its_line_number(tmp_path):
    path = tmp_path / "bad.csv"
    lines = ["y,x,g"] + [f"{i % 7}.5,{i % 5},{i % 11}" for i in range(50)]
    lines[31] = "1.0,2.0"  # line 32 of the file has a field missing
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"bad\.csv, line 32: expected 3 fields but found 2"):
        hlm.fit("y ~ x + (1 | g)", str(path))
    lines[31] = "1.0,2.0,3,4"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 32: expected 3 fields but found 4"):
        hlm.fit("y ~ x + (1 | g)", str(path))


def test_crossed_block_over_budget_is_refused_with_sizes(tmp_path):
    rng = np.random.default_rng(1)
    n = 30_000
    df = pd.DataFrame(
        {"y": rng.standard_normal(n), "a": rng.integers(0, 3000, n), "b": rng.integers(0, 2000, n)}
    )
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    with pytest.raises(DataError) as err:
        hlm.fit("y ~ 1 + (1 | a) + (1 | b)", str(path), memory="50MB")
    text = str(err.value)
    assert "2,000 random effects" in text and "128 MB" in text and "50 MB" in text


def test_missing_raise_and_empty_data(tmp_path):
    df = synthetic()
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    with pytest.raises(DataError, match="missing values in 'x'"):
        hlm.fit("y ~ x + (1 | g)", str(path), missing="raise")
    df.iloc[:0].to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(DataError, match="no rows"):
        hlm.fit("y ~ x + (1 | g)", str(tmp_path / "empty.parquet"))
    with pytest.raises(DataError, match="name a column"):
        hlm.fit("y ~ x + (1 | g)", str(path), weights=np.ones(len(df)))
    with pytest.raises(DataError, match="not found"):
        hlm.fit("y ~ nothere + (1 | g)", str(path))
    with pytest.raises(DataError, match="no file"):
        hlm.fit("y ~ x + (1 | g)", str(tmp_path / "absent.parquet"))


def test_per_row_outputs_by_a_second_pass(tmp_path, small_head):
    import pyarrow.parquet as pq

    df = synthetic()
    path = tmp_path / "d.parquet"
    df.to_parquet(path, row_group_size=800)
    formula = "y ~ x + s + (1 + x | g) + (1 | h)"
    res = _fit_quiet(formula, str(path), offset="o", batch_rows=1000)
    mem = _fit_quiet(formula, df, offset="o")
    out = hlm.stream.write_rows(res, tmp_path / "rows.parquet", include=["g"])
    rows = pq.read_table(out).to_pandas().set_index("row")
    assert list(rows.index) == list(mem.fitted().index)  # dropped rows left out, as in memory
    assert np.allclose(rows["fitted"], mem.fitted(), rtol=1e-8, atol=1e-8)
    assert np.allclose(rows["residual"], mem.residuals(), rtol=1e-8, atol=1e-8)
    assert (rows["g"].to_numpy() == df.loc[rows.index, "g"].to_numpy()).all()
    with pytest.raises(DataError, match="write_rows"):
        res.fitted()
    with pytest.raises(NotImplementedError, match="rows in memory"):
        res.reliability()


def test_progress_bar_only_when_asked(tmp_path, capsys):
    df = synthetic(n=3000)
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    _fit_quiet("y ~ x + (1 | g)", str(path), batch_rows=1000, progress=True)
    assert "rows" in capsys.readouterr().err
    _fit_quiet("y ~ x + (1 | g)", str(path), batch_rows=1000)  # stderr is not a terminal
    assert capsys.readouterr().err == ""


def test_memory_budget_sets_batches():
    from hlm.stream.memory import batch_rows_for, parse_bytes

    assert parse_bytes("1GB") == 10**9 and parse_bytes("2 GiB") == 2 * 2**30
    assert parse_bytes(5e8) == 5 * 10**8
    with pytest.raises(ValueError, match="cannot read the memory size"):
        parse_bytes("lots")
    assert batch_rows_for(parse_bytes("1GB"), 11, 11, 2) > 2 * batch_rows_for(
        parse_bytes("400MB"), 11, 11, 2
    )


@pytest.mark.parametrize("engine", ["em", "fisher"])
def test_other_engines_fit_a_streamed_model(engine, tmp_path):
    # a streamed model is an ordinary LinearMixedModel: every engine on the cross-products
    # fits it, to the same answer as on the in-memory model
    data = hlm.datasets.load("sleepstudy")
    path = tmp_path / "s.parquet"
    data.to_parquet(path, row_group_size=50)
    formula = "Reaction ~ Days + (Days | Subject)"
    streamed = _fit_quiet(formula, str(path), engine=engine, batch_rows=60)
    mem = _fit_quiet(formula, data, engine=engine)
    assert streamed.fit_log.engine == mem.fit_log.engine
    assert streamed.criterion == pytest.approx(mem.criterion, rel=1e-10)
    assert rel(streamed.fixef, mem.fixef) < 1e-6
    ref = reference("sleepstudy_corr__REML")
    assert streamed.criterion == pytest.approx(ref["criterion"], rel=1e-6)
