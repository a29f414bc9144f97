"""Choose and run an engine: ``hlm.fit(..., engine=..., variance=...)``."""

from __future__ import annotations

#: the engines ``hlm.fit`` accepts
ENGINES = ("profiled", "em", "fisher", "em+fisher")


def fit_engine(model, *, engine: str | None = None, variance=None, **options):
    """Fit ``model`` with the named engine, holding the ``variance=`` components fixed.

    Parameters
    ----------
    model : LinearMixedModel
    engine : {None, "profiled", "em", "fisher", "em+fisher"}
        None: "profiled", except that a ``variance=`` specification the profiled criterion
        cannot hold (a non-zero value, or the residual variance) is fitted by "fisher".
        Every engine fits nested and crossed designs.
    variance : optional
        Variance components held at known values; see :mod:`hlm.engines.known`.
    **options
        Passed to the engine: ``theta0``, ``maxeval`` (profiled); ``theta0``,
        ``accelerate``, ``maxiter``, ``tol`` (em); ``theta0``, ``maxiter``, ``tol``
        (fisher); ``theta0``, ``em_steps``, ``maxiter``, ``tol`` (em+fisher).
    """
    if engine is not None and engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(map(repr, ENGINES))}; got {engine!r}")
    if variance is not None:
        from hlm.engines.known import fit_known

        return fit_known(model, variance, engine=engine, **options)
    if engine in (None, "profiled"):
        return model.fit(**options)
    from hlm.engines import iterative

    run = {
        "em": iterative.fit_em,
        "fisher": iterative.fit_fisher,
        "em+fisher": iterative.fit_em_fisher,
    }[engine]
    return run(model, **options)
