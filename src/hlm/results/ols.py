"""Ordinary least squares for models without random effects: ``hlm.ols`` and OLSResult.

A level-equation model with ``random=[]`` (fixed coefficients, cross-level interactions
included) is a linear model ``y = X beta + eps``, ``eps ~ N(0, sigma^2 W^-1)``. It is fitted
by a QR decomposition of ``W^(1/2) X`` and reported with lme4's conventions, so that its
criterion can be compared with those of mixed models fitted to the same data:

- ML deviance ``n (1 + log(2 pi RSS / n)) - sum log w``;
- REML criterion ``(n - p) (1 + log(2 pi RSS / (n - p))) + log det(X'WX) - sum log w``,
  which is ``-2 * logLik(lm(...), REML = TRUE)`` in R;
- ``sigma^2 = RSS / (n - p)`` (REML, as ``lm``) or ``RSS / n`` (ML); standard errors from
  ``sigma^2 (X'WX)^-1``; ``npar = p + 1``; ``aic = criterion + 2 npar``,
  ``bic = criterion + npar log n``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from hlm.errors import DataError, FormulaError, RankDeficiencyWarning


def ols(formula, data, *, method: str = "REML", weights=None, offset=None, missing="drop"):
    """Fit a linear model without random effects by least squares.

    Parameters
    ----------
    formula : str or spec object
        ``"y ~ x + w + x:w"`` (formulaic syntax, no ``( | )`` terms), or an object with a
        ``prepare(data) -> (formula, data)`` method such as ``hlm.Levels(..., random=[])``.
    data : pandas.DataFrame, polars.DataFrame, pyarrow.Table or dict of arrays
    method : {"REML", "ML"}
        Which criterion (and which estimate of sigma) to report; the coefficients are the
        same.
    weights : str or array-like, optional
        Prior weights: the residual variance of row i is ``sigma^2 / w_i``.
    offset : str or array-like, optional
        Known part of the linear predictor, subtracted from the response.
    missing : {"drop", "raise"}
        Rows with a missing value in a used column are dropped and counted, or refused.

    Returns
    -------
    OLSResult
    """
    from hlm.design.crossprod import shift_and_scale
    from hlm.design.fixed import FixedDesign, required_variables
    from hlm.design.rank import independent_columns
    from hlm.frame import prepare_frame
    from hlm.model import (
        _OFFSET,
        _WEIGHTS,
        _attach_column,
        _check_method,
        _check_weights,
        _named_columns,
    )
    from hlm.spec.formula import parse_formula

    method = _check_method(method)
    source = formula
    if hasattr(formula, "prepare"):
        formula, data = formula.prepare(data)
    spec = parse_formula(formula)
    if spec.random:
        raise FormulaError(
            f"formula {formula!r} has random-effects terms; fit it with hlm.fit, or drop "
            "the terms for an ordinary regression"
        )
    columns = list(required_variables(f"{spec.response} ~ {spec.fixed}", "the model"))
    columns = list(dict.fromkeys(columns + _named_columns(spec, data, columns)))
    data, columns = _attach_column(data, weights, _WEIGHTS, columns, "weights")
    data, columns = _attach_column(data, offset, _OFFSET, columns, "offset")
    frame = prepare_frame(data, columns, missing=missing)
    df = frame.data
    design, Xy = FixedDesign.from_first_chunk(spec.response, spec.fixed, df)
    w = _check_weights(df[_WEIGHTS].to_numpy(dtype=float)) if weights is not None else None
    if offset is not None:
        Xy[:, -1] -= df[_OFFSET].to_numpy(dtype=float)
    # aliased columns are found as the engine finds them: on centred and scaled columns
    icol = design.names.index("(Intercept)") if design.has_intercept else None
    shift, scale = shift_and_scale(Xy, w, icol)
    S = (Xy[:, :-1] - shift[:-1]) / scale[:-1]
    if w is not None:
        S = S * np.sqrt(w)[:, None]
    keep, dropped = independent_columns(S.T @ S, design.names)
    if dropped:
        warnings.warn(
            "fixed-effect column(s) "
            + ", ".join(repr(d) for d in dropped)
            + " are linear combinations of earlier columns and were dropped (rank-deficient X)",
            RankDeficiencyWarning,
            stacklevel=2,
        )
    X, y = Xy[:, keep], Xy[:, -1]
    sum_log_w = 0.0
    if w is not None:
        sw = np.sqrt(w)
        X, y = X * sw[:, None], y * sw
        sum_log_w = float(np.log(w).sum())
    names = [design.names[j] for j in keep]
    res = OLSResult(
        X,
        y,
        names,
        method=method,
        formula=spec.formula,
        source=source,
        sum_log_w=sum_log_w,
        n_dropped=frame.n_dropped,
        dropped_columns=dropped,
    )
    # for prediction on new data: the fitted coding of the fixed part
    res._design, res._keep = design, list(keep)
    res._has_offset = offset is not None
    return res


class OLSResult:
    """A fitted linear model without random effects (see :func:`hlm.ols`).

    Attributes
    ----------
    formula, method : str
    source : str or spec object
        What was passed as the model (e.g. the :class:`hlm.Levels` spec).
    fixef, fixef_se : pandas.Series
    vcov : pandas.DataFrame
    sigma : float
        Residual SD: ``sqrt(RSS / (n - p))`` for REML, ``sqrt(RSS / n)`` for ML.
    criterion : float
        REML criterion or ML deviance (-2 log-likelihood), as for mixed models.
    reml_criterion, deviance : float
        Both criteria, whatever the method.
    loglik, aic, bic : float
    nobs, npar, df_resid, n_dropped : int
    dropped_columns : list of str
    """

    def __init__(
        self, X, y, names, *, method, formula, source, sum_log_w, n_dropped, dropped_columns
    ):
        n, p = X.shape
        if n <= p:
            raise DataError(
                f"the model has {p} coefficients for {n} rows; least squares needs more rows"
            )
        Q, R = np.linalg.qr(X)
        beta = np.linalg.solve(R, Q.T @ y)
        rss = float(np.sum((y - X @ beta) ** 2))
        logdet = 2.0 * float(np.log(np.abs(np.diag(R))).sum())
        self.method = method
        self.formula = formula
        self.source = source
        self.nobs, self.df_resid = int(n), int(n - p)
        self.npar = p + 1
        self.n_dropped = int(n_dropped)
        self.dropped_columns = list(dropped_columns)
        self.rss = rss
        self.deviance = n * (1.0 + np.log(2.0 * np.pi * rss / n)) - sum_log_w
        self.reml_criterion = (n - p) * (1.0 + np.log(2.0 * np.pi * rss / (n - p))) + logdet
        self.reml_criterion -= sum_log_w
        reml = method == "REML"
        self.criterion = float(self.reml_criterion if reml else self.deviance)
        self.loglik = -0.5 * self.criterion
        self.aic = self.criterion + 2.0 * self.npar
        self.bic = self.criterion + self.npar * np.log(n)
        k = self.npar
        self.aicc = self.aic + 2.0 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else np.inf
        self.sigma = float(np.sqrt(rss / (n - p if reml else n)))
        Rinv = np.linalg.solve(R, np.eye(p))
        vcov = self.sigma**2 * (Rinv @ Rinv.T)
        self.fixef = pd.Series(beta, index=names, name="estimate")
        self.vcov = pd.DataFrame(vcov, index=names, columns=names)
        self.fixef_se = pd.Series(np.sqrt(np.diag(vcov)), index=names, name="se")

    def fixef_table(self, df="residual") -> pd.DataFrame:
        """Coefficients: estimate, se, t, and the t test's df (``n - p``) and p value.

        The t tests are exact for least squares (``df="asymptotic"`` gives z tests).  With
        ``method="ML"`` the standard errors use the ML estimate of sigma, as the fit does.
        """
        from hlm.inference.wald import fixef_table

        return fixef_table(self, df)

    def predict(self, newdata, *, offset=None) -> pd.Series:
        """Predictions ``x' beta`` for new data (the fitted coding of categorical columns).

        Rows with a missing value in a used column give NaN; a model fitted with an offset
        needs ``offset=`` (an array, one value per row).
        """
        from hlm.frame import check_columns, to_pandas
        from hlm.inference.newdata import build_fixed, fixed_columns
        from hlm.spec.formula import parse_formula

        design = getattr(self, "_design", None)
        if design is None:
            raise ValueError("this result does not hold its design; refit it with hlm.ols")
        needed = fixed_columns(parse_formula(self.formula).fixed)
        check_columns(needed, newdata, "the model")
        df = to_pandas(newdata, needed)
        ok = np.ones(len(df), dtype=bool)
        for c in needed:
            ok &= ~df[c].isna().to_numpy()
        X = build_fixed(design._rhs_spec, self._keep, df.loc[ok])
        fit = np.full(len(df), np.nan)
        fit[ok] = X @ self.fixef.to_numpy()
        if self._has_offset:
            if offset is None:
                raise ValueError("the model was fitted with an offset: pass offset=")
            fit = fit + np.asarray(offset, dtype=float).reshape(-1)
        index = newdata.index if isinstance(newdata, pd.DataFrame) else None
        return pd.Series(fit, index=index, name="predicted")

    def summary(self) -> str:
        """A short text summary (coefficients, sigma, criteria)."""
        title = "REML criterion" if self.method == "REML" else "ML (deviance)"
        lines = [
            "Linear model fit by least squares (no random effects)",
            f"Formula: {self.formula}",
            "",
            pd.DataFrame(
                {
                    "AIC": [self.aic],
                    "BIC": [self.bic],
                    "logLik": [self.loglik],
                    title: [self.criterion],
                }
            ).to_string(index=False, float_format=lambda v: f"{v:.4f}"),
            "",
            f"Residual standard deviation: {self.sigma:.4f} on {self.df_resid} degrees of "
            "freedom" + (" (ML estimate)" if self.method == "ML" else ""),
            f"Number of obs: {self.nobs}",
        ]
        if self.n_dropped:
            lines.append(f"({self.n_dropped} rows with missing values were dropped)")
        ft = self.fixef_table().rename(
            columns={"estimate": "Estimate", "se": "Std. Error", "t": "t value"}
        )
        lines += ["", "Coefficients:", ft.to_string(float_format=lambda v: f"{v:.4f}")]
        if self.dropped_columns:
            lines += ["", "Note: dropped aliased columns: " + ", ".join(self.dropped_columns)]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (
            f"<OLSResult {self.method} {self.formula!r}: criterion {self.criterion:.4f}, "
            f"nobs {self.nobs}>"
        )
