"""Convergence checks at the optimum (hlm.engines.checks) and scale-free singular fits.

References: lme4's own finite-difference gradient and Hessian (``optinfo$derivs``) at its
optimum, from tests/fixtures/r/make_trust_refs.R (tests/fixtures/trust/derivs_lme4.json).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import hlm
from hlm.engines.checks import FULL_HESSIAN_MAX, GRAD_TOL, check_fit
from hlm.engines.theta_scale import ScaledTheta

TRUST = Path(__file__).parent / "fixtures" / "trust"
DATA = {"sleepstudy_corr": "sleepstudy", "penicillin": "penicillin", "dyestuff": "dyestuff"}


def checks_of(res) -> SimpleNamespace:
    """``res.fit_log.checks`` (a dict of JSON types) with arrays for the array fields."""
    rec = dict(res.fit_log.checks)
    for key in ("gradient", "scaled_gradient", "hessian", "hessian_eigenvalues"):
        rec[key] = np.asarray(rec[key], dtype=float)
    return SimpleNamespace(**rec)


def lme4_derivs():
    raw = json.loads((TRUST / "derivs_lme4.json").read_text(encoding="utf-8"))
    return raw["fits"]


def case_id(ref):
    return f"{ref['model_id']}__{ref['method']}"


@pytest.mark.parametrize("ref", lme4_derivs(), ids=case_id)
def test_gradient_and_hessian_match_lme4_deriv12(ref):
    """Same criterion, same point, same differences (delta = 1e-4): same numbers; and the
    analytic-gradient mode agrees with them to the differences' own accuracy."""
    data = hlm.datasets.load(DATA[ref["model_id"]])
    model = hlm.LinearMixedModel.from_formula(ref["formula"], data, method=ref["method"])
    theta = np.array(ref["theta"])
    k = theta.size
    H = np.array(ref["hessian"]).reshape(k, k, order="F")
    checks = check_fit(model, theta, model.objective(theta), derivatives="finite")
    assert checks.kind == "full" and checks.at_bound == ()
    assert checks.evaluations == 2 * k * k  # lme4's count
    np.testing.assert_allclose(checks.gradient, ref["gradient"], rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(checks.hessian, H, rtol=1e-4, atol=1e-4 * np.abs(H).max())
    assert checks.ok and checks.messages == ()
    exact = check_fit(model, theta, model.objective(theta), derivatives="gradient")
    assert exact.kind == "gradient" and exact.evaluations == k + 1
    # lme4's central differences are off by delta^2 f''' / 6, ~2e-5 here
    np.testing.assert_allclose(exact.gradient, ref["gradient"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(exact.hessian, H, rtol=1e-3, atol=1e-3 * np.abs(H).max())
    assert exact.ok


@pytest.mark.parametrize(
    ("formula", "name", "kind", "cost"),
    [
        # one term with an analytic gradient, 3 components: k + 1 gradient calls
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy", "gradient", 4),
        # two components: lme4's 2 k^2 evaluations are the cheaper
        ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin", "full", 8),
    ],
)
def test_a_converged_fit_records_its_checks(formula, name, kind, cost):
    res = hlm.fit(formula, hlm.datasets.load(name))
    c = checks_of(res)
    k = res.theta.size
    assert c.kind == kind and c.ok and res.converged
    assert c.max_grad < GRAD_TOL
    assert c.hessian.shape == (k, k) and np.all(c.hessian_eigenvalues > 0)
    assert c.gradient.shape == (k,) and c.scaled_gradient.shape == (k,)
    # the optimizer's count excludes the checks' evaluations
    assert res.fit_log.evaluations > 0 and c.evaluations == cost


def test_an_unfinished_fit_fails_the_gradient_check():
    data = hlm.datasets.load("sleepstudy")
    with pytest.warns(hlm.ConvergenceWarning) as record:
        res = hlm.fit("Reaction ~ Days + (Days | Subject)", data, maxeval=8, optimizer="bobyqa")
    assert any("scaled gradient" in str(w.message) for w in record)
    c = checks_of(res)
    assert not c.ok and c.max_grad > GRAD_TOL and not res.converged
    assert any("scaled gradient" in w for w in res.fit_log.warnings)


def test_a_flat_direction_is_reported():
    """Two copies of the same grouping factor: only theta_1^2 + theta_2^2 is determined."""
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(12), 5)
    y = rng.normal(size=12)[g] + rng.normal(size=60)
    data = pd.DataFrame({"y": y, "g": g, "h": g})
    with pytest.warns(hlm.ConvergenceWarning, match="numerically singular"):
        res = hlm.fit("y ~ 1 + (1 | g) + (1 | h)", data, theta0=[0.6, 0.7])
    c = checks_of(res)
    assert not c.ok and np.min(np.abs(c.hessian_eigenvalues)) <= c.hessian_tol


def test_many_theta_without_a_gradient_use_the_diagonal_only():
    """11 theta components and no analytic gradient (a vector term beside another term)."""
    rng = np.random.default_rng(8)
    g = np.repeat(np.arange(40), 8)
    h = np.tile(np.arange(8), 40)
    x1, x2, x3 = rng.normal(size=(3, g.size))
    b = rng.normal(size=(40, 4))
    y = b[g, 0] + (1 + b[g, 1]) * x1 + b[g, 2] * x2 + b[g, 3] * x3 + rng.normal(size=g.size)
    data = pd.DataFrame({"y": y + rng.normal(size=8)[h], "x1": x1, "x2": x2, "x3": x3, "g": g,
                         "h": h})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hlm.errors.HLMWarning)
        res = hlm.fit("y ~ x1 + (x1 + x2 + x3 | g) + (1 | h)", data)
    c = checks_of(res)
    assert res.theta.size == 11 > FULL_HESSIAN_MAX and not res.model.has_gradient
    assert c.kind == "diagonal"
    assert c.evaluations == 2 * (11 - len(c.at_bound)) + len(c.at_bound)
    assert np.allclose(c.hessian, np.diag(np.diag(c.hessian)))


def test_many_theta_with_a_gradient_get_the_full_hessian():
    rng = np.random.default_rng(8)
    g = np.repeat(np.arange(40), 8)
    x1, x2, x3 = rng.normal(size=(3, g.size))
    b = rng.normal(size=(40, 4))
    y = b[g, 0] + (1 + b[g, 1]) * x1 + b[g, 2] * x2 + b[g, 3] * x3 + rng.normal(size=g.size)
    data = pd.DataFrame({"y": y, "x1": x1, "x2": x2, "x3": x3, "g": g})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hlm.errors.HLMWarning)
        res = hlm.fit("y ~ x1 + (x1 + x2 + x3 | g)", data)
    c = checks_of(res)
    k = 10 - len(c.at_bound)
    assert c.kind == "gradient" and c.hessian.shape == (k, k)
    assert c.evaluations == k + 1 + len(c.at_bound)


def test_boundary_components_are_checked_one_sided():
    with pytest.warns(hlm.SingularFitWarning):
        res = hlm.fit("Yield ~ 1 + (1 | Batch)", hlm.datasets.load("dyestuff2"))
    c = checks_of(res)
    assert c.at_bound == ["Batch.(Intercept)"]
    assert c.gradient[0] >= 0  # the criterion rises into the interior
    assert np.isnan(c.scaled_gradient[0])
    assert c.ok and c.evaluations == 1


# --- singular-fit detection does not depend on units ----------------------------------------------


@pytest.mark.parametrize("factor", [1e-8, 1.0, 1e8])
def test_singular_flag_does_not_depend_on_the_scale_of_y(factor):
    """theta is relative to sigma: rescaling y leaves theta, and the flag, unchanged."""
    for name, singular in (("dyestuff2", True), ("dyestuff", False)):
        data = hlm.datasets.load(name)
        data = data.assign(Yield=data["Yield"] * factor)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hlm.SingularFitWarning)
            res = hlm.fit("Yield ~ 1 + (1 | Batch)", data)
        assert res.singular is singular
        base = hlm.fit("Yield ~ 1 + (1 | Batch)", hlm.datasets.load(name)) if not singular else None
        if singular:
            assert res.theta[0] == 0.0
        else:
            np.testing.assert_allclose(res.theta, base.theta, rtol=1e-6)


@pytest.mark.parametrize("unit", [1e-9, 1.0, 1e9])
def test_singular_flag_does_not_depend_on_the_unit_of_a_random_slope(unit):
    """A real slope variance is not called zero because its variable is in giga-units,
    nor a zero one found because of micro-units (theta is optimised in units of the spread
    of each Z column: hlm.engines.theta_scale)."""
    data = hlm.datasets.load("sleepstudy")
    data = data.assign(Days=data["Days"] * unit)
    res = hlm.fit("Reaction ~ Days + (Days | Subject)", data)
    base = hlm.fit("Reaction ~ Days + (Days | Subject)", hlm.datasets.load("sleepstudy"))
    assert res.singular is False and res.converged
    assert res.criterion - base.criterion == pytest.approx(2 * np.log(unit), abs=1e-6)
    want = base.theta * np.array([1.0, 1.0 / unit, 1.0 / unit])
    np.testing.assert_allclose(res.theta, want, rtol=1e-4, atol=1e-4 * np.abs(want[0]))


def test_the_record_survives_saving(tmp_path):
    """``fit_log.checks`` is plain JSON data, so saved results keep it."""
    from hlm.io.load import load_result
    from hlm.io.store import save_result

    res = hlm.fit("Reaction ~ Days + (Days | Subject)", hlm.datasets.load("sleepstudy"))
    save_result(res, tmp_path / "fit.hlm")
    back = load_result(tmp_path / "fit.hlm")
    assert back.fit_log.checks == json.loads(json.dumps(res.fit_log.checks))
    assert back.fit_log.checks["kind"] == "gradient" and back.fit_log.checks["ok"] is True


def test_theta_scaling_is_the_identity_on_ordinary_data():
    model = hlm.LinearMixedModel.from_formula(
        "Reaction ~ Days + (Days | Subject)", hlm.datasets.load("sleepstudy")
    )
    view = ScaledTheta(model)
    assert view.is_identity
    theta = np.array([0.9, 0.02, 0.2])
    assert view.objective(theta) == model.objective(theta)
