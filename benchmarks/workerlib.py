"""The common driver of the Python workers.

A worker is started by ``run.py`` as ``python workers/<tool>_worker.py --cell NAME
--repeats R --budget SECONDS``. It imports its tool, loads the cell's data, prints
``READY`` (the parent starts the time cap there), times one warm-up fit and up to `R`
more, and prints one line ``RESULT {json}``. Any exception becomes an ``error`` field
of that line instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cells import CELLS, Cell, load_cell


@dataclass
class Tool:
    """What a worker plugs into :func:`main`.

    Parameters
    ----------
    version : str
        Version string of the tool.
    fit : callable
        ``fit(cell, df)`` fits the cell's model from the DataFrame (the timed part).
    summarize : callable
        ``summarize(result)`` returns a dict with ``criterion`` (REML criterion or ML
        deviance) and ``evals`` (objective evaluations, or None).
    load : callable
        ``load(cell)`` returns the DataFrame (not timed).
    extra : callable, optional
        ``extra(cell, df, result, seconds_left)`` returns more fields (not timed).
    """

    version: str
    fit: Callable[[Cell, Any], Any]
    summarize: Callable[[Any], dict]
    load: Callable[[Cell], Any] = load_cell
    extra: Callable[[Cell, Any, Any, float], dict] | None = None


def _status_mb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux), so that the peak
    measured afterwards excludes data loading. Returns whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (since the last reset)."""
    hwm = _status_mb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def blas_info() -> list[str]:
    """BLAS/OpenMP pools loaded in this process, via threadpoolctl when installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [
        f"{p.get('internal_api')} {p.get('version')} threads={p.get('num_threads')}"
        for p in threadpool_info()
    ]


def time_fits(fit: Callable[[], Any], repeats: int, budget: float):
    """Time a warm-up fit and then up to `repeats` fits, staying within `budget` seconds.

    Returns
    -------
    result, times, warmup, note
        The last fit's result, the timed fits' seconds, the warm-up's seconds and a note
        (set when the budget allowed fewer fits than asked for).
    """
    start = time.perf_counter()
    result = fit()
    warmup = time.perf_counter() - start
    times: list[float] = []
    while len(times) < repeats:
        last = times[-1] if times else warmup
        if time.perf_counter() - start + last > 0.9 * budget:
            break
        result = None  # let the previous result go before the next fit (fair peak RSS)
        t0 = time.perf_counter()
        result = fit()
        times.append(time.perf_counter() - t0)
    note = None
    if len(times) < repeats:
        note = f"{len(times)} of {repeats} repeats within budget"
        if not times:
            times, note = [warmup], "warm-up fit only (slow)"
    return result, times, warmup, note


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _guarded(key: str, func: Callable[..., dict], *args: Any) -> dict:
    """``func(*args)``, or ``{key: message}`` if it raises (the timings are kept)."""
    try:
        return func(*args)
    except Exception as exc:
        return {key: _short(exc)}


def main(name: str, setup: Callable[[], Tool]) -> None:
    """Run one (tool, cell) measurement and print its ``RESULT`` line."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--cell", required=True, choices=sorted(CELLS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--budget", type=float, default=300.0)
    args = ap.parse_args()
    out: dict[str, Any] = {"tool": name, "cell": args.cell}
    try:
        tool = setup()
        out["version"] = tool.version
        cell = CELLS[args.cell]
        df = tool.load(cell)
        out["n"] = len(df)
        out["df_mb"] = float(df.memory_usage(deep=True).sum()) / 2**20
        out["rss_loaded_mb"] = _status_mb("VmRSS")
        out["peak_excludes_load"] = reset_peak_rss()
        print("READY", flush=True)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res, times, warmup, note = time_fits(
                lambda: tool.fit(cell, df), args.repeats, args.budget
            )
        out.update(times=times, median=statistics.median(times), warmup=warmup, note=note)
        out["peak_rss_mb"] = peak_rss_mb()
        out["warnings"] = sorted({f"{w.category.__name__}: {w.message}"[:120] for w in caught})
        out.update(_guarded("summary_error", tool.summarize, res))
        if tool.extra is not None:
            left = args.budget - (time.perf_counter() - t0)
            out.update(_guarded("extra_error", tool.extra, cell, df, res, left))
    except Exception as exc:  # reported in the table, not raised
        out["error"] = _short(exc)
    out["blas"] = blas_info()
    print("RESULT " + json.dumps(out, default=str), flush=True)
    sys.exit(0)
