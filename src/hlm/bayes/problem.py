"""The sampling problem: a model's cross-products and its priors, as plain arrays.

The sampler works in the transformed units of the cross-products (columns of ``[X y]``
shifted and scaled, see :mod:`hlm.design.crossprod`): ``y_s = (y - c_y) / s_y`` and
``beta = s_y T beta_s + c_y e_0`` (``T`` from :func:`hlm.results.estimates.transform_matrix`),
``b = s_y b_s``, ``Sigma = s_y^2 Sigma_s``, ``sigma = s_y sigma_s``.  Priors are given in the
user's units and converted here once.  Everything in a :class:`Problem` is a NumPy array or a
number, so it pickles cheaply into the worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hlm.bayes.priors import (
    Flat,
    HalfNormal,
    HalfT,
    HuangWand,
    InverseWishart,
    LogNormal,
    Normal,
    Priors,
    SDPrior,
)
from hlm.results.estimates import transform_matrix
from hlm.results.tables import unique_group_names

#: integer codes of the standard-deviation priors in the compiled kernel
SD_HALFT, SD_HALFNORMAL, SD_LOGNORMAL = 0, 1, 2
#: integer codes of the covariance priors of a term
TERM_HUANGWAND, TERM_INVWISHART, TERM_SD_MH = 0, 1, 2


@dataclass
class SDCode:
    """A standard-deviation prior as (kind, p1, p2) in some units."""

    kind: int
    p1: float
    p2: float


def sd_code(prior: SDPrior, unit: float) -> SDCode:
    """Encode an SD prior for a quantity whose user value is ``unit`` times the sampled one."""
    if isinstance(prior, HalfT):
        return SDCode(SD_HALFT, float(prior.nu), float(prior.scale) / unit)
    if isinstance(prior, HalfNormal):
        return SDCode(SD_HALFNORMAL, float(prior.scale) / unit, 0.0)
    if isinstance(prior, LogNormal):
        return SDCode(SD_LOGNORMAL, float(prior.mu) - np.log(unit), float(prior.sigma))
    raise TypeError(f"unsupported standard-deviation prior {prior!r}")


@dataclass
class TermPrior:
    """A term's covariance prior in transformed units (and the user's prior object)."""

    kind: int
    nu: float
    A: np.ndarray  # (S,) Huang-Wand scales
    df: float
    Psi: np.ndarray  # (S, S) inverse-Wishart scale
    sd: SDCode  # scalar term with a Metropolis-Hastings SD prior
    user: object  # the resolved prior in user units
    user_A: np.ndarray | None = None


@dataclass
class FixefGroup:
    """A hierarchical prior on a group of fixed effects (user units)."""

    index: np.ndarray
    mean_kind: int  # 0 known mean, 1 normal prior on the mean
    m0: float
    s0: float
    sd: SDCode
    user: object


@dataclass
class Problem:
    """Everything a chain needs (see the module docstring for the units)."""

    # statistics
    n: int
    sum_log_w: float
    G: np.ndarray
    ZZ: list
    ZXy: list
    pairs: dict
    B: np.ndarray  # (m_acc, m): accumulation basis -> model columns
    # units
    sy: float
    cy: float
    T: np.ndarray
    icol: int  # intercept column of X, -1 without one
    # names
    fixed_names: list
    groups: list  # display names of the terms
    columns: list  # per term, its column names
    levels: list  # per term, level labels
    # priors
    fix_mean: np.ndarray  # (p,) user units
    fix_dinv: np.ndarray  # (p,) prior precision (0: flat)
    fix_groups: list
    sigma_prior: SDCode
    sigma_user: SDPrior
    terms: list
    # starting values (transformed units)
    Sigma0: list
    sigma2_0: float

    @property
    def p(self) -> int:
        """Number of fixed effects."""
        return self.B.shape[1] - 1

    @property
    def K(self) -> int:
        """Number of random-effects terms."""
        return len(self.ZZ)

    def factor(self):
        """The core's blocked factor of these statistics: ``(cov, chol)``.

        ``chol`` is a :class:`hlm.linalg.blocked.BlockedCholesky`, to be updated at a theta.
        """
        from hlm.design.covariance import CovarianceStructure
        from hlm.design.crossprod import CrossProducts
        from hlm.linalg.blocked import BlockedCholesky

        A = CrossProducts(
            n=self.n,
            sum_log_w=self.sum_log_w,
            G=self.G,
            ZZ=self.ZZ,
            ZXy=self.ZXy,
            pairs=self.pairs,
            basis=None if np.array_equal(self.B, np.eye(len(self.G))) else self.B,
        )
        cov = CovarianceStructure([zz.shape[1] for zz in self.ZZ])
        return cov, BlockedCholesky(A, cov)

    def beta_user(self, beta_s: np.ndarray) -> np.ndarray:
        """Fixed effects in user units from the transformed ones (last axis)."""
        out = self.sy * (beta_s @ self.T.T)
        if self.icol >= 0:
            out[..., self.icol] += self.cy
        return out

    def prior_precision_s(self, mean: np.ndarray, dinv: np.ndarray):
        """Prior precision and linear term of ``beta_s`` from a user-unit normal prior."""
        P = self.sy**2 * (self.T.T * dinv) @ self.T
        e = mean.copy()
        if self.icol >= 0:
            e[self.icol] -= self.cy
        return P, self.sy * (self.T.T @ (dinv * e))


def build_problem(model, priors) -> Problem:
    """Convert a :class:`hlm.LinearMixedModel` (built with ``method="ML"``) and priors."""
    pri = Priors.coerce(priors)
    A = model.A
    names = list(model.fixed_names)
    p = len(names)
    icol = names.index("(Intercept)") if "(Intercept)" in names else -1
    shift, scale = A.out_shift, A.out_scale
    sy, cy = float(scale[-1]), float(shift[-1])
    T = transform_matrix(shift[:-1], scale[:-1], None if icol < 0 else icol)
    B = np.eye(A.G.shape[0]) if A.basis is None else A.basis
    blocks = model.blocks
    groups = unique_group_names([b.group for b in blocks])
    _check_keys(pri, names, groups)
    fix_mean, fix_dinv = np.zeros(p), np.zeros(p)
    for i, name in enumerate(names):
        fp = pri.fixef_prior(name)
        if isinstance(fp, Normal):
            fix_mean[i], fix_dinv[i] = fp.mean, 1.0 / fp.sd**2
        elif not isinstance(fp, Flat):
            raise TypeError(f"the prior of fixed effect {name!r} must be Flat or Normal")
    fix_groups = _fixef_groups(pri, names)
    sigma_user = pri.sigma.resolved(sy)
    ones = 0 if A.basis is not None else max(icol, 0)
    terms = []
    for k, blk in enumerate(blocks):
        auto = _auto_scales(A.ZZ[k], A.ZXy[k], ones, A.n, sy, A.basis is None and icol < 0)
        terms.append(_term_prior(pri.ranef.get(groups[k], HuangWand()), blk, groups[k], auto, sy))
    Sigma0, sigma2_0 = _start(model)
    return Problem(
        n=int(A.n),
        sum_log_w=float(A.sum_log_w),
        G=A.G,
        ZZ=list(A.ZZ),
        ZXy=list(A.ZXy),
        pairs=dict(A.pairs),
        B=np.ascontiguousarray(B),
        sy=sy,
        cy=cy,
        T=T,
        icol=icol,
        fixed_names=names,
        groups=groups,
        columns=[list(b.columns) for b in blocks],
        levels=[np.asarray(b.levels).astype(str) for b in blocks],
        fix_mean=fix_mean,
        fix_dinv=fix_dinv,
        fix_groups=fix_groups,
        sigma_prior=sd_code(sigma_user, sy),
        sigma_user=sigma_user,
        terms=terms,
        Sigma0=Sigma0,
        sigma2_0=sigma2_0,
    )


def _check_keys(pri: Priors, names, groups) -> None:
    if isinstance(pri.fixef, dict):
        unknown = [k for k in pri.fixef if k not in names]
        if unknown:
            raise ValueError(
                f"priors given for unknown fixed effect(s) {unknown}; the model's fixed "
                f"effects are {names}"
            )
    unknown = [k for k in pri.ranef if k not in groups]
    if unknown:
        raise ValueError(
            f"covariance priors given for unknown grouping factor(s) {unknown}; the model's "
            f"terms are {groups} (as varcorr() names them)"
        )


def _fixef_groups(pri: Priors, names) -> list:
    out, seen = [], set()
    for h in pri.groups:
        missing = [nm for nm in h.names if nm not in names]
        if missing:
            raise ValueError(
                f"Hierarchical prior names unknown fixed effect(s) {missing}; the model's fixed "
                f"effects are {names}"
            )
        twice = seen.intersection(h.names)
        if twice:
            raise ValueError(f"fixed effect(s) {sorted(twice)} are in two Hierarchical groups")
        seen.update(h.names)
        idx = np.array([names.index(nm) for nm in h.names], dtype=np.int64)
        if isinstance(h.mean, Normal):
            kind, m0, s0 = 1, float(h.mean.mean), float(h.mean.sd)
        else:
            kind, m0, s0 = 0, float(h.mean), 1.0
        out.append(FixefGroup(idx, kind, m0, s0, sd_code(h.sd, 1.0), h))
    return out


def _auto_scales(ZZ, ZXy, ones, n, sy, no_ones) -> np.ndarray:
    """Automatic SD scales of a term's columns: s_y, divided by the column's SD for slopes."""
    S = ZZ.shape[1]
    sumsq = np.einsum("gii->i", ZZ) / n
    if no_ones:
        return np.full(S, sy)
    mean = ZXy[:, :, ones].sum(axis=0) / n
    var = sumsq - mean**2
    sd = np.where(var > 1e-10 * np.maximum(sumsq, 1e-300), np.sqrt(np.maximum(var, 0)), 1.0)
    return sy / sd


def _term_prior(prior, blk, group, auto, sy) -> TermPrior:
    S = blk.S
    eye = np.eye(S)
    dummy = SDCode(SD_HALFT, 1.0, 1.0)
    if isinstance(prior, HalfT):
        if S != 1:
            raise ValueError(_multi_sd_message(group, S, prior))
        prior = HuangWand(nu=prior.nu, scale=prior.scale)
    if isinstance(prior, HuangWand):
        A_user = prior.scales(S, auto)
        user = HuangWand(prior.nu, tuple(A_user))
        return TermPrior(
            TERM_HUANGWAND, float(prior.nu), A_user / sy, 0.0, eye, dummy, user, A_user
        )
    if isinstance(prior, InverseWishart):
        if prior.Psi.shape[0] != S:
            raise ValueError(
                f"InverseWishart prior for {group!r} is {prior.Psi.shape[0]}x"
                f"{prior.Psi.shape[0]} but the term has {S} columns"
            )
        return TermPrior(
            TERM_INVWISHART, 0.0, np.ones(S), float(prior.df), prior.Psi / sy**2, dummy, prior
        )
    if isinstance(prior, SDPrior):
        if S != 1:
            raise ValueError(_multi_sd_message(group, S, prior))
        user = prior.resolved(float(auto[0]))
        return TermPrior(TERM_SD_MH, 0.0, np.ones(1), 0.0, eye, sd_code(user, sy), user)
    raise TypeError(
        f"the prior for term {group!r} must be HuangWand, InverseWishart or (one column) a "
        f"standard-deviation prior, got {prior!r}"
    )


def _multi_sd_message(group, S, prior) -> str:
    return (
        f"term {group!r} has {S} columns, so it needs a prior on its covariance matrix, not "
        f"on one standard deviation ({type(prior).__name__}); use HuangWand(nu, scale) (each "
        "SD half-t(nu, scale); nu=1 gives half-Cauchy SDs) or InverseWishart(df, scale_matrix)"
    )


def _start(model):
    """ML estimates of the covariance matrices and sigma^2, in transformed units.

    The chains start from these, jittered; zero variances are lifted off the boundary.
    """
    import warnings

    from hlm.engines.profiled import minimize_bobyqa

    cov = model.cov
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = minimize_bobyqa(model.objective, cov.start(), cov.lower_bounds(), maxeval=2000)
        model.objective(opt.theta)
    sigma2 = max(model.chol.pwrss() / model.n, 1e-8)
    Sigma0 = []
    for lam in cov.lambdas(opt.theta):
        Sig = sigma2 * lam @ lam.T
        Sig = Sig + np.diag(np.maximum(1e-2 * sigma2 - np.diag(Sig), 0.0))
        Sigma0.append(Sig)
    return Sigma0, sigma2
