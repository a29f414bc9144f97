"""hlm.table: models side by side (numbers checked against lme4's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hlm

FIX = Path(__file__).parent / "fixtures" / "lme4"


@pytest.fixture(scope="module")
def fits():
    sleep = hlm.datasets.load("sleepstudy")
    a = hlm.fit("Reaction ~ Days + (Days | Subject)", sleep)
    b = hlm.fit("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", sleep)
    return a, b


def test_numbers_are_lme4s(fits):
    ref = json.loads((FIX / "sleepstudy_corr__REML.json").read_text())
    t = hlm.table(*fits, names=["corr", "uncorr"])
    f = t.frame
    for name, v in ref["fixef"].items():
        assert f.loc[("Fixed effects", name, "estimate"), "corr"] == pytest.approx(v, rel=1e-6)
        assert f.loc[("Fixed effects", name, "se"), "corr"] == pytest.approx(
            ref["fixef_se"][name], rel=1e-5)
    assert f.loc[("Fit", "AIC", "value"), "corr"] == pytest.approx(ref["AIC"], abs=1e-5)
    assert f.loc[("Fit", "Observations", "value"), "uncorr"] == 180
    sd = {(r["grp"], r["var1"], r["var2"]): r["sdcor"] for r in ref["varcorr_table"]}
    assert f.loc[("Variance components", "Subject: Days", "sd"), "corr"] == pytest.approx(
        sd[("Subject", "Days", None)], rel=1e-4)


def test_formats(fits):
    t = hlm.table(*fits, names=["corr", "uncorr"], digits=2)
    md = t.to_markdown()
    lines = md.splitlines()
    assert lines[0].split("|")[2].strip() == "corr"
    assert "| (Intercept)" in md and "(6.82)" in md
    assert md.index("Residual") > md.index("Subject: Days")  # residual last of the components
    tex = t.to_latex(caption="Sleep")
    assert "\\toprule" in tex and "\\caption{Sleep}" in tex
    assert "Subject: corr((Intercept), Days)" in tex
    html = t.to_html()
    assert html.count("<tr") == len(t.rows()[1]) + 1
    ci = hlm.table(fits[0], intervals=True).to_markdown()
    assert "[" in ci and "Wald" in ci


def test_ols_result_and_errors():
    spec = hlm.Levels("Reaction ~ Days", group="Subject", random=[])
    ols = hlm.fit(spec, hlm.datasets.load("sleepstudy"))
    t = hlm.table(ols)
    assert ("Fixed effects", "Days", "estimate") in t.frame.index
    with pytest.raises(ValueError):
        hlm.table()
    with pytest.raises(ValueError, match="names"):
        hlm.table(ols, names=["a", "b"])
