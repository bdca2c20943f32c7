"""Run an audit in chunks and write its run folder (``insyn run --chunk-size`` / the spec's ``execution:``).

A registry extract or a national panel of millions of cases does not fit in
memory as one frame. :func:`audit.execution.run_chunked` runs the row-level
steps per chunk on an executor (this process, local processes, or a Dask
cluster) and measures once from the summed group statistics; this module
turns that into a complete run folder, the same files an in-memory run
writes (:mod:`audit.record`), written to a temporary folder and renamed when
complete:

``decisions/part-00000.parquet`` ...
    the final frame of every chunk (one row per case, as ``decisions.parquet``
    of an in-memory run, in parts, through the privacy gate);
``journey/part-00000.parquet`` ...
    each chunk's journey (the rows ``journey.parquet`` of an in-memory run
    holds, in parts);
``lineage.jsonl``
    the OpenLineage events of every chunk, chunk by chunk (each chunk is one
    OpenLineage run of the job);
``metrics.csv``
    the metric table (identical to the in-memory run's for the same cases);
``results.json``
    the keys of an in-memory run's (``population``, ``engine``, ``checks``,
    ``journey`` assembled from the chunks by
    :mod:`audit.execution._wholerun`; ``metrics``, ``findings``, ``funnel``),
    plus ``execution`` (chunks, chunk size, executor, workers, scheduler,
    parts);
``checks.json``
    one report per step, as an in-memory run's, its results merged across
    chunks (:func:`audit.checks.merge_chunk_checks`), each with its
    ``exact`` flag, and the step's ``gx_result`` written from the merged
    results (:func:`audit.execution.gx_validation`);
``report.html``, ``report.md``, ``dossier.html``, ``dossier.md``
    rendered from the whole-run result by the same renderers as an in-memory
    run's, honouring ``report.formats`` and ``report.language``; they count
    reason codes and caseworker overrides in the decisions' parts (only the
    columns they need are read, each part reduced to counts of cases per
    combination of values, :func:`report_counts`); the public values of the scorecard from
    sums each chunk adds up (:class:`audit.public_values.ValueSums`). What a
    chunked run cannot produce, the report says in words: subgroup
    discovery (it searches the whole case frame; ``insyn discover RUN_DIR``
    runs it on the finished folder);
``manifest.json``
    the SHA-256 of every file above, every part included
    (``decisions/part-00000.parquet`` ...), in an in-memory run's format,
    so that ``insyn verify`` and :class:`audit.runfolder.RunFolder` read a
    chunked folder like any other.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from audit._json import jsonable
from audit._privacy import mask
from audit.execution import (
    REPORT_COLUMNS,
    ChunkedRun,
    add_combination_counts,
    chunk_options,
    combination_counts,
    gx_validation,
    report_columns,
    run_chunked,
)
from audit.record import PART_FOLDERS, artifacts_for, input_hashes, part_names, write_documents, write_manifest
from audit.result import CASES_COLUMN, AuditResult
from audit.runner import make_run_id
from audit.spec import AuditSpec

__all__ = ["REPORT_COLUMNS", "chunked_result", "report_counts", "report_frame", "run_chunked_audit"]


def chunked_result(spec: AuditSpec, run: ChunkedRun, *, execution: dict[str, Any],
                   decisions: pd.DataFrame | None = None, generated_at: str | None = None) -> AuditResult:
    """The whole-run result of a chunked run, as the report, the dossier and ``results.json`` read it.

    Parameters
    ----------
    spec : AuditSpec
        The audit that ran.
    run : ChunkedRun
        The run (its merged checks, metrics, findings, funnel; its journey,
        engine and population assembled from the chunks).
    execution : dict
        How it ran (``results.json`` ``execution``).
    decisions : DataFrame, optional
        What the report counts in the decisions: :func:`report_counts` (a
        row per combination of :data:`REPORT_COLUMNS` and the sensitive
        columns, with its cases in :data:`audit.result.CASES_COLUMN`).
    generated_at : str, optional
        ISO 8601 time (default now, UTC).

    Returns
    -------
    AuditResult
        With the public values from the chunks' summed sums (as an
        in-memory run's) and ``discovered`` None.
    """
    population = {**run.population, "status_counts": dict(run.status_counts)}
    return AuditResult.build(
        decisions=decisions,
        run_id=run.run_id,
        generated_at=generated_at or datetime.now(UTC).isoformat(timespec="seconds"),
        spec=spec.to_dict(),
        population=population,
        engine=run.engine,
        checks=run.check_reports,
        journey=run.journey,
        metrics=[jsonable(r) for r in run.metrics.to_dict(orient="records")],
        findings=run.findings,
        funnel=run.funnel,
        values=run.values,
        execution=execution,
    )


def report_counts(spec: AuditSpec, parts: list[str]) -> pd.DataFrame | None:
    """What the report counts in a chunked run's decisions parts, as counts of cases per combination of values.

    Of each part only :data:`REPORT_COLUMNS` and the sensitive columns are
    read (text as Arrow dictionaries, no Python string per case), and each
    part is reduced at once to its :func:`audit.execution.combination_counts`;
    the counts are added part by part, so what is held is bounded by the
    number of combinations, not by the number of cases. A run computes the
    same counts in its workers (:attr:`audit.execution.ChunkedRun.report_counts`);
    this reads them back from a finished folder.

    Returns
    -------
    pandas.DataFrame or None
        As :func:`report_frame` returns it; None without parts.
    """
    counted: pd.DataFrame | None = None
    for part in parts:
        schema = pq.read_schema(part)
        columns = report_columns(spec.sensitive_features, schema.names)
        text = [c for c in columns if c != "override" and schema.field(c).type in (pa.string(), pa.large_string())]
        # text is read as Arrow dictionaries, which become categoricals: no Python string per case
        frame = pq.read_table(part, columns=columns, read_dictionary=text).to_pandas()
        counted = add_combination_counts([counted, combination_counts(frame)])
    return None if counted is None else report_frame(counted)


def report_frame(counts: pd.DataFrame) -> pd.DataFrame:
    """Combination counts as the report reads them: text columns as categoricals, ``override`` as booleans."""
    out = counts.copy()
    for col in out.columns:
        if col == CASES_COLUMN:
            out[col] = out[col].astype(np.int64)
        elif col == "override" and out[col].notna().all():
            out[col] = out[col].astype(bool)
        elif col != "override":
            out[col] = out[col].astype("category")
    return out


def _population_inputs(spec: AuditSpec) -> list[Path]:
    """The population's input files, hashed into the manifest as an in-memory run hashes them."""
    pop = spec.population
    if pop.source_kind == "synthetic" and pop.synthetic:
        return [spec.resolve(pop.synthetic)]
    if pop.source_kind == "file" and pop.file:
        return [spec.resolve(pop.file)]
    url = pop.url or ""
    if pop.source_kind == "sql" and url.startswith("duckdb:///"):
        raw = url.removeprefix("duckdb:///")
        db = Path(raw) if Path(raw).is_absolute() else spec.base_dir / raw
        return [db] if db.is_file() else []
    return []


def run_chunked_audit(spec: AuditSpec, *, out: str | Path | None = None, chunk_size: int | None = None,
                      executor: str | None = None, workers: int | None = None, scheduler: str | None = None,
                      run_id: str | None = None, why: str | None = None,
                      annotate: Callable[[AuditResult], AuditResult] | None = None) -> tuple[ChunkedRun, Path]:
    """Run ``spec`` in chunks and write its run folder to ``out/<name>/<run_id>/``.

    Options given here win over the spec's ``execution`` section; a
    ``scheduler`` implies the ``dask`` executor. Default chunk size
    :data:`audit.execution.AUTO_CHUNK_SIZE` (250,000). ``why``, what decided
    to run in chunks (:attr:`audit.execution.ExecutionPlan.why`), goes to
    ``results.json`` ``execution.why``. ``annotate(result) -> result`` is
    applied to the measured result before any document is written, as
    :func:`audit.audit.run_audit` applies it (``insyn monitor`` adds its
    alerts there).

    Returns
    -------
    (ChunkedRun, Path)
        The run and its folder.
    """
    chunk_size, executor, workers, scheduler = chunk_options(spec, chunk_size=chunk_size, executor=executor,
                                                            workers=workers, scheduler=scheduler)
    run_id = run_id or make_run_id(spec)
    base = Path(out) if out is not None else Path.cwd() / "reports"
    final = base / mask(spec.name) / run_id  # the privacy gate: a folder name is a string that leaves Insyn
    tmp = base / mask(spec.name) / f".{run_id}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        run = run_chunked(spec, chunk_size=chunk_size, executor=executor, workers=workers, scheduler=scheduler,
                          out_dir=tmp / "decisions", run_id=run_id, journey_dir=tmp / "journey")
        with (tmp / "lineage.jsonl").open("w", encoding="utf-8") as fh:  # every chunk's events, chunk by chunk
            for part in run.lineage_parts:
                fh.write(Path(part).read_text(encoding="utf-8"))
                Path(part).unlink()
        execution = {"chunks": run.chunks, "chunk_size": chunk_size, "executor": executor,
                     "workers": run.workers or workers, "scheduler": scheduler, "peak_rss_mb": run.peak_rss_mb,
                     "parts": {"decisions": len(run.parts), "journey": len(run.journey_parts)}}
        if why is not None:
            execution["why"] = why
        counts = None if run.report_counts is None else report_frame(run.report_counts)
        result = chunked_result(spec, run, execution=execution, decisions=counts)
        if annotate is not None:
            result = annotate(result)
        checks = [{**r, "gx_result": gx_validation(r, validated_at=result.generated_at)}  # as an in-memory run
                  for r in result.to_dict()["checks"]]
        write_documents(spec, result, tmp, checks=checks)
        names = [n for n in artifacts_for(spec.report.formats) if n != "manifest.json"]
        files = [p for n in names for p in (part_names(tmp, n) if n in PART_FOLDERS else [n])]
        write_manifest(spec, result, tmp, files, input_hashes(spec, _population_inputs(spec)),
                       extra={"execution": execution})
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    run.parts = [str(final / "decisions" / Path(p).name) for p in run.parts]
    run.journey_parts = [str(final / "journey" / Path(p).name) for p in run.journey_parts]
    run.lineage_parts = []
    return run, final
