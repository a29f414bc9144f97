"""Numerical first and second derivatives by central differences with Richardson extrapolation.

The profiled criterion is smooth (analytic) in theta, so central differences at a sequence
of halved steps, extrapolated to step zero (Richardson), give derivatives to about eight or
more significant digits from a few dozen evaluations.  The steps follow R's ``numDeriv``
(``d = 0.1`` relative, ``1e-4`` absolute at zero, four halvings), which lmerTest uses for
the same quantities; using the same scheme keeps the two programs' answers close.
"""

from __future__ import annotations

import numpy as np

#: relative first step, absolute step at zero, values counted as zero, number of halvings
REL_STEP, ZERO_STEP, ZERO_TOL, LEVELS = 0.1, 1e-4, 1.8e-5, 4


def _extrapolate(tables: list[np.ndarray]) -> np.ndarray:
    """Richardson extrapolation of estimates at steps h, h/2, h/4, ... (error in h^2)."""
    current = list(tables)
    for m in range(1, len(current)):
        factor = 4.0**m
        current = [
            (factor * current[i + 1] - current[i]) / (factor - 1.0) for i in range(len(current) - 1)
        ]
    return current[0]


def derivatives(f, x, *, hessian: bool = True):
    """Value, gradient and (optionally) Hessian of a vector-valued function.

    Parameters
    ----------
    f : callable
        ``f(x) -> array (m,)``; a non-finite value anywhere makes the result non-finite.
    x : array-like (k,)
    hessian : bool
        Also compute second derivatives (``2k + 2k(k-1)`` evaluations per step level
        instead of ``2k``).

    Returns
    -------
    value : ndarray (m,)
    gradient : ndarray (m, k)
    hess : ndarray (m, k, k) or None
    """
    x = np.asarray(x, dtype=float)
    k = x.size
    f0 = np.atleast_1d(np.asarray(f(x), dtype=float))
    h0 = np.where(np.abs(x) < ZERO_TOL, ZERO_STEP, REL_STEP * np.abs(x))
    grads, hessians = [], []
    for level in range(LEVELS):
        h = h0 / 2.0**level
        plus, minus = [], []
        for i in range(k):
            e = np.zeros(k)
            e[i] = h[i]
            plus.append(np.atleast_1d(f(x + e)))
            minus.append(np.atleast_1d(f(x - e)))
        g = np.stack([(plus[i] - minus[i]) / (2.0 * h[i]) for i in range(k)], axis=-1)
        grads.append(g)
        if not hessian:
            continue
        H = np.empty(f0.shape + (k, k))
        for i in range(k):
            H[..., i, i] = (plus[i] - 2.0 * f0 + minus[i]) / (h[i] * h[i])
            for j in range(i + 1, k):
                ei, ej = np.zeros(k), np.zeros(k)
                ei[i], ej[j] = h[i], h[j]
                d = (
                    np.atleast_1d(f(x + ei + ej))
                    - np.atleast_1d(f(x + ei - ej))
                    - np.atleast_1d(f(x - ei + ej))
                    + np.atleast_1d(f(x - ei - ej))
                ) / (4.0 * h[i] * h[j])
                H[..., i, j] = H[..., j, i] = d
        hessians.append(H)
    return f0, _extrapolate(grads), (_extrapolate(hessians) if hessian else None)
