"""Whether a run is held in memory or cut into chunks, decided before it starts.

An in-memory run holds every case of every step at once: about 2.5 GB a
million cases of the demo audit, so a registry extract of ten million cases
does not fit a laptop, and one process uses one core. A chunked run
(:func:`audit.execution.run_chunked`) holds a chunk per worker and uses
every core, but cannot run the few analyses that need the whole case frame
at once (see :func:`audit.execution.check_chunkable`).

``insyn run`` therefore decides by itself unless told (``execution.mode:
auto``, the default): a population of more than ``execution.auto_above``
cases (default 500,000) runs in chunks of 250,000 on local worker
processes, one per core; a smaller one, or one whose size cannot be known
before reading it (a SQL query), runs in memory. Options given on the
command line (``--chunk-size``, ``--executor``, ``--scheduler``,
``--in-memory``) and the spec's ``execution`` section override that, in
this order. The number of cases is counted without reading the data: the
spec's ``n`` for a synthetic population, the footer of a Parquet file, the
line breaks of a CSV file (a quoted line break inside a field counts too;
the count only decides the mode), the dimension of an Excel sheet.

:func:`plan_execution` returns an :class:`ExecutionPlan` that says what was
decided and why (a reason code of :data:`REASONS`, whose words the console
prints in the run's language and ``results.json`` records in English).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.exceptions import SpecError
from audit.execution._chunked import check_chunkable
from audit.spec import AuditSpec, ExecutionSpec

__all__ = ["AUTO_ABOVE", "AUTO_CHUNK_SIZE", "REASONS", "ExecutionPlan", "chunk_options", "plan_execution",
           "population_rows"]

AUTO_CHUNK_SIZE = 250_000
"""Cases per chunk when the size was not given (a worker then holds about 0.7 GB)."""

AUTO_ABOVE: int = ExecutionSpec.model_fields["auto_above"].default
"""``execution.auto_above``'s default (500,000; defined on the spec): more cases than this run in chunks when the
mode is ``auto``."""

_TEXT_SUFFIXES = {".csv", ".txt", ".tsv"}
_EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


REASONS: dict[str, str] = {
    "in_memory_option": "in memory, as --in-memory asks",
    "chunk_options": "in chunks, as {asked} asks",
    "mode_memory": "in memory, as execution.mode memory asks",
    "mode_chunks": "in chunks, as execution.mode chunks asks",
    "spec_chunks": "in chunks, as the spec's execution section asks",
    "size_unknown": "in memory: the number of cases is not known before reading them (--chunk-size runs them in chunks)",
    "small": "in memory: {rows:,} cases, not more than execution.auto_above ({above:,})",
    "large": "in chunks: {rows:,} cases, more than execution.auto_above ({above:,})",
    "not_chunkable": "in memory although there are {rows:,} cases, more than execution.auto_above ({above:,}): {detail}",
}
"""What decided the mode, by reason code (English; the console's words in each language are in the catalogue's
``console.execution.<code>``)."""


@dataclass(frozen=True)
class ExecutionPlan:
    """How a run will execute, and why.

    Attributes
    ----------
    chunked : bool
        In chunks (:func:`audit.chunked.run_chunked_audit`) or in memory.
    chunk_size, executor, workers, scheduler
        The chunked run's options (:func:`chunk_options`; workers None for
        a dask scheduler's cluster; all None for an in-memory run).
    rows : int or None
        The population's cases as counted before the run; None when not
        counted or not countable.
    reason : str
        What decided the mode, a key of :data:`REASONS`.
    above : int or None
        ``execution.auto_above`` where the size decided.
    asked : tuple of str
        The command-line options that asked for chunks.
    detail : str or None
        Why a large population cannot run in chunks (``not_chunkable``).
    """

    chunked: bool
    chunk_size: int | None
    executor: str | None
    workers: int | None
    scheduler: str | None
    rows: int | None
    reason: str
    above: int | None = None
    asked: tuple[str, ...] = ()
    detail: str | None = None

    @property
    def values(self) -> dict[str, Any]:
        """The values a reason's text is filled with."""
        return {"rows": self.rows, "above": self.above, "asked": ", ".join(self.asked), "detail": self.detail}

    @property
    def why(self) -> str:
        """What decided the mode, one English sentence (``results.json`` ``execution.why``)."""
        return REASONS[self.reason].format(**self.values)

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-safe values (``insyn run --json`` prints it as ``execution``)."""
        return {"mode": "chunks" if self.chunked else "memory", "chunk_size": self.chunk_size,
                "executor": self.executor, "workers": self.workers, "scheduler": self.scheduler,
                "rows": self.rows, "reason": self.reason, "why": self.why}


def population_rows(spec: AuditSpec) -> int | None:
    """The number of cases the spec's population holds, counted without reading its values.

    Parameters
    ----------
    spec : AuditSpec

    Returns
    -------
    int or None
        ``population.n`` of a synthetic population; the row count in a
        Parquet file's footer; the line breaks of a CSV, TSV or TXT file
        less its header line; the rows of an Excel sheet below its header
        (from the sheet's stored dimension). None for a SQL query, a table
        of counts, a file that does not exist or cannot be opened (the run
        itself then says what is wrong with it), or another suffix.
    """
    pop = spec.population
    if pop.aggregated is not None:
        return None
    if pop.source_kind == "synthetic":
        return int(pop.n) if pop.n is not None else None
    if pop.source_kind != "file" or not pop.file:
        return None
    path = spec.resolve(pop.file)
    if not path.is_file():
        return None
    suffix = path.suffix.lower()
    try:
        if suffix in _PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        if suffix in _TEXT_SUFFIXES:
            return _text_rows(path)
        if suffix in _EXCEL_SUFFIXES:
            return _excel_rows(path, pop.sheet)
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    except Exception as exc:  # pyarrow and openpyxl raise their own errors for a file they cannot read
        if type(exc).__module__.split(".")[0] in ("pyarrow", "openpyxl", "zipfile"):
            return None
        raise
    return None


def _text_rows(path: Path) -> int:
    """Line breaks in a text file, less the header line (a last line without a break counts)."""
    lines = 0
    last = b"\n"
    with path.open("rb") as fh:
        while block := fh.read(1 << 24):
            lines += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)


def _excel_rows(path: Path, sheet: str | int | None) -> int | None:
    """Rows below the header of an Excel sheet, from its stored dimension (None when the sheet has none)."""
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        names = book.sheetnames
        name = names[sheet] if isinstance(sheet, int) else (sheet if sheet is not None else names[0])
        if name not in names:
            return None
        rows = book[name].max_row
        return None if rows is None else max(int(rows) - 1, 0)
    finally:
        book.close()


def chunk_options(spec: AuditSpec, *, chunk_size: int | None = None, executor: str | None = None,
                  workers: int | None = None, scheduler: str | None = None) -> tuple[int, str, int | None, str | None]:
    """A chunked run's options: those given win over the spec's ``execution`` section, then the defaults.

    Returns
    -------
    (chunk_size, executor, workers, scheduler)
        The chunk size (default :data:`AUTO_CHUNK_SIZE`); the executor
        (``dask`` whenever there is a scheduler, else ``processes`` by
        default); the workers (by default one per core on this machine, one
        for ``inprocess``, and None for a dask scheduler's cluster, which
        has as many as it has); the scheduler address or None.
    """
    ex = spec.execution or ExecutionSpec()
    sched = scheduler or ex.scheduler
    kind = "dask" if sched else (executor or ex.executor)
    count = workers or ex.workers
    if count is None and not sched:
        count = 1 if kind == "inprocess" else (os.cpu_count() or 1)
    return chunk_size or ex.chunk_size or AUTO_CHUNK_SIZE, kind, count, sched


def plan_execution(spec: AuditSpec, *, chunk_size: int | None = None, executor: str | None = None,
                   workers: int | None = None, scheduler: str | None = None,
                   in_memory: bool = False) -> ExecutionPlan:
    """Decide how ``spec`` runs: the command line's options, then the spec's ``execution``, then its size.

    Parameters
    ----------
    spec : AuditSpec
        The audit.
    chunk_size, executor, workers, scheduler : optional
        ``insyn run``'s options; any of ``chunk_size``, ``executor`` and
        ``scheduler`` asks for chunks (``workers`` only says how many).
    in_memory : bool
        ``insyn run --in-memory``: hold the run in memory whatever its size.

    Returns
    -------
    ExecutionPlan

    Raises
    ------
    SpecError
        When ``in_memory`` is combined with a chunk option, or the spec's
        ``execution.mode`` is ``memory`` and a chunk option is given on the
        command line.
    """
    ex = spec.execution or ExecutionSpec()
    asked = {k: v for k, v in (("--chunk-size", chunk_size), ("--executor", executor),
                                ("--scheduler", scheduler)) if v is not None}
    where = spec.source or "<spec>"
    if in_memory and asked:
        raise SpecError(f"--in-memory runs the audit in memory, but {', '.join(asked)} asks for chunks. "
                        "Expected one of them.")
    if asked and ex.mode == "memory":
        raise SpecError(f"{where}: execution.mode is memory, but {', '.join(asked)} asks for chunks. Expected "
                        "execution.mode auto or chunks in the spec, or no chunk option.")

    def chunks(reason: str, rows: int | None = None, above: int | None = None) -> ExecutionPlan:
        size, kind, count, sched = chunk_options(spec, chunk_size=chunk_size, executor=executor, workers=workers,
                                                 scheduler=scheduler)
        return ExecutionPlan(chunked=True, chunk_size=size, executor=kind, workers=count, scheduler=sched, rows=rows,
                             reason=reason, above=above, asked=tuple(asked))

    def memory(reason: str, rows: int | None = None, above: int | None = None,
               detail: str | None = None) -> ExecutionPlan:
        return ExecutionPlan(chunked=False, chunk_size=None, executor=None, workers=None, scheduler=None,
                             rows=rows, reason=reason, above=above, detail=detail)

    if in_memory:
        return memory("in_memory_option")
    if asked:
        return chunks("chunk_options")
    if ex.mode == "memory":
        return memory("mode_memory")
    if ex.mode == "chunks":
        return chunks("mode_chunks")
    if ex.chunk_size is not None or ex.scheduler is not None:
        return chunks("spec_chunks")
    above = ex.auto_above
    rows = population_rows(spec)
    if rows is None:
        return memory("size_unknown")
    if rows <= above:
        return memory("small", rows, above)
    try:
        check_chunkable(spec)
    except SpecError as exc:
        return memory("not_chunkable", rows, above, detail=str(exc))
    return chunks("large", rows, above)
