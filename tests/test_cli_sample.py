"""``hlm sample``: the Bayesian fit from the command line.

The posterior means are checked against nutpie's posterior of the same model
(tests/fixtures/bayes/nutpie_refs.json, made by benchmarks/bayes_bench.py; provenance in
tests/fixtures/bayes/README.md); the rest checks that the command passes its options to
:func:`hlm.sample` and reports what it returns, in the documented layouts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hlm
from hlm.cli import main

pytest.importorskip("arviz")

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "cli.md"
NUTPIE = ROOT / "tests" / "fixtures" / "bayes" / "nutpie_refs.json"
MODEL = "Reaction ~ Days + (Days | Subject)"
#: short NumPy-engine chains in one process: quick, and no compilation needed
QUICK = ["--engine", "numpy", "--cores", "1", "--quiet"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sample")
    data = hlm.datasets.load("sleepstudy")
    data.to_csv(d / "sleep.csv", index=False)
    na = data.copy()
    na.loc[[3, 50], "Reaction"] = np.nan
    na.to_csv(d / "sleep_na.csv", index=False)
    return d


@pytest.fixture(scope="module")
def json_run(files):
    """One run with JSON output and both plots: (document, folder, stdout, stderr).

    Module-scoped, so standard output and error are captured here rather than by capsys.
    """
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    argv = [
        "sample", files / "sleep.csv", MODEL, *QUICK, "--chains", "2", "--draws", "200",
        "--warmup", "200", "--seed", "5", "--format", "json", "-o", files / "run.json",
        "--plot", f"trace={files / 'trace.png'}", "--plot", f"density={files / 'density.png'}",
    ]  # fmt: skip
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    assert code == 0, err.getvalue()
    doc = json.loads((files / "run.json").read_text(encoding="utf-8"))
    return doc, files, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------------- JSON
def test_json_follows_the_schema(json_run):
    jsonschema = pytest.importorskip("jsonschema")
    from hlm.cli.sample_format import schema

    doc, *_ = json_run
    jsonschema.validate(doc, schema())
    assert doc["schema"] == "hlm-sample-result/1"
    assert (doc["chains"], doc["draws"], doc["warmup"], doc["seed"]) == (2, 200, 200, 5)
    assert doc["engine"] == "numpy" and doc["nobs"] == 180 and doc["n_dropped"] == 0
    assert doc["ngroups"] == {"Subject": 18}
    assert list(doc["fixef"]) == ["(Intercept)", "Days"]
    params = [r["parameter"] for r in doc["varcorr"]]
    assert params == [
        "sd(Subject: (Intercept))",
        "sd(Subject: Days)",
        "corr(Subject: (Intercept),Days)",
        "sigma",
    ]
    assert set(doc["diagnostics"]) == {"(Intercept)", "Days", *params}
    for d in doc["diagnostics"].values():
        assert d["lower"] < d["mean"] < d["upper"] and d["sd"] > 0
        assert 0.9 < d["rhat"] < 1.2 and d["ess_bulk"] > 10 and d["ess_tail"] > 10
    # 400 draws in all cannot reach an ESS of 400 on every parameter: the check must say so
    assert doc["converged"] is False
    assert any("ESS below 400" in w and "--draws" in w for w in doc["warnings"])


def test_schema_file_is_the_one_documented():
    from hlm.cli.sample_format import schema

    s = schema()
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("### JSON output of `hlm sample`") :]
    section = section[: section.index("\n## ")]
    for name in s["properties"]:
        assert f"`{name}`" in section, f"docs/cli.md does not describe the field {name!r}"
    assert set(s["required"]) == set(s["properties"])


def test_json_is_what_hlm_sample_returns(json_run):
    """The same options and seed through the library give the same posterior."""
    doc, files, *_ = json_run
    from hlm.errors import ConvergenceWarning

    data = pd.read_csv(files / "sleep.csv")
    with pytest.warns(ConvergenceWarning):  # short chains: the run is flagged
        post = hlm.sample(
            MODEL, data, chains=2, draws=200, warmup=200, seed=5, engine="numpy", cores=1,
            progress=False,
        )  # fmt: skip
    table = post.fixef_table()
    for name, row in table.iterrows():
        got = doc["fixef"][name]
        np.testing.assert_allclose(
            [got["mean"], got["sd"], got["lower"], got["upper"]],
            row[["mean", "sd", "lower", "upper"]].to_numpy(float),
            rtol=1e-12,
        )
    diag = post.diagnostics()
    for name, row in diag.iterrows():
        got = doc["diagnostics"][name]
        np.testing.assert_allclose(
            [got["rhat"], got["ess_bulk"], got["ess_tail"]],
            row[["r_hat", "ess_bulk", "ess_tail"]].to_numpy(float),
            rtol=1e-12,
        )
    assert doc["sigma"]["mean"] == pytest.approx(post.sigma, rel=1e-12)
    vc = post.varcorr()
    np.testing.assert_allclose([r["vcov"] for r in doc["varcorr"]], vc["vcov"], rtol=1e-12)


def test_posterior_means_agree_with_nutpie(json_run):
    """Fixed effects and sigma within 4 combined Monte Carlo standard errors of nutpie's
    posterior means for the same model (priors on the SDs differ, so not those)."""
    doc, *_ = json_run
    ref = json.loads(NUTPIE.read_text(encoding="utf-8"))["cells"]["sleepstudy"]["summary"]
    for name in ("(Intercept)", "Days", "sigma"):
        d = doc["diagnostics"][name]
        mcse = d["sd"] / np.sqrt(d["ess_bulk"])
        tol = 4 * np.hypot(mcse, ref[name]["mcse"])
        assert abs(d["mean"] - ref[name]["mean"]) < tol, (name, d["mean"], ref[name]["mean"])


# ------------------------------------------------------------------------- plots
@pytest.mark.parametrize("name", ["trace.png", "density.png"])
def test_plots_are_written(json_run, name):
    mpimg = pytest.importorskip("matplotlib.image")
    _, files, *_ = json_run
    path = files / name
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 20_000
    img = mpimg.imread(path)
    assert img.shape[0] > 500 and img.shape[1] > 500
    # something drawn: dark pixels (lines, text) on a light background
    gray = img[..., :3].mean(axis=2)
    assert 0.001 < (gray < 0.5).mean() < 0.5


def test_quiet_run_writes_nothing_else(json_run):
    _, _, out, err = json_run
    assert out == "" and err == ""


# ------------------------------------------------------------------------- text, markdown
def test_text_summary(files, capsys):
    code, out, err = run(
        capsys, "sample", files / "sleep.csv", MODEL, *QUICK, "--chains", "2", "--draws", "50",
        "--warmup", "50", "--seed", "11",
    )  # fmt: skip
    assert code == 0, err
    assert "Seed: 11" in out and "engine numpy" in out
    assert re.search(r"^\(Intercept\)\s+\d", out, re.MULTILINE)
    assert "sd(Subject: Days)" in out and "r_hat" in out
    assert "Warning: bulk or tail ESS below 400" in out and "(--draws, --warmup)" in out
    assert err == ""


def test_markdown(files, capsys):
    code, out, err = run(
        capsys, "sample", files / "sleep.csv", MODEL, *QUICK, "--chains", "2", "--draws", "50",
        "--warmup", "50", "--seed", "12", "--format", "markdown",
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("# Bayesian linear mixed model")
    assert "## Fixed effects" in out and "| (Intercept) |" in out
    assert re.search(r"^\| Residual +\| sigma +\|", out, re.MULTILINE)
    assert "**Warnings**" in out


def test_level_spec_and_missing_rows(files, capsys):
    spec = "level1: Reaction ~ Days; group: Subject; random: (Intercept), Days"
    code, out, err = run(
        capsys, "sample", files / "sleep_na.csv", spec, *QUICK, "--chains", "2", "--draws",
        "50", "--warmup", "50", "--seed", "13", "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["nobs"] == 178 and doc["n_dropped"] == 2
    assert doc["levels"].startswith("level1: Reaction ~ Days")
    code, out, err = run(
        capsys, "sample", files / "sleep_na.csv", spec, *QUICK, "--chains", "2", "--draws",
        "50", "--warmup", "50", "--seed", "13",
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("Level-1 model")
    assert "2 rows with missing values were left out" in out and "Reaction (2)" in out


# ------------------------------------------------------------------------- progress bar
def _instant_bars(monkeypatch):
    """Bars shown from the first update (the sampler's waits half a second)."""
    import hlm.progress

    real = hlm.progress.progress_bar

    def now(*args, **kwargs):
        kwargs["delay"] = 0
        return real(*args, **kwargs)

    monkeypatch.setattr(hlm.progress, "progress_bar", now)


def test_progress_bar_on_stderr_only(files, capsys, monkeypatch):
    _instant_bars(monkeypatch)
    monkeypatch.setenv("HLM_PROGRESS", "1")  # as on a terminal
    argv = ["sample", files / "sleep.csv", MODEL, "--engine", "numpy", "--cores", "1"]
    argv += ["--chains", "1", "--draws", "20", "--warmup", "20", "--seed", "3", "--format", "json"]
    code, out, err = run(capsys, *argv)
    assert code == 0
    assert "hlm.sample" in err and "/40" in err  # one chain of 20 + 20 iterations
    json.loads(out)  # standard output holds the JSON and nothing else
    code, out, err = run(capsys, *argv, "--quiet")
    assert code == 0 and err == ""


def test_no_progress_bar_when_not_a_terminal(files, capsys, monkeypatch):
    _instant_bars(monkeypatch)
    monkeypatch.delenv("HLM_PROGRESS", raising=False)
    code, out, err = run(
        capsys, "sample", files / "sleep.csv", MODEL, "--engine", "numpy", "--cores", "1",
        "--chains", "1", "--draws", "20", "--warmup", "20", "--seed", "3",
    )  # fmt: skip
    assert code == 0 and err == ""  # capsys's standard error is not a terminal


# ------------------------------------------------------------------------- bad input
BAD = [
    ([MODEL.replace("Days +", "Dayz +")], "'Dayz'"),
    (["Reaction ~ Days + (1 | Subjct)"], "'Subjct'"),
    (["Reaction ~ Days"], "no random-effects term"),
    (["ols: Reaction ~ Days"], "hlm sample fits mixed models"),
    ([MODEL, "--draws", "2"], "--draws 2"),
    ([MODEL, "--chains", "0"], "--chains 0"),
    ([MODEL, "--seed", "-1"], "--seed -1"),
    ([MODEL, "--plot", "caterpillar=c.png"], "unknown plot 'caterpillar'"),
    ([MODEL, "--plot", "trace"], "KIND=FILE.png"),
    ([MODEL, "--plot", "trace=no/such/folder/t.png"], "'no/such/folder' does not exist"),
    ([MODEL, "-o", "no/such/folder/out.json"], "'no/such/folder' does not exist"),
    ([MODEL, "--weights", "w"], "'w'"),
    (
        ["Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", "--engine", "numba"],
        "--engine numpy",
    ),
]


@pytest.mark.parametrize(("args", "names"), BAD)
def test_bad_input_exits_2_before_sampling(files, capsys, monkeypatch, args, names):
    import hlm.bayes.chains

    def no_chains(*a, **k):  # bad input must be refused before any chain runs
        raise AssertionError("sampling started")

    monkeypatch.setattr(hlm.bayes.chains, "run_chains", no_chains)
    monkeypatch.chdir(files)
    code, out, err = run(capsys, "sample", "sleep.csv", *args, "--quiet")
    assert code == 2, err
    assert out == ""
    assert err.startswith("hlm: error: ") and err.count("\n") == 1, err
    assert names in err


def test_missing_file_and_bad_option(files, capsys):
    code, _, err = run(capsys, "sample", files / "nope.csv", MODEL)
    assert code == 2 and "nope.csv" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as info:  # argparse: exit status 2, usage on stderr
        main(["sample", str(files / "sleep.csv"), MODEL, "--chains", "many"])
    assert info.value.code == 2
    assert "--chains" in capsys.readouterr().err


def test_documented_examples_cover_the_command():
    from test_cli_docs import commands

    cmds = [c for c in commands(DOC.read_text(encoding="utf-8")) if c.startswith("hlm sample")]
    assert len(cmds) >= 2
    assert any("--format json" in c and "trace=" in c and "density=" in c for c in cmds)
