"""Execution of many independent tasks: the chunks of one audit run, or the runs of a study.

An audit that outgrows memory is cut into chunks; a bias study is many audit
runs. Both are a set of independent tasks whose results are combined
afterwards (group statistics sum; decisions are written as Parquet parts).
This package runs such tasks on one of three executors with one interface,
and gives the same results from each:

``inprocess``
    one task after the other in this process (no start-up cost, easiest to
    debug);
``processes``
    a pool of local worker processes (``concurrent.futures`` with the
    ``spawn`` start method): every core of one machine;
``dask``
    a ``dask.distributed`` cluster at a scheduler address, or a
    ``LocalCluster`` on 127.0.0.1 when no address is given: many machines.

A task's exception never escapes the executor: it comes back as a
:class:`TaskFailure` with a one-line error (personnummer masked) and the
traceback, so one failing chunk or run is reported, not fatal.
"""

from __future__ import annotations

from audit.execution._chunked import (
    ChunkedRun,
    ChunkResult,
    ChunkTask,
    check_chunkable,
    iter_chunks,
    merge_checks,
    run_chunk,
    run_chunked,
    statistics_of,
)
from audit.execution._executor import (
    EXECUTOR_KINDS,
    DaskExecutor,
    Executor,
    InProcessExecutor,
    ProcessExecutor,
    TaskFailure,
    open_executor,
)
from audit.execution._wholerun import gx_validation

__all__ = [
    "ChunkResult",
    "ChunkTask",
    "ChunkedRun",
    "DaskExecutor",
    "EXECUTOR_KINDS",
    "Executor",
    "InProcessExecutor",
    "ProcessExecutor",
    "TaskFailure",
    "check_chunkable",
    "gx_validation",
    "iter_chunks",
    "merge_checks",
    "open_executor",
    "run_chunk",
    "run_chunked",
    "statistics_of",
]
