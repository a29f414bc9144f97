"""numba kernels (imported only when numba is installed and the data are large)."""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def group_sums(z, codes, Xy, ZZ, ZXy):  # pragma: no cover - compiled
    """Add ``z_i z_i'`` and ``z_i Xy_i'`` of every row into its group's slot."""
    n, S = z.shape
    m = Xy.shape[1]
    for i in range(n):
        g = codes[i]
        for a in range(S):
            za = z[i, a]
            for b in range(S):
                ZZ[g, a, b] += za * z[i, b]
            for k in range(m):
                ZXy[g, a, k] += za * Xy[i, k]
