"""Loading the inference reference numbers in ``tests/fixtures/inference`` (see README there).

Every number in those files was computed by R (lme4, lmerTest, pbkrtest, performance) with
``tests/fixtures/inference/make_inference_refs.R``; this module only reads them, rebuilds
the data each computation used, and maps R's coefficient names to hlm's.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

import hlm
from hlm import datasets

FIXTURES = Path(__file__).parent / "fixtures" / "inference"


@cache
def load(name: str) -> dict:
    """``tests/fixtures/inference/<name>.json``."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def cases(name: str, key: str = "cases") -> dict:
    """The cases of a fixture file by id."""
    return {c["id"]: c for c in load(name)[key]}


@cache
def data(name: str) -> pd.DataFrame:
    """A bundled data set, or the simulated ``factorial`` data written by the R script."""
    if name == "factorial":
        return pd.read_csv(FIXTURES / "data" / "factorial.csv")
    return datasets.load(name)


def vec(value) -> np.ndarray:
    """A JSON number or list (jsonlite unboxes length-one vectors) as a float array."""
    return np.atleast_1d(np.asarray(value, dtype=float))


def strs(value) -> list[str]:
    """A JSON string or list of strings as a list."""
    return [value] if isinstance(value, str) else list(value)


_FITS: dict = {}


def fit(data_name: str, formula: str, method: str = "REML"):
    """Fit once per session (the results are immutable)."""
    key = (data_name, formula, method)
    if key not in _FITS:
        _FITS[key] = hlm.fit(formula, data(data_name), method=method)
    return _FITS[key]


def _part(part: str, df: pd.DataFrame) -> str:
    """One factor of an R coefficient name (``SectorCatholic``) in formulaic's spelling."""
    if part == "(Intercept)" or (part in df.columns and pd.api.types.is_numeric_dtype(df[part])):
        return part
    found = []
    for col in df.columns:
        if pd.api.types.is_numeric_dtype(df[col]) or not part.startswith(col):
            continue
        levels = {str(v) for v in pd.unique(df[col].dropna())}
        if part[len(col) :] in levels:
            found.append(f"{col}[T.{part[len(col) :]}]")
    assert len(found) == 1, f"cannot map R coefficient part {part!r}: {found}"
    return found[0]


def name_map(r_names, hlm_names, df: pd.DataFrame) -> dict[str, str]:
    """R coefficient (or term) name -> hlm's, interactions matched by their set of parts."""
    by_parts = {frozenset(n.split(":")): n for n in hlm_names}
    out = {}
    for name in r_names:
        parts = frozenset(_part(p, df) for p in name.split(":"))
        assert parts in by_parts, f"{name!r} has no counterpart in {list(hlm_names)}"
        out[name] = by_parts[parts]
    return out


def term_map(r_terms, hlm_terms) -> dict[str, str]:
    """R term labels -> hlm's (``A:x`` vs ``x:A``)."""
    by_parts = {frozenset(t.split(":")): t for t in hlm_terms}
    return {t: by_parts[frozenset(t.split(":"))] for t in r_terms}


def at_theta(res, theta):
    """The same model's result at another theta (e.g. lme4's optimum)."""
    from hlm.results.fitted import MixedModelResult

    return MixedModelResult.from_model(
        res.model, vec(theta), singular=res.singular, fit_log=res.fit_log
    )
