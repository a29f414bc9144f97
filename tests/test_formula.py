"""The lme4 formula parser (``hlm.spec.parse_formula``): bar terms, fixed part, errors."""

from __future__ import annotations

import pytest

import hlm
from hlm.spec import parse_formula


def terms(formula: str) -> list[tuple[str, tuple[str, ...]]]:
    """(lhs, factors) of every random term, in order."""
    return [(t.lhs, t.factors) for t in parse_formula(formula).random]


# --- random-effects terms ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "lhs"),
    [
        ("y ~ x + (1|g)", "1"),
        ("y ~ x + (x|g)", "x"),
        ("y ~ x + (1 + x|g)", "1 + x"),
        ("y ~ x + (0 + x|g)", "0 + x"),
        ("y ~ x + ( 1 + x | g )", "1 + x"),
    ],
)
def test_single_bar_term(formula, lhs):
    spec = parse_formula(formula)
    assert spec.response == "y"
    assert spec.fixed == "x"
    assert len(spec.random) == 1
    term = spec.random[0]
    assert term.lhs == lhs
    assert term.factors == ("g",)
    assert term.group == "g"
    assert term.correlated is True


def test_double_bar_splits_into_uncorrelated_terms():
    spec = parse_formula("Reaction ~ Days + (Days || Subject)")
    assert [(t.lhs, t.factors) for t in spec.random] == [
        ("1", ("Subject",)),
        ("0 + Days", ("Subject",)),
    ]
    assert all(t.correlated is False for t in spec.random)
    assert all(t.source == "(Days || Subject)" for t in spec.random)


def test_double_bar_with_several_columns_and_no_intercept():
    assert terms("y ~ (x + z || g)") == [("1", ("g",)), ("0 + x", ("g",)), ("0 + z", ("g",))]
    assert terms("y ~ (0 + x + z || g)") == [("0 + x", ("g",)), ("0 + z", ("g",))]
    assert terms("y ~ (-1 + x || g)") == [("0 + x", ("g",))]


def test_nested_grouping_expands_child_first():
    spec = parse_formula("strength ~ 1 + (1 | batch/cask)")
    assert [(t.lhs, t.factors) for t in spec.random] == [
        ("1", ("batch",)),
        ("1", ("cask", "batch")),
    ]
    assert [t.group for t in spec.random] == ["batch", "cask:batch"]
    assert spec.group_columns == ["batch", "cask"]


def test_three_level_nesting():
    assert [t.group for t in parse_formula("y ~ (1 | a/b/c)").random] == ["a", "b:a", "c:b:a"]


def test_interaction_grouping_factor():
    spec = parse_formula("y ~ x + (1 | a:b)")
    assert len(spec.random) == 1
    assert spec.random[0].factors == ("a", "b")
    assert spec.random[0].group == "a:b"


def test_several_terms_keep_their_written_order():
    spec = parse_formula("y ~ x + (1 | g2) + (x | g1) + (1 | g3)")
    assert [t.group for t in spec.random] == ["g2", "g1", "g3"]
    assert spec.fixed == "x"


def test_backquoted_group_name():
    assert terms("y ~ (1 | `my group`)") == [("1", ("my group",))]


# --- fixed part ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "fixed"),
    [
        ("y ~ (1|g)", "1"),
        ("y ~ 1 + (1|g)", "1"),
        ("y ~ x + z + (1|g)", "x + z"),
        ("y ~ (1|g) + x", "x"),
        ("y ~ x*z + (1|g)", "x*z"),
        ("y ~ 0 + x + (1|g)", "0 + x"),
        ("y ~ x - 1 + (1|g)", "x - 1"),
    ],
)
def test_fixed_part(formula, fixed):
    assert parse_formula(formula).fixed == fixed


def test_leading_minus_one_removes_the_intercept():
    fixed = parse_formula("y ~ -1 + x + (1|g)").fixed
    model = hlm.LinearMixedModel.from_formula(
        "Reaction ~ -1 + Days + (1|Subject)", hlm.datasets.load("sleepstudy")
    )
    assert "x" in fixed
    assert model.fixed_names == ["Days"]


@pytest.mark.parametrize(
    "piece",
    ["np.log(x)", "I(x - 1)", "C(a)", "np.log(x + 1)", "C(a, Treatment('b'))", "I((x - 1) ** 2)"],
)
def test_transforms_in_the_fixed_part_are_not_split(piece):
    spec = parse_formula(f"y ~ {piece} + z + (1 | g)")
    assert spec.fixed == f"{piece} + z"
    assert terms(f"y ~ {piece} + z + (1 | g)") == [("1", ("g",))]


def test_transform_of_the_response():
    spec = parse_formula("np.log(Reaction) ~ Days + (1 | Subject)")
    assert spec.response == "np.log(Reaction)"
    assert spec.fixed == "Days"


def test_nested_parentheses_inside_a_bar_term():
    assert terms("y ~ x + (1 + I((x - 1) ** 2) | g)") == [("1 + I((x - 1) ** 2)", ("g",))]
    assert terms("y ~ x + (np.log(x + 1) | g)") == [("np.log(x + 1)", ("g",))]


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("y ~ x + ((1 | g))", [("1", ("g",))]),
        ("y ~ x + ((x | g))", [("x", ("g",))]),
    ],
)
def test_bar_term_in_extra_parentheses(formula, expected):
    """lme4's findbars() looks inside '(': ``((1 | g))`` is the term ``(1 | g)``."""
    spec = parse_formula(formula)
    assert [(t.lhs, t.factors) for t in spec.random] == expected
    assert spec.fixed == "x"


# --- malformed formulas -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "words"),
    [
        ("y x + (1|g)", ["'~'"]),
        ("~ x + (1|g)", ["'~'", "response"]),
        ("y ~ x ~ z + (1|g)", ["'~'"]),
        ("y ~", ["nothing on the right"]),
        ("y ~ x + (1|g", ["unclosed", "'('"]),
        ("y ~ x + 1|g)", ["unbalanced", "')'"]),
        ("y ~ x + (1|g))", ["unbalanced", "')'"]),
        ("y ~ x + 1|g", ["parentheses", "1|g"]),
        ("y ~ x + (1|)", ["grouping factor", "(1|)"]),
        ("y ~ x + (1|log(g))", ["log(g)", "column name"]),
        ("y ~ x + (1|g + h)", ["g + h", "column name"]),
        ("y ~ x + ( |g)", ["nothing left of"]),
        ("y ~ x + (1|g|h)", ["exactly one"]),
        ("y ~ x - (1|g)", ["subtracted"]),
        ("y ~ x ++ (1|g)", ["empty term"]),
    ],
)
def test_malformed_formula_raises_helpful_error(formula, words):
    with pytest.raises(hlm.FormulaError) as info:
        parse_formula(formula)
    message = str(info.value)
    for word in words:
        assert word in message, message


def test_formula_must_be_a_string():
    with pytest.raises(hlm.FormulaError, match="string"):
        parse_formula(None)


def test_formula_error_is_a_value_error():
    assert issubclass(hlm.FormulaError, ValueError)
    with pytest.raises(ValueError):
        hlm.fit("y x", {"y": [1.0, 2.0], "x": [1.0, 2.0]})
