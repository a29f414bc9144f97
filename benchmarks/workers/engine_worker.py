"""hlm worker for one estimation engine (see :mod:`workerlib` for the protocol).

Usage: ``python workers/engine_worker.py --engine em --cell hsb --repeats 3 --budget 300``.
Times whole fits ``hlm.fit(formula, df, engine=...)`` and reports the engine's own
optimisation time, its iterations and the time per iteration (the fit log's seconds over
its iterations; for the profiled engine, per objective evaluation).
"""

from __future__ import annotations

import sys

from workerlib import Tool, main


def _take_engine(argv: list[str]) -> str:
    if "--engine" not in argv:
        raise SystemExit("engine_worker.py needs --engine NAME")
    i = argv.index("--engine")
    engine = argv[i + 1]
    del argv[i : i + 2]
    return engine


ENGINE = _take_engine(sys.argv)


def setup() -> Tool:
    """Import hlm and describe how it fits a cell with ENGINE."""
    import hlm
    from cells import load_cell

    def load(cell):
        return load_cell(cell) if cell.synthetic else hlm.datasets.load(cell.dataset.lower())

    def fit(cell, df):
        method = "REML" if cell.reml else "ML"
        return hlm.fit(cell.formula, df, method=method, engine=ENGINE)

    def summarize(res):
        log = res.fit_log
        steps = log.iterations if log.iterations else log.evaluations
        return {
            "criterion": float(res.criterion),
            "evals": log.evaluations,
            "engine": ENGINE,
            "iterations": log.iterations,
            "engine_seconds": log.seconds,
            "ms_per_step": 1e3 * log.seconds / max(steps, 1),
            "converged": log.converged,
        }

    return Tool(hlm.__version__, fit, summarize, load)


if __name__ == "__main__":
    main(f"hlm-{ENGINE}", setup)
