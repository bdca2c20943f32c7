"""Keeping the log of monitoring runs for the retention period, then pruning it.

The log of a run is its data journey (``journey.parquet``: every case at
every step) and its lineage (``lineage.jsonl``: OpenLineage events). A
deployer of a high-risk AI system keeps the logs for at least six months
(AI Act Art. 26(6)); a log that holds a row per applicant is personal data,
which is kept no longer than needed. ``insyn monitor`` therefore keeps the
log of each of its runs for ``monitor.retention_days`` (default 184 days,
the longest six calendar months; ``null`` keeps it for ever) and then prunes
it: :func:`prune_logs` first records the pruning in the run's manifest (an
amendment with the files' SHA-256, the time, who and why; see
:mod:`audit.evidence._manifest`), then removes the files. The rest of the
run folder (reports, results, metrics, decisions, checks, dossier) stays,
and ``insyn verify`` accepts the folder, reporting what was pruned and when.

A run's age is counted from ``generated_at`` in its ``results.json``; a run
that cannot be dated, or whose manifest belongs to another audit, is never
touched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from audit.evidence._manifest import amend_manifest, read_manifest
from audit.exceptions import DataError
from audit.record import part_names

__all__ = ["LOG_FILES", "PrunedRun", "prune_logs"]

LOG_FILES: tuple[str, ...] = ("journey.parquet", "lineage.jsonl")
"""The files of a run folder that form its log."""


@dataclass(frozen=True)
class PrunedRun:
    """The log of one run, pruned.

    Attributes
    ----------
    run_id : str
        The run.
    run_dir : Path
        Its folder.
    made_at : datetime
        When the run was made.
    files : tuple of str
        The files removed.
    bytes : int
        Their total size.
    """

    run_id: str
    run_dir: Path
    made_at: datetime
    files: tuple[str, ...]
    bytes: int

    def line(self, audit: str, retention_days: int) -> str:
        """One line for the command line's output."""
        return (f"PRUNED {audit} {self.run_id}: {', '.join(self.files)} ({self.bytes:,} bytes; run of "
                f"{self.made_at:%Y-%m-%d}, older than the retention of {retention_days} days)")

    def to_dict(self) -> dict[str, object]:
        """A JSON-safe form."""
        return {"run_id": self.run_id, "run_dir": str(self.run_dir), "made_at": self.made_at.isoformat(),
                "files": list(self.files), "bytes": self.bytes}


def _made_at(run_dir: Path) -> datetime | None:
    try:
        data = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
        made = datetime.fromisoformat(str(data["generated_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return made if made.tzinfo is not None else made.replace(tzinfo=UTC)


def prune_logs(
    parent: str | Path,
    *,
    audit: str,
    retention_days: int | None,
    now: datetime | None = None,
    keep: Iterable[str] = (),
    by: str = "insyn monitor",
) -> tuple[PrunedRun, ...]:
    """Prune the logs of an audit's runs older than the retention period.

    Parameters
    ----------
    parent : str or Path
        The folder that holds the audit's run folders (``reports/<audit>``).
        A missing folder prunes nothing.
    audit : str
        The audit's name; run folders whose manifest names another audit are
        left alone.
    retention_days : int or None
        Days a log is kept; None keeps it for ever.
    now : datetime, optional
        The time to count from (default: now, UTC).
    keep : iterable of str
        Run ids never to prune (the run just made).
    by : str
        Who prunes, for the manifest's amendment.

    Returns
    -------
    tuple of PrunedRun
        Oldest first.

    Raises
    ------
    DataError
        For a retention period that is not a positive number of days.
    """
    if retention_days is None:
        return ()
    if isinstance(retention_days, bool) or not isinstance(retention_days, int) or retention_days < 1:
        raise DataError(f"retention_days must be a whole number of days >= 1, or None. Got {retention_days!r}.")
    folder = Path(parent)
    if not folder.is_dir():
        return ()
    now = now or datetime.now(UTC)
    limit = timedelta(days=retention_days)
    skip = set(keep)
    pruned = []
    for run_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            manifest = read_manifest(run_dir)
        except DataError:
            continue
        if manifest.get("audit") != audit or str(manifest.get("run_id")) in skip:
            continue
        made = _made_at(run_dir)
        if made is None or now - made <= limit:
            continue
        logs = [p for name in LOG_FILES for p in [name, *part_names(run_dir, name)]]  # a chunked run: its parts
        files = [name for name in logs if (run_dir / name).is_file() and name in manifest["artifacts"]]
        if not files:
            continue
        size = sum((run_dir / name).stat().st_size for name in files)
        amend_manifest(run_dir, by=by, pruned=files, now=now,
                       reason=f"retention: the log is kept for {retention_days} days (monitor.retention_days)")
        for name in files:
            (run_dir / name).unlink()
        pruned.append(PrunedRun(run_id=str(manifest.get("run_id")), run_dir=run_dir, made_at=made,
                                files=tuple(files), bytes=size))
    return tuple(sorted(pruned, key=lambda r: r.made_at))
