"""The code in the documentation runs: every ```python block of docs/*.md, in order, one
namespace per file (a block may use what an earlier block of the same page defined)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.md"))
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, code) of every fenced ```python block of a Markdown page."""
    return [(text[: m.start()].count("\n") + 2, m.group(1)) for m in _FENCE.finditer(text)]


def test_block_extraction():
    page = "intro\n```python\nx = 1\n```\ntext\n```text\nnot code\n```\n```python\ny = x\n```\n"
    assert python_blocks(page) == [(3, "x = 1\n"), (10, "y = x\n")]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_runs(page, capsys):
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pages may show fits that warn (e.g. singular)
        for line, code in blocks:
            # padded so that a traceback shows the page and its line number
            exec(compile("\n" * (line - 1) + code, str(page), "exec"), namespace)
    capsys.readouterr()
