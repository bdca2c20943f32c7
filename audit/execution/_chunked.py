"""A chunked audit run: every row-level step per chunk, metrics from summed group statistics.

A run over millions of cases need not hold them at once. The cases are read
in chunks (Parquet record batches, CSV chunks, a SQL query streamed as DuckDB
Arrow record batches or through SQLAlchemy with pandas' ``chunksize``, or a
synthetic generator per chunk with a seed derived from the run's seed and
the chunk's number); each
chunk goes through the run's row-level steps (``source`` to ``final``: the
intake suites, the reference decision, the engine input, the engine under the
decision contract, review, the final frame) as one task of an executor
(:func:`audit.execution.open_executor`); its final frame is written as one
Parquet part of the decisions, and what the chunk returns is small: its
:class:`~audit.metrics.GroupStatistics`, its row accounting, its check
results and its step times. The metrics come from the sum of the chunks'
group statistics, which is exactly the statistics of the whole frame, so the
metric table (values, intervals, tests, bootstrap draws) equals the in-memory
run's.

Checks merged across chunks
    Every chunk validates its own input of each step (so ``quarantine``
    keeps out exactly the rows the whole-frame check would for row-level
    expectations) and, inside :func:`audit.checks.collecting_statistics`,
    records the sufficient statistics of the expectations that need the
    whole column. :func:`audit.checks.merge_chunk_checks` merges them into
    the result one validation of the whole frame gives: counts of row-level
    expectations sum; uniqueness pools 64-bit hashes of the values; group
    representation and the group-rate gaps sum their per-group counts;
    Cramér's V sums the counts of (feature, sensitive) value pairs and takes
    a numeric feature's quantile bins from the pooled counts. Each merged
    entry says ``exact: true`` unless chunks disagreed on a table-level
    result (see that function). A case id in two chunks is moreover a
    DataError naming the run.

Not yet chunked: ``compare``, ``counterfactual``, ``selection``, ``attribution``,
``truth.basis: true_circumstances`` and a derived
column with ``quantile_bins`` (a quantile needs the whole column); a spec
with any of them is a SpecError naming the key.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import time
from datetime import UTC, datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit import _memory, _steps, runner
from audit._columns import STATUS_ERROR, STATUS_OK, STATUS_QUARANTINED
from audit._funnelrun import funnel_records, run_stage_counts, summed_funnel
from audit._ids import HashPool, RepeatCounter
from audit._json import jsonable
from audit._parquet import write_frame
from audit._privacy import mask_frame
from audit._schema import coerce_case_frame
from audit.checks import collecting_statistics, merge_chunk_checks, sum_pair_counts, value_hashes
from audit.exceptions import DataError, SpecError
from audit.execution._executor import TaskFailure, open_executor
from audit.execution._wholerun import (add_combination_counts, combination_counts, measurement_step,
                                       merge_check_reports, merge_engine, merge_fields, merge_population,
                                       merge_steps, report_columns)
from audit.journey import Journey, column_provenance
from audit.metrics import GroupStatistics, measure_statistics
from audit.population import Population, apply_mapping, blank_to_missing, iter_table
from audit.public_values import ValueSums, value_sums
from audit.spec import AuditSpec
from audit.synth import generate, load_population_spec

__all__ = ["ChunkResult", "ChunkTask", "ChunkedRun", "check_chunkable", "iter_chunks", "merge_checks", "run_chunk",
           "run_chunked", "statistics_of"]

ROW_STEP_NAMES = ("source", "intake", "reference", "engine_input", "decision", "review", "final")
"""The steps every chunk runs; measurement happens once, on the summed statistics."""


@dataclass(frozen=True)
class ChunkTask:
    """One chunk's work: the spec, the chunk's number, its cases (or how to generate them), where to write."""

    spec: AuditSpec
    index: int
    frame: pd.DataFrame | None
    n: int
    seed: int | None
    out_dir: str | None
    run_id: str
    journey_dir: str | None = None


@dataclass(frozen=True)
class ChunkResult:
    """What one chunk returns: small, whatever the chunk's size."""

    index: int
    rows: int
    statistics: GroupStatistics
    status_counts: dict[str, int]
    checks: list[dict[str, Any]]
    check_statistics: list[tuple[str, dict[int, Any]]]
    timings: dict[str, float]
    case_id_hashes: Any  # numpy uint64 hashes; in the parent, a reference into its HashPool (audit._ids)
    part: str | None
    peak_rss_mb: float
    stage_counts: pd.DataFrame | None = None  # the chunk's funnel counts (audit._funnelrun), summed over chunks
    journey_part: str | None = None
    lineage_part: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)  # the chunk's engine, population and journey steps
    values: ValueSums | None = None  # the sums behind the public values, added over chunks
    report_counts: pd.DataFrame | None = None  # cases per combination of the report's columns (combination_counts)


@dataclass
class ChunkedRun:
    """The outcome of :func:`run_chunked`.

    ``checks`` holds the merged results (one per step and expectation);
    ``check_reports`` the same results as one report per step (the form of
    ``checks.json``); ``engine``, ``population`` and ``journey`` (``steps``,
    ``fields``, ``timings``) what ``results.json`` says of them, assembled
    from the chunks by :mod:`audit.execution._wholerun`; ``workers`` how many
    workers the executor ran the chunks on (a dask scheduler's: its threads).
    """

    spec: AuditSpec
    run_id: str
    chunks: int
    rows: int
    statistics: GroupStatistics
    metrics: pd.DataFrame
    findings: list[dict[str, Any]]
    status_counts: dict[str, int]
    checks: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)
    parts: list[str] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    funnel: list[dict[str, Any]] | None = None
    journey_parts: list[str] = field(default_factory=list)
    lineage_parts: list[str] = field(default_factory=list)
    check_reports: list[dict[str, Any]] = field(default_factory=list)
    engine: dict[str, Any] | None = None
    population: dict[str, Any] = field(default_factory=dict)
    journey: dict[str, Any] = field(default_factory=dict)
    values: list[dict[str, Any]] = field(default_factory=list)
    report_counts: pd.DataFrame | None = None
    workers: int | None = None


def _peak_rss_mb() -> float:
    """This process's peak resident set size in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check_chunkable(spec: AuditSpec) -> None:
    """Raise a SpecError naming the first option the chunked path cannot run exactly."""
    where = spec.source or "<spec>"
    if spec.population.aggregated is not None:
        raise SpecError(f"{where}: population.aggregated is already a table of counts; run it without chunks.")
    if spec.truth.basis != "recorded":
        raise SpecError(f"{where}: truth.basis true_circumstances is not supported by a chunked run yet. Expected "
                        "truth.basis recorded, or run it in memory (no execution.chunk_size).")
    for key in ("compare", "counterfactual", "selection", "attribution"):
        if getattr(spec, key) is not None:
            raise SpecError(f"{where}: '{key}' is not supported by a chunked run yet. Expected a spec without "
                            f"'{key}', or run it in memory (no execution.chunk_size).")
    for name, d in (spec.population.derive or {}).items():
        if getattr(d, "quantile_bins", None) is not None:
            raise SpecError(f"{where}: population.derive.{name} uses quantile_bins, which needs the whole column; "
                            "a chunked run cannot cut it exactly. Expected fixed bins or an in-memory run.")


def iter_chunks(spec: AuditSpec, chunk_size: int) -> Iterator[tuple[int, pd.DataFrame | None, int, int | None]]:
    """Yield ``(index, frame, n, seed)`` per chunk of the spec's population.

    A Parquet file is read by record batches of ``chunk_size`` rows, a CSV
    or Excel file by :func:`audit.population.iter_table` (two passes, so that
    every chunk's columns get the types the whole file's columns get in
    memory) and a SQL query as a stream of Arrow record batches (DuckDB) or
    pandas chunks (SQLAlchemy), so only one chunk is in memory at a time
    here; a synthetic population yields no frame but the chunk's size and a
    seed derived from the spec's seed and the chunk's number (numpy's
    ``SeedSequence``), and the chunk is generated where it runs.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise SpecError(f"execution.chunk_size must be an integer >= 1. Got {chunk_size!r}.")
    pop = spec.population
    if pop.source_kind == "synthetic":
        n = int(pop.n or 0)
        starts = range(0, n, chunk_size)
        seeds = np.random.SeedSequence(spec.seed).spawn(len(starts))
        for i, start in enumerate(starts):
            yield i, None, min(chunk_size, n - start), int(seeds[i].generate_state(1, dtype=np.uint32)[0])
        return
    if pop.source_kind == "sql":
        yield from _sql_chunks(spec, chunk_size)
        return
    path = spec.resolve(pop.file)
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        with pq.ParquetFile(path) as pf:
            for i, batch in enumerate(pf.iter_batches(batch_size=chunk_size)):
                yield i, blank_to_missing(batch.to_pandas()), batch.num_rows, None  # as read_table reads it
        return
    if suffix in {".csv", ".txt", ".tsv", ".xlsx", ".xlsm"}:  # typed as the in-memory reader types the whole file
        for i, frame in enumerate(iter_table(path, chunk_size, sheet=pop.sheet)):
            yield i, frame, len(frame), None
        return
    raise SpecError(f"{spec.source or '<spec>'}: population.file {pop.file!r} cannot be read in chunks. "
                    "Expected a .parquet, .pq, .csv, .tsv, .txt, .xlsx or .xlsm file.")


def _sql_chunks(spec: AuditSpec, chunk_size: int) -> Iterator[tuple[int, pd.DataFrame | None, int, int | None]]:
    """Stream a SQL population: DuckDB record batches, or SQLAlchemy with pandas' ``chunksize``."""
    pop = spec.population
    query, url = pop.sql or "", pop.url or ""
    if url.startswith("duckdb:///"):
        import duckdb

        raw = url.removeprefix("duckdb:///")
        db = Path(raw) if Path(raw).is_absolute() else (spec.base_dir / raw)
        if not db.is_file():
            raise DataError(f"{url}: no such DuckDB file ({db}).")
        con = duckdb.connect(str(db), read_only=True)
        try:
            try:
                reader = con.sql(query).to_arrow_reader(chunk_size)
            except Exception as exc:
                raise DataError(f"{db}: the query failed: {exc}. Query: {query}") from None
            i = 0
            pending: list[Any] = []
            rows = 0
            for batch in reader:  # DuckDB may cut batches smaller than asked: regroup to chunk_size rows
                pending.append(batch)
                rows += batch.num_rows
                while rows >= chunk_size:
                    frame, pending, rows = _take_rows(pending, chunk_size)
                    yield i, frame, len(frame), None
                    i += 1
            if rows:
                frame, pending, rows = _take_rows(pending, rows)
                yield i, frame, len(frame), None
        finally:
            con.close()
        return
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
        with engine.connect() as con:
            for i, frame in enumerate(pd.read_sql_query(sa.text(query), con, chunksize=chunk_size)):
                yield i, blank_to_missing(frame), len(frame), None
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{url}: the query failed: {exc}. Query: {query}") from None


def _take_rows(batches: list[Any], n: int) -> tuple[pd.DataFrame, list[Any], int]:
    """The first ``n`` rows of a list of Arrow record batches as a frame, and the rest."""
    import pyarrow as pa

    table = pa.Table.from_batches(batches)
    head, tail = table.slice(0, n), table.slice(n)
    frame = blank_to_missing(head.to_pandas())
    return frame, tail.to_batches(), tail.num_rows


def _population(task: ChunkTask) -> Population:
    """The chunk as a Population (mapped like the in-memory loader maps the whole file)."""
    spec = task.spec
    pop = spec.population
    if task.frame is None:
        path = spec.resolve(pop.synthetic)
        model = load_population_spec(path)
        frame = generate(model, n=task.n, seed=task.seed, bias=pop.bias)
        frame.attrs = {}
        frame["case_id"] = f"c{task.index:05d}-" + frame["case_id"].astype("str")
        if pop.rename or pop.recode or pop.derive:
            frame, _ = apply_mapping(frame, pop, source=str(pop.synthetic), scrub=False)
        provenance = dict(model.provenance)
        provenance.update({name: "system" for name in pop.derive})
        provenance.update(pop.provenance)
        return Population(kind="synthetic", frame=frame, aggregated=None,
                          source={"kind": "synthetic", "path": pop.synthetic, "n": task.n, "seed": spec.seed,
                                  "rows": len(frame)}, provenance=provenance, inputs=(path,))
    kind = "sql" if pop.source_kind == "sql" else "file"
    shown = (pop.url or "<sql>") if kind == "sql" else pop.file
    frame, notes = apply_mapping(task.frame, pop, source=f"{shown} (chunk {task.index})")
    frame, typed = coerce_case_frame(frame, source=f"{shown} (chunk {task.index})")  # as the in-memory loader
    notes = [*notes, *typed]
    # as the in-memory loader: a file or a query does not say who created its columns, so undeclared is "unknown"
    provenance = column_provenance(frame.columns, pop.provenance, derived=pop.derive,
                                   where=f"{spec.source or '<spec>'}: population.provenance")
    source = {"kind": kind, "path": pop.file if kind == "file" else None, "url": pop.url, "rows": len(task.frame)}
    return Population(kind=kind, frame=frame, aggregated=None, source=source, provenance=provenance,
                      notes=tuple(notes))


def statistics_of(spec: AuditSpec, final: pd.DataFrame) -> GroupStatistics:
    """The group statistics of a final frame, with exactly the options the in-memory measurement uses."""
    o = spec.outcomes
    t_pos = [spec.truth.positive] if spec.truth.positive else None
    return GroupStatistics.from_frame(final, sensitive_features=spec.sensitive_features, favourable=o.favourable,
                                      review=o.review, pred_positive=o.positive or t_pos or ["deny"],
                                      truth_positive=t_pos)


def _hashes(case_ids: pd.Series) -> np.ndarray:
    """64-bit hashes of case ids, for a uniqueness check over the whole run."""
    return value_hashes(case_ids.astype("str"))


def _refuse_repeated_ids(spec: AuditSpec, ordered: list[ChunkResult], repeated: np.ndarray, rows: int) -> None:
    """Raise DataError for a case id in two chunks; return when equal hashes belong to different ids.

    The hashes of every chunk's case ids are compared first (8 bytes a case,
    on disk: :class:`audit._ids.HashPool`); ``repeated`` holds the distinct
    hashes that occur more than once and ``rows`` how many cases carry one.
    Only ids whose hash repeats are read back from the chunks' parts and
    compared as text, so that two different ids that happen to share a
    64-bit hash are not taken for one. A run that wrote no parts cannot be
    checked on its ids, and a repeated hash is refused.
    """
    where = spec.source or spec.name

    def by_hashes(why: str) -> DataError:
        return DataError(f"{where}: case_id must be unique over the whole run; a case id occurs in more than one "
                         f"chunk (told by 64-bit hashes of the ids; {why}). Expected one row per case.")

    if any(r.part is None for r in ordered):
        raise by_hashes("this run wrote no parts to compare the ids")
    seen: dict[str, list[int]] = {}
    for r in ordered:
        assert r.part is not None
        ids = pd.read_parquet(r.part, columns=["case_id"])["case_id"].astype("str")
        for case_id in ids[np.isin(_hashes(ids), repeated)].tolist():
            seen.setdefault(case_id, []).append(r.index)
    twice = {case_id: chunks for case_id, chunks in seen.items() if len(chunks) > 1}
    if not twice and sum(map(len, seen.values())) < rows:
        # an id the parts hold masked (a personnummer-shaped id kept by scrub: false) cannot be compared
        raise by_hashes("the ids could not be compared in the parts")
    if twice:
        shown = "; ".join(f"{case_id!r} in chunks {', '.join(map(str, chunks))}"
                          for case_id, chunks in list(twice.items())[:3])
        raise DataError(f"{where}: case_id must be unique over the whole run. {len(twice)} case id(s) occur in "
                        f"more than one chunk, e.g. {shown}. Expected one row per case.")


def run_chunk(task: ChunkTask) -> ChunkResult:
    """Run the row-level steps on one chunk; write its final frame as a Parquet part; return its statistics.

    Module level so that worker processes and Dask workers can run it.
    """
    _memory.tune()
    spec = task.spec
    population = _population(task)

    def prepare(state: runner.RunState) -> None:
        state.population = population
        state.journey = Journey(run_id=task.run_id, audit_name=spec.name, namespace=spec.lineage.namespace,
                                provenance=population.provenance)

    steps = [dataclasses.replace(s, prepare=prepare) if s.name == "source" else s
             for s in runner.steps_for(spec) if s.name in ROW_STEP_NAMES]
    state = runner.RunState(spec=spec, run_id=task.run_id)
    with collecting_statistics() as check_statistics:
        for step in steps:
            if step.when(spec):
                runner.run_step(state, step)
    t0 = time.perf_counter()
    final = state.final
    stats = statistics_of(spec, final)
    state.timings["statistics"] = time.perf_counter() - t0
    part = None
    t0 = time.perf_counter()
    gated = mask_frame(final)  # the privacy gate, as decisions.parquet
    report = combination_counts(gated[report_columns(spec.sensitive_features, gated.columns)])
    if task.out_dir is not None:
        part = os.path.join(task.out_dir, f"part-{task.index:05d}.parquet")
        write_frame(gated, part)
    state.timings["write"] = time.perf_counter() - t0
    journey_part = lineage_part = None
    if task.journey_dir is not None:
        t0 = time.perf_counter()
        journey_part = state.journey.write_cases(
            os.path.join(task.journey_dir, f"part-{task.index:05d}.parquet")).as_posix()
        lineage_part = state.journey.write_lineage(
            os.path.join(task.journey_dir, f"lineage-{task.index:05d}.jsonl")).as_posix()
        state.timings["journey"] = time.perf_counter() - t0
    counts = final["status"].value_counts()
    values = value_sums(final, state.cases, sensitive_features=spec.sensitive_features,
                        intersections=spec.intersections, review_outcomes=spec.outcomes.review,
                        review=spec.review is not None)
    return ChunkResult(values=values, index=task.index, rows=len(final), statistics=stats,
                       status_counts={k: int(counts.get(k, 0)) for k in (STATUS_OK, STATUS_ERROR, STATUS_QUARANTINED)},
                       checks=[{k: v for k, v in e.items() if k != "gx_result"} for e in state.checks],
                       check_statistics=check_statistics, timings=dict(state.timings),
                       case_id_hashes=_hashes(final["case_id"]), part=part, peak_rss_mb=_peak_rss_mb(),
                       journey_part=journey_part, lineage_part=lineage_part, stage_counts=run_stage_counts(state),
                       report_counts=report,
                       summary={"engine": runner.engine_info(state), "population": runner.population_info(state),
                                "steps": state.journey.steps, "fields": state.journey.field_provenance()})


def merge_checks(per_chunk: list[list[dict[str, Any]]],
                 per_chunk_statistics: list[list[tuple[str, dict[int, Any]]]] | None = None,
                 *, repeats: RepeatCounter | None = None) -> list[dict[str, Any]]:
    """Merge the chunks' check entries exactly: see :func:`audit.checks.merge_chunk_checks`."""
    return merge_chunk_checks(per_chunk, per_chunk_statistics, repeats=repeats)


def run_chunked(spec: AuditSpec, *, chunk_size: int, executor: str = "inprocess", workers: int | None = None,
                scheduler: str | None = None, out_dir: str | Path | None = None,
                run_id: str | None = None, journey_dir: str | Path | None = None) -> ChunkedRun:
    """Run an audit in chunks on an executor; metrics from the summed group statistics.

    Parameters
    ----------
    spec : AuditSpec
        The audit (a file or synthetic population; see :func:`check_chunkable`).
    chunk_size : int
        Cases per chunk.
    executor, workers, scheduler
        As :func:`audit.execution.open_executor`.
    out_dir : path, optional
        Folder for the decisions' Parquet parts (``part-00000.parquet``, ...); none written without it.
    run_id : str, optional
        The run's id (default :func:`audit.runner.make_run_id`).
    journey_dir : path, optional
        Folder for each chunk's journey (``part-00000.parquet``, the rows of
        ``journey.parquet``) and OpenLineage events (``lineage-00000.jsonl``,
        one OpenLineage run per chunk); none written without it.

    Returns
    -------
    ChunkedRun

    Raises
    ------
    SpecError
        For an option the chunked path does not support.
    DataError
        When a chunk fails (its error names the chunk) or a case id occurs in two chunks.
    """
    check_chunkable(spec)
    _memory.tune()  # the parent merges and reports; forked workers start with its settings
    run_id = run_id or runner.make_run_id(spec)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    if journey_dir is not None:
        Path(journey_dir).mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    tasks = (ChunkTask(spec=spec, index=i, frame=frame, n=n, seed=seed,
                       out_dir=None if out_dir is None else str(out_dir), run_id=run_id,
                       journey_dir=None if journey_dir is None else str(journey_dir))
             for i, frame, n, seed in iter_chunks(spec, chunk_size))
    with HashPool() as pool:  # every whole-run uniqueness on disk, by bucket: the parent's memory does not grow
        return _run_chunks(spec, tasks, pool, executor=executor, workers=workers, scheduler=scheduler,
                           run_id=run_id, t_start=t_start)


def _shrink(pool: HashPool, pairs: dict[str, list[dict[str, Any]]], result: ChunkResult) -> ChunkResult:
    """Keep of a chunk's whole-column statistics only what does not grow with the run.

    Its hash arrays (its case ids', its uniqueness statistics') go to the
    pool, references stay; its (x, y) pair counts join ``pairs`` (per
    expectation, a running sum and at most :data:`_PAIRS_WAITING` chunks'
    counts not yet added to it, :func:`audit.checks.sum_pair_counts`) and an
    empty count stays. :func:`_restore_pairs` puts the sums back
    before the checks are merged.
    """
    streams: dict[str, np.ndarray] = {_CASE_ID_STREAM: result.case_id_hashes}
    for step, stats in result.check_statistics:
        for pos, stat in stats.items():
            if isinstance(stat, dict) and isinstance(stat.get("hashes"), np.ndarray):
                streams[f"{step}#{pos}"] = stat["hashes"]
    refs = pool.add_chunk(result.index, streams)
    statistics = []
    for step, stats in result.check_statistics:
        kept: dict[int, Any] = {}
        for pos, stat in stats.items():
            key = f"{step}#{pos}"
            if key in refs:
                kept[pos] = {**stat, "hashes": refs[key]}
            elif isinstance(stat, dict) and {"x", "y", "count"} <= stat.keys() and _summable(pairs.get(key), stat):
                waiting = pairs.setdefault(key, [])
                waiting.append(stat)
                if len(waiting) > _PAIRS_WAITING:  # added in batches: the running sum is not re-sorted per chunk
                    waiting[:] = [sum_pair_counts(waiting)]
                kept[pos] = {**stat, "x": stat["x"][:0], "y": stat["y"][:0], "count": stat["count"][:0]}
            else:
                kept[pos] = stat
        statistics.append((step, kept))
    return dataclasses.replace(result, case_id_hashes=refs[_CASE_ID_STREAM], check_statistics=statistics)


_PAIRS_WAITING = 8
"""Chunks' pair counts kept apart before they are added to an expectation's running sum."""


def _summable(waiting: list[dict[str, Any]] | None, stat: dict[str, Any]) -> bool:
    """Whether a chunk's pair counts can join the running sum (the axes numeric or text alike)."""
    return not waiting or (bool(waiting[0]["x_numeric"]), bool(waiting[0]["y_numeric"])) == (
        bool(stat["x_numeric"]), bool(stat["y_numeric"]))


def _restore_pairs(ordered: list[ChunkResult], waiting: dict[str, list[dict[str, Any]]]) -> list[ChunkResult]:
    """Give the chunks holding each expectation's pair counts the running sum and the counts not yet added to it.

    One to a chunk, in chunk order (the others keep none): the merge pools
    every chunk's counts, so it sees the same pairs without a last sort here.
    """
    left = {key: list(parts) for key, parts in waiting.items()}
    out = []
    for r in ordered:
        statistics = []
        for step, stats in r.check_statistics:
            kept = dict(stats)
            for pos in stats:
                key = f"{step}#{pos}"
                if left.get(key) and isinstance(stats[pos], dict) and len(stats[pos].get("count", ())) == 0:
                    kept[pos] = left[key].pop(0)  # a chunk whose counts went into the sum (an emptied one)
            statistics.append((step, kept))
        out.append(dataclasses.replace(r, check_statistics=statistics))
    return out


_CASE_ID_STREAM = "run:case_id"
"""The pool's stream of every chunk's case-id hashes (check streams are named ``step#position``)."""


def _run_chunks(spec: AuditSpec, tasks: Iterator[ChunkTask], pool: HashPool, *, executor: str,
                workers: int | None, scheduler: str | None, run_id: str, t_start: float) -> ChunkedRun:
    """The body of :func:`run_chunked`: run the tasks, spill their hashes, merge, measure."""
    results: dict[int, ChunkResult] = {}
    pairs: dict[str, list[dict[str, Any]]] = {}  # per proxy expectation, the chunks' pair counts, summed in batches
    report: pd.DataFrame | None = None
    total: GroupStatistics | None = None  # the chunks' group statistics summed in chunk order, so far
    waiting: dict[int, GroupStatistics] = {}  # chunks that came before an earlier one
    done = 0
    with _memory.frozen_heap(), open_executor(executor, workers=workers, scheduler=scheduler) as ex:
        used = ex.workers
        for key, value in ex.imap(run_chunk, _LazyTasks(tasks)):
            if isinstance(value, TaskFailure):
                raise DataError(f"Chunk {key} of {spec.source or spec.name} failed: {value.error}")
            report = add_combination_counts([report, value.report_counts])  # combinations, not cases, are kept
            waiting[key] = value.statistics
            while done in waiting:  # summed in chunk order as soon as it can be: the same sum on every run
                part = waiting.pop(done)
                total = part if total is None else total + part
                done += 1
            results[key] = dataclasses.replace(_shrink(pool, pairs, value), report_counts=None, statistics=None)
    ordered = _restore_pairs([results[i] for i in sorted(results)], pairs)
    repeats = RepeatCounter()
    if ordered and pool.repeated_count(_CASE_ID_STREAM):
        _refuse_repeated_ids(spec, ordered, pool.repeated(_CASE_ID_STREAM), pool.repeated_count(_CASE_ID_STREAM))
    t0 = time.perf_counter()
    if total is None:  # no chunk came back
        raise DataError(f"{spec.source or spec.name}: the population has no cases to run in chunks. Expected at "
                        "least one row.")
    if waiting:  # cannot happen: every chunk came back (else the executor raised)
        raise DataError(f"{spec.source or spec.name}: chunks {sorted(waiting)} came back without the chunks before "
                        "them. Expected every chunk's result.")
    table = measure_statistics(total, sensitive_features=spec.sensitive_features, intersections=spec.intersections,
                               reference_groups=spec.reference_groups, statistics=spec.statistics, seed=spec.seed,
                               correct=False)
    funnel = summed_funnel(spec, [r.stage_counts for r in ordered])
    metrics, findings = _steps.corrected(spec, [table], funnel)  # the funnel's tests join the run's family
    funnel = _steps.with_run_family(spec, funnel, metrics)
    timings: dict[str, float] = {}
    for r in ordered:
        for k, v in r.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    timings["measurement"] = time.perf_counter() - t0
    measured_at = datetime.now(UTC)
    timings["wall"] = time.perf_counter() - t_start
    counts = {k: sum(r.status_counts[k] for r in ordered) for k in (STATUS_OK, STATUS_ERROR, STATUS_QUARANTINED)}
    rows = sum(r.rows for r in ordered)
    merged = merge_checks([r.checks for r in ordered], [r.check_statistics for r in ordered], repeats=repeats)
    reports = merge_check_reports([r.checks for r in ordered], merged)
    return ChunkedRun(spec=spec, run_id=run_id, chunks=len(ordered), rows=rows,
                      statistics=total, metrics=metrics, findings=findings, status_counts=counts,
                      checks=merged, check_reports=reports,
                      engine=merge_engine([r.summary.get("engine") for r in ordered]),
                      population=merge_population([r.summary["population"] for r in ordered]),
                      journey={"steps": [*merge_steps([r.summary["steps"] for r in ordered], reports),
                                         measurement_step(len(ordered[0].summary["steps"]), rows, len(metrics),
                                                          len(findings), timings["measurement"], measured_at)],
                               "fields": merge_fields([r.summary["fields"] for r in ordered]), "timings": timings},
                      timings=timings, parts=[r.part for r in ordered if r.part],
                      peak_rss_mb=max(r.peak_rss_mb for r in ordered),
                      journey_parts=[r.journey_part for r in ordered if r.journey_part],
                      lineage_parts=[r.lineage_part for r in ordered if r.lineage_part],
                      funnel=funnel_records(spec, funnel, metrics),
                      values=_public_values(spec, [r.values for r in ordered]), report_counts=report,
                      workers=used)


def _public_values(spec: AuditSpec, sums: list[ValueSums | None]) -> list[dict[str, Any]]:
    """The whole run's public values from the chunks' sums, as an in-memory run records them."""
    parts = [v for v in sums if v is not None]
    if not parts:
        return []
    frame = sum(parts[1:], parts[0]).values(min_group_size=spec.statistics.min_group_size,
                                             alpha=spec.statistics.alpha)
    return [jsonable(r) for r in frame.to_dict(orient="records")]


class _LazyTasks:
    """A read-once mapping view over a generator of chunk tasks, so chunks are read only as they are submitted."""

    def __init__(self, tasks: Iterator[ChunkTask]) -> None:
        self._tasks = tasks

    def items(self) -> Iterator[tuple[int, ChunkTask]]:
        for task in self._tasks:
            yield task.index, task
