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
    engine: str | None = None,
    variance=None,
    memory=None,
    batch_rows: int | None = None,
    progress: bool | None = None,
    **options,
):
    """Fit a linear mixed model by REML (default) or ML.

    Parameters
    ----------
    model : str or hlm.Levels
        An lme4 formula, e.g. ``"MathAch ~ cses + (cses | School)"``, or a level-equation
        spec (any object with ``prepare(data) -> (formula, data)``); a spec without random
        effects is fitted by least squares and gives an :class:`hlm.results.ols.OLSResult`.
    data : data frame, files, or Dask dataframe
        In memory: a pandas or polars DataFrame, a pyarrow Table or a dict of arrays.
        Streamed in batches (never all in memory): a path, glob, directory or list of
        Parquet (``*.parquet``) or CSV (``*.csv``) files, or a pyarrow Dataset.
        Distributed: a Dask dataframe (statistics per partition on the workers).  See
        docs/streaming.md.
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
    engine : {"profiled", "em", "fisher", "em+fisher"}, optional
        The estimation method (docs/engines.md): ``"profiled"`` (default) minimises the
        profiled criterion (quasi-Newton with its analytic gradient where that is faster,
        BOBYQA otherwise; ``optimizer="lbfgsb" | "bobyqa"`` chooses); ``"em"`` is EM
        (SQUAREM-accelerated);
        ``"fisher"`` is Fisher scoring with step-halving; ``"em+fisher"`` runs EM, then
        Fisher scoring (as HLM 8).  All reach the same optimum.
    variance : DataFrame, dict, optional
        Variance components held at known values: a table in the layout of
        ``varcorr()`` (columns ``grp, var1, var2, vcov``), a dict keyed by
        ``(grp, var1[, var2])`` and ``"Residual"``, or ``{"theta": ..., "sigma": ...}``.
        All given: GLS at those values; some given: the rest are estimated (a variance
        fixed at 0 removes that random effect).  See :mod:`hlm.engines.known`.
    memory : str or int, optional
        For streamed and Dask data: the memory budget (default ``"1GB"``), which sets the
        rows per batch and bounds the dense block of crossed factors.
    batch_rows : int, optional
        For streamed data: rows per batch (overrides ``memory``'s choice).
    progress : bool, optional
        For streamed and Dask data: a progress bar (default: on a terminal only).
    **options
        Passed to the engine (``theta0``, ``maxeval``; ``maxiter``, ``tol`` for the
        iterative engines).

    Returns
    -------
    MixedModelResult (or OLSResult, see ``model``)
    """
    from hlm.stream.sources import is_streamed

    if is_streamed(data):
        from hlm.stream.build import build_streamed_model

        m = build_streamed_model(
            model, data, method=method, weights=weights, offset=offset, missing=missing,
            memory=memory, batch_rows=batch_rows, progress=progress,
        )
        return _fit_model(m, engine, variance, options)
    source = model
    if hasattr(model, "prepare"):
        # a spec object (hlm.Levels) becomes a formula and data once; without random
        # effects (random=[]) the model is an ordinary regression, fitted by least squares
        model, data = model.prepare(data)
        if not parse_formula(model).random:
            if engine not in (None, "profiled") or variance is not None:
                options = {**options, "engine": engine, "variance": variance}
            return _fit_ols(source, model, data, method, weights, offset, missing, options)
    m = LinearMixedModel.from_formula(
        model, data, method=method, weights=weights, offset=offset, missing=missing
    )
    m.source = source
    return _fit_model(m, engine, variance, options)


def _fit_model(m, engine, variance, options):
    """Fit a built model with the engine asked for (the profiled one by default)."""
    if engine is None and variance is None:
        return m.fit(**options)
    from hlm.engines.select import fit_engine

    return fit_engine(m, engine=engine, variance=variance, **options)


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
