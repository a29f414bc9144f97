"""Distributed fits on Dask dataframes, on a LocalCluster of 2 workers (127.0.0.1).

The workers are threads, to keep the suite light (worker processes would each import the
scientific stack); what travels to workers is checked to pickle in a test of its own.

References: lme4's fit of sleepstudy (tests/fixtures/lme4, provenance in its README) and
the in-memory fit of the same data (criterion within 1e-10, estimates within 1e-6).
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import hlm
import hlm.model
from _stream_helpers import reference, rel, synthetic

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
    )
    with cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture
def small_head(monkeypatch):
    monkeypatch.setattr(hlm.model, "CHUNK_ROWS", 1000)


def _quiet(f, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*a, **kw)


def test_dask_fit_matches_lme4_and_memory(client):
    ref = reference("sleepstudy_corr__REML")
    data = hlm.datasets.load("sleepstudy")
    # shuffled, so every subject is split over several partitions
    shuffled = data.sample(frac=1.0, random_state=1)
    ddf = dd.from_pandas(shuffled, npartitions=4)
    res = hlm.fit(ref["formula"], ddf)
    assert res.criterion == pytest.approx(ref["criterion"], rel=1e-7)
    for name, value in ref["fixef"].items():
        assert res.fixef[name] == pytest.approx(value, rel=1e-5)
    mem = hlm.fit(ref["formula"], data)
    assert res.criterion == pytest.approx(mem.criterion, rel=1e-10)
    assert rel(res.fixef, mem.fixef) < 1e-6
    assert list(res.ranef()["Subject"].index) == list(mem.ranef()["Subject"].index)


def test_dask_statistics_equal_in_memory(client, small_head):
    df = synthetic()
    ddf = dd.from_pandas(df, npartitions=5)
    formula = "y ~ x + s + C(k) + (1 + x | g) + (1 | h)"
    mem = hlm.LinearMixedModel.from_formula(formula, df, weights="w", chunk_rows=1000)
    dist = hlm.LinearMixedModel.from_formula(formula, ddf, weights="w")
    assert dist.frame.n_dropped == mem.frame.n_dropped
    assert dist.fixed_names == mem.fixed_names
    # the first 1,000 clean rows fix the same shift and scale: statistics compare directly
    assert np.array_equal(dist.A.shift, mem.A.shift)
    assert rel(dist.A.G, mem.A.G) < 1e-10
    for a, b in zip(dist.A.ZXy, mem.A.ZXy, strict=True):
        assert rel(a, b) < 1e-10
    theta = mem.cov.start() * 0.6
    assert dist.objective(theta) == pytest.approx(mem.objective(theta), rel=1e-10)
    rd, rm = _quiet(dist.fit), _quiet(mem.fit)
    assert rd.criterion == pytest.approx(rm.criterion, rel=1e-10)
    assert rel(rd.fixef, rm.fixef) < 1e-6


# dask's own Parquet writer trips a pandas deprecation (not ours)
@pytest.mark.filterwarnings("ignore:The inplace keyword")
def test_dask_per_row_outputs_are_lazy(client, tmp_path):
    df = synthetic(n=3000)
    ddf = dd.from_pandas(df, npartitions=3)
    formula = "y ~ x + (1 + x | g)"
    res = _quiet(hlm.fit, formula, ddf, offset="o")
    mem = _quiet(hlm.fit, formula, df, offset="o")
    fitted = res.fitted()
    assert isinstance(fitted, dd.Series)  # nothing computed yet
    got = fitted.compute()
    assert list(got.index) == list(mem.fitted().index)
    assert np.allclose(got.to_numpy(), mem.fitted().to_numpy(), rtol=1e-8, atol=1e-8)
    assert np.allclose(res.residuals().compute(), mem.residuals(), rtol=1e-8, atol=1e-8)
    out = hlm.stream.write_rows(res, tmp_path / "rows", include=["g"])
    written = pd.read_parquet(out)
    assert np.allclose(written["fitted"].sort_index(), mem.fitted(), rtol=1e-8, atol=1e-8)


def test_plan_survives_pickling(small_head):
    # what the workers receive: the plan and the per-row model
    df = synthetic(n=2000)
    model = hlm.LinearMixedModel.from_formula("y ~ x + s + (1 | g)", dd.from_pandas(df, 2))
    plan = pickle.loads(pickle.dumps(model.frame.plan))
    part = plan.partial(df.iloc[:500])
    assert part.A.n == len(df.iloc[:500].dropna(subset=["y", "x", "s", "g"]))
