"""PosteriorResult: the draws of :func:`hlm.sample` and what a user reads off them.

``fixef``, ``sigma``, ``varcorr()``, ``ranef()`` and ``coef()`` have the meaning and layout of
the same names on :class:`hlm.MixedModelResult`, with posterior means in place of the
estimates; posterior SDs and central intervals sit beside them.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from hlm.bayes.draws import Draws, packed_index
from hlm.results.tables import coef_table


class _Block:
    """What the ranef tables of :mod:`hlm.results.tables` read from a term."""

    def __init__(self, group, columns, levels):
        self.group, self.columns, self.levels = group, list(columns), np.asarray(levels)


class PosteriorResult:
    """Posterior draws of a Bayesian linear mixed model (see :func:`hlm.sample`).

    Attributes
    ----------
    formula : str
    fixef : pandas.Series
        Posterior means of the fixed effects.
    fixef_sd : pandas.Series
        Posterior SDs of the fixed effects.
    sigma : float
        Posterior mean of the residual SD.
    draws : Draws
        Every draw, by chain (user units).
    chains, n_draws, warmup : int
    nobs : int
    ngroups : dict
    seconds : float
        Wall time of the whole ``hlm.sample`` call; ``compile_seconds`` the part spent compiling
        or loading the kernel (zero once loaded in this process).
    engine : str
        ``"numba"`` or ``"numpy"``.
    """

    def __init__(self, *, model, prob, priors, draws: Draws, settings: dict):
        self.model = model
        self.prob = prob
        self.priors = priors
        self.draws = draws
        self.formula = model.spec.formula
        self.fixed_names = list(prob.fixed_names)
        self.groups = list(prob.groups)
        self.columns = [list(c) for c in prob.columns]
        self.levels = list(prob.levels)
        self.hier_names = [",".join(g.user.names) for g in prob.fix_groups]
        self.chains = draws.n_chains
        self.n_draws = draws.n_draws
        self.settings = dict(settings)
        self.warmup = int(settings["warmup"])
        self.seed = settings["seed"]
        self.engine = settings["engine"]
        self.seconds = float(settings.get("seconds", np.nan))
        self.compile_seconds = float(settings.get("compile_seconds", 0.0))
        self.nobs = int(model.n)
        self.ngroups = {}
        for b in model.blocks:
            self.ngroups.setdefault(b.group, int(b.J))
        beta = draws.beta.reshape(-1, len(self.fixed_names))
        self.fixef = pd.Series(beta.mean(axis=0), index=self.fixed_names, name="mean")
        self.fixef_sd = pd.Series(beta.std(axis=0, ddof=1), index=self.fixed_names, name="sd")
        self.sigma = float(draws.sigma.mean())
        self._blocks = [
            _Block(b.group, c, lv)
            for b, c, lv in zip(model.blocks, self.columns, self.levels, strict=True)
        ]

    # ------------------------------------------------------------------ tables
    def fixef_table(self, level: float = 0.95) -> pd.DataFrame:
        """Fixed effects: posterior mean, SD and central interval."""
        x = self.draws.beta.reshape(-1, len(self.fixed_names))
        lo, hi = np.quantile(x, [(1 - level) / 2, (1 + level) / 2], axis=0)
        return pd.DataFrame(
            {"mean": self.fixef, "sd": self.fixef_sd, "lower": lo, "upper": hi},
            index=self.fixed_names,
        )

    def varcorr(self, level: float = 0.95) -> pd.DataFrame:
        """Variance components in the layout of :meth:`hlm.MixedModelResult.varcorr`.

        Columns ``grp, var1, var2, vcov, sdcor`` hold posterior means (of the variance or
        covariance, and of the SD or correlation); ``se`` is the posterior SD of ``vcov`` (the
        counterpart of the ML result's standard error); ``sdcor_sd``, ``sdcor_lower`` and
        ``sdcor_upper`` give the posterior SD and central interval of ``sdcor``.
        """
        d = self.draws
        q = [(1 - level) / 2, (1 + level) / 2]
        rows = []

        def row(grp, v1, v2, var, sdc):
            var, sdc = var.reshape(-1), sdc.reshape(-1)
            lo, hi = np.nanquantile(sdc, q)
            rows.append(
                (grp, v1, v2, var.mean(), np.nanmean(sdc), var.std(ddof=1),
                 np.nanstd(sdc, ddof=1), lo, hi)
            )  # fmt: skip

        for k, grp in enumerate(self.groups):
            S = d.S(k)
            idx = packed_index(S)
            sd = d.sd(k)
            for i, col in enumerate(self.columns[k]):
                row(grp, col, None, d.Sigma[k][..., idx[i, i]], sd[..., i])
            corr = d.corr(k)
            c = 0
            for i in range(S):
                for j in range(i + 1, S):
                    cols = self.columns[k]
                    row(grp, cols[i], cols[j], d.Sigma[k][..., idx[i, j]], corr[..., c])
                    c += 1
        row("Residual", None, None, d.sigma**2, d.sigma)
        return pd.DataFrame(
            rows,
            columns=[
                "grp",
                "var1",
                "var2",
                "vcov",
                "sdcor",
                "se",
                "sdcor_sd",
                "sdcor_lower",
                "sdcor_upper",
            ],
        )

    def ranef(self) -> dict:
        """Posterior means of the random effects (fully Bayesian counterpart of the EB
        estimates), in the layout of :meth:`hlm.MixedModelResult.ranef`."""
        from hlm.results.tables import ranef_tables

        return ranef_tables(self._blocks, self.draws.b_mean)

    def ranef_sd(self) -> dict:
        """Posterior SDs of the random effects, same layout as :meth:`ranef`."""
        from hlm.results.tables import ranef_tables

        return ranef_tables(self._blocks, self.draws.b_sd)

    def ranef_interval(self, level: float = 0.95) -> dict:
        """Central posterior intervals of the random effects: ``{"lower": ..., "upper": ...}``
        per grouping factor, same layout as :meth:`ranef` (needs ``keep_ranef=True``)."""
        from hlm.results.tables import ranef_tables

        if self.draws.b is None:
            raise ValueError(
                "the random-effect draws were not kept (too many); run hlm.sample with "
                "keep_ranef=True to get their intervals"
            )
        q = [(1 - level) / 2, (1 + level) / 2]
        flat = [b.reshape((-1,) + b.shape[2:]) for b in self.draws.b]
        lo = [np.quantile(f, q[0], axis=0) for f in flat]
        hi = [np.quantile(f, q[1], axis=0) for f in flat]
        return {"lower": ranef_tables(self._blocks, lo), "upper": ranef_tables(self._blocks, hi)}

    def coef(self) -> dict:
        """Per grouping factor, posterior mean fixed effects plus that group's random effects."""
        return coef_table(self.fixef, self.ranef())

    # ------------------------------------------------------------------ diagnostics
    @cached_property
    def _diagnostics(self) -> pd.DataFrame:
        from hlm.bayes.diagnostics import diagnostics_table

        return diagnostics_table(self)

    def diagnostics(self) -> pd.DataFrame:
        """Per scalar parameter: posterior mean, SD, 95% interval, bulk and tail ESS and split
        rank-normalised R-hat (computed by ArviZ)."""
        return self._diagnostics.copy()

    @property
    def convergence_notes(self) -> list:
        """Sentences naming parameters with R-hat > 1.01 or ESS < 400 (empty when none)."""
        from hlm.bayes.diagnostics import convergence_problems

        return convergence_problems(self._diagnostics)

    def to_arviz(self):
        """The draws as an ``arviz.InferenceData`` (see :mod:`hlm.bayes.diagnostics`)."""
        from hlm.bayes.diagnostics import to_inference_data

        return to_inference_data(self)

    def plot_trace(self, var_names=None, path=None):
        """Trace and density plots (ArviZ ``plot_trace``); returns the matplotlib Figure.

        ``var_names`` defaults to the fixed effects, sigma, and each term's SDs and
        correlations; ``path`` saves the figure (PNG, PDF, ...).
        """
        from hlm.bayes.plots import plot_trace

        return plot_trace(self, var_names, path)

    def plot_density(self, var_names=None, path=None):
        """Posterior densities with the mean and the 95% highest-density interval (ArviZ
        ``plot_posterior``); returns the matplotlib Figure."""
        from hlm.bayes.plots import plot_density

        return plot_density(self, var_names, path)

    # ------------------------------------------------------------------ model comparison
    def log_marginal_likelihood(self, *, seed=None):
        """Log marginal likelihood ``log p(y)`` by bridge sampling, with its error.

        Returns a :class:`hlm.bayes.bridge.BridgeEstimate` (``value``, ``se``).
        """
        from hlm.bayes.bridge import bridge_estimate

        key = ("logml", seed)
        if key not in self.__dict__.setdefault("_cache", {}):
            self._cache[key] = bridge_estimate(self, seed=seed)
        return self._cache[key]

    def bayes_factor(self, other, *, seed=None):
        """Bayes factor of this model against ``other`` (another PosteriorResult on the
        same data); see :func:`hlm.bayes_factor`."""
        from hlm.bayes.bayes_factor import bayes_factor

        return bayes_factor(self, other, seed=seed)

    def variance_bayes_factor(self, group: str, *, seed=None, **sample_options):
        """Bayes factor of this model against the same model without the term ``group``
        (its variance components zero); see :func:`hlm.bayes.bayes_factor.variance_bayes_factor`."""
        from hlm.bayes.bayes_factor import variance_bayes_factor

        return variance_bayes_factor(self, group, seed=seed, **sample_options)

    # ------------------------------------------------------------------ display
    def summary(self, level: float = 0.95) -> str:
        """A text summary: posterior means, SDs, intervals, ESS and R-hat."""
        from hlm.bayes.summary import summary_text

        return summary_text(self, level)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (
            f"<PosteriorResult {self.formula!r}: {self.chains} chains x {self.n_draws} draws, "
            f"nobs {self.nobs}>"
        )
