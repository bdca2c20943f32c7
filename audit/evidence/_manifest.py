"""The manifest of a run folder, and the only two ways it may change after the run.

``manifest.json`` records the spec, the seed, the versions and the SHA-256
of every input and artifact of a run. It is written once, last, when the run
folder is complete. Two later events legitimately change a run folder, and
each is recorded in the manifest as an *amendment* instead of going unseen:

* ``insyn monitor`` adds ``alerts.json`` to the run it just made (*added*:
  the file's SHA-256 joins ``artifacts``);
* retention: after ``monitor.retention_days`` the monitor prunes the log of
  an old run (``journey.parquet``, ``lineage.jsonl``; *pruned*: their
  SHA-256 stays in ``artifacts`` and the amendment says when, why and by
  whom they were removed).

An amendment is ``{at, by, reason, added: {name: sha256}, pruned: {name:
sha256}}``; amendments are appended in order under ``amendments``. The
manifest is rewritten atomically (a temporary file, then a rename).
Verification accepts a missing file only when an amendment pruned it.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit._paths import sha256_file
from audit.evidence._source import is_plain_name
from audit.exceptions import DataError

__all__ = ["MANIFEST", "amend_manifest", "pruned_files", "read_manifest"]

MANIFEST = "manifest.json"
"""The manifest's file name in a run folder."""


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """Read ``manifest.json`` of a run folder.

    Raises
    ------
    DataError
        When the file is missing, is not JSON, or has no ``artifacts``
        mapping; the message names the file.
    """
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise DataError(f"{path}: no such file. Expected the manifest of a run folder written by insyn run.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}). Expected the manifest of a run folder.") from None
    if not isinstance(data, dict) or not isinstance(data.get("artifacts"), dict):
        raise DataError(f"{path}: has no 'artifacts' mapping of file names to SHA-256. Expected a run manifest.")
    return data


def pruned_files(manifest: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The files that an amendment pruned: file name -> the amendment that pruned it."""
    out: dict[str, Mapping[str, Any]] = {}
    for amendment in manifest.get("amendments") or []:
        if isinstance(amendment, Mapping) and isinstance(amendment.get("pruned"), Mapping):
            for name in amendment["pruned"]:
                out[str(name)] = amendment
    return out


def amend_manifest(
    run_dir: str | Path,
    *,
    by: str,
    reason: str,
    added: Sequence[str] = (),
    pruned: Sequence[str] = (),
    now: datetime | None = None,
) -> dict[str, Any]:
    """Record files added to or pruned from a run folder after the run, in its manifest.

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    by : str
        Who changes the folder (``"insyn monitor"``).
    reason : str
        Why, in a sentence.
    added : sequence of str
        Files now in the folder that the manifest does not list; their
        SHA-256 joins ``artifacts``.
    pruned : sequence of str
        Listed files about to be removed; call this *before* removing them,
        so that a crash in between leaves an intact file, never an
        unexplained gap.
    now : datetime, optional
        The time of the amendment (default: now, UTC).

    Returns
    -------
    dict
        The amendment recorded.

    Raises
    ------
    DataError
        For a name that is not a plain file name, an added file that does not
        exist or is already listed, or a pruned file that is not listed.
    """
    folder = Path(run_dir)
    manifest = read_manifest(folder)
    artifacts: dict[str, str] = manifest["artifacts"]
    amendment: dict[str, Any] = {
        "at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "by": by,
        "reason": reason,
        "added": {},
        "pruned": {},
    }
    for name in added:
        if not is_plain_name(name) or not (folder / name).is_file():
            raise DataError(f"{folder / str(name)}: no such file to add to the manifest.")
        if name in artifacts or name == MANIFEST:
            raise DataError(f"{folder / name}: the manifest lists this file already. Expected a new file.")
        digest = sha256_file(folder / name)
        artifacts[name] = digest
        amendment["added"][name] = digest
    for name in pruned:
        if name not in artifacts:
            raise DataError(f"{folder / str(name)}: the manifest does not list this file, so it cannot be pruned.")
        amendment["pruned"][name] = artifacts[name]
    manifest.setdefault("amendments", []).append(amendment)
    path = folder / MANIFEST
    tmp = folder / f".{MANIFEST}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return amendment
