"""Saving and loading fits; reading data files."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest

import hlm
from hlm.io.readers import _read_csv_checked, read_data


def _same(a, b):
    assert a.summary() == b.summary()
    pd.testing.assert_frame_equal(a.varcorr(), b.varcorr())
    pd.testing.assert_frame_equal(a.fixef_table(), b.fixef_table())
    for g in a.ranef():
        pd.testing.assert_frame_equal(a.ranef()[g], b.ranef()[g])
        pd.testing.assert_frame_equal(a.ranef_var()[g], b.ranef_var()[g])
    assert b.model.objective(b.theta) == pytest.approx(a.criterion, abs=1e-8)


@pytest.mark.parametrize(
    "formula, data",
    [
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
        ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin"),
        ("MathAch ~ 0 + poly(cses, 2) + center(SES) + C(Sector) + (1 | School)", "hsb"),
    ],
)
def test_round_trip(tmp_path, formula, data):
    df = hlm.datasets.load(data)
    res = hlm.fit(formula, df)
    res.save(tmp_path / "fit.hlm")
    back = hlm.load(tmp_path / "fit.hlm")
    _same(res, back)
    assert np.allclose(back.fitted(), res.fitted())
    assert (back.fitted().index == res.fitted().index).all()
    rows = df.iloc[::7]
    assert np.array_equal(back.model.design.Xy(rows), res.model.design.Xy(rows))
    for b0, b1 in zip(res.model.blocks, back.model.blocks, strict=True):
        assert np.array_equal(b0.Z(rows), b1.Z(rows)) and list(b0.levels) == list(b1.levels)
    assert hlm.table(back).to_markdown() == hlm.table(res).to_markdown()


def test_without_rows(tmp_path):
    res = hlm.fit("Reaction ~ Days + (Days | Subject)", hlm.datasets.load("sleepstudy"))
    res.save(tmp_path / "small.hlm", data=False)
    back = hlm.load(tmp_path / "small.hlm")
    _same(res, back)
    with zipfile.ZipFile(tmp_path / "small.hlm") as z:
        assert sorted(z.namelist()) == ["arrays.npz", "result.json"]
    for call in (back.fitted, back.residuals, back.reliability):
        with pytest.raises(hlm.DataError, match="without the rows"):
            call()
    pytest.importorskip("matplotlib")
    back.plot("caterpillar")
    from hlm.plots import profile_theta

    assert profile_theta(back, which=[0], progress=False)


def test_levels_weights_and_hlm_output(tmp_path):
    df = hlm.datasets.load("hsb")
    df = df.assign(w=np.linspace(0.5, 2.0, len(df)))
    spec = hlm.Levels("MathAch ~ SES", {"(Intercept)": "~ MEANSES"}, group="School",
                      random=["(Intercept)", "SES"], center={"SES": "group"})
    res = hlm.fit(spec, df, weights="w")
    res.save(tmp_path / "l.hlm")
    back = hlm.load(tmp_path / "l.hlm")
    _same(res, back)
    assert back.model.source.equations() == spec.equations()
    pd.testing.assert_frame_equal(back.reliability(), res.reliability())
    assert back.summary(style="hlm") == res.summary(style="hlm")


def test_bad_files(tmp_path):
    junk = tmp_path / "junk.hlm"
    junk.write_bytes(b"not a zip")
    with pytest.raises(hlm.DataError, match="not a saved hlm result"):
        hlm.load(junk)
    res = hlm.fit("Yield ~ 1 + (1 | Batch)", hlm.datasets.load("dyestuff"))
    res.save(tmp_path / "ok.hlm")
    with zipfile.ZipFile(tmp_path / "ok.hlm") as z:
        meta, arrays = z.read("result.json"), z.read("arrays.npz")
    with zipfile.ZipFile(tmp_path / "bad.hlm", "w") as z:
        z.writestr("result.json", meta.replace(b'"criterion": ', b'"criterion": 1'))
        z.writestr("arrays.npz", arrays)
    with pytest.raises(hlm.DataError, match="damaged"):
        hlm.load(tmp_path / "bad.hlm")
    with pytest.raises(FileNotFoundError):
        hlm.load(tmp_path / "none.hlm")


def test_state_codec_refuses_foreign_types():
    from hlm.io.formulaic_state import StateError, decode

    with pytest.raises(StateError, match="only formulaic"):
        decode({"__dataclass__": "os:system", "fields": {}})


@pytest.mark.parametrize("reader", ["pyarrow", "csv"])
def test_csv_line_numbers(tmp_path, reader):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n3,4\n5\n")
    read = read_data if reader == "pyarrow" else (lambda p: _read_csv_checked(p, ","))
    with pytest.raises(hlm.DataError, match="line 4 has 1 fields where the header has 2"):
        read(path)
    path.write_text("a,b\n1,2\n3,4\n")
    assert read(path).shape == (2, 2)
