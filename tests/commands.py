"""The `pipeline` command as a user runs it: a child process, for the tests that need a
process of its own (the embedded warehouse is one process's at a time)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping


def pipeline_cli(
    *args: str, env: Mapping[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python -m pipeline.cli ARGS` with `env` added to this environment; text output."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
