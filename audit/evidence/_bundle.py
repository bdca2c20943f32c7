"""Evidence bundles: a run folder with everything needed to check and repeat it, in one zip file.

An inspectorate that receives a run folder can check its hashes but cannot
repeat the run without the spec, the engine's rule file or model, the
expectation suites and the population. ``insyn bundle RUN_DIR -o FILE.zip``
packs them:

``run/``
    every file of the run folder (verified first: a folder that fails
    verification is not bundled);
``inputs/...``
    the spec file, the population spec of a synthetic population, the
    engine's rule file or model (and a municipal guideline the rule file
    reads, or the Python module of an engine or caseworker model found next
    to the spec), the counterfactual personas and the suites, each at its
    path relative to the common folder of all of them, so that relative
    paths between them still work when the bundle is unpacked;
``bundle.json``
    the index: the SHA-256, size and role of every file, where each input
    came from and which spec key names it, and what was left out and why;
``bundle.sig``
    with ``--sign KEY``: an Ed25519 signature of ``bundle.json``
    (:mod:`audit.evidence._signing`).

Input data goes in only where the spec allows it (``evidence.include_data``).
Personal data stays out even then (its SHA-256 only) unless the spec says
``evidence.include_personal_data: true``; a decision log (a ``file`` or
``sql`` source) holds personal data unless ``evidence.personal_data: false``
says otherwise, and while it stays out so do the run's case-level artifacts
(``decisions.parquet``, ``journey.parquet``). Synthetic populations and
published aggregated tables hold none.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from audit._paths import resolve_path, sha256_file
from audit._version import __version__
from audit.evidence._check import check_run
from audit.evidence._manifest import MANIFEST
from audit.evidence._signing import load_private_key, sign
from audit.evidence._source import FolderSource
from audit.exceptions import DataError
from audit.record import is_part_name
from audit.spec import EvidenceSpec

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_INDEX",
    "BUNDLE_SIGNATURE",
    "BundleInfo",
    "CASE_LEVEL_ARTIFACTS",
    "InputFile",
    "RUN_PREFIX",
    "spec_inputs",
    "write_bundle",
]

BUNDLE_FORMAT = "insyn-bundle-1"
"""The ``format`` of a bundle index."""

BUNDLE_INDEX = "bundle.json"
"""The index of a bundle."""

BUNDLE_SIGNATURE = "bundle.sig"
"""The signature of the index, when the bundle is signed."""

RUN_PREFIX = "run/"
"""The folder of the run's files inside a bundle."""

INPUT_PREFIX = "inputs/"

CASE_LEVEL_ARTIFACTS: tuple[str, ...] = ("decisions.parquet", "journey.parquet", "attribution.parquet")
"""Artifacts with one row per application: personal data when the input data is."""

_PERSONAL_KINDS = frozenset({"file", "sql"})


@dataclass(frozen=True)
class InputFile:
    """One input of a run, as a bundle records it.

    Attributes
    ----------
    role : str
        ``spec``, ``population_spec``, ``data``, ``engine``, ``engine_code``,
        ``guideline``, ``personas`` or ``suite``.
    path : Path
        Where the run read it.
    spec_key : tuple or None
        Where the spec names it (``("checks", "intake", "suites", 0)``), so
        that a re-run from the bundle can point the spec at the unpacked copy.
    prefix : str
        Text before the path in the spec value (``"duckdb:///"``).
    manifest_key : str or None
        Its key in the manifest's ``inputs``, when the manifest hashed it.
    """

    role: str
    path: Path
    spec_key: tuple[str | int, ...] | None = None
    prefix: str = ""
    manifest_key: str | None = None


@dataclass(frozen=True)
class BundleInfo:
    """What :func:`write_bundle` wrote.

    Attributes
    ----------
    path : Path
        The zip file.
    run_id : str
        The run bundled.
    files : int
        Files in the bundle besides the index and the signature.
    withheld : tuple of str
        What was left out (hash only), each with its reason.
    key_id : str or None
        The id of the signing key, when signed.
    """

    path: Path
    run_id: str
    files: int
    withheld: tuple[str, ...] = field(default_factory=tuple)
    key_id: str | None = None


def _python_module_file(target: Any, base_dir: Path) -> Path | None:
    """The ``.py`` file of ``package.module:attr`` next to the spec, if that is where it lives."""
    if not isinstance(target, str) or ":" not in target:
        return None
    module = target.partition(":")[0]
    if not module:
        return None
    path = resolve_path(Path(*module.split(".")).with_suffix(".py"), base_dir)
    return path if path.is_file() else None


def _guideline(rule_file: Path) -> Path | None:
    """The municipal guideline a rules engine file reads (``norms.guideline``), if any."""
    try:
        data = yaml.safe_load(rule_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    norms = data.get("norms") if isinstance(data, Mapping) else None
    g = norms.get("guideline") if isinstance(norms, Mapping) else None
    if not isinstance(g, str):
        return None
    path = resolve_path(g, rule_file.parent)
    return path if path.is_file() else None


def _engine_inputs(engine: Mapping[str, Any], key: str, base_dir: Path) -> list[InputFile]:
    out = []
    if isinstance(engine.get("path"), str):
        path = resolve_path(engine["path"], base_dir)
        out.append(InputFile("engine", path, (key, "path"), manifest_key=engine["path"]))
        if engine.get("kind") == "rules" and path.is_file():
            guideline = _guideline(path)
            if guideline is not None:
                out.append(InputFile("guideline", guideline))
    module = _python_module_file(engine.get("target"), base_dir)
    if module is not None:
        out.append(InputFile("engine_code", module))
    return out


def spec_inputs(spec: Mapping[str, Any], base_dir: str | Path, spec_file: str | Path | None = None) -> list[InputFile]:
    """The input files a spec names, resolved as the run resolved them.

    Parameters
    ----------
    spec : mapping
        The spec (``manifest["spec"]``).
    base_dir : str or Path
        The folder relative paths in the spec resolve against.
    spec_file : str or Path, optional
        The spec file, when the spec was read from one.

    Returns
    -------
    list of InputFile
        Without duplicates, in the order the spec names them.
    """
    base = Path(base_dir)
    out: list[InputFile] = []
    if spec_file:
        out.append(InputFile("spec", Path(spec_file)))
    pop = spec.get("population") or {}
    if isinstance(pop.get("synthetic"), str):
        path = resolve_path(pop["synthetic"], base)
        out.append(InputFile("population_spec", path, ("population", "synthetic"), manifest_key=str(path)))
    for key in ("file", "aggregated"):
        if isinstance(pop.get(key), str):
            path = resolve_path(pop[key], base)
            out.append(InputFile("data", path, ("population", key), manifest_key=str(path)))
    url = pop.get("url")
    if isinstance(url, str) and url.startswith("duckdb:///"):
        raw = url.removeprefix("duckdb:///")
        path = Path(raw) if Path(raw).is_absolute() else base / raw
        out.append(InputFile("data", path, ("population", "url"), prefix="duckdb:///", manifest_key=str(path)))
    for key in ("engine", "compare"):
        if isinstance(spec.get(key), Mapping):
            out += _engine_inputs(spec[key], key, base)
    review = spec.get("review") or {}
    if isinstance(review.get("model"), Mapping):
        module = _python_module_file(review["model"].get("target"), base)
        if module is not None:
            out.append(InputFile("engine_code", module))
    cf = spec.get("counterfactual") or {}
    if isinstance(cf.get("personas"), str):
        out.append(InputFile("personas", resolve_path(cf["personas"], base), ("counterfactual", "personas")))
    for step, cfg in (spec.get("checks") or {}).items():
        for i, suite in enumerate((cfg or {}).get("suites") or []):
            out.append(InputFile("suite", resolve_path(suite, base), ("checks", step, "suites", i), manifest_key=suite))
    seen: set[tuple[str, tuple[Any, ...] | None]] = set()
    unique = []
    for item in out:
        key = (str(item.path), item.spec_key)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def _policy(spec: Mapping[str, Any]) -> tuple[EvidenceSpec, bool]:
    """The spec's evidence settings and whether its input data holds personal data."""
    evidence = EvidenceSpec.model_validate(spec.get("evidence") or {})
    kind = next((k for k in ("synthetic", "file", "sql", "aggregated") if (spec.get("population") or {}).get(k)), "")
    personal = evidence.personal_data if evidence.personal_data is not None else kind in _PERSONAL_KINDS
    return evidence, personal


def _withheld_reason(evidence: EvidenceSpec, personal: bool) -> str | None:
    if personal and not evidence.include_personal_data:
        return "personal data: evidence.include_personal_data is false; SHA-256 only"
    if not evidence.include_data:
        return "input data: evidence.include_data is false; SHA-256 only"
    return None


def _common_root(paths: Sequence[Path]) -> Path:
    return Path(os.path.commonpath([str(p.resolve()) for p in paths]))


def write_bundle(
    run_dir: str | Path,
    output: str | Path,
    *,
    sign_with: str | Path | None = None,
    now: datetime | None = None,
) -> BundleInfo:
    """Pack a verified run folder and its inputs into one zip file (see the module docstring).

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    output : str or Path
        The zip file to write; it must not exist.
    sign_with : str or Path, optional
        An Ed25519 private key file (``insyn keygen``); the bundle's index is
        signed with it.
    now : datetime, optional
        The time recorded in the index (default: now, UTC).

    Returns
    -------
    BundleInfo

    Raises
    ------
    DataError
        When the run folder fails verification, an input is missing or
        changed since the run, the manifest lacks what a bundle needs, the
        output exists, or the key cannot be used.
    """
    folder = Path(run_dir)
    out = Path(output)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such run folder. Expected a folder written by insyn run.")
    if out.exists():
        raise DataError(f"{out}: the file exists already. Expected a new file name for the bundle.")
    if not out.parent.is_dir():
        raise DataError(f"{out.parent}: no such folder for the bundle.")
    key = load_private_key(sign_with) if sign_with is not None else None
    manifest, problems, _, _ = check_run(FolderSource(folder))
    if problems or manifest is None:
        lines = "; ".join(p.line() for p in problems[:5])
        raise DataError(f"{folder}: the run folder fails verification, so it is not bundled: {lines}.")
    spec = manifest.get("spec")
    base = manifest.get("base_dir")
    if not isinstance(spec, Mapping) or not isinstance(base, str):
        raise DataError(f"{folder / MANIFEST}: has no spec or no base_dir (made by an older Insyn). "
                        "Expected a manifest that records the folder its spec's paths resolve against; run the "
                        "audit again to bundle it.")
    evidence, personal = _policy(spec)
    data_reason = _withheld_reason(evidence, personal)
    recorded: Mapping[str, str] = manifest.get("inputs") or {}
    inputs = spec_inputs(spec, base, manifest.get("spec_file"))
    entries: list[dict[str, Any]] = []
    included: list[tuple[InputFile, str]] = []
    withheld_text: list[str] = []
    for item in inputs:
        expected = recorded.get(item.manifest_key or "") or recorded.get(str(item.path))
        reason = data_reason if item.role == "data" else None
        if item.path.is_file():
            digest = sha256_file(item.path)
        elif reason is not None and expected:
            digest = expected  # data kept out of the bundle and gone from disk: the manifest's hash stands
        else:
            raise DataError(f"{item.path}: the {item.role.replace('_', ' ')} of the run is missing, so the run "
                            "cannot be bundled.")
        if expected and digest != expected:
            raise DataError(f"{item.path}: changed since the run (SHA-256 {digest[:16]}…, the manifest records "
                            f"{expected[:16]}…). Expected the input the run read.")
        entries.append({
            "role": item.role,
            "original": str(item.path),
            "path": None,
            "sha256": digest,
            "manifest_key": item.manifest_key if item.manifest_key in recorded else (
                str(item.path) if str(item.path) in recorded else None),
            "spec_key": list(item.spec_key) if item.spec_key is not None else None,
            "prefix": item.prefix,
            "withheld": reason,
        })
        if reason is None:
            included.append((item, digest))
        else:
            withheld_text.append(f"{item.path} ({reason})")
    roots = [Path(base)] + [item.path.parent for item, _ in included]
    root = _common_root(roots)

    def inside(path: Path) -> str:
        return INPUT_PREFIX + PurePosixPath(Path(os.path.relpath(path.resolve(), root)).as_posix()).as_posix()

    for entry, (item, _) in zip([e for e in entries if e["withheld"] is None], included, strict=True):
        entry["path"] = inside(item.path)
    case_reason = ("personal data: one row per application; evidence.include_personal_data is false"
                   if personal and not evidence.include_personal_data else None)
    files: dict[str, dict[str, Any]] = {}
    withheld: dict[str, dict[str, Any]] = {}
    run_files = [MANIFEST] + [n for n in manifest["artifacts"] if (folder / n).is_file()]
    for name in run_files:
        if case_reason and (name in CASE_LEVEL_ARTIFACTS or is_part_name(name)):  # a chunked run's parts too
            withheld[RUN_PREFIX + name] = {"sha256": manifest["artifacts"][name], "reason": case_reason}
            withheld_text.append(f"{RUN_PREFIX}{name} ({case_reason})")
            continue
        p = folder / name
        files[RUN_PREFIX + name] = {"sha256": sha256_file(p), "bytes": p.stat().st_size, "role": "run"}
    sources: dict[str, Path] = {RUN_PREFIX + name: folder / name for name in run_files}
    for entry, (item, digest) in zip([e for e in entries if e["withheld"] is None], included, strict=True):
        files[entry["path"]] = {"sha256": digest, "bytes": item.path.stat().st_size, "role": item.role}
        sources[entry["path"]] = item.path
    index = {
        "format": BUNDLE_FORMAT,
        "created_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "insyn_version": __version__,
        "run_id": manifest.get("run_id"),
        "audit": manifest.get("audit"),
        "run": RUN_PREFIX,
        "base_dir": inside(Path(base)),
        "spec_file": next((e["path"] for e in entries if e["role"] == "spec" and e["path"]), None),
        "evidence": {**evidence.model_dump(), "personal_data": personal},
        "files": files,
        "inputs": entries,
        "withheld": withheld,
    }
    index_bytes = json.dumps(index, indent=2, ensure_ascii=False, sort_keys=True).encode("utf-8")
    signature = sign(index_bytes, key, signed_file=BUNDLE_INDEX, now=now) if key is not None else None
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(BUNDLE_INDEX, index_bytes)
            if signature is not None:
                zf.writestr(BUNDLE_SIGNATURE, json.dumps(signature, indent=2).encode("utf-8"))
            for name in sorted(files):
                zf.write(sources[name], name)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BundleInfo(path=out, run_id=str(manifest.get("run_id")), files=len(files),
                      withheld=tuple(withheld_text), key_id=signature["key_id"] if signature else None)
