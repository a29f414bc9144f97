"""hlm worker (see :mod:`workerlib` for the protocol).

Besides the fit it times single objective evaluations at the fitted theta, so the
table can show that one evaluation costs the same whatever n is (at fixed J).
"""

from __future__ import annotations

import statistics
import time

from cells import load_cell
from workerlib import Tool, main

N_EVAL = 20


def _evaluations(fit_log):
    if fit_log is None:
        return None
    if isinstance(fit_log, dict):
        return fit_log.get("evaluations")
    return getattr(fit_log, "evaluations", None)


def setup() -> Tool:
    """Import hlm and describe how it fits a cell."""
    import hlm

    def method(cell):
        return "REML" if cell.reml else "ML"

    def load(cell):
        if cell.synthetic:
            return load_cell(cell)
        datasets = getattr(hlm, "datasets", None)
        if datasets is None:  # the package's loader is not there yet
            return load_cell(cell)
        return datasets.load(cell.dataset.lower())

    def fit(cell, df):
        return hlm.fit(cell.formula, df, method=method(cell))

    def summarize(res):
        evals = _evaluations(getattr(res, "fit_log", None))
        return {"criterion": float(res.criterion), "evals": evals}

    def extra(cell, df, res, seconds_left):
        model = hlm.LinearMixedModel.from_formula(cell.formula, df, method=method(cell))
        theta = res.theta
        model.objective(theta)
        times = []
        stop = time.perf_counter() + max(seconds_left, 0.0) / 2
        while len(times) < N_EVAL and (not times or time.perf_counter() < stop):
            t0 = time.perf_counter()
            model.objective(theta)
            times.append(time.perf_counter() - t0)
        return {"eval_ms": 1e3 * statistics.median(times), "eval_calls": len(times)}

    version = getattr(hlm, "__version__", None)
    if version is None:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as pkg_version

        try:
            version = pkg_version("hlm")
        except PackageNotFoundError:
            version = "work tree"
    return Tool(version, fit, summarize, load, extra)


if __name__ == "__main__":
    main("hlm", setup)
