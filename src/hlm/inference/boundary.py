"""Reference distributions of likelihood-ratio statistics when variances are tested at zero.

A variance cannot be negative, so "no random intercept" lies on the boundary of the
parameter space and the likelihood-ratio statistic is not chi-square with the usual df.
Under the null it follows a chi-bar-square distribution: a mixture of chi-square
distributions (Self & Liang 1987; Stram & Lee 1994).  What is known exactly and used here:

- one variance added, together with any covariances with effects already in the model
  (a random intercept to a model without one; a random slope and its covariance with the
  intercept to a random-intercept model): the tangent cone is a half-space, and the
  statistic is ``0.5 chi2(df - 1) + 0.5 chi2(df)``, ``df`` the number of added parameters
  (fixed effects included).  With ``df = 1`` this is ``0.5 chi2(0) + 0.5 chi2(1)``, where
  ``chi2(0)`` is a point mass at zero;
- no variance added (only fixed effects or covariances): the plain ``chi2(df)``;
- two or more variances added at once: the mixture weights depend on the information
  matrix; the plain ``chi2(df)`` is used and is conservative (its p-value is an upper
  bound), and the name says so.

A structure is the set of (grouping factor, coefficient) variances and of covariances
within terms; a model without random effects has the empty structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Reference:
    """A null distribution: its name, its survival function and a note (or "")."""

    name: str
    weights: tuple  # ((weight, df), ...)
    note: str = ""

    def sf(self, x: float) -> float:
        """``P(T >= x)`` under the null."""
        if not np.isfinite(x):
            return float("nan")
        return float(sum(w * _chi2_sf(x, k) for w, k in self.weights))


def _chi2_sf(x: float, k: int) -> float:
    if k == 0:  # a point mass at zero
        return 1.0 if x <= 0 else 0.0
    return float(stats.chi2.sf(x, k))


def structure(result) -> tuple[frozenset, frozenset]:
    """``(variances, covariances)`` of a fit's random-effects structure."""
    blocks = getattr(getattr(result, "model", None), "blocks", None) or []
    if not hasattr(result, "theta"):
        blocks = []
    var, cov = set(), set()
    for b in blocks:
        for c in b.columns:
            var.add((b.group, c))
        for i in range(b.S):
            for j in range(i + 1, b.S):
                cov.add((b.group, frozenset((b.columns[i], b.columns[j]))))
    return frozenset(var), frozenset(cov)


def reference(small, big, df: int, fixed_nested: bool) -> Reference:
    """The null distribution of the LRT statistic of ``small`` (null) within ``big``."""
    v0, c0 = structure(small)
    v1, c1 = structure(big)
    if df <= 0:
        return Reference("", (), "")
    if not (v0 <= v1 and c0 <= c1 and fixed_nested):
        return Reference(
            f"chi2({df})",
            ((1.0, df),),
            "the models do not look nested; the chi-square test assumes they are",
        )
    added = len(v1 - v0)
    if added == 0:
        return Reference(f"chi2({df})", ((1.0, df),))
    if added == 1:
        note = ""
        if getattr(small, "singular", False):
            note = (
                "the null model is itself a boundary fit; the mixture assumes its "
                "variances are positive"
            )
        return Reference(f"0.5 chi2({df - 1}) + 0.5 chi2({df})", ((0.5, df - 1), (0.5, df)), note)
    return Reference(
        f"chi2({df}) (conservative)",
        ((1.0, df),),
        f"{added} variances are tested at zero at once: the exact chi-bar-square mixture "
        "depends on the information matrix; the chi-square p-value is an upper bound",
    )
