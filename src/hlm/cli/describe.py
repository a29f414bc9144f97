"""``hlm describe DATA --group g``: group sizes, the level of each variable, ICCs.

A variable is *level 2* when it is constant within every group (missing values ignored)
and *level 1* otherwise.  The ICC of a numeric level-1 variable is the share of its
variance between groups in the random-intercept model ``x ~ 1 + (1 | g)`` fitted by REML,
``tau_00 / (tau_00 + sigma^2)``; a level-2 variable's is 1 by definition.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from hlm.errors import DataError, HLMError


def group_sizes(data: pd.DataFrame, group: str) -> pd.Series:
    """Rows per group (groups with a missing label are left out)."""
    if group not in data.columns:
        raise DataError(
            f"--group {group!r} is not a column of the data; columns: "
            + ", ".join(map(str, data.columns[:20]))
        )
    return data.groupby(data[group].astype(str), observed=True, dropna=True).size()


def variable_table(data: pd.DataFrame, group: str, progress=None) -> pd.DataFrame:
    """One row per variable: kind, missing count, level, ICC (numeric level-1 variables).

    Returns
    -------
    pandas.DataFrame
        Indexed by variable; columns ``kind`` ("numeric" or "categorical"), ``missing``,
        ``distinct``, ``level`` (1 or 2), ``icc``.
    """
    from hlm.progress import progress_bar

    g = data[group]
    codes = pd.factorize(g, use_na_sentinel=True)[0]
    ok = codes >= 0
    rows = {}
    others = [c for c in data.columns if c != group]
    with progress_bar(total=len(others), desc="describing", unit="var", enabled=progress) as bar:
        for col in others:
            x = data[col]
            numeric = pd.api.types.is_numeric_dtype(x.dtype) and not pd.api.types.is_bool_dtype(
                x.dtype
            )
            level = 2 if _constant_within(x[ok], codes[ok]) else 1
            icc = np.nan
            if numeric:
                icc = 1.0 if level == 2 else _icc(data, col, group)
            rows[col] = {
                "kind": "numeric" if numeric else "categorical",
                "missing": int(x.isna().sum()),
                "distinct": int(x.nunique(dropna=True)),
                "level": level,
                "icc": icc,
            }
            bar.update(1)
    return pd.DataFrame.from_dict(rows, orient="index")


def _constant_within(x: pd.Series, codes: np.ndarray) -> bool:
    keep = x.notna().to_numpy()
    values = pd.factorize(x[keep], use_na_sentinel=True)[0]
    c = codes[keep]
    if len(c) == 0:
        return True
    J = int(c.max()) + 1
    lo = np.full(J, np.iinfo(np.int64).max)
    hi = np.full(J, -1)
    np.minimum.at(lo, c, values)
    np.maximum.at(hi, c, values)
    seen = hi >= 0
    return bool(np.all(lo[seen] == hi[seen]))


def _icc(data: pd.DataFrame, col: str, group: str) -> float:
    import hlm
    from hlm.spec.level_terms import quote_name

    formula = f"{quote_name(col)} ~ 1 + (1 | {quote_name(group)})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = hlm.fit(formula, data[[col, group]], method="REML")
    except HLMError:
        return np.nan  # e.g. every group a single row: no within-group variance to compare
    tau = float(res.varcorr()["vcov"].iloc[0])
    return tau / (tau + res.sigma**2)


def describe_text(data: pd.DataFrame, group: str, table: pd.DataFrame, name: str) -> str:
    """The ``hlm describe`` report as text."""
    sizes = group_sizes(data, group)
    out = [
        f"{name}: {len(data)} rows, {data.shape[1]} columns",
        f"Groups ({group}): {len(sizes)}; rows per group: min {sizes.min()}, "
        f"median {sizes.median():g}, mean {sizes.mean():.1f}, max {sizes.max()}",
    ]
    missing_g = int(data[group].isna().sum())
    if missing_g:
        out.append(f"({missing_g} rows have no {group!r} label)")
    out.append("")
    show = table.copy()
    show["icc"] = [("" if np.isnan(v) else f"{v:.3f}") for v in show["icc"]]
    show["level"] = [f"level {v}" for v in show["level"]]
    out.append(show.to_string())
    out.append("")
    out.append(
        "level 2: constant within every group; level 1: varies within groups. icc: "
        "between-group share of the variance (REML, x ~ 1 + (1 | group))."
    )
    return "\n".join(out)


def describe_dict(data: pd.DataFrame, group: str, table: pd.DataFrame) -> dict:
    """The ``hlm describe`` report as JSON data."""
    sizes = group_sizes(data, group)
    return {
        "nrows": int(len(data)),
        "group": group,
        "ngroups": int(len(sizes)),
        "group_size": {
            "min": int(sizes.min()),
            "median": float(sizes.median()),
            "mean": float(sizes.mean()),
            "max": int(sizes.max()),
        },
        "variables": {
            str(k): {
                "kind": r.kind,
                "missing": int(r.missing),
                "distinct": int(r.distinct),
                "level": int(r.level),
                "icc": None if np.isnan(r.icc) else float(r.icc),
            }
            for k, r in table.iterrows()
        },
    }
