"""Starting values of theta from moment estimates on the cross-products.

lme4 starts every fit at identity factors (theta = 1 on the diagonal).  When a variance ratio
is far from 1 (InstEval's ``dept:service`` term: 0.09) the optimizer spends most of its
evaluations travelling there.  For a scalar term with column z and groups g, the one-way
analysis of variance of the OLS residuals e gives a start in closed form:

    SSB = sum_g (z'e)_g^2 / (z'z)_g,   sigma^2 ~ (e'e - SSB) / (n - J - p),
    tau^2 ~ (SSB - J sigma^2) / sum_g (z'z)_g,   theta = sqrt(tau^2 / sigma^2)

using the cross-products only (nothing here depends on n).  Each term is estimated as if it
were alone, so crossed and nested terms get rough values; they only need to be closer than 1.
A term with several columns gets the same estimate for each column's diagonal element of
lambda (the column taken alone) and 0 off the diagonal.
"""

from __future__ import annotations

import numpy as np

#: starting values are kept in [THETA_MIN, THETA_MAX]: a start at 0 would leave a gradient
#: method on the boundary, where the criterion's gradient vanishes
THETA_MIN, THETA_MAX = 0.05, 10.0


def start_theta(model) -> np.ndarray:
    """A starting theta for ``model`` (lme4's identity start, moment estimates for scalars)."""
    cov = model.cov
    theta = cov.start()
    A = model.A
    G = A.model_G()
    p = G.shape[0] - 1
    if p > 0:
        b, *_ = np.linalg.lstsq(G[:p, :p], G[:p, p], rcond=None)
    else:
        b = np.zeros(0)
    coef = np.append(-b, 1.0)
    ee = float(coef @ G @ coef)
    for k, block in enumerate(model.blocks):
        ZXy = A.ZXy[k] if A.basis is None else A.ZXy[k] @ A.basis
        ZZ = A.ZZ[k]
        # theta position of each column's diagonal element of lambda (packed column-wise)
        diagonal = np.flatnonzero(cov.rows[k] == cov.cols[k]) + cov.slices[k].start
        for a in range(block.S):
            ratio = _one_way_ratio(ZZ[:, a, a], ZXy[:, a, :] @ coef, ee, model.n, p)
            if ratio is not None:
                theta[diagonal[a]] = ratio
    return theta


def _one_way_ratio(zz, ze, ee, n, p):
    """theta of one column z from the one-way ANOVA of the OLS residuals, or None."""
    if (zz > 0).all():  # the common case: every group has rows, no selection to make
        J = len(zz)
    else:
        ok = zz > 0
        J = int(ok.sum())
        zz, ze = zz[ok], ze[ok]
    dof = n - J - p
    if J < 2 or dof <= 0:
        return None
    ssb = float((ze**2 / zz).sum())
    sigma2 = (ee - ssb) / dof
    if not sigma2 > 0:
        return None
    tau2 = (ssb - J * sigma2) / float(zz.sum())
    # min/max as np.clip on a scalar (NaN stays NaN), without its call overhead
    ratio = float(np.sqrt(max(tau2, 0.0) / sigma2))
    return min(max(ratio, THETA_MIN), THETA_MAX)
