"""Priors for :func:`hlm.sample`, in the user's units.

Three kinds of quantity carry a prior:

* each **fixed effect** (the gammas): :class:`Flat` (the default) or :class:`Normal`, and
  optionally a :class:`Hierarchical` prior on a group of them (a further level:
  ``beta_i ~ N(mu, tau^2)`` with ``mu`` and ``tau`` themselves unknown);
* the **residual standard deviation** sigma: any standard-deviation prior;
* each random-effects **term's covariance** matrix (keyed by its grouping factor as
  ``varcorr()`` names it): :class:`HuangWand` (the default), :class:`InverseWishart`, or, for a
  term with a single column, any standard-deviation prior.

Standard-deviation priors: :class:`HalfT` and :class:`HalfCauchy` have a conjugate update
through an auxiliary variable (Huang & Wand 2013); :class:`HalfNormal` and :class:`LogNormal`
have none and are updated by Metropolis-Hastings steps whose step size adapts in warm-up.

A ``scale`` of ``None`` means "automatic": the standard deviation of the response for sigma
and for intercept-like columns, divided by the standard deviation of the column for a random
slope, so that the prior is weakly informative whatever the units of the data.

Examples
--------
>>> from hlm import priors as P
>>> pri = P.Priors(
...     fixef={"Days": P.Normal(0, 20)},
...     sigma=P.HalfT(nu=3, scale=50),
...     ranef={"Subject": P.HuangWand(nu=2, scale=[50, 10])},
... )
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats


class Prior:
    """Base class of every prior."""


# ---------------------------------------------------------------------- fixed effects
@dataclass(frozen=True)
class Flat(Prior):
    """The improper uniform prior on a fixed effect (the default; as in ML/REML)."""


@dataclass(frozen=True)
class Normal(Prior):
    """``N(mean, sd^2)`` on a fixed effect (user units)."""

    mean: float = 0.0
    sd: float = 1.0

    def __post_init__(self):
        _positive(self.sd, "Normal sd")


# ---------------------------------------------------------------------- standard deviations
class SDPrior(Prior):
    """A prior on a standard deviation (sigma, a scalar term's SD, a hierarchical tau)."""

    #: True when the update is a conjugate draw through an auxiliary variable
    conjugate = False

    def logpdf(self, s: np.ndarray, scale: float) -> np.ndarray:
        """Log density at ``s > 0`` with the resolved ``scale``."""
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    def resolved(self, auto: float) -> SDPrior:
        """A copy with ``scale=None`` replaced by ``auto``."""
        return self


@dataclass(frozen=True)
class HalfT(SDPrior):
    """Half Student-t with ``nu`` degrees of freedom and scale ``scale`` on an SD.

    Sampled conjugately: ``s^2 | a ~ IG(nu/2, nu/a)``, ``a ~ IG(1/2, 1/scale^2)``.
    """

    nu: float = 3.0
    scale: float | None = None
    conjugate = True

    def __post_init__(self):
        _positive(self.nu, "HalfT nu")
        if self.scale is not None:
            _positive(self.scale, "HalfT scale")

    def logpdf(self, s, scale=None):
        A = self.scale if scale is None else scale
        return np.log(2.0) + stats.t.logpdf(np.asarray(s) / A, self.nu) - np.log(A)

    def resolved(self, auto):
        return self if self.scale is not None else HalfT(self.nu, float(auto))


def HalfCauchy(scale: float | None = None) -> HalfT:
    """Half-Cauchy on an SD: a :class:`HalfT` with one degree of freedom (Gelman 2006)."""
    return HalfT(nu=1.0, scale=scale)


@dataclass(frozen=True)
class HalfNormal(SDPrior):
    """Half-normal with scale ``scale`` on an SD (Metropolis-Hastings update)."""

    scale: float | None = None

    def __post_init__(self):
        if self.scale is not None:
            _positive(self.scale, "HalfNormal scale")

    def logpdf(self, s, scale=None):
        A = self.scale if scale is None else scale
        return stats.halfnorm.logpdf(np.asarray(s), scale=A)

    def resolved(self, auto):
        return self if self.scale is not None else HalfNormal(float(auto))


@dataclass(frozen=True)
class LogNormal(SDPrior):
    """``log(SD) ~ N(mu, sigma^2)`` (Metropolis-Hastings update).

    ``mu`` is in log user units: ``LogNormal(np.log(20), 1)`` centres the SD at 20.
    """

    mu: float = 0.0
    sigma: float = 1.0

    def __post_init__(self):
        _positive(self.sigma, "LogNormal sigma")

    def logpdf(self, s, scale=None):
        return stats.lognorm.logpdf(np.asarray(s), s=self.sigma, scale=np.exp(self.mu))


# ---------------------------------------------------------------------- covariance matrices
@dataclass(frozen=True)
class HuangWand(Prior):
    """Huang & Wand (2013) prior on a term's covariance matrix (the default).

    ``Sigma | a ~ IW(nu + S - 1, 2 nu diag(1/a))``, ``a_k ~ IG(1/2, 1/scale_k^2)``: each
    standard deviation is marginally half-t(nu, scale_k), and with ``nu = 2`` every correlation
    is marginally uniform on (-1, 1).  It has positive density at zero variance, and is sampled
    by parameter expansion (``b_j = diag(alpha) xi_j``), which keeps the chain moving when a
    variance is near zero.

    Parameters
    ----------
    nu : float
        Degrees of freedom of the half-t marginals.
    scale : float, sequence of float or None
        Scale of each SD (one per column of the term, or one for all); None: automatic.
    """

    nu: float = 2.0
    scale: object = None

    def __post_init__(self):
        _positive(self.nu, "HuangWand nu")
        if self.scale is not None:
            for s in np.atleast_1d(np.asarray(self.scale, dtype=float)):
                _positive(s, "HuangWand scale")

    def scales(self, S: int, auto: np.ndarray) -> np.ndarray:
        """The scale of each of the S standard deviations."""
        if self.scale is None:
            return np.asarray(auto, dtype=float)
        A = np.atleast_1d(np.asarray(self.scale, dtype=float))
        if A.size == 1:
            return np.full(S, float(A[0]))
        if A.size != S:
            raise ValueError(f"HuangWand scale has {A.size} values for a term with {S} columns")
        return A

    def logpdf(self, Sigma: np.ndarray, A: np.ndarray) -> float:
        """Log density of the covariance matrix (the auxiliary variables integrated out)."""
        S = Sigma.shape[0]
        nu = self.nu
        d = nu + S - 1
        Sinv_diag = np.diag(np.linalg.inv(Sigma))
        _, logdet = np.linalg.slogdet(Sigma)
        out = -0.5 * d * S * np.log(2.0) - special.multigammaln(0.5 * d, S)
        out += -0.5 * (d + S + 1) * logdet
        out += np.sum(
            0.5 * d * np.log(2.0 * nu)
            - np.log(A)
            - special.gammaln(0.5)
            + special.gammaln(0.5 * (nu + S))
            - 0.5 * (nu + S) * np.log(nu * Sinv_diag + 1.0 / A**2)
        )
        return float(out)


@dataclass(frozen=True)
class InverseWishart(Prior):
    """``Sigma ~ IW(df, scale_matrix)`` on a term's covariance matrix (conjugate update).

    A plain inverse-Wishart mixes slowly when a variance is near zero; prefer
    :class:`HuangWand` unless this prior is what you mean.
    """

    df: float
    scale_matrix: object

    def __post_init__(self):
        Psi = np.atleast_2d(np.asarray(self.scale_matrix, dtype=float))
        if Psi.shape[0] != Psi.shape[1] or np.any(np.linalg.eigvalsh(Psi) <= 0):
            raise ValueError("InverseWishart scale_matrix must be symmetric positive definite")
        if self.df <= Psi.shape[0] - 1:
            raise ValueError(
                f"InverseWishart df must exceed S - 1 = {Psi.shape[0] - 1}, got {self.df}"
            )

    @property
    def Psi(self) -> np.ndarray:
        """The scale matrix as a 2-d array."""
        return np.atleast_2d(np.asarray(self.scale_matrix, dtype=float))

    def logpdf(self, Sigma: np.ndarray) -> float:
        """Log density of the covariance matrix."""
        if Sigma.shape[0] == 1:
            return float(
                stats.invgamma.logpdf(Sigma[0, 0], 0.5 * self.df, scale=0.5 * self.Psi[0, 0])
            )
        return float(stats.invwishart.logpdf(Sigma, df=self.df, scale=self.Psi))


# ---------------------------------------------------------------------- a further level
@dataclass(frozen=True)
class Hierarchical(Prior):
    """A normal prior shared by a group of fixed effects: ``beta_i ~ N(mu, tau^2)``.

    Plays the role of a further level: the coefficients in ``names`` are exchangeable draws
    around a common mean ``mu`` with an unknown spread ``tau``.

    Parameters
    ----------
    names : sequence of str
        Fixed-effect names (as in ``fixef``).
    mean : float or Normal
        A known common mean, or a normal prior on it.
    sd : SDPrior
        Prior on ``tau``.
    """

    names: tuple
    mean: object = 0.0
    sd: SDPrior = field(default_factory=lambda: HalfCauchy(1.0))

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(self.names))
        if len(self.names) < 2:
            raise ValueError("a Hierarchical prior needs at least two fixed effects")
        if not isinstance(self.mean, (Normal, int, float)):
            raise TypeError("Hierarchical mean must be a number or hlm.priors.Normal")
        if not isinstance(self.sd, SDPrior):
            raise TypeError("Hierarchical sd must be a standard-deviation prior (e.g. HalfT)")
        if isinstance(self.sd, (HalfT, HalfNormal)) and self.sd.scale is None:
            raise ValueError("Hierarchical sd needs an explicit scale (user units)")


# ---------------------------------------------------------------------- the whole set
@dataclass(frozen=True)
class Priors:
    """All the priors of a model.

    Parameters
    ----------
    fixef : Prior or dict
        One prior (:class:`Flat` or :class:`Normal`) for every fixed effect, or a dict
        ``name -> prior`` (names not listed get :class:`Flat`).
    sigma : SDPrior
        Prior on the residual SD; default ``HalfT(nu=3, scale=None)``.
    ranef : dict
        Grouping factor (as ``varcorr()`` names it) -> covariance prior; terms not listed get
        ``HuangWand(nu=2, scale=None)``.
    groups : sequence of Hierarchical
        Hierarchical priors on groups of fixed effects (these override ``fixef`` for their
        members).
    """

    fixef: object = field(default_factory=Flat)
    sigma: SDPrior = field(default_factory=HalfT)
    ranef: dict = field(default_factory=dict)
    groups: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "groups", tuple(self.groups))
        if not isinstance(self.sigma, SDPrior):
            raise TypeError("the prior on sigma must be a standard-deviation prior (e.g. HalfT)")

    @classmethod
    def coerce(cls, priors) -> Priors:
        """Accept None, a :class:`Priors`, or a dict with the same keys."""
        if priors is None:
            return cls()
        if isinstance(priors, Priors):
            return priors
        if isinstance(priors, dict):
            unknown = set(priors) - {"fixef", "sigma", "ranef", "groups"}
            if unknown:
                raise ValueError(
                    f"unknown prior key(s) {sorted(unknown)}; use 'fixef', 'sigma', 'ranef' "
                    "(grouping factor -> covariance prior) and 'groups' (Hierarchical priors)"
                )
            return cls(**priors)
        raise TypeError("priors must be None, hlm.priors.Priors or a dict")

    def fixef_prior(self, name: str) -> Prior:
        """The prior given to the fixed effect ``name`` (before hierarchical groups)."""
        if isinstance(self.fixef, dict):
            return self.fixef.get(name, Flat())
        return self.fixef


def _positive(x, what: str) -> None:
    if not (np.isfinite(x) and x > 0):
        raise ValueError(f"{what} must be positive and finite, got {x!r}")
