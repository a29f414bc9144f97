"""Wald t and F tests of fixed effects with small-sample denominator degrees of freedom.

Methods for the denominator df (the ``df=`` argument):

- ``"satterthwaite"`` (default): :mod:`hlm.inference.satterthwaite`, as lmerTest;
- ``"kenward-roger"``: :mod:`hlm.inference.kenward_roger`, as pbkrtest (REML fits only);
  the covariance of beta is then the Kenward-Roger adjusted one, so standard errors and t
  values change too;
- ``"residual"``: ``n - p`` for every test (exact for least squares, crude for mixed models);
- ``"asymptotic"``: infinite df, i.e. z and chi-square tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from hlm.inference.hypothesis import parse_hypothesis
from hlm.inference.satterthwaite import joint_df

_ALIASES = {
    "satterthwaite": "satterthwaite",
    "satt": "satterthwaite",
    "kenward-roger": "kenward-roger",
    "kenward_roger": "kenward-roger",
    "kr": "kenward-roger",
    "residual": "residual",
    "asymptotic": "asymptotic",
    "none": "asymptotic",
    "inf": "asymptotic",
}


def df_method(df) -> str:
    """Normalise a ``df=`` argument (case-insensitive; None means asymptotic)."""
    if df is None:
        return "asymptotic"
    key = str(df).lower()
    if key not in _ALIASES:
        raise ValueError(
            f"df must be 'satterthwaite', 'kenward-roger', 'residual' or 'asymptotic', got {df!r}"
        )
    return _ALIASES[key]


class _Tester:
    """Covariance of beta and df of contrasts for one fit and one df method."""

    def __init__(self, result, method: str):
        self.method = method
        self.beta = result.fixef.to_numpy()
        self.sigma = float(result.sigma)
        is_ols = not hasattr(result, "theta")
        if is_ols and method in ("satterthwaite", "kenward-roger"):
            method = "residual"  # exact for least squares
            self.method = method
        if method == "satterthwaite":
            self.vc = result._varpar_covariance
            self.vcov = self.vc.vcov_beta
            self.notes = self.vc.notes
        elif method == "kenward-roger":
            self.kr = result._kenward_roger
            self.vcov = self.kr.vcov_adjusted
            self.notes = self.kr.notes
        else:
            self.vcov = result.vcov.to_numpy()
            self.notes = ()
        n_minus_p = result.nobs - len(self.beta)
        self.residual_df = float(n_minus_p)

    def df1(self, L: np.ndarray) -> np.ndarray:
        """df of each row of L as a 1-d contrast."""
        L = np.atleast_2d(L)
        if self.method == "satterthwaite":
            return self.vc.df(L)
        if self.method == "kenward-roger":
            return np.array([self.kr.test(row[None, :])[1] for row in L])
        if self.method == "residual":
            return np.full(len(L), self.residual_df)
        return np.full(len(L), np.inf)

    def ftest(self, L: np.ndarray, rhs: np.ndarray) -> dict:
        """F test of ``L beta = rhs`` (lmerTest's ``contestMD``)."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        rhs = np.broadcast_to(np.asarray(rhs, dtype=float), (len(L),))
        beta = self.beta
        if np.any(rhs != 0):
            beta = beta - np.linalg.pinv(L) @ rhs
        if self.method == "kenward-roger":
            F, ddf, q, Fu = self.kr.test(L, beta)
            return _row(F, q, ddf, self.sigma, Fu)
        V = L @ self.vcov @ L.T
        d, P = np.linalg.eigh(V)
        order = np.argsort(d)[::-1]
        d, P = d[order], P[:, order]
        pos = d > max(np.sqrt(np.finfo(float).eps) * d[0], 0.0)
        q = int(pos.sum())
        if q == 0:
            raise ValueError("the contrasts have zero variance; check the hypothesis matrix")
        PtL = (P.T @ L)[:q]
        t2 = (PtL @ beta) ** 2 / d[:q]
        F = float(t2.sum() / q)
        ddf = joint_df(self.df1(PtL)) if q > 1 else float(self.df1(PtL)[0])
        return _row(F, q, ddf, self.sigma)


def _row(F: float, q: int, ddf: float, sigma: float, F_unscaled=None) -> dict:
    """lmerTest's F-table row; the sums of squares use the unscaled F (as lmerTest)."""
    p = float(stats.f.sf(F, q, ddf)) if np.isfinite(ddf) else float(stats.chi2.sf(F * q, q))
    mean_sq = (F if F_unscaled is None else F_unscaled) * sigma**2
    return {
        "sum_sq": mean_sq * q,
        "mean_sq": mean_sq,
        "num_df": q,
        "den_df": ddf,
        "F": F,
        "p": p,
    }


def tester(result, df) -> _Tester:
    """A :class:`_Tester` for ``result`` (cached Satterthwaite / Kenward-Roger parts)."""
    return _Tester(result, df_method(df))


def fixef_table(result, df="satterthwaite") -> pd.DataFrame:
    """``estimate, se, t, df, p`` for every fixed effect (two-sided t tests of zero)."""
    t_ = tester(result, df)
    beta = result.fixef.to_numpy()
    se = np.sqrt(np.diag(t_.vcov))
    t = beta / se
    dfs = t_.df1(np.eye(len(beta)))
    p = np.where(np.isfinite(dfs), 2.0 * stats.t.sf(np.abs(t), dfs), 2.0 * stats.norm.sf(np.abs(t)))
    out = pd.DataFrame(
        {"estimate": beta, "se": se, "t": t, "df": dfs, "p": p}, index=result.fixef.index
    )
    out.attrs["df_method"] = t_.method
    if t_.notes:
        out.attrs["notes"] = list(t_.notes)
    return out


def wald_test(result, hypothesis, rhs=None, *, df="satterthwaite") -> pd.DataFrame:
    """Joint Wald F test of ``L beta = rhs``.

    Parameters
    ----------
    result : MixedModelResult or OLSResult
    hypothesis : str, array-like (rows, p) or pandas.DataFrame
        A string such as ``"x1 = x2 = 0"`` (see :mod:`hlm.inference.hypothesis`), or the
        matrix ``L`` (a DataFrame's columns are matched to the fixed-effect names; a 1-d
        array is one contrast).
    rhs : float or array-like, optional
        Right-hand side when ``hypothesis`` is a matrix (default 0).
    df : str
        Denominator df method, see :mod:`hlm.inference.wald`.

    Returns
    -------
    pandas.DataFrame
        One row: ``sum_sq, mean_sq, num_df, den_df, F, p`` (lmerTest's ``contest`` columns);
        ``attrs["L"]``, ``attrs["rhs"]`` hold the hypothesis actually tested.
    """
    names = list(result.fixef.index)
    if isinstance(hypothesis, str):
        if rhs is not None:
            raise ValueError("give the right-hand side inside the hypothesis string")
        L, r, labels = parse_hypothesis(hypothesis, names)
        label = hypothesis
    else:
        L = _as_matrix(hypothesis, names)
        r = np.zeros(len(L)) if rhs is None else np.broadcast_to(np.asarray(rhs, float), (len(L),))
        label = "L beta = rhs"
        labels = None
    row = tester(result, df).ftest(L, r)
    out = pd.DataFrame([row], index=[label])
    out.attrs["L"] = pd.DataFrame(L, columns=names, index=labels)
    out.attrs["rhs"] = np.asarray(r, dtype=float)
    out.attrs["df_method"] = df_method(df)
    return out


def _as_matrix(L, names: list[str]) -> np.ndarray:
    if isinstance(L, pd.DataFrame):
        unknown = [c for c in L.columns if c not in names]
        if unknown:
            raise ValueError(f"columns {unknown} of L are not fixed effects; those are {names}")
        return L.reindex(columns=names, fill_value=0.0).to_numpy(dtype=float)
    if isinstance(L, pd.Series):
        return _as_matrix(L.to_frame().T, names)
    M = np.atleast_2d(np.asarray(L, dtype=float))
    if M.shape[1] != len(names):
        raise ValueError(
            f"L has {M.shape[1]} columns but the model has {len(names)} fixed effects ({names})"
        )
    return M
