"""Level-equation specs (hlm.Levels) on streamed data: centring and checks by passes.

Reference: the in-memory fit of the same spec and data (itself checked against lme4 in
test_levels.py); criterion within 1e-10 relative, estimates within 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest

import hlm
import hlm.model
from hlm.errors import DataError

pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def hsb_files(tmp_path_factory):
    data = hlm.datasets.load("hsb")
    rng = np.random.default_rng(5)
    data = data.iloc[rng.permutation(len(data))].reset_index(drop=True)  # schools split up
    data.loc[rng.choice(len(data), 30, replace=False), "SES"] = np.nan
    folder = tmp_path_factory.mktemp("hsb")
    data.to_parquet(folder / "hsb.parquet", row_group_size=900)
    return data, str(folder / "hsb.parquet")


def _spec():
    return hlm.Levels(
        "MathAch ~ SES",
        {"(Intercept)": "~ SES_mean + Sector", "SES": "~ SES_mean + Sector"},
        group="School",
        random=["(Intercept)", "SES"],
        center={"SES": ["group", "mean"]},
    )


def test_centred_spec_streamed_equals_in_memory(hsb_files, monkeypatch):
    data, path = hsb_files
    monkeypatch.setattr(hlm.model, "CHUNK_ROWS", 2000)
    mem_spec, file_spec = _spec(), _spec()
    mem = hlm.fit(mem_spec, data)
    res = hlm.fit(file_spec, path, batch_rows=1000)
    assert res.n_dropped == mem.n_dropped == 30
    assert res.criterion == pytest.approx(mem.criterion, rel=1e-10)
    assert np.allclose(res.fixef, mem.fixef, rtol=1e-6)
    assert file_spec.gamma_map() == mem_spec.gamma_map()


def test_grand_centring_of_level_two_variable(hsb_files, monkeypatch):
    data, path = hsb_files
    monkeypatch.setattr(hlm.model, "CHUNK_ROWS", 2000)

    def spec():
        return hlm.Levels(
            "MathAch ~ SES",
            {"(Intercept)": "~ MEANSES", "SES": "~ MEANSES"},
            group="School",
            random=["(Intercept)"],
            center={"MEANSES": "grand", "SES": "grand"},
        )

    mem = hlm.fit(spec(), data)
    res = hlm.fit(spec(), path, batch_rows=1000)
    assert res.criterion == pytest.approx(mem.criterion, rel=1e-10)
    assert np.allclose(res.fixef, mem.fixef, rtol=1e-6)


def test_level_two_predictor_that_varies_gives_the_in_memory_error(hsb_files):
    data, path = hsb_files
    spec = hlm.Levels("MathAch ~ SES", {"(Intercept)": "~ Minority"}, group="School")
    with pytest.raises(DataError) as mem_err:
        hlm.fit(spec, data)
    with pytest.raises(DataError) as file_err:
        hlm.fit(spec, path)
    assert str(file_err.value) == str(mem_err.value)


def test_random_coefficient_constant_within_groups_is_refused(hsb_files):
    data, path = hsb_files
    spec = hlm.Levels("MathAch ~ MEANSES", group="School", random=["(Intercept)", "MEANSES"])
    with pytest.raises(DataError) as mem_err:
        hlm.fit(spec, data)
    with pytest.raises(DataError) as file_err:
        hlm.fit(spec, path)
    assert str(file_err.value) == str(mem_err.value)


def test_centred_spec_on_dask(hsb_files):
    dd = pytest.importorskip("dask.dataframe")
    data, _ = hsb_files
    mem = hlm.fit(_spec(), data)
    res = hlm.fit(_spec(), dd.from_pandas(data, npartitions=4))  # default local scheduler
    assert res.criterion == pytest.approx(mem.criterion, rel=1e-10)
    assert np.allclose(res.fixef, mem.fixef, rtol=1e-6)
