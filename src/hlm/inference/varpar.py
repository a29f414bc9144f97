"""Variance parameters on lme4's scale: standard deviations, correlations and sigma.

The optimizer works on ``theta`` (the packed lower triangles of the relative factors
``lambda_k``) with sigma profiled out.  People read standard deviations and correlations,
and lme4's ``confint`` and ``profile`` report them in theta's order: at each diagonal
position of ``lambda_k`` the SD of that random effect, at each off-diagonal position the
correlation of the two effects, then the residual SD.  Names:

- readable (default; lme4's ``oldNames = FALSE``): ``sd_(Intercept)|Subject``,
  ``cor_Days.(Intercept)|Subject``, ``sd_Days|Subject``, ``sigma``;
- ``"lme4"`` (lme4's default ``oldNames = TRUE``): ``.sig01``, ``.sig02``, ..., ``.sigma``.
"""

from __future__ import annotations

import numpy as np

#: a pivot below this (relative to 1, correlation scale) counts as zero
_PIVOT_TOL = 1e-12


class VarPar:
    """The map between ``(theta, sigma)`` and ``psi`` = (SDs and correlations, sigma).

    Parameters
    ----------
    model : LinearMixedModel
    group_names : list of str
        Display name of each term's grouping factor (``g``, ``g.1`` for a repeat).
    """

    def __init__(self, model, group_names):
        self.cov = model.cov
        self.ntheta = model.cov.ntheta
        self.kind: list[str] = []
        self.term: list[int] = []
        self.row: list[int] = []
        self.col: list[int] = []
        self._readable: list[str] = []
        plain, unique = [], []
        for k, (b, g) in enumerate(zip(model.blocks, group_names, strict=True)):
            for r, c in zip(self.cov.rows[k], self.cov.cols[k], strict=True):
                self.term.append(k)
                self.row.append(int(r))
                self.col.append(int(c))
                self.kind.append("sd" if r == c else "cor")
                what = f"sd_{b.columns[r]}" if r == c else f"cor_{b.columns[r]}.{b.columns[c]}"
                plain.append(f"{what}|{b.group}")
                unique.append(f"{what}|{g}")
        self.kind.append("sigma")
        # lme4 names a repeated grouping factor plainly ("sd_Days|Subject" for a second
        # Subject term); the display name ("Subject.1") only where that would collide
        counts = {name: plain.count(name) for name in plain}
        self._readable = [u if counts[p] > 1 else p for p, u in zip(plain, unique, strict=True)]

    def names(self, style: str = "readable") -> list[str]:
        """Parameter names, ``psi``'s order; ``style`` is ``"readable"`` or ``"lme4"``."""
        if style == "readable":
            return self._readable + ["sigma"]
        if style == "lme4":
            return [f".sig{i + 1:02d}" for i in range(self.ntheta)] + [".sigma"]
        raise ValueError(f"names must be 'readable' or 'lme4', got {style!r}")

    def from_theta(self, theta, sigma: float) -> np.ndarray:
        """``psi`` from ``(theta, sigma)``; a correlation with a zero SD is NaN."""
        lams = self.cov.lambdas(np.asarray(theta, dtype=float))
        out = np.empty(self.ntheta + 1)
        rel = [lam @ lam.T for lam in lams]
        for i in range(self.ntheta):
            S = rel[self.term[i]]
            r, c = self.row[i], self.col[i]
            if r == c:
                out[i] = sigma * np.sqrt(max(S[r, r], 0.0))
            else:
                den = np.sqrt(max(S[r, r], 0.0) * max(S[c, c], 0.0))
                out[i] = S[r, c] / den if den > 0 else np.nan
        out[-1] = sigma
        return out

    def to_theta(self, psi) -> tuple[np.ndarray, float] | None:
        """``(theta, sigma)`` from ``psi``; None when the correlations are not a valid
        (positive semi-definite) correlation matrix or sigma is not positive."""
        psi = np.asarray(psi, dtype=float)
        sigma = float(psi[-1])
        if not sigma > 0:
            return None
        lams = []
        for k, S in enumerate(self.cov.sizes):
            sd = np.zeros(S)
            R = np.eye(S)
            for i in np.flatnonzero(np.asarray(self.term) == k):
                r, c = self.row[i], self.col[i]
                if r == c:
                    sd[r] = psi[i]
                else:
                    v = 0.0 if np.isnan(psi[i]) else psi[i]
                    R[r, c] = R[c, r] = v
            if (sd < 0).any() or (np.abs(R) > 1.0 + 1e-12).any():
                return None
            LR = psd_cholesky(R)
            if LR is None:
                return None
            lams.append((sd / sigma)[:, None] * LR)
        return self.cov.pack(lams), sigma

    def jacobian(self, theta, sigma: float) -> np.ndarray:
        """``d psi / d (theta, sigma)`` by central differences (no model evaluations)."""
        x = np.append(np.asarray(theta, dtype=float), sigma)
        k = x.size
        J = np.empty((k, k))
        for j in range(k):
            h = 1e-6 * max(abs(x[j]), 1e-3)
            xp, xm = x.copy(), x.copy()
            xp[j] += h
            xm[j] -= h
            J[:, j] = (self.from_theta(xp[:-1], xp[-1]) - self.from_theta(xm[:-1], xm[-1])) / (
                2.0 * h
            )
        return J


def psd_cholesky(R: np.ndarray) -> np.ndarray | None:
    """Lower Cholesky factor of a positive semi-definite matrix (zero pivots allowed).

    A correlation of exactly +-1 gives a zero pivot; the factor is still defined (that
    column is zero).  Returns None when ``R`` is not positive semi-definite.
    """
    S = R.shape[0]
    L = np.zeros_like(R, dtype=float)
    for j in range(S):
        d = R[j, j] - L[j, :j] @ L[j, :j]
        if d < -1e-10:
            return None
        L[j, j] = np.sqrt(max(d, 0.0))
        for i in range(j + 1, S):
            v = R[i, j] - L[i, :j] @ L[j, :j]
            if L[j, j] > _PIVOT_TOL:
                L[i, j] = v / L[j, j]
            elif abs(v) > 1e-8:
                return None
    return L
