"""Exceptions and warnings that speak to people.

Every error names what was wrong (the column, the term, the value) and what to do.
"""

from __future__ import annotations


class HLMError(ValueError):
    """Base class of hlm's errors about a model or its data."""


class FormulaError(HLMError):
    """The model formula (or level-equation spec) cannot be understood."""


class DataError(HLMError):
    """The data do not fit the model: missing columns, bad values, too few rows."""


class IdentifiabilityError(HLMError):
    """The variance components of the model cannot be identified from these data."""


class HLMWarning(UserWarning):
    """Base class of hlm's warnings."""


class RankDeficiencyWarning(HLMWarning):
    """Fixed-effect columns were dropped because they are aliased with earlier ones."""


class ConvergenceWarning(HLMWarning):
    """The optimizer stopped without a clear sign of convergence."""


class SingularFitWarning(HLMWarning):
    """A variance component is on the boundary (zero) or a correlation is +-1."""


class DataWarning(HLMWarning):
    """Something about the data deserves a look (dropped rows, float group labels, ...)."""


class NestingError(HLMError):
    """An output defined for nested designs was asked of a model with crossed factors."""


def warn(message: str, category: type[Warning]) -> None:
    """Issue a warning attributed to the user's code, not to the line inside hlm.

    The stack is walked to the first frame outside the hlm package, so that the warning
    points at the user's ``hlm.fit(...)`` call wherever inside hlm it was raised.
    """
    import os
    import sys
    import warnings

    here = os.path.dirname(os.path.abspath(__file__))
    level, frame = 2, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
