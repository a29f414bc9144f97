"""The nested structure behind HLM-style output: levels and per-group cross-products.

HLM's outputs (reliabilities, homogeneity chi-squares, per-group OLS estimates,
cluster-robust standard errors) are defined for nested designs: rows within level-2 units,
optionally within level-3 units, and so on.  :func:`hlm.results.nesting.build_hierarchy`
sorts a fitted model's grouping factors into such a chain, finest first, and makes one more
pass over the rows to form, for every group ``g`` of the finest factor, the cross-products
``K_g = R_g' R_g`` of the rows

    r = [Z_0, Z_1, ..., Z_{L-1}, X, y]

(each level's random-effect columns, the kept fixed-effect columns, the response less any
offset; with prior weights every row is multiplied by ``sqrt(w)``, which turns
``sigma^2 / w`` into ``sigma^2``).  Because the design is nested, every higher-level group
is a union of finest groups, so each output is algebra on these small matrices and nothing
later has size n.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse

#: relative tolerance on the smallest eigenvalue of a scaled cross-product matrix below
#: which a group's own fit counts as rank deficient
RANK_TOL = 1e-10
#: 1 - (c'z)^2 / (c'c z'z) below this, in every group, means c is proportional to z there
PROPORTIONAL_TOL = 1e-9


@dataclass(frozen=True)
class Level:
    """One grouping factor of a nested model and its random coefficients.

    Attributes
    ----------
    group : str
        The grouping factor (lme4's name, e.g. ``"cask:batch"``).
    columns : list of str
        Its random coefficients: the columns of every term on this factor, in theta order.
    labels : ndarray of str, shape (J,)
    T : ndarray, shape (S, S)
        Their covariance matrix (tau); block diagonal when several terms share the factor.
    b : ndarray, shape (J, S)
        Conditional modes of the random effects.
    of_finest : ndarray of int, shape (J_0,)
        This level's group of every finest-level group.
    parent : ndarray of int, shape (J,), or None
        The next level's group of every group here (None at the top level).
    n_rows : ndarray of int, shape (J,)
        Rows per group.
    zslice : slice
        Where the level's columns sit in the row vector ``r``.
    """

    group: str
    columns: list
    labels: np.ndarray
    T: np.ndarray
    b: np.ndarray
    of_finest: np.ndarray
    parent: np.ndarray | None
    n_rows: np.ndarray
    zslice: slice

    @property
    def S(self) -> int:
        """Number of random coefficients."""
        return len(self.columns)

    @property
    def J(self) -> int:
        """Number of groups."""
        return len(self.labels)


@dataclass(frozen=True)
class OwnFit:
    """Each group's own estimate of its level's coefficients (OLS at the finest level).

    Attributes
    ----------
    usable : ndarray of bool, shape (J,)
        False where the group's own fit is impossible (too few rows, rank deficient).
    V : ndarray, shape (J, S, S)
        Error covariance of the own estimate (``sigma^2 (Z_j'Z_j)^{-1}`` at the finest
        level); NaN for unusable groups.
    d : ndarray, shape (J, S)
        Own estimate minus the model's prediction without the group's own random effect
        (the deviation the chi-square test uses); NaN for unusable groups.
    pred : ndarray, shape (J, S)
        That prediction from the fixed effects (gamma' w_j for each coefficient).
    """

    usable: np.ndarray
    V: np.ndarray
    d: np.ndarray
    pred: np.ndarray


def sum_by(codes: np.ndarray, values: np.ndarray, J: int) -> np.ndarray:
    """Sum the rows of ``values`` (any trailing shape) within each of ``J`` codes."""
    ind = scipy.sparse.csr_matrix(
        (np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(J, len(codes))
    )
    flat = values.reshape(len(codes), -1)
    return np.asarray(ind @ flat).reshape((J,) + values.shape[1:])


def full_rank(F: np.ndarray) -> np.ndarray:
    """True for each symmetric PSD matrix in a stack (J, S, S) that is numerically of full rank.

    The matrices are scaled to unit diagonal first, so that the test does not depend on the
    units of the columns.
    """
    diag = np.diagonal(F, axis1=1, axis2=2)
    ok = (diag > 0).all(axis=1)
    scale = 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0))
    Fs = F * scale[:, :, None] * scale[:, None, :]
    lam = np.linalg.eigvalsh(Fs)
    return ok & (lam[:, 0] > RANK_TOL * np.maximum(lam[:, -1], 1e-300))


class Hierarchy:
    """A fitted nested model reduced to per-group cross-products.

    Build with :func:`hlm.results.nesting.build_hierarchy`.  Attributes: ``levels``
    (finest first), ``K`` (J_0, R, R), ``p``, ``beta``, ``sigma2``, ``fixed_names``,
    ``weighted``.
    """

    def __init__(self, levels, K, beta, sigma2, fixed_names, weighted):
        self.levels: list[Level] = levels
        self.K = K
        self.beta = np.asarray(beta, dtype=float)
        self.sigma2 = float(sigma2)
        self.fixed_names = list(fixed_names)
        self.weighted = bool(weighted)
        self.p = len(self.fixed_names)
        R = K.shape[1]
        self.xslice = slice(R - self.p - 1, R - 1)
        self.yidx = R - 1
        # the result is immutable, so per-level computations are kept once made
        self._memo: dict = {}

    def gram(self, l: int) -> np.ndarray:
        """Raw (weighted) cross-products of ``r`` summed within each level-``l`` group."""
        lev = self.levels[l]
        return self.K if l == 0 else sum_by(lev.of_finest, self.K, lev.J)

    @cached_property
    def _grams(self) -> list:
        return [self.gram(l) for l in range(len(self.levels))]

    def assignment(self, l: int) -> list[list[int]]:
        """The fixed-effect columns of each level-``l`` coefficient's equation.

        Coefficient ``q`` with column ``z`` gets the fixed-effect columns ``c`` that equal
        ``w_j z`` within every group ``j`` for a group constant ``w_j``: for the intercept,
        the columns constant within groups (the level-2 predictors); for a slope ``x``, the
        column ``x`` itself and the interactions ``x:w`` / ``w:x`` with group-level ``w``
        (named so by the formula, and checked on the data).  Columns in no equation are
        level-1 effects without a random part at this level.

        Returns
        -------
        list of list of int
            Per coefficient, indices into ``fixed_names``.
        """
        if ("assignment", l) not in self._memo:
            self._memo[("assignment", l)] = self._assign(l)
        return self._memo[("assignment", l)]

    def _assign(self, l: int) -> list[list[int]]:
        lev = self.levels[l]
        Kl = self._grams[l]
        out: list[list[int]] = [[] for _ in lev.columns]
        zcols = list(range(lev.zslice.start, lev.zslice.stop))
        for c, name in enumerate(self.fixed_names):
            col = self.xslice.start + c
            parts = _name_parts(name)
            owner = None
            for q, z in enumerate(lev.columns):
                if z == name:
                    owner = q
                    break
            if owner is None:
                for q, z in enumerate(lev.columns):
                    if z != "(Intercept)" and z in parts and _proportional(Kl, zcols[q], col):
                        owner = q
                        break
            if owner is None and "(Intercept)" in lev.columns:
                q = lev.columns.index("(Intercept)")
                if _proportional(Kl, zcols[q], col):
                    owner = q
            if owner is not None:
                out[owner].append(c)
        return out

    def prediction(self, l: int) -> np.ndarray:
        """``gamma_q' w_j`` for every level-``l`` group and coefficient, shape (J, S).

        ``w_j`` is read off the group's cross-products (``c = w_j z`` in the group, so
        ``w_j = z'c / z'z``); NaN where ``z`` is zero throughout a group.
        """
        lev = self.levels[l]
        Kl = self._grams[l]
        pred = np.zeros((lev.J, lev.S))
        for q, cols in enumerate(self.assignment(l)):
            z = lev.zslice.start + q
            zz = Kl[:, z, z]
            safe = np.where(zz > 0, zz, 1.0)
            for c in cols:
                pred[:, q] += self.beta[c] * Kl[:, z, self.xslice.start + c] / safe
            pred[zz <= 0, q] = np.nan
        return pred

    def own_fit(self, l: int) -> OwnFit:
        """Every level-``l`` group's own estimate of its coefficients and its error covariance.

        At the finest level this is OLS within the group (WLS with prior weights):
        ``V_j = sigma^2 (Z_j'Z_j)^{-1}``.  At a higher level it is GLS over the group's rows
        with the covariance of the levels below (``sigma^2 I + sum Z_h T_h Z_h'``), as HLM
        does for level-3 units.  The response is the marginal residual ``y - X beta`` less
        the conditional modes of the levels above ``l`` (so that the deviation ``d`` tests
        this level's variance), and the fixed-effect prediction is added back for ``pred``.
        """
        if ("own", l) not in self._memo:
            self._memo[("own", l)] = self._own_fit(l)
        return self._memo[("own", l)]

    def _own_fit(self, l: int) -> OwnFit:
        lev = self.levels[l]
        K = self.K
        J0, R = K.shape[0], K.shape[1]
        zstop = lev.zslice.stop
        # columns [Z_0 .. Z_l, e_l] as linear combinations of r, per finest group
        M = np.zeros((J0, R, zstop + 1))
        M[:, np.arange(zstop), np.arange(zstop)] = 1.0
        M[:, self.yidx, zstop] = 1.0
        M[:, self.xslice, zstop] = -self.beta
        for up in self.levels[l + 1 :]:
            M[:, up.zslice, zstop] -= up.b[up.of_finest]
        F = np.einsum("gri,grs,gsj->gij", M, K, M, optimize=True) / self.sigma2
        for h in range(l):
            F = _woodbury_drop(F, self.levels[h].T)
            F = sum_by(self.levels[h].parent, F, self.levels[h + 1].J)
        S = lev.S
        Fzz, Fze = F[:, :S, :S], F[:, :S, S]
        usable = full_rank(Fzz)
        V = np.full((lev.J, S, S), np.nan)
        d = np.full((lev.J, S), np.nan)
        if usable.any():
            V[usable] = np.linalg.inv(Fzz[usable])
            d[usable] = np.einsum("jab,jb->ja", V[usable], Fze[usable])
        return OwnFit(usable, V, d, self.prediction(l))


def _woodbury_drop(F: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Fold the leading ``S`` columns' random effects (covariance ``T``) into the metric.

    ``F`` holds ``a' W^{-1} b`` for the columns ``[Z, U]``; the result holds
    ``U' (W + Z T Z')^{-1} U = F_UU - F_UZ T (I + F_ZZ T)^{-1} F_ZU`` (Woodbury written
    without ``T^{-1}``, so a zero variance is fine).
    """
    S = T.shape[0]
    Fzz, Fzu, Fuu = F[:, :S, :S], F[:, :S, S:], F[:, S:, S:]
    B = np.eye(S) + Fzz @ T
    X = np.linalg.solve(B, Fzu)
    return Fuu - np.swapaxes(Fzu, 1, 2) @ T @ X


def _name_parts(name: str) -> list[str]:
    """The factors of an interaction column name (``"MEANSES:cses"`` -> both)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(name):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == ":" and depth == 0:
            parts.append(name[start:i])
            start = i + 1
    parts.append(name[start:])
    return parts


def _proportional(K: np.ndarray, z: int, c: int) -> bool:
    """Whether column ``c`` is a multiple of column ``z`` within every group (Cauchy-Schwarz)."""
    zz, cc, zc = K[:, z, z], K[:, c, c], K[:, z, c]
    ok = np.where(cc > 0, (zz > 0) & (zc * zc >= (1.0 - PROPORTIONAL_TOL) * zz * cc), True)
    return bool(ok.all())
