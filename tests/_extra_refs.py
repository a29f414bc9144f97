"""Loading the extra lme4 reference fits in ``tests/fixtures/lme4_extra`` (see README there).

The numbers in those files come from R's lme4 (``tests/fixtures/r/make_extra_refs.R``), never
from hlm.  This module only reads them and rebuilds the exact data each fit used.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from hlm import datasets

FIXTURES = Path(__file__).parent / "fixtures" / "lme4_extra"
SIM_DATA = FIXTURES / "data"

# lme4 spells the columns of a categorical predictor ``SexFemale``; formulaic (hence hlm)
# spells a treatment-coded dummy ``Sex[T.Female]`` and a full dummy (no intercept in the
# term, as in ``(0 + Sex | School)``) ``Sex[Female]``.  Everything else has the same name.
LME4_TO_HLM = {
    "hsb_sector_sex": {
        "SectorCatholic": "Sector[T.Catholic]",
        "SexFemale": "Sex[T.Female]",
        "SectorCatholic:cses": "Sector[T.Catholic]:cses",
    },
    "hsb_sex_slope": {
        "SexFemale": "Sex[T.Female]",  # fixed part (with intercept)
        "School.SexMale": "School.Sex[Male]",  # theta names
        "School.SexFemale.SexMale": "School.Sex[Female].Sex[Male]",
        "School.SexFemale": "School.Sex[Female]",
    },
}
# random-effect columns of ``(0 + Sex | School)``: full dummy coding
LME4_TO_HLM_RANEF = {"hsb_sex_slope": {"SexMale": "Sex[Male]", "SexFemale": "Sex[Female]"}}


def case_ids() -> list[str]:
    """Every ``<model_id>__<method>`` stored in the fixture directory."""
    return sorted(path.stem for path in FIXTURES.glob("*.json"))


@cache
def reference(case: str) -> dict:
    """The lme4 reference fit ``tests/fixtures/lme4_extra/<case>.json``."""
    return json.loads((FIXTURES / f"{case}.json").read_text(encoding="utf-8"))


def hlm_name(ref: dict, name: str) -> str:
    """hlm's name of an lme4 fixed-effect or theta name."""
    return LME4_TO_HLM.get(ref["model_id"], {}).get(name, name)


def hlm_ranef_column(ref: dict, name: str) -> str:
    """hlm's name of an lme4 random-effect column (``(Intercept)``, ``Days``, ``SexMale``)."""
    return LME4_TO_HLM_RANEF.get(ref["model_id"], {}).get(name, name)


def read_sim(name: str) -> pd.DataFrame:
    """A simulated data set written by the R script: labels as text, numbers as float.

    ``round_trip`` parsing gives the correctly rounded double of each decimal, as R reads it.
    """
    columns = pd.read_csv(SIM_DATA / name, nrows=0).columns
    labels = {c: str for c in columns if c not in ("y", "x")}
    frame = pd.read_csv(
        SIM_DATA / name, dtype=labels, float_precision="round_trip", keep_default_na=False
    )
    return frame


def sleepstudy_extra() -> pd.DataFrame:
    """sleepstudy with the columns the R script derives (``w`` and ``Days2``)."""
    data = datasets.load("sleepstudy")
    row = np.arange(1, len(data) + 1)  # R's seq_len
    data["w"] = 1.0 + np.mod(data["Days"], 3.0)
    data["Days2"] = data["Days"] + 1e-4 * (np.mod(row, 7) - 3)
    return data


def load_data(ref: dict) -> pd.DataFrame:
    """The data exactly as the reference fit saw them."""
    name = ref["data"]
    if name.endswith(".csv"):
        return read_sim(name)
    if name == "sleepstudy":
        return sleepstudy_extra()
    return datasets.load(name)


def as_vector(value) -> np.ndarray:
    """A JSON number or list as a 1-d float array."""
    return np.atleast_1d(np.asarray(value, dtype=float))
