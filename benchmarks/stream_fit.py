"""One fit of the streaming benchmark, in its own process (see ``stream_bench.py``).

    python benchmarks/stream_fit.py MODE PATH [--memory 1GB] [--workers 2]

MODE is ``memory`` (read the Parquet data into pandas, then fit), ``stream`` (fit straight
from the files, in batches), ``dask`` (a Dask dataframe of the files on a LocalCluster of
worker processes) or ``dask-threads`` (the same cluster with its workers as threads of
this process).
Prints one JSON line: seconds (read, fit, total), the criterion, the estimates and theta.
The caller measures the peak RSS of this process with GNU ``time -v``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cells import SYN_FORMULA  # noqa: E402


def _memory(path: str):
    import pyarrow.dataset as ds

    import hlm

    t0 = time.perf_counter()
    df = ds.dataset(path, format="parquet").to_table().to_pandas()
    # g as a categorical of its integer codes, as the in-memory benchmark cells use it
    import pandas as pd

    df["g"] = pd.Categorical(df["g"].to_numpy())
    t1 = time.perf_counter()
    res = hlm.fit(SYN_FORMULA, df, method="ML")
    return res, t1 - t0, time.perf_counter() - t1


def _stream(path: str, memory: str):
    import hlm

    t0 = time.perf_counter()
    res = hlm.fit(SYN_FORMULA, path, method="ML", memory=memory, progress=False)
    return res, 0.0, time.perf_counter() - t0


def _dask(path: str, workers: int, processes: bool = True):
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import hlm

    with LocalCluster(
        n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
        memory_limit="2GB", processes=processes, protocol="tcp",
    ) as cluster, Client(cluster) as client:
        t0 = time.perf_counter()
        # one partition per row group (10^6 rows): a worker holds one at a time
        ddf = dd.read_parquet(path, split_row_groups=True)
        res = hlm.fit(SYN_FORMULA, ddf, method="ML", progress=False)
        seconds = time.perf_counter() - t0
        peaks = client.run(_peak_rss_mb)
    res.worker_peak_mb = max(peaks.values())
    return res, 0.0, seconds


def _peak_rss_mb() -> float:
    """Peak resident set size of this process (a worker), MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["memory", "stream", "dask", "dask-threads"])
    parser.add_argument("path")
    parser.add_argument("--memory", default="1GB")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.mode == "memory":
        res, read, fit = _memory(args.path)
    elif args.mode == "stream":
        res, read, fit = _stream(args.path, args.memory)
    else:
        res, read, fit = _dask(args.path, args.workers, processes=args.mode == "dask")
    print(
        json.dumps(
            {
                "mode": args.mode,
                "n": int(res.nobs),
                "read_s": read,
                "fit_s": fit,
                "total_s": read + fit,
                "criterion": float(res.criterion),
                "fixef": res.fixef.tolist(),
                "theta": list(map(float, res.theta)),
                "evals": int(res.fit_log.evaluations),
                "worker_peak_mb": getattr(res, "worker_peak_mb", None),
                "self_peak_mb": _peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
