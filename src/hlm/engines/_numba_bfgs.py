"""Dense BFGS with lower bounds, compiled, for the few parameters of a covariance model.

The profiled criterion has a handful of parameters (3 for an intercept and a slope) and on
small data an evaluation of criterion and gradient costs a few microseconds in compiled code,
while a Python optimizer loop (scipy's L-BFGS-B wrapping included) costs tens of
microseconds per iteration.  This module's loop is written once, in the subset of Python that
numba compiles, and for one-term models (criterion and gradient in
:mod:`hlm.linalg._numba_one_term`) the whole minimisation runs as one compiled call
(:func:`bfgs_bounded`); other models keep scipy's L-BFGS-B
(:mod:`hlm.engines.quasi_newton`, which also holds the safeguards around both).  It is a
textbook active-set quasi-Newton method:

* variables at their lower bound whose gradient points outward (or is zero: by symmetry a
  diagonal element of lambda at 0 has a zero gradient; the caller probes it) are held there;
  the others take the Newton step of the BFGS model restricted to them, ``B_ff d = -g_f``;
  a held variable the step would push through its bound is held too;
* the step is cut where it first reaches a bound (that variable lands on it);
* the step length satisfies the weak Wolfe conditions (sufficient decrease ``C1``, curvature
  ``C2``) by bisection and doubling, so the BFGS update keeps ``B`` positive definite
  (updates with too little curvature, ``s'y <= 0`` after a cut step, are skipped); near
  the optimum of a large criterion, where a step changes f by less than f's rounding, the
  approximate Wolfe conditions of Hager & Zhang (2005) accept it from the exact gradient;
* the first step has length 1 (the caller scales the variables so that this is a sensible
  first move) and ``B`` starts as ``(y'y / s'y) I`` after it (Nocedal & Wright, eq. 6.20).

It stops when the largest projected gradient is at most ``gtol`` (:data:`PGTOL`), when an
iteration lowers the criterion, or the next step would lower it to first order, by at most
``ftol`` relative to its size (:data:`FTOL_STOP`, as L-BFGS-B's ``factr``), or when the
line search finds no lower point (:data:`NO_DECREASE`: rounding level; the caller judges it
by the decrease the model still predicts).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hlm.linalg._numba_one_term import cholesky_into, criterion_gradient

#: sufficient-decrease and curvature constants of the weak Wolfe conditions
C1 = 1e-4
C2 = 0.9
#: most evaluations in one line search
MAX_LINE = 30
#: the criterion's rounding relative to its size, for the approximate Wolfe conditions: a
#: sum over many rows and groups carries errors of many ulps (1e-14 relative at n = 1e6)
NOISE = 100 * np.finfo(np.float64).eps
#: status codes returned by :func:`bfgs_bounded`
PGTOL, FTOL_STOP, NO_DECREASE, MAXFUN, NO_DESCENT, NOT_FINITE = 0, 1, 2, 3, 4, 5
MESSAGES = (
    "projected gradient below gtol",
    "relative reduction below ftol",
    "line search found no lower point",
    "evaluation limit reached",
    "no descent direction",
    "criterion not finite at the start",
)


@njit(cache=True, nogil=True)
def bfgs_bounded(args, x0, lower, gtol, ftol, maxfun):  # pragma: no cover - compiled
    """Minimise a one-term model's criterion over ``x >= lower``.

    Parameters
    ----------
    args : tuple
        The model's statistics for
        :func:`~hlm.linalg._numba_one_term.criterion_gradient` (a non-finite criterion
        there means too far: the step is cut).
    x0, lower : ndarray (n,)
        Start and lower bounds (``-inf`` for free parameters).
    gtol, ftol : float
        Tolerances on the projected gradient and on the relative decrease per iteration.
    maxfun : int
        Most evaluations.

    Returns
    -------
    x, f, g : the best point, its criterion and gradient
    B : ndarray (n, n)
        The BFGS model of the Hessian at the end.
    status : int
        One of the status codes (:data:`MESSAGES` says them in words).
    nfev : int
        Evaluations used.
    """
    n = x0.shape[0]
    x = np.empty(n)
    for i in range(n):
        x[i] = max(x0[i], lower[i])
    f, g = criterion_gradient(x, args)
    nfev = 1
    B = np.eye(n)
    if not np.isfinite(f):
        return x, f, g, B, NOT_FINITE, nfev
    first = True
    held = np.zeros(n, dtype=np.bool_)
    d = np.zeros(n)
    while True:
        # projected gradient: zero where a variable is held at its bound
        pg_max = 0.0
        for i in range(n):
            held[i] = x[i] <= lower[i] and g[i] >= 0.0
            if not held[i]:
                pg_max = max(pg_max, abs(g[i]))
        if pg_max <= gtol:
            return x, f, g, B, PGTOL, nfev
        slope = _direction(B, g, x, lower, held, first, d)
        if not slope < 0.0:
            B = np.eye(n)  # the model stopped giving descent: start it again
            first = True
            slope = _direction(B, g, x, lower, held, first, d)
            if not slope < 0.0:
                return x, f, g, B, NO_DESCENT, nfev
        noise = NOISE * max(abs(f), 1.0)
        if -slope <= ftol * max(abs(f), 1.0):
            # even the full step's first-order decrease is below the criterion's rounding:
            # a line search would only chase noise
            return x, f, g, B, FTOL_STOP, nfev
        # the longest step before a variable reaches its bound
        alpha_max = np.inf
        for i in range(n):
            if d[i] < 0.0 and np.isfinite(lower[i]):
                alpha_max = min(alpha_max, (lower[i] - x[i]) / d[i])
        alpha = min(1.0, alpha_max)
        lo, hi = 0.0, np.inf
        found = False
        xa, fa, ga = x, f, g
        for _ in range(MAX_LINE):
            if nfev >= maxfun:
                break
            xt = x + alpha * d
            if alpha == alpha_max:  # land exactly on the bound(s) that cut the step
                for i in range(n):
                    if d[i] < 0.0 and (lower[i] - x[i]) / d[i] <= alpha_max * (1.0 + 1e-12):
                        xt[i] = lower[i]
            ft, gt = criterion_gradient(xt, args)
            nfev += 1
            dt = np.dot(gt, d)
            if (
                np.isfinite(ft)
                and ft <= f + noise
                and C2 * slope <= dt <= (2.0 * C1 - 1.0) * slope
            ):
                # approximate Wolfe conditions (Hager & Zhang): near the optimum the change
                # of f is below its rounding, but the exact gradient still shows the step
                # decreases f by the sufficient amount (exactly so for a quadratic)
                xa, fa, ga = xt, ft, gt
                found = True
                break
            if not np.isfinite(ft) or ft > f + C1 * alpha * slope:
                hi = alpha
            elif dt < C2 * slope and alpha < alpha_max:
                lo = alpha  # still falling steeply: go further
                xa, fa, ga = xt, ft, gt
                found = True
            else:
                xa, fa, ga = xt, ft, gt
                found = True
                break
            if hi < np.inf:
                alpha = 0.5 * (lo + hi)
            else:
                alpha = min(2.0 * alpha, alpha_max)
            if hi - lo <= 1e-12 * max(1.0, lo):
                break
        if not found:
            status = MAXFUN if nfev >= maxfun else NO_DECREASE
            return x, f, g, B, status, nfev
        s = xa - x
        y = ga - g
        sy = np.dot(s, y)
        decrease = f - fa
        xp, fp, gp = x, f, g
        x, f, g = xa, fa, ga
        if sy > 1e-12 * np.sqrt(np.dot(s, s) * np.dot(y, y)):
            if first:
                B = np.eye(n) * (np.dot(y, y) / sy)
                first = False
            Bs = B @ s
            B = B - np.outer(Bs, Bs) / np.dot(s, Bs) + np.outer(y, y) / sy
        # a step cut at a bound changed the active set: not a reason to stop
        cut = False
        for i in range(n):
            if x[i] <= lower[i] and not held[i]:
                cut = True
        if not cut and decrease <= ftol * max(abs(f), abs(f + decrease), 1.0):
            if decrease < 0.0:  # an approximate-Wolfe step that rounding made go up
                return xp, fp, gp, B, FTOL_STOP, nfev
            return x, f, g, B, FTOL_STOP, nfev
        if nfev >= maxfun:
            return x, f, g, B, MAXFUN, nfev


@njit(cache=True, nogil=True)
def _direction(B, g, x, lower, held, first, d):  # pragma: no cover - compiled
    """Fill ``d`` with the quasi-Newton step on the free variables; return ``g'd``.

    Variables the step would push through their bound are held as well, and the step is
    formed again without them.
    """
    n = g.shape[0]
    hold = held.copy()
    for _ in range(n + 1):
        free = np.flatnonzero(~hold)
        k = free.shape[0]
        d[:] = 0.0
        if k == 0:
            return 0.0
        if first:  # steepest descent, length 1
            norm = 0.0
            for i in free:
                norm += g[i] * g[i]
            norm = np.sqrt(norm)
            for i in free:
                d[i] = -g[i] / norm
        else:
            Bf = np.empty((k, k))
            gf = np.empty(k)
            for a in range(k):
                gf[a] = g[free[a]]
                for b in range(k):
                    Bf[a, b] = B[free[a], free[b]]
            step = _solve_pd(Bf, gf)
            for a in range(k):
                d[free[a]] = -step[a]
        pushed = False
        for i in range(n):
            if not hold[i] and d[i] < 0.0 and x[i] <= lower[i]:
                hold[i] = True
                pushed = True
        if not pushed:
            return np.dot(g, d)
    d[:] = 0.0
    return 0.0


@njit(cache=True, nogil=True)
def _solve_pd(A, b):  # pragma: no cover - compiled
    """``A^{-1} b`` by Cholesky for a small positive definite ``A`` (NaNs if it is not)."""
    k = b.shape[0]
    L = np.empty((k, k))
    if not cholesky_into(A, L):
        return np.full(k, np.nan)
    z = np.empty(k)
    for a in range(k):
        acc = b[a]
        for j in range(a):
            acc -= L[a, j] * z[j]
        z[a] = acc / L[a, a]
    for a in range(k - 1, -1, -1):
        acc = z[a]
        for j in range(a + 1, k):
            acc -= L[j, a] * z[j]
        z[a] = acc / L[a, a]
    return z


def one_term_minimizer(model, mult):
    """The compiled minimisation of a one-term model, for :func:`minimize_lbfgsb`.

    Parameters
    ----------
    model : LinearMixedModel
        One random-effects term, cross-products in the model's columns (``A.basis`` None).
    mult : ndarray
        ``theta = mult * z`` for the optimizer's variables ``z``.

    Returns
    -------
    callable
        ``run(z0, lower, gtol, ftol, maxfun) -> (z, f, g, B, message, converged, nfev)``;
        the evaluations are added to ``model.evaluations``.
    """
    A = model.A
    p = model.p
    args = (
        np.ascontiguousarray(mult, dtype=np.float64),
        model.cov.rows[0].astype(np.int64),
        model.cov.cols[0].astype(np.int64),
        np.ascontiguousarray(A.ZZ[0]),
        np.ascontiguousarray(A.ZXy[0]),
        np.ascontiguousarray(A.G),
        bool(model.reml),
        int(model.n),
        int(p),
        2.0 * float(np.log(A.out_scale[-1])),
        2.0 * float(np.log(A.out_scale[:-1]).sum()),
        float(A.sum_log_w),
    )

    def run(z0, lower, gtol, ftol, maxfun):
        z, f, g, B, status, nfev = bfgs_bounded(
            args, np.ascontiguousarray(z0, dtype=np.float64),
            np.ascontiguousarray(lower, dtype=np.float64), gtol, ftol, int(maxfun),
        )
        model.evaluations += int(nfev)
        converged = status == PGTOL or status == FTOL_STOP
        return z, float(f), g, B, MESSAGES[status], converged, int(nfev)

    return run
