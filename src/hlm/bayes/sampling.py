"""``hlm.sample``: Bayesian fit of a linear mixed model by a Gibbs sampler on cross-products."""

from __future__ import annotations

import os
import time

import numpy as np

from hlm.errors import ConvergenceWarning, warn

#: random-effect draws kept when chains x draws x (number of random effects) is at most this
KEEP_RANEF_MAX = 20_000_000


def sample(
    model,
    data,
    *,
    priors=None,
    chains: int = 4,
    draws: int = 1000,
    warmup: int = 1000,
    seed=None,
    progress: bool = True,
    cores: int | None = None,
    engine: str = "auto",
    keep_ranef: bool | None = None,
    weights=None,
    offset=None,
    missing: str = "drop",
):
    """Draw from the posterior of a linear mixed model by blocked Gibbs sampling.

    Each iteration draws ``(beta, b)`` jointly given the variances through the blocked
    Cholesky factor of the penalised cross-product matrix (as the ML/REML engine), then each
    term's covariance matrix, sigma^2 and any hyperparameters given the rest; its cost does not
    depend on the number of rows.  See docs/bayes.md for the model, priors and sampler.

    Parameters
    ----------
    model : str or hlm.Levels
        An lme4 formula or a level-equation spec (any object with ``prepare(data) ->
        (formula, data)``); it needs at least one random-effects term.
    data : pandas.DataFrame, polars.DataFrame, pyarrow.Table or dict of arrays
    priors : hlm.priors.Priors or dict, optional
        See :mod:`hlm.bayes.priors`.  Default: flat on fixed effects, ``HalfT(3, auto)`` on
        sigma, ``HuangWand(2, auto)`` on each term's covariance matrix.
    chains, draws, warmup : int
        Number of chains, kept draws per chain and warm-up (discarded, adapting) iterations.
    seed : int or None
        Seed of ``numpy.random.SeedSequence``; each chain gets its own spawned stream, so the
        result depends on the seed only (not on ``cores``).  None: fresh entropy, stored in
        ``result.seed``.
    progress : bool
        A tqdm progress bar on standard error when it is a terminal.
    cores : int, optional
        Processes running chains in parallel (default: ``min(chains, os.cpu_count())``; 1 runs
        the chains one after another in this process).
    engine : {"auto", "numba", "numpy"}
        ``numba``: the compiled kernel (one random-effects term); ``numpy``: any model;
        ``auto``: numba when installed and the model has one term.
    keep_ranef : bool, optional
        Keep every draw of the random effects (for their intervals and ``to_arviz``); default:
        when they take at most 20 million numbers.  Their means and SDs are always kept.
    weights, offset, missing
        As in :func:`hlm.fit`.

    Returns
    -------
    hlm.PosteriorResult
    """
    from hlm.bayes.chains import compile_kernel, run_chains, use_compiled
    from hlm.bayes.draws import Draws
    from hlm.bayes.posterior import PosteriorResult
    from hlm.bayes.priors import Priors
    from hlm.bayes.problem import build_problem
    from hlm.model import LinearMixedModel

    t0 = time.perf_counter()
    chains, draws, warmup = (
        _count(chains, "chains", 1),
        _count(draws, "draws", 4),
        _count(warmup, "warmup", 0),
    )
    m = LinearMixedModel.from_formula(
        model, data, method="ML", weights=weights, offset=offset, missing=missing
    )
    m.source = model
    pri = Priors.coerce(priors)
    prob = build_problem(m, pri)
    compiled = use_compiled(prob, engine)
    compile_seconds = compile_kernel(prob) if compiled else 0.0
    if cores is None:
        cores = min(chains, os.cpu_count() or 1)
    if keep_ranef is None:
        q = sum(zz.shape[0] * zz.shape[1] for zz in prob.ZZ)
        keep_ranef = chains * draws * q <= KEEP_RANEF_MAX
    seq = np.random.SeedSequence(seed)
    out = run_chains(
        prob,
        chains=chains,
        draws=draws,
        warmup=warmup,
        seed=seq,
        cores=int(cores),
        compiled=compiled,
        store_b=bool(keep_ranef),
        progress=progress,
    )
    settings = {
        "warmup": warmup,
        "seed": seq.entropy,
        "engine": "numba" if compiled else "numpy",
        "compile_seconds": compile_seconds,
        "weights": weights,
        "offset": offset,
        "missing": missing,
        "cores": cores,
    }
    res = PosteriorResult(model=m, prob=prob, priors=pri, draws=Draws.stack(out), settings=settings)
    notes = res.convergence_notes
    if notes:
        warn(
            "the chains may not have converged or mixed enough: "
            + "; ".join(notes)
            + ". Run longer chains (draws=..., warmup=...) before trusting these numbers",
            ConvergenceWarning,
        )
    res.seconds = time.perf_counter() - t0
    return res


def _count(value, name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    return int(value)
