"""Time hlm against statsmodels MixedLM, mixedlm and lme4 on the benchmark cells.

Usage::

    python benchmarks/run.py [--cells sleepstudy,hsb,...] [--tools hlm,mixedlm,...]
                             [--repeats 5] [--timeout 300] [--threads 1]
                             [--out benchmarks/results/latest.md]

Each (tool, cell) pair runs in its own worker process (``workers/``), so that a fit
over the time cap is killed cleanly and peak memory is that process's own. The report
(markdown) goes to stdout and to ``--out``; the raw worker results to the same path
with suffix ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cells import BENCH_DIR, CACHE_DIR, CELLS, REPO_DIR, Cell, data_dir, factor_levels
from report import machine, render
from synth import cache_path, generate

TOOLS = ("hlm", "statsmodels", "mixedlm", "lme4")
THREAD_VARS = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "RAYON_NUM_THREADS",  # mixedlm's Rust core
    "NUMBA_NUM_THREADS",
)
LOAD_LIMIT = 1800.0  # seconds allowed for imports and reading data (outside the cap)


def child_env(threads: int) -> dict[str, str]:
    """Environment of every worker: same thread limits; benchmarks/ and src/ importable."""
    env = dict(os.environ)
    env.update({var: str(threads) for var in THREAD_VARS})
    paths = [str(BENCH_DIR), str(REPO_DIR / "src"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def levels_tsv(dataset: str) -> Path:
    """Write the factor levels of `dataset` as TSV (column, level) for the R worker."""
    path = CACHE_DIR / f"levels_{dataset}.tsv"
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    rows = ["column\tlevel"]
    rows += [f"{col}\t{lev}" for col, levs in factor_levels(dataset).items() for lev in levs]
    path.write_text("\n".join(rows) + "\n")
    return path


def command(tool: str, cell: Cell, repeats: int, cap: float) -> list[str]:
    """Command line of the worker that fits `cell` with `tool`."""
    if tool != "lme4":
        worker = BENCH_DIR / "workers" / f"{tool}_worker.py"
        opts = f"--cell {cell.name} --repeats {repeats} --budget {cap}"
        return [sys.executable, str(worker), *opts.split()]
    if cell.synthetic:
        data = {"kind": "bin", "path": cache_path(cell.n, cell.J), "n": cell.n, "J": cell.J}
    else:
        data = {
            "kind": "csv",
            "path": data_dir() / f"{cell.dataset}.csv.gz",
            "levels": levels_tsv(cell.dataset),
        }
    args = {
        "cell": cell.name,
        "formula": cell.formula,
        "reml": str(cell.reml).upper(),
        "repeats": repeats,
        "budget": cap,
        **data,
    }
    return ["Rscript", str(BENCH_DIR / "workers" / "lme4_worker.R")] + [
        f"{k}={v}" for k, v in args.items()
    ]


def run_worker(cmd: list[str], env: dict[str, str], cap: float) -> dict:
    """Run one worker; kill it if a fit outlasts `cap` seconds after it reported READY.

    Returns
    -------
    dict
        The worker's RESULT (``status`` "ok" or "error"), or ``status`` "skipped" (over
        the cap) or "error" (crashed without a result).
    """
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env, start_new_session=True
        )
        lines: queue.Queue = queue.Queue()

        def pump():
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline, result, ready = time.monotonic() + LOAD_LIMIT, None, False
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                what = f"timeout {cap:g} s" if ready else f"loading > {LOAD_LIMIT:g} s"
                return {"status": "skipped", "message": f"skipped ({what})"}
            if line is None:
                break
            if line.startswith("READY"):
                ready = True
                # a little slack past the cap for the bookkeeping after the last fit
                deadline = time.monotonic() + 1.1 * cap + 5
            elif line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
        proc.wait()
        if result is None:
            err.seek(0)
            tail = [s for s in err.read().strip().splitlines() if s.strip()][-1:] or ["no output"]
            return {"status": "error", "message": f"error: exit {proc.returncode}: {tail[0]}"}
    if result.get("error"):
        result.update(status="error", message="error: " + result["error"][:100])
    elif min(result["times"]) > cap:
        result.update(status="skipped", message=f"skipped (fit > {cap:g} s)")
    else:
        result["status"] = "ok"
    return result


def not_run(tool: str, cell: Cell) -> str | None:
    """Why `tool` does not run `cell`, or None if it does."""
    if tool != "hlm" and not cell.peers:
        return "not run (hlm-only cell)"
    if tool == "statsmodels" and not cell.sm:
        return "n/a (crossed not supported)"
    if tool == "lme4" and shutil.which("Rscript") is None:
        return "n/a (Rscript not found)"
    return None


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, run every (cell, tool) pair and write the report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default=",".join(CELLS), help="comma-separated cell names")
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated tool names")
    ap.add_argument("--repeats", type=int, default=5, help="timed fits after one warm-up")
    ap.add_argument("--timeout", type=float, default=300.0, help="cap per fit, seconds")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/rayon threads")
    ap.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "latest.md")
    args = ap.parse_args(argv)
    names = [c for c in args.cells.split(",") if c]
    tools = [t for t in args.tools.split(",") if t]
    if bad := [c for c in names if c not in CELLS]:
        ap.error(f"unknown cells {bad}; choose from {list(CELLS)}")
    if bad := [t for t in tools if t not in TOOLS]:
        ap.error(f"unknown tools {bad}; choose from {list(TOOLS)}")
    cells = [CELLS[c] for c in names]

    env = child_env(args.threads)
    settings = {
        "cells": names,
        "tools": tools,
        "threads": {v: env[v] for v in THREAD_VARS},
        "repeats": args.repeats,
        "timeout": args.timeout,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(),
    }
    load_start = os.getloadavg()[0]
    results: list[dict] = []
    for cell in cells:
        if cell.synthetic:
            print(f"[{cell.name}] generating data (n={cell.n}, J={cell.J}) ...", file=sys.stderr)
            generate(cell.n, cell.J)
        for tool in tools:
            reason = not_run(tool, cell)
            if reason is None:
                res = run_worker(command(tool, cell, args.repeats, args.timeout), env, args.timeout)
            else:
                res = {"status": "not run", "message": reason}
            res.update(tool=tool, cell=cell.name)
            results.append(res)
            shown = f"{res['median']:.4g} s" if res["status"] == "ok" else res["message"]
            print(f"[{cell.name}] {tool}: {shown}", file=sys.stderr)

    settings["load"] = f"{load_start:.2f} / {os.getloadavg()[0]:.2f}"
    text = render(results, settings)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(
        json.dumps({"settings": settings, "results": results}, indent=1) + "\n"
    )
    print(text)


if __name__ == "__main__":
    main()
