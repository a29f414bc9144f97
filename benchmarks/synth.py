"""Synthetic data for the large benchmark cells.

``y = X beta + b0[g] + b1[g] * x1 + e`` with nine standard-normal covariates
``x1..x9``, ``J`` groups drawn uniformly at random for the rows, random intercept and
``x1`` slope with SDs 1.0 and 0.5 and correlation 0.3, and residual SD 1.

The data are written once to ``benchmarks/.cache/syn_n<n>_J<J>/``, in chunks so that
n = 1e7 needs little memory:

* ``data.parquet`` for the Python tools (``g`` stored as int32 codes);
* ``<column>.bin`` (little-endian float64; ``g`` int32) for R, which reads them with
  ``readBin`` without extra packages.

Run ``python benchmarks/synth.py 1e7 1e5`` to generate a set by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cells import CACHE_DIR

SEED = 20240611
BETA = np.array([1.0, 0.5, -0.3, 0.2, 0.1, -0.1, 0.25, -0.2, 0.05, 0.3])  # intercept, x1..x9
RE_SD = (1.0, 0.5)
RE_CORR = 0.3
CHUNK = 1_000_000
COLUMNS = ["y"] + [f"x{k}" for k in range(1, 10)] + ["g"]


def cache_path(n: int, J: int) -> Path:
    """Directory holding the synthetic data set with `n` rows and `J` groups."""
    return CACHE_DIR / f"syn_n{n}_J{J}"


def _random_effects(rng: np.random.Generator, J: int) -> np.ndarray:
    s0, s1 = RE_SD
    cov = np.array([[s0 * s0, RE_CORR * s0 * s1], [RE_CORR * s0 * s1, s1 * s1]])
    return rng.standard_normal((J, 2)) @ np.linalg.cholesky(cov).T


def _chunk(rng: np.random.Generator, m: int, b: np.ndarray) -> dict[str, np.ndarray]:
    x = rng.standard_normal((m, 9))
    g = rng.integers(0, b.shape[0], size=m).astype(np.int32)
    y = BETA[0] + x @ BETA[1:] + b[g, 0] + b[g, 1] * x[:, 0] + rng.standard_normal(m)
    cols = {"y": y}
    cols.update({f"x{k + 1}": np.ascontiguousarray(x[:, k]) for k in range(9)})
    cols["g"] = g
    return cols


def generate(n: int, J: int, force: bool = False) -> Path:
    """Write the data set with `n` rows and `J` groups (if not cached yet).

    Parameters
    ----------
    n, J : int
        Number of rows and of groups.
    force : bool
        Rewrite even if a complete copy exists.

    Returns
    -------
    pathlib.Path
        The cache directory of the data set.
    """
    out = cache_path(n, J)
    done = out / "COMPLETE"
    if done.exists() and not force:
        return out
    out.mkdir(parents=True, exist_ok=True)
    done.unlink(missing_ok=True)
    rng = np.random.default_rng([SEED, n, J])
    b = _random_effects(rng, J)
    schema = pa.schema([(c, pa.int32() if c == "g" else pa.float64()) for c in COLUMNS])
    bins = {c: open(out / f"{c}.bin", "wb") for c in COLUMNS}
    try:
        with pq.ParquetWriter(out / "data.parquet", schema) as writer:
            for start in range(0, n, CHUNK):
                cols = _chunk(rng, min(CHUNK, n - start), b)
                writer.write_table(pa.table(cols, schema=schema))
                for c in COLUMNS:
                    cols[c].astype("<i4" if c == "g" else "<f8").tofile(bins[c])
    finally:
        for fh in bins.values():
            fh.close()
    done.write_text(f"{n} {J}\n")
    return out


def read_parquet(n: int, J: int) -> pd.DataFrame:
    """Read a generated data set as pandas, with ``g`` a categorical of ``J`` levels."""
    table = pq.read_table(cache_path(n, J) / "data.parquet")
    df = table.to_pandas()
    del table
    df["g"] = pd.Categorical.from_codes(df["g"].to_numpy(), categories=np.arange(J))
    # hand Arrow's read buffers back to the system, so that the peak RSS of a fit is measured
    # against the data frame itself and not against the reader's leftovers
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    return df


if __name__ == "__main__":
    n_arg, J_arg = (int(float(a)) for a in sys.argv[1:3])
    print(generate(n_arg, J_arg))
