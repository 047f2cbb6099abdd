"""The distributions and the command line as a user meets them: LICENSE, metadata, version,
``python -m sessionstore``, no BrokenPipe noise, no "revision None".

The wheel and sdist are built once with ``python -m build`` (hatchling from the package
index, as a user's build would) and inspected.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import sessionstore

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def test_the_wheel_carries_the_license_and_full_metadata(dists):
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        names = wheel.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(wheel.read(metadata_name).decode())
        licenses = [n for n in names if "/licenses/" in n and n.endswith("LICENSE")]
        assert licenses, names
        license_text = wheel.read(licenses[0]).decode()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert license_text == (ROOT / "LICENSE").read_text()
    assert metadata["Version"] == sessionstore.__version__
    assert metadata["License-Expression"] == "Apache-2.0"
    classifiers = metadata.get_all("Classifier")
    assert "Typing :: Typed" in classifiers and "Programming Language :: Python :: 3.10" in classifiers
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(urls)
    assert all(u.startswith("https://") for u in urls.values())
    assert "sessionstore/py.typed" in names
    assert any(n.startswith("sessionstore/_migrations/versions/") for n in names)
    assert "sessionstore/sync.py" in names and "sessionstore/alembic.py" in names
    assert "](docs/" not in metadata.get_payload()  # the description's links work on an index page


def test_the_sdist_carries_the_license_and_docs(dists):
    with tarfile.open(dists["sdist"]) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert {"LICENSE", "README.md", "pyproject.toml", "docs/README.md", "docs/sync.md"} <= names


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sessionstore", *args], capture_output=True, text=True,
                          env=ENV, timeout=120, **kwargs)


def test_version_and_python_dash_m():
    done = _cli("--version")
    assert done.returncode == 0 and done.stdout == f"sessionstore {sessionstore.__version__}\n"
    helped = _cli("--help")
    assert helped.returncode == 0 and "demo" in helped.stdout and "--version" in helped.stdout


def test_a_closed_stdout_ends_the_demo_quietly(tmp_path):
    """`sessionstore demo | head -1`: the reader goes away; no BrokenPipeError, no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "sessionstore", "demo", "--url", f"sqlite:///{tmp_path}/d.db"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the demo writes a line
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert "BrokenPipe" not in err and "Traceback" not in err and "Exception ignored" not in err, err


def test_upgrade_of_an_in_memory_sqlite_url_is_a_usage_error_not_revision_none():
    done = _cli("db", "upgrade", "--url", "sqlite://")
    assert done.returncode == 2
    assert "None" not in done.stdout + done.stderr
    assert done.stderr.startswith("error: sqlite:// is an in-memory SQLite database") and done.stderr.count("\n") == 1
