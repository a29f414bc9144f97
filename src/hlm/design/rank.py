"""Detect aliased fixed-effect columns from the cross-product matrix X'X."""

from __future__ import annotations

import numpy as np

#: a column is aliased when less than this fraction of its norm is outside earlier columns
#: (R's ``qr`` tolerance, which lme4 uses); the Gram matrix holds squared norms
RANK_TOL = 1e-7


def independent_columns(XtX: np.ndarray, names: list[str]) -> tuple[list[int], list[str]]:
    """Keep columns in order, dropping each that is (numerically) in the span of earlier ones.

    Works on the Gram matrix of centred and scaled columns by a Cholesky factorisation with
    the natural pivot order, as R's ``lm`` keeps the first of a set of aliased columns.

    Returns
    -------
    keep : list of int
        Indices of the kept columns.
    dropped : list of str
        Names of the dropped columns.
    """
    p = XtX.shape[0]
    keep: list[int] = []
    L = np.zeros((p, p))
    for j in range(p):
        d = XtX[j, j]
        if d <= 0:
            continue
        if keep:
            Lk = L[np.ix_(range(len(keep)), range(len(keep)))]
            v = np.linalg.solve(Lk, XtX[keep, j])
            r = d - v @ v
        else:
            v = np.zeros(0)
            r = d
        if r > RANK_TOL**2 * d:
            k = len(keep)
            L[k, :k] = v
            L[k, k] = np.sqrt(r)
            keep.append(j)
    dropped = [names[j] for j in range(p) if j not in keep]
    return keep, dropped
