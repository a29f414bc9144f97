"""``hlm compare DATA MODEL1 MODEL2 [MODEL...]``: likelihood-ratio tests between models.

Each model is fitted as ``hlm fit`` would fit it (a formula, a level-equation spec, or a
formula prefixed ``ols:`` for a model without random effects), then compared by
:func:`hlm.anova` (ML refits when the fixed effects differ; the boundary-corrected
chi-bar-square null when variances are added) and set side by side by :func:`hlm.table`.
A model without random effects is the null of the test of the hierarchy itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from hlm.errors import HLMError


@dataclass(frozen=True)
class Comparison:
    """Fitted models, their likelihood-ratio table and their side-by-side table.

    Attributes
    ----------
    names : list of str
        Label of each model, in the order given on the command line.
    results : list
        The fits (``MixedModelResult`` or ``OLSResult``), in the same order, as fitted
        (not the ML refits the tests may use).
    anova : pandas.DataFrame
        :func:`hlm.anova` of the fits: rows in order of ``npar``; ``attrs["criterion"]``
        ("ML" or "REML") and ``attrs["notes"]``.
    table : hlm.report.model_table.ModelTable
        :func:`hlm.table` of the fits.
    left_out : str
        A note on the rows left out of every model so that all are fitted to the same
        rows (see :func:`common_rows`), or "".
    """

    names: list
    results: list
    anova: pd.DataFrame
    table: object
    left_out: str = ""

    @property
    def criterion(self) -> str:
        """The criterion the tests compare: ``"ML"`` or ``"REML"``."""
        return self.anova.attrs["criterion"]

    @property
    def notes(self) -> list[str]:
        """What the tests assumed or did (ML refits, null distributions), then each fit's
        warnings (boundary fits, convergence), prefixed by the model's name."""
        out = [self.left_out] if self.left_out else []
        out += list(self.anova.attrs.get("notes", []))
        if any("+" in str(v) for v in self.anova["null"]):
            out.append(
                "a null such as '0.5 chi2(0) + 0.5 chi2(1)' is the boundary-corrected "
                "(chi-bar-square) distribution of a test that adds a variance, which cannot "
                "be negative"
            )
        for name, res in zip(self.names, self.results, strict=True):
            log = getattr(res, "fit_log", None)
            for w in getattr(log, "warnings", ()):
                out.append(f"{name}: {w}")
        return out


def model_names(names: str | None, count: int) -> list[str]:
    """``--names a,b,c`` as a list, or ``M1, M2, ...``; one distinct name per model."""
    if names is None:
        return [f"M{i + 1}" for i in range(count)]
    out = [n.strip() for n in names.split(",")]
    if len(out) != count or len(set(out)) != count or not all(out):
        raise HLMError(
            f"--names {names!r}: give {count} distinct comma-separated names, one per model"
        )
    return out


def used_columns(model, data) -> tuple[list[str], pd.DataFrame]:
    """The columns a model's formula names, and the frame they are in.

    For a level-equation spec the frame is its prepared data (centred columns derived),
    with the rows of ``data``.  Every name in the formula text that is a column counts,
    so columns inside transforms (``np.log(x)``, ``scale(x)``) are found too.
    """
    from hlm.spec.tokens import tokenize

    formula, frame = model.prepare(data) if hasattr(model, "prepare") else (str(model), data)
    have = {str(c) for c in frame.columns}
    names = []
    for tok in tokenize(formula):
        if tok.kind == "atom":
            names.append(tok.text)
        elif tok.kind == "str":  # `a b` or Q("a b")
            names.append(tok.text[1:-1])
    return [c for c in dict.fromkeys(names) if c in have], frame


def common_rows(data: pd.DataFrame, models: list, names: list[str], weights=None):
    """``data`` without the rows some model would drop for a missing value, and a note.

    Each model drops the rows with a missing value in a column it uses; models with
    different columns would then be fitted to different rows, and their likelihoods could
    not be compared.  The rows any model would drop are left out of all of them (the
    usual complete-case analysis, as one would do by hand in R before ``anova``).

    Returns
    -------
    (pandas.DataFrame, str)
        The rows to fit every model to, and a note saying how many were left out because
        of which columns ("" when every model would use the same rows anyway).
    """
    from hlm.cli import _one_line

    keeps, columns = [], {}
    for name, model in zip(names, models, strict=True):
        try:
            cols, frame = used_columns(model, data)
        except (HLMError, ValueError, KeyError) as exc:
            raise HLMError(f"{name}: {_one_line(exc)}") from exc
        # columns of the data file: those named, the sources of centred columns, weights
        raw = [c for c in cols if c in data.columns]
        if hasattr(model, "prepare"):  # hlm.Levels: centred columns come from these
            raw += [c for c in model.center if c in data.columns]
        if weights is not None and weights in data.columns:
            raw.append(weights)
        raw = list(dict.fromkeys(raw))
        drop = frame[cols].isna().any(axis=1).reindex(data.index, fill_value=False)
        keeps.append(~(drop | data[raw].isna().any(axis=1)))
        for c in raw:
            count = int(data[c].isna().sum())
            if count:
                columns[c] = count
    keep = pd.concat(keeps, axis=1).all(axis=1)
    if all(k.equals(keep) for k in keeps):
        return data, ""
    left = int((~keep).sum())
    what = ", ".join(f"{c} ({n} missing)" for c, n in columns.items())
    note = (
        f"left out {left} of {len(data)} rows with a missing value in a column some model "
        f"uses: {what}; every model is fitted to the same {len(data) - left} rows"
    )
    return data.loc[keep.to_numpy()], note


def compare_models(
    data,
    models: list,
    *,
    names: list[str],
    method: str = "REML",
    weights=None,
    refit: bool | None = None,
    progress=None,
    **options,
) -> Comparison:
    """Fit each model to the same rows and compare them.

    Rows with a missing value in a column any model uses are left out of every model
    (:func:`common_rows`); each model is fitted by
    :func:`hlm.cli.fitting.fit_with_progress`.

    Parameters
    ----------
    data : pandas.DataFrame
    models : list
        What :func:`hlm.cli.fitting.read_model` returns for each MODEL argument.
    names : list of str
        One label per model.
    method : {"REML", "ML"}
        How each model is fitted; :func:`hlm.anova` refits REML fits by ML when their
        fixed effects differ.
    weights : str, optional
        Column of prior weights, for every model.
    refit : bool or None
        Passed to :func:`hlm.anova` (True: always compare ML fits, as lme4).
    progress : bool or None
        Progress bars (None: when standard error is a terminal).
    **options
        ``engine=...`` for the mixed models.

    Raises
    ------
    HLMError
        A model that cannot be fitted (the message starts with its name), or models that
        cannot be compared (different responses or rows).
    """
    import hlm
    from hlm.cli import _one_line
    from hlm.cli.fitting import fit_with_progress

    if len(models) < 2:
        raise HLMError("hlm compare needs two or more models")
    data, left_out = common_rows(data, models, names, weights)
    results = []
    for name, model in zip(names, models, strict=True):
        try:
            res = fit_with_progress(
                model,
                data,
                method=method,
                weights=weights,
                progress=progress,
                mixed_only=True,
                **options,
            )
        except (HLMError, ValueError, KeyError) as exc:
            raise HLMError(f"{name}: {_one_line(exc)}") from exc
        results.append(res)
    try:
        table = hlm.anova(*results, names=names, refit=refit)
    except ValueError as exc:
        raise HLMError(f"cannot compare the models: {_one_line(exc)}") from exc
    return Comparison(names, results, table, hlm.table(*results, names=names), left_out)


def cmd_compare(args) -> int:
    """``hlm compare DATA MODEL1 MODEL2 [MODEL...]``: print (or write) the comparison."""
    from hlm.cli.commands import _emit
    from hlm.cli.compare_format import FORMATTERS
    from hlm.cli.fitting import engine_options, read_model
    from hlm.io.readers import read_data

    if len(args.models) < 2:
        raise HLMError(f"hlm compare needs two or more models; got {len(args.models)}")
    names = model_names(args.names, len(args.models))
    models = []
    for name, text in zip(names, args.models, strict=True):
        try:
            models.append(read_model(text, None))
        except HLMError as exc:
            raise HLMError(f"{name}: {exc}") from exc
    options = engine_options(args.engine)
    data = read_data(args.data)
    comparison = compare_models(
        data,
        models,
        names=names,
        method=args.method.upper(),
        weights=args.weights,
        refit=True if args.refit else None,
        progress=False if args.quiet else None,
        **options,
    )
    _emit(FORMATTERS[args.format](comparison), args.output)
    return 0
