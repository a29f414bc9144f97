"""The argument parser of the ``hlm`` command."""

from __future__ import annotations

import argparse

METHODS = ["REML", "ML", "reml", "ml"]
FORMATS = ["text", "json", "markdown", "html"]


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="data file: .csv, .tsv, .parquet, .dta (Stata), .sav (SPSS)")
    p.add_argument(
        "model",
        nargs="?",
        help="an lme4 formula ('y ~ x + (x | g)'), a level-equation spec in text form "
        "('level1: y ~ x; level2: (Intercept) ~ w; group: g'), or a file holding either",
    )
    p.add_argument("--levels", help=argparse.SUPPRESS)  # older spelling of a spec argument
    p.add_argument("--method", default="REML", choices=METHODS, help="REML (default) or ML")
    p.add_argument("--engine", help="fitting engine: profiled (default), em, fisher or em+fisher")
    p.add_argument("--weights", help="column of prior weights (residual variance sigma^2 / w)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The parser; each sub-command sets ``run`` to its function."""
    from hlm.cli import commands, compare

    parser = argparse.ArgumentParser(
        prog="hlm",
        description="Hierarchical linear models (linear mixed models): fit, compare, "
        "describe, report.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = sub.add_parser("fit", help="fit a model to a data file and print the results")
    _model_args(fit)
    fit.add_argument("--format", default="text", choices=FORMATS, help="output format")
    fit.add_argument("--style", default="lme4", choices=["lme4", "hlm"], help="text layout")
    fit.add_argument("-o", "--output", help="write the output to this file")
    fit.add_argument(
        "--plot",
        action="append",
        default=[],
        metavar="KIND=FILE.png",
        help="save a plot (caterpillar, shrinkage, residuals, profile); repeatable",
    )
    fit.add_argument("--save", metavar="FILE", help="save the fitted result (see hlm.load)")
    fit.set_defaults(run=commands.cmd_fit)

    rep = sub.add_parser("report", help="fit a model and write a self-contained HTML report")
    _model_args(rep)
    rep.add_argument("-o", "--output", required=True, help="the HTML file to write")
    rep.add_argument(
        "--no-profile", action="store_true", help="leave out the profile-likelihood plot"
    )
    rep.set_defaults(run=commands.cmd_report)

    cmp = sub.add_parser(
        "compare", help="compare models by likelihood-ratio tests; the models side by side"
    )
    cmp.add_argument("data", help="data file: .csv, .tsv, .parquet, .dta (Stata), .sav (SPSS)")
    cmp.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help="two or more models: lme4 formulas, level-equation specs, 'ols: y ~ x' for a "
        "model without random effects, or files holding any of these",
    )
    cmp.add_argument("--method", default="REML", choices=METHODS, help="REML (default) or ML")
    cmp.add_argument(
        "--refit",
        action="store_true",
        help="compare ML refits even when the fixed effects agree (lme4's default)",
    )
    cmp.add_argument("--names", help="comma-separated model names (default M1,M2,...)")
    cmp.add_argument("--engine", help="fitting engine: profiled (default), em, fisher or em+fisher")
    cmp.add_argument("--weights", help="column of prior weights (residual variance sigma^2 / w)")
    cmp.add_argument("--format", default="text", choices=FORMATS, help="output format")
    cmp.add_argument("-o", "--output", help="write the output to this file")
    cmp.add_argument("--quiet", action="store_true", help="no progress bars")
    cmp.set_defaults(run=compare.cmd_compare)

    desc = sub.add_parser("describe", help="group sizes, level of each variable, ICCs")
    desc.add_argument("data")
    desc.add_argument("--group", "-g", required=True, help="the grouping column")
    desc.add_argument("--format", default="text", choices=["text", "json"])
    desc.add_argument("--quiet", action="store_true", help="no progress bars")
    desc.set_defaults(run=commands.cmd_describe)

    ex = sub.add_parser("example", help="fit the bundled High School and Beyond example")
    ex.add_argument("--method", default="REML", choices=METHODS)
    ex.set_defaults(run=commands.cmd_example)

    ds = sub.add_parser("datasets", help="list the bundled data sets, or write one to a file")
    ds.add_argument("name", nargs="?", help="a data set to write (e.g. hsb)")
    ds.add_argument("-o", "--output", help="file to write (.csv or .parquet)")
    ds.set_defaults(run=commands.cmd_datasets)
    return parser
