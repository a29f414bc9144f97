"""Markdown report of a benchmark run (see ``run.py``)."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

from cells import CELLS, Cell

DASH = "—"


def _g(x: float | None, digits: int = 3) -> str:
    return DASH if x is None else f"{x:.{digits}g}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _mem_total_gib() -> str:
    try:
        with open("/proc/meminfo") as fh:
            kib = int(fh.readline().split()[1])
        return f"{kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        return "? GiB"


def machine() -> str:
    """CPU model, core count, memory and Python version of this machine."""
    return (
        f"{_cpu_model()}, nproc={os.cpu_count()}, {_mem_total_gib()} RAM, "
        f"Python {platform.python_version()}"
    )


def _header(tools: list[str], by: dict, settings: dict) -> list[str]:
    versions, blas = [], set()
    for tool in tools:
        found = [r for (t, _), r in by.items() if t == tool and r.get("version")]
        versions.append(f"{tool} {found[0]['version'] if found else 'unavailable'}")
        for r in found:
            blas.update(f"{tool}: {b}" for b in r.get("blas", []))
    threads = " ".join(f"{k}={v}" for k, v in settings["threads"].items())
    return [
        "# hlm benchmarks",
        "",
        f"- date: {settings['date']}",
        f"- machine: {settings['machine']}",
        f"- threads (every worker): {threads}",
        f"- load average (1 min) at start / end: {settings['load']}",
        f"- BLAS seen by the workers: {'; '.join(sorted(blas)) or 'unknown'}",
        f"- versions: {'; '.join(versions)}",
        f"- time: median of up to {settings['repeats']} fits after one warm-up fit, measured "
        "inside each worker process (interpreter start-up, imports and data reading excluded); "
        f"cap {settings['timeout']:g} s per fit; criterion = REML criterion or ML deviance "
        "(-2 log-likelihood); Δcrit = tool − hlm.",
        "",
    ]


def _main_table(cells: list[Cell], tools: list[str], by: dict) -> list[str]:
    head = ["cell", "n", "method"]
    if "hlm" in tools:
        head += ["hlm s", "hlm evals", "hlm ms/eval"]
    peers = [t for t in tools if t != "hlm"]
    for t in peers:
        head += [f"{t} s", f"{t}/hlm", f"Δcrit {t}"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in cells:
        n = cell.n or next((r["n"] for (_, c), r in by.items() if c == cell.name and r.get("n")), 0)
        base = by.get(("hlm", cell.name), {})
        ok_base = base.get("status") == "ok"
        row = [cell.name, f"{n:,}" if n else "", "REML" if cell.reml else "ML"]
        if "hlm" in tools:
            row += [
                _time(base),
                _g(base.get("evals")) if ok_base else DASH,
                _g(base.get("eval_ms")) if ok_base else DASH,
            ]
        for t in peers:
            r = by.get((t, cell.name), {})
            row.append(_time(r))
            ok = r.get("status") == "ok"
            both = ok and ok_base
            row.append(f"{r['median'] / base['median']:.3g}" if both else DASH)
            crit = both and r.get("criterion") is not None and base.get("criterion") is not None
            row.append(f"{r['criterion'] - base['criterion']:+.3g}" if crit else DASH)
        rows.append("| " + " | ".join(row) + " |")
    return rows


def _time(r: dict) -> str:
    if r.get("status") == "ok":
        return _g(r["median"]) + ("*" if r.get("note") else "")
    return r.get("message", DASH)


def _memory_table(cells: list[Cell], tools: list[str], by: dict) -> list[str]:
    head = [
        "",
        "## Peak memory (synthetic cells)",
        "",
        "df = the tool's data frame (pandas deep memory, R `object.size`); peak = peak RSS "
        "of the worker process during the fits (data frame included, its reading excluded); "
        "fit + = peak minus the RSS right after reading the data.",
        "",
        "| cell | n | J | tool | df MB | peak MB | peak / df | fit + MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    for cell in (c for c in cells if c.synthetic):
        for t in tools:
            r = by.get((t, cell.name), {})
            peak, df_mb, base = r.get("peak_rss_mb"), r.get("df_mb"), r.get("rss_loaded_mb")
            if r.get("status") != "ok" or not peak:
                continue
            extra = peak - base if base and r.get("peak_excludes_load") else None
            ratio = f"{peak / df_mb:.2f}" if df_mb else DASH
            rows.append(
                f"| {cell.name} | {cell.n:,} | {cell.J:,} | {t} | {_mb(df_mb)} | {_mb(peak)} "
                f"| {ratio} | {_mb(extra)} |"
            )
    return head + rows if rows else []


def _mb(x: float | None) -> str:
    return DASH if x is None else f"{x:,.0f}"


def _eval_table(cells: list[Cell], by: dict) -> list[str]:
    syn = [c for c in cells if c.synthetic and by.get(("hlm", c.name), {}).get("eval_ms")]
    if not syn:
        return []
    rows = [
        "",
        "## hlm: one objective evaluation at the fitted theta",
        "",
        "| cell | n | J | ms/eval | evals | fit s |",
        "|---|---|---|---|---|---|",
    ]
    for c in syn:
        r = by[("hlm", c.name)]
        rows.append(
            f"| {c.name} | {c.n:,} | {c.J:,} | {_g(r['eval_ms'])} | "
            f"{_g(r.get('evals'))} | {_g(r.get('median'))} |"
        )
    by_J: dict[int, list[tuple[int, float]]] = {}
    for c in syn:
        by_J.setdefault(c.J, []).append((c.n, by[("hlm", c.name)]["eval_ms"]))
    for J, pts in sorted(by_J.items()):
        if len(pts) > 1:
            (n0, e0), (n1, e1) = min(pts), max(pts)
            rows.append(
                f"\nAt J = {J:g}: n × {n1 / n0:g} changes the evaluation time × {e1 / e0:.2f}."
            )
    return rows


def _details(by: dict) -> list[str]:
    rows = [
        "",
        "## Details",
        "",
        "| cell | tool | criterion | evals | timed fits | warm-up s | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for (tool, cell), r in by.items():
        if r.get("status") not in ("ok", "error", "skipped"):
            continue
        notes = [
            r.get("note"),
            r.get("summary_error"),
            r.get("extra_error"),
            *(r.get("warnings") or [])[:2],
        ]
        if r.get("converged") is False:
            notes.insert(0, "not converged")
        if r.get("status") != "ok":
            notes.insert(0, r.get("message"))
        crit = r.get("criterion")
        rows.append(
            f"| {cell} | {tool} | {DASH if crit is None else f'{crit:.6f}'} | "
            f"{_g(r.get('evals'))} | {len(r.get('times', []))} | {_g(r.get('warmup'))} | "
            f"{'; '.join(str(n).replace('|', '/') for n in notes if n)} |"
        )
    return rows


def render(results: list[dict], settings: dict) -> str:
    """The markdown report: header, times, peak memory, evaluation cost, details.

    Parameters
    ----------
    results : list of dict
        One result per (tool, cell), as returned by ``run.run_worker`` plus ``tool``
        and ``cell`` keys.
    settings : dict
        ``cells``, ``tools``, ``threads``, ``repeats``, ``timeout``, ``date``,
        ``machine`` and ``load`` of the run.
    """
    cells = [CELLS[c] for c in settings["cells"]]
    tools = settings["tools"]
    by = {(r["tool"], r["cell"]): r for r in results}
    lines = _header(tools, by, settings) + ["## Times (s)", ""]
    lines += _main_table(cells, tools, by)
    lines += ["", "`*`: fewer timed fits than asked for (see Details); ratios are tool/hlm."]
    lines += _memory_table(cells, tools, by) + _eval_table(cells, by) + _details(by)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    # Re-render a report from the raw results: python benchmarks/report.py latest.json
    raw = json.loads(Path(sys.argv[1]).read_text())
    print(render(raw["results"], raw["settings"]), end="")
