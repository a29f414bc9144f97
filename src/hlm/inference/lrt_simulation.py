"""The null distribution of a likelihood-ratio statistic by parametric bootstrap.

Responses are drawn from the fitted null model; both models are refitted on each, on
their cross-products (a new response changes only ``X'y``, ``Z'y`` and ``y'y``,
:func:`hlm.inference.rows.with_response`), and the statistic is recorded.  This gives a
p-value that needs no asymptotics (``lrt_bootstrap``; pbkrtest's ``PBmodcomp`` does the
same in R), and it is how the boundary-corrected reference distributions of
:mod:`hlm.inference.boundary` are checked (``tests/test_inference_simulation.py``).

A least-squares null model must have the same fixed effects as the mixed alternative: its
criterion is then the alternative's profiled criterion at ``theta = 0``, which is exactly
the least-squares criterion (ML deviance, or lme4's REML criterion of ``lm``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hlm.inference._problem import fit_theta, model_copy
from hlm.inference.parallel import run_replicates
from hlm.inference.rows import row_design, simulate_rows, with_response


def _criterion_kind(null, alt) -> str:
    same_fixed = list(null.fixef.index) == list(alt.fixef.index)
    if null.method == "REML" and alt.method == "REML" and same_fixed:
        return "REML"
    return "ML"


class _Replicate:
    """Simulate from the null fit, refit both models, return the statistic."""

    def __init__(self, null, alt, kind: str):
        self.kind = kind
        self.alt = model_copy(alt.model, method=kind)
        # each replicate is fitted as a fresh fit would be: from lme4's start
        self.alt_theta = self.alt.cov.start()
        self.rd_alt = row_design(alt.model)
        self.null_is_ols = not hasattr(null, "theta")
        if self.null_is_ols:
            if list(null.fixef.index) != list(alt.fixef.index):
                raise NotImplementedError(
                    "simulating from a least-squares null model needs the same fixed effects "
                    "as the mixed alternative"
                )
            self.beta0 = null.fixef.to_numpy()
            # residual SD of the null model by its own criterion (sigma of lm for REML)
            self.sigma0 = float(null.sigma)
        else:
            self.null_result = null
            self.null = model_copy(null.model, method=kind)
            self.null_theta = self.null.cov.start()
            self.rd_null = row_design(null.model)

    def _draw(self, rng) -> np.ndarray:
        if self.null_is_ols:
            rd = self.rd_alt
            e = rng.standard_normal(rd.n) * self.sigma0
            if rd.sqrtw is not None:
                e = e / rd.sqrtw
            y = rd.X @ self.beta0 + e
            return y if rd.offset is None else y + rd.offset
        return simulate_rows(self.null_result, self.rd_null, rng)

    def __call__(self, rng) -> np.ndarray:
        y = self._draw(rng)
        alt = with_response(self.alt, self.rd_alt, y)
        _, crit1, ok1 = fit_theta(alt, self.alt_theta)
        if self.null_is_ols:
            crit0, ok0 = float(alt.objective(np.zeros(alt.cov.ntheta))), True
        else:
            null = with_response(self.null, self.rd_null, y)
            _, crit0, ok0 = fit_theta(null, self.null_theta)
        return np.array([max(0.0, crit0 - crit1), float(ok0 and ok1)])


def simulate_lrt(null, alt, nsim: int, *, seed=None, n_jobs=None, progress=None):
    """Likelihood-ratio statistics of ``null`` within ``alt`` on data simulated from ``null``.

    Parameters
    ----------
    null : OLSResult or MixedModelResult
        The fitted null model (least squares: same fixed effects as ``alt``).
    alt : MixedModelResult
        The fitted alternative (same rows and response).
    nsim : int
    seed, n_jobs, progress
        As for :func:`hlm.inference.parallel.run_replicates`.

    Returns
    -------
    statistics : ndarray (nsim,)
        ``max(0, crit_null - crit_alt)`` on the REML criterion when both fits are REML with
        the same fixed effects, else on the ML deviance (as :func:`hlm.anova`).
    converged : ndarray of bool (nsim,)
    """
    if null.nobs != alt.nobs:
        raise ValueError("the two models were fitted to different numbers of rows")
    task = _Replicate(null, alt, _criterion_kind(null, alt))
    out = np.vstack(
        run_replicates(
            task, nsim, seed, n_jobs=n_jobs, progress=progress, desc="LRT under the null"
        )
    )
    return out[:, 0], out[:, 1].astype(bool)


def lrt_bootstrap(null, alt, nsim: int = 1000, *, seed=None, n_jobs=None, progress=None):
    """Parametric-bootstrap p-value of the likelihood-ratio test of ``null`` within ``alt``.

    Returns
    -------
    pandas.Series
        ``chisq`` (the observed statistic), ``p_boot`` (``(1 + #{T* >= T}) / (nsim + 1)``),
        ``p`` and ``null`` (the asymptotic test of :func:`hlm.anova`), ``nsim``.
    """
    from hlm.inference.anova import anova

    table = anova(null, alt)
    observed = float(table["chisq"].iloc[1])
    stats, _ = simulate_lrt(null, alt, nsim, seed=seed, n_jobs=n_jobs, progress=progress)
    p_boot = (1.0 + np.sum(stats >= observed - 1e-10)) / (nsim + 1.0)
    return pd.Series(
        {
            "chisq": observed,
            "p_boot": p_boot,
            "p": float(table["p"].iloc[1]),
            "null": table["null"].iloc[1],
            "nsim": int(nsim),
        }
    )
