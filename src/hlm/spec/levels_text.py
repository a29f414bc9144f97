"""The text form of a level-equation spec (for files and the command line).

One statement per line (or separated by ``;``), each ``keyword: value``; ``#`` starts a
comment; a line that does not start with a keyword continues the statement before it::

    # intercepts- and slopes-as-outcomes (Raudenbush & Bryk 2002, table 4.5)
    level1: MathAch ~ cses
    level2: (Intercept) ~ MEANSES + Sector
    level2: cses ~ MEANSES + Sector
    group: School
    random: (Intercept), cses

Keywords: ``level1`` (once), ``level2`` (``coefficient ~ rhs``, several per statement
separated by commas, or repeated), ``group`` (once), ``random`` (comma-separated
coefficients; empty for none; omitted for the default random intercept), ``group3``,
``level3`` (``[coefficient, level-2 term] ~ rhs``), ``random3`` (``[coefficient, term]``
pairs) and ``center`` (``variable = kind``, kinds joined by ``+``, e.g. ``ses = group +
mean``). The full description is in docs/levels.md.
"""

from __future__ import annotations

from hlm.errors import FormulaError
from hlm.spec.level_terms import quote_name
from hlm.spec.tokens import Token, split_top, tokenize, untokenize

KEYWORDS = ("level1", "level2", "group", "random", "level3", "group3", "random3", "center")
_ONCE = ("level1", "group", "random", "group3", "random3")
_OPEN, _CLOSE = "([{", ")]}"


def to_text(spec) -> str:
    """The text form of ``spec`` (every equation written out, defaults included)."""
    lines = [f"level1: {spec.level1}"]
    lines += [f"level2: {q} ~ {rhs}" for q, rhs in spec.level2.items()]
    lines.append(f"group: {quote_name(spec.group)}")
    lines.append("random: " + ", ".join(spec.random))
    if spec.three:
        lines += [f"level3: [{q}, {s}] ~ {rhs}" for (q, s), rhs in spec.level3.items()]
        lines.append(f"group3: {quote_name(spec.group3)}")
        lines.append("random3: " + ", ".join(f"[{q}, {s}]" for q, s in spec.random3))
    if spec.center:
        items = [f"{quote_name(v)} = {' + '.join(k)}" for v, k in spec.center.items()]
        lines.append("center: " + ", ".join(items))
    return "\n".join(lines) + "\n"


def from_text(text: str):
    """Read the text form (see the module docstring) into an :class:`hlm.Levels`."""
    from hlm.spec.levels import Levels

    if not isinstance(text, str):
        raise FormulaError(f"a level-equation spec in text form must be a string, got {text!r}")
    seen: dict[str, list[tuple[int, str]]] = {}
    for line, key, value in _statements(text):
        if key in _ONCE and key in seen:
            raise FormulaError(f"line {line}: '{key}:' may appear only once")
        seen.setdefault(key, []).append((line, value))
    for key in ("level1", "group"):
        if key not in seen:
            raise FormulaError(f"the spec has no '{key}:' statement")
    kwargs: dict = {"group": _name(*seen["group"][0])}
    level2 = {}
    for line, value in seen.get("level2", []):
        for key, rhs in _equations(line, value, pair=False):
            level2[key] = rhs
    if "random" in seen:
        line, value = seen["random"][0]
        kwargs["random"] = [_text(p, value) for p in _items(line, value)]
    if "group3" in seen:
        kwargs["group3"] = _name(*seen["group3"][0])
    level3 = {}
    for line, value in seen.get("level3", []):
        for key, rhs in _equations(line, value, pair=True):
            level3[key] = rhs
    if level3:
        kwargs["level3"] = level3
    if "random3" in seen:
        line, value = seen["random3"][0]
        kwargs["random3"] = [_pair(line, p, value) for p in _items(line, value)]
    center: dict = {}
    for line, value in seen.get("center", []):
        for item in _items(line, value):
            parts = split_top(item, {"="})
            if len(parts) != 2 or not parts[0][1] or not parts[1][1]:
                raise FormulaError(f"line {line}: write centring as 'variable = kind'")
            kinds = [_text(p, value) for _, p in split_top(parts[1][1], {"+"})]
            center[_unquote(_text(parts[0][1], value))] = kinds
    if center:
        kwargs["center"] = center
    return Levels(seen["level1"][0][1], level2, **kwargs)


# ---------------------------------------------------------------------- statements
def _statements(text: str):
    """``(line number, keyword, value)`` for every statement."""
    out: list[list] = []
    for line, piece in _pieces(text):
        if not piece.strip():
            continue
        toks = tokenize(piece)
        if len(toks) >= 2 and toks[0].text in KEYWORDS and toks[1].text == ":":
            out.append([line, toks[0].text, piece[toks[1].pos + 1 :]])
        elif out:
            out[-1][2] += " " + piece.strip()  # a continuation line
        else:
            raise FormulaError(
                f"line {line}: expected 'keyword: value' with a keyword among "
                f"{', '.join(KEYWORDS)}, got {piece.strip()!r}"
            )
    return [(line, key, value.strip()) for line, key, value in out]


def _pieces(text: str):
    """Split at ``;`` and newlines outside brackets and quotes; drop ``#`` comments."""
    pieces, current = [], []
    depth, quote, comment, line, start = 0, None, False, 1, 1
    for c in text:
        if comment:
            if c == "\n":
                comment = False
            else:
                continue
        if quote:
            current.append(c)
            quote = None if c == quote else quote
            continue
        if c in "'\"`":
            quote = c
        elif c == "#":
            comment = True
            continue
        elif c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        if (c == ";" or c == "\n") and depth <= 0:
            pieces.append((start, "".join(current)))
            current = []
            start = line + (c == "\n")
        else:
            current.append(" " if c == "\n" else c)
        line += c == "\n"
    if quote:
        raise FormulaError(f"unterminated quote {quote} in the spec")
    pieces.append((start, "".join(current)))
    return pieces


def _items(line: int, value: str) -> list[list[Token]]:
    toks = tokenize(value)
    if not toks:
        return []
    items = [p for _, p in split_top(toks, {","})]
    if any(not p for p in items):
        raise FormulaError(f"line {line}: empty item in {value!r}")
    return items


def _text(tokens: list[Token], value: str) -> str:
    return untokenize(tokens, value)


def _unquote(name: str) -> str:
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == "`" else name


def _name(line: int, value: str) -> str:
    toks = tokenize(value)
    if len(toks) != 1 or toks[0].kind not in ("atom", "str"):
        raise FormulaError(f"line {line}: expected one column name, got {value!r}")
    return _unquote(toks[0].text)


def _pair(line: int, tokens: list[Token], value: str) -> tuple[str, str]:
    inner = tokens[1:-1]
    parts = split_top(inner, {","}) if tokens and tokens[0].text == "[" else []
    if tokens[-1].text != "]" or len(parts) != 2 or not all(p for _, p in parts):
        raise FormulaError(
            f"line {line}: a level-2 coefficient is written [coefficient, term], e.g. "
            f"[(Intercept), (Intercept)]; got {_text(tokens, value)!r}"
        )
    return _text(parts[0][1], value), _text(parts[1][1], value)


def _equations(line: int, value: str, pair: bool):
    """``key ~ rhs`` items of a level2 (level3) statement."""
    for item in _items(line, value):
        sides = split_top(item, {"~"})
        if len(sides) != 2 or not sides[0][1] or not sides[1][1]:
            raise FormulaError(
                f"line {line}: expected 'coefficient ~ right-hand side', got {_text(item, value)!r}"
            )
        key = _pair(line, sides[0][1], value) if pair else _text(sides[0][1], value)
        yield key, _text(sides[1][1], value)
