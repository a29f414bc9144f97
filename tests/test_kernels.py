"""The compiled per-group sums agree with the plain NumPy path."""

import numpy as np
import pytest

from hlm.design.kernels import group_sums, numba_available


@pytest.mark.skipif(not numba_available(), reason="numba not installed")
@pytest.mark.parametrize("S", [1, 2, 3])
def test_numba_and_numpy_group_sums_agree(S):
    rng = np.random.default_rng(S)
    n, J, m = 5000, 37, 6
    z = rng.normal(size=(n, S))
    Xy = rng.normal(size=(n, m)) + 100.0
    codes = rng.integers(0, J, n)
    zz_np, zx_np = group_sums(z, codes, J, Xy, engine="numpy")
    zz_nb, zx_nb = group_sums(z, codes, J, Xy, engine="numba")
    np.testing.assert_allclose(zz_nb, zz_np, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(zx_nb, zx_np, rtol=1e-12, atol=1e-9)


def test_numpy_group_sums_match_a_direct_loop():
    rng = np.random.default_rng(7)
    n, J, S, m = 300, 5, 2, 3
    z, Xy = rng.normal(size=(n, S)), rng.normal(size=(n, m))
    codes = rng.integers(0, J, n)
    ZZ, ZXy = group_sums(z, codes, J, Xy, engine="numpy")
    for g in range(J):
        rows = codes == g
        np.testing.assert_allclose(ZZ[g], z[rows].T @ z[rows], atol=1e-12)
        np.testing.assert_allclose(ZXy[g], z[rows].T @ Xy[rows], atol=1e-12)
