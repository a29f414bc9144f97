"""Per-row outputs (fitted values, residuals): a second pass over the rows in chunks."""

from __future__ import annotations

import numpy as np
import pandas as pd


def fitted_values(result) -> tuple[pd.Series, pd.Series]:
    """``(fitted, y)`` for the rows used in the fit, indexed like the data."""
    model = result.model
    df = model.frame.data
    beta = result.fixef.to_numpy()
    b = result._est.b
    keep = model.keep
    n = len(df)
    fit = np.empty(n)
    y = np.empty(n)
    from hlm.model import CHUNK_ROWS

    for start in range(0, n, CHUNK_ROWS):
        chunk = df.iloc[start : start + CHUNK_ROWS]
        Xy = model.design.Xy(chunk)
        f = Xy[:, keep] @ beta
        for blk, bk in zip(model.blocks, b, strict=True):
            Z = blk.Z(chunk)
            codes = blk.codes[start : start + CHUNK_ROWS]
            f += np.einsum("ij,ij->i", Z, bk[codes])
        if model.offset is not None:
            f += model.offset[start : start + CHUNK_ROWS]
        fit[start : start + len(chunk)] = f
        y[start : start + len(chunk)] = Xy[:, -1]
    return pd.Series(fit, index=df.index, name="fitted"), pd.Series(y, index=df.index, name="y")
