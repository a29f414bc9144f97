"""Inference methods of a fitted mixed model (tests, intervals, predictions, R-squared).

Kept apart from :mod:`hlm.results.fitted` so that the result class stays a list of what a
fit holds; :class:`MixedModelResult` inherits these methods.  Each one delegates to
:mod:`hlm.inference`, where the methods are documented in full.
"""

from __future__ import annotations

from functools import cached_property


class InferenceMethods:
    """Mixin: wald_test, anova, confint, bootstrap, predict, simulate, r2 (:mod:`hlm.inference`)."""

    # ------------------------------------------------------------------ cached pieces
    @cached_property
    def _varpar_covariance(self):
        """Hessian of the criterion and Jacobian of vcov(beta) (Satterthwaite's method)."""
        from hlm.inference.satterthwaite import varpar_covariance

        return varpar_covariance(self)

    @cached_property
    def _kenward_roger(self):
        """Kenward-Roger adjusted covariance of beta and its ingredients."""
        from hlm.inference.kenward_roger import kenward_roger

        return kenward_roger(self)

    @property
    def aicc(self) -> float:
        """Small-sample corrected AIC: ``AIC + 2k(k + 1) / (n - k - 1)``, k = ``npar``."""
        k, n = self.npar, self.nobs
        return self.aic + 2.0 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else float("inf")

    # ------------------------------------------------------------------ tests
    def wald_test(self, hypothesis, rhs=None, *, df="satterthwaite"):
        """Joint Wald F test of linear hypotheses about the fixed effects.

        ``hypothesis`` is a string such as ``"x1 = x2 = 0"`` or a matrix ``L`` (then
        ``rhs``, default 0).  ``df``: ``"satterthwaite"`` (default), ``"kenward-roger"``,
        ``"residual"`` or ``"asymptotic"``.  Returns a one-row DataFrame ``sum_sq, mean_sq,
        num_df, den_df, F, p``.  See :func:`hlm.inference.wald.wald_test`.
        """
        from hlm.inference.wald import wald_test

        return wald_test(self, hypothesis, rhs, df=df)

    def anova(self, *others, type: int = 3, df="satterthwaite", **options):
        """Type III F table of the fixed-effect terms, or a comparison with other fits.

        With no other fit: one F test per term (intercept excluded) with Satterthwaite
        (or ``df="kenward-roger"``) denominator df, as lmerTest's ``anova(fit)``; see
        :mod:`hlm.inference.type3`.  With other fits: ``hlm.anova(self, *others)``.
        """
        if others:
            from hlm.inference.anova import anova

            return anova(self, *others, **options)
        if str(type).upper() not in ("3", "III"):
            raise ValueError(f"only type III tables are available, got type={type!r}")
        from hlm.inference.type3 import type3_table

        return type3_table(self, df=df)

    # ------------------------------------------------------------------ intervals
    def confint(
        self,
        method: str = "wald",
        level: float = 0.95,
        *,
        parm=None,
        names: str = "readable",
        **boot_options,
    ):
        """Confidence intervals for the variance parameters and the fixed effects.

        ``method``: ``"wald"``, ``"profile"`` (profile likelihood, as lme4) or ``"boot"``
        (parametric bootstrap percentiles; options ``nsim=500, seed, n_jobs, progress``).
        Rows ``sd_(Intercept)|g``, ``cor_x.(Intercept)|g``, ..., ``sigma`` (``names="lme4"``:
        ``.sig01``, ..., ``.sigma``), then the fixed effects; columns ``lower, upper``.
        See :mod:`hlm.inference.confint`.
        """
        from hlm.inference.confint import confint

        return confint(self, method, level, parm=parm, names=names, **boot_options)

    def bootstrap(
        self,
        nsim: int = 500,
        *,
        seed=None,
        n_jobs=None,
        progress=None,
        use_u: bool = False,
        names: str = "readable",
    ):
        """Parametric bootstrap replicates of the estimates (one row per replicate).

        See :func:`hlm.inference.bootstrap.parametric_bootstrap`.
        """
        from hlm.inference.bootstrap import parametric_bootstrap

        return parametric_bootstrap(
            self, nsim, seed=seed, n_jobs=n_jobs, progress=progress, use_u=use_u, names=names
        )

    # ------------------------------------------------------------------ prediction
    def predict(self, newdata=None, *, random=True, allow_new_levels: bool = True, offset=None):
        """Predictions for new data (default: the fitted rows).

        ``random=True`` adds the conditional modes of groups seen in fitting (unseen
        groups are predicted at the population level, or raise with
        ``allow_new_levels=False``); ``random=False`` gives ``x' beta``; a list of grouping
        factors keeps those terms.  See :mod:`hlm.inference.predict`.
        """
        from hlm.inference.predict import predict

        return predict(
            self, newdata, random=random, allow_new_levels=allow_new_levels, offset=offset
        )

    def predict_interval(
        self,
        newdata=None,
        level: float = 0.95,
        *,
        random=True,
        allow_new_levels: bool = True,
        offset=None,
        interval: str = "prediction",
    ):
        """Predictions with intervals that include random-effect and residual uncertainty.

        Returns ``fit, se, lower, upper``; see :func:`hlm.inference.predict.predict_interval`.
        """
        from hlm.inference.predict import predict_interval

        return predict_interval(
            self,
            newdata,
            level,
            random=random,
            allow_new_levels=allow_new_levels,
            offset=offset,
            interval=interval,
        )

    def simulate(self, nsim: int = 1, *, seed=None, use_u: bool = False):
        """Responses drawn from the fitted model, one column per draw.

        See :func:`hlm.inference.simulate.simulate`.
        """
        from hlm.inference.simulate import simulate

        return simulate(self, nsim, seed=seed, use_u=use_u)

    # ------------------------------------------------------------------ R-squared
    def r2(self):
        """Marginal and conditional R-squared (Nakagawa & Schielzeth; Johnson 2014).

        See :mod:`hlm.inference.r2`.
        """
        from hlm.inference.r2 import r2

        return r2(self)
