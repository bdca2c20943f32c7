"""The three executors behind :func:`audit.execution.open_executor`.

Every executor runs ``fn(arg)`` for each task of a mapping ``{key: arg}`` and
yields ``(key, result)`` pairs as tasks finish, in any order. A task that
raises gives a :class:`TaskFailure` in place of its result; the executor
itself raises only for its own trouble (a bad scheduler address, a
``KeyboardInterrupt``, which cancels the tasks not yet started).

At most ``max_pending`` tasks are in flight at once (twice the workers by
default), so a long list of chunks never has all its arguments or results in
memory at the same time.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import re
import traceback as tb
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from audit._background import can_fork
from audit._privacy import MASK, PNR_PATTERN
from audit.exceptions import SpecError

__all__ = [
    "EXECUTOR_KINDS",
    "DaskExecutor",
    "Executor",
    "InProcessExecutor",
    "ProcessExecutor",
    "TaskFailure",
    "open_executor",
]

A = TypeVar("A")
R = TypeVar("R")

EXECUTOR_KINDS: tuple[str, ...] = ("inprocess", "processes", "dask")
"""The executor kinds :func:`open_executor` accepts."""

_ADDRESS = re.compile(r"^(?:(?:tcp|tls|ucx|inproc|ws|wss)://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")
"""A dask scheduler address: ``[protocol://]host:port``."""


@dataclass(frozen=True)
class TaskFailure:
    """A task that raised instead of returning.

    Attributes
    ----------
    key : Hashable
        The task's key.
    error : str
        One line: the exception's type and message, with any personnummer masked.
    traceback : str
        The formatted traceback (personnummer masked), for logs; not shown to users by default.
    """

    key: Hashable
    error: str
    traceback: str

    @classmethod
    def from_exception(cls, key: Hashable, exc: BaseException) -> TaskFailure:
        """Describe ``exc`` raised by the task ``key``."""
        message = " ".join(str(exc).split())
        line = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        trace = "".join(tb.format_exception(type(exc), exc, exc.__traceback__))
        return cls(key=key, error=PNR_PATTERN.sub(MASK, line), traceback=PNR_PATTERN.sub(MASK, trace))


def guarded_call(fn: Callable[[Any], Any], key: Hashable, arg: Any) -> tuple[bool, Any]:
    """Run ``fn(arg)`` and return ``(True, result)``, or ``(False, TaskFailure)`` when it raises.

    Module level so that worker processes can unpickle it.
    """
    try:
        return True, fn(arg)
    except Exception as exc:  # noqa: BLE001 - a task's error is data, never fatal to the executor
        return False, TaskFailure.from_exception(key, exc)


@runtime_checkable
class Executor(Protocol):
    """Runs independent tasks; a context manager that shuts down what it started."""

    kind: str
    workers: int

    def imap(self, fn: Callable[[Any], Any], tasks: Mapping[Hashable, Any]) -> Iterator[tuple[Hashable, Any]]:
        """Yield ``(key, fn(arg) or TaskFailure)`` for every task, as tasks finish."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


class InProcessExecutor:
    """Runs the tasks one after the other in this process, in the mapping's order.

    Parameters
    ----------
    workers : int, optional
        Ignored (always 1); accepted so that every executor is opened alike.
    """

    kind = "inprocess"

    def __init__(self, *, workers: int | None = None) -> None:
        self.workers = 1

    def imap(self, fn: Callable[[A], R], tasks: Mapping[Hashable, A]) -> Iterator[tuple[Hashable, R | TaskFailure]]:
        """Yield ``(key, fn(arg) or TaskFailure)`` for every task, in order."""
        for key, arg in tasks.items():
            _ok, value = guarded_call(fn, key, arg)
            yield key, value

    def __enter__(self) -> InProcessExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class ProcessExecutor:
    """Runs the tasks in a pool of local worker processes.

    The workers are forked from this process where that is safe
    (:func:`audit._background.can_fork`: Linux, one Python thread, not
    turned off with ``INSYN_BACKGROUND=0``), so they start with Insyn
    already imported; elsewhere they are spawned (a fresh interpreter each).
    :attr:`start_method` says which, once the pool is open.

    Parameters
    ----------
    workers : int, optional
        Number of processes; default ``os.cpu_count()``.
    max_pending : int, optional
        Tasks in flight at once; default twice the workers.
    """

    kind = "processes"

    def __init__(self, *, workers: int | None = None, max_pending: int | None = None) -> None:
        self.workers = _check_workers(workers) or (os.cpu_count() or 1)
        self.max_pending = max_pending or 2 * self.workers
        self._pool: cf.ProcessPoolExecutor | None = None
        self.start_method: str | None = None

    def __enter__(self) -> ProcessExecutor:
        method = "fork" if can_fork() else "spawn"  # a fork starts with Insyn imported: no second start-up
        self._pool = cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context(method))
        self.start_method = method
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def imap(self, fn: Callable[[A], R], tasks: Mapping[Hashable, A]) -> Iterator[tuple[Hashable, R | TaskFailure]]:
        """Yield ``(key, fn(arg) or TaskFailure)`` for every task, as tasks finish."""
        if self._pool is None:
            raise RuntimeError("A ProcessExecutor runs tasks only inside `with open_executor(...) as executor:`.")
        pool = self._pool
        pending: dict[cf.Future[tuple[bool, Any]], Hashable] = {}
        items = iter(tasks.items())
        try:
            while True:
                for key, arg in items:
                    pending[pool.submit(guarded_call, fn, key, arg)] = key
                    if len(pending) >= self.max_pending:
                        break
                if not pending:
                    return
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    key = pending.pop(future)
                    yield key, _outcome(future, key)
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def _outcome(future: cf.Future[tuple[bool, Any]], key: Hashable) -> Any:
    """The result or TaskFailure of a finished future (a crashed worker is a failure too)."""
    try:
        _ok, value = future.result()
    except Exception as exc:  # noqa: BLE001 - a dead worker or an unpicklable result is this task's failure
        return TaskFailure.from_exception(key, exc)
    return value


class DaskExecutor:
    """Runs the tasks on a ``dask.distributed`` cluster.

    Parameters
    ----------
    workers : int, optional
        Worker processes of the ``LocalCluster`` started when no scheduler is
        given; default ``os.cpu_count()``. With a scheduler, the cluster's
        thread count is read from it.
    scheduler : str, optional
        The address of a running scheduler (``tcp://host:8786``). Without one a
        ``LocalCluster`` is started on 127.0.0.1 (dashboard on a random
        loopback port) and closed on exit.
    max_pending : int, optional
        Tasks in flight at once; default twice the workers.
    """

    kind = "dask"

    def __init__(self, *, workers: int | None = None, scheduler: str | None = None,
                 max_pending: int | None = None) -> None:
        if scheduler is not None and not _ADDRESS.match(scheduler.strip()):
            raise SpecError(
                "The dask scheduler address must look like 'tcp://host:port' (or 'host:port'). "
                f"Got {scheduler!r}."
            )
        self.scheduler = scheduler.strip() if scheduler else None
        self.workers = _check_workers(workers) or (os.cpu_count() or 1)
        self._max_pending = max_pending
        self._client: Any = None
        self._cluster: Any = None

    @property
    def max_pending(self) -> int:
        """Tasks in flight at once."""
        return self._max_pending or 2 * self.workers

    def __enter__(self) -> DaskExecutor:
        try:
            import dask
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise SpecError(
                "The 'dask' executor needs dask.distributed. Install it with: pip install 'dask[distributed]'."
            ) from exc
        dask.config.set({"dataframe.convert-string": False})
        if self.scheduler is None:
            import logging

            self._cluster = LocalCluster(
                n_workers=self.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address="127.0.0.1:0", worker_dashboard_address=None, silence_logs=logging.ERROR,
            )
            self._client = Client(self._cluster)
        else:
            try:
                self._client = Client(self.scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise SpecError(
                    f"No dask scheduler answered at {self.scheduler!r} within 10 s ({type(exc).__name__}). "
                    "Expected the address of a running scheduler (start one with `dask scheduler` and "
                    "workers with `dask worker tcp://host:8786`)."
                ) from exc
            threads = sum(w.get("nthreads", 1) for w in self._client.scheduler_info()["workers"].values())
            self.workers = max(threads, 1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def imap(self, fn: Callable[[A], R], tasks: Mapping[Hashable, A]) -> Iterator[tuple[Hashable, R | TaskFailure]]:
        """Yield ``(key, fn(arg) or TaskFailure)`` for every task, as tasks finish."""
        if self._client is None:
            raise RuntimeError("A DaskExecutor runs tasks only inside `with open_executor('dask') as executor:`.")
        from dask.distributed import as_completed

        client = self._client
        items = iter(tasks.items())
        keys: dict[str, Hashable] = {}
        flight = as_completed(with_results=False)
        try:
            for key, arg in items:
                future = client.submit(guarded_call, fn, key, arg, pure=False)
                keys[future.key] = key
                flight.add(future)
                if len(keys) >= self.max_pending:
                    break
            for future in flight:
                key = keys.pop(future.key)
                try:
                    _ok, value = future.result()
                except Exception as exc:  # noqa: BLE001 - a lost worker is this task's failure
                    value = TaskFailure.from_exception(key, exc)
                future.release()
                yield key, value
                for key2, arg2 in items:
                    nxt = client.submit(guarded_call, fn, key2, arg2, pure=False)
                    keys[nxt.key] = key2
                    flight.add(nxt)
                    break
        except BaseException:
            for future in list(flight.futures):
                future.cancel()
            raise


def _check_workers(workers: int | None) -> int | None:
    """``workers`` when it is None or an integer >= 1; else a SpecError."""
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SpecError(f"The number of workers must be an integer >= 1. Got {workers!r}.")
    return workers


def open_executor(kind: str = "processes", *, workers: int | None = None,
                  scheduler: str | None = None) -> InProcessExecutor | ProcessExecutor | DaskExecutor:
    """Open an executor of the given kind (use it as a context manager).

    Parameters
    ----------
    kind : {"inprocess", "processes", "dask"}
        Where tasks run: this process, local worker processes, or a
        dask.distributed cluster.
    workers : int, optional
        Worker processes (ignored by ``inprocess``; read from the cluster when a
        ``scheduler`` is given). Default ``os.cpu_count()``.
    scheduler : str, optional
        A dask scheduler address; implies ``kind="dask"``.

    Returns
    -------
    Executor

    Raises
    ------
    SpecError
        For an unknown kind, a bad number of workers or a malformed scheduler address.
    """
    if scheduler is not None and kind != "dask":
        if kind not in EXECUTOR_KINDS:
            raise SpecError(f"The executor must be one of {', '.join(EXECUTOR_KINDS)}. Got {kind!r}.")
        kind = "dask"
    if kind == "inprocess":
        _check_workers(workers)
        return InProcessExecutor(workers=workers)
    if kind == "processes":
        return ProcessExecutor(workers=workers)
    if kind == "dask":
        return DaskExecutor(workers=workers, scheduler=scheduler)
    raise SpecError(f"The executor must be one of {', '.join(EXECUTOR_KINDS)}. Got {kind!r}.")
