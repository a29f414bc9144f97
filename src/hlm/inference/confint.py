"""Confidence intervals for every parameter: ``result.confint(method=..., level=...)``.

Rows: the variance parameters in lme4's order and naming (:mod:`hlm.inference.varpar`),
then the fixed effects.  Methods:

- ``"wald"``: fixed effects ``beta +- z se`` (as lme4); variance parameters by the delta
  method on the log-SD and Fisher-z (atanh) scales from the Hessian of the fit's criterion,
  mapped back (lme4 leaves these empty; they are rough, and NaN when an SD is 0);
- ``"profile"``: profile likelihood (:mod:`hlm.inference.profile`), as lme4;
- ``"boot"``: parametric bootstrap percentiles (:mod:`hlm.inference.bootstrap`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from hlm.inference.varpar import VarPar


def confint(
    result,
    method: str = "wald",
    level: float = 0.95,
    *,
    parm=None,
    names: str = "readable",
    **boot_options,
) -> pd.DataFrame:
    """Confidence intervals; see the module docstring.

    Parameters
    ----------
    result : MixedModelResult
    method : {"wald", "profile", "boot"}
    level : float
        Confidence level in (0, 1).
    parm : str or list of str, optional
        Parameters to report (default all); ``"beta_"`` for the fixed effects, ``"theta_"``
        for the variance parameters.
    names : {"readable", "lme4"}
        ``sd_(Intercept)|Subject ... sigma`` or ``.sig01 ... .sigma``.
    **boot_options
        For ``method="boot"``: ``nsim`` (500), ``seed``, ``n_jobs``, ``progress``.

    Returns
    -------
    pandas.DataFrame
        Columns ``lower, upper``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    m = str(method).lower()
    if boot_options and m != "boot":
        raise TypeError(f"options {sorted(boot_options)} apply to method='boot' only")
    if m == "wald":
        return wald_confint(result, level, parm=parm, names=names)
    if m == "profile":
        from hlm.inference.profile import profile_confint

        return profile_confint(result, level, parm=parm, names=names)
    if m == "boot":
        from hlm.inference.bootstrap import boot_confint

        if isinstance(parm, str) and parm in ("beta_", "theta_"):
            vn = VarPar(result.model, result._groups).names(names)
            parm = vn if parm == "theta_" else list(result.fixef.index)
        return boot_confint(result, level, names=names, parm=parm, **boot_options)
    raise ValueError(f"method must be 'wald', 'profile' or 'boot', got {method!r}")


def wald_confint(result, level=0.95, *, parm=None, names="readable") -> pd.DataFrame:
    """Wald intervals (see the module docstring)."""
    from hlm.inference.profile import _select

    z = float(stats.norm.ppf(0.5 + level / 2.0))
    vp = VarPar(result.model, result._groups)
    theta = np.asarray(result.theta, dtype=float)
    sigma = float(result.sigma)
    psi = vp.from_theta(theta, sigma)
    vnames = vp.names(names)
    all_names = vnames + list(result.fixef.index)
    wanted = _select(parm, all_names, len(vnames))
    rows = {}
    if any(i < len(vnames) for i in wanted):
        vc = result._varpar_covariance
        J = vp.jacobian(theta, sigma)
        V = J @ vc.vcov_varpar @ J.T
        se = np.sqrt(np.maximum(np.diag(V), 0.0))
    for i in wanted:
        name = all_names[i]
        if i >= len(vnames):
            j = i - len(vnames)
            b, s = float(result.fixef.iloc[j]), float(result.fixef_se.iloc[j])
            rows[name] = (b - z * s, b + z * s)
            continue
        x, s = psi[i], se[i]
        if vp.kind[i] == "cor":
            if not np.isfinite(x) or abs(x) >= 1.0:
                rows[name] = (np.nan, np.nan)
                continue
            zr, sz = np.arctanh(x), s / (1.0 - x * x)
            rows[name] = (float(np.tanh(zr - z * sz)), float(np.tanh(zr + z * sz)))
        else:
            if not x > 0:
                rows[name] = (np.nan, np.nan)
                continue
            sl = s / x
            rows[name] = (float(x * np.exp(-z * sl)), float(x * np.exp(z * sl)))
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["lower", "upper"])
    out.attrs["method"] = "wald"
    out.attrs["level"] = level
    return out
