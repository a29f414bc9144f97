"""Tables of a fitted model: variance components, random effects, coefficients."""

from __future__ import annotations

import numpy as np
import pandas as pd


def unique_group_names(groups: list[str]) -> list[str]:
    """lme4's display names: a repeated grouping factor gets ``.1``, ``.2`` ... suffixes."""
    seen: dict[str, int] = {}
    out = []
    for g in groups:
        k = seen.get(g, 0)
        out.append(g if k == 0 else f"{g}.{k}")
        seen[g] = k + 1
    return out


def varcorr_table(blocks, names, Sigma, sigma) -> pd.DataFrame:
    """Rows of lme4's ``as.data.frame(VarCorr(fit))``."""
    rows = []
    for b, name, Sk in zip(blocks, names, Sigma, strict=True):
        sd = np.sqrt(np.maximum(np.diag(Sk), 0.0))
        for i, col in enumerate(b.columns):
            rows.append((name, col, None, float(Sk[i, i]), float(sd[i])))
        for i in range(b.S):
            for j in range(i + 1, b.S):
                denom = sd[i] * sd[j]
                corr = float(Sk[i, j] / denom) if denom > 0 else float("nan")
                rows.append((name, b.columns[i], b.columns[j], float(Sk[i, j]), corr))
    rows.append(("Residual", None, None, sigma**2, sigma))
    return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])


def _merge_by_group(blocks, arrays, make_frame) -> dict:
    out: dict = {}
    for b, arr in zip(blocks, arrays, strict=True):
        frame = make_frame(b, arr)
        if b.group in out:
            prev = out[b.group]
            frame.columns = [
                c if c not in prev.columns else f"{c}.{len(prev.columns)}" for c in frame.columns
            ]
            out[b.group] = pd.concat([prev, frame], axis=1)
        else:
            out[b.group] = frame
    return out


def _index(b) -> pd.Index:
    return pd.Index(b.levels.astype(str), name=b.group)


def ranef_tables(blocks, b_list) -> dict:
    """Grouping factor -> DataFrame of conditional modes (levels x columns)."""
    return _merge_by_group(
        blocks, b_list, lambda b, arr: pd.DataFrame(arr, index=_index(b), columns=b.columns)
    )


def ranef_var_tables(blocks, var_list) -> dict:
    """Grouping factor -> DataFrame of conditional variances (diagonals of the blocks)."""
    return _merge_by_group(
        blocks,
        var_list,
        lambda b, arr: pd.DataFrame(
            np.diagonal(arr, axis1=1, axis2=2), index=_index(b), columns=b.columns
        ),
    )


def coef_table(fixef: pd.Series, ranef: dict) -> dict:
    """Per grouping factor: every fixed effect, plus the group's random effect where present."""
    out = {}
    for group, frame in ranef.items():
        table = pd.DataFrame(
            np.tile(fixef.to_numpy(), (len(frame), 1)), index=frame.index, columns=fixef.index
        )
        for col in frame.columns:
            base = col
            if base not in table.columns and "." in col and col.rsplit(".", 1)[1].isdigit():
                base = col.rsplit(".", 1)[0]  # the suffix _merge_by_group added
            if base in table.columns:
                table[base] = table[base] + frame[col]
            else:
                table[col] = frame[col]
        out[group] = table
    return out
