"""A level-equation spec meets its data: centred columns, checks, fixed-effect names.

Everything here reads the rows the model will use (complete cases in the used columns),
so group means and the constancy checks agree with what the engine fits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from formulaic import Formula

from hlm.centering import derived_name, mean_of_group_means, means_by
from hlm.errors import DataError, FormulaError
from hlm.spec.level_terms import (
    INTERCEPT,
    LevelTerm,
    fixed_rhs,
    names_in,
    term_of,
)

#: groups listed in an error message about groups before "..."
_SHOW = 8


def _names(terms) -> set[str]:
    return set().union(set(), *(names_in(f) for t in terms for f in t.factors))


def substitution_maps(spec) -> dict[int, dict[str, str]]:
    """Per level (1, 2, 3), the renaming of centred variables; refuses misplaced centring."""
    maps: dict[int, dict[str, str]] = {1: {}, 2: {}, 3: {}}
    if not spec.center:
        return maps
    n1 = _names(spec._t1)
    n2 = _names([t for ts in spec._t2.values() for t in ts])
    n3 = _names([t for ts in spec._t3.values() for t in ts])
    everywhere = n1 | n2 | n3
    for var, kinds in spec.center.items():
        for kind in kinds:
            new = derived_name(var, kind)
            if kind in ("mean", "mean3"):
                if new not in everywhere:
                    where = "level-2" if kind == "mean" else "level-3"
                    raise FormulaError(
                        f"center={{{var!r}: {kind!r}}} adds the column {new!r}, but no "
                        f"equation uses it; name it in a {where} equation, e.g. "
                        f"{{'(Intercept)': '~ {new}'}}"
                    )
                continue
            if var not in everywhere:
                raise FormulaError(f"center= names {var!r}, which no equation uses")
            upper = n2 | n3 if kind == "group" else n3 if kind == "group3" else set()
            if var in upper:
                raise FormulaError(
                    f"{var!r} is centred within groups (center kind {kind!r}) but is also a "
                    "predictor at a higher level, where it would be constant zero; use its "
                    f"group mean there instead (center={{{var!r}: [{kind!r}, 'mean']}} and "
                    f"{derived_name(var, 'mean')!r})"
                )
            maps[1][var] = new
            if kind in ("group3", "grand"):
                maps[2][var] = new
            if kind == "grand":
                maps[3][var] = new
    return maps


def term_variables(term: LevelTerm, available: set[str]) -> list[str]:
    """Data columns a term uses (formulaic's list, plus names hidden in stateful transforms)."""
    out: set[str] = set()
    for f in term.factors:
        try:
            out |= {str(v) for v in Formula(f).required_variables}
        except Exception as exc:  # formulaic raises several parser error types
            raise FormulaError(f"cannot parse the term {f!r}: {exc}") from exc
        out |= names_in(f) & available
    return sorted(out)


def _response_variables(response: str, available: set[str]) -> set[str]:
    try:
        names = {str(v) for v in Formula(response).required_variables}
    except Exception as exc:  # formulaic raises several parser error types
        raise FormulaError(
            f"cannot parse the response {response!r} of the level-1 formula: {exc}"
        ) from exc
    return names | (names_in(response) & available)


def prepare_data(spec, res, data):
    """Derive centred columns, check the spec against the data, name the fixed effects.

    Returns
    -------
    derived : pandas.DataFrame
        ``data`` with the derived columns appended (a new frame; ``data`` is unchanged).
    columns : dict
        Fixed-effect term key -> the term's column names, as formulaic names them.
    """
    from hlm.frame import check_columns, prepare_frame, to_pandas

    df = to_pandas(data)
    have = {str(c) for c in df.columns}
    groups = [spec.group] + ([spec.group3] if spec.three else [])
    derived_cols = {derived_name(v, k) for v, ks in spec.center.items() for k in ks}
    raw: set[str] = _response_variables(spec.response, have)
    for t in [*spec._t1, *(t for ts in spec._t2.values() for t in ts)]:
        raw |= set(term_variables(t, have))
    for ts in spec._t3.values():
        for t in ts:
            raw |= set(term_variables(t, have))
    raw = (raw - derived_cols) | set(spec.center)
    check_columns(groups + sorted(raw - set(groups)), df, "the level equations")
    clash = sorted(derived_cols & have)
    if clash:
        raise DataError(
            f"center= derives column(s) {clash}, but the data already have them; rename "
            "those columns or centre by hand (hlm.center) instead of center="
        )
    complete = df[sorted(raw | set(groups))].notna().all(axis=1)
    new = _centred_columns(spec, df, complete)
    derived = df.assign(**new) if new else df

    used = sorted((raw - set(spec.center)) | set(new) | set(groups) | set(spec.center))
    predictors = set().union(set(), *(term_variables(t, have | set(new)) for _, t in res.products))
    labels_only = [g for g in groups if g not in predictors]
    frame = prepare_frame(derived, used, labels_only=labels_only)
    clean = frame.data
    check_levels(spec, res, clean)
    return derived, fixed_columns(res, clean)


def _centred_columns(spec, df: pd.DataFrame, complete: pd.Series) -> dict[str, pd.Series]:
    from hlm.centering import _numeric

    keys2 = [df[spec.group3], df[spec.group]] if spec.three else [df[spec.group]]
    keys3 = [df[spec.group3]] if spec.three else None
    level1 = _names(spec._t1)
    level2 = _names([t for ts in spec._t2.values() for t in ts])
    new = {}
    for var, kinds in spec.center.items():
        # means over the rows the model uses: a row dropped for a missing value elsewhere
        # must not move the group mean of the rows that stay
        x = _numeric(df, var).where(complete)
        for kind in kinds:
            if kind == "group":
                value = x - means_by(x, keys2)
            elif kind == "group3":
                value = x - means_by(x, keys3)
            elif kind == "mean":
                value = means_by(x, keys2)
            elif kind == "mean3":
                value = means_by(x, keys3)
            elif var in level1:
                value = x - float(np.nanmean(x.to_numpy()))
            else:
                # HLM centres a level-2 (level-3) variable at the mean over level-2
                # (level-3) units, each unit counted once
                value = x - mean_of_group_means(x, keys2 if var in level2 else keys3)
            new[derived_name(var, kind)] = value
    return new


def varying_groups(values: pd.Series, keys: list[pd.Series]) -> list[str]:
    """Labels of the groups in which ``values`` is not constant."""
    grouped = values.groupby(keys, observed=True, sort=False)
    dtype = values.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        spread = grouped.max() - grouped.min()
        tol = 1e-9 * max(float(values.abs().max()), np.finfo(float).tiny)
        bad = spread[spread > tol].index
    else:
        counts = grouped.nunique()
        bad = counts[counts > 1].index
    # a two-key index is (group3, group); lme4 labels the unit group:group3
    return [":".join(str(p) for p in reversed(b)) if isinstance(b, tuple) else str(b) for b in bad]


def _show(labels: list[str]) -> str:
    shown = ", ".join(labels[:_SHOW])
    return shown + (", ..." if len(labels) > _SHOW else "")


def check_levels(spec, res, clean: pd.DataFrame) -> None:
    """Refuse level-2 (level-3) predictors that vary within groups and random coefficients
    whose variables are constant within every group."""
    have = {str(c) for c in clean.columns}
    keys2 = [clean[spec.group3], clean[spec.group]] if spec.three else [clean[spec.group]]
    unit2 = f"{spec.group}:{spec.group3}" if spec.three else spec.group
    names = list(spec.level2)
    for qi, terms in enumerate(res.l2):
        for s in terms:
            _check_constant(s, keys2, unit2, f"the level-2 equation of {names[qi]!r}", clean, have)
    if spec.three:
        keys3 = [clean[spec.group3]]
        for (qi, si), terms in res.l3.items():
            what = f"the level-3 equation of ({names[qi]!r}, {res.l2[qi][si].name!r})"
            for t in terms:
                _check_constant(t, keys3, spec.group3, what, clean, have)
        for qi, si in res.random3:
            term = res.l2[qi][si].times(res.l1[qi])
            _check_varies(term, keys3, spec.group3, "random3", clean, have)
    for qi in res.random:
        _check_varies(res.l1[qi], keys2, unit2, "random", clean, have)


def _check_constant(term, keys, unit, what, clean, have) -> None:
    for var in term_variables(term, have):
        bad = varying_groups(clean[var], keys)
        if bad:
            n = clean.groupby(keys, observed=True).ngroups
            raise DataError(
                f"{var!r} in {what} varies within {len(bad)} of {n} groups of {unit} "
                f"({_show(bad)}); a predictor at this level must be constant within each "
                f"group: use its group mean (hlm.group_mean, or center={{{var!r}: 'mean'}}) "
                "or move it to level 1"
            )


def _check_varies(term, keys, unit, option, clean, have) -> None:
    if term.is_intercept:
        return
    variables = term_variables(term, have)
    if variables and all(not varying_groups(clean[v], keys) for v in variables):
        raise DataError(
            f"the coefficient of {term.name!r} is random ({option}=) but "
            f"{', '.join(repr(v) for v in variables)} is constant within every group of "
            f"{unit}, so its variance across groups cannot be estimated; remove it from "
            f"{option}= (it may be a predictor of a higher level instead)"
        )


def fixed_columns(res, clean: pd.DataFrame) -> dict:
    """Term key -> fixed-effect column names, from formulaic's coding of the first rows.

    The engine fixes the coding on its first chunk of rows; so does this.
    """
    from hlm.model import CHUNK_ROWS

    sample = clean.iloc[:CHUNK_ROWS]
    rhs = fixed_rhs([t for _, t in res.products])
    try:
        mm = Formula(rhs).get_model_matrix(sample, na_action="ignore")
    except Exception as exc:  # formulaic raises several error types
        raise FormulaError(f"cannot build the fixed effects {rhs!r}: {exc}") from exc
    out = {}
    for st in mm.model_spec.structure:
        cols = [INTERCEPT if c == "Intercept" else str(c) for c in st.columns]
        out[term_of(st.term).key] = cols
    return out
