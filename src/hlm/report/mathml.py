"""MathML from the small LaTeX subset hlm's equations use, for pages that render maths
without a network (MathML Core is rendered natively by current browsers).

Handled: ``\\text{...}`` (with LaTeX escapes inside), Greek letters, ``_{...}`` and
``^{...}``, ``\\,``, ``\\quad``, ``\\to``, ``\\sim``, ``\\mathcal{N}``, letters, digits and
the operators ``+ - = ( ) [ ] , ' |``.  Anything else is an error: the page must not show
maths that silently lost a piece.
"""

from __future__ import annotations

import html

_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "varepsilon": "ε", "epsilon": "ϵ",
    "theta": "θ", "lambda": "λ", "mu": "μ", "pi": "π", "sigma": "σ", "tau": "τ",
    "Sigma": "Σ", "Lambda": "Λ", "Theta": "Θ",
}
_OPS = {"to": "→", "sim": "∼", "cdot": "·", "times": "×", "top": "⊤"}
_SPACES = {",": "0.167em", "quad": "1em", "qquad": "2em", ";": "0.278em"}
_UNESCAPE = {"\\_": "_", "\\#": "#", "\\%": "%", "\\&": "&", "\\$": "$", "\\{": "{",
             "\\}": "}", "\\^{}": "^", "\\~{}": "~", "\\textbackslash{}": "\\"}


class _Parser:
    def __init__(self, tex: str):
        self.s = tex
        self.i = 0

    def error(self, what: str):
        raise ValueError(f"cannot render {what} at position {self.i} of {self.s!r} as MathML")

    def group(self) -> str:
        """The raw text inside ``{...}`` at the cursor (balanced, escapes kept)."""
        if self.s[self.i : self.i + 1] != "{":
            self.error("a missing '{'")
        depth, start = 0, self.i + 1
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\\":
                self.i += 2
                continue
            depth += c == "{"
            depth -= c == "}"
            self.i += 1
            if depth == 0:
                return self.s[start : self.i - 1]
        self.error("an unclosed '{'")

    def atoms(self, stop: str = "") -> list[str]:
        out: list[str] = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if c.isspace():
                self.i += 1
            elif c in "_^":
                self.i += 1
                if not out:
                    self.error(f"'{c}' with nothing before it")
                inner = _Parser(self.group()).row()
                tag = "msub" if c == "_" else "msup"
                out[-1] = f"<{tag}>{out[-1]}{inner}</{tag}>"
            elif c == "\\":
                out.append(self.command())
            elif c.isalpha():
                out.append(f"<mi>{html.escape(c)}</mi>")
                self.i += 1
            elif c.isdigit():
                j = self.i
                while j < len(self.s) and (self.s[j].isdigit() or self.s[j] == "."):
                    j += 1
                out.append(f"<mn>{self.s[self.i:j]}</mn>")
                self.i = j
            elif c in "+-=()[],'|<>":
                sym = {"-": "−", "'": "′"}.get(c, c)
                out.append(f"<mo>{html.escape(sym)}</mo>")
                self.i += 1
            elif c == "{":
                out.append(_Parser(self.group()).row())
            else:
                self.error(f"the character {c!r}")
        return out

    def command(self) -> str:
        self.i += 1
        if self.i < len(self.s) and not self.s[self.i].isalpha():
            c = self.s[self.i]
            self.i += 1
            if c in _SPACES:
                return f'<mspace width="{_SPACES[c]}"/>'
            self.error(f"the command '\\{c}'")
        j = self.i
        while j < len(self.s) and self.s[j].isalpha():
            j += 1
        name, self.i = self.s[self.i : j], j
        if name == "text" or name == "mathrm":
            return f"<mtext>{html.escape(unescape(self.group()))}</mtext>"
        if name == "mathcal":
            return f'<mi mathvariant="script">{html.escape(self.group())}</mi>'
        if name in _GREEK:
            return f"<mi>{_GREEK[name]}</mi>"
        if name in _OPS:
            return f"<mo>{_OPS[name]}</mo>"
        if name in _SPACES:
            return f'<mspace width="{_SPACES[name]}"/>'
        self.error(f"the command '\\{name}'")

    def row(self) -> str:
        parts = self.atoms()
        return parts[0] if len(parts) == 1 else "<mrow>" + "".join(parts) + "</mrow>"


def unescape(text: str) -> str:
    """The text of a ``\\text{...}`` argument with LaTeX escapes undone."""
    for k, v in _UNESCAPE.items():
        text = text.replace(k, v)
    return text


def latex_to_mathml(tex: str, display: str = "block") -> str:
    """A ``<math>`` element for one line of LaTeX in the subset above."""
    body = _Parser(tex).row()
    return f'<math xmlns="http://www.w3.org/1998/Math/MathML" display="{display}">{body}</math>'


def aligned_sections(block: str) -> list[tuple[str, list[str]]]:
    """``(title, [equation lines])`` from the ``aligned`` block of ``Levels.equations``.

    Each row is ``&\\text{Title:} && equation`` (title empty on continuation rows).
    """
    body = block.strip()
    body = body.removeprefix("\\begin{aligned}").removesuffix("\\end{aligned}")
    sections: list[tuple[str, list[str]]] = []
    for row in body.split("\\\\"):
        row = row.strip()
        if not row:
            continue
        head, _, eq = row.partition("&&")
        head = head.strip().lstrip("&").strip()
        title = ""
        if head.startswith("\\text{"):
            title = unescape(_Parser(head[5:]).group()).rstrip(":")
        if title or not sections:
            sections.append((title, []))
        sections[-1][1].append(eq.strip())
    return sections
