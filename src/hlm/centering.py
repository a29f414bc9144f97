"""Centering of predictors and group means as contextual (level-2) predictors.

Where a level-1 predictor is centred changes what the intercept and the slope mean
(Raudenbush & Bryk 2002, sec. 2.5; Enders & Tofighi 2007):

- **group-mean centring** (centring within cluster), ``x_ij - mean_j(x)``: the slope is the
  pure within-group effect and the intercept is the group's mean outcome;
- **grand-mean centring**, ``x_ij - mean(x)``: the same model as raw ``x`` (re-parametrised),
  with the intercept at an average value of ``x``;
- **the group mean** ``mean_j(x)`` as a level-2 predictor: together with the group-centred
  ``x`` it separates the within- and between-group effects (with raw or grand-centred ``x``
  its coefficient is the *contextual* effect, between minus within).

The derived columns are named after the variable and the kind:

==========  ===================  ============================================
kind        new column           value
==========  ===================  ============================================
``group``   ``<x>_cwc``          x minus the mean of x in its group
``grand``   ``<x>_cgm``          x minus the grand mean of x
(mean)      ``<x>_mean``         the mean of x in its group (:func:`group_mean`)
==========  ===================  ============================================

In a three-level :class:`hlm.Levels` spec, ``group3`` and ``mean3`` do the same within
level-3 units and name the columns ``<x>_cwc3`` and ``<x>_mean3``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hlm.errors import DataError

#: suffix of the derived column for each kind (see the module docstring)
SUFFIX = {
    "group": "_cwc",
    "grand": "_cgm",
    "mean": "_mean",
    "group3": "_cwc3",
    "mean3": "_mean3",
}


def derived_name(variable: str, kind: str) -> str:
    """Name of the column that centring ``variable`` by ``kind`` creates."""
    return f"{variable}{SUFFIX[kind]}"


def _as_list(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _numeric(df: pd.DataFrame, col: str) -> pd.Series:
    s = df[col]
    if not (pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)):
        raise DataError(
            f"cannot centre column {col!r}: it is not numeric (dtype {s.dtype}); centring "
            "applies to numeric predictors (code a categorical one as 0/1 first)"
        )
    return s.astype(float)


def means_by(values: pd.Series, keys: list[pd.Series]) -> pd.Series:
    """Each row's group mean of ``values`` (missing values skipped), aligned with the rows.

    Rows whose group key is missing get NaN.
    """
    grouped = values.groupby(keys, observed=True, sort=False, dropna=True)
    return grouped.transform("mean")


def mean_of_group_means(values: pd.Series, keys: list[pd.Series]) -> float:
    """The mean over groups of the group means: every group counts once (HLM's grand mean
    of a level-2 variable)."""
    grouped = values.groupby(keys, observed=True, sort=False, dropna=True).mean()
    return float(grouped.mean())


def center(data, columns, by=None, kind: str = "group", *, name: str | None = None):
    """Add centred copies of predictors to a DataFrame.

    Parameters
    ----------
    data : pandas.DataFrame (or anything :func:`hlm.frame.to_pandas` accepts)
        Not modified.
    columns : str or list of str
        Numeric columns to centre.
    by : str or list of str, optional
        Grouping column(s). Required for ``kind="group"``. With ``kind="grand"`` it makes
        every group count once in the grand mean (use it for a level-2 variable stored on
        every row, as HLM centres level-2 variables at the mean over level-2 units).
    kind : {"group", "grand"}
        ``"group"``: ``x - mean of x in the row's group`` (column ``<x>_cwc``);
        ``"grand"``: ``x - mean of x`` (column ``<x>_cgm``).
    name : str, optional
        Name of the new column (one column only); default as above.

    Returns
    -------
    pandas.DataFrame
        A copy of ``data`` with the new column(s) appended. Missing values stay missing and
        are left out of the means.

    Examples
    --------
    >>> import hlm
    >>> hsb = hlm.datasets.load("hsb")
    >>> hsb = hlm.center(hsb, "SES", by="School")      # adds SES_cwc (equal to cses)
    >>> float(abs(hsb["SES_cwc"] - hsb["cses"]).max()) < 1e-12
    True
    """
    from hlm.frame import to_pandas

    if kind not in ("group", "grand"):
        raise ValueError(f"kind must be 'group' or 'grand', got {kind!r}")
    cols, keys = _as_list(columns), _as_list(by)
    if kind == "group" and not keys:
        raise ValueError("group-mean centring needs the grouping column(s): by='school'")
    if name is not None and len(cols) != 1:
        raise ValueError("name= can only be given when centring one column")
    df = to_pandas(data)
    _check_present(df, cols + keys)
    new = {}
    for col in cols:
        x = _numeric(df, col)
        group_keys = [df[k] for k in keys]
        if kind == "group":
            value = x - means_by(x, group_keys)
        elif keys:
            value = x - mean_of_group_means(x, group_keys)
        else:
            value = x - float(np.nanmean(x.to_numpy()))
        new[name or derived_name(col, kind)] = value
    return _append(df, new)


def group_mean(data, columns, by, *, name: str | None = None):
    """Add the group mean of level-1 predictors, for use as level-2 (contextual) predictors.

    Parameters
    ----------
    data : pandas.DataFrame (or anything :func:`hlm.frame.to_pandas` accepts)
        Not modified.
    columns : str or list of str
        Numeric columns.
    by : str or list of str
        Grouping column(s).
    name : str, optional
        Name of the new column (one column only); default ``<x>_mean``.

    Returns
    -------
    pandas.DataFrame
        A copy of ``data`` with ``<x>_mean`` (the mean of x over the rows of the group,
        missing values left out) appended for each column.
    """
    from hlm.frame import to_pandas

    cols, keys = _as_list(columns), _as_list(by)
    if not keys:
        raise ValueError("group_mean needs the grouping column(s): by='school'")
    if name is not None and len(cols) != 1:
        raise ValueError("name= can only be given for one column")
    df = to_pandas(data)
    _check_present(df, cols + keys)
    new = {
        name or derived_name(col, "mean"): means_by(_numeric(df, col), [df[k] for k in keys])
        for col in cols
    }
    return _append(df, new)


def _check_present(df: pd.DataFrame, needed: list[str]) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(f"column(s) {missing} not found in the data")


def _append(df: pd.DataFrame, new: dict) -> pd.DataFrame:
    clash = [c for c in new if c in df.columns]
    if clash:
        raise DataError(
            f"the data already have column(s) {clash}; drop or rename them, or pass name="
        )
    return df.assign(**new)
