"""A fitted model as a self-contained HTML page (``result.to_html()``, ``hlm report``).

One file with no external resources: CSS inline, plots as base64 PNG, maths as MathML
(rendered natively by current browsers, no script and no network).  The notebook display
(``_repr_html_``) is the tables alone.
"""

from __future__ import annotations

import base64
import html
import io

from hlm.errors import HLMError
from hlm.report import sections
from hlm.report.mathml import aligned_sections, latex_to_mathml
from hlm.report.tabular import html_table

#: plots embedded by default, in this order (those that do not apply are noted and skipped)
DEFAULT_PLOTS = ("caterpillar", "shrinkage", "residuals", "profile")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1000px;
margin:2em auto;padding:0 1em;color:#1d1d1f;line-height:1.45}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ddd;
padding-bottom:.2em;margin-top:1.6em}
code{background:#f4f4f6;padding:.1em .3em;border-radius:3px}
.meta{color:#555}.badge{display:inline-block;padding:.05em .5em;border-radius:.8em;
font-size:.85em;margin-right:.4em;background:#e8f3ea;color:#1b5e20}
.badge.warn{background:#fdecea;color:#8a1c1c}
table.hlm-table{border-collapse:collapse;margin:.6em 0;font-variant-numeric:tabular-nums}
table.hlm-table th,table.hlm-table td{padding:.25em .8em;border-bottom:1px solid #eee}
table.hlm-table thead th{border-bottom:2px solid #999}
table.hlm-table tr.rule td{border-bottom:1px solid #999}
table.eq td{padding:.3em .8em;vertical-align:middle}
table.eq td.title{color:#555;white-space:nowrap}
math{font-size:1.1em}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}
.note{color:#8a1c1c}
footer{margin-top:3em;color:#888;font-size:.85em}
"""


def _equation_table(parts: list[tuple[str, list[str]]]) -> str:
    rows = []
    for title, lines in parts:
        for k, line in enumerate(lines):
            head = html.escape(title) if k == 0 else ""
            rows.append(
                f'<tr><td class="title">{head}</td><td>{latex_to_mathml(line, "inline")}</td></tr>'
            )
    return '<table class="eq">' + "".join(rows) + "</table>"


def model_section(result) -> str:
    """The model in level form (level-equation specs) and mixed form, as MathML."""
    from hlm.report.mixed_equation import mixed_equation_lines

    source = getattr(result.model, "source", None)
    out = ["<h2>Model</h2>", f"<p>Formula: <code>{html.escape(result.formula)}</code></p>"]
    if hasattr(source, "equations"):
        out.append("<h3>Level form and mixed form</h3>")
        out.append(_equation_table(aligned_sections(source.equations(latex=True))))
    else:
        out.append("<h3>Mixed form</h3>")
        out.append(_equation_table(mixed_equation_lines(result)))
        out.append(
            '<p class="meta">Written as an lme4 formula; give the model as level equations '
            "(<code>hlm.Levels</code>) to see it level by level.</p>"
        )
    return "\n".join(out)


def _tables(result) -> str:
    out = []
    for title, (header, rows) in (
        ("Fit", sections.fit_statistics(result)),
        ("Fixed effects", sections.fixed_effects(result)),
        ("Variance components", sections.variance_components(result)),
    ):
        align = "ll" + "r" * (len(header) - 2) if title == "Variance components" else None
        out.append(f"<h2>{title}</h2>")
        out.append(html_table(header, rows, align))
    notes = sections.notes(result)
    if notes:
        out.append("<h2>Notes</h2><ul>" + "".join(
            f'<li class="note">{html.escape(n)}</li>' for n in notes) + "</ul>")
    return "\n".join(out)


def _badges(result) -> str:
    conv = '<span class="badge">converged</span>' if result.converged else (
        '<span class="badge warn">not converged</span>')
    sing = '<span class="badge warn">singular fit</span>' if result.singular else ""
    groups = ", ".join(f"{k} {g}" for g, k in result.ngroups.items())
    return (
        f'<p class="meta">{result.method}; {result.nobs:,} observations; groups: '
        f"{html.escape(groups)}</p><p>{conv}{sing}</p>"
    )


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode("ascii")


_CAPTIONS = {
    "caterpillar": "Empirical Bayes estimates (conditional modes) with 95% intervals, sorted.",
    "shrinkage": "Each group's own OLS estimate against its empirical Bayes estimate.",
    "residuals": "Residuals at level 1 and level 2 against fitted values; normal QQ plots.",
    "profile": "Profiled criterion against each theta; dashed line: 95% cut-off.",
}


def _plots(result, kinds, progress) -> str:
    from hlm.plots import plot

    out = ["<h2>Plots</h2>"]
    for kind in kinds:
        try:
            opts = {"progress": progress} if kind == "profile" else {}
            fig = plot(result, kind, **opts)
        except (HLMError, ImportError) as exc:
            # a plot that does not apply (crossed factors, no stored rows) is named, not hidden
            out.append(f'<p class="note">{kind} plot not shown: {html.escape(str(exc))}</p>')
            continue
        out.append(
            f'<figure><img alt="{kind} plot" src="data:image/png;base64,{_png(fig)}">'
            f"<figcaption>{html.escape(_CAPTIONS.get(kind, kind))}</figcaption></figure>"
        )
    return "\n".join(out)


def html_page(result, plots=None, progress=None) -> str:
    """The whole page (see the module docstring)."""
    import hlm

    kinds = DEFAULT_PLOTS if plots is None else tuple(plots)
    title = f"Linear mixed model: {result.formula}"
    body = [
        f"<h1>{html.escape(title)}</h1>",
        _badges(result),
        model_section(result),
        _tables(result),
        _hlm_extras(result),
    ]
    if kinds:
        body.append(_plots(result, kinds, progress))
    body.append(f"<footer>hlm {html.escape(hlm.__version__)}</footer>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(b for b in body if b)
        + "\n</body></html>\n"
    )


def _hlm_extras(result) -> str:
    """ICC and average reliabilities, for nested designs with stored rows."""
    try:
        icc = result.icc()
        rel = result.reliability().mean()
    except HLMError:
        return ""
    rows = [[f"ICC at x = 0, given the predictors ({g})", f"{v:.3f}"] for g, v in icc.items()]
    rows += [[f"Average reliability ({c})", f"{v:.3f}"] for c, v in rel.items()]
    return "<h2>HLM-style statistics</h2>" + html_table(["Statistic", "Value"], rows)


def html_fragment(result) -> str:
    """The notebook display: title, badges and tables (no plots, no maths)."""
    return (
        '<div class="hlm-result"><style>'
        "table.hlm-table{border-collapse:collapse}table.hlm-table td,table.hlm-table th"
        "{padding:.2em .7em}</style>"
        f"<strong>Linear mixed model</strong> <code>{html.escape(result.formula)}</code>"
        + _badges(result)
        + _tables(result)
        + "</div>"
    )
