"""Speed and agreement of ``hlm.sample`` against nutpie on the same (non-centred) PyMC model.

Run (one process; the machine is shared, so compare ratios measured in the same run):

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/bayes_bench.py

Writes benchmarks/results/bayes.md and bayes.json, and tests/fixtures/bayes/nutpie_refs.json
(nutpie's posterior means and Monte Carlo errors, used by the slow agreement test).

Per cell (sleepstudy, HSB intercepts-and-slopes-as-outcomes): 4 chains, 1000 warm-up and
1000 kept draws for both samplers.  hlm: the clock covers the whole ``hlm.sample`` call
(model building, start values, warm-up, chains in parallel processes, ArviZ diagnostics); the
kernel's one-time numba compilation is cached on disk and reported apart (first call in this
process: ``compile_seconds``); the median of 3 calls is reported.  nutpie: compile time
(PyTensor -> numba) reported apart, then one timed ``nutpie.sample``.  Efficiency is the
minimum bulk ESS (ArviZ) over the fixed effects, sigma, the term's SDs and correlation,
divided by the seconds.  Then the time per iteration of the compiled kernel at fixed J for
growing n.  Needs ``pip install -e ".[bayes-bench]"``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hlm  # noqa: E402
from bayes_pymc import run_nutpie, scalar_draws  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CELLS = {
    "sleepstudy": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "hsb": ("hsb", "MathAch ~ MEANSES*cses + Sector*cses + (cses | School)"),
}
CHAINS, DRAWS, WARMUP = 4, 1000, 1000


def _az():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import arviz

    return arviz


def summarise(draws: dict) -> dict:
    """Per quantity: mean, sd, MCSE of the mean, bulk and tail ESS."""
    az = _az()
    out = {}
    for k, v in draws.items():
        out[k] = {
            "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)),
            "mcse": float(np.ravel(az.mcse(v, method="mean"))[0]),
            "ess_bulk": float(az.ess(v, method="bulk")),
            "ess_tail": float(az.ess(v, method="tail")),
        }
    return out


def hlm_draws(res) -> dict:
    """hlm's scalar draws under nutpie's names (fixed effects, sigma, sd0.., corr0..)."""
    from hlm.bayes.diagnostics import scalar_parameters

    out = {}
    S = res.draws.S(0)
    par = scalar_parameters(res)
    for n in res.fixed_names:
        out[n] = par[n]
    out["sigma"] = par["sigma"]
    sd = res.draws.sd(0)
    for i in range(S):
        out[f"sd{i}"] = sd[..., i]
    corr = res.draws.corr(0)
    for k in range(corr.shape[-1]):
        out[f"corr{k}"] = corr[..., k]
    return out


def run_hlm(data, formula, repeats=3):
    """First call (reports compile/load), then ``repeats`` timed calls."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        first = hlm.sample(
            formula, data, chains=CHAINS, draws=DRAWS, warmup=WARMUP, seed=0, progress=False
        )
        first_s = time.perf_counter() - t
        runs = []
        for seed in range(1, repeats + 1):
            t = time.perf_counter()
            res = hlm.sample(
                formula, data, chains=CHAINS, draws=DRAWS, warmup=WARMUP, seed=seed, progress=False
            )
            runs.append((time.perf_counter() - t, res))
    return first, first_s, runs


def bench_cell(name: str) -> dict:
    ds, formula = CELLS[name]
    data = hlm.datasets.load(ds)
    first, first_s, runs = run_hlm(data, formula)
    rows = []
    for secs, res in runs:
        summ = summarise(hlm_draws(res))
        ess = min(v["ess_bulk"] for v in summ.values())
        rows.append(
            {"seconds": secs, "min_ess_bulk": ess, "ess_per_s": ess / secs, "summary": summ}
        )
    med = sorted(rows, key=lambda r: r["ess_per_s"])[len(rows) // 2]
    idata, names, S, c_s, s_s = run_nutpie(
        formula, data, chains=CHAINS, draws=DRAWS, tune=WARMUP, seed=1
    )
    nsum = summarise(scalar_draws(idata, names, S))
    n_ess = min(v["ess_bulk"] for v in nsum.values())
    agree = {}
    for k, v in nsum.items():
        h = med["summary"][k]
        se = float(np.hypot(h["mcse"], v["mcse"]))
        agree[k] = {
            "hlm": h["mean"],
            "nutpie": v["mean"],
            "diff": h["mean"] - v["mean"],
            "se_diff": se,
            "z": (h["mean"] - v["mean"]) / se,
            "hlm_sd": h["sd"],
            "nutpie_sd": v["sd"],
        }
    return {
        "formula": formula,
        "hlm_first_call_s": first_s,
        "hlm_compile_s": first.compile_seconds,
        "hlm_runs": [{k: r[k] for k in ("seconds", "min_ess_bulk", "ess_per_s")} for r in rows],
        "hlm_median": {k: med[k] for k in ("seconds", "min_ess_bulk", "ess_per_s")},
        "hlm_engine": runs[0][1].engine,
        "nutpie_compile_s": c_s,
        "nutpie_sample_s": s_s,
        "nutpie_min_ess_bulk": n_ess,
        "nutpie_ess_per_s": n_ess / s_s,
        "ratio": med["ess_per_s"] / (n_ess / s_s),
        "agreement": agree,
        "nutpie_summary": nsum,
        "hlm_summary": med["summary"],
    }


def flat_in_n(J=100, ns=(10_000, 100_000, 1_000_000), iters=3000) -> list:
    """Seconds per iteration of one chain at fixed J as n grows (model build apart)."""
    rng = np.random.default_rng(1)
    out = []
    for n in ns:
        g = rng.integers(0, J, n)
        x = rng.normal(size=n)
        y = 1 + 0.5 * x + rng.normal(0, 1, J)[g] + rng.normal(0, 0.3, J)[g] * x + rng.normal(size=n)
        df = pd.DataFrame({"y": y, "x": x, "z": rng.normal(size=n), "g": g})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            res = hlm.sample(
                "y ~ x + z + (x | g)",
                df,
                chains=1,
                draws=iters,
                warmup=0,
                seed=1,
                cores=1,
                progress=False,
            )
            total = time.perf_counter() - t
        chain = float(res.draws.seconds[0])
        out.append(
            {"n": n, "J": J, "total_s": total, "chain_s": chain, "us_per_iter": 1e6 * chain / iters}
        )
    return out


def versions() -> dict:
    import numba
    import nutpie
    import pymc

    az = _az()
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "arviz": az.__version__,
        "pymc": pymc.__version__,
        "nutpie": nutpie.__version__,
        "hlm": hlm.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


def report(results: dict) -> str:
    v = results["versions"]
    lines = [
        "# hlm.sample against nutpie",
        "",
        "Command: `OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/bayes_bench.py`",
        "",
        f"Run {results['date']}; {v['machine']}, Python {v['python']}, numpy {v['numpy']}, "
        f"numba {v['numba']}, ArviZ {v['arviz']}, PyMC {v['pymc']}, nutpie {v['nutpie']}; "
        f"OPENBLAS_NUM_THREADS={v['OPENBLAS_NUM_THREADS']}, "
        f"OMP_NUM_THREADS={v['OMP_NUM_THREADS']}.  The machine is shared (load average "
        f"{results['load']}): compare the ratios, measured in the same run.",
        "",
        f"Both: {CHAINS} chains, {WARMUP} warm-up + {DRAWS} kept draws.  ESS = minimum bulk "
        "ESS (ArviZ) over the fixed effects, sigma, the term's SDs and correlation.  hlm: whole "
        "`hlm.sample` call, median of 3 (compile apart; cached on disk by numba); nutpie: "
        "`nutpie.sample` only (compile apart), same non-centred PyMC model (flat fixed "
        "effects, half-t(3) on sigma, LKJ(1) with half-t(2) SDs at hlm's automatic scales).",
        "",
        "| cell | hlm s | hlm min ESS | hlm ESS/s | hlm compile s (first call) | nutpie s | "
        "nutpie min ESS | nutpie ESS/s | nutpie compile s | ratio (ESS/s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["cells"].items():
        h = r["hlm_median"]
        lines.append(
            f"| {name} | {h['seconds']:.3f} | {h['min_ess_bulk']:.0f} | {h['ess_per_s']:.0f} | "
            f"{r['hlm_compile_s']:.2f} ({r['hlm_first_call_s']:.2f}) | "
            f"{r['nutpie_sample_s']:.2f} | {r['nutpie_min_ess_bulk']:.0f} | "
            f"{r['nutpie_ess_per_s']:.1f} | {r['nutpie_compile_s']:.1f} | "
            f"**{r['ratio']:.1f}x** |"
        )
    lines += ["", "## Agreement of posterior means (hlm - nutpie, in combined MCSE)", ""]
    for name, r in results["cells"].items():
        lines += [
            f"{name}: `{r['formula']}`",
            "",
            "| quantity | hlm mean | nutpie mean | diff | combined MCSE | z | hlm sd | nutpie sd |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for k, a in r["agreement"].items():
            lines.append(
                f"| {k} | {a['hlm']:.4f} | {a['nutpie']:.4f} | {a['diff']:+.4f} | "
                f"{a['se_diff']:.4f} | {a['z']:+.2f} | {a['hlm_sd']:.4f} | {a['nutpie_sd']:.4f} |"
            )
        lines.append("")
    lines += [
        "sd0, sd1, corr0: the term's SDs and correlation; their priors differ (hlm: "
        "Huang-Wand; PyMC: LKJ(1) x half-t(2), same marginals, different joint), so "
        "agreement within Monte Carlo error is expected for the fixed effects and sigma "
        "only.",
        "",
        "## Time per iteration at fixed J = 100 (compiled kernel, one chain)",
        "",
        "| n | model build + call s | chain s | us / iteration |",
        "|---|---|---|---|",
    ]
    for r in results["flat_in_n"]:
        lines.append(
            f"| {r['n']:,} | {r['total_s']:.2f} | {r['chain_s']:.3f} | {r['us_per_iter']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main():
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "versions": versions(),
        "cells": {},
    }
    for name in CELLS:
        print(f"cell {name} ...", flush=True)
        results["cells"][name] = bench_cell(name)
        print(
            json.dumps(
                {
                    k: v
                    for k, v in results["cells"][name].items()
                    if k in ("hlm_median", "nutpie_ess_per_s", "ratio")
                }
            ),
            flush=True,
        )
    print("flat in n ...", flush=True)
    results["flat_in_n"] = flat_in_n()
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bayes.json").write_text(json.dumps(results, indent=1))
    (out / "bayes.md").write_text(report(results))
    refs = {
        "provenance": "benchmarks/bayes_bench.py (nutpie on the PyMC model of "
        "benchmarks/bayes_pymc.py), " + results["date"],
        "versions": results["versions"],
        "settings": {"chains": CHAINS, "draws": DRAWS, "tune": WARMUP, "seed": 1},
        "cells": {
            n: {"formula": r["formula"], "summary": r["nutpie_summary"]}
            for n, r in results["cells"].items()
        },
    }
    fx = ROOT / "tests" / "fixtures" / "bayes"
    fx.mkdir(parents=True, exist_ok=True)
    (fx / "nutpie_refs.json").write_text(json.dumps(refs, indent=1))
    print(report(results))


if __name__ == "__main__":
    main()
