"""Compare hlm fits with reference fits from R's lme4 (tests/fixtures/lme4, see README there).

Each model is fitted once per module (``fits`` fixture); every test function checks one
quantity for all 22 reference fits.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hlm
from hlm import datasets

FIXTURES = Path(__file__).parent / "fixtures" / "lme4"
CASES = sorted(path.stem for path in FIXTURES.glob("*.json"))
SINGULAR_CASES = [case for case in CASES if case.startswith("dyestuff2__")]

# models whose likelihood is flat: SEs, SDs, correlations and modes are looser
FLAT_MODELS = {"hsb_d_slopes_outcomes"}


@cache
def reference(case: str) -> dict:
    """The lme4 reference fit ``tests/fixtures/lme4/<case>.json``."""
    return json.loads((FIXTURES / f"{case}.json").read_text(encoding="utf-8"))


def loose(ref: dict, strict: float, flat: float) -> float:
    """Tolerance for a model: `flat` for flat-likelihood models, else `strict`."""
    return flat if ref["model_id"] in FLAT_MODELS else strict


def as_vector(value) -> np.ndarray:
    """A JSON number or list as a 1-d float array (jsonlite unboxes length-one vectors)."""
    return np.atleast_1d(np.asarray(value, dtype=float))


class FitCache:
    """Fit each reference model once; remember failures so they are not retried."""

    def __init__(self) -> None:
        self._fits: dict[str, object] = {}

    def __call__(self, case: str):
        if case not in self._fits:
            ref = reference(case)
            data = datasets.load(ref["data"])
            try:
                self._fits[case] = hlm.fit(ref["formula"], data, method=ref["method"])
            except Exception as exc:  # reported by every test that needs this fit
                self._fits[case] = exc
        result = self._fits[case]
        if isinstance(result, Exception):
            raise RuntimeError(f"hlm.fit failed for {case}") from result
        return result


@pytest.fixture(scope="module")
def fits() -> FitCache:
    return FitCache()


# --- name mapping lme4 -> hlm -------------------------------------------------------------


def _lme4_factor_to_hlm(part: str, data: pd.DataFrame) -> str:
    """Map one factor of an lme4 coefficient name (``SectorCatholic``) to formulaic's
    (``Sector[T.Catholic]``); numeric columns and ``(Intercept)`` are unchanged."""
    if part == "(Intercept)" or (
        part in data.columns and not isinstance(data[part].dtype, pd.CategoricalDtype)
    ):
        return part
    candidates = [
        f"{col}[T.{part[len(col) :]}]"
        for col in data.columns
        if isinstance(data[col].dtype, pd.CategoricalDtype)
        and part.startswith(col)
        and part[len(col) :] in set(data[col].cat.categories)
    ]
    if len(candidates) != 1:
        raise AssertionError(f"cannot map lme4 coefficient part {part!r}: {candidates}")
    return candidates[0]


def fixef_name_map(lme4_names, hlm_names, data: pd.DataFrame) -> dict[str, str]:
    """Map lme4 fixed-effect names to hlm's, matching interactions by their set of factors.

    ``cses:SectorCatholic`` -> whichever of ``cses:Sector[T.Catholic]`` or
    ``Sector[T.Catholic]:cses`` hlm uses.
    """
    by_parts = {frozenset(name.split(":")): name for name in hlm_names}
    mapping = {}
    for name in lme4_names:
        parts = frozenset(_lme4_factor_to_hlm(p, data) for p in name.split(":"))
        assert parts in by_parts, f"lme4 coefficient {name!r} not in hlm's {list(hlm_names)}"
        mapping[name] = by_parts[parts]
    return mapping


def base_group(name: str) -> str:
    """Grouping factor of a block name: lme4 calls a second block of ``Subject`` terms
    ``Subject.1``."""
    return re.sub(r"\.\d+$", "", name)


def group_key(name: str) -> frozenset[str]:
    """Compare grouping names up to lme4's ``.1`` block suffix and factor order in
    interactions (``cask:batch`` == ``batch:cask``, ``Subject.1`` == ``Subject``)."""
    return frozenset(base_group(name).split(":"))


def hlm_level(label: str, lme4_group: str, hlm_group: str) -> str:
    """lme4's label of an interaction level (``a:A`` for ``cask:batch``) in hlm's factor
    order (``A:a`` for ``batch:cask``)."""
    lme4_parts = base_group(lme4_group).split(":")
    if len(lme4_parts) == 1:
        return label
    values = dict(zip(lme4_parts, label.split(":"), strict=True))
    return ":".join(values[part] for part in base_group(hlm_group).split(":"))


def normalise(value):
    """None for the ways a table can spell a missing name (None, NaN, '')."""
    if value is None or value == "" or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value


def fixef_mapping(res, ref):
    data = datasets.load(ref["data"])
    return fixef_name_map(ref["fixef"], list(res.fixef.index), data)


# --- tests ---------------------------------------------------------------------------------


def test_fixture_inventory():
    assert len(CASES) == 22
    assert len(SINGULAR_CASES) == 2
    for case in CASES:
        ref = reference(case)
        assert case == f"{ref['model_id']}__{ref['method']}"
        assert ref["tool"] == "lme4" and ref["status"] == "ok"


@pytest.mark.parametrize("case", CASES)
def test_criterion_at_optimum(fits, case):
    ref, res = reference(case), fits(case)
    assert res.criterion <= ref["criterion"] + 1e-6
    assert res.criterion >= ref["criterion"] - 1e-3, "much better than lme4: suspicious"


@pytest.mark.parametrize("case", CASES)
def test_objective_at_lme4_theta(fits, case):
    ref, res = reference(case), fits(case)
    value = res.model.objective(as_vector(ref["theta"]))
    assert value == pytest.approx(ref["criterion"], rel=1e-8, abs=0)


@pytest.mark.parametrize("case", CASES)
def test_model_from_formula_objective(case):
    ref = reference(case)
    model = hlm.LinearMixedModel.from_formula(
        ref["formula"], datasets.load(ref["data"]), method=ref["method"]
    )
    value = model.objective(as_vector(ref["theta"]))
    assert value == pytest.approx(ref["criterion"], rel=1e-8, abs=0)


@pytest.mark.parametrize("case", CASES)
def test_fixef(fits, case):
    ref, res = reference(case), fits(case)
    mapping = fixef_mapping(res, ref)
    assert sorted(mapping.values()) == sorted(res.fixef.index)
    for name, hlm_name in mapping.items():
        expected = ref["fixef"][name]
        tol = max(1e-5 * abs(expected), 1e-4 * ref["fixef_se"][name])
        assert abs(res.fixef[hlm_name] - expected) <= tol, name


@pytest.mark.parametrize("case", CASES)
def test_fixef_se(fits, case):
    ref, res = reference(case), fits(case)
    rel = loose(ref, 1e-4, 1e-3)
    for name, hlm_name in fixef_mapping(res, ref).items():
        assert res.fixef_se[hlm_name] == pytest.approx(ref["fixef_se"][name], rel=rel), name


@pytest.mark.parametrize("case", CASES)
def test_sigma(fits, case):
    ref, res = reference(case), fits(case)
    assert res.sigma == pytest.approx(ref["sigma"], rel=1e-4)


@pytest.mark.parametrize("case", CASES)
def test_theta(fits, case):
    ref, res = reference(case), fits(case)
    expected = as_vector(ref["theta"])
    theta = np.asarray(res.theta, dtype=float)
    assert theta.shape == expected.shape
    tol = np.maximum(1e-3 * np.abs(expected), 1e-4)
    assert np.all(np.abs(theta - expected) <= tol), (theta, expected)


@pytest.mark.parametrize("case", CASES)
def test_varcorr(fits, case):
    ref, res = reference(case), fits(case)
    table = res.varcorr()
    assert {"grp", "var1", "var2", "vcov", "sdcor"} <= set(table.columns)
    rows = table.to_dict("records")
    assert len(rows) == len(ref["varcorr_table"])
    sd_rel = loose(ref, 1e-4, 1e-3)  # relative, for SDs and variances
    corr_abs = loose(ref, 1e-4, 1e-3)  # absolute, for correlations
    for i, (row, want) in enumerate(zip(rows, ref["varcorr_table"], strict=True)):
        where = f"row {i}: {want}"
        if want["grp"] == "Residual":
            assert row["grp"] == "Residual", where
        else:
            assert group_key(row["grp"]) == group_key(want["grp"]), where
        assert normalise(row["var1"]) == want["var1"], where
        assert normalise(row["var2"]) == want["var2"], where
        if want["var2"] is None:  # a variance: SD and variance
            assert row["sdcor"] == pytest.approx(want["sdcor"], rel=sd_rel), where
            assert row["vcov"] == pytest.approx(want["vcov"], rel=2 * sd_rel), where
        else:  # a covariance: correlation
            assert abs(row["sdcor"] - want["sdcor"]) <= corr_abs, where
    assert rows[-1]["sdcor"] == pytest.approx(res.sigma, rel=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_ranef(fits, case):
    ref, res = reference(case), fits(case)
    ranef = res.ranef()
    scale = loose(ref, 1e-4, 1e-3)  # absolute tolerance in units of the term's SD
    for group, want in ref["ranef_first20"].items():
        matches = [g for g in ranef if group_key(g) == group_key(group)]
        assert matches, f"group {group!r} not in hlm's ranef {list(ranef)}"
        frame = pd.concat([ranef[g] for g in matches], axis=1)
        columns = [c for c in want if c != "levels"]
        assert sorted(frame.columns) == sorted(columns), group
        labels = [hlm_level(lab, group, matches[0]) for lab in want["levels"]]
        index = [str(i) for i in frame.index]
        missing = [lab for lab in labels if lab not in index]
        assert not missing, f"{group}: levels {missing} not in hlm's ranef index"
        positions = [index.index(lab) for lab in labels]
        for col in columns:
            sd = ref["varcomp"][f"{base_group(group)}|{col}"]
            got = frame[col].to_numpy(dtype=float)[positions]
            np.testing.assert_allclose(
                got,
                want[col],
                rtol=0,
                atol=scale * sd + 1e-12 * ref["sigma"],
                err_msg=f"{group} / {col}",
            )


@pytest.mark.parametrize("case", CASES)
def test_singular_flag(fits, case):
    ref, res = reference(case), fits(case)
    assert res.singular is ref["singular"]


@pytest.mark.parametrize("case", SINGULAR_CASES)
def test_singular_fit_is_exactly_on_boundary(fits, case):
    res = fits(case)
    assert res.singular is True
    assert res.theta[0] == 0.0
    table = res.varcorr()
    batch = table[table["grp"] == "Batch"]
    assert len(batch) == 1
    assert batch["vcov"].iloc[0] == 0.0
    assert batch["sdcor"].iloc[0] == 0.0


@pytest.mark.parametrize("case", CASES)
def test_counts(fits, case):
    ref, res = reference(case), fits(case)
    assert res.nobs == ref["nobs"]
    got = {group_key(k): v for k, v in res.ngroups.items()}
    assert got == {group_key(k): v for k, v in ref["ngroups"].items()}


@pytest.mark.parametrize("case", CASES)
def test_loglik_aic_bic(fits, case):
    ref, res = reference(case), fits(case)
    # a (slightly) better optimum than lme4's shifts all three by the same amount
    gain = ref["criterion"] - res.criterion
    assert res.loglik == pytest.approx(ref["logLik"] + gain / 2, abs=1e-6)
    assert res.aic == pytest.approx(ref["AIC"] - gain, abs=1e-6)
    assert res.bic == pytest.approx(ref["BIC"] - gain, abs=1e-6)
