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
    a pool of local worker processes (``concurrent.futures``; forked with
    Insyn already imported where that is safe, else spawned): every core of
    one machine;
``dask``
    a ``dask.distributed`` cluster at a scheduler address, or a
    ``LocalCluster`` on 127.0.0.1 when no address is given: many machines.

A task's exception never escapes the executor: it comes back as a
:class:`TaskFailure` with a one-line error (personnummer masked) and the
traceback, so one failing chunk or run is reported, not fatal.

Whether a run is chunked at all is decided before it starts
(:func:`plan_execution`): by the command line, the spec's ``execution``
section, or, by default, the population's size.
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
from audit.execution._plan import (
    AUTO_ABOVE,
    AUTO_CHUNK_SIZE,
    REASONS,
    ExecutionPlan,
    chunk_options,
    plan_execution,
    population_rows,
)
from audit.execution._wholerun import (
    REPORT_COLUMNS,
    add_combination_counts,
    combination_counts,
    gx_validation,
    report_columns,
)

__all__ = [
    "AUTO_ABOVE",
    "AUTO_CHUNK_SIZE",
    "ChunkResult",
    "ChunkTask",
    "ChunkedRun",
    "DaskExecutor",
    "EXECUTOR_KINDS",
    "ExecutionPlan",
    "Executor",
    "InProcessExecutor",
    "ProcessExecutor",
    "REASONS",
    "REPORT_COLUMNS",
    "TaskFailure",
    "add_combination_counts",
    "check_chunkable",
    "chunk_options",
    "combination_counts",
    "gx_validation",
    "iter_chunks",
    "merge_checks",
    "open_executor",
    "plan_execution",
    "population_rows",
    "report_columns",
    "run_chunk",
    "run_chunked",
    "statistics_of",
]
