"""Real processes for tests: started with their output in a log file, waited for, and always stopped.

Every tier that runs a real process (the ``shop`` commands, the integration tests' worker processes,
nginx) starts it through here, so they all behave alike:

- ``LoggedProcess`` starts one command from the repository's root as the leader of a process group of
  its own (gunicorn forks: a stop must reach its children too), stdout and stderr in ``<name>.log``.
- ``Processes`` holds the processes of one test, module or session. ``wait_until`` polls a readiness check
  (``answering`` URLs, a port ``listening``, a line in a log, a row in a table) and fails at once, with
  the process's log, if one of them exits. Leaving it stops every process (SIGTERM, then SIGKILL after
  ``stop_seconds``; 0 kills at once) and, if the block raised, prints the end of each log, which pytest
  shows with the failure. A pytest fixture, which never sees its test's failure, calls ``print_logs``
  itself after the yield: pytest shows that output only for a test that failed.

A test that stops or kills a process on purpose calls ``stop`` or ``kill`` on it; only a process that
exits on its own counts as a failure.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60.0  # generous: the suite shares two cores with other work
STOP_SECONDS = 20.0
LOG_TAIL_CHARACTERS = 4000

T = TypeVar("T")
P = TypeVar("P", bound="LoggedProcess")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def shop_command(*arguments: str) -> list[str]:
    """``python -m shop <arguments>`` with the tests' own interpreter, as an operator would type it."""
    return [sys.executable, "-m", "shop", *arguments]


class LoggedProcess:
    """One started command: the leader of a process group of its own, logging to ``<log_dir>/<name>.log``."""

    def __init__(
        self, name: str, command: Sequence[str], log_dir: Path, environment: Mapping[str, str] | None = None
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.stopped_on_purpose = False
        self._finished = False
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            list(command),
            cwd=REPO_ROOT,
            env=None if environment is None else dict(environment),  # None: this process's environment
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, characters: int = LOG_TAIL_CHARACTERS) -> str:
        """The end of the log under a header naming the process, for a failure message."""
        return f"----- {self.name}, pid {self.pid} ({self.log_path})\n{self.log_text()[-characters:]}"

    def raise_if_exited(self) -> None:
        """Fail, with the log, if the process exited without being stopped on purpose."""
        if not self.stopped_on_purpose and not self.is_alive():
            raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")

    def send(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the process alone (not its children), unless it has already exited."""
        if self.is_alive():
            self.popen.send_signal(signum)

    def stop(self, signum: signal.Signals = signal.SIGTERM, seconds: float = STOP_SECONDS) -> int:
        """Ask the process to stop with ``signum``, SIGKILL its group after ``seconds``; its exit code."""
        self.ask_to_stop(signum)
        return self.finish(time.monotonic() + seconds)

    def kill(self) -> int:
        """SIGKILL the whole group at once (no goodbye) and reap the leader; its exit code."""
        self.stopped_on_purpose = True
        return self.finish(time.monotonic())

    def ask_to_stop(self, signum: signal.Signals = signal.SIGTERM) -> None:
        """Resume the process if it was paused, so that it can act on ``signum``, and send it."""
        self.stopped_on_purpose = True
        self.send(signal.SIGCONT)
        self.send(signum)

    def finish(self, deadline: float) -> int:
        """Wait until ``deadline`` (a ``time.monotonic()``), then SIGKILL the group; reap, close the log."""
        if self._finished:  # its group is gone: a signal now could reach a stranger with a reused ID
            return self.popen.wait()
        try:
            code = self.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            code = self.popen.wait()
        self._signal_group(signal.SIGKILL)  # whatever child outlived its leader
        self._log.close()
        self._finished = True
        return code

    def _signal_group(self, signum: signal.Signals) -> None:
        # Even once the leader has exited, its group lives on while a child does; the group ID cannot be
        # reused before then, so this never reaches a stranger.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)


class Processes:
    """The processes of one test (or module, or session): waited for together, all stopped at the end."""

    def __init__(
        self,
        log_dir: Path,
        *,
        environment: Mapping[str, str] | None = None,
        stop_seconds: float = STOP_SECONDS,
    ) -> None:
        self.log_dir = log_dir
        self.environment = environment
        self.stop_seconds = stop_seconds
        self.started: list[LoggedProcess] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_all()
        if exc_type is not None:
            self.print_logs()

    def start(
        self, name: str, command: Sequence[str], *, environment: Mapping[str, str] | None = None
    ) -> LoggedProcess:
        """Start ``command`` (with this set's environment unless given one); nothing waits for it."""
        chosen = self.environment if environment is None else environment
        return self.add(LoggedProcess(name, command, self.log_dir, chosen))

    def add(self, process: P) -> P:
        """Hold a process started elsewhere (a ``LoggedProcess`` subclass), to wait for and stop it."""
        self.started.append(process)
        return process

    def check_alive(self) -> None:
        """Fail, with its log, if any process exited without being stopped on purpose."""
        for process in self.started:
            process.raise_if_exited()

    def wait_until(
        self, ready: Callable[[], T], *, what: str, timeout: float = START_SECONDS, interval: float = 0.1
    ) -> T:
        """Poll ``ready()`` until it returns something truthy, and return that; fail as soon as a process
        exits, or after ``timeout`` with every log."""
        return wait_until(ready, what=what, timeout=timeout, interval=interval, watching=self)

    def logs(self, characters: int = LOG_TAIL_CHARACTERS) -> str:
        """The end of every process's log, stopped ones included, for a failure message."""
        return "\n".join(process.log_tail(characters) for process in self.started)

    def print_logs(self) -> None:
        print(self.logs())

    def stop_all(self, seconds: float | None = None) -> None:
        """SIGTERM every process, SIGKILL whatever still runs after ``seconds`` (``stop_seconds``)."""
        seconds = self.stop_seconds if seconds is None else seconds
        for process in self.started:
            if seconds > 0:
                process.ask_to_stop()
            process.stopped_on_purpose = True
        deadline = time.monotonic() + seconds
        for process in self.started:
            process.finish(deadline)


def wait_until(
    ready: Callable[[], T],
    *,
    what: str,
    timeout: float = START_SECONDS,
    interval: float = 0.1,
    watching: Processes | None = None,
) -> T:
    """Poll ``ready()`` until it returns something truthy, and return that.

    With ``watching``, fail as soon as one of its processes exits, and add their logs to a timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        if watching is not None:
            watching.check_alive()
        result = ready()
        if result:
            return result
        if time.monotonic() > deadline:
            logs = f"\n{watching.logs()}" if watching is not None else ""
            raise AssertionError(f"within {timeout:.0f} s: {what} never happened{logs}")
        time.sleep(interval)


def answering(*urls: str) -> Callable[[], bool]:
    """A readiness check: every URL answers 200 (a server still starting refuses the connection)."""

    def check() -> bool:
        for url in urls:
            try:
                if httpx.get(url, timeout=2.0).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
        return True

    return check


def listening(port: int) -> Callable[[], bool]:
    """A readiness check: a TCP port on 127.0.0.1 accepts connections (nginx does before its upstream)."""

    def check() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
        except OSError:
            return False
        return True

    return check
