"""Parsing and checking a ``variance=`` specification (see :mod:`hlm.engines.known`).

The components are named as the rows of ``varcorr()``: ``(grp, var1)`` for a variance,
``(grp, var1, var2)`` for a covariance, ``"Residual"``; or given as lme4's theta (and
sigma).  :func:`parse_known` returns which elements of psi are fixed and at what.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hlm.engines.varcomp import Layout, layout, psd_cholesky, psi_from_theta, sigmas_from_psi
from hlm.errors import HLMError


class VarianceSpecError(HLMError):
    """A ``variance=`` specification that names unknown components or is ill-defined."""


@dataclass(frozen=True)
class Known:
    """Which variance components are fixed, and at what (user units).

    Attributes
    ----------
    mask : ndarray of bool
        Per element of psi (see :mod:`hlm.engines.varcomp`), True when fixed.
    values : ndarray
        The fixed values (NaN where free), user units.
    theta : ndarray or None
        Set when the specification was lme4's theta (then ``mask`` covers the random
        effects; the residual is fixed only if sigma was given too).
    """

    mask: np.ndarray
    values: np.ndarray
    theta: np.ndarray | None = None

    @property
    def complete(self) -> bool:
        """Every component is fixed: the fit is GLS."""
        return bool(self.mask.all())

    def keys(self, lay: Layout) -> tuple:
        """The fixed components as ``(grp, var1, var2)`` keys."""
        return tuple(lay.keys[a] for a in np.flatnonzero(self.mask))


# ----------------------------------------------------------------------------- parsing
def _base(name: str) -> str:
    return re.sub(r"\.\d+$", "", name)


def _same_group(spec: str, grp: str) -> bool:
    if spec == grp:
        return True
    return frozenset(spec.split(":")) in (
        frozenset(grp.split(":")),
        frozenset(_base(grp).split(":")),
    )


def _lookup(lay: Layout, key) -> int:
    """Index in psi of a ``(grp, var1[, var2])`` key or ``"Residual"``."""
    if isinstance(key, str):
        key = (key,)
    key = tuple(None if (k is None or (isinstance(k, float) and np.isnan(k))) else k for k in key)
    if key[0] == "Residual":
        if any(k is not None for k in key[1:]):
            raise VarianceSpecError(f"the residual row takes no variable names, got {key!r}")
        return lay.n - 1
    if len(key) not in (2, 3):
        raise VarianceSpecError(
            f"variance component {key!r}: give (grp, var1) for a variance, (grp, var1, var2) "
            "for a covariance, or 'Residual'"
        )
    grp, v1 = key[0], key[1]
    v2 = key[2] if len(key) == 3 else None
    hits = []
    for a, (g, a1, a2) in enumerate(lay.keys[:-1]):
        if not _same_group(str(grp), g):
            continue
        if (a1, a2) == (v1, v2) or (v2 is not None and (a1, a2) == (v2, v1)):
            hits.append(a)
    if len(hits) == 1:
        return hits[0]
    names = ", ".join(repr(k[:2] if k[2] is None else k) for k in lay.keys[:-1])
    if not hits:
        raise VarianceSpecError(
            f"variance component {key!r} is not in this model; its components are {names} "
            "and 'Residual'"
        )
    raise VarianceSpecError(
        f"variance component {key!r} matches several terms ({[lay.keys[h] for h in hits]}); "
        "name the group as varcorr() does (e.g. 'Subject.1')"
    )


def _items(known):
    """(key, value) pairs of a DataFrame or dict specification."""
    if isinstance(known, pd.DataFrame):
        need = {"grp", "var1", "var2", "vcov"}
        if not need <= set(known.columns):
            raise VarianceSpecError(
                f"a variance= DataFrame needs the columns of varcorr(): {sorted(need)}; "
                f"it has {list(known.columns)}"
            )
        return [
            ((r.grp, r.var1, r.var2), r.vcov)
            for r in known.itertuples(index=False)
            if not pd.isna(r.vcov)
        ]
    if isinstance(known, dict):
        return list(known.items())
    raise VarianceSpecError(
        "variance= takes a DataFrame in the layout of varcorr(), a dict keyed by "
        "(grp, var1[, var2]) and 'Residual', or {'theta': [...], 'sigma': s}; "
        f"got {type(known).__name__}"
    )


def parse_known(model, known) -> Known:
    """Check a ``variance=`` specification against the model and return what it fixes."""
    lay = layout(model)
    if isinstance(known, dict) and "theta" in known:
        return _parse_theta(model, lay, known)
    mask = np.zeros(lay.n, dtype=bool)
    values = np.full(lay.n, np.nan)
    for key, value in _items(known):
        a = _lookup(lay, key)
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise VarianceSpecError(
                f"variance component {key!r}: {value!r} is not a number"
            ) from None
        if not np.isfinite(v):
            raise VarianceSpecError(f"variance component {key!r} must be finite, got {value!r}")
        if mask[a] and values[a] != v:
            raise VarianceSpecError(f"variance component {lay.keys[a]!r} is given twice")
        mask[a], values[a] = True, v
    if not mask.any():
        raise VarianceSpecError("variance= names no variance component")
    _check(lay, mask, values)
    return Known(mask, values)


def _parse_theta(model, lay, known) -> Known:
    extra = set(known) - {"theta", "sigma"}
    if extra:
        raise VarianceSpecError(
            f"with 'theta', variance= takes only 'sigma'; also got {sorted(extra)}"
        )
    theta = np.atleast_1d(np.asarray(known["theta"], dtype=float))
    if theta.size != model.cov.ntheta:
        raise VarianceSpecError(
            f"theta has {theta.size} elements; this model has {model.cov.ntheta} "
            f"({', '.join(model.theta_names)})"
        )
    if not np.all(np.isfinite(theta)):
        raise VarianceSpecError("theta must be finite")
    mask = np.zeros(lay.n, dtype=bool)
    mask[:-1] = True
    values = np.full(lay.n, np.nan)
    if known.get("sigma") is not None:
        sigma = float(known["sigma"])
        if not sigma > 0:
            raise VarianceSpecError(f"sigma must be positive, got {known['sigma']!r}")
        mask[-1] = True
        values[:] = psi_from_theta(model, lay, theta, sigma * sigma)
    return Known(mask, values, theta=theta)


def _check(lay: Layout, mask: np.ndarray, values: np.ndarray) -> None:
    """Variances >= 0, residual > 0, zero variances with zero covariances, PSD terms."""
    for a in np.flatnonzero(mask):
        if lay.row[a] == lay.col[a] and values[a] < 0:
            raise VarianceSpecError(f"variance {lay.keys[a]!r} must be >= 0, got {values[a]}")
    if mask[-1] and not values[-1] > 0:
        raise VarianceSpecError(
            f"the residual variance must be positive, got {values[-1]}; a model without "
            "residual variance is not a linear mixed model"
        )
    for a in np.flatnonzero(mask):
        if lay.row[a] != lay.col[a] or values[a] != 0.0:
            continue
        k, i = lay.term[a], lay.row[a]
        for b in np.flatnonzero((lay.term == k) & (lay.row != lay.col)):
            if i not in (lay.row[b], lay.col[b]):
                continue
            if mask[b] and values[b] != 0.0:
                raise VarianceSpecError(
                    f"{lay.keys[b]!r} is fixed at {values[b]} but the variance "
                    f"{lay.keys[a]!r} is fixed at 0: a covariance with a zero variance must be 0"
                )
            mask[b], values[b] = True, 0.0  # a zero variance takes its covariances with it
    for k in range(len(lay.sizes)):
        idx = lay.of_term(k)
        if mask[idx].all():
            Sk = sigmas_from_psi(lay, np.where(mask, values, 0.0))[k]
            if psd_cholesky(Sk) is None:
                raise VarianceSpecError(
                    f"the covariance matrix given for {lay.keys[idx[0]][0]!r} is not positive "
                    f"semidefinite:\n{Sk}"
                )
        else:
            for b in idx:
                if mask[b] and lay.row[b] != lay.col[b]:
                    i, j = lay.row[b], lay.col[b]
                    vi = [a for a in idx if lay.row[a] == lay.col[a] == i][0]
                    vj = [a for a in idx if lay.row[a] == lay.col[a] == j][0]
                    if (
                        mask[vi]
                        and mask[vj]
                        and values[b] ** 2 > values[vi] * values[vj] * (1 + 1e-12)
                    ):
                        raise VarianceSpecError(
                            f"covariance {lay.keys[b]!r} = {values[b]} exceeds the product of "
                            "its standard deviations: the correlation would be beyond +-1"
                        )
