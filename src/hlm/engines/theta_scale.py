"""theta as the optimizer sees it: in units of the spread of each random-effect column.

theta is relative to sigma but not to the columns of Z: a random slope on a predictor
measured in micro-units (spread 1e-6) has a theta near 1e6 times its size in natural units,
and one measured in giga-units a theta near 1e-9.  The optimizer's start (identity factors),
its steps and tolerances (BOBYQA's ``xtol_abs = 1e-8``), the boundary polish and the
singular-fit threshold (1e-4, lme4's) are all absolute in theta, so such a fit stops far
from the optimum or calls a real variance zero.

The fix is a change of variables that leaves the model alone: with ``s_r`` the root mean
square of column r of a term's Z, ``lambda = D^{-1} lambda~`` (``D = diag(s)``, row r of
lambda divided by ``s_r``) keeps lambda lower triangular with the same signs, so
``theta = theta~ / s_row`` element by element, the bounds (0 on the diagonal) are unchanged
and the gradient maps as ``g~ = g / s_row``.  The optimizer, the polish, the singular flag
and the convergence checks work on ``theta~``; results are reported in lme4's theta.

Columns whose spread lies within ``[1/SCALE_RATIO, SCALE_RATIO]`` (lme4's ``check.scaleX``
range, 1e3) keep ``s_r = 1``: on ordinary data nothing changes, so fits agree with lme4's
parametrisation evaluation for evaluation.
"""

from __future__ import annotations

import numpy as np

#: columns with root mean square outside [1/SCALE_RATIO, SCALE_RATIO] are rescaled
SCALE_RATIO = 1e3


def theta_factor(model) -> np.ndarray:
    """``s_row`` per theta element (``theta~ = theta * factor``); ones on ordinary data."""
    A = model.A
    n = max(float(A.n), 1.0)
    parts = []
    for k, rows in enumerate(model.cov.rows):
        zz = np.asarray(A.ZZ[k])
        rms = np.sqrt(np.einsum("gaa->a", zz) / n)
        outside = (rms > SCALE_RATIO) | (rms < 1.0 / SCALE_RATIO)
        s = np.where(outside & (rms > 0), rms, 1.0)
        parts.append(s[rows])
    return np.concatenate(parts) if parts else np.zeros(0)


class ScaledTheta:
    """A view of a model whose objective takes ``theta~`` (see the module docstring).

    Every attribute other than the objective functions is the model's own, so the view can
    be handed to code that expects a model (the optimizer, the checks).
    """

    def __init__(self, model):
        self.model = model
        self.factor = theta_factor(model)
        #: True when every column is left as it is (theta~ == theta)
        self.is_identity = bool(np.all(self.factor == 1.0))

    def __getattr__(self, name):
        return getattr(self.model, name)

    def to_theta(self, theta_s) -> np.ndarray:
        """lme4's theta from the optimizer's."""
        return np.asarray(theta_s, dtype=float) / self.factor

    def from_theta(self, theta) -> np.ndarray:
        """The optimizer's theta from lme4's."""
        return np.asarray(theta, dtype=float) * self.factor

    def start(self, theta0) -> np.ndarray:
        """The optimizer's start from a start ``theta0`` in lme4's units.

        Kept where the columns are not rescaled; identity factors (lme4's start, in units of
        the columns' spread) where they are, since a start chosen in lme4's units (clipped
        moment estimates, identity factors) means nothing there.
        """
        return np.where(self.factor == 1.0, np.asarray(theta0, dtype=float), self.cov.start())

    def objective(self, theta_s) -> float:
        """The model's criterion at ``to_theta(theta_s)``."""
        return self.model.objective(self.to_theta(theta_s))

    def objective_and_gradient(self, theta_s):
        """Criterion and its gradient with respect to ``theta_s``."""
        f, g = self.model.objective_and_gradient(self.to_theta(theta_s))
        return f, np.asarray(g, dtype=float) / self.factor
