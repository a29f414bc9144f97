"""Linear hypotheses about fixed effects written as text: ``"x1 = x2 = 0"``.

Grammar (whitespace is free):

- hypotheses are separated by ``,`` or ``;``; each is a chain ``side = side [= side ...]``
  meaning ``side_1 - side_2 = 0``, ``side_2 - side_3 = 0``, ... ; a side alone means
  ``side = 0``;
- a side is a sum of terms ``[+|-] [number [*]] name`` or ``[+|-] number``;
- a name is a fixed-effect name exactly as in ``result.fixef`` (``(Intercept)``,
  ``Sector[T.Catholic]``, ``MEANSES:cses``); the longest name that matches at a position is
  taken, and a name can be quoted in backticks to be unambiguous.

So ``"x1 = x2 = 0"`` means ``x1 = 0`` and ``x2 = 0``, ``"x1 = x2"`` is one row, and
``"2*x1 + x2 = 1"`` has right-hand side 1.

The rows are returned in reduced row echelon form (of ``[L | rhs]``): a joint hypothesis has
many equivalent matrices, and while the F statistic does not depend on which one is used,
Satterthwaite's joint denominator df (lmerTest's construction) does; the echelon form makes
the answer depend on the hypothesis only, so ``"x1 = x2 = 0"`` and ``"x1 = 0, x2 = 0"``
give the same test.
"""

from __future__ import annotations

import re

import numpy as np

_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class HypothesisError(ValueError):
    """A hypothesis string cannot be read."""


def parse_hypothesis(text: str, names: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read ``text`` into ``L beta = rhs``.

    Parameters
    ----------
    text : str
    names : list of str
        The fixed-effect names, in the order of beta.

    Returns
    -------
    L : ndarray (rows, p)
    rhs : ndarray (rows,)
    labels : list of str
        One readable ``"... = ..."`` per row.
    """
    if not isinstance(text, str) or not text.strip():
        raise HypothesisError("the hypothesis is empty; write e.g. 'x1 = x2 = 0'")
    rows, rhs, labels = [], [], []
    for piece in re.split(r"[,;]", text):
        if not piece.strip():
            continue
        sides = [s for s in piece.split("=")]
        if any(not s.strip() for s in sides):
            raise HypothesisError(f"empty side of '=' in {piece.strip()!r}")
        parsed = [_side(s, names, text) for s in sides]
        if len(parsed) == 1:
            parsed.append((np.zeros(len(names)), 0.0))
            sides.append("0")
        for (a, ca), (b, cb), sa, sb in zip(parsed, parsed[1:], sides, sides[1:], strict=False):
            row = a - b
            if not np.any(row):
                raise HypothesisError(
                    f"'{sa.strip()} = {sb.strip()}' in {text!r} does not involve any fixed effect"
                )
            rows.append(row)
            rhs.append(cb - ca)
            labels.append(f"{sa.strip()} = {sb.strip()}")
    if not rows:
        raise HypothesisError(f"no hypothesis found in {text!r}")
    L, r = np.array(rows), np.array(rhs)
    E = echelon(np.column_stack((L, r)))
    if E.shape != (len(L), L.shape[1] + 1) or not np.allclose(E, np.column_stack((L, r))):
        labels = [_label(row, c, names) for row, c in zip(E[:, :-1], E[:, -1], strict=True)]
    if np.any(np.all(E[:, :-1] == 0, axis=1)):
        raise HypothesisError(f"the hypothesis {text!r} is contradictory (0 = nonzero)")
    return E[:, :-1], E[:, -1], labels


def echelon(M: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Reduced row echelon form of ``M`` with zero rows removed (partial pivoting)."""
    A = np.array(M, dtype=float)
    rows, cols = A.shape
    r = 0
    for c in range(cols - 1):  # the last column is the right-hand side
        if r == rows:
            break
        piv = r + int(np.argmax(np.abs(A[r:, c])))
        if abs(A[piv, c]) < tol:
            continue
        A[[r, piv]] = A[[piv, r]]
        A[r] /= A[r, c]
        for i in range(rows):
            if i != r:
                A[i] -= A[i, c] * A[r]
        r += 1
    out = A[:r]
    leftover = A[r:]
    if len(leftover) and np.any(np.abs(leftover[:, -1]) > tol):
        # a row 0 = nonzero: keep it so that the caller can report the contradiction
        out = np.vstack((out, leftover[np.abs(leftover[:, -1]) > tol][:1]))
    out[np.abs(out) < tol] = 0.0
    return out


def _label(row: np.ndarray, rhs: float, names: list[str]) -> str:
    terms = []
    for v, name in zip(row, names, strict=True):
        if v == 0:
            continue
        coef = "" if v == 1 else "-" if v == -1 else f"{v:g}*"
        terms.append(f"{coef}{name}")
    text = " + ".join(terms).replace("+ -", "- ")
    return f"{text} = {rhs:g}"


def _side(side: str, names: list[str], text: str) -> tuple[np.ndarray, float]:
    """One side of an equation: coefficients of beta and a constant."""
    coef = np.zeros(len(names))
    const = 0.0
    by_length = sorted(range(len(names)), key=lambda i: -len(names[i]))
    pos, s = 0, side
    expect_term = True
    while True:
        pos = _skip(s, pos)
        if pos >= len(s):
            break
        sign = 1.0
        if s[pos] in "+-":
            sign = -1.0 if s[pos] == "-" else 1.0
            pos = _skip(s, pos + 1)
        elif not expect_term:
            raise HypothesisError(_where(s, pos, text, "expected '+' or '-'"))
        number = None
        m = _NUMBER.match(s, pos)
        name_here = _name_at(s, pos, names, by_length)
        if m and name_here is None:
            number = float(m.group())
            pos = _skip(s, m.end())
            if pos < len(s) and s[pos] == "*":
                pos = _skip(s, pos + 1)
            name_here = _name_at(s, pos, names, by_length)
            if name_here is None:
                if pos < len(s) and s[pos] not in "+-":
                    raise HypothesisError(_where(s, pos, text, _unknown(names)))
                const += sign * number
                expect_term = False
                continue
        if name_here is None:
            raise HypothesisError(_where(s, pos, text, _unknown(names)))
        index, pos = name_here
        coef[index] += sign * (1.0 if number is None else number)
        expect_term = False
    return coef, const


def _skip(s: str, pos: int) -> int:
    while pos < len(s) and s[pos].isspace():
        pos += 1
    return pos


def _name_at(s: str, pos: int, names: list[str], by_length) -> tuple[int, int] | None:
    """``(index, end)`` of the fixed-effect name at ``pos`` (longest match), or None."""
    if pos < len(s) and s[pos] == "`":
        end = s.find("`", pos + 1)
        if end < 0:
            raise HypothesisError(f"unclosed backtick in {s!r}")
        quoted = s[pos + 1 : end]
        if quoted not in names:
            raise HypothesisError(f"`{quoted}` is not a fixed effect; {_unknown(names)}")
        return names.index(quoted), end + 1
    for i in by_length:
        name = names[i]
        if s.startswith(name, pos):
            end = pos + len(name)
            # a name must not run into the next identifier character (x1 vs x10)
            if end < len(s) and (s[end].isalnum() or s[end] in "_.[") and name[-1].isalnum():
                continue
            return i, end
    return None


def _unknown(names: list[str]) -> str:
    return "expected a fixed-effect name, one of: " + ", ".join(names)


def _where(s: str, pos: int, text: str, what: str) -> str:
    return f"cannot read {s[pos:].strip()!r} in hypothesis {text!r}: {what}"
