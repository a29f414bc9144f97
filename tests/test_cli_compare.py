"""``hlm compare``: likelihood-ratio tables from the command line.

Reference numbers are R's (tests/fixtures/inference/lrt.json, made by
tests/fixtures/inference/make_inference_refs.R with lme4 1.1-31: ``anova``, ``logLik`` of
``lm`` and ``lmer`` fits, and the closed-form chi-bar-square p-values).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import hlm
from _inference_refs import cases, vec
from hlm.cli import main
from hlm.errors import HLMWarning

LRT = cases("lrt")
DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("compare")
    hlm.datasets.load("sleepstudy").to_csv(d / "sleep.csv", index=False)
    hlm.datasets.load("hsb").to_csv(d / "hsb.csv", index=False)
    return d


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def cli_models(case) -> list[str]:
    """The case's formulas as MODEL arguments: ``ols:`` for those without a bar term."""
    return [f if "|" in f else f"ols: {f}" for f in case["formulas"]]


def compare_json(capsys, path, models, *extra) -> dict:
    code, out, err = run(capsys, "compare", path, *models, "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)


def check_against_r(doc: dict, case: dict, p_key: str) -> None:
    tests = doc["tests"]
    assert doc["criterion"] == case["criterion"]
    assert [t["npar"] for t in tests] == list(vec(case["npar"]).astype(int))
    for key in ("deviance", "aic", "bic"):
        np.testing.assert_allclose([t[key] for t in tests], vec(case[key]), atol=2e-6)
    np.testing.assert_allclose([t["loglik"] for t in tests], vec(case["loglik"]), atol=1e-6)
    assert tests[0]["chisq"] is None and tests[0]["p"] is None and tests[0]["null"] is None
    np.testing.assert_allclose([t["chisq"] for t in tests[1:]], vec(case["chisq"])[1:], atol=5e-6)
    assert [t["df"] for t in tests[1:]] == list(vec(case["df"])[1:].astype(int))
    np.testing.assert_allclose([t["p"] for t in tests[1:]], vec(case[p_key])[1:], rtol=2e-4)


def test_hierarchy_ols_random_intercept_slope_matches_r(files, capsys):
    """OLS vs random intercept vs random slope on sleepstudy (REML criteria, as R)."""
    case = LRT["sleep_three"]
    doc = compare_json(capsys, files / "sleep.csv", cli_models(case))
    check_against_r(doc, case, "p_mixture")
    assert [t["null"] for t in doc["tests"][1:]] == [
        "0.5 chi2(0) + 0.5 chi2(1)",
        "0.5 chi2(1) + 0.5 chi2(2)",
    ]
    assert [m["kind"] for m in doc["models"]] == ["least squares", "mixed", "mixed"]
    assert [m["name"] for m in doc["models"]] == ["M1", "M2", "M3"]
    assert any("boundary-corrected" in n for n in doc["notes"])


def test_fixed_effects_differ_refits_by_ml(files, capsys):
    case = LRT["hsb_means_ml"]
    doc = compare_json(capsys, files / "hsb.csv", cli_models(case))
    check_against_r(doc, case, "p_chi2")
    assert any("refitted 2 REML fit(s) by ML" in n for n in doc["notes"])
    # the fits are reported as fitted (REML), the tests on their ML refits
    assert {m["fit"]["method"] for m in doc["models"]} == {"REML"}


def test_level_specs_without_and_with_random_effects(files, capsys):
    """The test of the hierarchy written as level equations (``random:`` empty)."""
    case = LRT["hsb_ri_vs_none"]
    specs = ["level1: MathAch ~ 1; group: School; random:", "level1: MathAch ~ 1; group: School"]
    doc = compare_json(capsys, files / "hsb.csv", specs, "--names", "ols,school")
    check_against_r(doc, case, "p_mixture")
    assert [t["model"] for t in doc["tests"]] == ["ols", "school"]
    assert doc["models"][0]["fit"]["levels"].startswith("level1: MathAch ~ 1")
    assert doc["models"][0]["fit"]["engine"] == "ols"


def test_json_follows_the_schemas(files, capsys):
    jsonschema = pytest.importorskip("jsonschema")
    from hlm.cli.compare_format import schema
    from hlm.report.result_dict import schema as fit_schema

    doc = compare_json(capsys, files / "sleep.csv", cli_models(LRT["sleep_three"]))
    jsonschema.validate(doc, schema())
    for model in doc["models"]:
        jsonschema.validate(model["fit"], fit_schema())
    assert doc["schema"] == "hlm-compare-result/1"
    broken = dict(doc, tests=[dict(doc["tests"][0], df="one")] + doc["tests"][1:])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema())


def test_engine_applies_to_the_mixed_models(files, capsys):
    case = LRT["sleep_three"]
    doc = compare_json(capsys, files / "sleep.csv", cli_models(case), "--engine", "em+fisher")
    assert [m["fit"]["engine"] for m in doc["models"]] == ["ols", "em+fisher", "em+fisher"]
    check_against_r(doc, case, "p_mixture")


def test_text_markdown_html_and_output_file(files, capsys, tmp_path):
    models = cli_models(LRT["sleep_three"])
    code, text, _ = run(capsys, "compare", files / "sleep.csv", *models)
    assert code == 0
    assert text.startswith("Models:\n  M1: Reaction ~ Days  (least squares, no random effects)")
    assert "Likelihood-ratio tests (REML criteria" in text
    assert "0.5 chi2(1) + 0.5 chi2(2)" in text and "Models side by side" in text
    assert "Subject: corr((Intercept), Days)" in text
    code, md, _ = run(capsys, "compare", files / "sleep.csv", *models, "--format", "markdown")
    assert code == 0 and md.startswith("# Model comparison")
    assert "| M3    |    6 |" in md and "| Groups: Subject" in md
    page = tmp_path / "compare.html"
    code, out, _ = run(
        capsys, "compare", files / "sleep.csv", *models, "--format", "html", "-o", page
    )
    assert code == 0 and out == ""
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<h1>Model comparison</h1>" in html
    assert not re.search(r'(src|href)="https?:', html)  # self-contained


def test_rows_missing_in_some_model_are_left_out_of_all(files, capsys, tmp_path):
    data = hlm.datasets.load("sleepstudy")
    data.loc[[3, 40], "Days"] = np.nan
    path = tmp_path / "sleep_na.csv"
    data.to_csv(path, index=False)
    models = ["Reaction ~ 1 + (1 | Subject)", "Reaction ~ Days + (1 | Subject)"]
    doc = compare_json(capsys, path, models)
    assert [m["fit"]["nobs"] for m in doc["models"]] == [178, 178]
    assert "left out 2 of 180 rows" in doc["notes"][0] and "Days (2 missing)" in doc["notes"][0]
    # the same as comparing fits to the complete rows by hand
    complete = data.dropna()
    with pytest.warns(HLMWarning, match="refitted 2 REML fit"):
        by_hand = hlm.anova(*(hlm.fit(m, complete) for m in models))
    np.testing.assert_allclose(
        [t["deviance"] for t in doc["tests"]], by_hand["deviance"], rtol=1e-9
    )


@pytest.mark.parametrize(
    "models, words",
    [
        (["Reaction ~ Days + (1 | Subject)"], ["two or more models"]),
        (["Reaction ~ Days + (1 | Subject)", "Reaction ~ Dayz + (1 | Subject)"], ["M2", "Dayz"]),
        (["Reaction ~ Days + (1 | Subject)", "Reaction ~ Days"], ["M2", "ols: Reaction ~ Days"]),
        (
            ["Reaction ~ Days + (1 | Subject)", "ols: Reaction ~ Days + (1 | Subject)"],
            ["M2", "random-effects term"],
        ),
        (["Reaction ~ Days + (1 | Subject)", "Days ~ 1 + (1 | Subject)"], ["different responses"]),
        (
            ["Reaction ~ Days + (1 | Subject)", "Reaction ~ 1 + (1 | Subject)", "--names", "a"],
            ["--names", "2 distinct"],
        ),
        (
            ["Reaction ~ Days + (1 | Subject)", "ols: Reaction ~ Days", "--engine", "gibbs"],
            ["--engine 'gibbs'"],
        ),
        (["level1: Reaction ~ Days; group: Subjekt", "ols: Reaction ~ Days"], ["M1", "Subjekt"]),
    ],
)
def test_bad_input_exits_2_with_one_line(files, capsys, models, words):
    code, out, err = run(capsys, "compare", files / "sleep.csv", *models)
    assert code == 2 and out == ""
    assert err.startswith("hlm: error: ") and err.count("\n") == 1
    for w in words:
        assert w in err


def test_documented_output_is_what_the_command_prints(files, capsys, monkeypatch):
    """The text block after the first ``hlm compare`` example in docs/cli.md."""
    page = DOC.read_text(encoding="utf-8")
    section = page[page.index("## `hlm compare") :]
    command = re.search(r"^\$ (hlm compare hsb\.csv .*)$", section, re.MULTILINE).group(1)
    shown = re.search(
        r"The first prints:\n\n```text\n(.*?)^```", section, re.MULTILINE | re.DOTALL
    ).group(1)
    import shlex

    monkeypatch.chdir(files)
    code, out, _ = run(capsys, *shlex.split(command)[1:])
    assert code == 0
    assert out.strip() == shown.strip()
