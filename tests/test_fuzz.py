"""Fuzzing the formula and level-equation parsers and the data-file readers (hypothesis).

Contract: for any text, the parsers return a result or raise one of hlm's own errors
(:class:`hlm.HLMError` and its subclasses, which are ValueErrors with a message naming the
offending piece); nothing else escapes (no IndexError, KeyError, SyntaxError, formulaic's
or pandas' own exceptions, RecursionError, ...).  Inputs are arbitrary text, and text built
from a grammar of formulas and spec files then mutated, so that most of it is nearly valid
and reaches the deeper layers (formulaic, the data, the fit).  The file readers
(:func:`hlm.io.read_data`) get arbitrary bytes and CSV-like fragments under every suffix
they accept: a DataError (or an ImportError naming the extra to install) or a table.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import hlm
from hlm.spec.formula import parse_formula
from hlm.spec.levels_text import from_text
from hlm.spec.tokens import tokenize

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)

# --- grammar of formulas -------------------------------------------------------------------------

NAMES = ["y", "x", "w", "g", "h", "k", "`x`", "np.log(x)", "C(k)", "I(x**2)", "x:k", "x*w",
         "center(x)", "poly(x, 2)", "1", "0", "nope", "g:h", "(x + w)", "x^2", "-1"]  # fmt: skip
GROUPS = ["g", "h", "g:h", "g/h", "h/g", "`g`", "x", "1", "g + h", "", "g:", "/g", "(g)", "k"]
LHS = ["1", "x", "1 + x", "0 + x", "x + w", "k", "", "-1", "x || 1", "C(k)", "w | 1"]
RESPONSES = ["y", "np.log(y + 10)", "", "y + x", "g", "k", "y:x", "(y)"]


@st.composite
def formulas(draw):
    """An lme4 formula, usually valid, sometimes subtly broken."""
    fixed = draw(st.lists(st.sampled_from(NAMES), max_size=4))
    bars = draw(
        st.lists(
            st.tuples(
                st.sampled_from(LHS[:4] * 3 + LHS),  # mostly plain left sides
                st.sampled_from(["|", "|", "||"]),
                st.sampled_from(GROUPS[:3] * 3 + GROUPS),
            ),
            min_size=draw(st.sampled_from([1, 1, 1, 0])),
            max_size=3,
        )
    )
    terms = fixed + [f"({lhs} {bar} {grp})" for lhs, bar, grp in bars]
    ops = draw(st.lists(st.sampled_from([" + "] * 6 + [" - ", " * ", " : "]), min_size=len(terms)))
    rhs = "".join(op + t for op, t in zip(ops, terms, strict=False)).lstrip(" +") or "1"
    return f"{draw(st.sampled_from(RESPONSES[:1] * 5 + RESPONSES))} ~ {rhs}"


def mutated(strategy):
    """Text from ``strategy`` with a few characters inserted or deleted."""

    @st.composite
    def build(draw):
        text = draw(strategy)
        for _ in range(draw(st.integers(0, 3))):
            at = draw(st.integers(0, len(text)))
            if draw(st.booleans()) and text:
                text = text[: max(at - 1, 0)] + text[at:]
            else:
                text = (
                    text[:at] + draw(st.sampled_from(list("()|~+-:/`'\"[]{}#;,=\n1x "))) + text[at:]
                )
        return text

    return build()


FORMULA_TEXT = st.one_of(st.text(max_size=40), formulas(), mutated(formulas()))


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 48
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n) + 2.0,
            "w": rng.normal(size=n),
            "g": np.repeat(list("abcdef"), 8),
            "h": np.tile(list("pqrs"), 12),
            "k": np.tile(["lo", "hi", "mid"], 16),
        }
    )


def only_our_errors(call):
    """Run ``call``; hlm's errors are the contract, anything else fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call()
        except hlm.HLMError as exc:
            assert str(exc), "an error without a message"


# --- the tokenizer and formula parser ------------------------------------------------------------


@SETTINGS
@given(text=FORMULA_TEXT)
def test_tokenizer_and_parser(text):
    only_our_errors(lambda: tokenize(text))
    only_our_errors(lambda: parse_formula(text))


def test_non_string_formulas():
    for value in (None, 3, b"y ~ x + (1|g)", ["y ~ x"]):
        with pytest.raises(hlm.FormulaError, match="must be a string"):
            parse_formula(value)


@SETTINGS
@given(text=st.one_of(formulas(), mutated(formulas())))
def test_model_building_and_fitting(text, data):
    """Through formulaic, the data and the fit: still only hlm's errors."""
    only_our_errors(lambda: hlm.fit(text, data, maxeval=200))


# --- level equations -----------------------------------------------------------------------------

LEVEL_LINES = [
    "level1: y ~ x",
    "level1: y ~ x + w",
    "level1: y ~ 0 + x",
    "level2: (Intercept) ~ w",
    "level2: x ~ w, (Intercept) ~ 1",
    "level2: x ~",
    "level2: nope ~ w",
    "group: g",
    "group: `g`",
    "group: g h",
    "random: (Intercept), x",
    "random:",
    "random: x",
    "random: zz",
    "group3: h",
    "level3: [(Intercept), (Intercept)] ~ w",
    "level3: [x, w] ~ 1",
    "random3: [(Intercept), (Intercept)]",
    "random3: (Intercept)",
    "center: x = group",
    "center: x = group + mean, w = grand",
    "center: x = sideways",
    "# a comment",
    "  continued",
    "",
]


@st.composite
def spec_texts(draw):
    """A spec file: usually a level1 and a group statement among others."""
    lines = draw(st.lists(st.sampled_from(LEVEL_LINES), max_size=5))
    if draw(st.integers(0, 9)) < 8:
        lines = [draw(st.sampled_from(LEVEL_LINES[:3])), "group: g"] + lines
    lines = draw(st.permutations(lines))
    sep = draw(st.sampled_from(["\n", "; ", "\n\n"]))
    return sep.join(lines)


SPEC_TEXT = st.one_of(st.text(max_size=60), spec_texts(), mutated(spec_texts()))


@SETTINGS
@given(text=SPEC_TEXT)
def test_level_spec_text(text):
    only_our_errors(lambda: from_text(text))


@SETTINGS
@given(text=st.one_of(spec_texts(), mutated(spec_texts())))
def test_level_spec_fit(text, data):
    """A spec that parses is turned into a formula and fitted: only hlm's errors."""
    spec = None

    def parse():
        nonlocal spec
        spec = from_text(text)

    only_our_errors(parse)
    if spec is not None:
        only_our_errors(lambda: spec.mixed_formula())
        only_our_errors(lambda: hlm.fit(spec, data))  # (maxeval= is refused for OLS specs)


@SETTINGS
@given(
    level1=FORMULA_TEXT,
    key=st.sampled_from(["(Intercept)", "x", "w", "", "zz", "1"]),
    rhs=st.one_of(st.text(max_size=20), st.sampled_from(["~ w", "~ 1", "w", "~ (1|g)", "~ x + "])),
    group=st.sampled_from(["g", "", "zz", "g:h", "x"]),
    random=st.lists(st.sampled_from(["(Intercept)", "x", "zz", ""]), max_size=2),
)
def test_levels_constructor(level1, key, rhs, group, random, data):
    def build():
        spec = hlm.Levels(level1, {key: rhs}, group=group, random=random)
        spec.mixed_formula()
        hlm.fit(spec, data)

    only_our_errors(build)


# --- data files ----------------------------------------------------------------------------------

CSV_PIECES = [b"y,x,g\n", b"1,2,a\n", b"1,2\n", b'"a,b\n', b"\xff\xfe", b"\x00", b",,,\n",
              b"\n", b"1.5e400,nan,inf\n", b"y;x;g\n", b"\r\n", b'"",""\n', b"\xe2\x82",
              b"\t"]  # fmt: skip
SUFFIXES = [".csv", ".tsv", ".txt", ".csv.gz", ".parquet", ".dta", ".sav", ""]


# pyarrow decodes a malformed row's text before calling the reader's handler; on invalid
# UTF-8 that raises inside pyarrow's callback, which reports it as "unraisable" and fails the
# read (a DataError here)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@SETTINGS
@given(
    content=st.one_of(
        st.binary(max_size=80),
        st.lists(st.sampled_from(CSV_PIECES), max_size=8).map(b"".join),
    ),
    suffix=st.sampled_from(SUFFIXES),
)
def test_file_readers(content, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(content)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = hlm.io.read_data(path)
        except hlm.HLMError as exc:
            assert "data" in str(exc)  # the message names the file
        except ImportError as exc:  # an optional reader that is not installed
            assert "pip install" in str(exc)
        else:
            assert isinstance(table, pd.DataFrame)
