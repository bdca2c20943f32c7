"""``insyn verify``: is this the evidence the run produced, and does the run repeat?

:func:`verify` takes a run folder or a bundle (a zip file made by
:func:`audit.evidence.write_bundle`) and checks

1. every SHA-256 the manifest records, that no listed file is missing
   (unless pruned under the retention rule, or withheld from a bundle as
   personal data) and no unlisted file was added, and ``results.json``
   against the results schema (:mod:`audit.evidence._check`);
2. for a bundle, every file against the bundle's index, every input against
   the manifest's hash of it, and the Ed25519 signature of the index if there
   is one (with ``key``, the signature must be there and made with that key);
3. with ``rerun=True``, the run itself: the manifest's spec is run again and
   every metric row compared (:mod:`audit.evidence._rerun`).

The outcome is a :class:`Verification` whose ``exit_code`` is the command's:
0 when everything checks (and the re-run gives identical metric rows), 1 when
the evidence is intact but the re-run differs (with a table of the
differences), 2 when the evidence is incomplete or was changed (each problem
names the file).
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from audit._paths import resolve_path, sha256_file
from audit.evidence._bundle import BUNDLE_FORMAT, BUNDLE_INDEX, BUNDLE_SIGNATURE, RUN_PREFIX
from audit.evidence._check import Problem, check_run
from audit.evidence._rerun import DIFFERENCE_COLUMNS, compare_metrics, rerun_metrics, version_notes
from audit.evidence._signing import check_signature, load_public_key
from audit.evidence._source import FolderSource, ZipSource, sha256_bytes
from audit.exceptions import DataError

__all__ = ["Verification", "verify"]

_MAX_DIFFERENCES_SHOWN = 40


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify`.

    Attributes
    ----------
    path : Path
        What was verified.
    kind : str
        ``"run folder"`` or ``"bundle"``.
    run_id : str or None
        The run, from its manifest.
    files_checked : int
        Files whose SHA-256 was computed and compared.
    problems : tuple of Problem
        Every way the evidence is incomplete or was changed.
    notes : tuple of str
        What a reader should know (pruned or withheld files, the signature,
        versions that differ from the run's).
    signed_by : str or None
        The key id of a valid signature.
    rerun : bool
        Whether the run was repeated.
    differences : pandas.DataFrame
        Metric fields that differ between the recorded run and the re-run
        (columns ``metric, attributes, group, field, recorded, rerun``).
    """

    path: Path
    kind: str
    run_id: str | None
    files_checked: int
    problems: tuple[Problem, ...]
    notes: tuple[str, ...] = ()
    signed_by: str | None = None
    rerun: bool = False
    differences: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(DIFFERENCE_COLUMNS)))

    @property
    def ok(self) -> bool:
        """True when there is no problem and no difference."""
        return self.exit_code == 0

    @property
    def exit_code(self) -> int:
        """2 when a file is missing, added or changed; 1 when the re-run differs; else 0."""
        if self.problems:
            return 2
        return 1 if len(self.differences) else 0

    def lines(self) -> list[str]:
        """The outcome as lines of plain text, for the command line."""
        head = f"{self.kind} {self.path}" + (f" (run {self.run_id})" if self.run_id else "")
        out = []
        if self.problems:
            out.append(f"TAMPERED OR INCOMPLETE: {head}: {len(self.problems)} problem(s)")
            out += [f"  {p.line()}" for p in self.problems]
        else:
            what = f"{self.files_checked} file(s) match their SHA-256; results.json matches the results schema"
            sig = f"; {self.notes_signature()}" if self.kind == "bundle" else ""
            out.append(f"VERIFIED: {head}: {what}{sig}")
        out += [f"  note: {n}" for n in self.notes]
        if self.rerun and not self.problems:
            if len(self.differences):
                out.append(f"DIFFERS: the re-run gives different metric rows ({len(self.differences)} field(s)):")
                shown = self.differences.head(_MAX_DIFFERENCES_SHOWN)
                out += ["  " + line for line in shown.to_string(index=False).splitlines()]
                if len(self.differences) > _MAX_DIFFERENCES_SHOWN:
                    out.append(f"  … and {len(self.differences) - _MAX_DIFFERENCES_SHOWN} more")
            else:
                out.append("IDENTICAL: the re-run gives the same metric rows.")
        return out

    def notes_signature(self) -> str:
        return f"signed by key {self.signed_by}" if self.signed_by else "not signed"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary."""
        return {
            "path": str(self.path),
            "kind": self.kind,
            "run_id": self.run_id,
            "exit_code": self.exit_code,
            "files_checked": self.files_checked,
            "problems": [{"file": p.file, "reason": p.reason} for p in self.problems],
            "notes": list(self.notes),
            "signed_by": self.signed_by,
            "rerun": self.rerun,
            "differences": json.loads(self.differences.to_json(orient="records")),
        }


def _safe_member(name: str) -> bool:
    p = PurePosixPath(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and "\\" not in name


def _verify_folder(path: Path, rerun: bool, key: Any) -> Verification:
    manifest, problems, notes, checked = check_run(FolderSource(path))
    notes.append("a run folder is not signed: its hashes show that the files match manifest.json, not who made it "
                 "(insyn bundle --sign)")
    if key is not None:
        problems.append(Problem(str(path), "a trusted key was given, but a run folder is not signed; verify a "
                                           "signed bundle (insyn bundle --sign) instead"))
    run_id = str(manifest.get("run_id")) if manifest else None
    differences = pd.DataFrame(columns=list(DIFFERENCE_COLUMNS))
    if rerun and manifest is not None and not problems:
        base = manifest.get("base_dir")
        if not isinstance(base, str):
            problems.append(Problem(str(path / "manifest.json"), "has no base_dir (made by an older Insyn), so the "
                                                                 "run cannot be repeated"))
        elif not Path(base).is_dir():
            problems.append(Problem(str(path / "manifest.json"), f"names the spec's folder {base}, which does not "
                                                                 "exist here, so the run cannot be repeated; verify "
                                                                 "a bundle of it (insyn bundle) instead"))
        else:
            notes += _input_notes(manifest)
            notes += version_notes(manifest)
            recorded = json.loads((path / "results.json").read_text(encoding="utf-8"))["metrics"]
            differences = compare_metrics(recorded, rerun_metrics(manifest, base_dir=base,
                                                                  source=str(path / "manifest.json")))
    return Verification(path=path, kind="run folder", run_id=run_id, files_checked=checked,
                        problems=tuple(problems), notes=tuple(notes), rerun=rerun and not problems,
                        differences=differences)


def _input_notes(manifest: Mapping[str, Any]) -> list[str]:
    """Notes for inputs that changed since the run (a re-run then reads different inputs)."""
    base = Path(str(manifest.get("base_dir")))
    spec_file = manifest.get("spec_file")
    notes = []
    for key, digest in (manifest.get("inputs") or {}).items():
        if spec_file and Path(key).name == Path(str(spec_file)).name:
            path = Path(str(spec_file))
        else:
            path = Path(key) if Path(key).is_absolute() else resolve_path(key, base)
        if not path.is_file():
            notes.append(f"input {key} is not there any more; the re-run cannot read what the run read")
        elif sha256_file(path) != digest:
            notes.append(f"input {key} changed since the run; the re-run reads the changed file")
    return notes


def _verify_bundle(path: Path, rerun: bool, key: Any) -> Verification:
    problems: list[Problem] = []
    notes: list[str] = []
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        return Verification(path=path, kind="bundle", run_id=None, files_checked=0,
                            problems=(Problem(str(path), f"not a readable zip file ({exc})"),))
    with archive:
        names = archive.namelist()
        if len(names) != len(set(names)):
            dup = sorted({n for n in names if names.count(n) > 1})
            problems.append(Problem(f"{path}:{dup[0]}", "appears more than once in the zip file"))
        if BUNDLE_INDEX not in names:
            problems.append(Problem(f"{path}:{BUNDLE_INDEX}", "missing: not an Insyn bundle, or incomplete"))
            return Verification(path=path, kind="bundle", run_id=None, files_checked=0, problems=tuple(problems))
        index_bytes = archive.read(BUNDLE_INDEX)
        try:
            index = json.loads(index_bytes)
            if index.get("format") != BUNDLE_FORMAT or not isinstance(index.get("files"), dict):
                raise ValueError(f"expected format {BUNDLE_FORMAT} with a files mapping")
        except (ValueError, AttributeError) as exc:
            problems.append(Problem(f"{path}:{BUNDLE_INDEX}", f"not a readable bundle index ({exc})"))
            return Verification(path=path, kind="bundle", run_id=None, files_checked=0, problems=tuple(problems))
        signed_by = None
        if BUNDLE_SIGNATURE in names:
            check = check_signature(index_bytes, archive.read(BUNDLE_SIGNATURE), trusted=key)
            if check.valid:
                signed_by = check.key_id
                notes.append(check.message)
            else:
                problems.append(Problem(f"{path}:{BUNDLE_SIGNATURE}", check.message))
        elif key is not None:
            problems.append(Problem(f"{path}:{BUNDLE_SIGNATURE}", "missing: a trusted key was given, but the bundle "
                                                                   "is not signed"))
        else:
            notes.append("the bundle is not signed: its hashes show that the files match the index, not who made it")
        files: dict[str, Any] = index["files"]
        checked = 0
        for name, meta in files.items():
            if not _safe_member(name):
                problems.append(Problem(f"{path}:{BUNDLE_INDEX}", f"lists {name!r}, which is not a safe path"))
            elif name not in names:
                problems.append(Problem(f"{path}:{name}", "missing: the bundle index lists it"))
            elif sha256_bytes(archive.read(name)) != (meta or {}).get("sha256"):
                problems.append(Problem(f"{path}:{name}", "changed: its SHA-256 does not match the bundle index"))
            else:
                checked += 1
        for name in names:
            if name not in files and name not in (BUNDLE_INDEX, BUNDLE_SIGNATURE) and not name.endswith("/"):
                problems.append(Problem(f"{path}:{name}", "not listed in bundle.json: added to the bundle"))
        withheld = {k[len(RUN_PREFIX):]: v for k, v in (index.get("withheld") or {}).items()
                    if k.startswith(RUN_PREFIX)}
        manifest, run_problems, run_notes, _ = check_run(
            ZipSource(archive, RUN_PREFIX, f"{path}:{RUN_PREFIX}"), withheld=withheld)
        problems += run_problems
        notes += run_notes
        recorded_inputs: Mapping[str, str] = (manifest or {}).get("inputs") or {}
        for entry in index.get("inputs") or []:
            mkey = entry.get("manifest_key")
            if mkey and recorded_inputs.get(mkey) not in (None, entry.get("sha256")):
                where = entry.get("path") or entry.get("original")
                problems.append(Problem(f"{path}:{where}",
                                        "its SHA-256 differs from the manifest's record of the input"))
            if entry.get("withheld"):
                notes.append(f"input {entry.get('original')}: {entry.get('withheld')}")
        run_id = str(manifest.get("run_id")) if manifest else None
        differences = pd.DataFrame(columns=list(DIFFERENCE_COLUMNS))
        if rerun and manifest is not None and not problems:
            blocked = [e for e in index.get("inputs") or [] if e.get("withheld") and e.get("spec_key")]
            if blocked:
                e = blocked[0]
                problems.append(Problem(f"{path}:{BUNDLE_INDEX}", f"the input {e.get('original')} is not in the "
                                                                  f"bundle ({e.get('withheld')}), so the run cannot "
                                                                  "be repeated from it"))
            else:
                notes += version_notes(manifest)
                with tempfile.TemporaryDirectory(prefix="insyn-verify-") as tmp:
                    root = Path(tmp)
                    for name in files:
                        target = root / name
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(archive.read(name))
                    replace = [(e["spec_key"], str(e.get("prefix") or "") + str(root / e["path"]))
                               for e in index.get("inputs") or [] if e.get("spec_key") and e.get("path")]
                    base = root / str(index.get("base_dir") or "inputs")
                    base.mkdir(parents=True, exist_ok=True)
                    recorded = json.loads(archive.read(RUN_PREFIX + "results.json"))["metrics"]
                    differences = compare_metrics(recorded, rerun_metrics(manifest, base_dir=base, replace=replace,
                                                                          source=f"{path}:{RUN_PREFIX}manifest.json"))
    return Verification(path=path, kind="bundle", run_id=run_id, files_checked=checked,
                        problems=tuple(problems), notes=tuple(notes), signed_by=signed_by,
                        rerun=rerun and not problems, differences=differences)


def verify(path: str | Path, *, rerun: bool = False, key: str | Path | None = None) -> Verification:
    """Verify a run folder or an evidence bundle (see the module docstring).

    Parameters
    ----------
    path : str or Path
        A run folder (``reports/<audit>/<run_id>``) or a bundle (``.zip``).
    rerun : bool, default False
        Also run the audit again from the manifest and compare every metric row.
    key : str or Path, optional
        A trusted Ed25519 public key (``.pub`` of ``insyn keygen``): the
        bundle must be signed with it.

    Returns
    -------
    Verification
        Its ``exit_code`` is 0, 1 or 2 as for ``insyn verify``.

    Raises
    ------
    DataError
        When ``path`` does not exist, or the key cannot be read.
    """
    p = Path(path)
    trusted = load_public_key(key) if key is not None else None
    if p.is_dir():
        return _verify_folder(p, rerun, trusted)
    if p.is_file():
        return _verify_bundle(p, rerun, trusted)
    raise DataError(f"{p}: no such run folder or bundle. Expected a folder written by insyn run or a zip file "
                    "written by insyn bundle.")
