"""The top-level verbs: ``hlm.fit``."""

from __future__ import annotations

from hlm.model import LinearMixedModel


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
    model : str
        An lme4 formula, e.g. ``"MathAch ~ cses + (cses | School)"``.
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
    MixedModelResult
    """
    m = LinearMixedModel.from_formula(
        model, data, method=method, weights=weights, offset=offset, missing=missing
    )
    return m.fit(**options)
