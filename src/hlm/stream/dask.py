"""Distributed fits on a Dask dataframe: statistics per partition on the workers, tree-reduced.

Each partition is turned into a :class:`hlm.stream.accumulate.Partial` (cross-products under
the partition's own group codes) where it lives; partials are merged pairwise in a tree on
the workers, and only the merged statistics, of size ``O(J S m)``, reach the client, which
runs the optimizer.  A group may be split over any number of partitions.  Works with the
default scheduler and with a ``distributed.Client`` (whichever is active).
"""

from __future__ import annotations

import sys

from hlm.stream.accumulate import merge
from hlm.stream.plan import Discovery


def _dask():
    try:
        import dask
        import dask.dataframe  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("fitting a Dask dataframe needs dask: pip install 'hlm[dask]'") from exc
    return dask


def tree_reduce(items: list, combine):
    """Delayed pairwise reduction of delayed ``items``, order kept (left before right)."""
    dask = _dask()
    step = dask.delayed(combine, pure=True)
    while len(items) > 1:
        items = [
            step(items[i], items[i + 1]) if i + 1 < len(items) else items[i]
            for i in range(0, len(items), 2)
        ]
    return items[0]


def _compute(obj, progress):
    """Compute with the active scheduler, with a progress bar when asked (or on a terminal)."""
    dask = _dask()
    show = sys.stderr.isatty() if progress is None else bool(progress)
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        client = None
    if client is not None:
        future = client.compute(obj)
        if show:
            from distributed import progress as dprogress

            dprogress(future)
        return future.result()
    if show:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return dask.compute(obj)[0]
    return dask.compute(obj)[0]


def _partial(raw, plan):
    """A partition's statistics, formed in slices of ``CHUNK_ROWS`` rows: a worker's memory
    holds one slice's design however large the partition."""
    from hlm.model import CHUNK_ROWS
    from hlm.stream.accumulate import Running
    from hlm.stream.levels import LevelTables
    from hlm.stream.sources import release_memory

    levels = LevelTables(plan.term_factors())
    run = None
    for start in range(0, max(len(raw), 1), CHUNK_ROWS):
        part = plan.partial(raw.iloc[start : start + CHUNK_ROWS], None, levels=levels)
        if run is None:
            run = Running(part)
        else:
            run.add(part)
        release_memory(min(CHUNK_ROWS, len(raw) - start))
    return run.partial()


def _clean_head(raw, plan, k):
    """The first ``k`` clean rows of a partition, and whether it has more."""
    df, _, _ = plan.clean(raw, None)
    return df.iloc[:k], len(df) > k


def _discovery(raw, plan):
    d = Discovery(plan)
    df, _, _ = plan.clean(raw, None)
    d.add(df)
    return d


def _merge_discovery(a: Discovery, b: Discovery) -> Discovery:
    out = Discovery(a.plan)
    out.merge(a)
    out.merge(b)
    return out


def _head(ddf, plan, head_rows):
    """The first ``head_rows`` clean rows: cleaned on the workers, partition by partition,
    and only those rows sent to the client."""
    import pandas as pd

    dask = _dask()
    parts = ddf.to_delayed()
    pieces, have, more = [], 0, False
    i = 0
    while have < head_rows and i < len(parts):
        df, more = dask.compute(dask.delayed(_clean_head)(parts[i], plan, head_rows - have))[0]
        if len(df):
            pieces.append(df)
            have += len(df)
        i += 1
    if not pieces:
        return None, True
    exhausted = i >= len(parts) and not more
    return (pd.concat(pieces) if len(pieces) > 1 else pieces[0]), exhausted


def build_dask_model(model, ddf, *, method, weights, offset, missing, budget, progress):
    """:func:`hlm.stream.build.build_streamed_model` for a Dask dataframe."""
    dask = _dask()
    from hlm.errors import DataError
    from hlm.model import CHUNK_ROWS
    from hlm.stream.build import finish, fix_plan, make_plan

    columns = [str(c) for c in ddf.columns]

    def mapreduce(read, fn, combine):
        parts = [dask.delayed(fn, pure=True)(d) for d in ddf[read].to_delayed()]
        return _compute(tree_reduce(parts, combine), progress)

    plan, source_model = make_plan(
        model, columns, weights=weights, offset=offset, missing=missing, mapreduce=mapreduce
    )
    data = ddf[plan.read]
    head, exhausted = _head(data, plan, CHUNK_ROWS)
    if head is None:
        raise DataError("the data have no rows without missing values in the model's columns")

    def discover():
        plan_d = dask.delayed(plan, pure=True)
        parts = [dask.delayed(_discovery, pure=True)(d, plan_d) for d in data.to_delayed()]
        found = _compute(tree_reduce(parts, _merge_discovery), progress)
        d = Discovery(plan)
        d.add(head, skip=len(head))
        d.merge(found)
        return d

    head, _, _ = fix_plan(plan, head, head.iloc[:0], more=not exhausted, discover=discover)
    plan_d = dask.delayed(plan, pure=True)
    parts = [dask.delayed(_partial, pure=True)(d, plan_d) for d in data.to_delayed()]
    total = _compute(tree_reduce(parts, merge), progress)
    return finish(plan, total, ddf, source_model, method, budget, None)


def per_row_dask(rm, ddf, include):
    """Lazy Dask dataframe of fitted values and residuals (see :func:`hlm.stream.per_row`)."""
    import numpy as np
    import pandas as pd

    dask = _dask()
    read = list(dict.fromkeys(rm.plan.read + include))
    meta = pd.DataFrame(
        {"fitted": np.zeros(0), "residual": np.zeros(0)}
        | {c: pd.Series(dtype=ddf._meta[c].dtype) for c in include}
    )
    rm_d = dask.delayed(rm, pure=True)
    return ddf[read].map_partitions(_outputs, rm_d, include, meta=meta)


def _outputs(df, rm, include):
    return rm.outputs(df, include)
