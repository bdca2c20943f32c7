"""Writing one file on the second core while the run writes the others.

A run ends by writing its folder: the decisions and the journey as Parquet,
the OpenLineage events, the results, the reports, the dossier, and last the
manifest that hashes them all. These files do not depend on each other, and
the OpenLineage events alone need their own library loaded (about 0.3 s)
before they can be built. :func:`in_background` hands one such write to a
forked child process, which has a copy of the finished run and nothing else
to do, so the parent's remaining writes and the child's overlap on two cores.

It forks only where that is safe and cheap: on Linux, in a process with a
single Python thread (a notebook kernel, a Dask client or a thread pool
make the write run in place instead). The child never runs the parent's
exit handlers or flushes its buffers (:func:`os._exit`). Whatever happens
in the child, the file is right or the error is the real one: when the child
fails, is killed or does not finish within ``timeout_s``, :meth:`Pending.wait`
writes the file again in the parent, where an error is raised as usual.
``INSYN_BACKGROUND=0`` turns forking off, here and for the local worker
processes of a chunked run or a study (:func:`can_fork`).
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["BACKGROUND_ENV", "Pending", "can_fork", "in_background", "on_every_core"]

BACKGROUND_ENV = "INSYN_BACKGROUND"
"""Environment variable: ``0`` writes every file in the run's own process."""


class Pending:
    """A write handed to a child process; :meth:`wait` returns once the file is written.

    Parameters
    ----------
    write : callable
        The write, without arguments.
    pid : int or None
        The child's process id; None when the write already ran in place.
    reader : int or None
        The read end of the pipe the child reports a failure on.
    timeout_s : float
        How long :meth:`wait` waits for the child before writing in place.
    """

    def __init__(self, write: Callable[[], object], pid: int | None, reader: int | None, timeout_s: float) -> None:
        self._write = write
        self._pid = pid
        self._reader = reader
        self._deadline = time.monotonic() + timeout_s
        self.forked = pid is not None
        """True when a child process did (or tried to do) the write."""
        self.failure: str | None = None
        """What went wrong in the child (then the parent wrote the file), else None."""

    def wait(self) -> None:
        """Wait for the child; write in place when it failed, was killed or took longer than the timeout.

        Raises
        ------
        Exception
            Whatever the write raises when it runs in place.
        """
        if self._pid is None:
            return
        pid, reader = self._pid, self._reader
        self._pid = self._reader = None
        assert reader is not None
        message = b""
        try:
            while True:  # the child closes the pipe when it exits; a failure is written to it first
                left = self._deadline - time.monotonic()
                ready, _, _ = select.select([reader], [], [], max(left, 0.0))
                if not ready:
                    os.kill(pid, signal.SIGKILL)
                    message = b"no answer within the timeout; killed"
                    break
                chunk = os.read(reader, 65536)
                if not chunk:
                    break
                message += chunk
        finally:
            os.close(reader)
            _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0 or message:
            self.failure = message.decode("utf-8", "replace") or f"exit status {os.waitstatus_to_exitcode(status)}"
            self._write()

    def abandon(self) -> None:
        """Stop the child without writing (the run failed and its folder is discarded)."""
        if self._pid is None:
            return
        pid, reader = self._pid, self._reader
        self._pid = self._reader = None
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # pragma: no cover - it had exited
            pass
        if reader is not None:
            os.close(reader)
        os.waitpid(pid, 0)


def can_fork() -> bool:
    """Whether this process may fork a copy of itself now.

    Linux, a single Python thread, ``os.fork`` present, and not turned off
    with ``INSYN_BACKGROUND=0``. :func:`in_background` and the local-processes
    executor (:class:`audit.execution.ProcessExecutor`) ask it.
    """
    return (sys.platform == "linux" and hasattr(os, "fork") and threading.active_count() == 1
            and os.environ.get(BACKGROUND_ENV, "1").strip() != "0")


def in_background(write: Callable[[], object], *, timeout_s: float = 300.0) -> Pending:
    """Run ``write`` in a forked child process where that is safe; else run it now.

    Parameters
    ----------
    write : callable
        Writes one file and touches nothing the parent uses afterwards (it
        runs in a copy of the process: what it changes in memory is lost).
    timeout_s : float, default 300
        How long :meth:`Pending.wait` waits for the child before it kills
        it and writes in place.

    Returns
    -------
    Pending
        Call :meth:`Pending.wait` before reading the file.
    """
    if not can_fork():
        write()
        return Pending(write, None, None, timeout_s)
    reader, writer = os.pipe()
    with warnings.catch_warnings():  # Python >= 3.12 warns about threads of C libraries; the child uses none of them
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: write, report a failure on the pipe, never return into the parent's code
        code = 0
        try:
            os.close(reader)
            write()
        except BaseException as exc:  # noqa: BLE001 - every failure is reported and redone in the parent
            code = 1
            try:
                os.write(writer, f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:4096])
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(writer)
    return Pending(write, pid, reader, timeout_s)


_T = TypeVar("_T")
_R = TypeVar("_R")


def on_every_core(fn: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
    """``[fn(item) for item in items]``, in order, on as many threads as there are cores.

    For work that releases Python's global lock (reading files, hashing
    them, sorting arrays): one thread per core, each item's result in the
    item's place; a single item, or a single core, runs in place.
    """
    work = list(items)
    workers = min(len(work), os.cpu_count() or 1)
    if workers < 2:
        return [fn(item) for item in work]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, work))
