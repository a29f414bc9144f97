"""The fixed-effects design: formulaic builds X (and y) from the data, chunk by chunk.

formulaic's model spec, fixed on the first chunk, is reused for later chunks so that every
chunk is coded the same way (same dummy columns, same reference level).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from formulaic import Formula
from formulaic import ModelSpec as FormulaicSpec

from hlm.errors import DataError, FormulaError

INTERCEPT = "(Intercept)"


def _rename(name: str) -> str:
    return INTERCEPT if name == "Intercept" else name


@functools.lru_cache(maxsize=256)
def required_variables(rhs: str, what: str) -> tuple[str, ...]:
    """Column names a right-hand side (or ``lhs ~ rhs``) formula uses."""
    try:
        return tuple(sorted(str(v) for v in Formula(rhs).required_variables))
    except Exception as exc:  # formulaic raises several parser error types
        raise FormulaError(f"cannot parse {what} {rhs!r}: {exc}") from exc


class FixedDesign:
    """Builds ``[X y]`` for chunks of rows with a model spec fixed on the first chunk.

    Use :meth:`from_first_chunk`, which also returns the first chunk's ``[X y]`` so that
    small data are materialised once.
    """

    def __init__(self, response: str, lhs_spec: FormulaicSpec, rhs_spec: FormulaicSpec):
        self.response = response
        self._lhs_spec = lhs_spec
        self._rhs_spec = rhs_spec
        self.names = [_rename(c) for c in rhs_spec.column_names]
        self.has_intercept = INTERCEPT in self.names

    @classmethod
    def from_first_chunk(cls, response: str, rhs: str, first: pd.DataFrame):
        """Fix the coding on ``first``; return ``(design, Xy_first)``."""
        formula = f"{response} ~ {rhs}"
        _check_numeric_response(response, first)
        try:
            mm = Formula(formula).get_model_matrix(first, na_action="ignore")
        except Exception as exc:
            raise FormulaError(f"cannot build the fixed effects of {formula!r}: {exc}") from exc
        if mm.lhs.shape[1] != 1:
            raise FormulaError(
                f"the response {response!r} must be one numeric column, got "
                f"{mm.lhs.shape[1]} columns {list(mm.lhs.columns)}"
            )
        design = cls(response, mm.lhs.model_spec, mm.rhs.model_spec)
        return design, design._assemble(mm.rhs, mm.lhs, len(first))

    @property
    def p(self) -> int:
        """Number of fixed-effect columns before any rank-deficiency drop."""
        return len(self.names)

    def Xy(self, chunk: pd.DataFrame) -> np.ndarray:
        """``[X y]`` for a chunk of rows, float64, shape (n_chunk, p + 1)."""
        X = self._rhs_spec.get_model_matrix(chunk, na_action="ignore")
        y = self._lhs_spec.get_model_matrix(chunk, na_action="ignore")
        return self._assemble(X, y, len(chunk))

    def _assemble(self, X, y, n) -> np.ndarray:
        out = np.empty((n, self.p + 1))
        out[:, : self.p] = _as_float(X, self.names)
        out[:, self.p] = _as_float(y, [self.response])[:, 0]
        if not np.isfinite(out).all():
            bad = ~np.isfinite(out).all(axis=0)
            cols = [n for n, b in zip(self.names + [self.response], bad, strict=True) if b]
            raise DataError(
                f"the model terms {cols} produce missing or infinite values "
                "(e.g. log of zero or a negative number); fix the data or the transform"
            )
        return out


def _as_float(mat, names) -> np.ndarray:
    try:
        return np.asarray(mat, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"model column(s) {names} are not numeric: {exc}") from exc


def _check_numeric_response(response: str, first: pd.DataFrame) -> None:
    """A response that is a column of text or categories is refused, naming it.

    formulaic would code it as dummy columns (a one-level column silently becomes a constant
    response of ones).
    """
    if response not in first.columns:
        return  # an expression such as np.log(y); formulaic evaluates it
    dtype = first[response].dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return
    values = ", ".join(repr(str(v)) for v in pd.unique(first[response])[:3])
    raise DataError(
        f"the response {response!r} is not numeric (dtype {dtype}, values such as {values}); "
        "a linear mixed model needs a numeric response: convert the column to numbers"
    )
