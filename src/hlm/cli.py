"""The ``hlm`` command line: ``hlm example`` and ``hlm fit DATA FORMULA``.

Exit codes: 0 on success, 2 on bad input (with a one-line reason).
"""

from __future__ import annotations

import argparse
import sys
import warnings

from hlm.errors import HLMError

EXAMPLE_FORMULA = "MathAch ~ MEANSES * cses + Sector * cses + (cses | School)"


def _read(path: str):
    import pandas as pd

    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if lower.endswith(".dta"):
        return pd.read_stata(path)
    if lower.endswith(".sav"):
        return pd.read_spss(path)
    return pd.read_csv(path, on_bad_lines="error")


def _cmd_example(args) -> int:
    import hlm

    data = hlm.datasets.load("hsb")
    print("High School and Beyond (Raudenbush & Bryk 2002): 7185 students in 160 schools.")
    print("Intercepts- and slopes-as-outcomes model: school-mean SES and sector predict")
    print("both the school's mean math achievement and its SES slope.\n")
    res = hlm.fit(EXAMPLE_FORMULA, data, method=args.method)
    print(res.summary())
    return 0


def _cmd_fit(args) -> int:
    import hlm

    if (args.formula is None) == (args.levels is None):
        raise HLMError("give either a formula or --levels (a level-equation spec), not both")
    model = args.formula
    if args.levels is not None:
        model = hlm.Levels.from_text(_levels_text(args.levels))
    data = _read(args.data)
    res = hlm.fit(model, data, method=args.method)
    if args.levels is not None:
        print(model.equations() + "\n")
    print(res.summary())
    return 0


def _levels_text(value: str) -> str:
    """The text form of a spec: read from a file when ``value`` names one."""
    from pathlib import Path

    path = Path(value)
    if "\n" not in value and ":" in value and not path.is_file():
        return value  # the spec itself, e.g. "level1: y ~ x; group: g"
    return path.read_text(encoding="utf-8")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hlm`` command."""
    parser = argparse.ArgumentParser(prog="hlm", description="Hierarchical linear models.")
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("example", help="fit the bundled High School and Beyond example")
    ex.add_argument("--method", default="REML", choices=["REML", "ML", "reml", "ml"])
    ex.set_defaults(run=_cmd_example)
    fit = sub.add_parser("fit", help="fit a model to a CSV, Parquet, Stata or SPSS file")
    fit.add_argument("data")
    fit.add_argument("formula", nargs="?", help="an lme4 formula")
    fit.add_argument(
        "--levels",
        help="a level-equation spec instead of a formula: a file in the text form of "
        "docs/levels.md, or the text itself ('level1: y ~ x; group: g')",
    )
    fit.add_argument("--method", default="REML", choices=["REML", "ML", "reml", "ml"])
    fit.set_defaults(run=_cmd_fit)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``hlm`` command."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the summary reports what the warnings say
            return args.run(args)
    except (HLMError, FileNotFoundError) as exc:
        print(f"hlm: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
