"""``hlm.table(result1, result2, ...)``: models side by side, as in a paper.

Rows: the fixed effects (estimate, with its standard error or confidence interval beneath
or beside it), the variance components (standard deviations, or variances), and the fit
statistics (observations, groups, log-likelihood, AIC, BIC).  One column per model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hlm.report import tabular


class ModelTable:
    """Several fitted models side by side.

    Build it with :func:`table`.  ``frame`` holds the numbers (a DataFrame indexed by
    ``(section, term, statistic)``, one column per model); :meth:`to_markdown`,
    :meth:`to_latex` and :meth:`to_html` format them; ``str()`` is the Markdown.

    Attributes
    ----------
    frame : pandas.DataFrame
    names : list of str
    """

    def __init__(self, results, names, intervals, level, variances, digits):
        self.names = list(names)
        self.intervals = intervals
        self.level = level
        self.variances = variances
        self.digits = digits
        self.frame = _frame(results, self.names, level, variances)

    # ------------------------------------------------------------------ layout
    def rows(self) -> tuple[list[str], list[list[str]], tuple[int, ...]]:
        """Header, rows of strings, and the rows after which a section ends."""
        f, d = self.frame, self.digits
        header = [""] + self.names
        rows: list[list[str]] = []
        rules = []
        for section in ("Fixed effects", "Variance components", "Fit"):
            part = f.xs(section, level="section")
            terms = list(dict.fromkeys(part.index.get_level_values("term")))
            for term in terms:
                sub = part.xs(term, level="term")
                if section == "Fixed effects":
                    est = sub.loc["estimate"]
                    rows.append([term] + [tabular.fmt(v, d) if _ok(v) else "" for v in est])
                    if self.intervals:
                        lo, hi = sub.loc["lower"], sub.loc["upper"]
                        rows.append([""] + [
                            f"[{tabular.fmt(a, d)}, {tabular.fmt(b, d)}]" if _ok(a) else ""
                            for a, b in zip(lo, hi, strict=True)
                        ])
                    else:
                        rows.append([""] + [
                            f"({tabular.fmt(v, d)})" if _ok(v) else "" for v in sub.loc["se"]
                        ])
                else:
                    stat = sub.index[0]
                    vals = sub.loc[stat]
                    integer = section == "Fit" and term.startswith(("Observations", "Groups"))
                    rows.append([term] + [
                        (tabular.fmt(int(v)) if integer else tabular.fmt(v, d)) if _ok(v) else ""
                        for v in vals
                    ])
            rules.append(len(rows) - 1)
        return header, rows, tuple(rules)

    def _note(self) -> str:
        what = (f"{self.level:.0%} Wald confidence intervals in brackets" if self.intervals
                else "standard errors in parentheses")
        vc = "variances" if self.variances else "standard deviations (correlations as corr)"
        return f"Estimates with {what}; variance components as {vc}."

    # ------------------------------------------------------------------ formats
    def to_markdown(self) -> str:
        """A Markdown table with a note on what the numbers are."""
        header, rows, _ = self.rows()
        return tabular.markdown(header, rows) + "\n\n" + self._note()

    def to_latex(self, caption: str | None = None) -> str:
        """A LaTeX ``table`` with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``)."""
        header, rows, rules = self.rows()
        body = tabular.latex(header, rows, rules_after=rules, caption=caption)
        return body.replace("\\end{tabular}", "\\end{tabular}\n\\par\\footnotesize "
                            + tabular.latex_escape(self._note()))

    def to_html(self, caption: str | None = None) -> str:
        """An HTML table (inline-styled rules), with the note beneath."""
        header, rows, rules = self.rows()
        return tabular.html_table(header, rows, rules_after=rules, caption=caption) + (
            f"<p><small>{self._note()}</small></p>"
        )

    def to_frame(self) -> pd.DataFrame:
        """The numbers (a copy of ``frame``)."""
        return self.frame.copy()

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        return f"<ModelTable of {len(self.names)} models>\n{self.to_markdown()}"


def _ok(v) -> bool:
    return v is not None and not (isinstance(v, float) and np.isnan(v))


def _components(res, variances: bool) -> dict:
    out = {}
    if hasattr(res, "varcorr"):
        for r in res.varcorr().itertuples(index=False):
            if r.grp == "Residual":
                continue
            if isinstance(r.var2, str):
                out[f"{r.grp}: corr({r.var1}, {r.var2})"] = float(r.sdcor)
            else:
                out[f"{r.grp}: {r.var1}"] = float(r.vcov if variances else r.sdcor)
    out["Residual"] = float(res.sigma**2 if variances else res.sigma)
    return out


def _frame(results, names, level, variances) -> pd.DataFrame:
    import scipy.stats

    z = scipy.stats.norm.ppf(0.5 + level / 2)
    records: dict = {}
    for name, res in zip(names, results, strict=True):
        col = {}
        for term in res.fixef.index:
            est, se = float(res.fixef[term]), float(res.fixef_se[term])
            col[("Fixed effects", term, "estimate")] = est
            col[("Fixed effects", term, "se")] = se
            col[("Fixed effects", term, "lower")] = est - z * se
            col[("Fixed effects", term, "upper")] = est + z * se
        stat = "variance" if variances else "sd"
        for term, v in _components(res, variances).items():
            col[("Variance components", term, "corr" if "corr(" in term else stat)] = v
        col[("Fit", "Observations", "value")] = float(res.nobs)
        for g, k in getattr(res, "ngroups", {}).items():
            col[("Fit", f"Groups: {g}", "value")] = float(k)
        col[("Fit", "Log-likelihood", "value")] = float(res.loglik)
        col[("Fit", "AIC", "value")] = float(res.aic)
        col[("Fit", "BIC", "value")] = float(res.bic)
        col[("Fit", "Method", "value")] = res.method
        records[name] = col
    frame = pd.DataFrame(records)
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["section", "term", "statistic"])
    order = {"Fixed effects": 0, "Variance components": 1, "Fit": 2}
    # by section, the residual last among the variance components, the group counts
    # beside the observations (a model without groups may come first), else first appearance
    keys = [
        (order[s], t == "Residual", s == "Fit" and not t.startswith(("Observations", "Groups")),
         i)
        for i, (s, t, _) in enumerate(frame.index)
    ]
    return frame.iloc[sorted(range(len(keys)), key=lambda i: keys[i])]


def table(*results, names=None, intervals: bool = False, level: float = 0.95,
          variances: bool = False, digits: int = 3) -> ModelTable:
    """Fitted models side by side, as in a paper.

    Parameters
    ----------
    *results : MixedModelResult or OLSResult
        Any number of fits (different formulas are fine: a term a model lacks is blank).
    names : list of str, optional
        Column headings (default ``"(1)"``, ``"(2)"``, ...).
    intervals : bool
        Wald confidence intervals ``estimate +- z se`` instead of standard errors.
    level : float
        Coverage of the intervals.
    variances : bool
        Variance components as variances instead of standard deviations.
    digits : int
        Decimals shown.

    Returns
    -------
    ModelTable
        ``.to_markdown()``, ``.to_latex()``, ``.to_html()``, ``.frame`` (a DataFrame).
    """
    if not results:
        raise ValueError("hlm.table needs at least one fitted model")
    if names is None:
        names = [f"({i + 1})" for i in range(len(results))]
    if len(names) != len(results):
        raise ValueError(f"{len(names)} names for {len(results)} models")
    return ModelTable(results, names, intervals, level, variances, digits)
