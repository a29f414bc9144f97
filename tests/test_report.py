"""HTML page, notebook display, MathML, JSON and Markdown outputs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hlm
from hlm.report.mathml import aligned_sections, latex_to_mathml

SPEC = hlm.Levels(
    "MathAch ~ cses",
    {"(Intercept)": "~ MEANSES + Sector", "cses": "~ MEANSES + Sector"},
    group="School",
    random=["(Intercept)", "cses"],
)


@pytest.fixture(scope="module")
def hsb():
    return hlm.fit(SPEC, hlm.datasets.load("hsb"))


def test_mathml_subset():
    m = latex_to_mathml(r"\text{SES\_cwc}_{ij} = \beta_{0j}\,x + \gamma_{1,10} \to \text{a\#b}")
    assert "<mtext>SES_cwc</mtext>" in m and "β" in m and "→" in m and "a#b" in m
    assert "<msub><mi>γ</mi><mrow><mn>1</mn><mo>,</mo><mn>10</mn></mrow></msub>" in m
    with pytest.raises(ValueError, match="frac"):
        latex_to_mathml(r"\frac{1}{2}")


def test_aligned_sections_of_level_equations(hsb):
    parts = aligned_sections(SPEC.equations(latex=True))
    titles = [t for t, _ in parts]
    assert titles[:3] == ["Level-1 model", "Level-2 model (School)", "Mixed model"]
    assert len(parts[1][1]) == 2  # one equation per level-1 coefficient
    for _, lines in parts:
        for line in lines:
            latex_to_mathml(line)  # every line renders


def test_page_is_self_contained(hsb):
    pytest.importorskip("matplotlib")
    page = hsb.to_html(plots=["caterpillar", "shrinkage"], progress=False)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<math") > 10
    assert page.count('src="data:image/png;base64,') == 2
    external = re.findall(r'(?:src|href)="(?!data:)[^"]*"', page)
    assert external == []
    for name in hsb.fixef.index:
        assert name in page
    assert "Level-1 model" in page and "HLM-style statistics" in page


def test_page_notes_plots_that_do_not_apply():
    pytest.importorskip("matplotlib")
    res = hlm.fit("diameter ~ 1 + (1 | plate) + (1 | sample)", hlm.datasets.load("penicillin"))
    page = res.to_html(plots=["shrinkage"], progress=False)
    assert "shrinkage plot not shown" in page and "crossed" in page
    assert "Mixed form" in page and "<math" in page


def test_repr_html(hsb):
    frag = hsb._repr_html_()
    assert "<table" in frag and "MEANSES:cses" in frag and "<img" not in frag


def test_markdown_and_json(hsb):
    from hlm.report.markdown import result_markdown

    md = result_markdown(hsb)
    assert "| Sector[T.Catholic]:cses" in md and "Level-2 model" in md
    doc = hsb.to_dict()
    assert doc["levels"] == SPEC.to_text() and doc["fixef"] == pytest.approx(hsb.fixef.to_dict())


@pytest.mark.slow
def test_chromium_screenshot(tmp_path):
    if shutil.which("chromium") is None:
        pytest.skip("chromium not installed")
    script = Path(__file__).resolve().parent.parent / "scripts" / "screenshot_report.py"
    out = subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--height", "1500"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    png = tmp_path / "report.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 50_000
