"""Fits beyond one machine's memory: data streamed from files, or spread over Dask workers.

The cross-products of ``[Z X y]`` are sums over rows, so they can be formed batch by batch
(Parquet or CSV files read under a memory budget) or partition by partition (a Dask
dataframe, reduced on the workers), and the fit proceeds on the merged statistics exactly as
in memory.  ``hlm.fit(model, "data/*.parquet")`` and ``hlm.fit(model, dask_df)`` come here.

Public entry points:

* :func:`hlm.stream.build.build_streamed_model` (what ``hlm.fit`` and
  ``hlm.LinearMixedModel.from_formula`` call for such data);
* :func:`hlm.stream.rows.per_row` (fitted values and residuals by a second pass, lazily);
* :func:`hlm.stream.memory.parse_bytes`.
"""

from hlm.stream.memory import parse_bytes
from hlm.stream.rows import per_row, write_rows

__all__ = ["parse_bytes", "per_row", "write_rows"]
