"""Parametric bootstrap of a fitted mixed model (lme4's ``bootMer`` / ``confint(method="boot")``).

Each replicate draws a response from the fitted model (new random effects and residuals),
refits the model on it by the fit's own criterion (REML or ML), and records the estimates:
standard deviations, correlations and sigma (:mod:`hlm.inference.varpar`), then the fixed
effects.  A replicate changes only the response, so the refit reuses every cross-product
that does not involve it (:func:`hlm.inference.rows.with_response`); the cost per replicate
is one pass over the rows to form ``X'y, Z'y, y'y`` plus a fit that never touches the rows.
Replicates run in worker processes (:mod:`hlm.inference.parallel`), each with its own
generator spawned from ``seed``, so a seed gives the same replicates with any number of
processes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hlm.inference._problem import beta_at, fit_theta, model_copy
from hlm.inference.parallel import run_replicates
from hlm.inference.rows import row_design, simulate_rows, with_response
from hlm.inference.varpar import VarPar


class _Replicate:
    """One bootstrap replicate: simulate, refit, return ``[psi, beta, converged]``."""

    def __init__(self, result, use_u: bool):
        self.result = result
        self.model = model_copy(result.model)
        self.rd = row_design(result.model)
        self.vp = VarPar(result.model, result._groups)
        self.theta = np.asarray(result.theta, dtype=float)
        self.use_u = use_u

    def __call__(self, rng) -> np.ndarray:
        y = simulate_rows(self.result, self.rd, rng, use_u=self.use_u)
        m = with_response(self.model, self.rd, y)
        theta, _, converged = fit_theta(m, self.theta)
        beta, sigma, _ = beta_at(m, theta)
        return np.concatenate((self.vp.from_theta(theta, sigma), beta, [float(converged)]))


def parametric_bootstrap(
    result,
    nsim: int = 500,
    *,
    seed=None,
    n_jobs=None,
    progress=None,
    use_u=False,
    names: str = "readable",
) -> pd.DataFrame:
    """Bootstrap replicates of a fit's parameter estimates.

    Parameters
    ----------
    result : MixedModelResult
    nsim : int
        Number of replicates.
    seed : int or numpy.random.SeedSequence, optional
        Makes the replicates reproducible (independent of ``n_jobs``).
    n_jobs : int, optional
        Worker processes (default: all cores available).
    progress : bool, optional
        Progress bar (default: shown only when standard error is a terminal).
    use_u : bool
        Keep the fitted conditional modes instead of drawing new random effects.
    names : {"readable", "lme4"}
        Names of the variance parameters.

    Returns
    -------
    pandas.DataFrame
        One row per replicate; columns: variance parameters then fixed effects.
        ``attrs["converged"]`` flags each refit; ``attrs["estimate"]`` the original fit's
        values.
    """
    task = _Replicate(result, use_u)
    reps = run_replicates(task, nsim, seed, n_jobs=n_jobs, progress=progress, desc="bootstrap")
    arr = np.vstack(reps)
    cols = task.vp.names(names) + list(result.fixef.index)
    out = pd.DataFrame(arr[:, :-1], columns=cols)
    out.attrs["converged"] = arr[:, -1].astype(bool)
    out.attrs["estimate"] = pd.Series(
        np.concatenate((task.vp.from_theta(result.theta, result.sigma), result.fixef.to_numpy())),
        index=cols,
    )
    out.attrs["seed"] = seed
    return out


def boot_confint(
    result,
    level=0.95,
    *,
    nsim=500,
    seed=None,
    n_jobs=None,
    progress=None,
    names="readable",
    parm=None,
) -> pd.DataFrame:
    """Percentile intervals from :func:`parametric_bootstrap` (lme4's default ``"perc"``)."""
    reps = parametric_bootstrap(
        result, nsim, seed=seed, n_jobs=n_jobs, progress=progress, names=names
    )
    a = (1.0 - level) / 2.0
    cols = list(reps.columns) if parm is None else ([parm] if isinstance(parm, str) else parm)
    unknown = [c for c in cols if c not in reps.columns]
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; parameters are {list(reps.columns)}")
    values = reps[cols].to_numpy()
    lower = np.nanquantile(values, a, axis=0)
    upper = np.nanquantile(values, 1.0 - a, axis=0)
    out = pd.DataFrame({"lower": lower, "upper": upper}, index=cols)
    out.attrs["method"] = "boot"
    out.attrs["level"] = level
    out.attrs["nsim"] = nsim
    out.attrs["n_not_converged"] = int((~reps.attrs["converged"]).sum())
    out.attrs["replicates"] = reps
    return out
