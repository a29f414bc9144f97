"""Terms of level equations: right-hand sides read by formulaic, products across levels.

A level equation's right-hand side (``"~ MEANSES + Sector"``) is parsed by formulaic into
terms; each term is kept as the tuple of its factors' texts, written so that formulaic reads
them back as the same factors.  Substituting a level-2 equation into a level-1 coefficient
multiplies terms: the product of ``Sector`` (level 2) and ``cses`` (level 1) is the term
``Sector:cses``.  Level-2 factors are written before level-1 factors, so formulaic names the
column ``Sector[T.Catholic]:cses``.
"""

from __future__ import annotations

from dataclasses import dataclass

from formulaic import Formula

from hlm.errors import FormulaError
from hlm.spec.tokens import is_wrapped, split_top, tokenize, untokenize

INTERCEPT = "(Intercept)"


@dataclass(frozen=True)
class LevelTerm:
    """One term of a level equation: a product of factors (none for the intercept).

    Attributes
    ----------
    factors : tuple of str
        Factor texts in formula syntax (``"MEANSES"``, ``"np.log(x)"``, ``"{x + 1}"``).
    """

    factors: tuple[str, ...] = ()

    @property
    def is_intercept(self) -> bool:
        """True for the constant term."""
        return not self.factors

    @property
    def key(self) -> frozenset:
        """Identity of the term: formulaic treats ``x:z`` and ``z:x`` as the same term."""
        return frozenset(self.factors)

    @property
    def name(self) -> str:
        """``"(Intercept)"`` or the factors joined by ``":"``."""
        return ":".join(self.factors) if self.factors else INTERCEPT

    def times(self, inner: LevelTerm) -> LevelTerm:
        """The product term, this term's factors first."""
        return LevelTerm(self.factors + inner.factors)

    def substitute(self, mapping: dict[str, str]) -> LevelTerm:
        """The term with variable names replaced (centred variables)."""
        if not mapping:
            return self
        return LevelTerm(tuple(substitute(f, mapping) for f in self.factors))


def quote_name(name: str) -> str:
    """A column name as formula text: bare when it is an identifier, else in backticks."""
    return name if name.isidentifier() else f"`{name}`"


def factor_text(factor) -> str:
    """Formula text that formulaic reads back as ``factor`` (a formulaic Factor)."""
    expr = str(factor.expr)
    method = getattr(factor.eval_method, "value", str(factor.eval_method))
    if method == "lookup":
        return quote_name(expr)
    if method == "python":
        toks = tokenize(expr)
        # a call such as np.log(x + 1) keeps its operators inside brackets; anything else
        # (x + 1 written as {x + 1}) must be wrapped again or it would split into terms
        if len(toks) >= 3 and toks[0].kind == "atom" and is_wrapped(toks[1:]):
            return expr
        return "{" + expr + "}"
    return expr


def _is_constant_factor(factor) -> bool:
    method = getattr(factor.eval_method, "value", str(factor.eval_method))
    return method == "literal" and str(factor.expr) == "1"


def term_of(formulaic_term) -> LevelTerm:
    """A formulaic Term as a LevelTerm (the intercept has no factors)."""
    factors = [f for f in formulaic_term.factors if not _is_constant_factor(f)]
    return LevelTerm(tuple(factor_text(f) for f in factors))


def strip_tilde(text: str, what: str) -> str:
    """The right-hand side of ``"~ rhs"`` or ``"rhs"``; a left-hand side is an error."""
    if not isinstance(text, str):
        raise FormulaError(f"{what} must be a string such as '~ 1 + w', got {text!r}")
    toks = tokenize(text)
    sides = split_top(toks, {"~"})
    if len(sides) > 2 or (len(sides) == 2 and sides[0][1]):
        raise FormulaError(
            f"{what} {text!r} must be a right-hand side only, such as '~ 1 + w' (the "
            "coefficient it explains is named by its key)"
        )
    rhs = untokenize(sides[-1][1], text)
    if not rhs:
        raise FormulaError(f"{what} {text!r} is empty; write '~ 1' for an intercept only")
    if _has_bar(sides[-1][1]):
        raise FormulaError(
            f"{what} {text!r} contains '|': random effects are chosen with random= (and "
            "random3=), not written into the equations"
        )
    return rhs


def _has_bar(tokens) -> bool:
    """A ``|`` at the top level or in a parenthesised term (an lme4 bar term)."""
    for _, piece in split_top(tokens, {"+", "-"}):
        while is_wrapped(piece):
            piece = piece[1:-1]
        if len(split_top(piece, {"|", "||"})) > 1:
            return True
    return False


def parse_rhs(rhs: str, what: str) -> list[LevelTerm]:
    """The terms of a right-hand side in formulaic's order, the intercept first if present."""
    try:
        formula = Formula(rhs)
        terms = list(formula)
    except Exception as exc:  # formulaic raises several parser error types
        raise FormulaError(f"cannot parse {what} {rhs!r}: {exc}") from exc
    if terms and not hasattr(terms[0], "factors"):
        raise FormulaError(f"{what} {rhs!r} must be a single right-hand side")
    return [term_of(t) for t in terms]


def parse_key(key: str, what: str) -> LevelTerm:
    """A coefficient named by the user (``"(Intercept)"``, ``"x"``, ``"x:z"``) as a term."""
    if not isinstance(key, str):
        raise FormulaError(f"{what} must be named by a string, got {key!r}")
    text = key.strip()
    if text in (INTERCEPT, "1", "Intercept"):
        return LevelTerm()
    terms = [t for t in parse_rhs(text, what) if not t.is_intercept]
    if len(terms) != 1:
        raise FormulaError(
            f"{what} {key!r} must name one coefficient, such as '(Intercept)' or 'x'"
        )
    return terms[0]


def split_formula(formula: str, what: str) -> tuple[str, str]:
    """``"y ~ x + z"`` -> ``("y", "x + z")``; refuses bar terms and a missing response."""
    if not isinstance(formula, str):
        raise FormulaError(f"{what} must be a string such as 'y ~ x', got {formula!r}")
    toks = tokenize(formula)
    sides = split_top(toks, {"~"})
    if len(sides) != 2 or not sides[0][1] or not sides[1][1]:
        raise FormulaError(
            f"{what} {formula!r} needs one '~' with the response on its left and the "
            "level-1 predictors on its right, e.g. 'MathAch ~ cses'"
        )
    rhs = untokenize(sides[1][1], formula)
    strip_tilde(rhs, what)  # refuses bar terms with a message about random=
    return untokenize(sides[0][1], formula), rhs


def substitute(text: str, mapping: dict[str, str]) -> str:
    """Replace variable names in formula text, token by token.

    Function names (an atom followed by ``(``) and keyword arguments (followed by ``=``) are
    left alone; a backtick-quoted name is replaced like a bare one.
    """
    if not mapping:
        return text
    toks = tokenize(text)
    out: list[str] = []
    last = 0
    for k, tok in enumerate(toks):
        nxt = toks[k + 1].text if k + 1 < len(toks) else ""
        name = None
        if tok.kind == "atom" and nxt not in ("(", "="):
            name = tok.text
        elif tok.kind == "str" and tok.text.startswith("`"):
            name = tok.text[1:-1]
        if name in mapping:
            out.append(text[last : tok.pos])
            out.append(quote_name(mapping[name]))
            last = tok.pos + len(tok.text)
    out.append(text[last:])
    return "".join(out)


def names_in(text: str) -> set[str]:
    """Every variable-like name in formula text (atoms and backtick-quoted names)."""
    toks = tokenize(text)
    out = set()
    for k, tok in enumerate(toks):
        nxt = toks[k + 1].text if k + 1 < len(toks) else ""
        if tok.kind == "atom" and nxt not in ("(", "="):
            out.add(tok.text)
        elif tok.kind == "str" and tok.text.startswith("`"):
            out.add(tok.text[1:-1])
    return out


def random_lhs(terms: list[LevelTerm]) -> str:
    """Left side of a bar term for these columns: ``1``, ``x``, ``0 + x`` (lme4 style)."""
    others = [t.name for t in terms if not t.is_intercept]
    if any(t.is_intercept for t in terms):
        return " + ".join(others) if others else "1"
    return "0 + " + " + ".join(others)


def fixed_rhs(terms: list[LevelTerm]) -> str:
    """A fixed-effects right-hand side: the intercept implied, ``0 +`` when it is absent."""
    others = [t.name for t in terms if not t.is_intercept]
    if any(t.is_intercept for t in terms):
        return " + ".join(others) if others else "1"
    return "0 + " + " + ".join(others) if others else "0"


def split_column_name(name: str) -> list[str]:
    """Split a formulaic column name at its top-level ``":"`` (``"A[T.a]:x"`` -> two parts)."""
    try:
        toks = tokenize(name)
    except FormulaError:
        return [name]
    pieces = split_top(toks, {":"})
    if len(pieces) == 1 or any(not p for _, p in pieces):
        return [name]
    return [untokenize(p, name) for _, p in pieces]
