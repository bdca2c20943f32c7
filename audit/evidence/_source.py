"""Where evidence is read from: a run folder on disk or a run inside a bundle (a zip file).

Verification reads the same files from both: a run folder
``reports/<audit>/<run_id>/`` as ``insyn run`` wrote it, or the ``run/``
folder of an evidence bundle made by ``insyn bundle``. :class:`FolderSource`
and :class:`ZipSource` give both the same small surface: the file names
present, a file's bytes and its SHA-256. Names are plain file names (a run
folder has no subfolders); anything else is refused, so that a manifest
cannot point a reader outside the evidence.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path, PurePosixPath

from audit._paths import sha256_file

__all__ = ["FolderSource", "Source", "ZipSource", "is_plain_name", "sha256_bytes"]


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
        return sorted(p.name for p in self.folder.iterdir() if p.is_file() or p.is_symlink() or p.is_dir())

    def exists(self, name: str) -> bool:
        return is_plain_name(name) and (self.folder / name).is_file()

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
            n[len(prefix):] for n in archive.namelist() if n.startswith(prefix) and len(n) > len(prefix)
        )

    def names(self) -> list[str]:
        return list(self._names)

    def exists(self, name: str) -> bool:
        return is_plain_name(name) and name in self._names

    def read(self, name: str) -> bytes:
        return self.archive.read(self.prefix + name)

    def where(self, name: str) -> str:
        return str(PurePosixPath(self.prefix) / name)
