"""The MODEL argument of the command line, and a fit that shows its progress."""

from __future__ import annotations

import re
from pathlib import Path

from hlm.errors import HLMError

_SPEC_START = re.compile(
    r"^\s*(#[^\n]*\n\s*)*(level1|level2|group|random|level3|group3|random3|center)\s*:"
)


class LeastSquares(str):
    """A formula the command line was told to fit without random effects (``ols: y ~ x``).

    A ``str`` subclass so that it can be shown and compared as the formula it holds.
    """

    __slots__ = ()


#: the prefix that asks for a least-squares fit of a formula without random effects
OLS_PREFIX = "ols:"


def read_model(model: str | None, levels: str | None):
    """An lme4 formula (str), an :class:`hlm.Levels`, or a :class:`LeastSquares` formula.

    ``model`` is a formula, a level-equation spec in its text form
    (``"level1: y ~ x; group: g"``), a formula prefixed ``ols:`` (no random effects, fitted by
    least squares), or the name of a file holding any of these.  ``levels`` is the older
    ``--levels`` option (a spec or a file).
    """
    import hlm

    if (model is None) == (levels is None):
        raise HLMError("give the model once: a formula, a level-equation spec, or a file")
    text = levels if levels is not None else model
    path = Path(text)
    if "\n" not in text and len(text) < 4096 and path.is_file():
        text = path.read_text(encoding="utf-8")
    if levels is not None or _SPEC_START.match(text):
        return hlm.Levels.from_text(text)
    body = _strip_comments(text)
    if body.lower().startswith(OLS_PREFIX):
        formula = body[len(OLS_PREFIX) :].strip()
        if "|" in formula:
            raise HLMError(
                f"'ols: {formula}' has a random-effects term; 'ols:' is for models without "
                "random effects (drop the prefix to fit a mixed model)"
            )
        return LeastSquares(formula)
    return body


def _strip_comments(text: str) -> str:
    """The formula in ``text``: ``#`` comment lines dropped, lines joined."""
    lines = [ln.strip() for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    return " ".join(ln for ln in lines if ln)


def engine_options(engine: str | None) -> dict:
    """``{"engine": engine}`` for ``hlm.fit``, the name checked first."""
    from hlm.engines.select import ENGINES

    if engine is None:
        return {}
    if engine not in ENGINES:
        raise HLMError(f"--engine {engine!r}: choose from {', '.join(ENGINES)}")
    return {"engine": engine}


def fit_with_progress(
    model, data, *, method="REML", weights=None, progress=None, mixed_only=False, **options
):
    """``hlm.fit(model, data, ...)`` with a progress bar counting criterion evaluations.

    The bar (on standard error, only when it is a terminal and the fit takes more than two
    seconds; see :mod:`hlm.progress`) shows the evaluations of the profiled criterion and
    its current value (the EM and Fisher-scoring engines evaluate it only at the end, so
    their bar shows the elapsed time).  ``options`` may name an ``engine``
    (:func:`engine_options`).  A :class:`LeastSquares` formula goes to :func:`hlm.ols` and a
    level-equation spec without random effects to ``hlm.fit`` (least squares, no
    optimisation; an engine other than "profiled" is then an error, or ignored when
    ``mixed_only`` says the options are meant for the mixed models among several).
    """
    import hlm
    from hlm.engines.select import fit_engine
    from hlm.model import LinearMixedModel
    from hlm.progress import progress_bar
    from hlm.spec.formula import parse_formula

    source = model
    check = {} if mixed_only else options  # options a least-squares fit would ignore
    if isinstance(model, LeastSquares):
        _no_engine(check, str(model))
        return hlm.ols(str(model), data, method=method, weights=weights)
    if hasattr(model, "prepare"):
        formula, prepared = model.prepare(data)
        if not parse_formula(formula).random:
            _no_engine(check, formula)
            return hlm.fit(model, data, method=method, weights=weights)
    else:
        formula, prepared = model, data
        if not parse_formula(formula).random:
            raise HLMError(
                f"the formula {formula!r} has no random-effects term such as '(1 | group)'; "
                f"add one, or write 'ols: {formula}' to fit it by least squares"
            )
    with progress_bar(desc="building cross-products", unit="pass", enabled=progress) as bar:
        m = LinearMixedModel.from_formula(formula, prepared, method=method, weights=weights)
        bar.update(1)
    m.source = source
    # the engines call model.objective (and model.objective_and_gradient on the gradient
    # path); instance attributes that count the calls shadow them during the fit
    names = [n for n in ("objective", "objective_and_gradient") if hasattr(m, n)]
    with progress_bar(desc="fitting", unit="eval", enabled=progress) as bar:
        for name in names:
            setattr(m, name, _counted(getattr(m, name), bar))
        try:
            return fit_engine(m, **options)
        finally:
            for name in names:
                delattr(m, name)  # the result keeps the model: give it its own methods


def _no_engine(options: dict, formula: str) -> None:
    engine = options.get("engine")
    if engine not in (None, "profiled"):
        raise HLMError(
            f"--engine {engine}: the model {formula!r} has no random effects and is fitted "
            "by least squares; leave out --engine"
        )


def _counted(func, bar):
    def counted(theta):
        value = func(theta)
        bar.update(1)
        crit = value[0] if isinstance(value, tuple) else value
        bar.set_postfix(criterion=f"{float(crit):.4f}", refresh=False)
        return value

    return counted
