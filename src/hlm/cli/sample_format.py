"""The output of ``hlm sample``: text, Markdown and JSON.

Every format shows the same things: the run (chains, draws, warm-up, seed, engine), the
posterior mean, SD and 95% central interval of the fixed effects, of each term's SDs and
correlations and of sigma, split R-hat and bulk/tail ESS of every parameter (ArviZ), and the
warnings.  The JSON layout is fixed by ``sample_result.schema.json`` in :mod:`hlm.report`
and documented in docs/cli.md.
"""

from __future__ import annotations

import json
import math
from importlib.resources import files

from hlm.report import tabular

#: identifies the JSON layout; bumped when a field changes meaning
SCHEMA_ID = "hlm-sample-result/1"

#: the central interval every format reports (that of ``PosteriorResult.diagnostics()``)
LEVEL = 0.95


def _num(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _str_or_none(v):
    return v if isinstance(v, str) else None


def _source(res):
    return getattr(res.model, "source", None)


def _levels_text(res):
    source = _source(res)
    return source.to_text() if hasattr(source, "to_text") else None


def n_dropped(res) -> int:
    """Rows left out for a missing value in a column the model uses."""
    return int(res.model.frame.n_dropped)


def dropped_note(res) -> str:
    """A sentence on the rows left out for missing values, naming the columns ("" if none)."""
    n = n_dropped(res)
    if not n:
        return ""
    where = ", ".join(f"{c} ({k})" for c, k in res.model.frame.dropped_by.items())
    return f"{n} rows with missing values were left out; missing values by column: {where}"


def parameter_name(grp: str, var1, var2) -> str:
    """The name a varcorr row has in ``diagnostics()``: ``sd(g: x)``, ``corr(g: x,y)``,
    ``sigma``."""
    if grp == "Residual":
        return "sigma"
    if isinstance(var2, str):
        return f"corr({grp}: {var1},{var2})"
    return f"sd({grp}: {var1})"


def _diag_row(diag, name) -> dict:
    r = diag.loc[name]
    return {
        "mean": _num(r["mean"]),
        "sd": _num(r["sd"]),
        "lower": _num(r.iloc[2]),
        "upper": _num(r.iloc[3]),
        "rhat": _num(r["r_hat"]),
        "ess_bulk": _num(r["ess_bulk"]),
        "ess_tail": _num(r["ess_tail"]),
    }


# ---------------------------------------------------------------------------- json
def sample_dict(run) -> dict:
    """A :class:`hlm.cli.sample.SampleRun` as a dict of JSON types
    (layout: ``sample_result.schema.json``)."""
    import hlm

    res = run.result
    diag = res.diagnostics()
    fx = res.fixef_table(LEVEL)
    fixef = {
        str(name): {
            "mean": _num(r["mean"]),
            "sd": _num(r["sd"]),
            "lower": _num(r["lower"]),
            "upper": _num(r["upper"]),
        }
        for name, r in fx.iterrows()
    }
    sig = _diag_row(diag, "sigma")
    varcorr = [
        {
            "grp": str(r.grp),
            "var1": _str_or_none(r.var1),
            "var2": _str_or_none(r.var2),
            "parameter": parameter_name(r.grp, r.var1, r.var2),
            "vcov": _num(r.vcov),
            "vcov_sd": _num(r.se),
            "sdcor": _num(r.sdcor),
            "sdcor_sd": _num(r.sdcor_sd),
            "sdcor_lower": _num(r.sdcor_lower),
            "sdcor_upper": _num(r.sdcor_upper),
        }
        for r in res.varcorr(LEVEL).itertuples(index=False)
    ]
    return {
        "schema": SCHEMA_ID,
        "hlm_version": hlm.__version__,
        "formula": str(res.formula),
        "levels": _levels_text(res),
        "nobs": int(res.nobs),
        "n_dropped": n_dropped(res),
        "ngroups": {str(k): int(v) for k, v in res.ngroups.items()},
        "chains": int(res.chains),
        "draws": int(res.n_draws),
        "warmup": int(res.warmup),
        "seed": int(res.seed),
        "engine": str(res.engine),
        "seconds": _num(res.seconds),
        "compile_seconds": _num(res.compile_seconds),
        "level": LEVEL,
        "fixef": fixef,
        "sigma": {k: sig[k] for k in ("mean", "sd", "lower", "upper")},
        "varcorr": varcorr,
        "diagnostics": {str(name): _diag_row(diag, name) for name in diag.index},
        "converged": not res.convergence_notes,
        "warnings": list(run.warnings),
    }


def sample_json(run, indent: int | None = 2) -> str:
    """:func:`sample_dict` as strict JSON (no NaN)."""
    return json.dumps(sample_dict(run), indent=indent, allow_nan=False)


def schema() -> dict:
    """The JSON schema of :func:`sample_dict` (``sample_result.schema.json``)."""
    text = files("hlm.report").joinpath("sample_result.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


# ---------------------------------------------------------------------------- text
def sample_text(run) -> str:
    """The posterior summary of :meth:`hlm.PosteriorResult.summary`, the seed, and any
    warning other than the convergence warning (which the summary already states)."""
    res = run.result
    lines = res.summary(LEVEL).splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Draws:"):
            seed = res.seed  # the entropy drawn when no --seed was given
            lines.insert(i + 1, f"Seed: {seed} (the same seed and options repeat the run)")
        elif line.startswith("Number of obs:") and n_dropped(res):
            lines.insert(i + 1, f"({dropped_note(res)})")
            break
    source = _source(res)
    if hasattr(source, "equations"):  # a level-equation spec: show the model as given
        lines = [source.equations(), "", *lines]
    # the library's advice names its keyword; the command line's is an option
    lines = [ln.replace("(draws=...)", "(--draws, --warmup)") for ln in lines]
    lines += [f"Warning: {w}" for w in run.other_warnings]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- markdown
_STAT_HEADER = ["mean", "SD", "2.5%", "97.5%", "R-hat", "ESS bulk", "ESS tail"]


def _stat_cells(d: dict) -> list[str]:
    return [
        tabular.fmt(d["mean"]),
        tabular.fmt(d["sd"]),
        tabular.fmt(d["lower"]),
        tabular.fmt(d["upper"]),
        tabular.fmt(d["rhat"], 3),
        tabular.fmt(d["ess_bulk"], 0),
        tabular.fmt(d["ess_tail"], 0),
    ]


def sample_markdown(run) -> str:
    """The posterior summary as a Markdown document."""
    doc = sample_dict(run)
    diag = doc["diagnostics"]
    groups = ", ".join(f"{g} ({k} groups)" for g, k in doc["ngroups"].items())
    out = [
        "# Bayesian linear mixed model",
        "",
        f"- **Formula**: `{doc['formula']}`",
        f"- **Draws**: {doc['chains']} chains x {doc['draws']} after {doc['warmup']} warm-up "
        f"iterations; engine {doc['engine']}; seed {doc['seed']}",
        f"- **Observations**: {doc['nobs']}; {groups}",
        *([f"- **Missing values**: {dropped_note(run.result)}"] if doc["n_dropped"] else []),
        "",
    ]
    if doc["levels"]:
        out += ["## Level equations", "", "```text", doc["levels"].strip(), "```", ""]
    out += ["## Fixed effects", ""]
    rows = [[name, *_stat_cells(diag[name])] for name in doc["fixef"]]
    out.append(tabular.markdown(["term", *_STAT_HEADER], rows))
    out += ["", "## Variance components (SDs and correlations)", ""]
    rows = [[r["grp"], _vc_label(r), *_stat_cells(diag[r["parameter"]])] for r in doc["varcorr"]]
    out.append(tabular.markdown(["group", "name", *_STAT_HEADER], rows, "ll" + "r" * 7))
    out += [
        "",
        "Posterior means, SDs and 95% central intervals; split R-hat and bulk/tail ESS from ArviZ.",
    ]
    if doc["warnings"]:
        out += ["", "**Warnings**:", ""] + [f"- {w}" for w in doc["warnings"]]
    return "\n".join(out) + "\n"


def _vc_label(row: dict) -> str:
    if row["grp"] == "Residual":
        return "sigma"
    if row["var2"] is not None:
        return f"corr({row['var1']}, {row['var2']})"
    return f"sd({row['var1']})"


#: ``--format`` -> function of a :class:`hlm.cli.sample.SampleRun`
FORMATTERS = {"text": sample_text, "markdown": sample_markdown, "json": sample_json}
