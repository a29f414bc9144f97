"""The ``hlm`` command line (also ``python -m hlm``).

Commands: ``fit``, ``compare``, ``report``, ``describe``, ``example``, ``datasets``; see
docs/cli.md.
Exit codes: 0 on success, 2 on bad input (a one-line reason naming the file, column or
term), 1 when an optional dependency is missing (the message names the extra to install).
"""

from __future__ import annotations

import sys
import warnings

from hlm.cli.parser import build_parser
from hlm.errors import HLMError

__all__ = ["build_parser", "main"]

#: the model ``hlm example`` fits (Raudenbush & Bryk 2002, table 4.5)
EXAMPLE_FORMULA = "MathAch ~ MEANSES * cses + Sector * cses + (cses | School)"


def main(argv=None) -> int:
    """Entry point of the ``hlm`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # every output reports what the warnings say
            return args.run(args)
    except ImportError as exc:
        print(f"hlm: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except (HLMError, ValueError, OSError, KeyError) as exc:
        print(f"hlm: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, KeyError) and text.startswith(("'", '"')):
        text = f"no such column or key: {text}"
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split()) or type(exc).__name__
