"""hlm: hierarchical linear models (linear mixed-effects models) in Python."""

from hlm import datasets, stream
from hlm.api import fit
from hlm.centering import center, group_mean
from hlm.errors import (
    ConvergenceWarning,
    DataError,
    DataWarning,
    FormulaError,
    HLMError,
    IdentifiabilityError,
    RankDeficiencyWarning,
    SingularFitWarning,
)
from hlm.inference.anova import anova
from hlm.io import load
from hlm.model import LinearMixedModel
from hlm.report.model_table import table
from hlm.results.fitted import MixedModelResult
from hlm.results.hlm_output import variance_explained
from hlm.results.ols import OLSResult, ols
from hlm.results.pooling import PoolingComparison, compare_pooling
from hlm.spec.levels import Levels
from hlm.spec.special import (
    additive_variance_components,
    ancova,
    cross_level_regression,
    intercepts_and_slopes_as_outcomes,
    means_as_outcomes,
    random_coefficients,
    random_effects_anova,
    varying_intercepts,
)

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "FormulaError",
    "HLMError",
    "IdentifiabilityError",
    "LinearMixedModel",
    "MixedModelResult",
    "RankDeficiencyWarning",
    "SingularFitWarning",
    "datasets",
    "stream",
    "fit",
    "Levels",
    "OLSResult",
    "PoolingComparison",
    "additive_variance_components",
    "anova",
    "ancova",
    "center",
    "compare_pooling",
    "cross_level_regression",
    "group_mean",
    "load",
    "table",
    "intercepts_and_slopes_as_outcomes",
    "means_as_outcomes",
    "ols",
    "random_coefficients",
    "random_effects_anova",
    "varying_intercepts",
    "variance_explained",
]
