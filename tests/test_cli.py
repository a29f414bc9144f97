"""The ``hlm`` command line: formats, inputs, exit codes (reference numbers from lme4)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import hlm
from hlm.cli import main

FIX = Path(__file__).parent / "fixtures" / "lme4"
SLEEP = json.loads((FIX / "sleepstudy_corr__REML.json").read_text())
HSB_NULL = json.loads((FIX / "hsb_a_anova__REML.json").read_text())
HSB_SPEC = (
    "level1: MathAch ~ cses; level2: (Intercept) ~ MEANSES + Sector, cses ~ MEANSES + Sector; "
    "group: School; random: (Intercept), cses"
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    sleep = hlm.datasets.load("sleepstudy")
    sleep.to_csv(d / "sleep.csv", index=False)
    sleep.to_parquet(d / "sleep.parquet")
    stata = sleep.assign(Subject=sleep["Subject"].astype(str))
    stata.to_stata(d / "sleep.dta", write_index=False)
    hlm.datasets.load("hsb").to_csv(d / "hsb.csv", index=False)
    return d


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fit_json_matches_lme4_and_schema(files, capsys):
    jsonschema = pytest.importorskip("jsonschema")
    from hlm.report.result_dict import schema

    code, out, _ = run(capsys, "fit", files / "sleep.csv", SLEEP["formula"], "--format", "json")
    assert code == 0
    doc = json.loads(out)
    jsonschema.validate(doc, schema())
    for key in ("criterion", "loglik", "aic", "bic", "method", "nobs", "ngroups", "fixef",
                "fixef_se", "sigma", "theta", "varcorr", "singular", "converged", "warnings"):
        assert key in doc
    assert doc["criterion"] == pytest.approx(SLEEP["criterion"], abs=1e-6)
    for name, value in SLEEP["fixef"].items():
        assert doc["fixef"][name] == pytest.approx(value, rel=1e-6)
        assert doc["fixef_se"][name] == pytest.approx(SLEEP["fixef_se"][name], rel=1e-5)
    assert doc["theta"] == pytest.approx(SLEEP["theta"], abs=1e-4)
    assert doc["ngroups"] == {"Subject": 18}


@pytest.mark.parametrize("ext", ["parquet", "dta", "sav"])
def test_file_formats_give_the_same_fit(files, capsys, ext):
    path = files / f"sleep.{ext}"
    if ext == "sav":
        pyreadstat = pytest.importorskip("pyreadstat")
        sleep = hlm.datasets.load("sleepstudy")
        pyreadstat.write_sav(sleep.assign(Subject=sleep["Subject"].astype(str)), str(path))
    code, out, _ = run(capsys, "fit", path, SLEEP["formula"], "--format", "json")
    assert code == 0
    assert json.loads(out)["criterion"] == pytest.approx(SLEEP["criterion"], abs=1e-6)


def test_level_spec_text_file_and_markdown(files, capsys, tmp_path):
    spec = tmp_path / "model.txt"
    spec.write_text(HSB_SPEC.replace("; ", "\n"))
    code, out, _ = run(capsys, "fit", files / "hsb.csv", spec, "--format", "markdown")
    assert code == 0
    assert "Level-1 model" in out and "| MEANSES:cses" in out
    code2, out2, _ = run(capsys, "fit", files / "hsb.csv", HSB_SPEC)
    assert code2 == 0 and "gamma_11 -> MEANSES:cses" in out2 and "REML criterion" in out2


def test_plots_save_and_output_file(files, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out.md"
    cat, saved = tmp_path / "cat.png", tmp_path / "fit.hlm"
    code, _, _ = run(
        capsys, "fit", files / "sleep.csv", SLEEP["formula"], "--format", "markdown", "-o", out,
        "--plot", f"caterpillar={cat}", "--save", saved, "--quiet",
    )
    assert code == 0
    assert out.read_text().startswith("# Linear mixed model")
    assert cat.read_bytes()[:4] == b"\x89PNG" and cat.stat().st_size > 10_000
    assert hlm.load(saved).criterion == pytest.approx(SLEEP["criterion"], abs=1e-6)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["fit", "{d}/sleep.csv", "Reaction ~ Days + (1 | Subjet)"], ["Subjet"]),
        (["fit", "{d}/sleep.csv", "Reaction ~ Dayz + (1 | Subject)"], ["Dayz"]),
        (["fit", "{d}/sleep.csv", "Reaction ~ Days"], ["no random-effects term"]),
        (["fit", "{d}/none.csv", "y ~ x + (1 | g)"], ["no such data file"]),
        (["fit", "{d}/sleep.xlsx", "y ~ x + (1 | g)"], ["no such data file"]),
        (["fit", "{d}/sleep.csv", "Reaction ~ Days + (1 | Subject)", "--plot", "pie=p.png"],
         ["unknown plot 'pie'"]),
        (["fit", "{d}/sleep.csv", "level1: Reaction ~ Days; group: Subjectt"], ["Subjectt"]),
        (["describe", "{d}/sleep.csv", "--group", "Subj"], ["Subj"]),
    ],
)
def test_bad_input_exits_2_with_one_line(files, capsys, argv, words):
    code, out, err = run(capsys, *[a.format(d=files) for a in argv])
    assert code == 2
    assert err.startswith("hlm: error: ") and err.count("\n") == 1
    for w in words:
        assert w in err


def test_unknown_suffix_and_engine(files, capsys, tmp_path):
    odd = tmp_path / "sleep.xlsx"
    odd.write_bytes(b"not a spreadsheet")
    code, _, err = run(capsys, "fit", odd, "Reaction ~ Days + (1 | Subject)")
    assert code == 2 and ".xlsx" in err
    code, _, err = run(capsys, "fit", files / "sleep.csv", "Reaction ~ Days + (1|Subject)",
                       "--engine", "gibbs")
    assert code == 2 and "'gibbs'" in err and "em+fisher" in err
    code, _, err = run(capsys, "fit", files / "sleep.csv", "ols: Reaction ~ Days",
                       "--engine", "em")
    assert code == 2 and "least squares" in err


def test_engine_passes_through_and_json_has_varcorr_se(files, capsys):
    """--engine reaches hlm.fit; se against R (tests/fixtures/engines, expected information)."""
    ref = json.loads((FIX.parent / "engines" / "se_sleepstudy_corr__REML.json").read_text())
    code, out, err = run(capsys, "fit", files / "sleep.csv", SLEEP["formula"],
                         "--engine", "em+fisher", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["engine"] == "em+fisher" and doc["optimizer"] != "ols"
    assert doc["criterion"] == pytest.approx(SLEEP["criterion"], abs=1e-6)
    assert [r["grp"] for r in doc["varcorr"]] == ref["grp"]
    se = [r["se"] for r in doc["varcorr"]]
    assert se == pytest.approx(ref["se_expected"], rel=2e-3)


def test_ols_prefix_fits_least_squares(files, capsys):
    # R: logLik(lm(Reaction ~ Days, sleepstudy), REML = TRUE) (tests/fixtures/inference)
    from _inference_refs import cases

    ref = cases("lrt")["sleep_ri_vs_none"]
    code, out, _ = run(capsys, "fit", files / "sleep.csv", "ols: Reaction ~ Days",
                       "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["engine"] == "ols" and doc["theta"] == [] and "se" not in doc["varcorr"][0]
    assert doc["loglik"] == pytest.approx(ref["loglik"][0], abs=1e-6)


@pytest.mark.parametrize(
    "text, line, fields",
    [("y,x,g\n1,2,a\n2,3\n3,4,b\n", 3, 2), ("y,x,g\n1,2,a\n2,3,b\n3,4,b,9\n", 4, 4)],
)
def test_malformed_csv_line_is_named(capsys, tmp_path, text, line, fields):
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    code, _, err = run(capsys, "fit", bad, "y ~ x + (1 | g)")
    assert code == 2
    assert f"line {line} has {fields} fields" in err


def test_describe_levels_and_icc(files, capsys):
    code, out, _ = run(capsys, "describe", files / "hsb.csv", "--group", "School",
                       "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["ngroups"] == 160 and doc["group_size"]["min"] == 14
    v = doc["variables"]
    assert v["MEANSES"]["level"] == 2 and v["Sector"]["level"] == 2
    assert v["SES"]["level"] == 1 and v["Minority"]["level"] == 1
    # lme4 REML fit of MathAch ~ 1 + (1 | School)
    tau, sigma2 = (r["vcov"] for r in HSB_NULL["varcorr_table"])
    assert v["MathAch"]["icc"] == pytest.approx(tau / (tau + sigma2), abs=1e-5)
    code, text, _ = run(capsys, "describe", files / "hsb.csv", "--group", "School")
    assert code == 0 and "level 2" in text and "160" in text


def test_datasets_and_example(capsys, tmp_path):
    code, out, _ = run(capsys, "datasets")
    assert code == 0 and "sleepstudy" in out
    code, _, _ = run(capsys, "datasets", "dyestuff", "-o", tmp_path / "d.csv")
    assert code == 0 and len(pd.read_csv(tmp_path / "d.csv")) == 30


def test_python_dash_m_exit_codes(files):
    bad = subprocess.run([sys.executable, "-m", "hlm", "fit", str(files / "sleep.csv"),
                          "Reaction ~ Days + (1 | Nope)"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Nope" in bad.stderr and bad.stderr.count("\n") == 1


def test_progress_fit_matches_hlm_fit_and_restores_methods(monkeypatch):
    from hlm.cli.fitting import fit_with_progress
    from hlm.progress import progress_bar, progress_enabled

    data = hlm.datasets.load("sleepstudy")
    res = fit_with_progress(SLEEP["formula"], data, progress=True)
    assert res.criterion == pytest.approx(SLEEP["criterion"], abs=1e-6)
    assert "objective" not in vars(res.model)  # the counting wrapper is gone
    monkeypatch.setenv("HLM_PROGRESS", "0")
    assert progress_enabled() is False and progress_bar(total=3).disable
    monkeypatch.setenv("HLM_PROGRESS", "1")
    assert progress_enabled() is True and progress_enabled(False) is False


def test_least_squares_spec(files, capsys):
    spec = "level1: MathAch ~ cses; group: School; random:"
    code, out, _ = run(capsys, "fit", files / "hsb.csv", spec, "--format", "json")
    assert code == 0 and json.loads(out)["theta"] == [] and json.loads(out)["engine"] == "ols"
    code, _, err = run(capsys, "fit", files / "hsb.csv", spec, "--plot", "caterpillar=c.png")
    assert code == 2 and "no random effects" in err
