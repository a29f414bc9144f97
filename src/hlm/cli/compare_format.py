"""The output of ``hlm compare``: text, Markdown, HTML and JSON.

Every format shows the same three parts: the models (name and formula), the
likelihood-ratio table of :func:`hlm.anova` with its notes, and :func:`hlm.table` of the
fits side by side.  The JSON layout is fixed by ``compare_result.schema.json`` in
:mod:`hlm.report` and documented in docs/cli.md.
"""

from __future__ import annotations

import html
import json
import math
from importlib.resources import files

from hlm.report import tabular

#: identifies the JSON layout; bumped when a field changes meaning
SCHEMA_ID = "hlm-compare-result/1"

_TEST_HEADER = [
    "model",
    "npar",
    "AIC",
    "BIC",
    "logLik",
    "deviance",
    "Chisq",
    "Df",
    "Pr(>Chisq)",
    "null distribution",
]


def _is_num(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def pvalue(p) -> str:
    """A p-value as text: 4 decimals, or 3 significant digits below 1e-4."""
    if not _is_num(p):
        return ""
    p = float(p)
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.3g}"


def kind(res) -> str:
    """``"mixed"`` for a fit with random effects, ``"least squares"`` otherwise."""
    return "mixed" if hasattr(res, "theta") else "least squares"


def _source(res):
    source = getattr(res, "source", None)
    if source is None and hasattr(res, "model"):
        source = getattr(res.model, "source", None)
    return source


def qualifier(res) -> str:
    """How the model was given or fitted, when the formula alone does not say it."""
    how = []
    if hasattr(_source(res), "to_text"):
        how.append("level equations")
    if kind(res) != "mixed":
        how.append("least squares, no random effects")
    return f"({'; '.join(how)})" if how else ""


def describe(res) -> str:
    """The fitted formula and its :func:`qualifier`."""
    return f"{res.formula}  {qualifier(res)}".rstrip()


def test_rows(c) -> tuple[list[str], list[list[str]]]:
    """The likelihood-ratio table as a header and rows of strings."""
    rows = []
    for name, r in c.anova.iterrows():
        first = not _is_num(r["chisq"])
        df = r["df"]
        rows.append(
            [
                str(name),
                str(int(r["npar"])),
                tabular.fmt(r["aic"], 2),
                tabular.fmt(r["bic"], 2),
                tabular.fmt(r["loglik"], 2),
                tabular.fmt(r["deviance"], 2),
                "" if first else tabular.fmt(r["chisq"], 3),
                "" if first or df is None or (df != df) else str(int(df)),
                pvalue(r["p"]),
                str(r["null"]),
            ]
        )
    return list(_TEST_HEADER), rows


def _tests_title(c) -> str:
    what = "ML deviances" if c.criterion == "ML" else "REML criteria"
    return f"Likelihood-ratio tests ({what}; each model against the one above it)"


def _table_title(c) -> str:
    methods = sorted({r.method for r in c.results})
    return f"Models side by side (as fitted: {', '.join(methods)})"


# ---------------------------------------------------------------------------- text
def plain(
    header: list[str],
    rows: list[list[str]],
    align: str | None = None,
    rules_after: tuple[int, ...] = (),
) -> str:
    """A table of strings as aligned plain text, a rule under the header and after
    the rows named in ``rules_after`` (except the last)."""
    align = align or "l" + "r" * (len(header) - 1)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(
            str(v).ljust(w) if a == "l" else str(v).rjust(w)
            for v, w, a in zip(cells, widths, align, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line(header), rule]
    for i, r in enumerate(rows):
        out.append(line(r))
        if i in rules_after and i != len(rows) - 1:
            out.append(rule)
    return "\n".join(out)


def comparison_text(c) -> str:
    """The comparison as plain text (the default output)."""
    out = ["Models:"]
    out += [f"  {name}: {describe(r)}" for name, r in zip(c.names, c.results, strict=True)]
    header, rows = test_rows(c)
    out += ["", _tests_title(c) + ":", plain(header, rows, "l" + "r" * 8 + "l")]
    notes = c.notes
    if notes:
        out += ["", "Notes:"] + [f"  - {n}" for n in notes]
    header, rows, rules = c.table.rows()
    out += ["", _table_title(c) + ":", plain(header, rows, rules_after=rules)]
    out += [c.table._note()]
    return "\n".join(out)


# ---------------------------------------------------------------------------- markdown
def comparison_markdown(c) -> str:
    """The comparison as a Markdown document."""
    out = ["# Model comparison", ""]
    out += [
        f"- **{name}**: `{r.formula}` {qualifier(r)}".rstrip()
        for name, r in zip(c.names, c.results, strict=True)
    ]
    header, rows = test_rows(c)
    out += ["", f"## {_tests_title(c)}", "", tabular.markdown(header, rows, "l" + "r" * 8 + "l")]
    if c.notes:
        out += ["", "Notes:", ""] + [f"- {n}" for n in c.notes]
    out += ["", f"## {_table_title(c)}", "", c.table.to_markdown(), ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------- html
def comparison_html(c) -> str:
    """The comparison as a self-contained HTML page (no external resources)."""
    import hlm
    from hlm.report.html_page import _CSS

    header, rows = test_rows(c)
    items = "".join(
        f"<li><strong>{html.escape(name)}</strong>: <code>{html.escape(str(r.formula))}</code> "
        f"{html.escape(qualifier(r))}</li>"
        for name, r in zip(c.names, c.results, strict=True)
    )
    body = [
        "<h1>Model comparison</h1>",
        f"<h2>Models</h2><ul>{items}</ul>",
        f"<h2>{html.escape(_tests_title(c))}</h2>",
        tabular.html_table(header, rows, "l" + "r" * 8 + "l"),
    ]
    if c.notes:
        body.append(
            '<ul class="meta">' + "".join(f"<li>{html.escape(n)}</li>" for n in c.notes) + "</ul>"
        )
    body += [f"<h2>{html.escape(_table_title(c))}</h2>", c.table.to_html()]
    body.append(f"<footer>hlm {html.escape(hlm.__version__)}</footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Model comparison</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


# ---------------------------------------------------------------------------- json
def _num(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def comparison_dict(c) -> dict:
    """The comparison as a dict of JSON types (layout: ``compare_result.schema.json``)."""
    import hlm
    from hlm.report.result_dict import result_dict

    tests = []
    for name, r in c.anova.iterrows():
        tested = _is_num(r["chisq"])
        df = r["df"]
        tests.append(
            {
                "model": str(name),
                "npar": int(r["npar"]),
                "aic": _num(r["aic"]),
                "bic": _num(r["bic"]),
                "loglik": _num(r["loglik"]),
                "deviance": _num(r["deviance"]),
                "chisq": _num(r["chisq"]) if tested else None,
                "df": int(df) if tested and df == df else None,
                "p": _num(r["p"]) if tested else None,
                "null": str(r["null"]) or None,
            }
        )
    return {
        "schema": SCHEMA_ID,
        "hlm_version": hlm.__version__,
        "criterion": c.criterion,
        "models": [
            {"name": name, "kind": kind(res), "fit": result_dict(res)}
            for name, res in zip(c.names, c.results, strict=True)
        ],
        "tests": tests,
        "notes": c.notes,
    }


def comparison_json(c, indent: int | None = 2) -> str:
    """:func:`comparison_dict` as strict JSON (no NaN)."""
    return json.dumps(comparison_dict(c), indent=indent, allow_nan=False)


def schema() -> dict:
    """The JSON schema of :func:`comparison_dict` (``compare_result.schema.json``)."""
    text = files("hlm.report").joinpath("compare_result.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


#: ``--format`` -> function of a :class:`hlm.cli.compare.Comparison`
FORMATTERS = {
    "text": comparison_text,
    "markdown": comparison_markdown,
    "html": comparison_html,
    "json": comparison_json,
}
