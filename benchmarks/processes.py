"""Child processes the harness starts, releases at one instant, and always stops.

Children are real OS processes (``python -m benchmarks.worker`` or ``benchmarks.enqueuer``), so the
systems compete for the two CPUs the way production workers would. A child prints ``READY`` once its
imports and connections are done, then waits for ``GO`` on stdin: process start-up is kept out of the
measured interval, and all children start together. A child also stops when its stdin closes, so even a
harness killed with SIGKILL leaves nothing running. ``stop_all`` sends SIGTERM, then SIGKILL after a grace
period.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import AsyncIterator

READY = "READY"
GO = "GO"
DONE = "DONE"
STOP_GRACE_SECONDS = 15.0
START_TIMEOUT_SECONDS = 60.0


class ChildProtocolError(Exception):
    """A child exited or said something other than what the protocol expects."""


class Child:
    """One running child process and its line protocol."""

    def __init__(self, label: str, process: asyncio.subprocess.Process) -> None:
        self.label = label
        self.process = process

    async def expect(self, word: str, timeout: float | None = None) -> None:
        """Wait for the child to print ``word`` on a line of its own."""
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if line.decode().strip() != word:
            code = await self.process.wait() if not line else None
            raise ChildProtocolError(f"{self.label}: expected {word!r}, got {line!r} (exit code {code})")

    def release(self) -> None:
        """Send ``GO``."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{GO}\n".encode())

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if the child has not exited within the grace period."""
        if self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            print(f"{self.label} ignored SIGTERM; killing it", file=sys.stderr)
            self.process.kill()
            await self.process.wait()


async def start_child(label: str, module: str, arguments: list[str]) -> Child:
    """Start ``python -m module arguments...`` with piped stdin and stdout (stderr goes through)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *arguments,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    return Child(label, process)


@contextlib.asynccontextmanager
async def started_children(
    label: str, module: str, argument_lists: list[list[str]]
) -> AsyncIterator[list[Child]]:
    """Start one child per argument list, wait until all are READY, yield them, stop them all after."""
    children: list[Child] = []
    try:
        for index, arguments in enumerate(argument_lists):
            children.append(await start_child(f"{label}-{index}", module, arguments))
        await asyncio.gather(*(child.expect(READY, START_TIMEOUT_SECONDS) for child in children))
        yield children
    finally:
        # Shielded so that a cancelled harness (Ctrl-C, SIGTERM) still waits for its children to exit.
        await asyncio.shield(asyncio.gather(*(child.stop() for child in children)))


def release_all(children: list[Child]) -> None:
    """Send ``GO`` to every child, back to back."""
    for child in children:
        child.release()


# The child's side of the protocol.


async def announce_ready_and_wait_for_go(stop: asyncio.Event) -> None:
    """Print READY, return on GO; set ``stop`` on SIGTERM, SIGINT or when the harness goes away.

    stdin is read by a daemon thread, so a child blocked on it never delays its own exit.
    """
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    go = asyncio.Event()

    def notify(event: asyncio.Event) -> None:
        with contextlib.suppress(RuntimeError):  # the loop may already be closed at exit
            loop.call_soon_threadsafe(event.set)

    def read_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == GO:
                notify(go)
        notify(stop)
        notify(go)

    threading.Thread(target=read_stdin, name="harness-stdin", daemon=True).start()
    print(READY, flush=True)
    await go.wait()


def announce_done() -> None:
    """Print DONE: the child's measured work is over."""
    print(DONE, flush=True)
