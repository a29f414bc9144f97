"""MixedModelResult: an immutable fitted linear mixed model."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from hlm.results.display_methods import DisplayMethods
from hlm.results.estimates import estimates_at
from hlm.results.inference_methods import InferenceMethods
from hlm.results.tables import (
    coef_table,
    ranef_tables,
    ranef_var_tables,
    unique_group_names,
    varcorr_table,
)


class MixedModelResult(InferenceMethods, DisplayMethods):
    """A fitted linear mixed model (REML or ML).

    Built once, by :meth:`from_model`; every number is computed there.  The pandas views
    of the fixed effects (``fixef``, ``fixef_se``, ``vcov``) are made from those numbers on
    first access.  Display methods (``summary``, ``str``) only format.

    Attributes
    ----------
    model : LinearMixedModel
    formula, method : str
    criterion : float
        REML criterion or ML deviance (-2 log-likelihood), as lme4 reports them.
    loglik, aic, bic : float
    fixef, fixef_se : pandas.Series
    vcov : pandas.DataFrame
    sigma : float
    theta : ndarray
    nobs : int
    ngroups : dict
    n_dropped : int
        Rows dropped for missing values.
    singular, converged : bool
    fit_log : FitLog
    """

    def __init__(self, *, model, est, singular, fit_log):
        self.model = model
        self.formula = model.spec.formula
        self.method = model.method
        self.theta = np.array(est.theta, dtype=float)
        self.theta.setflags(write=False)
        self.criterion = float(est.criterion)
        self.npar = model.p + model.cov.ntheta + 1
        self.loglik = -0.5 * self.criterion
        self.aic = self.criterion + 2.0 * self.npar
        self.bic = self.criterion + self.npar * np.log(model.n)
        # fixef, fixef_se and vcov are pandas objects built on first access (below): with
        # string labels they cost more to make than the rest of the result together
        self.sigma = float(est.sigma)
        self.nobs = int(model.n)
        self.n_dropped = int(model.frame.n_dropped)
        self.ngroups = {}
        for b in model.blocks:
            self.ngroups.setdefault(b.group, int(b.J))
        self.singular = bool(singular)
        self.converged = bool(fit_log.converged)
        self.fit_log = fit_log
        self.dropped_columns = list(model.dropped_columns)
        self._est = est
        self._groups = unique_group_names([b.group for b in model.blocks])

    @classmethod
    def from_model(cls, model, theta, *, singular: bool, fit_log, est=None) -> MixedModelResult:
        """Profile out beta and sigma at ``theta`` and build the result.

        ``est``: the :class:`~hlm.results.estimates.Estimates` at ``theta`` when the caller
        has already read them off (:func:`hlm.results.estimates.estimates_at`).
        """
        if est is None:
            est = estimates_at(model, np.asarray(theta, dtype=float))
        return cls(model=model, est=est, singular=singular, fit_log=fit_log)

    # ------------------------------------------------------------------ fixed effects
    # Built on first access from the estimates and cached in the instance (so they pickle
    # and copy with it, and assigning one replaces it, as a plain attribute would).
    @cached_property
    def fixef(self) -> pd.Series:
        """Fixed-effect estimates, indexed by the fixed-effect column names."""
        return pd.Series(self._est.beta, index=self.model.fixed_names, name="estimate")

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed-effect estimates, labelled by column name."""
        names = self.model.fixed_names
        return pd.DataFrame(self._est.vcov, index=names, columns=names)

    @cached_property
    def fixef_se(self) -> pd.Series:
        """Standard errors of the fixed effects: square roots of the diagonal of ``vcov``."""
        se = np.sqrt(np.diag(self._est.vcov))
        return pd.Series(se, index=self.model.fixed_names, name="se")

    # ------------------------------------------------------------------ tables
    def fixef_table(self, df="satterthwaite") -> pd.DataFrame:
        """Fixed effects: estimate, se, t, and the t test's df and p value.

        ``df`` chooses the denominator degrees of freedom: ``"satterthwaite"`` (default,
        as lmerTest), ``"kenward-roger"`` (as pbkrtest; se and t then use the adjusted
        covariance), ``"residual"`` (n - p) or ``"asymptotic"`` (z test); see
        :mod:`hlm.inference.wald`.
        """
        from hlm.inference.wald import fixef_table

        return fixef_table(self, df)

    def varcorr(self, se: bool = True) -> pd.DataFrame:
        """Variance components in the layout of lme4's ``as.data.frame(VarCorr(fit))``.

        Columns ``grp, var1, var2, vcov, sdcor``: one row per variance (var2 empty) and per
        covariance (sdcor is then the correlation) of each term in theta order, and the
        residual last; and ``se``, the standard error of ``vcov`` from the expected
        information at the estimate (NaN for a component held fixed with ``variance=`` or
        estimated on the boundary, a variance of 0 and its covariances).  See
        :attr:`varcomp_vcov`; ``se=False`` leaves the column out.
        """
        table = varcorr_table(self.model.blocks, self._groups, self._est.Sigma, self.sigma)
        if se:
            table["se"] = np.sqrt(np.diag(self.varcomp_vcov.to_numpy()))
        return table

    @cached_property
    def varcomp_vcov(self) -> pd.DataFrame:
        """Covariance matrix of the variance components (the ``vcov`` of ``varcorr()``).

        The inverse of the expected (Fisher) information of the REML or ML likelihood in the
        variances, covariances and residual variance, at the estimate; rows and columns
        are labelled ``(grp, var1, var2)`` as the rows of ``varcorr()``.  Components held
        fixed (``variance=``) or on the boundary are NaN.  See
        :mod:`hlm.engines.information`.
        """
        from hlm.engines.information import varcomp_covariance_of

        return varcomp_covariance_of(self)

    def ranef(self) -> dict:
        """Conditional modes (empirical Bayes estimates) of the random effects.

        Returns
        -------
        dict
            Grouping factor name -> DataFrame indexed by level, one column per random-effect
            column (terms on the same factor are side by side, as in lme4).
        """
        return ranef_tables(self.model.blocks, self._est.b)

    def ranef_var(self) -> dict:
        """Conditional variances of the random effects given the data and beta.

        Same layout as :meth:`ranef`: the variance of each conditional mode (lme4's
        ``condVar`` diagonal).  Full per-group covariance blocks are in ``ranef_cov()``.
        """
        return ranef_var_tables(self.model.blocks, self._est.b_var)

    def ranef_cov(self) -> list:
        """Per term, the conditional covariance blocks, ndarray (J_k, S_k, S_k)."""
        return [v.copy() for v in self._est.b_var]

    def coef(self) -> dict:
        """Per grouping factor, fixed effects plus that group's random effects."""
        return coef_table(self.fixef, self.ranef())

    # ------------------------------------------------------------------ per row
    def fitted(self) -> pd.Series:
        """Fitted values ``X beta + Z b`` for the rows used in the fit (a second pass).

        For a fit on a Dask dataframe, a lazy Dask series (see :mod:`hlm.stream.rows`).
        """
        if getattr(self.model.frame, "streamed", False):
            from hlm.stream.rows import streamed_series

            return streamed_series(self, "fitted")
        from hlm.results.rows import fitted_values

        return fitted_values(self)[0]

    def residuals(self) -> pd.Series:
        """Response minus fitted values, for the rows used in the fit."""
        if getattr(self.model.frame, "streamed", False):
            from hlm.stream.rows import streamed_series

            return streamed_series(self, "residual")
        from hlm.results.rows import fitted_values

        fit, y = fitted_values(self)
        return (y - fit).rename("residual")

    # ------------------------------------------------------------------ HLM-style output
    @cached_property
    def _hierarchy(self):
        """Per-group cross-products of the nested design (one more pass over the rows)."""
        if getattr(self.model.frame, "streamed", False):
            from hlm.stream.rows import rows_needed

            rows_needed("reliability, variance tests, robust standard errors and OLS by group")
        from hlm.results.nesting import build_hierarchy

        return build_hierarchy(self)

    def reliability(self, group: str | None = None) -> pd.DataFrame:
        """Reliability of each group's OLS estimate of each random coefficient.

        ``lambda_qj = tau_qq / (tau_qq + sigma^2 [(Z_j'Z_j)^{-1}]_qq)`` (Raudenbush & Bryk
        2002, eq. 3.42, per coefficient); ``.mean()`` is the average reliability HLM prints.
        One row per group of ``group`` (default: the finest grouping factor), one column per
        random coefficient; NaN for groups too small (or rank deficient) for their own fit.
        Nested designs only (:class:`hlm.errors.NestingError` otherwise).  See
        :func:`hlm.results.hlm_output.reliability`.
        """
        from hlm.results.hlm_output import reliability

        return reliability(self._hierarchy, group)

    def icc(self) -> pd.Series:
        """Intra-class correlation: each grouping level's share of the variance at x = 0.

        ``tau_00 / (tau_00 + sigma^2)`` for a random-intercept model; with random slopes,
        the intercept variances' shares (the variance at x = 0); one value per grouping
        level, finest first.  See :func:`hlm.results.hlm_output.icc`.
        """
        from hlm.results.hlm_output import icc

        return icc(self._hierarchy)

    def variance_tests(self) -> pd.DataFrame:
        """Raudenbush & Bryk's chi-square homogeneity test of each variance component.

        One row per (group, coefficient), columns ``chi2, df, p, n_groups_used``; see
        :func:`hlm.results.hlm_output.variance_tests`.
        """
        from hlm.results.hlm_output import variance_tests

        return variance_tests(self._hierarchy)

    def ols_by_group(self, group: str | None = None) -> pd.DataFrame:
        """Per-group OLS estimates beside the empirical Bayes estimates and the shrinkage.

        See :func:`hlm.results.hlm_output.ols_by_group`.
        """
        from hlm.results.hlm_output import ols_by_group

        return ols_by_group(self._hierarchy, group)

    def robust_vcov(self, kind: str = "CR2") -> pd.DataFrame:
        """Cluster-robust covariance of the fixed effects, clustered by the top grouping level.

        Parameters
        ----------
        kind : {"CR2", "CR1", "CR0"}
            CR2: Bell-McCaffrey bias-reduced (as R's ``clubSandwich::vcovCR(fit, type =
            "CR2")``); CR1: CR0 times ``J / (J - 1)``; CR0: Liang-Zeger.  Bread
            ``(X'V^{-1}X)^{-1}``, meat from the marginal residuals ``y - X beta``.  See
            :mod:`hlm.results.robust`.
        """
        from hlm.results.robust import robust_vcov

        return robust_vcov(self._hierarchy, kind)

    @cached_property
    def robust_se(self) -> pd.Series:
        """Cluster-robust standard errors of the fixed effects, CR2 (Bell-McCaffrey).

        Clustered by the highest grouping factor; the square roots of the diagonal of
        ``robust_vcov("CR2")``.  Computed on first access (one more pass over the rows).
        """
        vc = self.robust_vcov("CR2")
        return pd.Series(np.sqrt(np.diag(vc)), index=vc.index, name="robust_se")

    # ------------------------------------------------------------------ display
    def summary(self, style: str = "lme4") -> str:
        """A text summary.

        Parameters
        ----------
        style : {"lme4", "hlm"}
            ``"lme4"``: the layout of lme4's ``summary(fit)``.  ``"hlm"``: the layout of HLM 8
            (level equations, fixed effects with model-based and robust standard errors,
            variance components with chi-square tests and reliabilities; nested designs).
        """
        if style == "lme4":
            from hlm.results.summary import summary_text

            return summary_text(self)
        if style == "hlm":
            from hlm.results.hlm_summary import hlm_summary_text

            return hlm_summary_text(self)
        raise ValueError(f"style must be 'lme4' or 'hlm', got {style!r}")

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (
            f"<MixedModelResult {self.method} {self.formula!r}: criterion {self.criterion:.4f}, "
            f"nobs {self.nobs}>"
        )
