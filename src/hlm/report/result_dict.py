"""A fitted model as plain JSON data (the ``hlm fit --format json`` output).

The layout is fixed by the JSON schema ``fit_result.schema.json`` beside this module and
documented in docs/cli.md.  Non-finite numbers are written as ``null``.
"""

from __future__ import annotations

import json
import math
from importlib.resources import files

import numpy as np

#: identifies the layout; bumped when a field changes meaning
SCHEMA_ID = "hlm-fit-result/1"


def _num(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def result_dict(res) -> dict:
    """The fitted model ``res`` as a dict of JSON types.

    Works for :class:`hlm.MixedModelResult` and for :class:`hlm.OLSResult` (a level-equation
    spec without random effects), which has no groups, theta or random effects.
    """
    import hlm

    source = getattr(res, "source", None)
    if source is None and hasattr(res, "model"):
        source = getattr(res.model, "source", None)
    levels = source.to_text() if hasattr(source, "to_text") else None
    log = getattr(res, "fit_log", None)
    warnings = list(log.warnings) if log is not None else []
    if hasattr(res, "varcorr"):
        vc = res.varcorr()
        varcorr = [
            {
                "grp": str(r.grp),
                "var1": None if r.var1 is None or _isnan(r.var1) else str(r.var1),
                "var2": None if r.var2 is None or _isnan(r.var2) else str(r.var2),
                "vcov": _num(r.vcov),
                "sdcor": _num(r.sdcor),
                # the standard error of vcov (expected information), when the fit has it
                **({"se": _num(r.se)} if "se" in vc.columns else {}),
            }
            for r in vc.itertuples(index=False)
        ]
    else:
        varcorr = [
            {"grp": "Residual", "var1": None, "var2": None, "vcov": _num(res.sigma**2),
             "sdcor": _num(res.sigma)}
        ]
    theta = [float(t) for t in np.asarray(getattr(res, "theta", []), dtype=float)]
    model = getattr(res, "model", None)
    return {
        "schema": SCHEMA_ID,
        "hlm_version": hlm.__version__,
        "formula": str(res.formula),
        "levels": levels,
        "method": res.method,
        "criterion": _num(res.criterion),
        "loglik": _num(res.loglik),
        "aic": _num(res.aic),
        "bic": _num(res.bic),
        "npar": int(res.npar),
        "nobs": int(res.nobs),
        "n_dropped": int(getattr(res, "n_dropped", 0)),
        "ngroups": {str(k): int(v) for k, v in getattr(res, "ngroups", {}).items()},
        "fixef": {str(k): _num(v) for k, v in res.fixef.items()},
        "fixef_se": {str(k): _num(v) for k, v in res.fixef_se.items()},
        "vcov": [[_num(v) for v in row] for row in np.asarray(res.vcov, dtype=float)],
        "sigma": _num(res.sigma),
        "theta": theta,
        "theta_names": list(model.theta_names) if model is not None else [],
        "varcorr": varcorr,
        "singular": bool(getattr(res, "singular", False)),
        "converged": bool(getattr(res, "converged", True)),
        "warnings": warnings,
        "engine": getattr(log, "engine", "ols"),
        "optimizer": getattr(log, "optimizer", "QR (least squares)"),
        "evaluations": int(getattr(log, "evaluations", 0)),
    }


def _isnan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def result_json(res, indent: int | None = 2) -> str:
    """:func:`result_dict` as JSON text (strict JSON: no NaN)."""
    return json.dumps(result_dict(res), indent=indent, allow_nan=False)


def schema() -> dict:
    """The JSON schema of :func:`result_dict` (``fit_result.schema.json``)."""
    text = files("hlm.report").joinpath("fit_result.schema.json").read_text(encoding="utf-8")
    return json.loads(text)
