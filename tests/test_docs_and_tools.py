"""The README's usage example runs as printed, and the benchmark and demo commands still work.

The demo is a CLI command (``python -m sessionstore demo``); ``python -m sessionstore.demo`` only
says so.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert blocks, "README.md has no python example"
    return blocks[0]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}  # this checkout
    return subprocess.run(args, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_readme_example_runs_and_prints_what_it_says(tmp_path):
    code = _readme_example().replace("postgresql://app@db/agents", f"sqlite:///{tmp_path / 'agents.db'}")
    script = tmp_path / "example.py"
    script.write_text(code)
    done = _run([sys.executable, str(script)], tmp_path)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first == "1 {'topic': 'weather', 'user:city': 'Paris'}"  # the comment in the README


def test_history_doc_example_prints_what_its_comments_say(tmp_path):
    """docs/history.md's example: each print's output is the comment that follows it."""
    doc = (ROOT / "docs" / "history.md").read_text()
    code = re.findall(r"```python\n(.*?)```", doc, re.DOTALL)[0]
    script = tmp_path / "history_example.py"
    script.write_text(code)
    done = _run([sys.executable, str(script)], tmp_path)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    assert len(printed) == 6, printed
    assert printed[0] == "[1, 2] 1" and printed[1] == "['Hello Alice!'] 2"
    assert printed[2] == "['my name is Alice'] None"
    assert printed[3] == "[('alice', 'chat-1', 'Introductions', {'lang': 'en'})]"
    assert printed[4:] == ["True", "1"]


def test_demo_runs_twice_and_finds_its_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    first = _run([sys.executable, "-m", "sessionstore", "demo", "--url", url], tmp_path)
    second = _run([sys.executable, "-m", "sessionstore", "demo", "--url", url], tmp_path)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "new database" in first.stdout
    assert "from an earlier run: version 2" in second.stdout
    assert "#4" in second.stdout  # the second run's events continue the first run's seq


def test_the_old_demo_module_command_points_to_the_new_one(tmp_path):
    done = _run([sys.executable, "-m", "sessionstore.demo"], tmp_path)
    assert done.returncode == 1 and "python -m sessionstore demo" in done.stderr
    assert not (tmp_path / ".sessionstore").exists()  # it ran nothing


def test_benchmark_command_runs(tmp_path):
    out = tmp_path / "bench.json"
    done = _run(
        [sys.executable, "-m", "benchmarks", "--db", "sqlite", "--only", "append,get", "--quick", "--json", str(out)],
        ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "ratio=" in done.stdout and out.exists()
