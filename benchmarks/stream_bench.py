"""Streaming and distributed benchmark: time and peak memory of fits that never hold the data.

    python benchmarks/stream_bench.py                 # 10^7 rows: memory, stream, dask
    python benchmarks/stream_bench.py --n 1e8 --modes stream --keep-data

Data: the synthetic benchmark model (``synth.py``: y ~ x1 + ... + x9 + (1 + x1 | g),
p = 10, J = n / 100, ML) written as Parquet in row groups of 10^6 rows.  The 10^7-row set is
the ``syn1e7`` cell's own file (``benchmarks/.cache``); larger sets are generated chunk by
chunk into ``--data-dir`` (one file per 10^7 rows) and deleted afterwards unless
``--keep-data``.

Each fit runs in its own process (``stream_fit.py``) under GNU ``time -v``, which reports the
largest peak resident set size of the process and the processes it started (for Dask, the
LocalCluster's worker processes); the client process's own peak (``getrusage``) and the
workers' peaks (read on each worker) are reported beside it.  Modes:

* ``memory``: read the Parquet file into pandas, then ``hlm.fit`` (read + fit timed);
* ``stream``: ``hlm.fit(formula, path, memory="1GB")``: batches straight from the file;
* ``dask``: ``hlm.fit(formula, dd.read_parquet(path, split_row_groups=True))`` on a
  LocalCluster of 2 worker processes with one thread each (one partition per row group);
* ``dask-threads``: the same on a LocalCluster whose 2 workers are threads of the client.

Results go to ``benchmarks/results/stream.md`` (and ``.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from synth import SEED, _chunk, _random_effects, generate  # noqa: E402

ROW_GROUP = 1_000_000
FILE_ROWS = 10_000_000


def big_data(n: int, J: int, folder: Path) -> Path:
    """Write n rows (J groups) as Parquet files of 10^7 rows, chunk by chunk."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from synth import COLUMNS

    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "COMPLETE"
    if done.exists():
        return folder
    rng = np.random.default_rng([SEED, n, J])
    b = _random_effects(rng, J)
    schema = pa.schema([(c, pa.int32() if c == "g" else pa.float64()) for c in COLUMNS])
    for f, start in enumerate(range(0, n, FILE_ROWS)):
        with pq.ParquetWriter(folder / f"part-{f:03d}.parquet", schema) as writer:
            for s in range(start, min(n, start + FILE_ROWS), ROW_GROUP):
                cols = _chunk(rng, min(ROW_GROUP, n - s), b)
                writer.write_table(pa.table(cols, schema=schema), row_group_size=ROW_GROUP)
    done.write_text(f"{n} {J}\n")
    return folder


def run_fit(mode: str, path: Path, memory: str) -> dict:
    """One fit in its own process under GNU time -v: the worker's JSON plus peak RSS."""
    env = dict(os.environ)
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    cmd = ["/usr/bin/time", "-v", sys.executable, str(BENCH / "stream_fit.py"), mode, str(path),
           "--memory", memory]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    out["peak_mb"] = peak_kb / 1024
    out["process_s"] = wall
    out["load"] = load
    out["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out["command"] = " ".join(["/usr/bin/time -v python benchmarks/stream_fit.py", mode,
                               str(path.relative_to(REPO) if path.is_relative_to(REPO) else path),
                               "--memory", memory])
    return out


def report(rows: list[dict], machine: str) -> str:
    """The markdown table of benchmarks/results/stream.md."""
    ref = {r["n"]: r for r in rows if r["mode"] == "memory"}
    lines = [
        "| n | mode | read s | fit s | total s | total / in-memory total | "
        "total / in-memory fit | peak RSS MB (time -v) | client peak MB | workers' peak MB | "
        "evals | Δcriterion vs in-memory | max rel Δβ vs in-memory | load | run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = ref.get(r["n"])
        ratio_fit = "—" if base is None or base is r else f"{r['total_s'] / base['fit_s']:.2f}"
        if base is not None and base is not r:
            ratio = f"{r['total_s'] / base['total_s']:.2f}"
            dcrit = f"{(r['criterion'] - base['criterion']) / abs(base['criterion']):+.1e}"
            dbeta = max(abs(a - b) / abs(b) for a, b in zip(r["fixef"], base["fixef"], strict=True))
            dbeta = f"{dbeta:.1e}"
        else:
            ratio = "1" if base is r else "—"
            dcrit = dbeta = "—"
        wpeak, speak = r.get("worker_peak_mb"), r.get("self_peak_mb")
        lines.append(
            f"| {r['n']:,} | {r['mode']} | {r['read_s']:.1f} | {r['fit_s']:.1f} | "
            f"{r['total_s']:.1f} | {ratio} | {ratio_fit} | {r['peak_mb']:,.0f} | "
            f"{'—' if speak is None else f'{speak:,.0f}'} | "
            f"{'—' if wpeak is None else f'{wpeak:,.0f}'} | {r['evals']} | {dcrit} | {dbeta} | "
            f"{r.get('load', float('nan')):.1f} | {r.get('date', '')} |"
        )
    head = (
        "# Streaming and Dask benchmark\n\n"
        "Model `y ~ x1 + ... + x9 + (1 + x1 | g)` (p = 10, J = n / 100), ML, synthetic data "
        "of `benchmarks/synth.py` as Parquet (row groups of 10^6 rows). Made by "
        "`python benchmarks/stream_bench.py` (10^7 rows, three modes) and "
        "`python benchmarks/stream_bench.py --n 1e8 --modes stream`; each fit in its own "
        "process, `OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=1`. *memory*: read the file into "
        "pandas, then `hlm.fit` (read and fit timed apart); *stream*: `hlm.fit(formula, path, "
        "memory=\"1GB\")`; *dask*: `hlm.fit(formula, dd.read_parquet(path, "
        "split_row_groups=True))` on a LocalCluster of 2 worker processes (1 thread each), "
        "*dask-threads* the same with the 2 workers as threads of the client process "
        "(first fit on a fresh cluster: the workers' imports are included). "
        "Peak RSS by GNU `time -v` (the largest process of the tree: for Dask, a worker), "
        "the client's own peak by `getrusage`, the workers' by `getrusage` on each worker. "
        "*load*: the machine's 1-minute load average when the fit started (2 cores, shared "
        "with other jobs: timings at load > 2 are inflated, and not comparable across rows "
        "measured at different loads).\n\n"
    )
    return head + "\n".join(lines) + f"\n\nMachine: {machine}.\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", default="1e7")
    parser.add_argument("--modes", default="memory,stream,dask,dask-threads")
    parser.add_argument("--memory", default="1GB")
    parser.add_argument("--data-dir", default=str(BENCH / ".cache" / "stream"))
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--out", default=str(BENCH / "results" / "stream.md"))
    args = parser.parse_args()
    n = int(float(args.n))
    J = n // 100
    if n == 10_000_000:
        path = generate(n, J) / "data.parquet"
        cleanup = None
    else:
        print(shutil.disk_usage(args.data_dir if os.path.exists(args.data_dir) else "/"))
        t0 = time.perf_counter()
        path = big_data(n, J, Path(args.data_dir) / f"syn_n{n}_J{J}")
        print(f"generated {n:,} rows in {time.perf_counter() - t0:.0f} s", flush=True)
        cleanup = None if args.keep_data else path
    rows = []
    for mode in args.modes.split(","):
        r = run_fit(mode, path, args.memory)
        print(json.dumps({k: v for k, v in r.items() if k not in ("fixef", "theta")}), flush=True)
        rows.append(r)
    if cleanup is not None:
        shutil.rmtree(cleanup)
    out = Path(args.out)
    store = out.with_suffix(".json")
    previous = json.loads(store.read_text()) if store.exists() else []
    new = {(r["n"], r["mode"]) for r in rows}
    keep = [p for p in previous if (p["n"], p["mode"]) not in new]
    order = ["memory", "stream", "dask", "dask-threads"]
    allrows = sorted(keep + rows, key=lambda r: (r["n"], order.index(r["mode"])))
    store.write_text(json.dumps(allrows, indent=1))
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    out.write_text(report(allrows, machine))
    print(out.read_text())


if __name__ == "__main__":
    main()
