"""Likelihood-ratio tests between fitted models: ``hlm.anova(m0, m1, ...)``.

As lme4's ``anova``: the models are put in order of complexity (number of parameters),
each is compared with the one before it, and models fitted by REML are refitted by maximum
likelihood when their fixed effects differ (REML criteria of models with different fixed
effects are not comparable).  Unlike lme4, REML fits with the same fixed effects are
compared on the REML criterion (the usual test of variance components) unless
``refit=True``.  Where the larger model adds variances, the p-value comes from the
boundary-corrected (chi-bar-square) reference distribution of :mod:`hlm.inference.boundary`
and the column ``null`` names it.  A fit without random effects (:func:`hlm.ols`, or a
level-equation spec with ``random=[]``) is a valid member: comparing it with a
random-intercept fit is the test of the hierarchy itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hlm.errors import HLMWarning, warn
from hlm.inference.boundary import reference


def anova(*results, refit=None, names=None, aicc: bool = False) -> pd.DataFrame:
    """Compare fitted models by likelihood-ratio tests.

    Parameters
    ----------
    *results : MixedModelResult or OLSResult
        Two or more fits to the same rows and response.  One mixed-model fit alone gives
        its type III F table (``result.anova()``), as lmerTest's ``anova(fit)``.
    refit : bool or None
        None (default): refit REML fits by ML only when the models' fixed effects differ
        (or when some fits are ML); True: always compare ML fits (lme4's default); False:
        never refit (an error when the comparison would be invalid).
    names : list of str, optional
        Row labels (default: the formulas).
    aicc : bool
        Add the small-sample corrected AIC, ``AIC + 2k(k+1)/(n-k-1)``, after ``aic``.

    Returns
    -------
    pandas.DataFrame
        One row per model, in order of ``npar``: ``npar, aic, bic, loglik, deviance, chisq,
        df, p, null``.  ``deviance`` is ``-2 loglik`` of the criterion compared (ML, or
        REML: ``attrs["criterion"]``); ``attrs["notes"]`` lists refits and caveats.
    """
    if len(results) == 1:
        only = results[0]
        if hasattr(only, "anova"):
            return only.anova()
        raise TypeError("hlm.anova needs two or more fits (or one mixed-model fit)")
    if not results:
        raise TypeError("hlm.anova needs two or more fits")
    labels = _labels(results, names)
    _check_same_data(results, labels)
    fixed = [tuple(r.fixef.index) for r in results]
    methods = {r.method for r in results}
    same_fixed = len({frozenset(f) for f in fixed}) == 1
    notes = []
    if refit is None:
        use_ml = not (methods == {"REML"} and same_fixed)
    elif refit:
        use_ml = True
    else:
        if len(methods) > 1:
            raise ValueError("cannot compare REML and ML fits without refitting (refit=False)")
        if methods == {"REML"} and not same_fixed:
            raise ValueError(
                "REML criteria of models with different fixed effects are not comparable; "
                "use refit=None or True to refit them by maximum likelihood"
            )
        use_ml = methods == {"ML"}
    crit = []
    refitted = []
    for r, label in zip(results, labels, strict=True):
        value, was_refit = _criterion(r, use_ml)
        crit.append(value)
        if was_refit:
            refitted.append(label)
    if refitted:
        why = "their fixed effects differ" if not same_fixed else "refit=True"
        if len(methods) > 1 and same_fixed:
            why = "some fits are ML"
        msg = f"refitted {len(refitted)} REML fit(s) by ML (instead of REML) because {why}"
        notes.append(msg)
        warn(msg, HLMWarning)
    npar = np.array([r.npar for r in results], dtype=int)
    order = np.argsort(npar, kind="stable")
    rows = []
    prev = None
    for i in order:
        r = results[i]
        n = r.nobs
        k = int(npar[i])
        dev = float(crit[i])
        row = {
            "npar": k,
            "aic": dev + 2 * k,
            "aicc": dev + 2 * k + 2.0 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else np.inf,
            "bic": dev + k * np.log(n),
            "loglik": -0.5 * dev,
            "deviance": dev,
            "chisq": np.nan,
            "df": np.nan,
            "p": np.nan,
            "null": "",
        }
        if prev is not None:
            j = prev
            df = k - int(npar[j])
            chisq = max(0.0, float(crit[j]) - dev)
            row["chisq"], row["df"] = chisq, df
            if df > 0:
                nested = set(results[j].fixef.index) <= set(r.fixef.index)
                ref = reference(results[j], r, df, nested)
                row["p"], row["null"] = ref.sf(chisq), ref.name
                if ref.note:
                    notes.append(f"{labels[j]} vs {labels[i]}: {ref.note}")
            else:
                notes.append(
                    f"{labels[j]} and {labels[i]} have the same number of parameters: no test"
                )
        rows.append(row)
        prev = i
    table = pd.DataFrame(rows, index=pd.Index([labels[i] for i in order], name="model"))
    table["df"] = table["df"].astype("Int64")
    if not aicc:
        table = table.drop(columns="aicc")
    table.attrs["criterion"] = "ML" if use_ml else "REML"
    table.attrs["notes"] = notes
    return table


def _labels(results, names) -> list[str]:
    if names is not None:
        names = [str(x) for x in names]
        if len(names) != len(results) or len(set(names)) != len(names):
            raise ValueError("names must give one distinct label per model")
        return names
    out, seen = [], {}
    for r in results:
        base = str(r.formula)
        k = seen.get(base, 0)
        seen[base] = k + 1
        out.append(base if k == 0 else f"{base} ({k + 1})")
    return out


def _response(r) -> str:
    from hlm.spec.formula import parse_formula

    if hasattr(r, "model"):
        return r.model.spec.response
    return parse_formula(r.formula).response


def _check_same_data(results, labels) -> None:
    for r in results:
        if not hasattr(r, "npar") or not hasattr(r, "nobs"):
            raise TypeError(f"hlm.anova compares fitted models, got {type(r).__name__}")
    nobs = {r.nobs for r in results}
    if len(nobs) > 1:
        detail = ", ".join(f"{lab}: {r.nobs}" for lab, r in zip(labels, results, strict=True))
        raise ValueError(
            f"the models were fitted to different numbers of rows ({detail}); refit them on "
            "the same rows (e.g. drop rows with missing values in any model's columns first)"
        )
    responses = {_response(r) for r in results}
    if len(responses) > 1:
        raise ValueError(f"the models have different responses: {sorted(responses)}")


def _criterion(r, use_ml: bool) -> tuple[float, bool]:
    """The criterion to compare (ML deviance or REML criterion) and whether it was refitted."""
    if not hasattr(r, "theta"):  # least squares: both criteria are closed forms
        return (float(r.deviance) if use_ml else float(r.reml_criterion)), False
    if not use_ml or r.method == "ML":
        return float(r.criterion), False
    return ml_refit(r)[1], True


def ml_refit(r):
    """``(theta, deviance)`` of the ML fit of a REML result's model (cross-products reused)."""
    from hlm.inference._problem import fit_theta, ml_copy

    cached = getattr(r, "_ml_refit", None)
    if cached is not None:
        return cached
    model = ml_copy(r.model)
    theta, crit, _ = fit_theta(model, r.theta)
    out = (theta, crit)
    r._ml_refit = out  # a cache: the fit itself is unchanged
    return out
