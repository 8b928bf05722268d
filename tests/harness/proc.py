"""Running commands: ``run`` waits for one and captures its output; ``Proc`` is a process in the
background, logging to a file, stopped with SIGTERM (then KILL after a grace period).

Both start in the repository's root (unless told otherwise), so that ``python3 -m
tests.harness.<module>`` and cargo find what they need wherever the caller runs.
"""
from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from tests.harness.paths import REPO


class CommandError(AssertionError):
    pass


def run(argv: list[str], *, env: dict[str, str] | None = None, input: str | None = None,
        check: bool = True, timeout: float = 180, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run a command, capturing text output; raise CommandError with its output on failure."""
    proc = subprocess.run(argv, env=env, input=input, text=True, capture_output=True,
                          timeout=timeout, cwd=cwd)
    if check and proc.returncode != 0:
        raise CommandError(
            f"command failed ({proc.returncode}): {shlex.join(argv)}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


class Proc:
    """A process logging to a file (stdout and stderr), in a session of its own, so that a
    Ctrl-C meant for the caller reaches it only through ``stop``."""

    def __init__(self, argv: list[str], log: Path, env: dict, cwd: Path = REPO):
        self.argv, self.log = argv, log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         cwd=cwd, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 3000) -> str:
        """The last n characters of its log."""
        return self.log.read_text(errors="replace")[-n:]

    def stop(self, grace: float = 20) -> int | None:
        """SIGTERM, KILL after grace seconds; its exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode
