"""The compiled Gibbs kernel runs in the default suite (its first compile is paid once).

Reference: lme4 1.1-31's REML fit of sleepstudy (tests/fixtures/lme4/sleepstudy_corr__REML.json):
with 18 subjects and weakly informative priors the posterior means of the fixed effects lie
within a fraction of their standard errors of the REML estimates, and sigma within a few
percent.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import hlm

pytest.importorskip("numba")
pytest.importorskip("arviz")

REF = json.loads(
    (Path(__file__).parent / "fixtures" / "lme4" / "sleepstudy_corr__REML.json").read_text()
)


def test_compiled_kernel_matches_reml_on_sleepstudy():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hlm.sample(
            "Reaction ~ Days + (Days | Subject)",
            hlm.datasets.load("sleepstudy"),
            chains=2,
            draws=1500,
            warmup=500,
            seed=11,
            progress=False,
            engine="numba",
        )
    beta = np.asarray(list(REF["fixef"].values()), dtype=float)
    se = np.asarray(list(REF["fixef_se"].values()), dtype=float)
    assert np.all(np.abs(res.fixef.to_numpy() - beta) < 0.3 * se)
    assert res.sigma == pytest.approx(REF["sigma"], rel=0.05)
