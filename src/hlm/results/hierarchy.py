"""The nested structure behind HLM-style output: levels and per-group cross-products.

HLM's outputs (reliabilities, homogeneity chi-squares, per-group OLS estimates,
cluster-robust standard errors) are defined for nested designs: rows within level-2 units,
optionally within level-3 units, and so on.  :func:`build_hierarchy` sorts a fitted model's
grouping factors into such a chain, finest first, and makes one more pass over the rows to
form, for every group ``g`` of the finest factor, the cross-products ``K_g = R_g' R_g`` of
the rows

    r = [Z_0, Z_1, ..., Z_{L-1}, X, y]

(each level's random-effect columns, the kept fixed-effect columns, the response; with
prior weights every row is multiplied by ``sqrt(w)``, which turns ``sigma^2 / w`` into
``sigma^2``).  Because the design is nested, every higher-level group is a union of finest
groups, so each output is algebra on these small matrices and nothing later has size n.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.linalg
import scipy.sparse

from hlm.errors import NestingError

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

    Build with :func:`build_hierarchy`.  Attributes: ``levels`` (finest first), ``K``
    (J_0, R, R), ``p``, ``beta``, ``sigma2``, ``fixed_names``, ``weighted``.
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


# ---------------------------------------------------------------------------- building
def nested_levels(blocks) -> list[tuple[str, list[int]]]:
    """The model's grouping factors as a nested chain, finest first.

    Returns
    -------
    list of (group, block indices)

    Raises
    ------
    NestingError
        When two grouping factors are crossed (neither nested in the other) or define the
        same groups under two names.
    """
    by_group: dict[str, list[int]] = {}
    for k, b in enumerate(blocks):
        by_group.setdefault(b.group, []).append(k)
    order = sorted(by_group, key=lambda g: -blocks[by_group[g][0]].J)
    for fine, coarse in zip(order, order[1:], strict=False):
        bf, bc = blocks[by_group[fine][0]], blocks[by_group[coarse][0]]
        parent = np.full(bf.J, -1, dtype=np.int64)
        parent[bf.codes] = bc.codes
        if not np.array_equal(parent[bf.codes], bc.codes):
            raise NestingError(
                "HLM-style output (reliability, chi-square tests, robust standard errors, "
                "OLS by group, ICC) is defined for nested designs with one grouping factor "
                f"per level; the grouping factors {fine!r} and {coarse!r} are crossed "
                f"(some {fine!r} groups span several {coarse!r} groups). Fit a nested model "
                "or use the lme4-style outputs (summary(), varcorr(), ranef())"
            )
        if bf.J == bc.J:
            raise NestingError(
                f"the grouping factors {fine!r} and {coarse!r} define the same groups; "
                "HLM-style output needs one grouping factor per level: drop one of them"
            )
    for g in order:
        cols = [c for k in by_group[g] for c in blocks[k].columns]
        if len(set(cols)) != len(cols):
            raise NestingError(
                f"the random-effects terms on {g!r} repeat a column ({', '.join(cols)}); "
                "HLM-style output needs each random coefficient once per level"
            )
    return [(g, by_group[g]) for g in order]


def build_hierarchy(result) -> Hierarchy:
    """Check that ``result``'s model is nested and form the per-group cross-products.

    One pass over the rows of ``result.model.frame.data`` in chunks (as the fit did).

    Raises
    ------
    NestingError
        For crossed grouping factors.
    """
    from hlm.model import CHUNK_ROWS

    model = result.model
    est = result._est
    chain = nested_levels(model.blocks)
    finest = model.blocks[chain[0][1][0]]
    J0 = finest.J
    df = model.frame.data
    w = df["(weights)"].to_numpy(dtype=float) if model.weights_info is not None else None
    widths = [sum(model.blocks[k].S for k in ks) for _, ks in chain]
    R = sum(widths) + model.p + 1
    K = np.zeros((J0, R, R))
    iu = np.triu_indices(R)
    for start in range(0, len(df), CHUNK_ROWS):
        chunk = df.iloc[start : start + CHUNK_ROWS]
        Xy = model.design.Xy(chunk)
        parts = [model.blocks[k].Z(chunk) for _, ks in chain for k in ks]
        r = np.hstack(parts + [Xy[:, model.keep], Xy[:, -1:]])
        if w is not None:
            r *= np.sqrt(w[start : start + CHUNK_ROWS])[:, None]
        codes = finest.codes[start : start + CHUNK_ROWS]
        for a, b in zip(*iu, strict=True):
            K[:, a, b] += np.bincount(codes, weights=r[:, a] * r[:, b], minlength=J0)
    K = np.triu(K) + np.swapaxes(np.triu(K, 1), 1, 2)
    n_rows = np.bincount(finest.codes, minlength=J0)
    levels = []
    start = 0
    for i, (group, ks) in enumerate(chain):
        blk = model.blocks[ks[0]]
        of_finest = np.empty(J0, dtype=np.int64)
        of_finest[finest.codes] = blk.codes
        parent = None
        if i + 1 < len(chain):
            up = model.blocks[chain[i + 1][1][0]]
            parent = np.empty(blk.J, dtype=np.int64)
            parent[blk.codes] = up.codes
        levels.append(
            Level(
                group=group,
                columns=[c for k in ks for c in model.blocks[k].columns],
                labels=np.asarray(blk.levels).astype(str),
                T=scipy.linalg.block_diag(*[est.Sigma[k] for k in ks]),
                b=np.hstack([est.b[k] for k in ks]),
                of_finest=of_finest,
                parent=parent,
                n_rows=np.bincount(of_finest, weights=n_rows, minlength=blk.J).astype(int),
                zslice=slice(start, start + widths[i]),
            )
        )
        start += widths[i]
    return Hierarchy(levels, K, est.beta, est.sigma**2, model.fixed_names, w is not None)
