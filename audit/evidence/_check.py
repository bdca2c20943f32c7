"""Checking one run's files against its manifest and the results schema.

A run folder is intact when

* ``manifest.json`` is there and readable, and lists every artifact a run
  folder has for the spec's ``report.formats`` (:func:`audit.record.artifacts_for`;
  a chunked run lists the parts of its decisions and journey instead,
  ``decisions/part-00000.parquet`` ...);
* every listed file is there with the SHA-256 the manifest records, unless
  an amendment of the manifest pruned it under the retention rule (then it
  is reported as pruned, with when and why), or a bundle withheld it as
  personal data (then the bundle records its SHA-256 and the reason);
* no other file is there: a file added after the run is not evidence;
* ``results.json`` matches ``audit/schemas/results.schema.json`` (JSON
  Schema draft 2020-12, formats checked) and names the manifest's run.

Each failure is a :class:`Problem` that names the file and says what was
expected and what was found; a reader gets all of them at once, not the
first only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from audit.evidence._manifest import MANIFEST, pruned_files
from audit.evidence._source import Source, is_run_name
from audit.record import ARTIFACTS, PART_FOLDERS, artifacts_for

__all__ = ["Problem", "check_results_schema", "check_run", "results_schema"]

_MAX_SCHEMA_ERRORS = 5


@dataclass(frozen=True)
class Problem:
    """One way in which evidence is incomplete or was changed.

    Attributes
    ----------
    file : str
        The file concerned, as a reader finds it (a path, or a name in a bundle).
    reason : str
        What was expected and what was found.
    """

    file: str
    reason: str

    def line(self) -> str:
        """``<file>: <reason>``."""
        return f"{self.file}: {self.reason}"


@cache
def results_schema() -> dict[str, Any]:
    """The JSON schema of ``results.json`` shipped with Insyn."""
    text = resources.files("audit").joinpath("schemas", "results.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def check_results_schema(data: Any, where: str) -> list[Problem]:
    """Validate parsed ``results.json`` against the schema; at most five problems, by location."""
    validator = Draft202012Validator(results_schema(), format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    out = []
    for err in errors[:_MAX_SCHEMA_ERRORS]:
        at = "/".join(str(p) for p in err.absolute_path) or "(the top level)"
        out.append(Problem(where, f"does not match the results schema at {at}: {err.message}"))
    if len(errors) > _MAX_SCHEMA_ERRORS:
        out.append(Problem(where, f"… and {len(errors) - _MAX_SCHEMA_ERRORS} more schema errors"))
    return out


def check_run(
    src: Source,
    *,
    withheld: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any] | None, list[Problem], list[str], int]:
    """Check a run's files against its manifest and the schema.

    Parameters
    ----------
    src : Source
        The run folder or the run in a bundle.
    withheld : mapping, optional
        Artifact name -> ``{sha256, reason}`` for files a bundle left out on
        purpose (personal data).

    Returns
    -------
    (manifest or None, problems, notes, files checked)
    """
    problems: list[Problem] = []
    notes: list[str] = []
    withheld = withheld or {}
    if not src.exists(MANIFEST):
        return None, [Problem(src.where(MANIFEST), "missing: the run folder is incomplete (no manifest)")], notes, 0
    try:
        manifest = json.loads(src.read(MANIFEST))
    except (ValueError, UnicodeDecodeError) as exc:
        return None, [Problem(src.where(MANIFEST), f"not valid JSON ({exc})")], notes, 0
    artifacts = manifest.get("artifacts") if isinstance(manifest, dict) else None
    if not isinstance(artifacts, dict):
        return None, [Problem(src.where(MANIFEST), "has no 'artifacts' mapping of file names to SHA-256")], notes, 0
    pruned = pruned_files(manifest)
    parted = {name.partition("/")[0] for name in artifacts if "/" in name}
    report = ((manifest.get("spec") or {}).get("report") or {}) if isinstance(manifest.get("spec"), dict) else {}
    formats = report.get("formats") if isinstance(report, dict) else None
    required = artifacts_for(formats) if isinstance(formats, list) else ARTIFACTS  # report.formats leaves some out
    for name in required:
        if name in PART_FOLDERS and PART_FOLDERS[name] in parted:  # a chunked run lists its parts instead
            continue
        if name != MANIFEST and name not in artifacts:
            problems.append(Problem(src.where(name), "not listed in manifest.json: the run folder is incomplete or "
                                                     "the manifest was altered"))
    checked = 0
    for name, digest in artifacts.items():
        if not is_run_name(name):
            problems.append(Problem(src.where(MANIFEST), f"lists {name!r}, which is not a plain file name or a "
                                                         "chunked run's part (decisions/part-00000.parquet)"))
            continue
        if name in withheld:
            recorded = str(withheld[name].get("sha256") or "")
            if recorded != digest:
                problems.append(Problem(src.where(name), f"withheld from the bundle, but the bundle's SHA-256 "
                                                         f"{recorded[:12]}… differs from the manifest's "
                                                         f"{str(digest)[:12]}…"))
            else:
                notes.append(f"{src.where(name)}: withheld from the bundle ({withheld[name].get('reason')}); "
                             f"SHA-256 {digest[:12]}… recorded")
            continue
        if not src.exists(name):
            if name in pruned:
                amendment = pruned[name]
                notes.append(f"{src.where(name)}: pruned on {amendment.get('at')} by {amendment.get('by')} "
                             f"({amendment.get('reason')})")
            else:
                problems.append(Problem(src.where(name), "missing: the manifest lists it, but it is not there"))
            continue
        actual = src.sha256(name)
        checked += 1
        if actual != digest:
            problems.append(Problem(src.where(name), f"changed: its SHA-256 is {actual[:16]}…, the manifest "
                                                     f"records {str(digest)[:16]}…"))
    listed = set(artifacts) | {MANIFEST}
    for name in src.names():
        if name not in listed:
            problems.append(Problem(src.where(name), "not listed in manifest.json: added after the run"))
    if src.exists("results.json") and "results.json" not in withheld:
        try:
            results = json.loads(src.read("results.json"))
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(Problem(src.where("results.json"), f"not valid JSON ({exc})"))
        else:
            problems += check_results_schema(results, src.where("results.json"))
            if isinstance(results, dict) and results.get("run_id") != manifest.get("run_id"):
                problems.append(Problem(src.where("results.json"), f"names the run {results.get('run_id')!r}, "
                                                                   f"the manifest {manifest.get('run_id')!r}"))
    return manifest, problems, notes, checked
