"""New responses drawn from a fitted model: ``result.simulate(nsim, seed=...)``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hlm.inference.rows import row_design, simulate_rows


def simulate(result, nsim: int = 1, *, seed=None, use_u: bool = False) -> pd.DataFrame:
    """Draw ``nsim`` response vectors from the fitted model (as lme4's ``simulate``).

    Each draw takes new random effects ``b_k ~ N(0, Sigma_k)`` for every group (or keeps
    the conditional modes with ``use_u=True``) and new residuals ``N(0, sigma^2 / w_i)``,
    around ``X beta`` (plus the offset).  The response is on the model's scale (the
    transformed response for a formula such as ``np.log(y) ~ ...``).

    Parameters
    ----------
    result : MixedModelResult
    nsim : int
    seed : int or numpy.random.Generator, optional
    use_u : bool

    Returns
    -------
    pandas.DataFrame
        One row per fitted row (indexed like the data), columns ``sim_1 .. sim_nsim``.
    """
    nsim = int(nsim)
    if nsim < 1:
        raise ValueError(f"nsim must be at least 1, got {nsim}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    rd = row_design(result.model)
    out = np.empty((rd.n, nsim))
    for i in range(nsim):
        out[:, i] = simulate_rows(result, rd, rng, use_u=use_u)
    return pd.DataFrame(
        out,
        index=result.model.frame.data.index,
        columns=[f"sim_{i + 1}" for i in range(nsim)],
    )
