"""Parse an lme4 formula into a :class:`ModelSpec`.

The right-hand side is split at top-level ``+``/``-`` into pieces; a piece that is a
parenthesised group containing a top-level ``|`` or ``||`` is a random-effects term, every
other piece belongs to the fixed part, which formulaic evaluates.  Grouping expressions use
lme4's meaning: ``a:b`` is the interaction of two factors, ``a/b`` expands to ``a`` and
``b:a``, and ``(x || g)`` expands to ``(1 | g) + (0 + x | g)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hlm.errors import FormulaError
from hlm.spec.tokens import Token, is_wrapped, split_top, tokenize, untokenize


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(lhs | group)`` after expansion.

    Attributes
    ----------
    lhs : str
        Right-hand side for formulaic giving the term's columns of Z, e.g. ``"1 + Days"``.
    factors : tuple of str
        Data columns whose interaction defines the groups, child first as lme4 names them
        (``("cask", "batch")`` for ``cask:batch``).
    correlated : bool
        False when the term came from splitting a ``||`` term (each piece is then its own
        term, as in lme4); kept for display.
    source : str
        The text of the term as the user wrote it.
    """

    lhs: str
    factors: tuple[str, ...]
    correlated: bool = True
    source: str = ""

    @property
    def group(self) -> str:
        """The name of the grouping factor, lme4 style (``"cask:batch"``)."""
        return ":".join(self.factors)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed mixed-model formula.

    Attributes
    ----------
    formula : str
        The formula as given.
    response : str
        The left-hand side (a column name or an expression formulaic evaluates).
    fixed : str
        The fixed-effects right-hand side for formulaic (``"1"`` when only an intercept).
    random : tuple of RandomTerm
        The random-effects terms in the order written (after ``/`` and ``||`` expansion).
    """

    formula: str
    response: str
    fixed: str
    random: tuple[RandomTerm, ...] = field(default_factory=tuple)

    @property
    def group_columns(self) -> list[str]:
        """Every data column used to define groups, in first-use order."""
        out: list[str] = []
        for term in self.random:
            for f in term.factors:
                if f not in out:
                    out.append(f)
        return out


def parse_formula(formula: str) -> ModelSpec:
    """Parse an lme4-style formula.

    Parameters
    ----------
    formula : str
        For example ``"Reaction ~ Days + (Days | Subject)"``.

    Returns
    -------
    ModelSpec

    Raises
    ------
    FormulaError
        With the offending piece of the formula named.
    """
    if not isinstance(formula, str):
        raise FormulaError(f"a model formula must be a string, got {type(formula).__name__}")
    tokens = tokenize(formula)
    sides = split_top(tokens, {"~"})
    if len(sides) != 2 or not sides[0][1]:
        raise FormulaError(
            f"formula {formula!r} needs exactly one '~' with the response on its left, "
            "e.g. 'y ~ x + (1 | g)'"
        )
    lhs_tokens, rhs_tokens = sides[0][1], sides[1][1]
    if not rhs_tokens:
        raise FormulaError(f"formula {formula!r} has nothing on the right of '~'")
    response = untokenize(lhs_tokens, formula)
    fixed_parts: list[str] = []
    random: list[RandomTerm] = []
    for op, piece in split_top(rhs_tokens, {"+", "-"}):
        if not piece:
            if op is None:  # a leading unary minus, e.g. "y ~ -1 + x"
                continue
            raise FormulaError(f"empty term after {op!r} in formula {formula!r}")
        if _is_bar_term(piece):
            if op == "-":
                raise FormulaError(
                    f"a random-effects term cannot be subtracted: "
                    f"'- {untokenize(piece, formula)}' in {formula!r}"
                )
            random.extend(_parse_bar_term(piece, formula))
        else:
            if _has_top_bar(piece):
                raise FormulaError(
                    f"the random-effects term {untokenize(piece, formula)!r} must be wrapped "
                    "in parentheses, e.g. '(1 + x | g)'"
                )
            text = untokenize(piece, formula)
            fixed_parts.append(text if op is None and not fixed_parts else f"{op or '+'} {text}")
    fixed = " ".join(fixed_parts).strip()
    if fixed.startswith("+ "):
        fixed = fixed[2:]
    if not fixed:
        fixed = "1"
    elif fixed.startswith("- "):
        fixed = "1 " + fixed
    return ModelSpec(formula=formula, response=response, fixed=fixed, random=tuple(random))


def _has_top_bar(tokens: list[Token]) -> bool:
    return any(p[0] in ("|", "||") for p in split_top(tokens, {"|", "||"})[1:])


def _unwrap(tokens: list[Token]) -> list[Token]:
    """Strip redundant outer parentheses: ``((1 | g))`` is ``(1 | g)``, as in lme4."""
    while is_wrapped(tokens) and is_wrapped(tokens[1:-1]):
        tokens = tokens[1:-1]
    return tokens


def _is_bar_term(tokens: list[Token]) -> bool:
    tokens = _unwrap(tokens)
    return is_wrapped(tokens) and _has_top_bar(tokens[1:-1])


def _parse_bar_term(tokens: list[Token], formula: str) -> list[RandomTerm]:
    tokens = _unwrap(tokens)
    inner = tokens[1:-1]
    source = untokenize(tokens, formula)
    parts = split_top(inner, {"|", "||"})
    if len(parts) != 2:
        raise FormulaError(f"random-effects term {source!r} must have exactly one '|' or '||'")
    (_, lhs_tok), (bar, grp_tok) = parts
    if not lhs_tok:
        raise FormulaError(f"random-effects term {source!r} has nothing left of {bar!r}")
    if not grp_tok:
        raise FormulaError(f"random-effects term {source!r} names no grouping factor")
    lhs = untokenize(lhs_tok, formula)
    groups = _parse_groups(grp_tok, formula, source)
    if bar == "|":
        return [RandomTerm(lhs, g, True, source) for g in groups]
    pieces = _split_uncorrelated(lhs_tok, formula)
    return [RandomTerm(p, g, False, source) for g in groups for p in pieces]


def _split_uncorrelated(lhs_tok: list[Token], formula: str) -> list[str]:
    """``x + z`` -> ``["1", "0 + x", "0 + z"]`` (the intercept unless removed)."""
    intercept = True
    others: list[str] = []
    for op, piece in split_top(lhs_tok, {"+", "-"}):
        if not piece:
            continue
        text = untokenize(piece, formula)
        if text in ("0", "-1") or (op == "-" and text == "1"):
            intercept = False
        elif text == "1":
            intercept = True
        elif op == "-":
            raise FormulaError(f"cannot remove {text!r} inside a '||' term")
        else:
            others.append(f"0 + {text}")
    return (["1"] if intercept else []) + others


def _parse_groups(tokens: list[Token], formula: str, source: str) -> list[tuple[str, ...]]:
    """``a/b`` -> ``[("a",), ("b", "a")]``; ``a:b`` -> ``[("a", "b")]``."""
    out: list[tuple[str, ...]] = []
    outer: tuple[str, ...] = ()
    for op, piece in split_top(tokens, {"/"}):
        if not piece:
            where = f"after {op!r} " if op else ""
            raise FormulaError(f"empty grouping factor {where}in {source!r}")
        names: list[str] = []
        for _, atom in split_top(piece, {":"}):
            if len(atom) != 1 or atom[0].kind not in ("atom", "str"):
                raise FormulaError(
                    f"grouping factor {untokenize(atom, formula)!r} in {source!r} must be a "
                    "column name (make a new column for an expression)"
                )
            name = atom[0].text
            if atom[0].kind == "str":
                name = name[1:-1]
            names.append(name)
        if not names:
            raise FormulaError(f"empty grouping factor in {source!r}")
        outer = tuple(names) + outer
        out.append(outer)
    return out
