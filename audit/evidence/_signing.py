"""Ed25519 signatures: who vouches for a bundle of evidence.

Hashes show that the files of a run match its manifest; they do not show who
made the manifest. An auditor who hands a bundle to an inspectorate signs its
index (``bundle.json``, which holds the SHA-256 of every file in the bundle,
the manifest among them) with an Ed25519 key; anyone with the auditor's
public key can then check that nothing in the bundle changed since it was
signed and that the auditor signed it.

Keys (``insyn keygen``): the private key is a PKCS #8 PEM file created with
mode 0600 (read and write by its owner only) and never overwritten; the
public key is a SubjectPublicKeyInfo PEM file next to it (``<key>.pub``). A
private key that others can read is refused, as ``ssh`` does. The key id is
the first 16 hex digits of the SHA-256 of the raw 32-byte public key.

A signature (``bundle.sig``) is JSON: ``{format, algorithm, signed_file,
signed_sha256, public_key, key_id, signature, signed_at}``, the key and the
signature base64-encoded. Built on ``cryptography``'s Ed25519 primitives.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.exceptions import DataError

__all__ = [
    "SIGNATURE_FORMAT",
    "SignatureCheck",
    "check_signature",
    "key_id",
    "keygen",
    "load_private_key",
    "load_public_key",
    "sign",
]

SIGNATURE_FORMAT = "insyn-signature-1"
"""The ``format`` of a signature document."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def keygen(path: str | Path) -> tuple[Path, Path, str]:
    """Make an Ed25519 key pair: ``path`` (private, mode 0600) and ``path.pub`` (public).

    Parameters
    ----------
    path : str or Path
        The private key file to create. Neither it nor ``<path>.pub`` may exist.

    Returns
    -------
    (Path, Path, str)
        The private key file, the public key file and the key id.

    Raises
    ------
    DataError
        When either file exists already or its folder does not exist.
    """
    private_path = Path(path)
    public_path = private_path.with_name(private_path.name + ".pub")
    for p in (private_path, public_path):
        if p.exists():
            raise DataError(f"{p}: the file exists already. Expected a new key file name (keys are never overwritten).")
    if not private_path.parent.is_dir():
        raise DataError(f"{private_path.parent}: no such folder for the key file.")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, pem)
    finally:
        os.close(fd)
    public = key.public_key()
    public_path.write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path, key_id(public)


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Read an Ed25519 private key written by :func:`keygen`.

    Raises
    ------
    DataError
        When the file is missing, readable by others than its owner, or not
        an Ed25519 private key in PEM form.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such key file. Expected an Ed25519 private key made with insyn keygen.")
    mode = stat.S_IMODE(p.stat().st_mode)
    if os.name == "posix" and mode & 0o077:
        raise DataError(
            f"{p}: the private key can be read by others (mode {mode:04o}). Expected mode 0600; run chmod 600 {p}."
        )
    try:
        key = serialization.load_pem_private_key(p.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"{p}: not an unencrypted PEM private key ({exc}). Expected a key made with insyn keygen."
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise DataError(
            f"{p}: a {type(key).__name__}, not an Ed25519 private key. Expected a key made with insyn keygen."
        )
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """Read an Ed25519 public key (PEM); a private key file gives its public key.

    Raises
    ------
    DataError
        When the file is missing or holds no Ed25519 key.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such key file. Expected an Ed25519 public key (the .pub file of insyn keygen).")
    data = p.read_bytes()
    try:
        key: Any = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as exc:
            raise DataError(f"{p}: not a PEM public key ({exc}). Expected the .pub file of insyn keygen.") from None
    if not isinstance(key, Ed25519PublicKey):
        raise DataError(f"{p}: a {type(key).__name__}, not an Ed25519 public key.")
    return key


def sign(data: bytes, key: Ed25519PrivateKey, *, signed_file: str, now: datetime | None = None) -> dict[str, Any]:
    """Sign bytes; return the signature document (see the module docstring)."""
    public = key.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {
        "format": SIGNATURE_FORMAT,
        "algorithm": "Ed25519",
        "signed_file": signed_file,
        "signed_sha256": hashlib.sha256(data).hexdigest(),
        "public_key": base64.b64encode(raw).decode("ascii"),
        "key_id": key_id(public),
        "signature": base64.b64encode(key.sign(data)).decode("ascii"),
        "signed_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
    }


@dataclass(frozen=True)
class SignatureCheck:
    """The outcome of checking a signature.

    Attributes
    ----------
    valid : bool
        The signature is a valid Ed25519 signature of the data by its key,
        and the key is the trusted one when one was given.
    key_id : str
        The id of the key that signed (from the document).
    trusted : bool or None
        True when the signing key is the trusted key, False when a trusted key
        was given and it differs, None when none was given.
    message : str
        What was found, in a sentence.
    """

    valid: bool
    key_id: str
    trusted: bool | None
    message: str


def check_signature(data: bytes, document: bytes, *, trusted: Ed25519PublicKey | None = None) -> SignatureCheck:
    """Check a signature document (the bytes of ``bundle.sig``) over some data.

    Parameters
    ----------
    data : bytes
        The signed bytes (``bundle.json``).
    document : bytes
        The signature document.
    trusted : Ed25519PublicKey, optional
        The key the signature must be made with. Without it, a valid signature
        shows only that the data did not change after the key in the document
        signed it.
    """
    try:
        doc = json.loads(document)
        if not isinstance(doc, Mapping) or doc.get("algorithm") != "Ed25519":
            got = doc.get("algorithm") if isinstance(doc, Mapping) else doc
            raise ValueError(f"expected algorithm Ed25519, got {got!r}")
        raw = base64.b64decode(str(doc["public_key"]), validate=True)
        signature = base64.b64decode(str(doc["signature"]), validate=True)
        public = Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, KeyError, TypeError) as exc:
        return SignatureCheck(False, "", None, f"not a readable Ed25519 signature document ({exc})")
    kid = key_id(public)
    try:
        public.verify(signature, data)
    except InvalidSignature:
        return SignatureCheck(False, kid, None, f"the signature by key {kid} does not match bundle.json: "
                                                "the bundle changed after it was signed")
    if trusted is None:
        return SignatureCheck(True, kid, None, f"signed by key {kid} (not checked against a trusted key; pass --key)")
    if key_id(trusted) != kid:
        return SignatureCheck(False, kid, False, f"signed by key {kid}, not by the trusted key {key_id(trusted)}")
    return SignatureCheck(True, kid, True, f"signed by the trusted key {kid}")
