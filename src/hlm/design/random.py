"""Random-effects terms: group codes plus a small dense Z per term (never a giant sparse Z)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic import Formula

from hlm.columns import as_pandas, column_array, table_columns
from hlm.design.fixed import INTERCEPT
from hlm.design.groups import factor_codes, interaction_codes
from hlm.errors import FormulaError, IdentifiabilityError
from hlm.spec.formula import RandomTerm
from hlm.spec.tokens import split_top, tokenize


@dataclass
class RandomBlock:
    """One random-effects term after coding.

    Attributes
    ----------
    term : RandomTerm
        The parsed term.
    group : str
        Grouping factor name, lme4 style (``"cask:batch"``).
    columns : list of str
        Names of the term's columns of Z (``"(Intercept)"``, ``"Days"``).
    levels : ndarray of str
        Level labels, in code order.
    codes : ndarray of int64, shape (n,)
        Level of every row.
    """

    term: RandomTerm
    group: str
    columns: list[str]
    levels: np.ndarray
    codes: np.ndarray
    _spec: object = None

    @property
    def S(self) -> int:
        """Number of columns of the term."""
        return len(self.columns)

    @property
    def J(self) -> int:
        """Number of levels of the grouping factor."""
        return len(self.levels)

    def Z(self, chunk) -> np.ndarray:
        """The term's columns of Z for a chunk of rows (DataFrame or Columns), (n_chunk, S)."""
        if self._spec is None:
            return np.ones((len(chunk), 1))
        if isinstance(self._spec, SimpleZ):
            return self._spec(chunk)
        mm = self._spec.get_model_matrix(as_pandas(chunk), na_action="ignore")
        return np.asarray(mm, dtype=np.float64)


@dataclass(frozen=True)
class SimpleZ:
    """Z of a term made of an optional intercept and numeric columns, without formulaic."""

    intercept: bool
    names: list

    def __call__(self, chunk) -> np.ndarray:
        """The columns for a chunk of rows (a DataFrame or :class:`hlm.columns.Columns`)."""
        out = np.empty((len(chunk), int(self.intercept) + len(self.names)))
        k = 0
        if self.intercept:
            out[:, 0] = 1.0
            k = 1
        for j, name in enumerate(self.names):
            out[:, k + j] = np.asarray(column_array(chunk, name), dtype=np.float64)
        return out


def _is_numeric(values) -> bool:
    """True for a column (array or Series) of numbers other than booleans."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        return dtype.kind in "fiuc"
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def simple_columns(lhs: str) -> tuple[bool, list[str]] | None:
    """``(intercept, names)`` when ``lhs`` is only ``1``/``0`` and bare column names.

    Such left sides (``1 + x``, ``0 + x``, ``x``) are the common case; they are coded without
    formulaic, whose per-call overhead dominates small fits.  Anything else returns None.
    """
    intercept, names = True, []
    for op, piece in split_top(tokenize(lhs), {"+", "-"}):
        if len(piece) != 1 or piece[0].kind != "atom":
            return None
        text = piece[0].text
        if text in ("0", "1"):
            intercept = (text == "1") != (op == "-")
        elif op == "-" or not text.isidentifier():
            return None
        else:
            names.append(text)
    return intercept, names


def required_columns(term: RandomTerm) -> list[str]:
    """Data columns used by a term (its left side and its grouping factors)."""
    cols = list(term.factors)
    simple = simple_columns(term.lhs)
    if simple is not None:
        return cols + simple[1]
    if term.lhs.strip() not in ("1", "1 + 0", "0 + 1"):
        try:
            cols += [str(v) for v in Formula(term.lhs).required_variables]
        except Exception as exc:
            raise FormulaError(f"cannot parse {term.lhs!r} in {term.source!r}: {exc}") from exc
    return cols


def build_block(term: RandomTerm, df, factor_cache: dict, sample=None) -> RandomBlock:
    """Code a term's groups and fix its Z coding on the data ``df``.

    Parameters
    ----------
    term : RandomTerm
    df : pandas.DataFrame or hlm.columns.Columns
        All (clean) rows; group coding needs every level.
    factor_cache : dict
        Column name -> (codes, labels), shared between terms to code each column once.
    sample : pandas.DataFrame or hlm.columns.Columns, optional
        Rows that show every level of every discrete column (see
        :func:`hlm.frame.level_complete_sample`); fixes the coding of the term's left side
        without materialising it for all rows.
    """
    parts = []
    for f in term.factors:
        if f not in factor_cache:
            factor_cache[f] = factor_codes(column_array(df, f), f)
        parts.append(factor_cache[f])
    codes, levels = interaction_codes(parts)
    columns, zspec = term_coding(term, df if sample is None else sample)
    if INTERCEPT in columns and len(columns) > 1:
        _check_slopes_vary(term, _slope_variables(zspec, df), df, codes, len(levels))
    return RandomBlock(term, term.group, columns, levels, codes, zspec)


def _slope_variables(zspec, df) -> list[tuple[str, list[str]]]:
    """``(slope term, data columns it uses)`` for each non-intercept piece of a term."""
    if isinstance(zspec, SimpleZ):
        return [(n, [n]) for n in zspec.names]
    out = []
    for st in zspec.structure:
        if st.columns == ["Intercept"]:
            continue
        have = table_columns(df)
        variables = sorted(v for v in zspec.term_variables[st.term] if v in have)
        if variables:
            out.append((str(st.term), variables))
    return out


def term_coding(term: RandomTerm, rows) -> tuple[list[str], object]:
    """Fix how a term's Z is coded, on ``rows``: ``(column names, coding)``.

    The coding is None for an intercept-only term, a :class:`SimpleZ` for an intercept and
    numeric columns, otherwise formulaic's model spec of the term's left side fixed on
    ``rows`` (which must show every level of a discrete column, see
    :func:`hlm.frame.level_complete_sample`).  Group codes are not needed: a streamed model
    codes its groups batch by batch.
    """
    if term.lhs.strip() in ("1", "1 + 0", "0 + 1"):
        return [INTERCEPT], None
    simple = simple_columns(term.lhs)
    if simple is not None and all(_is_numeric(column_array(rows, c)) for c in simple[1]):
        intercept, names = simple
        columns = ([INTERCEPT] if intercept else []) + names
        if not columns:
            raise FormulaError(f"random-effects term {term.source!r} has no columns")
        return columns, SimpleZ(intercept, names)
    try:
        mm = Formula(term.lhs).get_model_matrix(as_pandas(rows), na_action="ignore")
    except Exception as exc:
        raise FormulaError(f"cannot build the random effects of {term.source!r}: {exc}") from exc
    columns = [INTERCEPT if c == "Intercept" else c for c in mm.columns]
    if not columns:
        raise FormulaError(f"random-effects term {term.source!r} has no columns")
    return columns, mm.model_spec


def constant_within_groups(values, codes: np.ndarray, J: int) -> bool:
    """True when ``values`` (array or Series) takes one value within every group.

    ``codes`` (0..J-1) are the groups.

    Numbers count as equal within 1e-9 of the column's largest magnitude (the rule of the
    level-equation checks); anything else is compared by its category code.
    """
    if _is_numeric(values):
        x = np.asarray(values, dtype=np.float64)
        tol = 1e-9 * max(float(np.abs(x).max(initial=0.0)), np.finfo(float).tiny)
    else:
        x = pd.factorize(values)[0].astype(np.float64)
        tol = 0.0
    lo = np.full(J, np.inf)
    hi = np.full(J, -np.inf)
    np.minimum.at(lo, codes, x)
    np.maximum.at(hi, codes, x)
    return bool(np.all(hi - lo <= tol))


def _check_slopes_vary(term: RandomTerm, slopes, df, codes, J: int) -> None:
    """Refuse a random slope whose variables are constant within every group.

    In a term with a random intercept, the slope of a variable that does not vary within
    groups (a group-level variable) adds nothing that the intercept does not already
    describe: the term's covariance is not identified (lme4 fits it anyway, to an arbitrary
    point of a ridge or a boundary).
    """
    for name, variables in slopes:
        if all(constant_within_groups(column_array(df, v), codes, J) for v in variables):
            what = ", ".join(repr(v) for v in variables)
            raise IdentifiabilityError(
                f"random-effects term {term.source!r}: {what} is constant within every level "
                f"of {term.group!r}, so the random slope of {name!r} cannot be told apart from "
                f"the random intercept; keep {name!r} as a fixed effect and drop it from the "
                "term"
            )
