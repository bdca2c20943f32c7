"""Run an audit in chunks and write its run folder (``insyn run --chunk-size`` / the spec's ``execution:``).

A registry extract or a national panel of millions of cases does not fit in
memory as one frame. :func:`audit.execution.run_chunked` runs the row-level
steps per chunk on an executor (this process, local processes, or a Dask
cluster) and measures once from the summed group statistics; this module
turns that into a run folder, written to a temporary folder and renamed when
complete:

``decisions/part-00000.parquet`` ...
    the final frame of every chunk (one row per case, as ``decisions.parquet``
    of an in-memory run, in parts);
``metrics.csv``
    the metric table (identical to the in-memory run's for the same cases);
``results.json``
    ``insyn_version``, ``run_id``, ``generated_at``, ``spec``, ``execution``
    (chunks, executor, workers), ``population`` (rows, status counts),
    ``checks`` (merged across chunks, see :mod:`audit.execution`),
    ``metrics``, ``findings`` and ``timings``.

``journey/part-00000.parquet`` ...
    each chunk's journey (the rows ``journey.parquet`` of an in-memory run
    holds, in parts);
``lineage.jsonl``
    the OpenLineage events of every chunk, chunk by chunk (each chunk is one
    OpenLineage run of the job).

A chunked run folder has no HTML/Markdown report, dossier, ``checks.json``
or manifest yet: the report is rendered from one whole-run result, which a
chunked run does not assemble (its journey step summaries and check entries
would have to be merged into that form first); run the same spec in memory
for those.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit._json import jsonable
from audit._version import __version__
from audit.execution import ChunkedRun, run_chunked
from audit.runner import make_run_id
from audit.spec import AuditSpec

__all__ = ["run_chunked_audit"]


def run_chunked_audit(spec: AuditSpec, *, out: str | Path | None = None, chunk_size: int | None = None,
                      executor: str | None = None, workers: int | None = None, scheduler: str | None = None,
                      run_id: str | None = None) -> tuple[ChunkedRun, Path]:
    """Run ``spec`` in chunks and write its run folder to ``out/<name>/<run_id>/``.

    Options given here win over the spec's ``execution`` section; a
    ``scheduler`` implies the ``dask`` executor. Default chunk size 250,000.

    Returns
    -------
    (ChunkedRun, Path)
        The run and its folder.
    """
    ex = spec.execution
    chunk_size = chunk_size or (ex.chunk_size if ex else None) or 250_000
    scheduler = scheduler or (ex.scheduler if ex else None)
    executor = "dask" if scheduler else (executor or (ex.executor if ex else "processes"))
    workers = workers or (ex.workers if ex else None)
    run_id = run_id or make_run_id(spec)
    base = Path(out) if out is not None else Path.cwd() / "reports"
    final = base / spec.name / run_id
    tmp = base / spec.name / f".{run_id}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        run = run_chunked(spec, chunk_size=chunk_size, executor=executor, workers=workers, scheduler=scheduler,
                          out_dir=tmp / "decisions", run_id=run_id, journey_dir=tmp / "journey")
        run.metrics.to_csv(tmp / "metrics.csv", index=False)
        with (tmp / "lineage.jsonl").open("w", encoding="utf-8") as fh:  # every chunk's events, chunk by chunk
            for part in run.lineage_parts:
                fh.write(Path(part).read_text(encoding="utf-8"))
                Path(part).unlink()
        results: dict[str, Any] = {
            "insyn_version": __version__,
            "run_id": run_id,
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "spec": spec.to_dict(),
            "execution": {"chunks": run.chunks, "chunk_size": chunk_size, "executor": executor,
                          "workers": workers, "scheduler": scheduler},
            "population": {"rows": run.rows, "status": run.status_counts},
            "checks": run.checks,
            "metrics": [jsonable(r) for r in run.metrics.to_dict(orient="records")],
            "findings": run.findings,
            **({"funnel": run.funnel} if run.funnel is not None else {}),
            "timings": run.timings,
        }
        (tmp / "results.json").write_text(json.dumps(jsonable(results), indent=2, ensure_ascii=False,
                                                     allow_nan=False, default=str))
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    run.parts = [str(final / "decisions" / Path(p).name) for p in run.parts]
    run.journey_parts = [str(final / "journey" / Path(p).name) for p in run.journey_parts]
    run.lineage_parts = []
    return run, final
