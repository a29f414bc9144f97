"""A fitted model as a Markdown document (``hlm fit --format markdown``)."""

from __future__ import annotations

from hlm.report import sections
from hlm.report.tabular import markdown


def result_markdown(res) -> str:
    """Formula (or level equations), fit statistics, fixed effects, variance components."""
    out = ["# Linear mixed model", "", f"Formula: `{res.formula}`", ""]
    source = getattr(res, "source", None) or getattr(getattr(res, "model", None), "source", None)
    if hasattr(source, "equations"):
        out += ["## Model", "", "```text", source.equations(), "```", ""]
    for title, part in (
        ("Fit", sections.fit_statistics(res)),
        ("Fixed effects", sections.fixed_effects(res)),
        ("Variance components", sections.variance_components(res)),
    ):
        header, rows = part
        align = "l" * (2 if title == "Variance components" else 1)
        align += "r" * (len(header) - len(align))
        out += [f"## {title}", "", markdown(header, rows, align), ""]
    notes = sections.notes(res)
    if notes:
        out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out)
