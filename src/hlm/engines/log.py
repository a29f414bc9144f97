"""The fit log: what the optimizer did, for every engine."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class FitLog:
    """A record of one optimisation.

    Attributes
    ----------
    engine : str
        "profiled", ...
    optimizer : str
        e.g. "nlopt BOBYQA".
    evaluations : int
        Objective evaluations.
    seconds : float
        Wall time of the optimisation (not of building the model).
    converged : bool
    message : str
        The optimizer's own stop reason.
    warnings : tuple of str
        Warnings raised about this fit (convergence, singularity, dropped columns), and
        notes for the summary (e.g. predictors rescaled internally).
    iterations : int
        Iterations of an iterative engine (EM steps, Fisher-scoring steps); 0 for the
        profiled engine, whose work is counted in ``evaluations``.
    loglik_path : tuple of float
        The (restricted) log-likelihood after each iteration of the EM and Fisher-scoring
        engines (non-decreasing), empty for the profiled engine.
    fixed : tuple of tuple
        Variance components held at known values (``variance=``), as ``(grp, var1, var2)``
        keys of ``varcorr()``; empty when all are estimated.
    checks : dict or None
        The checks at the optimum (gradient, Hessian, boundary), as
        :meth:`hlm.engines.checks.FitChecks.as_dict` records them; None for engines that
        do not run them.
    """

    engine: str
    optimizer: str
    evaluations: int
    seconds: float
    converged: bool
    message: str = ""
    warnings: tuple = field(default_factory=tuple)
    iterations: int = 0
    loglik_path: tuple = field(default_factory=tuple)
    fixed: tuple = field(default_factory=tuple)
    checks: object = None

    def __getitem__(self, key):
        return getattr(self, key)


#: a diagonal element of lambda below this counts as zero for the singular-fit flag (lme4)
SINGULAR_TOL = 1e-4


def fit_notes(model, theta, nonconvergence: str | None) -> tuple[list, bool]:
    """Warnings and notes every engine reports, and the singular-fit flag.

    ``nonconvergence`` is the engine's message when it stopped without converging (None
    otherwise); it is warned as a ConvergenceWarning.  A fit is singular when a diagonal
    element of some lambda is below :data:`SINGULAR_TOL` (lme4's rule).
    """
    from hlm.errors import ConvergenceWarning, SingularFitWarning, warn

    notes = []
    if nonconvergence:
        warn(nonconvergence, ConvergenceWarning)
        notes.append(nonconvergence)
    singular = bool(np.any(np.asarray(theta)[model.cov.diagonal_mask()] < SINGULAR_TOL))
    if singular:
        msg = "boundary (singular) fit: a variance is (close to) zero or a correlation is +-1"
        warn(msg, SingularFitWarning)
        notes.append(msg)
    if model.dropped_columns:
        notes.append("dropped aliased fixed-effect columns: " + ", ".join(model.dropped_columns))
    return notes, singular
