"""Per-term F tests of the fixed effects: a type III analysis of variance table.

A type III hypothesis for a term does not depend on how categorical predictors are coded
or on the cell counts: it is the test that the term's coefficients are zero when every
categorical factor is coded with sum-to-zero contrasts (R's ``contr.sum``), so that lower
order terms are averages over the levels of the factors they interact with.  The model is
fitted with formulaic's default treatment coding; its design ``X_t`` and the sum-coded
design ``X_s`` of the same formula span the same columns, ``X_s = X_t M``, so
``beta_s = M^-1 beta_t`` and the term's hypothesis on the fitted coefficients is
``(M^-1)[term rows] beta_t = 0``.  ``M`` comes from ``X_t'X_t`` and ``X_t'X_s``, one pass
over the rows.  Each hypothesis is an F test with Satterthwaite (or Kenward-Roger)
denominator df, as lmerTest's ``anova(fit)``.

Numeric predictors are used as they are (not centred), as in lmerTest, so a main effect
that takes part in an interaction with a numeric variable is tested at that variable's zero.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hlm.inference.wald import tester

#: rows per chunk of the pass over the data
_CHUNK = 200_000


def type3_table(result, df="satterthwaite") -> pd.DataFrame:
    """The type III table: one row per term (intercept excluded).

    Columns ``sum_sq, mean_sq, num_df, den_df, F, p`` (lmerTest's ``Sum Sq, Mean Sq, NumDF,
    DenDF, F value, Pr(>F)``).
    """
    model = result.model
    if model.dropped_columns:
        raise NotImplementedError(
            "type III tests with aliased fixed-effect columns ("
            + ", ".join(model.dropped_columns)
            + ") are not supported: drop the aliased terms and refit"
        )
    spec = model.design._rhs_spec  # formulaic's model spec of the fixed part
    terms = list(spec.formula)
    sum_formula = _sum_coded_formula(spec, terms)
    Minv, sum_slices = _coding_map(model, sum_formula, len(terms))
    t_ = tester(result, df)
    own = list(spec.term_slices.values())
    rows, index = [], []
    for term, sl, own_sl in zip(terms, sum_slices, own, strict=True):
        if str(term) == "1":
            continue
        L = _canonical(Minv[sl, :], own_sl)
        if L.shape[0] == 0:
            continue
        rows.append(t_.ftest(L, np.zeros(L.shape[0])))
        index.append(str(term))
    out = pd.DataFrame(rows, index=pd.Index(index, name="term"))
    out.attrs["heading"] = (
        f"Type III analysis of variance table with {t_.method.title()} denominator df"
    )
    out.attrs["df_method"] = t_.method
    return out


def _canonical(L: np.ndarray, own: slice) -> np.ndarray:
    """The same hypothesis with the identity on the term's own (treatment) coefficients.

    A multi-row hypothesis can be written in many bases; the F statistic does not depend on
    the basis but Satterthwaite's joint df does (it is built from the eigen-decomposition of
    ``L vcov L'``).  lmerTest writes type III hypotheses of treatment-coded models with the
    identity on the term's own coefficients; so do we, so that the df agree.
    """
    block = L[:, own]
    if block.shape[0] != block.shape[1] or abs(np.linalg.det(block)) < 1e-10:
        return L
    out = np.linalg.solve(block, L)
    out[np.abs(out) < 1e-12] = 0.0
    return out


def _sum_coded_formula(spec, terms) -> str:
    """The fixed part with every categorical factor wrapped in ``C(..., contr.sum)``."""
    categorical = {
        expr
        for expr, (kind, _state) in spec.encoder_state.items()
        if str(kind.value) == "categorical"
    }
    parts = []
    has_intercept = False
    for term in terms:
        factors = [f.expr for f in term.factors]
        if factors == ["1"]:
            has_intercept = True
            continue
        parts.append(":".join(f"C({e}, contr.sum)" if e in categorical else e for e in factors))
    rhs = " + ".join(parts) if parts else ""
    head = "1" if has_intercept else "0"
    return f"{head} + {rhs}" if rhs else head


def _coding_map(model, sum_formula: str, n_terms: int):
    """``M^-1`` with ``X_s = X_t M`` and the sum-coded column slice of every term."""
    from formulaic import Formula

    from hlm.frame import level_complete_sample

    df = model.frame.data
    sample = level_complete_sample(df, _CHUNK)
    try:
        sum_spec = Formula(sum_formula).get_model_matrix(sample, na_action="ignore").model_spec
    except Exception as exc:  # formulaic raises several error types
        raise ValueError(f"cannot build the sum-coded design {sum_formula!r}: {exc}") from exc
    slices = list(sum_spec.term_slices.values())
    if len(slices) != n_terms:
        raise ValueError("the sum-coded design does not have the same terms as the model")
    keep = model.keep
    p = len(keep)
    XtX = np.zeros((p, p))
    XtS = np.zeros((p, len(sum_spec.column_names)))
    SS = np.zeros(len(sum_spec.column_names))
    for start in range(0, len(df), _CHUNK):
        chunk = df.iloc[start : start + _CHUNK]
        Xt = model.design.Xy(chunk)[:, keep]
        Xs = np.asarray(sum_spec.get_model_matrix(chunk, na_action="ignore"), dtype=float)
        XtX += Xt.T @ Xt
        XtS += Xt.T @ Xs
        SS += np.einsum("ij,ij->j", Xs, Xs)
    if XtS.shape[1] != p:
        raise ValueError(
            f"the sum-coded design has {XtS.shape[1]} columns but the model has {p}; "
            "type III tests need a full-rank design"
        )
    scale = np.sqrt(np.diag(XtX))
    M = np.linalg.solve(XtX / np.outer(scale, scale), XtS / scale[:, None]) / scale[:, None]
    # X_s must lie in the column space of X_t: its residual sum of squares must vanish
    resid = SS - np.einsum("ij,ij->j", XtS, M)
    if np.any(resid > 1e-8 * np.maximum(SS, 1.0)):
        raise ValueError("the sum-coded design does not span the model's columns")
    return np.linalg.inv(M), slices
