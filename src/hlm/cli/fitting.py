"""The MODEL argument of the command line, and a fit that shows its progress."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from hlm.errors import HLMError

_SPEC_START = re.compile(
    r"^\s*(#[^\n]*\n\s*)*(level1|level2|group|random|level3|group3|random3|center)\s*:"
)


def read_model(model: str | None, levels: str | None):
    """An lme4 formula (str) or an :class:`hlm.Levels` from the command line.

    ``model`` is a formula, a level-equation spec in its text form
    (``"level1: y ~ x; group: g"``), or the name of a file holding either.  ``levels`` is the
    older ``--levels`` option (a spec or a file).
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
    return text.strip()


def engine_options(engine: str | None) -> dict:
    """``{"engine": engine}`` when ``hlm.fit`` takes an engine; otherwise only "profiled"."""
    import hlm

    if engine is None:
        return {}
    if "engine" in inspect.signature(hlm.fit).parameters:
        return {"engine": engine}
    if engine.lower() != "profiled":
        raise HLMError(f"engine {engine!r} is not available; this version has only 'profiled'")
    return {}


def fit_with_progress(model, data, *, method="REML", weights=None, progress=None, **options):
    """``hlm.fit(model, data, ...)`` with a progress bar counting criterion evaluations.

    The bar (on standard error, only when it is a terminal and the fit takes more than two
    seconds; see :mod:`hlm.progress`) shows the evaluations of the profiled criterion and
    its current value.  Level-equation specs without random effects go to ``hlm.fit``
    (least squares, no optimisation).
    """
    import hlm
    from hlm.model import LinearMixedModel
    from hlm.progress import progress_bar
    from hlm.spec.formula import parse_formula

    source = model
    if hasattr(model, "prepare"):
        formula, prepared = model.prepare(data)
        if not parse_formula(formula).random:
            return hlm.fit(model, data, method=method, weights=weights, **options)
    else:
        formula, prepared = model, data
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
            return m.fit(**options)
        finally:
            for name in names:
                delattr(m, name)  # the result keeps the model: give it its own methods


def _counted(func, bar):
    def counted(theta):
        value = func(theta)
        bar.update(1)
        crit = value[0] if isinstance(value, tuple) else value
        bar.set_postfix(criterion=f"{float(crit):.4f}", refresh=False)
        return value

    return counted
