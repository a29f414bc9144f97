"""Sorting a fitted model's grouping factors into nested levels, and the extra pass over the
rows that forms the per-group cross-products behind the HLM-style outputs (see
:mod:`hlm.results.hierarchy`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from hlm.errors import NestingError
from hlm.results.hierarchy import Hierarchy, Level


def nested_levels(blocks) -> list[tuple[str, list[int]]]:
    """The model's grouping factors as a nested chain, finest first.

    Returns
    -------
    list of (group, block indices)

    Raises
    ------
    NestingError
        When two grouping factors are crossed (neither nested in the other) or define the
        same groups under two names.
    """
    by_group: dict[str, list[int]] = {}
    for k, b in enumerate(blocks):
        by_group.setdefault(b.group, []).append(k)
    order = sorted(by_group, key=lambda g: -blocks[by_group[g][0]].J)
    for fine, coarse in zip(order, order[1:], strict=False):
        bf, bc = blocks[by_group[fine][0]], blocks[by_group[coarse][0]]
        parent = np.full(bf.J, -1, dtype=np.int64)
        parent[bf.codes] = bc.codes
        if not np.array_equal(parent[bf.codes], bc.codes):
            raise NestingError(
                "HLM-style output (reliability, chi-square tests, robust standard errors, "
                "OLS by group, ICC) is defined for nested designs with one grouping factor "
                f"per level; the grouping factors {fine!r} and {coarse!r} are crossed "
                f"(some {fine!r} groups span several {coarse!r} groups). Fit a nested model "
                "or use the lme4-style outputs (summary(), varcorr(), ranef())"
            )
        if bf.J == bc.J:
            raise NestingError(
                f"the grouping factors {fine!r} and {coarse!r} define the same groups; "
                "HLM-style output needs one grouping factor per level: drop one of them"
            )
    for g in order:
        cols = [c for k in by_group[g] for c in blocks[k].columns]
        if len(set(cols)) != len(cols):
            raise NestingError(
                f"the random-effects terms on {g!r} repeat a column ({', '.join(cols)}); "
                "HLM-style output needs each random coefficient once per level"
            )
    return [(g, by_group[g]) for g in order]


def build_hierarchy(result) -> Hierarchy:
    """Check that ``result``'s model is nested and form the per-group cross-products.

    One pass over the rows of ``result.model.frame.data`` in chunks (as the fit did).

    Raises
    ------
    NestingError
        For crossed grouping factors.
    """
    from hlm.model import CHUNK_ROWS

    model = result.model
    est = result._est
    chain = nested_levels(model.blocks)
    finest = model.blocks[chain[0][1][0]]
    J0 = finest.J
    df = model.frame.data
    w = df["(weights)"].to_numpy(dtype=float) if model.weights_info is not None else None
    offset = getattr(model, "offset", None)
    widths = [sum(model.blocks[k].S for k in ks) for _, ks in chain]
    R = sum(widths) + model.p + 1
    K = np.zeros((J0, R, R))
    iu = np.triu_indices(R)
    for start in range(0, len(df), CHUNK_ROWS):
        chunk = df.iloc[start : start + CHUNK_ROWS]
        Xy = model.design.Xy(chunk)
        parts = [model.blocks[k].Z(chunk) for _, ks in chain for k in ks]
        y = Xy[:, -1:]
        if offset is not None:  # the fit's response is y - offset
            y = y - offset[start : start + CHUNK_ROWS, None]
        r = np.hstack(parts + [Xy[:, model.keep], y])
        if w is not None:
            r *= np.sqrt(w[start : start + CHUNK_ROWS])[:, None]
        codes = finest.codes[start : start + CHUNK_ROWS]
        for a, b in zip(*iu, strict=True):
            K[:, a, b] += np.bincount(codes, weights=r[:, a] * r[:, b], minlength=J0)
    K = np.triu(K) + np.swapaxes(np.triu(K, 1), 1, 2)
    n_rows = np.bincount(finest.codes, minlength=J0)
    levels = []
    start = 0
    for i, (group, ks) in enumerate(chain):
        blk = model.blocks[ks[0]]
        of_finest = np.empty(J0, dtype=np.int64)
        of_finest[finest.codes] = blk.codes
        parent = None
        if i + 1 < len(chain):
            up = model.blocks[chain[i + 1][1][0]]
            parent = np.empty(blk.J, dtype=np.int64)
            parent[blk.codes] = up.codes
        levels.append(
            Level(
                group=group,
                columns=[c for k in ks for c in model.blocks[k].columns],
                labels=np.asarray(blk.levels).astype(str),
                T=scipy.linalg.block_diag(*[est.Sigma[k] for k in ks]),
                b=np.hstack([est.b[k] for k in ks]),
                of_finest=of_finest,
                parent=parent,
                n_rows=np.bincount(of_finest, weights=n_rows, minlength=blk.J).astype(int),
                zslice=slice(start, start + widths[i]),
            )
        )
        start += widths[i]
    return Hierarchy(levels, K, est.beta, est.sigma**2, model.fixed_names, w is not None)
