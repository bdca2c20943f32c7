"""The run folder: the record an audit leaves behind.

Every run writes ``reports/<audit>/<run_id>/`` (DESIGN.md): the report in
HTML and Markdown, the dossier that maps the evidence to the rules
(``dossier.html``, ``dossier.md``), ``results.json`` and ``metrics.csv``,
one row per case in ``decisions.parquet``, the data journey
(``journey.parquet``, the OpenLineage events in ``lineage.jsonl``), the
data-quality reports (``checks.json``) and ``manifest.json``, which names
the spec (and the spec file and folder a re-run resolves paths from), the
seed, the library versions and the SHA-256 of every input and every other
artifact, so that a third party can check that nothing was changed
afterwards (``insyn verify``).

The folder is written to a hidden temporary folder beside it and renamed
when complete, so a reader never sees half a run; a run that fails while
writing leaves nothing behind. When the spec names an OpenLineage endpoint,
the events are also sent there (a dead endpoint warns, it never fails the run).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from audit import report
from audit._json import jsonable
from audit._paths import sha256_file
from audit._version import __version__
from audit.exceptions import DataError
from audit.result import AuditResult
from audit.spec import AuditSpec

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from audit.runner import RunState

__all__ = ["ARTIFACTS", "write_run"]

ARTIFACTS: tuple[str, ...] = (
    "report.html",
    "report.md",
    "dossier.html",
    "dossier.md",
    "results.json",
    "metrics.csv",
    "decisions.parquet",
    "journey.parquet",
    "lineage.jsonl",
    "checks.json",
    "manifest.json",
)
"""Files of a complete run folder (DESIGN.md)."""

_VERSIONED = ("pandas", "numpy", "scipy", "scikit-learn", "fairlearn", "great-expectations",
              "openlineage-python", "duckdb", "pyarrow", "pydantic")
"""Distributions whose versions the manifest records."""


def write_run(
    spec: AuditSpec,
    state: RunState,
    result: AuditResult,
    *,
    out: str | Path | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> AuditResult:
    """Write the run folder of a finished run and return the result with its ``run_dir``.

    Parameters
    ----------
    spec : AuditSpec
        The audit that ran.
    state : RunState
        The run (its final frame, journey and population).
    result : AuditResult
        The run's result, as written to ``results.json``.
    out : str or Path, optional
        Folder that receives ``<name>/<run_id>/`` (default ``reports/`` in
        the current folder).
    progress : callable, optional
        Called as ``progress("record", "start")`` and ``("record", "end")``.

    Returns
    -------
    AuditResult
        ``result``, with ``run_dir`` set to the new folder.

    Raises
    ------
    DataError
        When the run folder already exists.
    """
    root = Path(out) if out is not None else Path.cwd() / "reports"
    parent = root / spec.name
    parent.mkdir(parents=True, exist_ok=True)
    target = parent / result.run_id
    if target.exists():
        raise DataError(f"{target}: the run folder already exists. Expected a new run id.")
    tmp = Path(tempfile.mkdtemp(prefix=f".{result.run_id}.", dir=parent))
    if progress:
        progress("record", "start")
    try:
        _write_artifacts(spec, state, result, tmp)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if progress:
        progress("record", "end")
    object.__setattr__(result, "run_dir", target)
    return result


def _write_artifacts(spec: AuditSpec, state: RunState, result: AuditResult, tmp: Path) -> None:
    """Write every artifact into ``tmp``, the manifest last."""
    journey = state.journey
    (tmp / "results.json").write_text(result.to_json(), encoding="utf-8")
    (tmp / "metrics.csv").write_text(report.render_metrics_csv(result), encoding="utf-8")
    final = state.final
    if final is None:
        final = pd.DataFrame({"case_id": pd.Series(dtype="str"), "status": pd.Series(dtype="str")})
    final.to_parquet(tmp / "decisions.parquet", index=False)
    journey.write_cases(tmp / "journey.parquet")
    journey.write_lineage(tmp / "lineage.jsonl")
    lineage = spec.lineage  # spec, else openlineage.yml / OPENLINEAGE_URL; nothing configured sends nothing
    journey.emit(lineage.url, timeout_s=lineage.timeout_s, api_key=lineage.api_key, transport=lineage.transport,
                 path=spec.resolve(lineage.path) if lineage.path else None)
    gx = {e["step"]: e["gx_result"] for e in state.checks if e.get("gx_result") is not None}
    checks = [{**e, "gx_result": gx[e["step"]]} if e["step"] in gx else e for e in result.to_dict()["checks"]]
    (tmp / "checks.json").write_text(json.dumps(jsonable(checks), indent=2, ensure_ascii=False), encoding="utf-8")
    language = spec.report.language
    (tmp / "report.html").write_text(report.render_html(result, language=language), encoding="utf-8")
    (tmp / "report.md").write_text(report.render_markdown(result, language=language), encoding="utf-8")
    (tmp / "dossier.html").write_text(report.render_dossier_html(result), encoding="utf-8")
    (tmp / "dossier.md").write_text(report.render_dossier_md(result), encoding="utf-8")
    manifest = {
        "run_id": result.run_id,
        "audit": spec.name,
        "seed": spec.seed,
        "spec": spec.to_dict(),
        "spec_file": str(Path(spec.source).resolve()) if spec.source else None,
        "base_dir": str(spec.base_dir),
        "versions": _versions(),
        "platform": {"system": platform.system(), "machine": platform.machine()},
        "inputs": _inputs(spec, state),
        "artifacts": {name: sha256_file(tmp / name) for name in ARTIFACTS if name != "manifest.json"},
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    missing = [a for a in ARTIFACTS if not (tmp / a).is_file()]
    if missing:  # pragma: no cover - guarded by tests
        raise RuntimeError(f"run folder incomplete: {missing}")


def _inputs(spec: AuditSpec, state: RunState) -> dict[str, str]:
    """SHA-256 of every input: the spec file, the population's files, the suites and the engine's file."""
    inputs: dict[str, str] = {}
    if spec.source and Path(spec.source).is_file():
        inputs[str(spec.source)] = sha256_file(spec.source)
    for p in state.population.inputs if state.population is not None else ():
        inputs[str(p)] = sha256_file(p)
    for step in ("intake", "engine_input", "decisions", "final"):
        cfg = getattr(spec.checks, step)
        for s in cfg.suites if cfg else []:
            inputs[s] = sha256_file(spec.resolve(s))
    if spec.engine is not None and spec.engine.path:
        p = spec.resolve(spec.engine.path)
        if p.is_file():
            inputs[spec.engine.path] = sha256_file(p)
    return inputs


def _versions() -> dict[str, str]:
    """Versions of Insyn, Python and the libraries that shape a result."""
    out = {"insyn": __version__, "python": platform.python_version()}
    for dist in _VERSIONED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[dist] = "not installed"
    return out
