"""Marginal and conditional R-squared of a mixed model (Nakagawa & Schielzeth 2013).

    R2_marginal    = var_f / (var_f + var_r + sigma^2)
    R2_conditional = (var_f + var_r) / (var_f + var_r + sigma^2)

- ``var_f``: the sample variance (denominator ``n - 1``, as R's ``var``) of the fixed part
  ``x_i' beta`` over the fitted rows;
- ``var_r``: for each random-effects term, the mean over the rows of ``z_i' Sigma_k z_i``
  (Johnson 2014's extension to random slopes; for a random intercept this is its
  variance), summed over terms;
- ``sigma^2``: the residual variance.

This is what R's ``MuMIn::r.squaredGLMM`` and ``performance::r2_nakagawa`` report for
linear mixed models.  All three come from the cross-products (``sum_i x_i x_i'`` is ``X'X``,
``sum_i z_i z_i'`` is the sum over groups of ``Z_g'Z_g``), with no pass over the rows.  With
random slopes ``var_r`` depends on where the slope variables are centred, as the definition
does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def r2(result) -> pd.Series:
    """``marginal`` and ``conditional`` R-squared, and the three variance parts.

    Returns
    -------
    pandas.Series
        ``marginal, conditional, var_fixed, var_random, var_residual``.
    """
    model = result.model
    if model.weights_info is not None:
        raise NotImplementedError(
            "R-squared for models with prior weights is not defined here (the residual "
            "variance differs by row); fit without weights to compute it"
        )
    var_f = _var_fixed(result)
    var_r = 0.0
    n = model.n
    for ZZ, Sig in zip(model.A.ZZ, result._est.Sigma, strict=True):
        mean_zz = ZZ.sum(axis=0) / n  # (1/n) sum_i z_i z_i'
        var_r += float(np.sum(Sig * mean_zz))
    var_e = result.sigma**2
    total = var_f + var_r + var_e
    return pd.Series(
        {
            "marginal": var_f / total,
            "conditional": (var_f + var_r) / total,
            "var_fixed": var_f,
            "var_random": var_r,
            "var_residual": var_e,
        },
        name="r2",
    )


def _var_fixed(result) -> float:
    """Sample variance of ``X beta`` over the rows, from ``X'X`` and the column sums."""
    model = result.model
    A = model.A
    n = model.n
    from hlm.results.estimates import transform_matrix

    names = model.fixed_names
    icol = names.index("(Intercept)") if "(Intercept)" in names else None
    T = transform_matrix(A.out_shift[:-1], A.out_scale[:-1], icol)
    # beta in the scaled model columns: X beta = X_s (T^-1 beta) + const
    b_s = np.linalg.solve(T, result.fixef.to_numpy())
    G = A.model_G()[:-1, :-1]
    if A.basis is None:
        sums = A.G[icol, :-1]  # the intercept column is the ones column
    else:  # the hidden ones column comes first in the accumulation basis
        sums = (A.G[0, :] @ A.basis)[:-1]
    total = float(sums @ b_s)
    ss = float(b_s @ G @ b_s)
    return (ss - total * total / n) / (n - 1)
