"""Plain tables (a header and rows of strings) as Markdown, LaTeX and HTML.

Written here rather than through pandas, whose ``to_markdown`` needs ``tabulate`` and whose
``Styler.to_latex`` needs ``jinja2``: these tables are small and their layout is fixed.
"""

from __future__ import annotations

import html

import numpy as np


def fmt(x, digits: int = 4) -> str:
    """A number with ``digits`` decimals; empty for None, ``NaN`` for a missing number."""
    if x is None:
        return ""
    if isinstance(x, str):
        return x
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}" if abs(int(x)) >= 10_000 else str(int(x))
    x = float(x)
    if not np.isfinite(x):
        return "NaN" if np.isnan(x) else ("Inf" if x > 0 else "-Inf")
    return f"{x:.{digits}f}"


def markdown(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A GitHub-flavoured Markdown table; ``align`` is one of ``l``/``r`` per column."""
    align = align or "l" + "r" * (len(header) - 1)
    esc = [[_md(c) for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in esc) for i in range(len(header))]
    widths = [max(w, 3) for w in widths]

    def line(cells):
        out = [
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(cells, widths, align, strict=True)
        ]
        return "| " + " | ".join(out) + " |"

    rule = ["-" * (w - 1) + (":" if a == "r" else "-") for w, a in zip(widths, align, strict=True)]
    return "\n".join([line(esc[0]), "| " + " | ".join(rule) + " |", *[line(r) for r in esc[1:]]])


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


_LATEX = {
    "\\": r"\textbackslash{}", "_": r"\_", "#": r"\#", "%": r"\%", "&": r"\&", "$": r"\$",
    "{": r"\{", "}": r"\}", "^": r"\^{}", "~": r"\~{}",
}


def latex_escape(text: str) -> str:
    """Text with LaTeX's special characters escaped."""
    return "".join(_LATEX.get(c, c) for c in str(text))


def latex(
    header: list[str],
    rows: list[list[str]],
    align: str | None = None,
    rules_after: tuple[int, ...] = (),
    caption: str | None = None,
) -> str:
    """A ``tabular`` (booktabs rules) inside a ``table``; ``rules_after`` adds midrules."""
    align = align or "l" + "r" * (len(header) - 1)
    out = ["\\begin{table}[htbp]", "\\centering"]
    if caption:
        out.append(f"\\caption{{{latex_escape(caption)}}}")
    out += [f"\\begin{{tabular}}{{{align}}}", "\\toprule"]
    out.append(" & ".join(latex_escape(h) for h in header) + " \\\\")
    out.append("\\midrule")
    for i, r in enumerate(rows):
        out.append(" & ".join(latex_escape(c) for c in r) + " \\\\")
        if i in rules_after and i != len(rows) - 1:
            out.append("\\midrule")
    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(out)


def html_table(
    header: list[str],
    rows: list[list[str]],
    align: str | None = None,
    rules_after: tuple[int, ...] = (),
    caption: str | None = None,
    css_class: str = "hlm-table",
) -> str:
    """An HTML ``<table>`` (text escaped); ``rules_after`` marks rows followed by a rule."""
    align = align or "l" + "r" * (len(header) - 1)
    side = {"l": "left", "r": "right", "c": "center"}
    out = [f'<table class="{css_class}">']
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    cells = "".join(
        f'<th style="text-align:{side[a]}">{html.escape(str(h))}</th>'
        for h, a in zip(header, align, strict=True)
    )
    out.append(f"<thead><tr>{cells}</tr></thead><tbody>")
    for i, r in enumerate(rows):
        cls = ' class="rule"' if i in rules_after else ""
        cells = "".join(
            f'<td style="text-align:{side[a]}">{html.escape(str(c))}</td>'
            for c, a in zip(r, align, strict=True)
        )
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)
