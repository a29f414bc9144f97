"""Batched small dense linear algebra: many S x S problems at once (one per group).

S = 1 and S = 2 have closed forms, which beat LAPACK's per-call overhead by far when there
are many groups; larger S use NumPy's batched routines.
"""

from __future__ import annotations

import numpy as np


def cholesky(M: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of SPD matrices, shape (J, S, S)."""
    S = M.shape[-1]
    if S == 1:
        return np.sqrt(M)
    if S == 2:
        L = np.zeros_like(M)
        l11 = np.sqrt(M[:, 0, 0])
        l21 = M[:, 1, 0] / l11
        L[:, 0, 0] = l11
        L[:, 1, 0] = l21
        L[:, 1, 1] = np.sqrt(M[:, 1, 1] - l21 * l21)
        return L
    return np.linalg.cholesky(M)


def solve_lower(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``L X = B`` for a stack of lower-triangular ``L`` (J, S, S), ``B`` (J, S, k)."""
    S = L.shape[-1]
    if S == 1:
        return B / L
    if S == 2:
        X = np.empty_like(B)
        X[:, 0] = B[:, 0] / L[:, 0, 0, None]
        X[:, 1] = (B[:, 1] - L[:, 1, 0, None] * X[:, 0]) / L[:, 1, 1, None]
        return X
    return np.linalg.solve(L, B)


def solve_upper_t(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``L' X = B`` for a stack of lower-triangular ``L`` (J, S, S), ``B`` (J, S, k)."""
    S = L.shape[-1]
    if S == 1:
        return B / L
    if S == 2:
        X = np.empty_like(B)
        X[:, 1] = B[:, 1] / L[:, 1, 1, None]
        X[:, 0] = (B[:, 0] - L[:, 1, 0, None] * X[:, 1]) / L[:, 0, 0, None]
        return X
    return np.linalg.solve(np.swapaxes(L, -1, -2), B)


def inverse_lower(L: np.ndarray) -> np.ndarray:
    """Inverses of a stack of lower-triangular matrices."""
    S = L.shape[-1]
    eye = np.broadcast_to(np.eye(S), L.shape)
    return solve_lower(L, np.array(eye))


def block_diag_csr(blocks: np.ndarray):
    """A scipy CSR matrix with the (J, S, S) ``blocks`` on its diagonal."""
    import scipy.sparse as sp

    J, S, _ = blocks.shape
    q = J * S
    if S == 1:
        return sp.diags(blocks.reshape(q), format="csr")
    indptr = np.arange(0, q * S + 1, S)
    base = np.arange(J).repeat(S) * S
    indices = (base[:, None] + np.arange(S)[None, :]).ravel()
    return sp.csr_matrix((blocks.reshape(-1), indices, indptr), shape=(q, q))
