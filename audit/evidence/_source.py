"""Where evidence is read from: a run folder on disk or a run inside a bundle (a zip file).

Verification reads the same files from both: a run folder
``reports/<audit>/<run_id>/`` as ``insyn run`` wrote it, or the ``run/``
folder of an evidence bundle made by ``insyn bundle``. :class:`FolderSource`
and :class:`ZipSource` give both the same small surface: the file names
present, a file's bytes and its SHA-256. Names are plain file names, or
for a chunked run the parts of its decisions and journey
(``decisions/part-00000.parquet``, ``journey/part-00000.parquet``; see
:mod:`audit.chunked`); anything else is refused, so that a manifest cannot
point a reader outside the evidence.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path, PurePosixPath

from audit._paths import sha256_file
from audit.record import PART_FOLDERS, is_part_name

__all__ = ["FolderSource", "Source", "ZipSource", "is_plain_name", "is_run_name", "sha256_bytes"]


def sha256_bytes(data: bytes) -> str:
    """The hex SHA-256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def is_plain_name(name: object) -> bool:
    """True for a plain file name: a string without a folder part, not ``.`` or ``..``."""
    return (
        isinstance(name, str)
        and bool(name)
        and "/" not in name
        and "\\" not in name
        and name not in (".", "..")
        and "\0" not in name
    )


def is_run_name(name: object) -> bool:
    """True for a name a run folder may list: a plain file name, or a chunked run's part.

    A part is named by its folder, ``decisions/part-00000.parquet`` or ``journey/part-00000.parquet``.
    """
    return is_plain_name(name) or is_part_name(name)


class Source:
    """The files of one run, wherever they are kept."""

    label: str
    """How the source is named in messages (a path, or ``bundle.zip:run/``)."""

    def names(self) -> list[str]:
        """The file names present, sorted."""
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        """True when the file is present."""
        return name in self.names()

    def read(self, name: str) -> bytes:
        """The bytes of a file."""
        raise NotImplementedError

    def sha256(self, name: str) -> str:
        """The hex SHA-256 of a file."""
        return sha256_bytes(self.read(name))

    def where(self, name: str) -> str:
        """A file's name as shown to a reader."""
        return f"{self.label}/{name}"


class FolderSource(Source):
    """A run folder on disk.

    Parameters
    ----------
    folder : Path
        The run folder.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.label = str(folder)

    def names(self) -> list[str]:
        """The file names present; a chunked run's part folders by their files (``decisions/part-00000.parquet``)."""
        out = []
        for p in self.folder.iterdir():
            if p.name in PART_FOLDERS.values() and p.is_dir() and not p.is_symlink():
                out += [f"{p.name}/{q.name}" for q in p.iterdir()]
            elif p.is_file() or p.is_symlink() or p.is_dir():
                out.append(p.name)
        return sorted(out)

    def exists(self, name: str) -> bool:
        return is_run_name(name) and (self.folder / name).is_file()

    def read(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()

    def sha256(self, name: str) -> str:
        return sha256_file(self.folder / name)


class ZipSource(Source):
    """The files of a zip file under one folder prefix (``run/`` in a bundle).

    Parameters
    ----------
    archive : zipfile.ZipFile
        The open bundle.
    prefix : str
        The folder inside the zip, ending in ``/``.
    label : str
        How the source is named in messages.
    """

    def __init__(self, archive: zipfile.ZipFile, prefix: str, label: str) -> None:
        self.archive = archive
        self.prefix = prefix
        self.label = label
        self._names = sorted(
            n[len(prefix):] for n in archive.namelist()
            if n.startswith(prefix) and len(n) > len(prefix) and not n.endswith("/")  # not a folder entry
        )

    def names(self) -> list[str]:
        return list(self._names)

    def exists(self, name: str) -> bool:
        return is_run_name(name) and name in self._names

    def read(self, name: str) -> bytes:
        return self.archive.read(self.prefix + name)

    def where(self, name: str) -> str:
        return str(PurePosixPath(self.prefix) / name)
