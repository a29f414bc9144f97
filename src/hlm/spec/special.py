"""Named special cases of the hierarchical linear model (Raudenbush & Bryk 2002, ch. 2, 4, 8).

Each constructor returns an :class:`hlm.Levels` spec; fit it with ``hlm.fit(spec, data)``.
Predictors are given as formula text (``"x1 + x2"``) or a list of names. In the equations,
``Y_ij`` is the outcome of row ``i`` in group ``j``, ``X_ij`` a level-1 predictor, ``W_j`` a
level-2 predictor, ``r_ij ~ N(0, sigma^2)`` and ``u_j ~ N(0, tau)``.
"""

from __future__ import annotations

from hlm.spec.level_terms import INTERCEPT, parse_rhs, quote_name
from hlm.spec.levels import Levels


def _rhs(predictors, what: str) -> str:
    if isinstance(predictors, str):
        text = predictors.strip()
        return text[1:].strip() if text.startswith("~") else text
    names = [quote_name(str(p)) for p in predictors]
    if not names:
        raise ValueError(f"{what} needs at least one predictor")
    return " + ".join(names)


def _coefficients(level1: str) -> list[str]:
    return [t.name for t in parse_rhs(level1, "the level-1 predictors")]


def random_effects_anova(response: str, group: str) -> Levels:
    """One-way ANOVA with random effects (the empty, or unconditional, model).

    ::

        Level 1:  Y_ij    = beta_0j + r_ij
        Level 2:  beta_0j = gamma_00 + u_0j
        Mixed:    Y_ij    = gamma_00 + u_0j + r_ij

    ``gamma_00`` is the grand mean; ``tau_00`` and ``sigma^2`` split the outcome's variance
    into between- and within-group parts (their ratio to the total is the intra-class
    correlation).
    """
    return Levels(f"{response} ~ 1", group=group)


def means_as_outcomes(response: str, level2, group: str) -> Levels:
    """Means-as-outcomes regression: group means explained by level-2 predictors.

    ::

        Level 1:  Y_ij    = beta_0j + r_ij
        Level 2:  beta_0j = gamma_00 + gamma_01*W_j + u_0j
        Mixed:    Y_ij    = gamma_00 + gamma_01*W_j + u_0j + r_ij

    ``tau_00`` is now the residual variance of the group means given ``W``.
    """
    return Levels(f"{response} ~ 1", {INTERCEPT: f"~ {_rhs(level2, 'level2')}"}, group=group)


def varying_intercepts(response: str, level1, group: str, level2=None) -> Levels:
    """Varying-intercept model (one-way ANCOVA with random effects): slopes fixed.

    ::

        Level 1:  Y_ij    = beta_0j + beta_1j*X_ij + r_ij
        Level 2:  beta_0j = gamma_00 [+ gamma_01*W_j] + u_0j
                  beta_1j = gamma_10
        Mixed:    Y_ij    = gamma_00 [+ gamma_01*W_j] + gamma_10*X_ij + u_0j + r_ij

    Optional ``level2`` predictors explain the intercepts.
    """
    level2 = {INTERCEPT: f"~ {_rhs(level2, 'level2')}"} if level2 is not None else None
    return Levels(f"{response} ~ {_rhs(level1, 'level1')}", level2, group=group)


def ancova(response: str, covariates, group: str) -> Levels:
    """One-way ANCOVA with fixed group intercepts (no random effects; fitted by OLS).

    ::

        Level 1:  Y_ij    = beta_0j + beta_1j*X_ij + r_ij
        Level 2:  beta_0j = gamma_00 + sum_g gamma_0g*[j = g]     (a dummy per group but
                  beta_1j = gamma_10                               the reference group)
        Mixed:    Y_ij    = gamma_00 + sum_g gamma_0g*[j = g] + gamma_10*X_ij + r_ij

    The group effects are fixed parameters (the level-2 predictor is ``C(group)``), so
    ``gamma_10`` is the pooled within-group slope.
    """
    x = _rhs(covariates, "covariates")
    return Levels(
        f"{response} ~ {x}",
        {INTERCEPT: f"~ C({quote_name(group)})"},
        group=group,
        random=[],
    )


def random_coefficients(response: str, level1, group: str) -> Levels:
    """Random-coefficients regression: every level-1 coefficient varies over groups.

    ::

        Level 1:  Y_ij    = beta_0j + beta_1j*X_ij + r_ij
        Level 2:  beta_0j = gamma_00 + u_0j
                  beta_1j = gamma_10 + u_1j
        Mixed:    Y_ij    = gamma_00 + gamma_10*X_ij + u_0j + u_1j*X_ij + r_ij

    ``(u_0j, u_1j)`` have an unstructured covariance matrix ``T``.
    """
    x = _rhs(level1, "level1")
    return Levels(f"{response} ~ {x}", group=group, random=_coefficients(x))


def intercepts_and_slopes_as_outcomes(
    response: str, level1, level2, group: str, random=None
) -> Levels:
    """Intercepts- and slopes-as-outcomes: level-2 predictors of every level-1 coefficient.

    ::

        Level 1:  Y_ij    = beta_0j + beta_1j*X_ij + r_ij
        Level 2:  beta_0j = gamma_00 + gamma_01*W_j + u_0j
                  beta_1j = gamma_10 + gamma_11*W_j + u_1j
        Mixed:    Y_ij    = gamma_00 + gamma_01*W_j + gamma_10*X_ij + gamma_11*W_j*X_ij
                            + u_0j + u_1j*X_ij + r_ij

    ``gamma_11`` is the cross-level interaction. ``random`` (default: every coefficient)
    chooses the coefficients with a random effect.
    """
    x, w = _rhs(level1, "level1"), _rhs(level2, "level2")
    coefs = _coefficients(x)
    return Levels(
        f"{response} ~ {x}",
        {c: f"~ {w}" for c in coefs},
        group=group,
        random=coefs if random is None else random,
    )


def cross_level_regression(response: str, level1, level2, group: str) -> Levels:
    """Regression with cross-level interactions and no random effects (fitted by OLS).

    ::

        Level 1:  Y_ij    = beta_0j + beta_1j*X_ij + r_ij
        Level 2:  beta_0j = gamma_00 + gamma_01*W_j
                  beta_1j = gamma_10 + gamma_11*W_j
        Mixed:    Y_ij    = gamma_00 + gamma_01*W_j + gamma_10*X_ij + gamma_11*W_j*X_ij + r_ij

    The intercepts- and slopes-as-outcomes model with every ``u`` fixed at 0: an ordinary
    regression, whose standard errors ignore any clustering of the rows.
    """
    return intercepts_and_slopes_as_outcomes(response, level1, level2, group, random=[])


def additive_variance_components(response: str, group: str, group3: str) -> Levels:
    """Three-level variance components: rows in ``group`` units nested in ``group3`` units.

    ::

        Level 1:  Y_ijk    = pi_0jk + e_ijk
        Level 2:  pi_0jk   = beta_00k + r_0jk
        Level 3:  beta_00k = gamma_000 + u_00k
        Mixed:    Y_ijk    = gamma_000 + u_00k + r_0jk + e_ijk

    The outcome's variance is the sum ``sigma^2 + tau_pi + tau_beta`` of one component per
    level; the shares are the proportions of variance within level-2 units, between level-2
    units within level-3 units, and between level-3 units.
    """
    return Levels(f"{response} ~ 1", group=group, group3=group3)
