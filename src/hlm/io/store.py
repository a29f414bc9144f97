"""Saving and loading fitted mixed models: ``result.save(path)``, ``hlm.load(path)``.

A saved fit is one zip file (docs/file_format.md) with three members:

``result.json``
    What the fit is: formula (and level-equation spec), method, names, the engine's log,
    and the formulaic coding of the fixed and random designs, so new data are coded the
    same way;
``arrays.npz``
    The numbers: estimates (beta, vcov, the random effects and their conditional
    variances, each term's covariance), theta, and the cross-products of ``[Z X y]``, from
    which the profiled criterion can be evaluated again (profiles, refits at other theta);
``data.parquet`` (optional, ``data=True``)
    The rows used in the fit, for per-row outputs (fitted values, residuals) and the
    HLM-style outputs, with the group codes in ``arrays.npz``.

Nothing is unpickled: JSON, ``numpy.load(allow_pickle=False)`` and Parquet only.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

FORMAT = "hlm-result"
VERSION = 1


# ---------------------------------------------------------------------- saving
def save_result(result, path, data: bool = True) -> None:
    """Write ``result`` (a MixedModelResult) to ``path``; see the module docstring."""
    from hlm.io.formulaic_state import StateError, spec_to_json

    model = result.model
    est = result._est
    arrays: dict[str, np.ndarray] = {
        "theta": np.asarray(est.theta, dtype=float),
        "beta": np.asarray(est.beta, dtype=float),
        "vcov": np.asarray(est.vcov, dtype=float),
        "keep": np.asarray(model.keep, dtype=np.int64),
    }
    blocks = []
    for k, blk in enumerate(model.blocks):
        arrays[f"b_{k}"] = np.asarray(est.b[k], dtype=float)
        arrays[f"b_var_{k}"] = np.asarray(est.b_var[k], dtype=float)
        arrays[f"Sigma_{k}"] = np.asarray(est.Sigma[k], dtype=float)
        arrays[f"levels_{k}"] = np.asarray(blk.levels).astype(str)
        blocks.append(
            {
                "term": model.spec.random.index(blk.term),
                "group": blk.group,
                "columns": list(blk.columns),
                "z": _z_coding(blk._spec),
            }
        )
    _put_crossproducts(arrays, model.A)
    try:
        design = {
            "rhs": spec_to_json(model.design._rhs_spec),
            "lhs": spec_to_json(model.design._lhs_spec),
        }
    except StateError as exc:
        design = {"error": str(exc)}
    source = getattr(model, "source", None)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "hlm_version": _version(),
        "kind": "MixedModelResult",
        "formula": model.spec.formula,
        "source": _source_json(source),
        "method": model.method,
        "criterion": float(est.criterion),
        "sigma": float(est.sigma),
        "singular": bool(result.singular),
        "n_dropped": int(model.frame.n_dropped),
        "response": model.design.response,
        "design_names": list(model.design.names),
        "dropped_columns": list(model.dropped_columns),
        "weights": model.weights_info is not None,
        "offset": getattr(model, "offset", None) is not None,
        "fit_log": _log_json(result.fit_log),
        "design": design,
        "blocks": blocks,
        "has_data": bool(data),
    }
    parquet = None
    if data:
        df = model.frame.data
        for k, blk in enumerate(model.blocks):
            arrays[f"codes_{k}"] = np.asarray(blk.codes, dtype=np.int64)
        if meta["offset"]:
            arrays["offset"] = np.asarray(model.offset, dtype=float)
        parquet = _parquet_bytes(df)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    with zipfile.ZipFile(Path(path), "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("result.json", json.dumps(meta, indent=1, allow_nan=True))
        z.writestr("arrays.npz", buf.getvalue())
        if parquet is not None:
            z.writestr("data.parquet", parquet)


def _version() -> str:
    import hlm

    return hlm.__version__


def _z_coding(spec) -> dict:
    from hlm.design.random import SimpleZ
    from hlm.io.formulaic_state import spec_to_json

    if spec is None:
        return {"kind": "ones"}
    if isinstance(spec, SimpleZ):
        return {"kind": "simple", "intercept": bool(spec.intercept), "names": list(spec.names)}
    return {"kind": "formulaic", "spec": spec_to_json(spec)}


def _source_json(source) -> dict:
    if hasattr(source, "to_text"):
        columns = getattr(source, "_columns", None) or {}
        return {
            "kind": "levels",
            "text": source.to_text(),
            "columns": [[sorted(k), list(v)] for k, v in columns.items()],
        }
    return {"kind": "formula"}


def _log_json(log) -> dict:
    out = {}
    for f in dataclasses.fields(log):
        v = getattr(log, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def _put_crossproducts(arrays: dict, A) -> None:
    arrays["A_n"] = np.array(A.n, dtype=np.int64)
    arrays["A_sum_log_w"] = np.array(A.sum_log_w, dtype=float)
    arrays["A_G"] = A.G
    arrays["A_shift"] = A.shift
    arrays["A_scale"] = A.scale
    if A.basis is not None:
        arrays["A_basis"] = A.basis
    for k, (zz, zx) in enumerate(zip(A.ZZ, A.ZXy, strict=True)):
        arrays[f"A_ZZ_{k}"] = zz
        arrays[f"A_ZXy_{k}"] = zx
    for (k, l), m in A.pairs.items():
        m = m.tocsr()
        arrays[f"A_pair_{k}_{l}_data"] = m.data
        arrays[f"A_pair_{k}_{l}_indices"] = m.indices
        arrays[f"A_pair_{k}_{l}_indptr"] = m.indptr
        arrays[f"A_pair_{k}_{l}_shape"] = np.asarray(m.shape, dtype=np.int64)


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "saving the rows of a fit needs pyarrow: pip install 'hlm[arrow]' "
            "(or save without them: result.save(path, data=False))"
        ) from exc
    buf = io.BytesIO()
    df.to_parquet(buf)  # the index too, so per-row outputs are indexed as in the fit
    return buf.getvalue()
