"""How an engine is called: in this process, under a time limit, or on worker processes.

Most engines are vectorised and decide 100,000 cases in one call. Some are not:
an engine written as "look at one case, decide it" (a caseworker model, a
wrapped legacy routine) spends milliseconds per case, and an audit of a large
synthetic population then takes minutes. Such an engine can run on N local
worker processes: :func:`audit.engine.run_engine` cuts the cases into batches
and hands them to a pool.

This module hides the three ways of calling ``engine.decide(batch)`` behind
one small interface, :class:`Caller`, so that the contract checks in
:mod:`audit.engine._contract` are the same whichever way the call was made.

A time limit (``engine.batch_timeout_s``; a Python engine has 600 s per
batch by default, ``PythonEngine.default_timeout_s``) is kept in
two ways. With worker processes, a batch that overruns is given up and the
pool is terminated at the end of the run, which stops the hung worker. In
this process, the engine is called on a daemon thread and the caller waits
for it at most the time limit; Python cannot stop a thread, so an overrunning
thread is *abandoned*: its batch's cases are errors with reason ``timeout``,
the audit goes on, and the thread runs on in the background until it returns
(its answer is discarded) or the process ends (a daemon thread does not keep
the process alive). Its prints still go to standard error, because standard
output is replaced, for as long as an engine thread lives, by a small proxy
that sends the writes of engine threads to standard error and every other
write to the real standard output. An engine that may spin the CPU when it
hangs should run with ``engine.workers: 2`` or more, where it is stopped.

Worker processes are started with ``fork`` where the platform offers it
(Linux), so that the engine object is inherited rather than pickled and an
engine loaded from a file works as it is; elsewhere with ``spawn``, which
needs an engine that can be pickled.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from audit.engine._protocol import Engine

__all__ = ["EngineAbort", "decide_contained"]

_WORKER_ENGINE: Any = None


class EngineAbort(RuntimeError):
    """The engine tried to end the process (``SystemExit``) or raised ``KeyboardInterrupt`` itself.

    An engine must never take the audit down: :func:`decide_contained` turns
    these into an ordinary exception, so the decision contract marks the
    batch's cases as errors with this reason and the audit goes on.
    """


class _EngineStdout:
    """Standard output while engine threads live: their writes go to stderr, every other write to the real stdout."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.threads: set[int] = set()

    def write(self, text: str) -> int:
        if threading.get_ident() in self.threads:
            return sys.stderr.write(text)
        return self.real.write(text)

    def flush(self) -> None:
        if threading.get_ident() in self.threads:
            sys.stderr.flush()
        else:
            self.real.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


_PROXY_LOCK = threading.Lock()


def _enter_engine_thread() -> _EngineStdout:
    """Route this thread's prints to stderr (install the proxy on sys.stdout if it is not there)."""
    with _PROXY_LOCK:
        proxy = sys.stdout if isinstance(sys.stdout, _EngineStdout) else _EngineStdout(sys.stdout)
        sys.stdout = proxy
        proxy.threads.add(threading.get_ident())
        return proxy


def _leave_engine_thread(proxy: _EngineStdout) -> None:
    """Stop routing this thread; take the proxy away again when no engine thread is left."""
    with _PROXY_LOCK:
        proxy.threads.discard(threading.get_ident())
        if not proxy.threads and sys.stdout is proxy:
            sys.stdout = proxy.real


def _decide_guarded(engine: Any, batch: pd.DataFrame) -> Any:
    """:func:`decide_contained` for an engine thread: exits contained, prints to stderr through the proxy."""
    try:
        return engine.decide(batch)
    except SystemExit as exc:
        raise EngineAbort(f"the engine called sys.exit({exc.code!r})") from None
    except KeyboardInterrupt:
        raise EngineAbort("the engine raised KeyboardInterrupt") from None


def decide_contained(engine: Any, batch: pd.DataFrame) -> Any:
    """Call ``engine.decide(batch)`` with its prints sent to stderr and its exits contained.

    Anything the engine prints goes to standard error (standard output
    belongs to Insyn: ``insyn run --json``); ``sys.exit`` or a
    ``KeyboardInterrupt`` raised inside the engine becomes
    :class:`EngineAbort`.
    """
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return engine.decide(batch)
    except SystemExit as exc:
        raise EngineAbort(f"the engine called sys.exit({exc.code!r})") from None
    except KeyboardInterrupt:
        raise EngineAbort("the engine raised KeyboardInterrupt") from None


def _pool_init(engine: Any) -> None:
    """Store the engine in a worker process (the pool's initializer)."""
    global _WORKER_ENGINE
    _WORKER_ENGINE = engine


def _pool_decide(batch: pd.DataFrame) -> Any:
    """Call the worker's engine on one batch."""
    return decide_contained(_WORKER_ENGINE, batch)


def _start_method() -> str:
    """Return ``fork`` on Linux, ``spawn`` elsewhere (``fork`` is unsafe on macOS)."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and sys.platform.startswith("linux"):
        return "fork"
    return "spawn"


class _Timeout(TimeoutError):
    """The engine did not answer a batch within the time limit."""


class _Pending:
    """A call that has been handed out (or, without workers, is still to be made)."""

    __slots__ = ("async_result", "batch")

    def __init__(self, batch: pd.DataFrame, async_result: Any = None) -> None:
        self.batch = batch
        self.async_result = async_result


class Caller:
    """Call ``engine.decide`` on batches, with an optional time limit and worker pool.

    Parameters
    ----------
    engine : Engine
        The engine to call.
    workers : int
        1 calls the engine in this process; more starts a pool of that many
        worker processes when the caller is entered.
    timeout_s : float or None
        Seconds allowed per batch. Without workers the call runs in a daemon
        thread that is abandoned when it overruns (Python cannot stop a
        thread); with workers the pool is terminated at the end, which stops
        an overrunning worker.
    """

    def __init__(self, engine: Engine, *, workers: int, timeout_s: float | None) -> None:
        self.engine = engine
        self.workers = workers
        self.timeout_s = timeout_s
        self._pool: Any = None

    def __enter__(self) -> Caller:
        if self.workers > 1:
            ctx = multiprocessing.get_context(_start_method())
            self._pool = ctx.Pool(processes=self.workers, initializer=_pool_init, initargs=(self.engine,))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            # terminate(), not close(): a worker stuck past its time limit must not
            # keep the audit waiting.
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def submit(self, batch: pd.DataFrame) -> _Pending:
        """Hand a batch out; with workers it starts at once, otherwise on :meth:`result`."""
        if self._pool is not None:
            return _Pending(batch, self._pool.apply_async(_pool_decide, (batch,)))
        return _Pending(batch)

    def result(self, pending: _Pending) -> Any:
        """Return the engine's answer for a batch, or raise what the engine raised.

        Raises
        ------
        _Timeout
            When the answer did not come within ``timeout_s``.
        """
        if pending.async_result is not None:
            try:
                return pending.async_result.get(self.timeout_s)
            except multiprocessing.TimeoutError:
                raise _Timeout(f"no answer within {self.timeout_s:g} s") from None
        if self.timeout_s is None:
            return decide_contained(self.engine, pending.batch)
        return self._call_with_timeout(pending.batch)

    def call(self, batch: pd.DataFrame) -> Any:
        """Submit a batch and wait for its answer."""
        return self.result(self.submit(batch))

    def _call_with_timeout(self, batch: pd.DataFrame) -> Any:
        box: dict[str, Any] = {}

        def target() -> None:
            own = _enter_engine_thread()
            try:
                box["answer"] = _decide_guarded(self.engine, batch)
            except BaseException as exc:  # handed back to the caller below
                box["error"] = exc
            finally:
                _leave_engine_thread(own)

        thread = threading.Thread(target=target, name="insyn-engine-call", daemon=True)
        thread.start()
        thread.join(self.timeout_s)
        if thread.is_alive():
            raise _Timeout(f"no answer within {self.timeout_s:g} s")
        if "error" in box:
            raise box["error"]
        return box["answer"]
