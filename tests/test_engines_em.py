"""EM and Fisher scoring: monotone paths, fit logs, and the pieces they are built from."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

import hlm
from hlm import datasets
from hlm.engines.em import run_em
from hlm.engines.varcomp import (
    criterion_at,
    layout,
    psd_cholesky,
    psi_from_theta,
    theta_from_psi,
)

MODELS = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    ("pastes", "strength ~ 1 + (1 | batch/cask)"),
    ("hsb", "MathAch ~ MEANSES*cses + Sector*cses + (cses | School)"),
    ("dyestuff2", "Yield ~ 1 + (1 | Batch)"),
]


def _model(data, formula, method):
    return hlm.LinearMixedModel.from_formula(formula, datasets.load(data), method=method)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize(("data", "formula"), MODELS)
@pytest.mark.parametrize("accelerate", [False, True])
def test_em_loglik_never_decreases(data, formula, method, accelerate):
    m = _model(data, formula, method)
    em = run_em(m, m.cov.start() * 3.0, accelerate=accelerate, maxiter=60)
    path = np.array(em.loglik_path)
    assert len(path) >= 3
    # rounding of the criterion: about 1e-12 relative
    assert np.all(np.diff(path) >= -1e-10 * np.abs(path[1:])), np.diff(path).min()
    assert path[-1] > path[0]


@pytest.mark.parametrize("engine", ["em", "fisher", "em+fisher"])
def test_fit_log_records_iterations_and_path(engine):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hlm.fit(
            "Reaction ~ Days + (Days | Subject)", datasets.load("sleepstudy"), engine=engine
        )
    log = res.fit_log
    assert log.engine == engine and log.converged
    assert log.iterations >= 1
    assert len(log.loglik_path) >= 2
    assert np.all(np.diff(log.loglik_path) >= -1e-9)
    # the last point of the path is the reported optimum (to the polish of the boundary)
    assert log.loglik_path[-1] == pytest.approx(res.loglik, abs=1e-6)
    assert f"{log.optimizer}" in res.summary()


def test_profiled_fit_log_has_no_path():
    res = hlm.fit("Reaction ~ Days + (Days | Subject)", datasets.load("sleepstudy"))
    assert res.fit_log.iterations == 0 and res.fit_log.loglik_path == ()


def test_em_step_is_exact_at_the_optimum():
    """At the ML/REML optimum the EM map is a fixed point."""
    for method in ("REML", "ML"):
        base = hlm.fit(
            "Reaction ~ Days + (Days | Subject)",
            datasets.load("sleepstudy"),
            method=method,
            engine="fisher",
        )
        m = base.model
        from hlm.engines.em import EMMap
        from hlm.engines.varcomp import scale_y

        s2 = base.sigma**2 / scale_y(m) ** 2
        _, theta, sigma2 = EMMap(m)(np.array(base.theta), s2)
        assert np.allclose(theta, base.theta, rtol=1e-5, atol=1e-7)
        assert sigma2 == pytest.approx(s2, rel=1e-6)


def test_criterion_at_profiled_sigma_is_the_profiled_criterion():
    m = _model("sleepstudy", "Reaction ~ Days + (Days | Subject)", "REML")
    theta = np.array([0.9, 0.02, 0.2])
    prof = m.objective(theta)
    from hlm.engines.varcomp import profiled_sigma2

    s2 = profiled_sigma2(m)
    assert criterion_at(m, theta, s2) == pytest.approx(prof, abs=1e-9)
    assert criterion_at(m, theta, 1.1 * s2) > prof


def test_psi_theta_round_trip_and_semidefinite_cholesky():
    m = _model("sleepstudy", "Reaction ~ Days + (Days | Subject)", "ML")
    lay = layout(m)
    theta = np.array([0.9, -0.3, 0.2])
    psi = psi_from_theta(m, lay, theta, 2.0)
    assert np.allclose(theta_from_psi(m, lay, psi), theta)
    # correlation exactly 1 (singular) and a zero variance are accepted; indefinite is not
    assert psd_cholesky(np.array([[4.0, 2.0], [2.0, 1.0]])) is not None
    assert psd_cholesky(np.array([[0.0, 0.0], [0.0, 1.0]])) is not None
    assert psd_cholesky(np.array([[1.0, 2.0], [2.0, 1.0]])) is None
    assert lay.keys[-1] == ("Residual", None, None)
    assert lay.keys[2] == ("Subject", "(Intercept)", "Days")


def test_engines_fit_without_the_rows():
    """An iteration needs the cross-products only: the engines run on a model whose data
    frame has been emptied after the cross-products were formed."""
    data = datasets.load("sleepstudy")
    base = hlm.fit("Reaction ~ Days + (Days | Subject)", data)
    from hlm.engines.iterative import fit_em, fit_fisher

    for fit in (fit_em, fit_fisher):
        m = hlm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", data)
        m.frame = dataclasses.replace(m.frame, data=m.frame.data.iloc[:0])  # rows gone
        res = fit(m)
        assert res.criterion == pytest.approx(base.criterion, abs=1e-6)


@pytest.mark.parametrize("engine", ["em", "fisher", "em+fisher"])
def test_engines_reach_the_optimum_where_scoring_creeps(engine):
    """A random intercept without a fixed one: the expected information is a poor model of
    the curvature (huge intercept variance, correlation -0.8); Fisher scoring switches to
    the observed information and still converges."""
    data = datasets.load("sleepstudy")
    f = "Reaction ~ 0 + Days + (Days | Subject)"
    base = hlm.fit(f, data)
    res = hlm.fit(f, data, engine=engine)
    assert res.fit_log.converged
    assert res.criterion == pytest.approx(base.criterion, abs=1e-6)
    assert np.allclose(res.fixef, base.fixef, atol=1e-3 * base.fixef_se.to_numpy())
