"""Every code block in README.md and docs/*.md runs as printed, or says it is a fragment.

The convention (docs/architecture.md, "Code blocks in the docs"): a block fenced
```` ```python ```` is a whole program; this test runs each one on its own in a fresh
directory and it must exit 0. A block that shows a piece of a program (top-level
``await``, a server URL, a framework that is not installed) is fenced
```` ```python fragment ```` and is not run. Other languages (``sh``, output) are not run.
New pages in docs/ are picked up without touching this test. The pages must also stand
alone: no link to a file outside the repository, none to one that does not exist.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _blocks() -> list[tuple[str, int, str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            info = match.group(1).strip().split()
            if info and info[0] == "python":
                line = text.count("\n", 0, match.start()) + 1
                found.append((page.relative_to(ROOT).as_posix(), line, " ".join(info[1:]), match.group(2)))
    return found


BLOCKS = _blocks()
RUNNABLE = [(page, line, code) for page, line, marker, code in BLOCKS if marker != "fragment"]


def test_every_python_block_is_runnable_or_marked_a_fragment():
    unknown = [(page, line, marker) for page, line, marker, _ in BLOCKS if marker not in ("", "fragment")]
    assert not unknown, f"use ```python (runs) or ```python fragment (shown only): {unknown}"
    assert RUNNABLE, "no runnable example at all"


@pytest.mark.parametrize(("page", "line", "code"), RUNNABLE, ids=[f"{p}:{n}" for p, n, _ in RUNNABLE])
def test_runnable_block_runs_as_printed(page, line, code, tmp_path):
    script = tmp_path / "block.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{page}:{line} failed:\n{done.stderr}"


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_pages_stand_alone(page):
    text = page.read_text()
    assert "DESIGN.md" not in text, "DESIGN.md is not part of the repository"
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(ROOT), f"{target}: outside the repository"
        assert path.exists(), f"{target}: no such file"


def test_readme_links_to_the_docs_absolutely():
    """The README is also the package's description on an index page, where relative links break."""
    text = (ROOT / "README.md").read_text()
    targets = LINK.findall(text)
    assert targets and all(t.startswith("https://") for t in targets), targets
    for target in targets:
        if "/blob/main/" in target:
            assert (ROOT / target.split("/blob/main/", 1)[1]).exists(), target
