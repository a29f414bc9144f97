"""Where streamed rows come from: Parquet files or a pyarrow Dataset, CSV files.

A source yields the columns a model needs as pandas DataFrames of at most ``batch_rows``
rows, in file order.  Parquet files are read one row group at a time (a decoded row group
is held in memory while its batches are formed: write row groups of at most a million rows
or so), CSV files one block at a time.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from hlm.errors import DataError

_PARQUET = (".parquet", ".pq", ".parq")
_CSV = (".csv", ".tsv", ".txt", ".csv.gz", ".csv.bz2", ".tsv.gz")


def is_streamed(data) -> bool:
    """True for data that ``hlm.fit`` reads in batches: paths, globs, a pyarrow Dataset,
    or a Dask dataframe."""
    if isinstance(data, str | os.PathLike):
        return True
    if isinstance(data, list | tuple) and data and all(
        isinstance(d, str | os.PathLike) for d in data
    ):
        return True
    module = type(data).__module__
    if module.startswith("pyarrow") and type(data).__name__.endswith("Dataset"):
        return True
    return is_dask(data)


def is_dask(data) -> bool:
    """True for a Dask dataframe (checked without importing dask)."""
    return type(data).__module__.split(".")[0] == "dask" and hasattr(data, "npartitions")


def _arrow():
    try:
        import pyarrow  # noqa: F401
        import pyarrow.dataset  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading Parquet or CSV files needs pyarrow: pip install 'hlm[arrow]'"
        ) from exc


def expand_paths(data) -> list[str]:
    """The files named by a path, a glob, a directory or a list of them, sorted."""
    items = [data] if isinstance(data, str | os.PathLike) else list(data)
    out: list[str] = []
    for item in items:
        text = os.fspath(item)
        if any(ch in text for ch in "*?["):
            found = sorted(glob.glob(text, recursive=True))
            if not found:
                raise DataError(f"no file matches {text!r}")
            out += [f for f in found if os.path.isfile(f)]
        elif os.path.isdir(text):
            found = sorted(
                str(p) for p in Path(text).rglob("*") if p.is_file() and _kind(str(p))
            )
            if not found:
                raise DataError(f"the directory {text!r} holds no Parquet or CSV file")
            out += found
        elif os.path.isfile(text):
            out.append(text)
        else:
            raise DataError(f"no file or directory {text!r}")
    return out


def _kind(path: str) -> str | None:
    low = path.lower()
    if low.endswith(_PARQUET):
        return "parquet"
    if low.endswith(_CSV):
        return "csv"
    return None


def open_source(data):
    """The batch source for ``data`` (paths, a glob, a directory, or a pyarrow Dataset)."""
    _arrow()
    import pyarrow.dataset as ds

    if isinstance(data, ds.Dataset):
        return ArrowSource(data, f"a pyarrow {type(data).__name__}")
    paths = expand_paths(data)
    kinds = {_kind(p) for p in paths}
    if kinds == {"csv"}:
        return CSVSource(paths)
    if kinds == {"parquet"}:
        return ArrowSource(ds.dataset(paths, format="parquet"), _describe(paths))
    unknown = [p for p in paths if _kind(p) is None]
    if unknown:
        raise DataError(
            f"cannot tell the format of {unknown[0]!r}: name Parquet files *.parquet and CSV "
            "files *.csv (or pass a pyarrow.dataset.dataset(...) of them)"
        )
    raise DataError("the files mix Parquet and CSV; pass one format at a time")


def _describe(paths: list[str]) -> str:
    return paths[0] if len(paths) == 1 else f"{len(paths)} files ({paths[0]}, ...)"


#: batches smaller than this are not worth a collection (its cost is per call, not per row)
RELEASE_ROWS = 50_000


def release_memory(rows: int = RELEASE_ROWS) -> None:
    """Hand freed memory back to the system between batches.

    A batch's frames and arrays are partly held by reference cycles, which only the cyclic
    collector frees; Arrow's pool keeps freed buffers; glibc's malloc keeps freed heap
    pages.  Without this, a 10^7-row pass crept from 0.7 to 1.3 GB of resident memory;
    with it, it stays at one batch's worth.
    """
    if rows < RELEASE_ROWS:
        return
    import gc

    import pyarrow as pa

    gc.collect(1)  # a batch's frames sit in reference cycles (pandas, formulaic) until then
    pa.default_memory_pool().release_unused()
    _malloc_trim()


def _malloc_trim() -> None:
    global _TRIM
    if _TRIM is None:
        try:
            import ctypes

            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc: nothing to trim
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM = None


def _coalesce(batches, batch_rows: int) -> Iterator:
    """Record batches -> Arrow tables of at most ``batch_rows`` rows (small ones joined).

    Batches are not cut to an exact size: a slice keeps its whole parent buffer alive, so
    cutting would hold two decoded row groups where one suffices.  (The first
    ``CHUNK_ROWS`` clean rows, which fix the design, are cut exactly by the caller.)
    """
    import pyarrow as pa

    pending: list = []
    have = 0
    for rb in batches:
        if rb.num_rows == 0:
            continue
        if have and have + rb.num_rows > batch_rows:
            yield pa.Table.from_batches(pending)
            pending, have = [], 0
        pending.append(rb)
        have += rb.num_rows
    if pending:
        yield pa.Table.from_batches(pending)


def arrow_to_pandas(table) -> pd.DataFrame:
    """Arrow to pandas as the in-memory path converts (integers with nulls stay integers),
    one block per column and freeing the Arrow buffers as it goes (no second copy)."""
    import pyarrow as pa

    def mapper(t):
        if pa.types.is_integer(t):
            return pd.Int64Dtype()
        return None

    return table.to_pandas(types_mapper=mapper, split_blocks=True, self_destruct=True)


class ArrowSource:
    """Batches from a pyarrow Dataset (Parquet files, or any dataset the user built).

    Parameters
    ----------
    dataset : pyarrow.dataset.Dataset
    description : str
        For messages.
    """

    def __init__(self, dataset, description: str):
        self.dataset = dataset
        self.description = description
        self.columns = list(dataset.schema.names)

    def count_rows(self) -> int | None:
        """Rows in the data (from the files' metadata for Parquet)."""
        return int(self.dataset.count_rows())

    def batches(self, columns: list[str], batch_rows: int) -> Iterator[pd.DataFrame]:
        """The columns ``columns`` in batches of ``batch_rows`` rows, in file order."""
        self._check(columns)
        for table in _coalesce(self._record_batches(list(columns), batch_rows), batch_rows):
            df = arrow_to_pandas(table)
            del table
            yield df
            rows = len(df)
            del df
            release_memory(rows)  # the reader's buffers go back before the next batch

    def _record_batches(self, columns, batch_rows):
        """Row group by row group, one thread: a dataset scanner reads far ahead (it held
        1.7 GB for a 10^7-row file), a row group at a time holds one row group."""
        import pyarrow.dataset as ds

        for fragment in self.dataset.get_fragments():
            pieces = (
                fragment.split_by_row_group()
                if isinstance(fragment, ds.ParquetFileFragment)
                else [fragment]
            )
            for piece in pieces:
                yield from piece.to_batches(
                    columns=columns,
                    batch_size=min(batch_rows, 1 << 20),
                    batch_readahead=0,
                    fragment_readahead=0,
                    use_threads=False,
                )

    def _check(self, columns):
        from hlm.frame import check_columns

        check_columns(columns, {c: () for c in self.columns})


class TypesWidened(Exception):
    """A CSV column's type was widened mid-read; the pass over the data must restart."""


class CSVSource:
    """Batches from CSV files, parsed by pyarrow's streaming reader.

    Column types are inferred by pyarrow from each file's first block; a value that does
    not convert later on (a decimal in a column of integers, text in a numeric column)
    widens that column's type and the pass starts again (:class:`TypesWidened`), so the
    types agree with a reader that sees the whole file (pandas' ``read_csv``).  A line with
    the wrong number of fields is an error naming the file and the line, never a padded or
    skipped row.
    """

    def __init__(self, paths: list[str], *, block_size: int = 1 << 22):
        self.paths = paths
        self.description = _describe(paths)
        self.block_size = block_size
        self.types: dict = {}
        self.columns = _csv_header(paths[0])

    def count_rows(self) -> int | None:
        """Unknown without reading the files."""
        return None

    def _read_options(self):
        import pyarrow.csv as pcsv

        # single-threaded so that the reader knows each row's line number
        return pcsv.ReadOptions(block_size=self.block_size, use_threads=False)

    def batches(self, columns: list[str], batch_rows: int) -> Iterator[pd.DataFrame]:
        """The columns ``columns`` in batches of ``batch_rows`` rows, file after file.

        Raises
        ------
        TypesWidened
            When a later block shows that a column's inferred type was too narrow; the
            column's type is widened and the caller starts its pass again.
        """
        from hlm.frame import check_columns

        check_columns(columns, {c: () for c in self.columns})
        for t in _coalesce(self._record_batches(columns), batch_rows):
            df = arrow_to_pandas(t)
            del t
            yield df
            rows = len(df)
            del df
            release_memory(rows)

    def _widen(self, message: str) -> bool:
        import pyarrow as pa

        match = re.search(
            r"In CSV column #(\d+): CSV conversion error to (\w+): invalid value '(.*)'",
            message,
        )
        if match is None:
            return False
        name = self.columns[int(match.group(1))]
        target, value = match.group(2), match.group(3)
        if target.startswith(("int", "uint")) and _is_number(value):
            self.types[name] = pa.float64()
        elif target == "string":
            return False
        else:
            self.types[name] = pa.string()
        return True

    # ------------------------------------------------------------------ reading
    def _record_batches(self, columns):
        import pyarrow as pa
        import pyarrow.csv as pcsv

        for path in self.paths:
            bad: list = []

            def invalid(row, bad=bad):
                bad.append(row)
                return "error"

            convert = pcsv.ConvertOptions(
                include_columns=list(columns),
                column_types={c: t for c, t in self.types.items() if c in columns},
                strings_can_be_null=True,
            )
            parse = pcsv.ParseOptions(invalid_row_handler=invalid)
            try:
                with pcsv.open_csv(
                    path,
                    read_options=self._read_options(),
                    parse_options=parse,
                    convert_options=convert,
                ) as reader:
                    yield from reader
            except pa.ArrowInvalid as exc:
                if bad:
                    row = bad[0]
                    raise DataError(
                        f"{path}, line {row.number}: expected {row.expected_columns} fields "
                        f"but found {row.actual_columns} ({row.text[:80]!r}); fix or remove "
                        "that line"
                    ) from None
                if self._widen(str(exc)):
                    raise TypesWidened(str(exc)) from None
                raise DataError(f"cannot read {path}: {exc}") from exc


def _csv_header(path: str) -> list[str]:
    """The column names on a CSV file's first line (read alone: a bad row further down is
    reported with its line number by the pass, not here)."""
    import csv
    import io

    import pyarrow as pa

    with pa.input_stream(path, compression="detect") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        first = next(csv.reader(text), None)
    if not first:
        raise DataError(f"{path} is empty: a CSV file needs a header line of column names")
    return first


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
