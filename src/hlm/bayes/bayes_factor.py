"""Bayes factors between models, with the BIC approximation beside them.

``BF_ab = p(y | model a) / p(y | model b)``: each log marginal likelihood comes from bridge
sampling on the variance parameters (:mod:`hlm.bayes.bridge`), or from quadrature for a
model without random effects.  The BIC approximation ``log BF_ab ~ (BIC_b - BIC_a) / 2`` uses
ML fits of the same models (:func:`hlm.fit` with ``method="ML"``, :func:`hlm.ols` without
random effects).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hlm.bayes.bridge import BridgeEstimate, log_marginal_no_ranef


@dataclass(frozen=True)
class BayesFactor:
    """A Bayes factor of model a against model b.

    Attributes
    ----------
    log_bf : float
        ``log p(y | a) - log p(y | b)``.
    se : float
        Monte Carlo standard error of ``log_bf``.
    log_ml_a, log_ml_b : BridgeEstimate
    log_bf_bic : float
        ``(BIC_b - BIC_a) / 2`` from ML fits.
    models : tuple of str
    """

    log_bf: float
    se: float
    log_ml_a: BridgeEstimate
    log_ml_b: BridgeEstimate
    log_bf_bic: float
    models: tuple

    @property
    def bf(self) -> float:
        """The Bayes factor itself."""
        return float(np.exp(self.log_bf))

    def __str__(self) -> str:
        a, b = self.models
        return (
            f"Bayes factor of {a!r} against {b!r}:\n"
            f"  log BF = {self.log_bf:.3f} (MC s.e. {self.se:.3f}), BF = {self.bf:.4g}\n"
            f"  log marginal likelihoods: {self.log_ml_a.value:.3f} ({self.log_ml_a.method}), "
            f"{self.log_ml_b.value:.3f} ({self.log_ml_b.method})\n"
            f"  BIC approximation: log BF = {self.log_bf_bic:.3f}"
        )


def _check_comparable(a, b) -> None:
    if a.nobs != b.nobs or not np.isclose(
        a.prob.G[-1, -1] * a.prob.sy**2, b.prob.G[-1, -1] * b.prob.sy**2, rtol=1e-8
    ):
        raise ValueError(
            "the two models were not fitted to the same responses (different rows or y); "
            "a Bayes factor compares models of the same data"
        )
    fa = {n for n, d in zip(a.fixed_names, a.prob.fix_dinv, strict=True) if d == 0}
    fb = {n for n, d in zip(b.fixed_names, b.prob.fix_dinv, strict=True) if d == 0}
    for res, flat in ((a, fa), (b, fb)):
        for g in res.prob.fix_groups:
            flat -= set(g.user.names)
    if fa != fb:
        raise ValueError(
            "the models have different fixed effects under flat (improper) priors "
            f"({sorted(fa ^ fb)}): their Bayes factor is arbitrary. Give those fixed effects "
            "proper priors, e.g. priors={'fixef': hlm.priors.Normal(0, 10)}"
        )


def bayes_factor(a, b, *, seed=None) -> BayesFactor:
    """Bayes factor of ``a`` against ``b``, two :class:`hlm.PosteriorResult` on the same data.

    Fixed effects with flat priors must be the same in both models (their improper prior
    cancels only then).
    """
    _check_comparable(a, b)
    ma = a.log_marginal_likelihood(seed=seed)
    mb = b.log_marginal_likelihood(seed=seed)
    bic = 0.5 * (_bic(b) - _bic(a))
    return BayesFactor(
        log_bf=ma.value - mb.value,
        se=float(np.hypot(ma.se, mb.se)),
        log_ml_a=ma,
        log_ml_b=mb,
        log_bf_bic=float(bic),
        models=(a.formula, b.formula),
    )


def _bic(res) -> float:
    import warnings

    import hlm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml = hlm.fit(res.formula, res.model.frame.data, method="ML", **_data_options(res))
    return float(ml.bic)


def _data_options(res) -> dict:
    # the model's frame keeps the weights and offset as columns "(weights)", "(offset)"
    return {k: f"({k})" for k in ("weights", "offset") if res.settings.get(k) is not None}


def reduced_formula(res, group: str) -> str | None:
    """The formula of ``res`` without the random-effects term(s) on ``group`` (None when no
    random term would remain)."""
    spec = res.model.spec
    if group not in res.groups:
        raise ValueError(f"no random-effects term on {group!r}; the terms are {res.groups}")
    keep = [t for t, g in zip(_terms_in_theta_order(res), res.groups, strict=True) if g != group]
    if not keep:
        return None
    bars = " + ".join(f"({t.lhs} | {t.group})" for t in keep)
    return f"{spec.response} ~ {spec.fixed} + {bars}"


def _terms_in_theta_order(res) -> list:
    return [b.term for b in res.model.blocks]


def variance_bayes_factor(res, group: str, *, seed=None, **sample_options) -> BayesFactor:
    """Bayes factor for the variance components of the term on ``group``: the model as
    sampled (positive) against the model without that term (zero variance).

    The reduced model is sampled with the same priors and settings (override them through
    ``sample_options``); without any random term left, its marginal likelihood is a
    one-dimensional integral over sigma, computed by quadrature.  ``log_bf > 0`` favours a
    positive variance.
    """
    import warnings

    import hlm
    from hlm.bayes.priors import Priors

    formula = reduced_formula(res, group)
    data = res.model.frame.data
    opts = _data_options(res)
    ma = res.log_marginal_likelihood(seed=seed)
    pri = res.priors
    if formula is None:
        mb = log_marginal_no_ranef(res.prob)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spec = res.model.spec
            bic_b = hlm.ols(f"{spec.response} ~ {spec.fixed}", data, method="ML", **opts).bic
        name = f"{res.model.spec.response} ~ {res.model.spec.fixed}"
    else:
        ranef = {k: v for k, v in pri.ranef.items() if k != group}
        reduced_priors = Priors(fixef=pri.fixef, sigma=pri.sigma, ranef=ranef, groups=pri.groups)
        settings = {
            "chains": res.chains,
            "draws": res.n_draws,
            "warmup": res.warmup,
            "seed": res.seed,
            "progress": False,
        }
        settings.update(opts)
        settings.update(sample_options)
        other = hlm.sample(formula, data, priors=reduced_priors, **settings)
        mb = other.log_marginal_likelihood(seed=seed)
        bic_b = _bic(other)
        name = formula
    return BayesFactor(
        log_bf=ma.value - mb.value,
        se=float(np.hypot(ma.se, mb.se)),
        log_ml_a=ma,
        log_ml_b=mb,
        log_bf_bic=float(0.5 * (bic_b - _bic(res))),
        models=(res.formula, name),
    )
