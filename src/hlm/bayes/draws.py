"""Posterior draws of every chain stacked by chain, and the quantities derived from them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def packed_index(S: int) -> np.ndarray:
    """``idx[r, c]``: position of element (r, c) of a covariance matrix in its packed
    lower triangle (column-wise, theta order); symmetric."""
    idx = np.zeros((S, S), dtype=np.intp)
    k = 0
    for c in range(S):
        for r in range(c, S):
            idx[r, c] = idx[c, r] = k
            k += 1
    return idx


@dataclass
class Draws:
    """All chains' draws, first two axes (chain, draw), user units.

    Attributes
    ----------
    beta : ndarray (C, D, p)
    sigma : ndarray (C, D)
    Sigma : list of ndarray (C, D, S_k (S_k + 1) / 2)
    b : list of ndarray (C, D, J_k, S_k) or None
    b_mean, b_sd : list of ndarray (J_k, S_k)
        Posterior mean and SD of each random effect (over all chains).
    groups : ndarray (C, D, 2 n_groups)
    accept : ndarray (C, n_mh)
    seconds : ndarray (C,)
    """

    beta: np.ndarray
    sigma: np.ndarray
    Sigma: list
    b: list | None
    b_mean: list
    b_sd: list
    groups: np.ndarray
    accept: np.ndarray
    seconds: np.ndarray

    @classmethod
    def stack(cls, chains: list) -> Draws:
        """Combine :class:`hlm.bayes.chains.ChainDraws` of several chains."""
        C = len(chains)
        K = len(chains[0].Sigma)
        D = len(chains[0].sigma)
        b = None
        if chains[0].b is not None:
            b = [np.stack([c.b[k] for c in chains]) for k in range(K)]
        means, sds = [], []
        for k in range(K):
            m = np.stack([c.b_mean[k] for c in chains])
            v = np.stack([c.b_sd[k] for c in chains]) ** 2
            mean = m.mean(axis=0)
            # law of total variance over chains of equal length
            within = v.mean(axis=0) * (D - 1) / max(C * D - 1, 1)
            between = ((m - mean) ** 2).sum(axis=0) * D / max(C * D - 1, 1)
            means.append(mean)
            sds.append(np.sqrt(within * C + between))
        return cls(
            beta=np.stack([c.beta for c in chains]),
            sigma=np.stack([c.sigma for c in chains]),
            Sigma=[np.stack([c.Sigma[k] for c in chains]) for k in range(K)],
            b=b,
            b_mean=means,
            b_sd=sds,
            groups=np.stack([c.groups for c in chains]),
            accept=np.stack([c.accept for c in chains]),
            seconds=np.array([c.seconds for c in chains]),
        )

    def sd(self, k: int) -> np.ndarray:
        """Standard deviations of term k, (C, D, S)."""
        S = self.S(k)
        idx = packed_index(S)
        return np.sqrt(np.maximum(self.Sigma[k][..., idx[np.arange(S), np.arange(S)]], 0.0))

    def corr(self, k: int) -> np.ndarray:
        """Correlations of term k in varcorr order (i < j, row by row), (C, D, S(S-1)/2)."""
        S = self.S(k)
        idx = packed_index(S)
        sd = self.sd(k)
        cols = []
        for i in range(S):
            for j in range(i + 1, S):
                denom = sd[..., i] * sd[..., j]
                with np.errstate(invalid="ignore", divide="ignore"):
                    cols.append(self.Sigma[k][..., idx[i, j]] / denom)
        shape = self.sigma.shape + (0,)
        return np.stack(cols, axis=-1) if cols else np.zeros(shape)

    def S(self, k: int) -> int:
        """Number of columns of term k."""
        n = self.Sigma[k].shape[-1]
        return int((np.sqrt(8 * n + 1) - 1) / 2)

    @property
    def n_chains(self) -> int:
        """Number of chains."""
        return self.sigma.shape[0]

    @property
    def n_draws(self) -> int:
        """Draws per chain."""
        return self.sigma.shape[1]
