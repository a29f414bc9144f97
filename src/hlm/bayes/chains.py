"""Running chains: one chain in a process, several chains in parallel processes.

Every chain gets its own stream from ``numpy.random.SeedSequence(seed).spawn(chains)``, so a
run is reproducible from one seed whatever the number of processes.  The compiled kernel
draws from numba's generator, seeded per chain from that stream; the NumPy path draws from a
``numpy.random.Generator`` on the same stream.  Chains run in segments so that the parent
can show progress.
"""

from __future__ import annotations

import math
import sys
import traceback
from dataclasses import dataclass
from queue import Empty

import numpy as np

from hlm.bayes.problem import SD_HALFNORMAL, SD_HALFT, Problem

#: iterations per call of the compiled kernel between progress reports
SEGMENT = 250


@dataclass
class ChainDraws:
    """The output of one chain, in user units.

    Attributes
    ----------
    beta : ndarray (draws, p)
    sigma : ndarray (draws,)
    Sigma : list of ndarray (draws, S_k (S_k + 1) / 2)
        Lower triangles (column-wise, theta order) of each term's covariance matrix.
    b : list of ndarray (draws, J_k, S_k) or None
    b_mean, b_sd : list of ndarray (J_k, S_k)
    groups : ndarray (draws, 2 * n_groups)
        Hierarchical means then SDs.
    accept : ndarray
        Metropolis-Hastings acceptance rates (sampling phase).
    seconds : float
        Wall time of the chain (warm-up and sampling).
    """

    beta: np.ndarray
    sigma: np.ndarray
    Sigma: list
    b: list | None
    b_mean: list
    b_sd: list
    groups: np.ndarray
    accept: np.ndarray
    seconds: float


def use_compiled(prob: Problem, engine: str) -> bool:
    """Whether the compiled kernel runs this problem."""
    if engine == "numpy":
        return False
    ok = prob.K == 1
    if engine == "numba":
        if not ok:
            raise NotImplementedError(
                "the compiled kernel handles one random-effects term; use engine='numpy' (or "
                "'auto') for models with several terms"
            )
        _kernel()  # raises a helpful ImportError without numba
        return True
    if engine != "auto":
        raise ValueError(f"engine must be 'auto', 'numba' or 'numpy', got {engine!r}")
    return ok and _numba_available()


def _numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _kernel():
    try:
        from hlm.bayes import kernel
    except ImportError as e:  # pragma: no cover - numba is in the test extra
        raise ImportError(
            "the compiled Gibbs kernel needs numba: pip install 'hlm[fast]' (or use engine='numpy')"
        ) from e
    return kernel


def compile_kernel(prob: Problem) -> float:
    """Compile the kernel (or load it from numba's cache) before any chain starts.

    Returns the seconds it took: about zero once compiled in this process, the load time of
    numba's on-disk cache in a new process, and the compile time on a machine's first run.
    """
    import time

    t = time.perf_counter()
    kernel = _kernel()
    if not kernel.chain_k1.signatures:
        seq = np.random.SeedSequence(0)
        rng = np.random.default_rng(0)
        _run_compiled(prob, seq, rng, prob.Sigma0, prob.sigma2_0, 1, 1, False, None)
    return time.perf_counter() - t


def start_values(prob: Problem, rng: np.random.Generator):
    """Jittered ML estimates: dispersed starting points for R-hat to mean something."""
    Sigma0 = []
    for S0 in prob.Sigma0:
        d = np.exp(0.3 * rng.standard_normal(S0.shape[0]))
        Sigma0.append(S0 * np.outer(d, d))
    return Sigma0, prob.sigma2_0 * math.exp(0.2 * rng.standard_normal())


def initial_proposal(S: int) -> np.ndarray:
    """State of the adaptive marginal step (see :func:`hlm.bayes.kernel._adapt_proposal`):
    the random-walk factor starts as the identity, the t proposal is off until adapted."""
    D = S * (S + 1) // 2
    am = np.zeros((2 + 3 * D, D))
    am[1 : 1 + D] = np.eye(D)
    return am


def _group_tau0(prob: Problem) -> np.ndarray:
    out = []
    for g in prob.fix_groups:
        if g.sd.kind == SD_HALFT or g.sd.kind == SD_HALFNORMAL:
            out.append(g.sd.p2 if g.sd.kind == SD_HALFT else g.sd.p1)
        else:
            out.append(math.exp(g.sd.p1))
    return np.array(out, dtype=float)


def run_chain(
    prob: Problem, seed_seq, warmup: int, draws: int, *, compiled: bool, store_b: bool, report=None
) -> ChainDraws:
    """Run one chain: ``warmup`` adapting iterations (discarded), then ``draws`` kept."""
    import time

    t0 = time.perf_counter()
    rng = np.random.Generator(np.random.PCG64(seed_seq))
    Sigma0, sigma2_0 = start_values(prob, rng)
    if compiled:
        out = _run_compiled(prob, seed_seq, rng, Sigma0, sigma2_0, warmup, draws, store_b, report)
    else:
        out = _run_numpy(prob, rng, Sigma0, sigma2_0, warmup, draws, store_b, report)
    out.seconds = time.perf_counter() - t0
    return out


def _outputs(prob: Problem, draws: int, store_b: bool):
    ng = len(prob.fix_groups)
    o = {
        "beta": np.zeros((draws, prob.p)),
        "sigma": np.zeros(draws),
        "Sigma": [np.zeros((draws, zz.shape[1] * (zz.shape[1] + 1) // 2)) for zz in prob.ZZ],
        "b": [np.zeros((draws if store_b else 0,) + zz.shape[:2]) for zz in prob.ZZ],
        "b_sum": [np.zeros(zz.shape[:2]) for zz in prob.ZZ],
        "b_sq": [np.zeros(zz.shape[:2]) for zz in prob.ZZ],
        "groups": np.zeros((draws, 2 * ng)),
    }
    return o


def _finish(o, draws, accept, store_b) -> ChainDraws:
    mean = [s / max(draws, 1) for s in o["b_sum"]]
    sd = [
        np.sqrt(np.maximum(q / max(draws, 1) - m**2, 0.0) * draws / max(draws - 1, 1))
        for q, m in zip(o["b_sq"], mean, strict=True)
    ]
    return ChainDraws(
        beta=o["beta"],
        sigma=o["sigma"],
        Sigma=o["Sigma"],
        b=o["b"] if store_b else None,
        b_mean=mean,
        b_sd=sd,
        groups=o["groups"],
        accept=accept,
        seconds=0.0,
    )


def _segments(total: int):
    start = 0
    while start < total:
        step = min(SEGMENT, total - start)
        yield start, step
        start += step


def _run_compiled(prob, seed_seq, rng, Sigma0, sigma2_0, warmup, draws, store_b, report):
    kernel = _kernel()
    kernel.seed(int(seed_seq.generate_state(1, dtype=np.uint32)[0] & 0x7FFFFFFF))
    tp = prob.terms[0]
    ZZ, ZXy = np.ascontiguousarray(prob.ZZ[0]), np.ascontiguousarray(prob.ZXy[0])
    J, S = ZZ.shape[:2]
    ng = len(prob.fix_groups)
    grp_of = np.full(prob.p, -1, dtype=np.int64)
    for gi, g in enumerate(prob.fix_groups):
        grp_of[g.index] = gi
    gtau = _group_tau0(prob)
    fm, fd = prob.fix_mean.copy(), prob.fix_dinv.copy()
    for gi, g in enumerate(prob.fix_groups):
        fm[g.index] = g.m0
        fd[g.index] = 1.0 / gtau[gi] ** 2
    state = {
        "beta": np.zeros(prob.p),
        "b": np.zeros((J, S)),
        "Sigma": np.array(Sigma0[0], dtype=float),
        "scal": np.array([sigma2_0, 1.0]),
        "a": np.asarray(tp.A, dtype=float) ** 2,  # Huang-Wand auxiliaries
        "am": initial_proposal(S),
        "gmu": np.array([g.m0 for g in prob.fix_groups], dtype=float),
        "gtau": gtau,
        "ga": np.ones(ng),
        "logstep": np.zeros(5 + ng),
        "acc": np.zeros(5 + ng),
    }
    state["logstep"][1] = np.log(0.2)
    statics = (
        ZZ,
        ZXy,
        prob.G,
        prob.B,
        float(prob.n),
        prob.T,
        prob.sy,
        prob.cy,
        prob.icol,
        fm,
        fd,
        grp_of,
        np.array([g.mean_kind for g in prob.fix_groups], dtype=np.int64),
        np.array([g.m0 for g in prob.fix_groups], dtype=float),
        np.array([g.s0 for g in prob.fix_groups], dtype=float),
        np.array([g.sd.kind for g in prob.fix_groups], dtype=np.int64),
        np.array([g.sd.p1 for g in prob.fix_groups], dtype=float),
        np.array([g.sd.p2 for g in prob.fix_groups], dtype=float),
        prob.sigma_prior.kind,
        prob.sigma_prior.p1,
        prob.sigma_prior.p2,
        tp.kind,
        tp.nu,
        tp.A,
        tp.df,
        tp.Psi,
        tp.sd.kind,
        tp.sd.p1,
        tp.sd.p2,
    )
    st = (
        state["beta"],
        state["b"],
        state["Sigma"],
        state["scal"],
        state["a"],
        state["am"],
        state["gmu"],
        state["gtau"],
        state["ga"],
        state["logstep"],
        state["acc"],
    )
    empty = _outputs(prob, 0, False)
    for start, step in _segments(warmup):
        kernel.chain_k1(
            *statics,
            *st,
            step,
            True,
            float(start),
            empty["beta"],
            empty["sigma"],
            empty["Sigma"][0],
            empty["b"][0],
            empty["groups"],
            empty["b_sum"][0],
            empty["b_sq"][0],
        )
        if report:
            report(step)
    state["acc"][:] = 0.0
    o = _outputs(prob, draws, store_b)
    for start, step in _segments(draws):
        sl = slice(start, start + step)
        kernel.chain_k1(
            *statics,
            *st,
            step,
            False,
            0.0,
            o["beta"][sl],
            o["sigma"][sl],
            o["Sigma"][0][sl],
            o["b"][0][sl] if store_b else o["b"][0],
            o["groups"][sl],
            o["b_sum"][0],
            o["b_sq"][0],
        )
        if report:
            report(step)
    return _finish(o, draws, state["acc"] / max(draws, 1), store_b)


def _run_numpy(prob, rng, Sigma0, sigma2_0, warmup, draws, store_b, report):
    from hlm.bayes.numpy_gibbs import NumpyGibbs

    gibbs = NumpyGibbs(prob, rng, Sigma0, sigma2_0)
    gt = _group_tau0(prob)
    gibbs.gtau[:] = gt
    for gi, g in enumerate(prob.fix_groups):
        gibbs.fd[g.index] = 1.0 / gt[gi] ** 2
    for start, step in _segments(warmup):
        for it in range(start, start + step):
            gibbs.sweep(rate=min(0.5, 1.0 / math.sqrt(it + 1.0)))
        if report:
            report(step)
    gibbs.acc[:] = 0.0
    o = _outputs(prob, draws, store_b)
    ng = len(prob.fix_groups)
    sy = prob.sy
    for start, step in _segments(draws):
        for it in range(start, start + step):
            gibbs.sweep()
            o["beta"][it] = prob.beta_user(gibbs.beta)
            o["sigma"][it] = sy * math.sqrt(gibbs.sigma2)
            for k, Sig in enumerate(gibbs.Sigma):
                r, c = np.tril_indices(Sig.shape[0])
                order = np.lexsort((r, c))  # column-wise, as theta
                o["Sigma"][k][it] = sy**2 * Sig[r[order], c[order]]
                bk = sy * gibbs.b[k]
                o["b_sum"][k] += bk
                o["b_sq"][k] += bk * bk
                if store_b:
                    o["b"][k][it] = bk
            if ng:
                o["groups"][it, :ng] = gibbs.gmu
                o["groups"][it, ng:] = gibbs.gtau
        if report:
            report(step)
    return _finish(o, draws, gibbs.acc / max(draws, 1), store_b)


# ---------------------------------------------------------------------- several chains
def run_chains(
    prob: Problem,
    *,
    chains: int,
    draws: int,
    warmup: int,
    seed,
    cores: int,
    compiled: bool,
    store_b: bool,
    progress: bool,
) -> list:
    """Run ``chains`` chains on ``cores`` processes (in this process when ``cores == 1``)."""
    if not isinstance(seed, np.random.SeedSequence):
        seed = np.random.SeedSequence(seed)
    seeds = seed.spawn(chains)
    total = chains * (warmup + draws)
    bar = _progress_bar(total, progress)
    try:
        if cores <= 1 or chains == 1:
            out = []
            for s in seeds:
                out.append(
                    run_chain(
                        prob,
                        s,
                        warmup,
                        draws,
                        compiled=compiled,
                        store_b=store_b,
                        report=bar.update if bar else None,
                    )
                )
            return out
        return _run_parallel(prob, seeds, warmup, draws, compiled, store_b, cores, bar)
    finally:
        if bar:
            bar.close()


def _progress_bar(total: int, progress: bool):
    """The project's tqdm bar (hlm.progress): on standard error when it is a terminal, off
    with ``progress=False`` or ``HLM_PROGRESS=0``; None when it would not show."""
    from hlm.progress import progress_bar, progress_enabled

    on = progress_enabled(None if progress else False)
    if on is False or (on is None and not sys.stderr.isatty()):
        return None
    return progress_bar(total, desc="hlm.sample", unit="it", enabled=on, delay=0.5)


def _worker(prob, jobs, warmup, draws, compiled, store_b, queue):
    try:
        for i, s in jobs:
            res = run_chain(
                prob,
                s,
                warmup,
                draws,
                compiled=compiled,
                store_b=store_b,
                report=lambda k: queue.put(("tick", k)),
            )
            queue.put(("done", i, res))
    except BaseException:  # report everything to the parent, which raises
        queue.put(("error", traceback.format_exc()))


def _run_parallel(prob, seeds, warmup, draws, compiled, store_b, cores, bar) -> list:
    import multiprocessing as mp

    # fork (Linux) shares the built problem and the loaded kernel with the workers at no
    # cost; elsewhere (fork is unsafe on macOS, absent on Windows) spawn pickles the problem
    # and each worker loads the kernel from numba's cache
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    queue = ctx.Queue()
    n_proc = min(cores, len(seeds))
    jobs = [[(i, seeds[i]) for i in range(w, len(seeds), n_proc)] for w in range(n_proc)]
    procs = [
        ctx.Process(target=_worker, args=(prob, j, warmup, draws, compiled, store_b, queue))
        for j in jobs
    ]
    for pr in procs:
        pr.start()
    results: dict = {}
    try:
        while len(results) < len(seeds):
            try:
                msg = queue.get(timeout=1.0)
            except Empty:
                if not any(pr.is_alive() for pr in procs) and queue.empty():
                    codes = [pr.exitcode for pr in procs]
                    raise RuntimeError(
                        f"chain worker processes ended without their results (exit codes "
                        f"{codes}); run with cores=1 to see the error in this process"
                    ) from None
                continue
            if msg[0] == "tick":
                if bar:
                    bar.update(msg[1])
            elif msg[0] == "done":
                results[msg[1]] = msg[2]
            else:
                raise RuntimeError("a chain failed in its worker process:\n" + msg[1])
    finally:
        for pr in procs:
            pr.join(timeout=5)
            if pr.is_alive():
                pr.terminate()
    return [results[i] for i in range(len(seeds))]
