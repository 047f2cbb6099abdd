"""typer's CliRunner with stdout and stderr kept apart, on every click the floors allow.

click before 8.2 mixes stderr into stdout unless told ``mix_stderr=False``; 8.2 removed the
argument (and always keeps them apart). The tests read each stream on its own.
"""

from __future__ import annotations

import inspect

from click.testing import CliRunner as _ClickRunner
from typer.testing import CliRunner


def cli_runner() -> CliRunner:
    if "mix_stderr" in inspect.signature(_ClickRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    return CliRunner()
