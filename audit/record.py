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
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from audit import report
from audit._json import jsonable
from audit._parquet import write_frame
from audit._paths import sha256_each, sha256_file
from audit._background import in_background
from audit._privacy import mask, mask_frame, masked_json
from audit._version import __version__
from audit.attribution import ATTRIBUTION_FILE
from audit.exceptions import DataError
from audit.result import AuditResult
from audit.spec import AuditSpec

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from audit.runner import RunState

__all__ = ["ARTIFACTS", "PART_FOLDERS", "STALE_AFTER_S", "artifacts_for", "clean_stale", "input_hashes", "is_part_name",
           "part_names", "write_documents", "write_manifest", "write_run"]

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

PART_FOLDERS: dict[str, str] = {"decisions.parquet": "decisions", "journey.parquet": "journey"}
"""The artifacts a chunked run writes in parts, and the folder of their parts (``decisions/part-00000.parquet``)."""

_PART = re.compile(r"^(decisions|journey)/part-[0-9]{5}\.parquet$")


def part_names(folder: Path, artifact: str) -> list[str]:
    """The parts of ``artifact`` in a chunked run folder, as run-folder names (``decisions/part-00000.parquet``).

    Empty for an in-memory run folder (which has ``decisions.parquet``
    itself) and for an artifact that is never written in parts.
    """
    sub = PART_FOLDERS.get(artifact)
    if sub is None or not (folder / sub).is_dir():
        return []
    return sorted(f"{sub}/{p.name}" for p in (folder / sub).iterdir() if _PART.match(f"{sub}/{p.name}"))


def is_part_name(name: object) -> bool:
    """True for the run-folder name of a part file (``decisions/part-00000.parquet``, ``journey/part-...``)."""
    return isinstance(name, str) and bool(_PART.match(name))


_FORMAT_ARTIFACTS: dict[str, str] = {"html": "report.html", "md": "report.md", "json": "results.json"}
"""The artifact of each of ``report.formats``; the other artifacts are always written."""


def artifacts_for(formats: Sequence[str]) -> tuple[str, ...]:
    """The files of a complete run folder for the spec's ``report.formats``, in :data:`ARTIFACTS` order.

    ``report.html``, ``report.md`` and ``results.json`` are written only when
    their format (``html``, ``md``, ``json``) is listed; the manifest hashes
    exactly the files written, so a run folder verifies either way.
    """
    left_out = {name for fmt, name in _FORMAT_ARTIFACTS.items() if fmt not in set(formats)}
    return tuple(a for a in ARTIFACTS if a not in left_out)


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
    if root.exists() and not root.is_dir():
        raise DataError(f"--out {mask(str(root))}: this is a file. Expected a folder (or a path that does not exist).")
    parent = root / mask(spec.name)  # the privacy gate: a folder name is a string that leaves Insyn
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError, PermissionError) as exc:
        raise DataError(f"{mask(str(parent))}: cannot create the run folder ({exc.strerror}). "
                        "Expected a writable folder for --out.") from None
    clean_stale(parent)
    target = parent / result.run_id
    if target.exists():
        raise DataError(f"{target}: the run folder already exists. Expected a new run id.")
    tmp = Path(tempfile.mkdtemp(prefix=f".{result.run_id}.", dir=parent))
    (tmp / _OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n", encoding="utf-8")
    if progress:
        progress("record", "start")
    try:
        _write_artifacts(spec, state, result, tmp)
        (tmp / _OWNER).unlink()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if progress:
        progress("record", "end")
    object.__setattr__(result, "run_dir", target)
    return result


_OWNER = ".insyn-writing"
"""A file inside a temporary run folder naming the host and process writing it (removed before the rename)."""

STALE_AFTER_S = 6 * 3600.0
"""A temporary run folder whose writer cannot be checked is removed once it is this old (seconds)."""


def clean_stale(parent: Path) -> list[Path]:
    """Remove temporary run folders left behind by killed runs; return what was removed.

    A run writes ``.<run_id>.<random>/`` beside its final folder and renames
    it when complete. A run that was killed (``SIGKILL``, power loss) cannot
    clean up; the next run in the same folder removes such a folder when the
    process named in its ``.insyn-writing`` file is gone (same host), or when
    it is older than :data:`STALE_AFTER_S`. Folders of runs still writing are
    kept, so concurrent runs (monitors) never remove each other's work.

    Parameters
    ----------
    parent : Path
        ``reports/<audit>/``.
    """
    removed: list[Path] = []
    host = socket.gethostname()
    for folder in parent.glob(".*.*"):
        if not folder.is_dir():
            continue
        owner = folder / _OWNER
        stale = False
        try:
            if owner.is_file():
                who, _, pid = owner.read_text(encoding="utf-8").strip().rpartition(" ")
                stale = who == host and pid.isdigit() and not _alive(int(pid))
            if not stale:
                stale = time.time() - folder.stat().st_mtime > STALE_AFTER_S
        except (OSError, ValueError):
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    """True when a process with this id exists on this host."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _write_json(path: Path, value: object) -> None:
    """Write JSON after the privacy gate (every string masked, keys too)."""
    text = masked_json(jsonable(value), indent=2, allow_nan=False)
    path.write_text(text, encoding="utf-8")


def _write_artifacts(spec: AuditSpec, state: RunState, result: AuditResult, tmp: Path) -> None:
    """Write every artifact into ``tmp``, the manifest last; ``lineage.jsonl`` on the second core where possible."""
    journey = state.journey
    lineage_file = in_background(lambda: journey.write_lineage(tmp / "lineage.jsonl"))  # on the second core
    try:
        expected = _write_files(spec, state, result, tmp)
    except BaseException:
        lineage_file.abandon()
        raise
    lineage_file.wait()
    population = state.population.inputs if state.population is not None else ()
    write_manifest(spec, result, tmp, [n for n in expected if n != "manifest.json"], input_hashes(spec, population))
    missing = [a for a in expected if not (tmp / a).is_file()]
    if missing:  # pragma: no cover - guarded by tests
        raise RuntimeError(f"run folder incomplete: {missing}")


def _write_files(spec: AuditSpec, state: RunState, result: AuditResult, tmp: Path) -> tuple[str, ...]:
    """Write the artifacts other than ``lineage.jsonl`` and the manifest; return the names a folder must have."""
    journey = state.journey
    expected = artifacts_for(spec.report.formats)
    final = state.final
    if final is None:
        final = pd.DataFrame({"case_id": pd.Series(dtype="str"), "status": pd.Series(dtype="str")})
    write_frame(mask_frame(final), tmp / "decisions.parquet")
    journey.write_cases(tmp / "journey.parquet")
    if state.attribution is not None:  # each case's decision under every coalition of stages (insyn trace)
        write_frame(mask_frame(state.attribution.frame()), tmp / ATTRIBUTION_FILE)
        expected = (*expected, ATTRIBUTION_FILE)
    lineage = spec.lineage  # spec, else openlineage.yml / OPENLINEAGE_URL; nothing configured sends nothing
    journey.emit(lineage.url, timeout_s=lineage.timeout_s, api_key=lineage.api_key, transport=lineage.transport,
                 path=spec.resolve(lineage.path) if lineage.path else None)
    gx = {e["step"]: e["gx_result"] for e in state.checks if e.get("gx_result") is not None}
    checks = [{**e, "gx_result": gx[e["step"]]} if e["step"] in gx else e for e in result.plain["checks"]]
    write_documents(spec, result, tmp, checks=checks)
    return expected


def write_documents(spec: AuditSpec, result: AuditResult, folder: Path, *,
                    checks: Sequence[Mapping[str, Any]] | None = None) -> None:
    """Write what a run folder says of a result: results, metrics, checks, the report and the dossier.

    ``results.json`` (when ``report.formats`` lists ``json``),
    ``metrics.csv``, ``checks.json``, ``report.html`` and ``report.md``
    (when listed, in ``report.language``), ``dossier.html`` and
    ``dossier.md``, every one through the privacy gate. An in-memory run and
    a chunked run (:mod:`audit.chunked`) write them with this one function.
    The reports are rendered by a forked child on the other core where that
    is safe (:func:`audit._background.in_background`; redone here when the
    child fails), while this process writes the rest.

    Parameters
    ----------
    spec : AuditSpec
        The audit that ran.
    result : AuditResult
        The run's result.
    folder : Path
        The (temporary) run folder.
    checks : sequence of dict, optional
        What ``checks.json`` holds (default: the result's check reports).
    """
    formats = set(spec.report.formats)

    def write_reports() -> None:
        for kind, text in report.render_reports(result, formats, language=spec.report.language).items():
            (folder / f"report.{kind}").write_text(mask(text), encoding="utf-8")

    reports = in_background(write_reports)  # the reports on the other core, the rest here
    try:
        if "json" in formats:
            _write_json(folder / "results.json", result.plain)
        (folder / "metrics.csv").write_text(mask(report.render_metrics_csv(result)), encoding="utf-8")
        _write_json(folder / "checks.json", list(checks) if checks is not None else result.plain["checks"])
        (folder / "dossier.html").write_text(mask(report.render_dossier_html(result)), encoding="utf-8")
        (folder / "dossier.md").write_text(mask(report.render_dossier_md(result)), encoding="utf-8")
    except BaseException:
        reports.abandon()
        raise
    reports.wait()


def write_manifest(spec: AuditSpec, result: AuditResult, folder: Path, artifacts: Sequence[str],
                   inputs: Mapping[str, str], *, extra: Mapping[str, Any] | None = None) -> None:
    """Write ``manifest.json``: the spec, seed, versions, input hashes and the SHA-256 of every artifact.

    Parameters
    ----------
    spec, result
        The audit and its result.
    folder : Path
        The run folder, with every artifact already written.
    artifacts : sequence of str
        The files to hash, relative to ``folder`` (a chunked run's parts as
        ``decisions/part-00000.parquet``).
    inputs : mapping
        Input path -> SHA-256 (:func:`input_hashes`).
    extra : mapping, optional
        Further keys (a chunked run's ``execution``).
    """
    manifest = {
        "run_id": result.run_id,
        "audit": spec.name,
        "seed": spec.seed,
        "spec": spec.to_dict(),
        "spec_file": str(Path(spec.source).resolve()) if spec.source else None,
        "base_dir": str(spec.base_dir),
        "versions": _versions(),
        "platform": {"system": platform.system(), "machine": platform.machine()},
        "inputs": dict(inputs),
        "artifacts": dict(zip(artifacts, sha256_each(folder / name for name in artifacts), strict=True)),
        **dict(extra or {}),
    }
    _write_json(folder / "manifest.json", manifest)


def input_hashes(spec: AuditSpec, population: Sequence[str | Path] = ()) -> dict[str, str]:
    """SHA-256 of every input: the spec file, the population's files, the suites and the engine's file."""
    inputs: dict[str, str] = {}
    if spec.source and Path(spec.source).is_file():
        inputs[str(spec.source)] = sha256_file(spec.source)
    for p in population:
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
