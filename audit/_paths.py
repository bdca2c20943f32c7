"""Where a path written in a spec points, and what a file's bytes hash to.

An audit spec names files relative to the spec's own folder: the population
card, the engine's rule file, the expectation suites. A spec that names a
shipped default (``datasets/...``, ``checks/...``, ``examples/...``) must work
both in a clone of the repository and from an installed wheel, where the
defaults live in ``audit/_defaults``. The manifest of a run records the
SHA-256 of every input and artifact so that a third party can check them.

This is the one home of path resolution and file hashing; every module that
needs either imports it from here.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from audit._background import on_every_core

__all__ = [
    "DEFAULTS_ROOTS",
    "defaults_dir",
    "display_path",
    "missing_spec_message",
    "resolve_path",
    "sha256_each",
    "sha256_file",
    "sha256_files",
    "shipped_examples",
]

DEFAULTS_ROOTS: tuple[str, ...] = ("datasets", "checks", "examples")
"""Top-level folders whose files ship inside the wheel as defaults."""


def defaults_dir() -> Path | None:
    """Return the folder that holds the shipped ``datasets/``, ``checks/`` and ``examples/``.

    In a clone this is the repository root; in an installed wheel it is
    ``audit/_defaults``.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "_defaults", here.parent):
        if (candidate / "datasets").is_dir() and (candidate / "checks").is_dir():
            return candidate
    return None


def resolve_path(path: str | Path, base_dir: str | Path | None) -> Path:
    """Resolve a path written in a spec.

    Parameters
    ----------
    path : str or Path
        The path as written. Absolute paths are returned unchanged.
    base_dir : str or Path, optional
        The folder of the spec file; the current folder when None.

    Returns
    -------
    Path
        The path relative to ``base_dir`` when it exists there; otherwise, for
        a path under ``datasets/``, ``checks/`` or ``examples/``, the shipped
        default when that exists; otherwise the path relative to ``base_dir``
        (which the caller reports as missing).
    """
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    local = (base / p).resolve()
    if local.exists():
        return local
    parts = p.parts
    if parts and parts[0] in DEFAULTS_ROOTS:
        root = defaults_dir()
        if root is not None and (root / p).exists():
            return (root / p).resolve()
    cwd_candidate = (Path.cwd() / p).resolve()
    if cwd_candidate.exists() and parts and parts[0] in DEFAULTS_ROOTS:
        return cwd_candidate
    return local


def shipped_examples() -> dict[str, Path]:
    """Return the audit specs shipped in ``examples/``, by name (the file name without ``.yaml``).

    A YAML file counts as an audit spec when it has a top-level
    ``population:`` key; ``examples/personas.yaml`` (paired personas) does
    not. Empty when Insyn was installed without its defaults.
    """
    root = defaults_dir()
    if root is None or not (root / "examples").is_dir():
        return {}
    out: dict[str, Path] = {}
    for path in sorted((root / "examples").glob("*.yaml")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):  # pragma: no cover - shipped files are UTF-8
            continue
        if re.search(r"^population:", text, flags=re.MULTILINE):
            out[path.stem] = path.resolve()
    return out


def missing_spec_message(path: str | os.PathLike[str]) -> str:
    """The message for a spec file that exists neither where it was named nor among the shipped examples.

    It says where Insyn looked and which examples ship with it, so that a
    user who typed ``examples/demo.yaml`` outside a clone learns that
    ``insyn run --example demo`` (or the path from a clone) is meant.
    """
    p = Path(path)
    folder = p.parent if p.is_absolute() else (Path.cwd() / p).parent
    names = shipped_examples()
    text = f"{path}: no such spec file in {folder}"
    if names and not p.is_absolute():
        text += f", nor among the examples shipped with Insyn ({', '.join(names)})"
    text += ". Expected a YAML audit spec"
    if names and not p.is_absolute():
        text += "; run a shipped one with: insyn run --example NAME"
    return text + "."


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_each(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """:func:`sha256_file` of each file, in order, several files at a time.

    Reading a file and hashing its blocks both release Python's global
    lock, so threads hash on every core: a chunked run's manifest hashes
    every part it wrote (some 0.8 GB at ten million cases, 0.6 s on one
    core) before the run ends.
    """
    return on_every_core(sha256_file, paths)


def sha256_files(paths: Iterable[str | os.PathLike[str]]) -> str:
    """Return one SHA-256 over several files: each file's name and hash, in order."""
    digest = hashlib.sha256()
    for p in paths:
        digest.update(Path(p).name.encode("utf-8") + b"\0" + sha256_file(p).encode("ascii") + b"\n")
    return digest.hexdigest()


def display_path(path: str | os.PathLike[str]) -> str:
    """Show a path relative to the current folder when it lies below it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
