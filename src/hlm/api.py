"""The top-level verbs: ``hlm.fit``."""

from __future__ import annotations

from hlm.model import LinearMixedModel
from hlm.spec.formula import parse_formula


def fit(
    model,
    data,
    *,
    method: str = "REML",
    weights=None,
    offset=None,
    missing: str = "drop",
    **options,
):
    """Fit a linear mixed model by profiled REML (default) or ML.

    Parameters
    ----------
    model : str or hlm.Levels
        An lme4 formula, e.g. ``"MathAch ~ cses + (cses | School)"``, or a level-equation
        spec (any object with ``prepare(data) -> (formula, data)``); a spec without random
        effects is fitted by least squares and gives an :class:`hlm.results.ols.OLSResult`.
    data : pandas.DataFrame, polars.DataFrame, pyarrow.Table or dict of arrays
    method : {"REML", "ML"}
        Case-insensitive.
    weights : str or array-like, optional
        Prior weights (residual variance ``sigma^2 / w_i``), a column name or an array.
    offset : str or array-like, optional
        Known part of the linear predictor (column name or array), subtracted from the
        response before fitting and added back in fitted values.
    missing : {"drop", "raise"}
        Rows with a missing value in a used column are dropped and counted (default) or
        refused.
    **options
        Passed to the engine (``theta0``, ``maxeval``).

    Returns
    -------
    MixedModelResult (or OLSResult, see ``model``)
    """
    source = model
    if hasattr(model, "prepare"):
        # a spec object (hlm.Levels) becomes a formula and data once; without random
        # effects (random=[]) the model is an ordinary regression, fitted by least squares
        model, data = model.prepare(data)
        if not parse_formula(model).random:
            return _fit_ols(source, model, data, method, weights, offset, missing, options)
    m = LinearMixedModel.from_formula(
        model, data, method=method, weights=weights, offset=offset, missing=missing
    )
    m.source = source
    return m.fit(**options)


def _fit_ols(source, formula, data, method, weights, offset, missing, options):
    from hlm.results.ols import ols

    if options:
        raise TypeError(
            f"options {sorted(options)} apply to mixed models; this model has no random "
            "effects and is fitted by least squares"
        )
    res = ols(formula, data, method=method, weights=weights, offset=offset, missing=missing)
    res.source = source
    return res
