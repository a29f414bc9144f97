"""Run seeded replicates in worker processes, with a progress bar.

Each replicate ``i`` gets its own random generator from ``SeedSequence(seed).spawn``, so
the results depend on the seed only, not on the number of processes or on the order in
which workers finish.  Work is sent in chunks to a pool of processes (``fork`` where the
platform has it, so the task is not pickled per chunk); ``n_jobs=1`` runs in this process.
"""

from __future__ import annotations

import os

import numpy as np

_TASK = None  # the task of a worker process (set by the pool's initializer)


def default_jobs() -> int:
    """The number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _init(task) -> None:
    global _TASK
    _TASK = task
    # one BLAS thread per worker: the workers already use the cores
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def _run_chunk(seeds: list) -> list:
    return [_TASK(np.random.default_rng(s)) for s in seeds]


def run_replicates(task, nsim: int, seed, *, n_jobs=None, progress=None, desc="replicates"):
    """``[task(rng_i) for i in range(nsim)]`` across processes.

    Parameters
    ----------
    task : callable
        ``task(rng) -> ndarray``; must be picklable when the platform cannot fork.
    nsim : int
    seed : int, numpy SeedSequence or None
    n_jobs : int, optional
        Processes (default: all cores available to this process).
    progress : bool, optional
        Show a tqdm progress bar (default: only when standard error is a terminal; the
        environment variable ``HLM_PROGRESS`` overrides, see :mod:`hlm.progress`).
    desc : str
        Label of the progress bar.

    Returns
    -------
    list
        The replicates, in order ``0 .. nsim - 1``.
    """
    nsim = int(nsim)
    if nsim < 1:
        raise ValueError(f"nsim must be at least 1, got {nsim}")
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    seeds = root.spawn(nsim)
    jobs = default_jobs() if n_jobs is None else max(1, int(n_jobs))
    jobs = min(jobs, nsim)
    bar = _bar(nsim, progress, desc)
    try:
        if jobs == 1:
            out = []
            for s in seeds:
                out.append(task(np.random.default_rng(s)))
                bar.update(1)
            return out
        return _pool(task, seeds, jobs, bar)
    finally:
        bar.close()


def _pool(task, seeds, jobs, bar) -> list:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    size = max(1, min(25, len(seeds) // (4 * jobs)))
    chunks = [seeds[i : i + size] for i in range(0, len(seeds), size)]
    results: list = [None] * len(chunks)
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init, initargs=(task,)) as ex:
        futures = {ex.submit(_run_chunk, c): i for i, c in enumerate(chunks)}
        from concurrent.futures import as_completed

        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            bar.update(len(chunks[i]))
    return [r for chunk in results for r in chunk]


def _bar(total: int, progress, desc: str):
    """hlm's progress bar (:mod:`hlm.progress`): on a terminal by default, or as asked."""
    from hlm.progress import progress_bar

    return progress_bar(
        total=total,
        desc=desc,
        unit="replicate",
        enabled=progress,
        delay=0.0 if progress else 2.0,
    )
