"""Running a study: expand the design, check every point, run what is not done, summarise.

:func:`run_study` is the whole of ``insyn study``. It first builds the audit
of every point and checks it (factor values the audit spec refuses, paths
that do not exist, bias knobs the population does not have), so that a bad
study is refused with a :class:`~audit.exceptions.SpecError` before any run
starts. It then submits the runs that have no file in ``runs/`` yet to one
executor of :mod:`audit.execution` (local processes by default, a Dask
cluster when asked) and writes each run's table as it finishes. A failing
run is recorded with its error and the study goes on. At the end it writes
``study.parquet``, ``power.csv`` (and ``failures.csv``) and ``study.html``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from audit._paths import resolve_path
from audit.exceptions import SpecError
from audit.execution import TaskFailure, open_executor
from audit.study._design import Point, RunTask, derive_seed, expand_points, run_key
from audit.study._folder import StudyFolder
from audit.study._page import write_page
from audit.study._power import power_table
from audit.study._run import build_audit
from audit.study._run import run_task as _default_task
from audit.study_spec import PATH_KEYS, StudySpec, load_study_spec
from audit.synth import load_population_spec

__all__ = ["StudyProgress", "StudyResult", "plan_study", "run_study"]

StudyProgress = Callable[[int, int, str, bool], None]
"""Called as ``progress(done, total, run_key, failed)`` after each run (and once at the start with run_key "")."""


@dataclass(frozen=True)
class StudyResult:
    """What a study did: its folder, the number of runs, and the failed runs with their errors."""

    out: Path
    total: int
    skipped: int
    finished: int
    failures: tuple[tuple[str, str], ...] = field(default=())
    duration_s: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 when every run finished, 1 when some failed."""
        return 1 if self.failures else 0


def plan_study(study: StudySpec) -> tuple[list[Point], list[RunTask], dict[str, Any]]:
    """Expand a study into its points and runs and check every point's audit.

    Returns
    -------
    (points, tasks, manifest)

    Raises
    ------
    SpecError
        For the first point whose audit is invalid, naming the study file,
        the point and its factor levels.
    """
    audit, base_dir, source = study.base_audit()
    points = expand_points(study)
    tasks: list[RunTask] = []
    for point in points:
        probe = RunTask(key=run_key(point.index, 0), point=point.index, replicate=0, seed=0,
                        levels=point.levels, audit=audit, base_dir=str(base_dir), source=source)
        where = ", ".join(f"{k}={v!r}" for k, v in point.levels.items())
        try:
            spec = build_audit(probe)
        except SpecError as exc:
            raise SpecError(f"{study.source}: the audit of point {point.name} ({where}) is invalid:\n{exc}") from None
        for key, value in point.levels.items():
            if key.rsplit(".", 1)[-1] in PATH_KEYS and isinstance(value, str):
                if not resolve_path(value, base_dir).exists():
                    raise SpecError(f"{study.source}: factors.{key} must name an existing file. Got {value!r} "
                                    f"(point {point.name}), which does not exist under {base_dir}.")
        pop = spec.population
        if pop.synthetic is not None and pop.bias:
            model = load_population_spec(spec.resolve(pop.synthetic))
            model.resolve_bias(dict(pop.bias), source=f"{study.source}: point {point.name} ({where}): population")
        for r in range(study.replicates):
            tasks.append(RunTask(key=run_key(point.index, r), point=point.index, replicate=r,
                                 seed=derive_seed(study.seed, point.index, r), levels=point.levels, audit=audit,
                                 base_dir=str(base_dir), source=source))
    design = {"study": {k: v for k, v in study.to_dict().items() if k not in ("executor", "workers", "scheduler")},
              "audit": audit, "points": [p.levels for p in points],
              "seeds": [[t.key, t.seed] for t in tasks]}
    key = hashlib.sha256(json.dumps(design, sort_keys=True, default=str).encode()).hexdigest()
    manifest = {"name": study.name, "design_key": key, "factors": list(study.factors), "runs": len(tasks),
                "points": [{"point": p.name, **p.levels} for p in points], **design}
    return points, tasks, manifest


def run_study(
    study: StudySpec | str | Path,
    *,
    out: str | Path | None = None,
    executor: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: StudyProgress | None = None,
    task: Callable[[RunTask], pd.DataFrame] | None = None,
) -> StudyResult:
    """Run a study (or resume it) and write its folder.

    Parameters
    ----------
    study : StudySpec or path
        The study, or its YAML file.
    out : str or Path, optional
        The study folder (default ``studies/<name>`` in the current folder).
    executor : {"processes", "inprocess", "dask"}, optional
        Overrides the spec's ``executor``; a ``scheduler`` implies ``dask``.
    workers : int, optional
        Overrides the spec's ``workers``.
    scheduler : str, optional
        A dask scheduler address (overrides the spec's).
    progress : callable, optional
        See :data:`StudyProgress`.
    task : callable, optional
        The function run for each run (default :func:`audit.study.run_task`);
        must be a picklable module-level function for process and Dask executors.

    Returns
    -------
    StudyResult

    Raises
    ------
    SpecError
        For a bad study spec, before any run starts.
    """
    spec = study if isinstance(study, StudySpec) else load_study_spec(study)
    points, tasks, manifest = plan_study(spec)
    folder = StudyFolder(out if out is not None else Path("studies") / spec.name)
    folder.prepare(manifest)
    done = folder.finished()
    todo = {t.key: t for t in tasks if t.key not in done}
    kind = "dask" if (scheduler or spec.scheduler) else (executor or spec.executor)
    started = time.perf_counter()
    failures: dict[str, str] = {}
    count = len(tasks) - len(todo)
    if progress is not None:
        progress(count, len(tasks), "", False)
    if todo:
        with open_executor(kind, workers=workers or spec.workers, scheduler=scheduler or spec.scheduler) as ex:
            for key, value in ex.imap(task or _default_task, todo):
                count += 1
                if isinstance(value, TaskFailure):
                    failures[str(key)] = value.error
                    folder.write_error(str(key), {"run": key, "error": value.error, "traceback": value.traceback,
                                                  "levels": todo[str(key)].levels, "seed": todo[str(key)].seed})
                else:
                    folder.write_run(str(key), value)
                if progress is not None:
                    progress(count, len(tasks), str(key), isinstance(value, TaskFailure))
    # earlier failures that were not retried successfully stay failures
    for t in tasks:
        if t.key not in failures and folder.error_path(t.key).is_file() and not folder.run_path(t.key).is_file():
            failures[t.key] = json.loads(folder.error_path(t.key).read_text(encoding="utf-8")).get("error", "")
    frame = folder.combine()
    factors = list(spec.factors)
    power = power_table(frame, factors) if len(frame) else power_table(pd.DataFrame(), factors)
    StudyFolder.write_text(folder.root / "power.csv", power.to_csv(index=False))
    fail_path = folder.root / "failures.csv"
    if failures:
        table = pd.DataFrame(sorted(failures.items()), columns=["run", "error"])
        StudyFolder.write_text(fail_path, table.to_csv(index=False))
    else:
        fail_path.unlink(missing_ok=True)
    write_page(folder.root / "study.html", spec, frame, power, failures=failures)
    return StudyResult(out=folder.root, total=len(tasks), skipped=len(tasks) - len(todo),
                       finished=len(folder.finished()), failures=tuple(sorted(failures.items())),
                       duration_s=time.perf_counter() - started)
