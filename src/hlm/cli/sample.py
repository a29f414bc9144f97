"""``hlm sample DATA MODEL``: the Bayesian fit of :func:`hlm.sample` from the command line.

The model is read as ``hlm fit`` reads it (an lme4 formula, a level-equation spec, or a
file holding either) but must have random effects; the sampler runs with its default
priors (docs/bayes.md).  Everything that could make the run fail after minutes of
sampling (plot kinds, output folders, counts, the engine, the model's columns) is checked
first, so that bad input exits at once with a one-line reason.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from hlm.errors import HLMError

#: ``--plot KIND=FILE`` -> the PosteriorResult method that draws it
PLOT_KINDS = {"trace": "plot_trace", "density": "plot_density"}

#: ``--engine`` choices of :func:`hlm.sample`
ENGINES = ["auto", "numba", "numpy"]


@dataclass
class SampleRun:
    """A posterior and what the command line adds to it.

    Attributes
    ----------
    result : hlm.PosteriorResult
    warnings : list of str
        Every warning :func:`hlm.sample` raised (the convergence warning included), in order,
        each once.
    other_warnings : list of str
        Those of ``warnings`` that are not the convergence warning, whose content the
        summary already shows (e.g. rows dropped for missing values).
    """

    result: object
    warnings: list = field(default_factory=list)
    other_warnings: list = field(default_factory=list)


def plot_requests(items: list[str]) -> list[tuple[str, str]]:
    """``KIND=FILE`` pairs for the posterior plots, checked before any sampling.

    Raises
    ------
    HLMError
        A malformed item, an unknown kind, or a file in a folder that does not exist.
    """
    out = []
    for item in items:
        kind, sep, path = item.partition("=")
        if not sep or not path:
            raise HLMError(f"--plot {item!r}: write KIND=FILE.png, e.g. trace=trace.png")
        if kind not in PLOT_KINDS:
            raise HLMError(
                f"--plot {item!r}: unknown plot {kind!r}; hlm sample draws "
                f"{' and '.join(PLOT_KINDS)}"
            )
        _check_folder(path, "--plot")
        out.append((kind, path))
    return out


def _check_folder(path: str, option: str) -> None:
    folder = Path(path).parent
    if not folder.is_dir():
        raise HLMError(f"{option} {path}: the folder {str(folder)!r} does not exist")


def _count(value: int, option: str, least: int) -> int:
    if value < least:
        raise HLMError(f"{option} {value}: give an integer >= {least}")
    return value


def check_mixed(model, data) -> None:
    """Raise a command-line worded error when ``model`` has no random-effects term."""
    from hlm.cli.fitting import LeastSquares
    from hlm.spec.formula import parse_formula

    if isinstance(model, LeastSquares):
        raise HLMError(
            f"'ols: {model}' has no random effects; hlm sample fits mixed models (use "
            "'hlm fit' for least squares, or add a term such as '(1 | group)')"
        )
    formula = model.prepare(data)[0] if hasattr(model, "prepare") else model
    if not parse_formula(formula).random:
        raise HLMError(
            f"the model {formula!r} has no random-effects term such as '(1 | group)'; "
            "hlm sample fits mixed models: add one (use 'hlm fit' with 'ols: ...' for a "
            "model without random effects)"
        )


def run_sample(model, data, *, quiet: bool = False, **options) -> SampleRun:
    """:func:`hlm.sample` with its warnings collected rather than printed.

    ``options`` are passed on (``chains``, ``draws``, ``warmup``, ``seed``, ``engine``,
    ``cores``, ``weights``).  The progress bar is :func:`hlm.sample`'s own: on standard error
    when it is a terminal, never with ``quiet``.
    """
    import hlm

    check_mixed(model, data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = hlm.sample(model, data, progress=not quiet, **options)
        except NotImplementedError as exc:  # e.g. --engine numba on a model with two terms
            text = str(exc).replace("engine='numpy'", "--engine numpy").replace("'auto'", "auto")
            raise HLMError(text) from exc
    from hlm.errors import ConvergenceWarning

    def text(w):
        # the library's advice names its keywords; the command line's names its options
        msg = " ".join(str(w.message).split())
        return msg.replace("(draws=..., warmup=...)", "(--draws, --warmup)")

    messages = list(dict.fromkeys(text(w) for w in caught))
    other = list(
        dict.fromkeys(text(w) for w in caught if not issubclass(w.category, ConvergenceWarning))
    )
    return SampleRun(res, messages, other)


def cmd_sample(args) -> int:
    """``hlm sample DATA MODEL``: print (or write) the posterior summary; save plots."""
    from hlm.cli.commands import _emit
    from hlm.cli.fitting import read_model
    from hlm.cli.sample_format import FORMATTERS
    from hlm.io.readers import read_data

    plots = plot_requests(args.plot)
    if args.output:
        _check_folder(args.output, "-o")
    options = {
        "chains": _count(args.chains, "--chains", 1),
        "draws": _count(args.draws, "--draws", 4),
        "warmup": _count(args.warmup, "--warmup", 0),
        "seed": None if args.seed is None else _count(args.seed, "--seed", 0),
        "engine": args.engine,
        "weights": args.weights,
    }
    if args.cores is not None:
        options["cores"] = _count(args.cores, "--cores", 1)
    model = read_model(args.model, None)
    data = read_data(args.data)
    run = run_sample(model, data, quiet=args.quiet, **options)
    _emit(FORMATTERS[args.format](run), args.output)
    for kind, path in plots:
        fig = getattr(run.result, PLOT_KINDS[kind])(path=path)
        _close(fig)
    return 0


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)
