"""Shared pieces of the streaming tests: lme4 references, synthetic data, comparisons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

FIXTURES = Path(__file__).parent / "fixtures" / "lme4"


def reference(case: str) -> dict:
    """An lme4 reference fit (tests/fixtures/lme4/<case>.json, provenance in its README)."""
    return json.loads((FIXTURES / f"{case}.json").read_text(encoding="utf-8"))


def synthetic(n: int = 6000, J: int = 120, seed: int = 7) -> pd.DataFrame:
    """Two-level data with a random intercept and slope, a text predictor, an integer
    predictor, a second (crossed) factor, weights, an offset, and some missing values."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, J, n)
    h = rng.integers(0, 15, n)
    x = rng.standard_normal(n) + 3.0  # off-centre on purpose
    b0, b1, c0 = rng.standard_normal(J), 0.5 * rng.standard_normal(J), rng.standard_normal(15)
    y = 2.0 + 0.7 * x + b0[g] + b1[g] * x + 0.5 * c0[h] + rng.standard_normal(n)
    df = pd.DataFrame(
        {
            "y": y,
            "x": x,
            "k": rng.integers(0, 4, n),
            "s": rng.choice(["lo", "mid", "hi"], n),
            "g": g,
            "h": np.array([f"h{v:02d}" for v in h], dtype=object),
            "w": rng.uniform(0.5, 2.0, n),
            "o": 0.1 * rng.standard_normal(n),
        }
    )
    df.loc[rng.choice(n, 40, replace=False), "x"] = np.nan
    df.loc[rng.choice(n, 25, replace=False), "s"] = None
    df.loc[n - 3 :, "s"] = "zz"  # a level only the last rows show
    return df


def rel(a, b) -> float:
    """Largest relative difference, scaled by the largest magnitude of ``b``."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def raw_units(model):
    """``[X y]'[X y]`` and per-term ``Z'[X y]`` in the data's units (shift and scale undone).

    Accumulated columns are ``(v - shift) / scale`` with the intercept (or, without one, a
    hidden leading ones column) untouched, so ``[X y] = [X y]_s M`` with ``M = diag(scale)``
    plus the shifts in the intercept's row.  Streamed and in-memory statistics may use
    different shifts (their first rows differ when rows are dropped): compare them here.
    """
    A = model.A
    icol = model.fixed_names.index("(Intercept)") if A.basis is None else 0
    M = np.diag(A.scale)
    M[icol, :] += A.shift
    G = M.T @ A.G @ M
    ZXy = [np.einsum("gsm,mk->gsk", z, M) for z in A.ZXy]
    return G, ZXy
