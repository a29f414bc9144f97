"""Time hlm's estimation engines (profiled, em, fisher, em+fisher) side by side.

Usage::

    python benchmarks/engines.py [--cells sleepstudy,hsb,insteval,syn1e5,syn1e6_J1e3,syn1e6]
                                 [--engines profiled,em,fisher,em+fisher] [--repeats 3]
                                 [--timeout 300] [--threads 1]
                                 [--out benchmarks/results/engines.md]

Each (engine, cell) pair runs in its own worker process (``workers/engine_worker.py``)
with the same thread limits as ``run.py``.  The report gives the median time of a whole
fit, the engine's own optimisation time, its iterations (EM steps, scoring steps; for the
profiled engine, objective evaluations), the time per iteration, and the criterion's
difference from the profiled engine's.  ``syn1e5`` and ``syn1e6_J1e3`` have the same
groups and 10x the rows: the time per iteration should not grow with n.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from cells import BENCH_DIR, CELLS
from report import machine
from run import THREAD_VARS, child_env, run_worker
from synth import generate

ENGINES = ("profiled", "em", "fisher", "em+fisher")
DEFAULT_CELLS = ("sleepstudy", "hsb", "insteval", "syn1e5", "syn1e6_J1e3", "syn1e6")


def command(engine: str, cell: str, repeats: int, cap: float) -> list[str]:
    """Command line of the worker that fits ``cell`` with ``engine``."""
    worker = BENCH_DIR / "workers" / "engine_worker.py"
    return [
        sys.executable,
        str(worker),
        "--engine",
        engine,
        "--cell",
        cell,
        "--repeats",
        str(repeats),
        "--budget",
        str(cap),
    ]


def _fmt(x, digits=3):
    return "—" if x is None else f"{x:.{digits}g}"


def render(results: list[dict], settings: dict) -> str:
    """Markdown table of the engine runs."""
    base = {
        r["cell"]: r.get("criterion")
        for r in results
        if r["engine"] == "profiled" and r["status"] == "ok"
    }
    lines = [
        "# Engines: time to converge",
        "",
        f"Run {settings['date']} on {settings['machine']}; load average (start / end) "
        f"{settings['load']}; threads: {settings['threads']}; median of {settings['repeats']} "
        "fits after a warm-up.",
        "",
        "| cell | n | engine | fit s | engine s | iterations | ms / iteration | "
        "Δcrit vs profiled | converged |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cell = CELLS[r["cell"]]
        n = cell.n if cell.synthetic else r.get("n")
        if r["status"] != "ok":
            lines.append(
                f"| {r['cell']} | {n or '—'} | {r['engine']} | {r.get('message')} | | | | | |"
            )
            continue
        steps = r["iterations"] if r["iterations"] else r["evals"]
        what = "evals" if not r["iterations"] else ""
        d = None if base.get(r["cell"]) is None else r["criterion"] - base[r["cell"]]
        dtxt = "0 (reference)" if r["engine"] == "profiled" else ("—" if d is None else f"{d:+.2e}")
        lines.append(
            f"| {r['cell']} | {n:,} | {r['engine']} | {_fmt(r['median'])} | "
            f"{_fmt(r['engine_seconds'])} | {steps} {what} | {_fmt(r['ms_per_step'])} | {dtxt} "
            f"| {r['converged']} |"
        )
    lines += [
        "",
        "fit s: whole `hlm.fit(..., engine=...)` from the data frame (cross-products "
        "included); engine s: the fit log's optimisation time; ms / iteration: engine s "
        "over the iterations (for the profiled engine: per objective evaluation).",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default=",".join(DEFAULT_CELLS))
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "engines.md")
    args = ap.parse_args(argv)
    cells = [c for c in args.cells.split(",") if c]
    engines = [e for e in args.engines.split(",") if e]
    if bad := [c for c in cells if c not in CELLS]:
        ap.error(f"unknown cells {bad}")
    if bad := [e for e in engines if e not in ENGINES]:
        ap.error(f"unknown engines {bad}")
    env = child_env(args.threads)
    settings = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(),
        "threads": {v: env[v] for v in THREAD_VARS[:2]},
        "repeats": args.repeats,
    }
    load0 = os.getloadavg()[0]
    results = []
    for name in cells:
        cell = CELLS[name]
        if cell.synthetic:
            generate(cell.n, cell.J)
        for engine in engines:
            res = run_worker(command(engine, name, args.repeats, args.timeout), env, args.timeout)
            res.update(cell=name, engine=engine)
            results.append(res)
            shown = f"{res['median']:.4g} s" if res["status"] == "ok" else res["message"]
            print(f"[{name}] {engine}: {shown}", file=sys.stderr, flush=True)
    settings["load"] = f"{load0:.2f} / {os.getloadavg()[0]:.2f}"
    text = render(results, settings)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(
        json.dumps({"settings": settings, "results": results}, indent=1, default=str) + "\n"
    )
    print(text)


if __name__ == "__main__":
    main()
