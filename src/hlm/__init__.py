"""hlm: hierarchical linear models (linear mixed-effects models) in Python."""

from hlm import datasets
from hlm.api import fit
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
from hlm.model import LinearMixedModel
from hlm.results.fitted import MixedModelResult

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
    "fit",
]
