"""Inference for fitted models: tests, intervals, predictions, R-squared.

The methods of :class:`hlm.MixedModelResult` (``fixef_table``, ``wald_test``, ``anova``,
``confint``, ``bootstrap``, ``predict``, ``predict_interval``, ``simulate``, ``r2``)
delegate to the modules here; :func:`anova` is also ``hlm.anova``.  See docs/inference.md.

Modules: :mod:`~hlm.inference.anova` and :mod:`~hlm.inference.boundary` (likelihood-ratio
tests and their chi-bar-square nulls), :mod:`~hlm.inference.satterthwaite` and
:mod:`~hlm.inference.kenward_roger` (denominator df), :mod:`~hlm.inference.wald` and
:mod:`~hlm.inference.type3` (t and F tests), :mod:`~hlm.inference.profile`,
:mod:`~hlm.inference.bootstrap` and :mod:`~hlm.inference.confint` (intervals),
:mod:`~hlm.inference.predict` and :mod:`~hlm.inference.simulate`, :mod:`~hlm.inference.r2`,
:mod:`~hlm.inference.lrt_simulation` (parametric-bootstrap LRT).
"""

from hlm.inference.anova import anova
from hlm.inference.bootstrap import parametric_bootstrap
from hlm.inference.confint import confint
from hlm.inference.lrt_simulation import lrt_bootstrap, simulate_lrt
from hlm.inference.predict import predict, predict_interval
from hlm.inference.r2 import r2
from hlm.inference.simulate import simulate
from hlm.inference.wald import fixef_table, wald_test

__all__ = [
    "anova",
    "confint",
    "fixef_table",
    "lrt_bootstrap",
    "parametric_bootstrap",
    "predict",
    "predict_interval",
    "r2",
    "simulate",
    "simulate_lrt",
    "wald_test",
]
