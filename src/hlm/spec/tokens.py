"""A small tokenizer for model formulas.

Only the random-effect layer of an lme4 formula needs parsing by hand: we must find the
parenthesised bar terms ``(expr | group)`` at the top level of the right-hand side and split
the rest into terms that formulaic understands.  The tokenizer respects nesting of
``()``, ``[]``, ``{}`` and quoted strings, so that ``np.log(x + 1)`` or ``C(a, Treatment("b"))``
never confuse the splitter.
"""

from __future__ import annotations

from dataclasses import dataclass

from hlm.errors import FormulaError

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}
_SINGLE_OPS = set("~+-*/:^|,=")


@dataclass(frozen=True)
class Token:
    """One lexical token: ``kind`` is 'op', 'open', 'close', 'str' or 'atom'."""

    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens.

    Parameters
    ----------
    text : str
        A formula or a part of one.

    Returns
    -------
    list of Token
        Operators (``||`` is one token), brackets, quoted strings and atoms (names, numbers,
        dotted attribute chains such as ``np.log``). White space separates tokens and is
        dropped.
    """
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "|" and i + 1 < n and text[i + 1] == "|":
            tokens.append(Token("op", "||", i))
            i += 2
        elif c == "*" and i + 1 < n and text[i + 1] == "*":
            tokens.append(Token("op", "**", i))
            i += 2
        elif c in _SINGLE_OPS:
            tokens.append(Token("op", c, i))
            i += 1
        elif c in _OPEN:
            tokens.append(Token("open", c, i))
            i += 1
        elif c in _CLOSE:
            tokens.append(Token("close", c, i))
            i += 1
        elif c in "'\"`":
            j = text.find(c, i + 1)
            if j < 0:
                raise FormulaError(f"unterminated quote {c} at position {i} in {text!r}")
            tokens.append(Token("str", text[i : j + 1], i))
            i = j + 1
        else:
            j = i
            while j < n and not (
                text[j].isspace()
                or text[j] in _SINGLE_OPS
                or text[j] in _OPEN
                or text[j] in _CLOSE
                or text[j] in "'\"`"
            ):
                j += 1
            tokens.append(Token("atom", text[i:j], i))
            i = j
    check_brackets(tokens, text)
    return tokens


def check_brackets(tokens: list[Token], text: str) -> None:
    """Raise a FormulaError naming the position of the first unbalanced bracket."""
    stack: list[Token] = []
    for tok in tokens:
        if tok.kind == "open":
            stack.append(tok)
        elif tok.kind == "close":
            if not stack or _OPEN[stack[-1].text] != tok.text:
                raise FormulaError(
                    f"unbalanced {tok.text!r} at position {tok.pos} in formula {text!r}"
                )
            stack.pop()
    if stack:
        raise FormulaError(
            f"unclosed {stack[-1].text!r} at position {stack[-1].pos} in formula {text!r}"
        )


def split_top(tokens: list[Token], ops: set[str]) -> list[tuple[str | None, list[Token]]]:
    """Split tokens at operators in ``ops`` that stand at bracket depth zero.

    Returns
    -------
    list of (op, tokens)
        ``op`` is the operator that preceded the piece (None for the first piece).
    """
    pieces: list[tuple[str | None, list[Token]]] = []
    depth = 0
    current: list[Token] = []
    op: str | None = None
    for tok in tokens:
        if tok.kind == "open":
            depth += 1
        elif tok.kind == "close":
            depth -= 1
        if depth == 0 and tok.kind == "op" and tok.text in ops:
            pieces.append((op, current))
            current = []
            op = tok.text
            continue
        current.append(tok)
    pieces.append((op, current))
    return pieces


def untokenize(tokens: list[Token], text: str) -> str:
    """The source text spanned by ``tokens`` (white space as in ``text``)."""
    if not tokens:
        return ""
    last = tokens[-1]
    return text[tokens[0].pos : last.pos + len(last.text)].strip()


def is_wrapped(tokens: list[Token]) -> bool:
    """True when the tokens are one bracketed group ``( ... )`` from first to last."""
    if len(tokens) < 2 or tokens[0].text != "(" or tokens[-1].text != ")":
        return False
    depth = 0
    for k, tok in enumerate(tokens):
        if tok.kind == "open":
            depth += 1
        elif tok.kind == "close":
            depth -= 1
            if depth == 0 and k != len(tokens) - 1:
                return False
    return True
