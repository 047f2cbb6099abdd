"""The python examples of docs/write-behind.md and docs/observability.md run as printed.

Each ```python block runs in a fresh interpreter in a temporary directory (its
sqlite:/// URLs are relative files there); when a ```text block follows it
directly, that is what the block must print.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["write-behind.md", "observability.md"]
BLOCK = re.compile(r"```python\n(.*?)```(?:\n\n```text\n(.*?)```)?", re.DOTALL)


def _examples() -> list[tuple[str, int, str, str | None]]:
    found = []
    for doc in DOCS:
        for n, match in enumerate(BLOCK.finditer((ROOT / "docs" / doc).read_text())):
            found.append((doc, n, match.group(1), match.group(2)))
    return found


@pytest.mark.parametrize(("doc", "n", "code", "expected"), _examples(), ids=lambda v: str(v)[:20])
def test_doc_example_runs_and_prints_what_it_shows(tmp_path, doc, n, code, expected):
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"{doc} example {n}: {done.stderr}"
    if expected is not None:
        assert done.stdout == expected, f"{doc} example {n}"
