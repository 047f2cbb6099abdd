"""docs/adapters.md's examples run as printed (on a SQLite file instead of PostgreSQL)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = re.findall(r"```python(?: fragment)?\n(.*?)```", (ROOT / "docs" / "adapters.md").read_text(), re.DOTALL)


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=["adk", "openai_agents", "langchain"][: len(BLOCKS)])
def test_the_example_prints_what_its_comments_say(index, tmp_path):
    code = BLOCKS[index].replace("postgresql://app@db/agents", f"sqlite:///{tmp_path / 'agents.db'}")
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = [line.split("# ", 1)[1] for line in code.splitlines() if line.lstrip().startswith("print(") and "# " in line]
    assert done.stdout.splitlines() == expected
