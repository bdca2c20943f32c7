"""Repeating a run from its manifest and comparing every metric row.

Same spec and seed, same ``results.json`` (apart from run metadata): that is
the promise a third party checks with ``insyn verify --rerun``. The spec in
the manifest is run again through the same path as ``Audit.run``
(:func:`audit.audit.run_audit` with ``write=False``, the same run id), with its paths
resolved against the folder the original spec was read from
(``manifest["base_dir"]``) or, for a bundle, against the unpacked copies of
its inputs. Every metric row of the new run is compared with the recorded
row of the same metric, attributes and group, field by field: numbers equal
within a relative tolerance of 1e-9 (floating-point noise between machines),
everything else exactly. A row present on one side only is a difference too.
"""

from __future__ import annotations

import json
import math
import platform
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from audit._version import __version__
from audit.audit import run_audit
from audit.exceptions import DataError
from audit.spec import AuditSpec

__all__ = ["DIFFERENCE_COLUMNS", "compare_metrics", "rerun_metrics", "version_notes"]

DIFFERENCE_COLUMNS: tuple[str, ...] = ("metric", "attributes", "group", "field", "recorded", "rerun")
"""Columns of the table of differences."""

ROW_FIELD = "(row)"
"""The ``field`` of a difference that is a whole row present on one side only."""


def _key(row: Mapping[str, Any]) -> tuple[str, tuple[str, ...], str]:
    attrs = row.get("attributes") or []
    return (str(row.get("metric")), tuple(str(a) for a in attrs), str(row.get("group")))


def _keyed(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[Any, ...], Mapping[str, Any]]:
    seen: Counter[tuple[str, tuple[str, ...], str]] = Counter()
    out = {}
    for r in rows:
        k = _key(r)
        out[(*k, seen[k])] = r
        seen[k] += 1
    return out


def _same(a: Any, b: Any, rel_tol: float) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=1e-12)
    return a == b


def compare_metrics(
    recorded: Sequence[Mapping[str, Any]],
    rerun: Sequence[Mapping[str, Any]],
    *,
    rel_tol: float = 1e-9,
) -> pd.DataFrame:
    """Compare two lists of metric rows (as in ``results.json``) field by field.

    Parameters
    ----------
    recorded, rerun : sequence of mapping
        The rows of the recorded run and of the re-run.
    rel_tol : float, default 1e-9
        Relative tolerance for numbers.

    Returns
    -------
    pandas.DataFrame
        One row per difference, columns :data:`DIFFERENCE_COLUMNS`;
        ``attributes`` joined with ``" & "``; empty when every row matches.
    """
    a, b = _keyed(recorded), _keyed(rerun)
    out = []
    for key in list(a) + [k for k in b if k not in a]:
        metric, attrs, group, _ = key
        where = {"metric": metric, "attributes": " & ".join(attrs), "group": group}
        if key not in b:
            out.append({**where, "field": ROW_FIELD, "recorded": "present", "rerun": "missing"})
            continue
        if key not in a:
            out.append({**where, "field": ROW_FIELD, "recorded": "missing", "rerun": "present"})
            continue
        ra, rb = a[key], b[key]
        for field in list(ra) + [f for f in rb if f not in ra]:
            va, vb = ra.get(field), rb.get(field)
            if not _same(va, vb, rel_tol):
                out.append({**where, "field": field, "recorded": va, "rerun": vb})
    return pd.DataFrame(out, columns=list(DIFFERENCE_COLUMNS))


def _set(spec: dict[str, Any], key: Sequence[str | int], value: str) -> None:
    node: Any = spec
    for part in key[:-1]:
        node = node[part]
    node[key[-1]] = value


def rerun_metrics(
    manifest: Mapping[str, Any],
    *,
    base_dir: str | Path,
    replace: Sequence[tuple[Sequence[str | int], str]] = (),
    source: str = "manifest.json",
) -> list[dict[str, Any]]:
    """Run the manifest's spec again (nothing written) and return its metric rows as in ``results.json``.

    Parameters
    ----------
    manifest : mapping
        The run's manifest.
    base_dir : str or Path
        The folder relative paths of the spec resolve against.
    replace : sequence of (key path, value)
        Spec values to replace first (paths of unpacked bundle inputs).
    source : str
        Shown in error messages about the spec.

    Raises
    ------
    DataError
        When the manifest has no spec or the folder does not exist.
    """
    spec = manifest.get("spec")
    if not isinstance(spec, Mapping):
        raise DataError(f"{source}: has no spec, so the run cannot be repeated.")
    folder = Path(base_dir)
    if not folder.is_dir():
        raise DataError(f"{source}: the spec's folder {folder} does not exist here, so the run cannot be repeated. "
                        "Expected the machine the run was made on, or a bundle (insyn bundle) to verify instead.")
    data = json.loads(json.dumps(spec))
    for key, value in replace:
        _set(data, key, value)
    spec = AuditSpec.from_dict(data, base_dir=folder, source=source)
    result = run_audit(spec, write=False, run_id=str(manifest.get("run_id") or "rerun"))
    return list(json.loads(result.to_json())["metrics"])


def _installed(dist: str) -> str:
    if dist == "insyn":
        return __version__
    if dist == "python":
        return platform.python_version()
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def version_notes(manifest: Mapping[str, Any]) -> list[str]:
    """A note per library whose installed version differs from the run's (a re-run may then differ)."""
    versions = manifest.get("versions") or {}
    notes = []
    for dist, was in versions.items():
        now = _installed(str(dist))
        if str(was) != now:
            notes.append(f"re-run with {dist} {now}; the run used {was}")
    return notes
