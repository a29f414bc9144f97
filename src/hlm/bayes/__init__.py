"""Bayesian linear mixed models: a blocked Gibbs sampler on the cross-products.

Public entry points: :func:`hlm.sample`, :class:`hlm.PosteriorResult`, :mod:`hlm.priors`
and :func:`hlm.bayes_factor`.
"""

from hlm.bayes import priors
from hlm.bayes.posterior import PosteriorResult
from hlm.bayes.sampling import sample

__all__ = ["PosteriorResult", "bayes_factor", "priors", "sample"]


def bayes_factor(model_a, model_b, *, seed=None):
    """Bayes factor of ``model_a`` against ``model_b`` (two PosteriorResults, same data).

    See :func:`hlm.bayes.bayes_factor.bayes_factor`.
    """
    from hlm.bayes.bayes_factor import bayes_factor as _bf

    return _bf(model_a, model_b, seed=seed)
