"""The mixed-model equation of a fitted formula model, in LaTeX (for the HTML page).

``y_i = beta_0 + beta_1 x_1i + ... + b_{0,g[i]} + b_{1,g[i]} z_1i + ... + e_i`` with the
fixed-effect columns as fitted (formulaic's names) and one ``b`` per random-effect column
of each term, and the distributions of the random parts.
"""

from __future__ import annotations

from hlm.report.tabular import latex_escape


def _text(name: str) -> str:
    return "\\text{" + latex_escape(name) + "}"


def mixed_equation_lines(result, per_line: int = 4) -> list[tuple[str, list[str]]]:
    """``(title, [LaTeX lines])`` sections: the equation, the distributions, the names."""
    model = result.model
    y = _text(model.spec.response) + "_{i}"
    terms = []
    for k, name in enumerate(result.fixef.index):
        beta = f"\\beta_{{{k}}}"
        terms.append(beta if name == "(Intercept)" else f"{beta}\\,{_text(name)}_{{i}}")
    dists = []
    letters = "bcdfghkmnpqstvw"
    for t, blk in enumerate(model.blocks):
        b = letters[t % len(letters)] if len(model.blocks) > 1 else "b"
        g = _text(blk.group)
        idx = f"{g}[i]"
        comps = []
        for s, col in enumerate(blk.columns):
            sym = f"{b}_{{{s},{idx}}}"
            terms.append(sym if col == "(Intercept)" else f"{sym}\\,{_text(col)}_{{i}}")
            comps.append(f"{b}_{{{s},j}}")
        vec = comps[0] if len(comps) == 1 else "(" + ",".join(comps) + ")'"
        cov = f"\\Sigma_{{{t + 1}}}" if len(comps) > 1 else f"\\tau_{{{t + 1}}}^{{2}}"
        note = _text(f"for each level j of {blk.group} ({blk.J} levels)")
        dists.append(f"{vec} \\sim \\mathcal{{N}}(0,{cov})\\quad {note}")
    terms.append("\\varepsilon_{i}")
    lines = []
    for start in range(0, len(terms), per_line):
        chunk = " + ".join(terms[start : start + per_line])
        lines.append(f"{y} = {chunk}" if start == 0 else f"\\quad + {chunk}")
    dists.append("\\varepsilon_{i} \\sim \\mathcal{N}(0,\\sigma^{2})")
    names = [f"\\beta_{{{k}}} \\to {_text(n)}" for k, n in enumerate(result.fixef.index)]
    return [("Mixed model", lines), ("Random parts", dists), ("Fixed effects", names)]
