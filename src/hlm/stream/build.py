"""A LinearMixedModel from data streamed out of files, in one pass (two when needed).

The pass: read batches of the used columns, clean each, code its groups by order of
appearance, form its cross-products, merge them into the running statistics.  The first
``CHUNK_ROWS`` clean rows fix the design and the column transform, as in memory.  A first
pass is added only when later rows may hold levels the coding must know beforehand (text
predictors, ``C(k)``), and a level-equation spec with centring adds one for its group means.
The result is an ordinary :class:`hlm.LinearMixedModel`, so every engine fits it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from hlm.errors import DataError
from hlm.stream.memory import DEFAULT_MEMORY, batch_rows_for, check_dense_block, parse_bytes
from hlm.stream.plan import BatchPlan, Discovery
from hlm.stream.sources import TypesWidened, is_dask, open_source

#: attempts at a CSV pass whose column types widen on the way
_ATTEMPTS = 8


@dataclass(frozen=True)
class StreamFrame:
    """The frame-like record of a streamed fit: counts, and how to read the rows again.

    Attributes
    ----------
    n_dropped : int
        Rows dropped for a missing value.
    dropped_by : dict
        Column -> rows with a missing value in it.
    n_read : int
        Rows read.
    source : object
        The batch source (files) or the Dask dataframe.
    plan : BatchPlan
        How rows become model columns (for the second pass of per-row outputs).
    coder : FinalCoder
        The fit's group codes, to code rows again.
    batch_rows : int
        Rows per batch of the pass.
    term_order : list of int
        ``term_order[i]`` is the formula position of the model's i-th term (theta order).
    """

    n_dropped: int
    dropped_by: dict
    n_read: int
    source: object
    plan: BatchPlan
    coder: object
    batch_rows: int
    term_order: tuple = ()
    streamed: bool = True

    @property
    def data(self):
        """Not available: a streamed fit never holds all its rows."""
        raise DataError(
            "this model was fitted from data streamed in batches (files or Dask), and its "
            "rows are not held in memory; per-row outputs come from a second pass "
            "(res.fitted() on Dask data, hlm.stream.write_rows(res, 'out.parquet') on files). "
            "Outputs that need the rows in memory (reliability, variance tests, robust "
            "standard errors, OLS by group) are not available for streamed fits"
        )


def build_streamed_model(
    model,
    data,
    *,
    method: str = "REML",
    weights=None,
    offset=None,
    missing: str = "drop",
    memory=None,
    batch_rows: int | None = None,
    progress: bool | None = None,
):
    """Build a :class:`hlm.LinearMixedModel` from files or a Dask dataframe.

    Parameters
    ----------
    model : str or hlm.Levels
        lme4 formula or level-equation spec.
    data : str, path, list of paths, glob, directory, pyarrow Dataset or Dask dataframe
        Parquet files (``*.parquet``) or CSV files (``*.csv``).
    method : {"REML", "ML"}
    weights, offset : str, optional
        Column names (arrays cannot be aligned with streamed rows).
    missing : {"drop", "raise"}
    memory : str or int, optional
        Memory budget (``"1GB"``, ``"512MB"``, bytes); default ``"1GB"``.  Sets the rows per
        batch and bounds the dense block of crossed factors.
    batch_rows : int, optional
        Rows per batch (overrides what ``memory`` gives); for Dask the partitions are the
        batches.
    progress : bool, optional
        A progress bar over the batches; default: shown when stderr is a terminal.
    """
    if missing not in ("drop", "raise"):
        raise ValueError(f"missing must be 'drop' or 'raise', got {missing!r}")
    for name, value in (("weights", weights), ("offset", offset)):
        if value is not None and not isinstance(value, str):
            raise DataError(
                f"with data read in batches (files or Dask), {name}= must name a column of "
                "the data; an array cannot be aligned with the streamed rows"
            )
    budget = parse_bytes(DEFAULT_MEMORY if memory is None else memory)
    if is_dask(data):
        from hlm.stream.dask import build_dask_model

        return build_dask_model(
            model, data, method=method, weights=weights, offset=offset, missing=missing,
            budget=budget, progress=progress,
        )
    source = open_source(data)
    for _ in range(_ATTEMPTS):
        try:
            return _build(model, source, method, weights, offset, missing, budget, batch_rows,
                          progress)
        except TypesWidened:
            continue  # a CSV column's type was widened: the pass starts again
    raise DataError(f"the column types of {source.description} kept changing while reading")


def make_plan(model, source_columns, *, weights, offset, missing, mapreduce=None):
    """The plan and the user's model object, for a formula or a level-equation spec.

    ``mapreduce(columns, fn, combine)`` applies ``fn`` to every raw batch of ``columns``
    and combines the results in order (a level-equation spec with centring reads the data
    once for its group means).
    """
    from hlm.model import model_columns, model_spec

    source_model = model
    transform = None
    extra: list[str] = []
    available = list(source_columns)
    if hasattr(model, "prepare"):
        from hlm.stream.equations import prepare_streamed

        model, transform, extra = prepare_streamed(model, source_columns, mapreduce)
        available += transform.derived if transform is not None else []
    spec = model_spec(model)
    columns, groups_only = model_columns(spec, available)
    for c in (weights, offset):
        if c is not None:
            columns.append(c)
    columns = list(dict.fromkeys(columns))
    derived = set(transform.derived) if transform is not None else set()
    read = list(dict.fromkeys([c for c in columns if c not in derived] + extra))
    from hlm.frame import check_columns

    check_columns(read, {c: () for c in source_columns})
    plan = BatchPlan(
        spec=spec, read=read, columns=columns, groups_only=groups_only, missing=missing,
        weights=weights, offset=offset, transform=transform,
    )
    return plan, source_model


def _guess_widths(plan) -> tuple[int, int]:
    m = len(plan.columns) + 1
    S = sum(len(t.lhs.split("+")) + 1 for t in plan.spec.random)
    return m, S


def progress_bar(total, enabled, desc):
    """tqdm over rows; by default shown only on a terminal."""
    from tqdm.auto import tqdm

    disable = None if enabled is None else not enabled
    return tqdm(total=total, unit="rows", unit_scale=True, desc=desc, disable=disable, leave=False)


def _build(model, source, method, weights, offset, missing, budget, batch_rows, progress):
    from hlm.model import CHUNK_ROWS

    def mapreduce(columns, fn, combine):
        rows = batch_rows or batch_rows_for(budget, len(columns), len(columns), 1)
        out = None
        bar = progress_bar(source.count_rows(), progress, "hlm: group means")
        try:
            for raw in source.batches(columns, rows):
                part = fn(raw)
                out = part if out is None else combine(out, part)
                bar.update(len(raw))
        finally:
            bar.close()
        return out

    plan, source_model = make_plan(
        model, source.columns, weights=weights, offset=offset, missing=missing,
        mapreduce=mapreduce,
    )
    m, S = _guess_widths(plan)
    rows = batch_rows or batch_rows_for(budget, len(plan.read), m, S)
    total = source.count_rows()

    def batches(desc):
        bar = progress_bar(total, progress, desc)
        try:
            for raw in source.batches(plan.read, rows):
                yield raw
                bar.update(len(raw))
        finally:
            bar.close()

    it = batches("hlm: cross-products")
    head, rest, counts, exhausted = _read_head(plan, it, CHUNK_ROWS)

    def discover():
        d = Discovery(plan)
        d.add(head, skip=len(head))
        offset_rows = 0
        clean_seen = 0
        for raw in batches("hlm: levels"):
            df, _, _ = plan.clean(raw, offset_rows)
            offset_rows += len(raw)
            skip = max(0, min(len(df), len(head) - clean_seen))  # rows of the head
            clean_seen += len(df)
            if skip < len(df):
                d.add(df.iloc[skip:])
        return d

    head, rest, Xy = fix_plan(plan, head, rest, more=not exhausted, discover=discover)
    run = _running(plan, head, rest, counts, Xy)
    head = rest = Xy = None  # the head's rows are in the statistics now: free them
    for raw in it:
        run.add(plan.partial(raw, run.n_read, levels=run.levels))
        _check_dense_early(run, plan, budget)
    return finish(plan, run.partial(), source, source_model, method, budget, rows)


def _read_head(plan, it, head_rows):
    """Clean batches until ``head_rows`` clean rows: ``(head, rest, counts, exhausted)``."""
    pieces, have = [], 0
    n_read, n_dropped, dropped_by = 0, 0, {}
    exhausted = False
    while have < head_rows:
        raw = next(it, None)
        if raw is None:
            exhausted = True
            break
        df, nd, db = plan.clean(raw, n_read)
        n_read += len(raw)
        n_dropped += nd
        for c, k in db.items():
            dropped_by[c] = dropped_by.get(c, 0) + k
        if len(df):
            pieces.append(df)
            have += len(df)
    if not pieces:
        if n_read == 0:
            raise DataError("the data have no rows")
        raise DataError(
            "every row has a missing value in a column the model uses: "
            + ", ".join(f"{c!r} ({k} missing)" for c, k in dropped_by.items())
        )
    allrows = pd.concat(pieces) if len(pieces) > 1 else pieces[0]
    head, rest = allrows.iloc[:head_rows], allrows.iloc[head_rows:]
    return head, rest, (n_read, n_dropped, dropped_by), exhausted


def fix_plan(plan: BatchPlan, head, rest, *, more: bool, discover):
    """Fix levels, design and transform; returns the coded ``(head, rest, Xy_head)``.

    ``more`` says whether rows may follow the head; ``discover()`` runs the discovery pass
    and returns a :class:`Discovery` (it is called only when needed).
    """
    if not more and len(rest) == 0:
        d = Discovery(plan)
        d.add(head, skip=len(head))
        plan.levels = d.text_levels()
        head = plan.apply_levels(head)
        return head, rest, plan.fix_coding(head)
    if not plan.text_columns(head):
        Xy = plan.fix_coding(head)
        if not plan.needs_all_levels(head):
            return head, rest, Xy
    d = discover()
    plan.levels = d.text_levels()
    sample = plan.apply_levels(d.sample(head))
    head, rest = plan.apply_levels(head), plan.apply_levels(rest)
    return head, rest, plan.fix_coding(head, sample)


def _running(plan, head, rest, counts, Xy):
    from hlm.stream.accumulate import Running

    n_read, n_dropped, dropped_by = counts
    run = Running(plan.partial_clean(head, n_read, n_dropped, dropped_by, Xy=Xy))
    if len(rest):
        run.add(plan.partial_clean(rest, 0, 0, {}))
    return run


def _check_dense_early(run, plan, budget) -> None:
    """Stop the pass as soon as the crossed block surely exceeds the budget.

    Levels only grow, and whichever term ends up first, the others hold at least the total
    so far minus the largest term so far.
    """
    sizes = run.levels.sizes
    if len(sizes) < 2 or run.A is None:
        return
    q = [J * z.shape[1] for J, z in zip(sizes, run.A.ZZ, strict=True)]
    lower = sum(q) - max(q)
    from hlm.stream.memory import dense_block_bytes

    if dense_block_bytes(lower) > budget:
        zs = zip(plan.spec.random, sizes, run.A.ZZ, strict=True)
        check_dense_block([(t.group, J, z.shape[1]) for t, J, z in zs], budget)


def finish(plan, part, source, source_model, method, budget, rows):
    """Finalise the merged statistics into a LinearMixedModel."""
    from hlm.design.crossprod import hidden_intercept_basis
    from hlm.model import LinearMixedModel, check_identifiable
    from hlm.stream.accumulate import finalize
    from hlm.stream.levels import FinalCoder

    if part.A is None:
        if part.n_read == 0:
            raise DataError("the data have no rows")
        raise DataError(
            "every row has a missing value in a column the model uses: "
            + ", ".join(f"{c!r} ({k} missing)" for c, k in part.dropped_by.items())
        )
    A, blocks, order = finalize(part, plan.templates)
    check_identifiable(blocks, A.n)
    check_dense_block([(b.group, b.J, b.S) for b in blocks], budget)
    if not plan.design.has_intercept:
        A.basis = hidden_intercept_basis(A.shift, A.scale)
    frame = StreamFrame(
        n_dropped=part.n_dropped,
        dropped_by=dict(part.dropped_by),
        n_read=part.n_read,
        source=source,
        plan=plan,
        coder=FinalCoder(part.levels),
        batch_rows=rows,
        term_order=tuple(order),
    )
    model = LinearMixedModel.from_parts(
        plan.spec, frame, plan.design, blocks, A, method, weighted=plan.weights is not None
    )
    model.source = source_model
    if hasattr(source_model, "prepare"):
        from hlm.stream.equations import name_gammas

        name_gammas(source_model, plan.design)
    return model
