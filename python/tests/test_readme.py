"""The README's Python snippet runs as written (from the repository root) and prints the transcript."""
from __future__ import annotations

import contextlib
import io
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def readme_block(section: str, language: str) -> str:
    """The first ```language block under the '## section' heading of README.md."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index(f"## {section}")
    block, inside = [], False
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if not inside and line == f"```{language}":
            inside = True
        elif inside and line.startswith("```"):
            return "\n".join(block) + "\n"
        elif inside:
            block.append(line)
    raise AssertionError(f"README.md has no ```{language} block under '## {section}'")


def test_python_snippet(monkeypatch):
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(readme_block("Use it from Python", "python"), "README.md", "exec"), {})
    printed = out.getvalue().splitlines()
    assert printed[0] == "SEVEN"
    assert printed[1].startswith("(1, ") and printed[1].endswith(")")
    assert printed[2] == "THREE ONE FOUR"
