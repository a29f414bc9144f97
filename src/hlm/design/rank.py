"""Detect aliased fixed-effect columns from the cross-product matrix X'X."""

from __future__ import annotations

import numpy as np

from hlm.errors import DataError, IdentifiabilityError

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
    if p and _clearly_full_rank(XtX):
        return list(range(p)), []
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


#: the one-shot Cholesky factor answers "every column kept" only when every column keeps
#: this much more than RANK_TOL**2 of its squared norm, far from the threshold, so that its
#: rounding (not that of the column-by-column factorisation below) cannot change the answer
_CLEAR_MARGIN = 100.0


def _clearly_full_rank(XtX: np.ndarray) -> bool:
    """True when one Cholesky factorisation shows no column near the span of earlier ones.

    The common case costs one LAPACK call instead of a solve per column; anything doubtful
    (a failed factorisation, a column within a factor ``_CLEAR_MARGIN`` of the tolerance)
    is left to the column-by-column rule.
    """
    d = np.diagonal(XtX)
    if not (d > 0).all():
        return False
    try:
        L = np.linalg.cholesky(XtX)
    except np.linalg.LinAlgError:
        return False
    r = np.diagonal(L) ** 2
    return bool((r > _CLEAR_MARGIN * RANK_TOL**2 * d).all())


def check_response(G: np.ndarray, names: list[str], response: str) -> None:
    """Refuse a response that the fixed effects reproduce exactly (e.g. a constant one).

    Then the residual sum of squares is zero at every theta: the profiled criterion is not
    defined (log 0) and no variance can be estimated.

    Parameters
    ----------
    G : ndarray (p + 1, p + 1)
        ``[X y]'[X y]`` in the model's (transformed) columns, X of full column rank.
    names : list of str
        Names of the p columns of X.
    response : str
        The response, for the message.
    """
    keep, _ = independent_columns(G, list(names) + [response])
    if len(names) in keep:
        return
    if "(Intercept)" in names:
        both = [names.index("(Intercept)"), len(names)]
        if len(independent_columns(G[np.ix_(both, both)], ["1", response])[0]) < 2:
            raise DataError(
                f"the response {response!r} is constant: there is no variation to model; "
                "check the response column (and rows dropped for missing values)"
            )
    raise DataError(
        f"the response {response!r} is an exact linear function of the fixed effects "
        f"({', '.join(names)}): the residual variance would be zero; check that the response "
        "is not also a predictor (or computed from them)"
    )


def aliased_random_columns(A, blocks, p: int) -> None:
    """Refuse random-effect columns that lie wholly in the span of the fixed-effect columns.

    If every group's column ``z_a`` of a term is a linear combination of the columns of X
    (for example ``y ~ g + (1 | g)`` with ``g`` a factor), X beta absorbs those random
    effects: the REML criterion does not depend on their variance and ML puts it at zero,
    whatever the data.  The test is on the cross-products: the residual sum of squares of
    the indicator-weighted columns after projection on X, ``tr(Z_a'Z_a) - ||L^{-1} X'Z_a||^2``
    with ``X'X = L L'``, relative to ``tr(Z_a'Z_a)``.

    Parameters
    ----------
    A : CrossProducts
        After dropping aliased fixed-effect columns (X'X positive definite).
    blocks : list of RandomBlock
        In the order of ``A.ZZ``.
    p : int
        Number of fixed-effect columns.
    """
    if p == 0:
        return
    XtX = A.model_G()[:p, :p]
    L = np.linalg.cholesky(XtX)
    for k, block in enumerate(blocks):
        ZXy = A.ZXy[k] if A.basis is None else A.ZXy[k] @ A.basis
        J, S = ZXy.shape[:2]
        # every column of the term at once: W[:, g * S + a] = L^{-1} X' z_a (group g)
        W = np.linalg.solve(L, ZXy[:, :, :p].reshape(J * S, p).T)
        inside = (W * W).sum(axis=0).reshape(J, S).sum(axis=0)  # ||L^{-1} X'Z_a||^2
        totals = np.einsum("jaa->a", A.ZZ[k])
        for a, column in enumerate(block.columns):
            total = float(totals[a])
            residual = total - float(inside[a])
            if total > 0 and residual <= ALIAS_TOL * total:
                raise IdentifiabilityError(
                    f"the random effects {column!r} of term {block.term.source!r} are linear "
                    f"combinations of fixed-effect columns (is {block.group!r} also in the "
                    "fixed part, as a factor?): their variance cannot be estimated; remove "
                    f"{block.group!r} from the fixed part or drop the term"
                )


#: a random-effect column counts as inside the span of X when less than this fraction of its
#: squared norm lies outside it (the squared RANK_TOL rule would be 1e-14; rounding in the
#: cross-products of 0/1 indicator columns stays far below 1e-10)
ALIAS_TOL = 1e-10
