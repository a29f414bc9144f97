"""Example data sets for hierarchical linear models.

The data are bundled with the package as gzipped CSV files (exported from the R packages
lme4 and nlme). Factor columns are read as strings and returned as
:class:`pandas.Categorical` with R's level order (so that, e.g., ``hsb.Sector`` has the
reference level ``"Public"`` and numeric-looking identifiers stay labels).

Examples
--------
>>> from hlm import datasets
>>> datasets.list()
['hsb', 'sleepstudy', 'dyestuff', 'dyestuff2', 'penicillin', 'pastes', 'insteval']
>>> sleep = datasets.load("sleepstudy")
>>> sleep.shape
(180, 3)
"""

from __future__ import annotations

import builtins
import functools
import json
from importlib.resources import files

import pandas as pd

from hlm.datasets._catalog import CATALOG, DatasetInfo

__all__ = ["load", "list", "describe"]


def list() -> builtins.list[str]:
    """Names of the bundled data sets.

    Returns
    -------
    list of str
        Lower-case names accepted by :func:`load`.
    """
    return [name for name in CATALOG]


def describe() -> pd.DataFrame:
    """Overview of the bundled data sets.

    Returns
    -------
    pandas.DataFrame
        One row per data set with columns ``name``, ``rows``, ``source`` and
        ``description``.
    """
    records = [
        {"name": e.name, "rows": e.rows, "source": e.source, "description": e.description}
        for e in CATALOG.values()
    ]
    return pd.DataFrame.from_records(records, columns=["name", "rows", "source", "description"])


def load(name: str) -> pd.DataFrame:
    """Load a bundled data set.

    Parameters
    ----------
    name : str
        Name of the data set, case-insensitive; one of :func:`list`.

    Returns
    -------
    pandas.DataFrame
        A fresh copy of the data: factor columns as :class:`pandas.Categorical` (with R's
        level order, ``ordered`` where R uses an ordered factor), all other columns
        ``float64``.

    Raises
    ------
    ValueError
        If `name` is not a bundled data set.
    """
    return _read(_lookup(name).name).copy(deep=True)


def _lookup(name: str) -> DatasetInfo:
    """Find the catalogue entry for a (case-insensitive) name."""
    info = CATALOG.get(str(name).lower())
    if info is None:
        available = ", ".join(CATALOG)
        raise ValueError(f"unknown data set {name!r}; available data sets: {available}")
    return info


@functools.cache
def _levels() -> dict[str, dict[str, dict]]:
    """Level order of every factor column, keyed by data set then column."""
    text = files(__name__).joinpath("data", "levels.json").read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def _read(name: str) -> pd.DataFrame:
    """Read and type one data set (cached; callers must copy)."""
    info = CATALOG[name]
    factors = _levels().get(info.key, {})
    with files(__name__).joinpath("data", info.filename).open("rb") as fh:
        frame = pd.read_csv(
            fh,
            compression="gzip",
            dtype={col: str for col in factors},
            na_values=["NA"],
            keep_default_na=False,
        )
    for col in frame.columns:
        if col in factors:
            frame[col] = _as_categorical(frame[col], factors[col], f"{info.key}.{col}")
        else:
            frame[col] = frame[col].astype("float64")
    return frame


def _as_categorical(values: pd.Series, spec: dict, label: str) -> pd.Categorical:
    """Turn string values into a Categorical with the given level order."""
    levels = spec["levels"]
    cat = pd.Categorical(values, categories=levels, ordered=bool(spec["ordered"]))
    unknown = values.notna().to_numpy() & (cat.codes < 0)
    if unknown.any():
        bad = sorted(set(values[unknown]))[:5]
        raise ValueError(f"{label}: values {bad} are not among the declared levels")
    return cat
