"""Reading a fit saved by ``result.save`` back into a :class:`hlm.MixedModelResult`.

The loaded result has a working model: the cross-products (so ``model.objective`` and the
profile plot work), the designs' coding (so new data are coded as in the fit), and, when the
rows were saved, the rows and group codes (fitted values, residuals, HLM-style outputs).
Without the rows, asking for a per-row output raises :class:`hlm.DataError` saying so.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from hlm.errors import DataError
from hlm.io.store import FORMAT, VERSION


class RowsNotStored:
    """Stands in for per-row data of a fit saved without its rows; any use raises."""

    def __init__(self, path: str, what: str):
        self._message = (
            f"{path} was saved without the rows of the fit, which {what} need; save the fit "
            "with result.save(path, data=True)"
        )

    def _fail(self, *args, **kwargs):
        raise DataError(self._message)

    __getitem__ = __len__ = __iter__ = __array__ = _fail

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        self._fail()


class StoredFrame:
    """The part of :class:`hlm.frame.Frame` a loaded model keeps."""

    def __init__(self, data, n_dropped: int, path: str):
        self._data = data
        self.n_dropped = n_dropped
        self._path = path

    @property
    def data(self) -> pd.DataFrame:
        """The rows used in the fit (raises when they were not saved)."""
        if self._data is None:
            RowsNotStored(self._path, "fitted values, residuals and HLM-style outputs")._fail()
        return self._data


class UncodableDesign:
    """A fixed design whose coding could not be stored: names only; coding rows raises."""

    def __init__(self, response: str, names: list[str], reason: str):
        self.response = response
        self.names = names
        self.has_intercept = "(Intercept)" in names
        self._reason = reason

    @property
    def p(self) -> int:
        return len(self.names)

    def Xy(self, chunk):
        raise DataError(
            f"the fixed-effects coding of this saved model could not be stored ({self._reason}); "
            "per-row outputs and predictions need the model refitted"
        )


def load_result(path):
    """Read a fit written by :meth:`MixedModelResult.save`.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    MixedModelResult

    Raises
    ------
    hlm.DataError
        When the file is not an hlm result, was written by a newer format version, or its
        cross-products do not reproduce the saved criterion (a damaged file).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {p}")
    try:
        with zipfile.ZipFile(p) as z:
            meta = json.loads(z.read("result.json"))
            arrays = dict(np.load(io.BytesIO(z.read("arrays.npz")), allow_pickle=False))
            parquet = z.read("data.parquet") if "data.parquet" in z.namelist() else None
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise DataError(f"{p.name} is not a saved hlm result ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise DataError(f"{p.name} is not a saved hlm result (format {meta.get('format')!r})")
    if meta.get("version", 0) > VERSION:
        raise DataError(
            f"{p.name} was written in format version {meta['version']}; this hlm reads up "
            f"to {VERSION}: upgrade hlm"
        )
    return _build(meta, arrays, parquet, str(p))


def _build(meta, arrays, parquet, path):
    from hlm.design.fixed import FixedDesign
    from hlm.design.random import RandomBlock
    from hlm.engines.log import FitLog
    from hlm.io.formulaic_state import spec_from_json
    from hlm.model import LinearMixedModel
    from hlm.results.estimates import Estimates
    from hlm.results.fitted import MixedModelResult
    from hlm.spec.formula import parse_formula

    spec = parse_formula(meta["formula"])
    data = None
    if parquet is not None:
        data = pd.read_parquet(io.BytesIO(parquet))
    design_meta = meta["design"]
    if "error" in design_meta:
        design = UncodableDesign(meta["response"], meta["design_names"], design_meta["error"])
    else:
        design = FixedDesign.__new__(FixedDesign)
        design.response = meta["response"]
        design._lhs_spec = spec_from_json(design_meta["lhs"])
        design._rhs_spec = spec_from_json(design_meta["rhs"])
        design.names = list(meta["design_names"])
        design.has_intercept = "(Intercept)" in design.names
        design.fast = None  # formulaic codes the rows (the NumPy evaluators are not stored)
    blocks = []
    for k, b in enumerate(meta["blocks"]):
        codes = arrays.get(f"codes_{k}")
        if codes is None:
            codes = RowsNotStored(path, "fitted values, residuals and HLM-style outputs")
        levels = arrays[f"levels_{k}"].astype(object)
        blocks.append(
            RandomBlock(spec.random[b["term"]], b["group"], list(b["columns"]), levels, codes,
                        _z_spec(b["z"], spec_from_json))
        )
    A = _crossproducts(arrays, len(blocks))
    keep = arrays["keep"]
    frame = StoredFrame(data, int(meta["n_dropped"]), path)
    weights_info = {"sum_log_w": A.sum_log_w} if meta["weights"] else None
    model = LinearMixedModel(spec, frame, design, blocks, A, keep, list(meta["dropped_columns"]),
                             meta["method"], weights_info)
    model.source = _source(meta["source"], meta["formula"])
    model.offset = arrays.get("offset") if meta["offset"] else None
    if meta["offset"] and model.offset is None:
        model.offset = RowsNotStored(path, "fitted values with an offset")
    theta = arrays["theta"]
    crit = model.objective(theta)
    if meta["fit_log"].get("fixed"):  # variance= fits: sigma is given, not profiled
        from hlm.engines.varcomp import criterion_at, scale_y

        crit = criterion_at(model, theta, float(meta["sigma"]) ** 2 / scale_y(model) ** 2)
    if not np.isclose(crit, meta["criterion"], rtol=1e-9, atol=1e-8):
        raise DataError(
            f"{path}: the stored cross-products give criterion {crit!r} at the stored theta, "
            f"not the saved {meta['criterion']!r}: the file is damaged or from an "
            "incompatible hlm version"
        )
    K = len(blocks)
    est = Estimates(
        theta=theta,
        criterion=float(meta["criterion"]),
        beta=arrays["beta"],
        vcov=arrays["vcov"],
        sigma=float(meta["sigma"]),
        b=[arrays[f"b_{k}"] for k in range(K)],
        Sigma=[arrays[f"Sigma_{k}"] for k in range(K)],
        b_var_fn=lambda: [arrays[f"b_var_{k}"] for k in range(K)],
    )
    known = {f.name for f in dataclasses.fields(FitLog)}
    log = {k: v for k, v in meta["fit_log"].items() if k in known}
    log["warnings"] = tuple(log.get("warnings", ()))
    return MixedModelResult(model=model, est=est, singular=meta["singular"], fit_log=FitLog(**log))


def _z_spec(z: dict, spec_from_json):
    from hlm.design.random import SimpleZ

    if z["kind"] == "ones":
        return None
    if z["kind"] == "simple":
        return SimpleZ(z["intercept"], list(z["names"]))
    return spec_from_json(z["spec"])


def _source(src: dict, formula: str):
    if src["kind"] != "levels":
        return formula
    from hlm.spec.levels import Levels

    spec = Levels.from_text(src["text"])
    if src["columns"]:
        spec._columns = {frozenset(k): list(v) for k, v in src["columns"]}
    return spec


def _crossproducts(arrays: dict, K: int):
    from hlm.design.crossprod import CrossProducts

    pairs = {}
    for k in range(K):
        for l in range(k + 1, K):
            key = f"A_pair_{k}_{l}"
            if f"{key}_data" in arrays:
                shape = tuple(int(s) for s in arrays[f"{key}_shape"])
                pairs[(k, l)] = sp.csr_matrix(
                    (arrays[f"{key}_data"], arrays[f"{key}_indices"], arrays[f"{key}_indptr"]),
                    shape=shape,
                )
    return CrossProducts(
        n=int(arrays["A_n"]),
        sum_log_w=float(arrays["A_sum_log_w"]),
        G=arrays["A_G"],
        ZZ=[arrays[f"A_ZZ_{k}"] for k in range(K)],
        ZXy=[arrays[f"A_ZXy_{k}"] for k in range(K)],
        pairs=pairs,
        shift=arrays["A_shift"],
        scale=arrays["A_scale"],
        basis=arrays.get("A_basis"),
    )
