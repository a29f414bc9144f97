"""Checks of a fit at its optimum, after lme4's ``checkConv`` (lme4 1.1-31).

After the optimizer stops, lme4 differentiates the profiled criterion f(theta) by central
finite differences (``deriv12``, step ``delta = 1e-4``) and warns when

* the scaled gradient is large: ``max(min(|R^{-1} g|, |g|)) > 0.002``, where ``H = R'R`` is
  the Cholesky factorisation of the Hessian (``check.conv.grad``; ``(R^{-1} g)^2 / 2`` is
  about the decrease of f a Newton step would still bring);
* the Hessian is not positive definite: an eigenvalue below ``-tol`` (a saddle point or an
  unfinished search) or within ``tol`` of zero (parameters the data do not determine),
  ``tol = 1e-6`` (``check.conv.hess``);

and skips both for a singular fit.  :func:`check_fit` does the same, with three departures:

1. At a singular fit, the components away from their bound are still checked as above, and
   each diagonal element at (or within ``delta`` of) its bound zero must not let f decrease
   into the interior: its forward difference must be above ``-0.002``.
2. The eigenvalue tolerance is ``max(1e-6, 10 * 4 eps |f| / delta^2)``: a second difference
   of f cannot resolve curvature below its own rounding noise (with 10^4 rows, |f| ~ 10^4
   and the noise is ~ 1e-3).
3. lme4's "very large eigenvalue / large eigenvalue ratio: rescale variables?" warnings are
   not given: hlm centres and scales the columns itself, and a large curvature in theta
   only reflects many groups.  The eigenvalues are recorded.

Cost rule: the full Hessian takes ``2 k^2`` evaluations for k free components of theta
(lme4's count); it is formed for ``k <= FULL_HESSIAN_MAX`` (6, so at most 72 evaluations).
For more, only its diagonal is formed, from the same ``2 k`` evaluations as the gradient: the
scaled gradient is then ``g_j / sqrt(H_jj)`` and positive definiteness is checked on the
diagonal only (a necessary condition).  When the model has an analytic gradient
(``has_gradient``) and ``k >= 3``, the gradient is exact and the Hessian comes from forward
differences of it: ``k + 1`` gradient calls, each worth two to four evaluations (InstEval's
three crossed terms: 4 calls, 0.31 s, instead of 18 evaluations, 0.51 s).  Each component
at its bound costs one evaluation.

The checks also add a note (not a warning) when the predictors are on very different
scales, by lme4's ``check.scaleX`` rule: hlm's cross-products are centred and scaled, so the
fit is unaffected, and the note says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as la
from scipy.linalg import lapack

from hlm.errors import ConvergenceWarning, warn

#: lme4's ``check.conv.grad`` tolerance on the scaled gradient
GRAD_TOL = 2e-3
#: lme4's ``check.conv.hess`` tolerance on the Hessian's eigenvalues
HESS_TOL = 1e-6
#: lme4's ``deriv12`` step in theta (theta is relative, so the step is scale free)
DELTA = 1e-4
#: the full Hessian is formed for at most this many free theta components (2 k^2 evaluations)
FULL_HESSIAN_MAX = 6
#: with an analytic gradient and at least this many free components, the derivatives come
#: from k + 1 gradient calls (about 3 (k + 1) evaluations) instead of 2 k^2 evaluations
GRADIENT_MIN_THETA = 3
#: lme4's ``check.scaleX`` tolerance: standard deviations above it, below its inverse, or
#: in a ratio beyond it
SCALE_RATIO = 1e3

_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class FitChecks:
    """What the checks at the optimum found (``fit_log.checks``).

    Attributes
    ----------
    kind : {"full", "diagonal", "gradient", "skipped"}
        Full Hessian by differences of the criterion, its diagonal only (many theta
        components), full Hessian from differences of the analytic gradient, or no
        derivatives (the criterion was not finite).
    gradient : ndarray (ntheta,)
        Central differences of the criterion (the analytic gradient in "gradient" mode);
        forward differences for the components in ``at_bound``.
    scaled_gradient : ndarray (ntheta,)
        lme4's ``R^{-1} g`` on the free components (NaN at the bound, or when H is not
        positive definite).
    max_grad : float
        lme4's statistic ``max(min(|R^{-1} g|, |g|))`` over the free components.
    hessian : ndarray (k, k)
        Hessian of the criterion over the free components (diagonal in "diagonal" mode).
    hessian_eigenvalues : ndarray (k,)
    hessian_tol : float
        The eigenvalue tolerance used (departure 2 above).
    at_bound : tuple of str
        Names of the theta components held at their bound (zero).
    evaluations : int
        Criterion evaluations the checks made (criterion-and-gradient calls in "gradient"
        mode).
    ok : bool
        No convergence problem found.
    messages : tuple of str
        Warnings issued (:class:`hlm.ConvergenceWarning`).
    notes : tuple of str
        Information for the summary that is not a problem (e.g. internal rescaling).
    """

    kind: str
    gradient: np.ndarray
    scaled_gradient: np.ndarray
    max_grad: float
    hessian: np.ndarray
    hessian_eigenvalues: np.ndarray
    hessian_tol: float
    at_bound: tuple
    evaluations: int
    ok: bool
    messages: tuple = field(default_factory=tuple)
    notes: tuple = field(default_factory=tuple)

    def as_dict(self) -> dict:
        """The record kept in ``fit_log.checks``: plain JSON types (lists, floats, str).

        Saved results (:mod:`hlm.io`) store the fit log as JSON, so the record is a dict of
        lists rather than arrays; NaN marks components without a value.
        """
        out = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            if isinstance(v, np.ndarray):
                v = v.tolist()
            elif isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, np.floating | float):
                v = float(v)
            out[name] = v
        return out


def check_fit(model, theta, criterion: float, *, derivatives: str = "auto") -> FitChecks:
    """Check the optimum ``theta`` of ``model.objective`` as lme4 does; warn on problems.

    Parameters
    ----------
    model : LinearMixedModel
    theta : ndarray (ntheta,)
        The optimum found.
    criterion : float
        ``model.objective(theta)``, already known.
    derivatives : {"auto", "finite", "gradient"}
        ``"finite"``: lme4's central differences of the criterion; ``"gradient"``: the
        analytic gradient and forward differences of it (models with ``has_gradient``);
        ``"auto"``: the gradient when available and at least GRADIENT_MIN_THETA components
        are free (then it is the cheaper).

    Returns
    -------
    FitChecks
    """
    theta = np.asarray(theta, dtype=float)
    note = scale_note(model)
    notes = (note,) if note else ()
    ntheta = theta.size
    if not math.isfinite(criterion):
        empty = np.full(0, np.nan)
        return FitChecks(
            "skipped", np.full(ntheta, np.nan), np.full(ntheta, np.nan), np.nan,
            empty.reshape(0, 0), empty, np.nan, (), 0, False, (), notes,
        )  # fmt: skip
    count = [0]

    def f(x):
        count[0] += 1
        return float(model.objective(x))

    bound = _diagonal(model.cov) & (theta < DELTA)
    at_bound = bound.nonzero()[0]
    free = (~bound).nonzero()[0]
    has_gradient = bool(getattr(model, "has_gradient", False))
    if derivatives == "gradient" and not has_gradient:
        raise ValueError("derivatives='gradient' needs a model with an analytic gradient")
    if derivatives == "gradient" or (
        derivatives == "auto" and has_gradient and free.size >= GRADIENT_MIN_THETA
    ):
        kind, full = "gradient", True
        g_free, H = _from_gradient(model, theta, free, count)
    else:
        full = free.size <= FULL_HESSIAN_MAX
        kind = "full" if full else "diagonal"
        g_free, H = _derivatives(f, theta, criterion, free, full)
    gradient = np.full(ntheta, np.nan)
    gradient[free] = g_free
    for i in at_bound:
        step = theta.copy()
        step[i] += DELTA
        gradient[i] = (f(step) - criterion) / DELTA
    hess_tol = max(HESS_TOL, 10.0 * 4.0 * _EPS * max(abs(criterion), 1.0) / DELTA**2)
    eig = np.linalg.eigvalsh(H) if H.size and np.isfinite(H).all() else np.diag(H).copy()
    scaled = np.full(ntheta, np.nan)
    scaled_free = _scaled_gradient(g_free, H, full)
    scaled[free] = scaled_free
    # lme4's pmin(|R^{-1} g|, |g|); where H is not positive definite there is no scaled
    # gradient (lme4: "unable to evaluate scaled gradient") and the Hessian check speaks
    mingrad = np.minimum(np.abs(scaled_free), np.abs(g_free))
    # np.nanmax where some value is finite (else NaN), on a few plain floats
    values = mingrad.tolist()
    finite = any(math.isfinite(v) for v in values)
    max_grad = max(v for v in values if v == v) if finite else np.nan
    messages, names = [], None
    if max_grad > GRAD_TOL or _hessian_suspect(eig, hess_tol) or at_bound.size:
        # (the common case, nothing to report, skips this and forms no names)
        names = model.theta_names
        messages = _messages(
            model, names, free, at_bound, gradient, mingrad, max_grad, H, eig, hess_tol
        )
    for msg in messages:
        warn(msg, ConvergenceWarning)
    for a in (gradient, scaled, H, eig):
        a.setflags(write=False)
    return FitChecks(
        kind=kind,
        gradient=gradient,
        scaled_gradient=scaled,
        max_grad=max_grad,
        hessian=H,
        hessian_eigenvalues=eig,
        hessian_tol=hess_tol,
        at_bound=tuple(names[i] for i in at_bound),
        evaluations=count[0],
        ok=not messages,
        messages=tuple(messages),
        notes=notes,
    )


def _diagonal(cov) -> np.ndarray:
    """``cov.diagonal_mask()``: True where theta is a diagonal element of some lambda.

    Read off the (row, column) pairs of each term, which theta packs one term after
    another; the same mask as the bounds give, without forming them.
    """
    rows, cols = getattr(cov, "rows", None), getattr(cov, "cols", None)
    if rows is None or cols is None:
        return cov.diagonal_mask()
    return np.concatenate([r == c for r, c in zip(rows, cols, strict=True)] or [np.zeros(0, bool)])


def _hessian_suspect(eig: np.ndarray, tol: float) -> bool:
    """True unless every eigenvalue is above ``tol`` (then no Hessian message can arise)."""
    return bool(eig.size) and not eig.min() > tol


def _derivatives(f, theta, f0, free, full):
    """Central-difference gradient and Hessian over the components ``free`` (lme4's deriv12).

    Returns ``(g, H)``; H is diagonal when ``full`` is False.
    """
    k = free.size
    g = np.zeros(k)
    H = np.zeros((k, k))

    def at(*moves):
        x = theta.copy()
        for i, s in moves:
            x[free[i]] += s * DELTA
        return f(x)

    for j in range(k):
        fp, fm = at((j, 1)), at((j, -1))
        g[j] = (fp - fm) / (2 * DELTA)
        H[j, j] = (fp - 2 * f0 + fm) / DELTA**2
        if not full:
            continue
        for i in range(j):
            H[i, j] = H[j, i] = (
                at((i, 1), (j, 1))
                - at((i, 1), (j, -1))
                - at((i, -1), (j, 1))
                + at((i, -1), (j, -1))
            ) / (4 * DELTA**2)
    return g, H


def _from_gradient(model, theta, free, count):
    """Analytic gradient, and the Hessian by forward differences of it (``k + 1`` calls).

    Each call of ``objective_and_gradient`` costs two to four criterion evaluations, so
    for k >= 3 free components this is cheaper than lme4's ``2 k^2`` evaluations, and the
    gradient is exact rather than a difference.
    """
    k = free.size
    G = np.empty((k + 1, theta.size))  # the gradient at theta, then at each step
    G[0] = model.objective_and_gradient(theta)[1]
    for j in range(k):
        x = theta.copy()
        x[free[j]] += DELTA
        G[j + 1] = model.objective_and_gradient(x)[1]
    count[0] += k + 1
    if k < theta.size:
        G = G[:, free]
    g0 = G[0]
    H = ((G[1:] - g0) / DELTA).T  # column j: the change of the gradient along step j
    return g0, (H + H.T) / 2.0


def _scaled_gradient(g, H, full):
    """lme4's ``solve(chol(H), g)``: ``R^{-1} g`` with ``H = R'R``; NaN where H is not PD.

    With the diagonal of H only, ``g_j / sqrt(H_jj)`` for each positive ``H_jj``.
    """
    if g.size == 0:
        return g
    if not full:
        d = np.diag(H)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(d > 0, g / np.sqrt(np.where(d > 0, d, 1.0)), np.nan)
    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return np.full(g.size, np.nan)
    # R = L' is upper triangular and Fortran ordered: LAPACK's trtrs directly, as
    # scipy.linalg.solve_triangular(L.T, g) calls it, without the wrapper's cost on a k x k
    x, info = lapack.dtrtrs(L.T, g, lower=0)
    if info != 0:
        return la.solve_triangular(L.T, g, lower=False)  # the wrapper's own error
    return x


def _messages(model, names, free, at_bound, gradient, mingrad, max_grad, H, eig, tol) -> list[str]:
    """Warnings a user can act on, one per problem found."""
    crit = "REML criterion" if model.reml else "deviance"
    out = []
    if max_grad > GRAD_TOL:
        worst = names[free[int(np.nanargmax(mingrad))]]
        out.append(
            f"the fit may not have converged: the scaled gradient of the {crit} at the optimum "
            f"is {max_grad:.3g} (theta component {worst!r}; lme4's tolerance is "
            f"{GRAD_TOL}); refit starting from this optimum (theta0=res.theta) or with a "
            "larger maxeval, and compare; if it persists, simplify the random effects (drop a "
            "random slope, or use uncorrelated terms (x || g))"
        )
    negative = int((eig < -tol).sum())
    flat = int((np.abs(eig) <= tol).sum())
    if negative or flat:
        which = names[free[_direction(H, eig)]]
        if negative:
            out.append(
                f"the fit may not have converged: the Hessian of the {crit} at the optimum "
                f"has {negative} negative eigenvalue(s), mostly along theta component "
                f"{which!r}, so this is not a minimum (a saddle point, or a search that "
                "stopped early); refit from this optimum (theta0=res.theta) and compare, or "
                "simplify the random-effects structure"
            )
        else:
            out.append(
                f"the Hessian of the {crit} at the optimum is numerically singular ({flat} "
                f"eigenvalue(s) near zero, mostly along theta component {which!r}): the data "
                "do not determine some variance parameters (e.g. two terms describing the "
                "same variation); simplify the random-effects structure"
            )
    for i in at_bound:
        if gradient[i] < -GRAD_TOL:
            out.append(
                f"the {crit} still decreases when {names[i]!r} moves away from zero (slope "
                f"{gradient[i]:.3g}): the boundary fit may be premature; refit with theta0= "
                "this theta with that component set to 0.1, and compare"
            )
    return out


def _direction(H, eig) -> int:
    """Index of the free component that dominates the eigenvector of the smallest eigenvalue."""
    if H.shape[0] == 0:
        return 0
    if not np.isfinite(H).all():
        return int(np.argmin(np.where(np.isfinite(np.diag(H)), np.diag(H), -np.inf)))
    _, vectors = np.linalg.eigh(H)
    return int(np.argmax(np.abs(vectors[:, 0])))


def scale_note(model) -> str | None:
    """A note when the predictors are on very different scales (lme4's ``check.scaleX``).

    lme4 warns and suggests rescaling; hlm forms its cross-products from centred and scaled
    columns (:mod:`hlm.design.crossprod`), so the fit is exact in the original units.  The
    standard deviations are those of the columns of X (on the rows that fixed the scaling).
    """
    scale = np.asarray(model.A.out_scale[:-1], dtype=float)
    names = model.fixed_names
    spreads = [s for n, s in zip(names, scale.tolist(), strict=True) if n != "(Intercept)"]
    if spreads:  # the usual case first, on plain floats: all spreads in range, no note
        lo, hi = min(spreads), max(spreads)
        if lo > 0 and hi / lo <= SCALE_RATIO and 1 / SCALE_RATIO <= lo and hi <= SCALE_RATIO:
            return None
    cols = [(n, s) for n, s in zip(names, scale, strict=True) if n != "(Intercept)"]
    if not cols:
        return None
    lo = min(cols, key=lambda c: c[1])
    hi = max(cols, key=lambda c: c[1])
    if hi[1] / lo[1] <= SCALE_RATIO and 1 / SCALE_RATIO <= lo[1] and hi[1] <= SCALE_RATIO:
        return None
    span = (
        f"from {lo[1]:.3g} ({lo[0]!r}) to {hi[1]:.3g} ({hi[0]!r})"
        if lo[0] != hi[0]
        else f"{hi[1]:.3g} ({hi[0]!r})"
    )
    return (
        f"predictors on very different scales (standard deviations {span}): hlm centres and "
        "scales the columns internally, so the estimates are exact in the original units"
    )
