"""The one hot loop of model building: per-group sums ``sum z z'`` and ``sum z [X y]'``.

A compiled (numba) kernel makes one pass over the rows; the plain NumPy path (one weighted
bincount per pair of columns) gives the same numbers up to summation order.  The compiled
kernel is used whenever the compiled group loops of the fit are on (numba installed and
``HLM_NUMBA`` not ``"0"``, see :func:`hlm.compiled.group_kernels`): even for a few
thousand rows its single pass costs a tenth of the bincounts.  Large data use it whenever
numba is installed.
"""

from __future__ import annotations

import numpy as np

#: from this many rows numba is used whenever it is installed (even with HLM_NUMBA=0)
NUMBA_MIN_ROWS = 200_000

_kernel = None


def _numba_kernel():
    global _kernel
    if _kernel is None:
        from hlm.design._numba_kernels import group_sums

        _kernel = group_sums
    return _kernel


def numba_available() -> bool:
    """True when numba can be imported."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _compiled_loops_on() -> bool:
    """True when the fit's compiled group loops are on (numba loaded, HLM_NUMBA not 0)."""
    from hlm.compiled import group_kernels

    return group_kernels() is not None


def group_sums(z: np.ndarray, codes: np.ndarray, J: int, Xy: np.ndarray, *, engine: str = "auto"):
    """Per-group ``ZZ[g] = sum z z'`` (J, S, S) and ``ZXy[g] = sum z Xy'`` (J, S, m).

    Parameters
    ----------
    z : ndarray (n, S)
    codes : ndarray (n,) of int
    J : int
    Xy : ndarray (n, m)
    engine : {"auto", "numpy", "numba"}
    """
    n, S = z.shape
    m = Xy.shape[1]
    use_numba = engine == "numba" or (
        engine == "auto"
        and (_compiled_loops_on() or (n >= NUMBA_MIN_ROWS and numba_available()))
    )
    if use_numba:
        ZZ = np.zeros((J, S, S))
        ZXy = np.zeros((J, S, m))
        _numba_kernel()(
            np.ascontiguousarray(z),
            np.ascontiguousarray(codes, dtype=np.int64),
            np.ascontiguousarray(Xy),
            ZZ,
            ZXy,
        )
        return ZZ, ZXy
    ZZ = np.empty((J, S, S))
    ZXy = np.empty((J, S, m))
    # one weighted bincount per (column of z, column): cheaper than building a sparse
    # group indicator, from 180 rows (10x) to 1e5 rows (1.5x)
    for a in range(S):
        za = z[:, a]
        for b in range(S):
            ZZ[:, a, b] = np.bincount(codes, weights=za * z[:, b], minlength=J)
        for j in range(m):
            ZXy[:, a, j] = np.bincount(codes, weights=za * Xy[:, j], minlength=J)
    return ZZ, ZXy
