"""Inference methods of a fitted mixed model (tests, intervals, predictions, R-squared).

Kept apart from :mod:`hlm.results.fitted` so that the result class stays a list of what a
fit holds; :class:`MixedModelResult` inherits these methods.
"""

from __future__ import annotations


class InferenceMethods:
    """Mixin: confint, wald_test, predict, simulate, r2 (see :mod:`hlm.inference`)."""
