"""ArviZ: the InferenceData of a posterior, and split R-hat / bulk and tail ESS per parameter.

Variable names in the InferenceData (``{grp}`` is the grouping factor as ``varcorr()``
names it):

* ``beta`` (dim ``fixef``): the fixed effects;
* ``sigma``: the residual SD;
* ``sd__{grp}`` (dim ``{grp}__coef``) and ``corr__{grp}`` (dim ``{grp}__pair``): SDs and
  correlations of each term;
* ``b__{grp}`` (dims ``{grp}__level``, ``{grp}__coef``): random effects, when kept;
* ``mu__{i}``, ``tau__{i}``: mean and SD of the i-th hierarchical group of fixed effects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: thresholds of the convergence warning (Vehtari et al. 2021)
RHAT_MAX = 1.01
ESS_MIN = 400


def _arviz():
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # ArviZ's notice of its 1.0 refactor
            import arviz
    except ImportError as e:
        raise ImportError(
            "posterior diagnostics and plots need ArviZ: pip install 'hlm[bayes]'"
        ) from e
    return arviz


def pair_names(columns: list) -> list:
    """``"a,b"`` for every pair i < j of a term's columns (varcorr order)."""
    return [
        f"{columns[i]},{columns[j]}"
        for i in range(len(columns))
        for j in range(i + 1, len(columns))
    ]  # noqa: E501


def scalar_parameters(res) -> dict:
    """Name -> (C, D) array for every scalar parameter that the convergence check covers."""
    d = res.draws
    out = {}
    for i, name in enumerate(res.fixed_names):
        out[name] = d.beta[..., i]
    for k, grp in enumerate(res.groups):
        sd = d.sd(k)
        for i, col in enumerate(res.columns[k]):
            out[f"sd({grp}: {col})"] = sd[..., i]
        corr = d.corr(k)
        for i, pair in enumerate(pair_names(res.columns[k])):
            out[f"corr({grp}: {pair})"] = corr[..., i]
    out["sigma"] = d.sigma
    for i, nm in enumerate(res.hier_names):
        ng = len(res.hier_names)
        out[f"mu({nm})"] = d.groups[..., i]
        out[f"tau({nm})"] = d.groups[..., ng + i]
    return out


def diagnostics_table(res, level: float = 0.95) -> pd.DataFrame:
    """Posterior mean, SD, central interval, bulk/tail ESS and split R-hat (ArviZ)."""
    az = _arviz()
    lo, hi = (1 - level) / 2, (1 + level) / 2
    rows = []
    for name, x in scalar_parameters(res).items():
        flat = x.reshape(-1)
        ok = np.all(np.isfinite(flat))
        ess_b = float(az.ess(x, method="bulk")) if ok else np.nan
        ess_t = float(az.ess(x, method="tail")) if ok else np.nan
        rhat = float(az.rhat(x, method="rank")) if ok and x.shape[0] > 1 else np.nan
        q = np.quantile(flat, [lo, hi]) if ok else (np.nan, np.nan)
        rows.append((name, flat.mean(), flat.std(ddof=1), q[0], q[1], ess_b, ess_t, rhat))
    cols = ["mean", "sd", f"{100 * lo:g}%", f"{100 * hi:g}%", "ess_bulk", "ess_tail", "r_hat"]
    return pd.DataFrame([r[1:] for r in rows], index=[r[0] for r in rows], columns=cols)


def convergence_problems(table: pd.DataFrame) -> list:
    """Sentences naming the parameters with R-hat above 1.01 or an ESS below 400."""
    notes = []
    bad_r = table.index[table["r_hat"] > RHAT_MAX].tolist()
    if bad_r:
        notes.append(f"R-hat above {RHAT_MAX} for {', '.join(bad_r)}")
    ess = table[["ess_bulk", "ess_tail"]].min(axis=1)
    bad_e = ess.index[ess < ESS_MIN].tolist()
    if bad_e:
        notes.append(f"bulk or tail ESS below {ESS_MIN} for {', '.join(bad_e)}")
    return notes


def to_inference_data(res):
    """The posterior as an ``arviz.InferenceData``."""
    az = _arviz()
    d = res.draws
    post = {"beta": d.beta, "sigma": d.sigma}
    coords = {"fixef": list(res.fixed_names)}
    dims = {"beta": ["fixef"]}
    for k, grp in enumerate(res.groups):
        cname, pname, lname = f"{grp}__coef", f"{grp}__pair", f"{grp}__level"
        coords[cname] = list(res.columns[k])
        post[f"sd__{grp}"] = d.sd(k)
        dims[f"sd__{grp}"] = [cname]
        pairs = pair_names(res.columns[k])
        if pairs:
            coords[pname] = pairs
            post[f"corr__{grp}"] = d.corr(k)
            dims[f"corr__{grp}"] = [pname]
        if d.b is not None:
            coords[lname] = list(res.levels[k])
            post[f"b__{grp}"] = d.b[k]
            dims[f"b__{grp}"] = [lname, cname]
    ng = len(res.hier_names)
    for i in range(ng):
        post[f"mu__{i}"] = d.groups[..., i]
        post[f"tau__{i}"] = d.groups[..., ng + i]
    return az.from_dict(posterior=post, coords=coords, dims=dims)
