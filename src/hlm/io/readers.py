"""Reading data files for the command line: CSV, Parquet, Stata ``.dta``, SPSS ``.sav``.

Every reader either returns a pandas DataFrame or raises :class:`hlm.DataError` with a
one-line reason (the file, the line, the column).  A CSV line with too few or too many
fields is an error naming its line number: pandas would silently pad a short line with
missing values, so CSV files are read with pyarrow's parser, which reports each malformed
row (or, without pyarrow, checked line by line with the :mod:`csv` module).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from hlm.errors import DataError

#: file suffixes and the format they are read as
FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".gz": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".dta": "stata",
    ".sav": "spss",
    ".zsav": "spss",
}


def data_format(path: str | Path) -> str:
    """The format of a data file from its suffix (``"csv"``, ``"parquet"``, ...)."""
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes[-1:] == [".gz"] and len(suffixes) >= 2:
        return FORMATS.get(suffixes[-2], "csv")
    if not suffixes:
        return "csv"
    fmt = FORMATS.get(suffixes[-1])
    if fmt is None:
        raise DataError(
            f"{p.name}: unknown data file type {suffixes[-1]!r}; use .csv, .tsv, .parquet, "
            ".dta (Stata) or .sav (SPSS)"
        )
    return fmt


def read_data(path: str | Path) -> pd.DataFrame:
    """Read a data file into a DataFrame, by its suffix.

    Parameters
    ----------
    path : str or Path
        ``.csv`` / ``.tsv`` (optionally ``.gz``), ``.parquet``, ``.dta`` (Stata, value labels
        become categories) or ``.sav`` (SPSS, needs the ``spss`` extra: ``pip install
        'hlm[spss]'``).

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    hlm.DataError
        When the file cannot be parsed (the message names the line or the reason).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such data file: {p}")
    fmt = data_format(p)
    if fmt in ("csv", "tsv"):
        return read_csv(p, delimiter="\t" if fmt == "tsv" else ",")
    if fmt == "parquet":
        return _read_parquet(p)
    if fmt == "stata":
        try:
            return pd.read_stata(p)
        except Exception as exc:  # ValueError, struct.error, ... for a damaged or non-Stata file
            raise DataError(f"{p.name}: cannot read as a Stata file: {_first_line(exc)}") from exc
    return _read_spss(p)


def read_csv(path: Path, delimiter: str = ",") -> pd.DataFrame:
    """Read a delimited text file; a line with the wrong number of fields is an error."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        return _read_csv_checked(path, delimiter)
    bad: list = []

    def on_invalid(row):
        bad.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
        )
    except Exception as exc:  # pyarrow.lib.ArrowInvalid and friends
        raise DataError(f"{path.name}: cannot parse: {_first_line(exc)}") from exc
    if bad:
        row = bad[0]
        where = f"line {row.number}" if row.number is not None else "a line"
        raise DataError(
            f"{path.name}: {where} has {row.actual_columns} fields where the header has "
            f"{row.expected_columns} ({row.text[:60]!r}); fix that line"
            + (f" ({len(bad) - 1} more such lines)" if len(bad) > 1 else "")
        )
    try:  # pyarrow defers checking text (names included) until it is used
        # a column of invalid UTF-8 is read as bytes: its labels would print as b'...'
        binary = [f.name for f in table.schema if pa.types.is_binary(f.type)]
        if binary:
            raise DataError(
                f"{path.name}: column(s) {', '.join(map(repr, binary))} are not UTF-8 text; "
                "re-save the file as UTF-8"
            )
        table = _keep_leading_zero_ids(table, path, delimiter)
        return table.to_pandas()
    except UnicodeDecodeError as exc:
        raise DataError(_not_utf8(path, exc)) from exc


#: text that reads as a number only by dropping characters: "007", "+7", "07.5"
_LEADING_ZERO = r"^\s*[+-]?0[0-9]"


def _keep_leading_zero_ids(table, path: Path, delimiter: str):
    """Integer columns whose text has leading zeros ("007") stay text.

    As numbers, "007", "07" and "7" would all be 7: identifiers that differ only in leading
    zeros would merge into one group without a word.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    ints = [f.name for f in table.schema if pa.types.is_integer(f.type)]
    if not ints:
        return table
    text = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(use_threads=False),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(
            include_columns=ints, column_types={c: pa.string() for c in ints}
        ),
    )
    for c in ints:
        if pc.any(pc.match_substring_regex(text[c], _LEADING_ZERO)).as_py():
            table = table.set_column(table.schema.get_field_index(c), c, text[c])
    return table


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> str:
    return (
        f"{path.name}: not UTF-8 text (byte {exc.object[exc.start : exc.start + 1]!r} at "
        f"position {exc.start}); re-save the file as UTF-8"
    )


def _read_csv_checked(path: Path, delimiter: str) -> pd.DataFrame:
    """Without pyarrow: check every record's field count with :mod:`csv`, then pandas."""
    import gzip

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path.name}: the file is empty")
            for row in reader:
                if row and len(row) != len(header):
                    raise DataError(
                        f"{path.name}: line {reader.line_num} has {len(row)} fields where the "
                        f"header has {len(header)}; fix that line"
                    )
        except UnicodeDecodeError as exc:
            raise DataError(_not_utf8(path, exc)) from exc
        except csv.Error as exc:
            raise DataError(f"{path.name}: line {reader.line_num}: {exc}") from exc
    try:
        raw = pd.read_csv(path, sep=delimiter, on_bad_lines="error", dtype=str)
        keep = [
            c for c in raw.columns if raw[c].str.match(_LEADING_ZERO, na=False).any()
        ]  # identifiers such as "007" stay text (see _keep_leading_zero_ids)
        return pd.read_csv(path, sep=delimiter, on_bad_lines="error", dtype={c: str for c in keep})
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{path.name}: cannot parse: {_first_line(exc)}") from exc


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError("reading Parquet files needs pyarrow: pip install 'hlm[arrow]'") from exc
    try:
        return pq.read_table(path).to_pandas()
    except Exception as exc:
        raise DataError(f"{path.name}: cannot read as Parquet: {_first_line(exc)}") from exc


def _read_spss(path: Path) -> pd.DataFrame:
    try:
        import pyreadstat
    except ImportError as exc:
        raise ImportError(
            "reading SPSS .sav files needs pyreadstat: pip install 'hlm[spss]'"
        ) from exc
    try:
        df, _meta = pyreadstat.read_sav(str(path), apply_value_formats=True)
    except Exception as exc:  # pyreadstat.ReadstatError and friends
        raise DataError(f"{path.name}: cannot read as an SPSS file: {_first_line(exc)}") from exc
    return df


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
