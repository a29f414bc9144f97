"""Every ``$ hlm ...`` line of a ```console block in docs/cli.md runs and exits 0."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from hlm.cli import main

PAGE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
_BLOCK = re.compile(r"^```console[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def commands(text: str) -> list[str]:
    """The command lines (without ``$ ``) of the page's console blocks, in order."""
    return [
        line[2:]
        for block in _BLOCK.findall(text)
        for line in block.splitlines()
        if line.startswith("$ ")
    ]


def test_examples_run(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HLM_PROGRESS", "0")
    cmds = commands(PAGE.read_text(encoding="utf-8"))
    assert len(cmds) >= 10
    for cmd in cmds:
        argv = shlex.split(cmd)
        assert argv[0] == "hlm"
        code = main(argv[1:])
        err = capsys.readouterr().err
        assert code == 0, f"{cmd!r} exited {code}: {err}"
    assert (tmp_path / "fit.json").is_file() and (tmp_path / "sleep.html").is_file()
    assert (tmp_path / "cat.png").is_file() and (tmp_path / "fit.hlm").is_file()
    assert (tmp_path / "compare.json").is_file() and (tmp_path / "fit_em.json").is_file()
