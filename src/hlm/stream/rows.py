"""Per-row outputs of a streamed fit (fitted values, residuals) by a second pass, lazily.

The fit keeps no rows; a second pass reads them again, batch by batch (files) or partition
by partition on the workers (Dask), and computes ``X beta + Z b`` (plus the offset) with the
fitted ``beta`` and conditional modes ``b`` broadcast to wherever the rows are.  Nothing
collects the rows on the client: files give an iterator of pandas frames or a Parquet file,
Dask gives a lazy Dask dataframe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hlm.errors import DataError

#: the output columns
OUTPUTS = ("fitted", "residual")


@dataclass
class RowModel:
    """What computing per-row outputs needs: small, picklable, sent once to the workers."""

    plan: object
    coder: object
    blocks: list
    term_order: list
    beta: np.ndarray
    b: list
    keep: list

    def outputs(self, raw: pd.DataFrame, include=(), first_row: int | None = None):
        """``fitted`` and ``residual`` for the clean rows of a raw batch.

        The index is the row's position in the data (``first_row`` + position in the batch)
        for files, the partition's own index for Dask; ``include`` columns are copied over.
        """
        plan = self.plan
        df, _, _, kept = plan.clean_rows(raw, first_row)
        Xy = plan.design.Xy(df)
        fit = Xy[:, self.keep] @ self.beta
        codes = self.coder.code(df)
        for blk, k, bk in zip(self.blocks, self.term_order, self.b, strict=True):
            fit += np.einsum("ij,ij->i", blk.Z(df), bk[codes[k]])
        if plan.offset is not None:
            fit += df[plan.offset].to_numpy(dtype=float)
        out = {"fitted": fit, "residual": Xy[:, -1] - fit}
        for c in include:
            values = raw[c].to_numpy()
            out[c] = values if kept is None else values[kept]
        return pd.DataFrame(out, index=df.index)


def row_model(result) -> RowModel:
    """The per-row model of a streamed fit's result."""
    frame = result.model.frame
    if not getattr(frame, "streamed", False):
        raise DataError("per_row/write_rows are for streamed fits; use res.fitted() instead")
    return RowModel(
        plan=frame.plan,
        coder=frame.coder,
        blocks=list(result.model.blocks),
        term_order=list(frame.term_order),
        beta=result.fixef.to_numpy(),
        b=[np.asarray(bk) for bk in result._est.b],
        keep=list(result.model.keep),
    )


def per_row(result, include=()):
    """Fitted values and residuals of a streamed fit, lazily.

    Parameters
    ----------
    result : MixedModelResult
        Of a fit on files or on a Dask dataframe.
    include : sequence of str
        Data columns to carry along (identifiers, say).

    Returns
    -------
    dask.dataframe.DataFrame or iterator of pandas.DataFrame
        For Dask data, a lazy Dask dataframe with columns ``fitted``, ``residual`` (and
        ``include``) aligned with the data's partitions and index; for files, an iterator
        of pandas frames, one per batch, indexed by row number in the data.  Rows dropped
        for missing values are left out, as in the fit.
    """
    rm = row_model(result)
    frame = result.model.frame
    include = list(include)
    if hasattr(frame.source, "npartitions"):
        from hlm.stream.dask import per_row_dask

        return per_row_dask(rm, frame.source, include)
    return _per_row_files(rm, frame, include)


def _per_row_files(rm, frame, include):
    read = list(dict.fromkeys(rm.plan.read + include))
    start = 0
    for raw in frame.source.batches(read, frame.batch_rows):
        out = rm.outputs(raw, include, start)
        out.index = out.index + start
        start += len(raw)
        yield out


def write_rows(result, path, include=()) -> str:
    """Write fitted values and residuals of a streamed fit to a Parquet file (or directory).

    A second pass over the data, batch by batch (files) or on the workers (Dask, one file
    per partition in the directory ``path``); the rows never gather on the client.  Each
    row carries ``row`` (its position in the data) for files, the data's index for Dask.

    Returns
    -------
    str
        ``path``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = per_row(result, include)
    if not isinstance(out, pd.DataFrame) and hasattr(out, "to_parquet"):
        out.to_parquet(str(path))
        return str(path)
    writer = None
    try:
        for piece in out:
            piece = piece.rename_axis("row").reset_index()
            table = pa.Table.from_pandas(piece, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise DataError("no rows to write")
    return str(path)


def streamed_series(result, which: str):
    """``res.fitted()`` / ``res.residuals()`` of a streamed fit: a lazy Dask series.

    Files have no lazy series of their own; the message points at :func:`write_rows` and
    :func:`per_row`.
    """
    frame = result.model.frame
    if hasattr(frame.source, "npartitions"):
        return per_row(result)[which]
    raise DataError(
        f"the {which} values of a fit streamed from files are written by a second pass over "
        "the files: hlm.stream.write_rows(res, 'rows.parquet') writes fitted values and "
        "residuals to Parquet, hlm.stream.per_row(res) yields them batch by batch"
    )


def rows_needed(what: str):
    """Refuse an output that needs all rows in memory, for a streamed fit."""
    raise NotImplementedError(
        f"{what} need the rows in memory, and this model was fitted from data streamed in "
        "batches (files or Dask); fit an in-memory sample or subset with hlm.fit(model, "
        "data_frame) for them"
    )
