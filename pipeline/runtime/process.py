"""Child processes the pipeline starts (the embedded broker, `pipeline worker`) and stops."""

from __future__ import annotations

import subprocess
from types import TracebackType
from typing import Self


class ChildService:
    """A child process a `with` block starts and stops (subclasses say how)."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def stop_process(
    process: subprocess.Popen[bytes] | None, timeout: float, kill: bool = False
) -> int | None:
    """End a child: SIGTERM (a graceful stop) or, with `kill`, SIGKILL (a crash); SIGKILL too if
    it is still there after `timeout` seconds. Its exit code; None if there was no child."""
    if process is None:
        return None
    if process.poll() is None:
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
