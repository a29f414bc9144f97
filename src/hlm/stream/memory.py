"""Memory budgets: how many rows a batch may hold, and whether the fit's dense block fits.

A streamed fit holds one batch of rows at a time (as Arrow, as pandas, and as the float64
design ``[X y]`` and ``Z``), the per-group statistics (``J (S^2 + S m)`` doubles per term,
independent of the rows) and, with crossed factors, the dense block of the factors after
the first (``q_rest^2`` doubles, a few copies of it while factoring).
"""

from __future__ import annotations

import re

from hlm.errors import DataError

#: the memory budget when none is given
DEFAULT_MEMORY = "1GB"
#: share of the budget given to the batch of rows (the rest: interpreter, libraries,
#: per-group statistics, the optimizer's working set)
BATCH_SHARE = 0.35
#: a batch never has fewer rows than this (per-batch overheads would dominate)
MIN_BATCH_ROWS = 10_000
#: nor more than this (larger batches gain nothing and delay the progress bar)
MAX_BATCH_ROWS = 2_000_000
#: dense qr x qr matrices alive at once while the crossed block is factored (A_rr, the
#: fill-in, the difference, the scaled copy that is factored in place)
DENSE_COPIES = 4

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_bytes(value) -> int:
    """A memory size in bytes from ``"1GB"``, ``"512 MiB"``, ``"1.5gb"`` or a number.

    Decimal units (kB, MB, GB, TB) are powers of 1000, binary ones (KiB, MiB, GiB, TiB)
    powers of 1024, as in dask's ``parse_bytes``.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"memory must be positive, got {value!r}")
        return int(value)
    text = str(value).strip().lower().replace(" ", "")
    match = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[0-9]+)?)([a-z]*)", text)
    if match is None or match.group(2) not in _UNITS:
        raise ValueError(
            f"cannot read the memory size {value!r}; write e.g. '1GB', '512MB' or '2GiB'"
        )
    size = float(match.group(1)) * _UNITS[match.group(2)]
    if size <= 0:
        raise ValueError(f"memory must be positive, got {value!r}")
    return int(size)


def format_bytes(n: float) -> str:
    """``1.2 GB``-style text (decimal units)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def bytes_per_row(n_columns: int, m: int, S: int) -> int:
    """Working bytes per row of a batch.

    The raw columns twice (Arrow batch and pandas frame), ``[X y]`` about three times
    (formulaic's model matrix, its float64 copy, the shifted and weighted copy) and each
    term's Z twice.
    """
    return 8 * (2 * n_columns + 3 * m + 2 * S)


def batch_rows_for(budget: int, n_columns: int, m: int, S: int) -> int:
    """Rows per batch so that a batch's working memory takes its share of ``budget``."""
    rows = int(BATCH_SHARE * budget / bytes_per_row(n_columns, m, S))
    return max(MIN_BATCH_ROWS, min(MAX_BATCH_ROWS, rows))


def dense_block_bytes(q_rest: int) -> int:
    """Memory of the dense block of the factors after the first, while it is factored."""
    return DENSE_COPIES * 8 * q_rest * q_rest


def check_dense_block(sizes: list[tuple[str, int, int]], budget: int) -> None:
    """Refuse a crossed design whose dense fill-in block would not fit in ``budget``.

    Parameters
    ----------
    sizes : list of (str, int, int)
        Per random-effects term, its name, its number of levels ``J_k`` and of columns
        ``S_k``.  The term with most levels goes first, as lme4 orders them (block-diagonal,
        no fill-in); the others form one dense block of order ``q_rest = sum J_k S_k``.
    budget : int
        Bytes.
    """
    from hlm.model import lme4_term_order

    if len(sizes) < 2:
        return
    ordered = [sizes[i] for i in lme4_term_order([J for _, J, _ in sizes])]
    q_rest = sum(J * S for _, J, S in ordered[1:])
    need = dense_block_bytes(q_rest)
    if need > budget:
        terms = ", ".join(f"{name!r} ({J * S:,})" for name, J, S in ordered[1:])
        raise DataError(
            f"the crossed random-effects terms after {ordered[0][0]!r} have {q_rest:,} random "
            f"effects in total ({terms}); their dense fill-in block needs about "
            f"{format_bytes(need)} ({DENSE_COPIES} matrices of {q_rest:,} x {q_rest:,} "
            f"doubles) but the memory budget is {format_bytes(budget)}. Raise memory=, or "
            "reduce the number of levels of the smaller crossed factors"
        )
