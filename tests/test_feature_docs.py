"""The runnable examples of docs/summaries.md, docs/hooks.md and docs/track-events.md run as
printed: each ```python block runs as a script (this checkout's package first on the path)
and prints exactly the ```text block that follows it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["summaries.md", "hooks.md", "track-events.md"]


def _examples(doc: str) -> list[tuple[str, str]]:
    text = (ROOT / "docs" / doc).read_text()
    found = re.findall(r"```python\n(.*?)```\s*\nprints\s*\n\s*```text\n(.*?)```", text, re.DOTALL)
    assert found, f"docs/{doc} has no runnable example followed by what it prints"
    return found


@pytest.mark.parametrize("doc", DOCS)
def test_doc_examples_print_what_they_say(doc, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    for i, (code, expected) in enumerate(_examples(doc)):
        script = tmp_path / f"example_{i}.py"
        script.write_text(code)
        done = subprocess.run(
            [sys.executable, str(script)], check=False, cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == expected, f"docs/{doc} example {i} printed:\n{done.stdout}"
