"""The one privacy gate: keep Swedish personal identity numbers out of everything Insyn writes or prints.

Decision logs handed over by an authority often carry a personnummer as the
case key or in free-text fields; Trelleborg's robot carried a few hundred of
them in its source code. Insyn never writes or prints one. Every string that
leaves Insyn passes through this module before it is written or printed:

* :func:`mask` is the gate for one text (a message, a file or column name, a
  label, a line of output); :func:`mask_value` walks JSON-like values (the
  results, the manifest, lineage events, check reports); :func:`mask_frame`
  masks the text columns *and* the column names of a table (decisions,
  journey, failure tables). The run folder writer, the CLI's console and the
  error tree (``InsynError`` masks its message when it is built) call them,
  so no path around the gate exists.
* a ``case_id`` that looks like a personnummer is replaced by a keyed
  pseudonym (:func:`pseudonymise`): HMAC-SHA256 under a secret key that is
  never written to an artifact. The key comes from the environment variable
  ``INSYN_PSEUDONYM_KEY``; else from the key file named by
  ``INSYN_PSEUDONYM_KEY_FILE``; else from ``$XDG_CONFIG_HOME/insyn/pseudonym.key``
  (``~/.config/insyn/pseudonym.key``), created with mode 0600 on first use
  (:func:`pseudonym_key`). The same key gives the same pseudonym in every
  run, so a monitor can follow a case over months; without the key the
  roughly 10^4 numbers of one birth date cannot be tried against a pseudonym.
* :func:`neutralise_csv_cell` defuses spreadsheet formula injection in CSV
  output (OWASP: a cell starting with ``=``, ``+``, ``-``, ``@``, tab or
  carriage return is prefixed with ``'``), leaving numbers unchanged.

The pattern matches ``YYMMDD-NNNN``, ``YYMMDD+NNNN``, ``YYMMDDNNNN``,
``YYYYMMDDNNNN`` and ``YYYYMMDD-NNNN`` with a plausible month and day
(coordination numbers, *samordningsnummer*, add 60 to the day and are matched
too). Hexadecimal digests (SHA-256 hashes of files, pseudonyms) are not
personnummer and pass unchanged: a match inside a lowercase hexadecimal token
of 16 or more characters that holds a letter is left alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "GatedStream",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "MASK",
    "PNR_PATTERN",
    "PNR_RE2",
    "default_key_file",
    "looks_like_personnummer",
    "mask",
    "mask_frame",
    "mask_table",
    "mask_text_columns",
    "mask_value",
    "masked_json",
    "may_hold_personnummer",
    "neutralise_csv_cell",
    "neutralise_csv_frame",
    "pseudonym_key",
    "arrow_pnr_rows",
    "pnr_rows",
    "pseudonymise",
]

_PNR = r"(?:19|20)?\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]|6[1-9]|[78]\d|9[01])[-+]?\d{4}"
"""The one definition of a personnummer's shape: optional century, YYMMDD (day + 60 allowed), separator, 4 digits."""

_PNR_MIN_LENGTH = 10
"""The shortest text that can hold a personnummer (YYMMDDNNNN): shorter texts are never searched."""

PNR_PATTERN = re.compile(rf"(?<!\d){_PNR}(?!\d)")
"""A personnummer or samordningsnummer, with or without century and separator, not inside a longer number."""

PNR_RE2 = rf"(?:^|\D){_PNR}(?:\D|$)"
""":data:`PNR_PATTERN` without look-around, for RE2 engines (pyarrow's ``match_substring_regex``).

RE2 has no look-behind, so the digit boundaries are matched as characters;
searched as a substring this finds exactly the texts that hold a
personnummer. (RE2's ``\\d`` and ``\\D`` are ASCII; Python's also count
other scripts' digits.)
"""

_GATE_PATTERN = re.compile(rf"(?<!\d)(?<!\d\.){_PNR}(?!\d)")
""":data:`PNR_PATTERN`, not in the fraction of a decimal number (``0.8501011234`` in a JSON line is no personnummer)."""

MASK = "[personnummer removed]"
"""What a personnummer is replaced by in text."""

KEY_ENV = "INSYN_PSEUDONYM_KEY"
"""Environment variable holding the pseudonym key itself (any text of 16+ characters)."""

KEY_FILE_ENV = "INSYN_PSEUDONYM_KEY_FILE"
"""Environment variable naming the pseudonym key file (created with mode 0600 when absent)."""

_HEX_TOKEN = re.compile(r"[0-9a-f]{16,}")
_UUID = re.compile(r"(?<![0-9A-Za-z-])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-"
                   r"[0-9a-fA-F]{12}(?![0-9A-Za-z-])")
_WORD = re.compile(r"[0-9A-Za-z]")
_CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|nan)", re.IGNORECASE)


def _in_uuid(text: str, start: int, end: int) -> bool:
    """True when text[start:end] lies inside an RFC 4122 UUID that has a hex letter.

    A random UUID (e.g. great-expectations' expectation ids) can begin with
    eight digits that read as a date and four more (``19850312-1234-4a...``);
    it is an identifier, not a personnummer. A UUID of digits only is still
    masked.
    """
    for m in _UUID.finditer(text, max(0, start - 36), min(len(text), end + 36)):
        if m.start() <= start and end <= m.end() and any(c in "abcdefABCDEF" for c in m.group(0)):
            return True
    return False


def _is_digest(text: str, start: int, end: int) -> bool:
    """True when text[start:end] lies inside a lowercase hex token (>= 16 chars, with a letter) or a UUID."""
    if "-" in text and _in_uuid(text, start, end):
        return True
    lo, hi = start, end
    while lo > 0 and _WORD.match(text[lo - 1]):
        lo -= 1
    while hi < len(text) and _WORD.match(text[hi]):
        hi += 1
    token = text[lo:hi]
    return bool(_HEX_TOKEN.fullmatch(token)) and any(c in "abcdef" for c in token)


def mask(text: Any) -> Any:
    """Return ``text`` with every personnummer replaced by :data:`MASK` (the privacy gate for one text).

    Parameters
    ----------
    text : object
        A string; anything else is returned unchanged.

    Returns
    -------
    object
        The masked string, or ``text`` itself when it is not a string or
        holds no personnummer.
    """
    if not isinstance(text, str) or len(text) < _PNR_MIN_LENGTH or not _GATE_PATTERN.search(text):
        return text
    return _GATE_PATTERN.sub(lambda m: m.group(0) if _is_digest(text, m.start(), m.end()) else MASK, text)


def mask_value(value: Any) -> Any:
    """Mask every string inside a JSON-like value: dict keys and values, list items, nested.

    Parameters
    ----------
    value : object
        A string, number, None, or a dict/list/tuple of those.

    Returns
    -------
    object
        The same structure with :func:`mask` applied to every string.
    """
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {mask(k): mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(v) for v in value]
    return value


def may_hold_personnummer(value: Any) -> bool:
    """Whether a JSON-like value may hold a personnummer anywhere: in a string, a key or a number.

    The value is written as JSON text (``ensure_ascii=False``, anything
    else as its ``str``) and searched once with :data:`PNR_PATTERN`. Every
    string, key and whole number appears in that text as it is, with
    non-digits around it (quotes, commas, brackets), so a personnummer in
    any of them is found; False therefore means that none holds one. The
    answer is True (search the parts) for text with a ``\\u`` escape (an
    escaped control character ends in digits that could join a number
    after it) and for a value JSON cannot write. The text is searched with
    :func:`arrow_pnr_rows` (RE2 in Arrow for ASCII, :data:`PNR_PATTERN`
    otherwise, whose ``\\d`` also reads other scripts' digits).

    Parameters
    ----------
    value : object
        A dict, list, string or number, nested.

    Returns
    -------
    bool
    """
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return True
    if "\\u" in text:
        return True
    import pyarrow as pa

    return bool(arrow_pnr_rows(pa.array([text], type=pa.large_string()))[0])  # the gate's own search


def masked_json(value: Any, **options: Any) -> str:
    """``json.dumps(mask_value(value), ensure_ascii=False, **options)``: JSON text through the privacy gate.

    The same text, faster: a value that cannot hold a personnummer
    (:func:`may_hold_personnummer`) is written as it is, without walking it
    string by string.

    Parameters
    ----------
    value : object
        A JSON-like value.
    **options
        Passed to :func:`json.dumps` (``indent``, ``sort_keys``, ``allow_nan``, ...).

    Returns
    -------
    str
    """
    if not may_hold_personnummer(value):
        try:
            return json.dumps(value, ensure_ascii=False, **options)
        except TypeError:  # a Mapping that is no dict: mask_value makes it one
            pass
    return json.dumps(mask_value(value), ensure_ascii=False, **options)


def looks_like_personnummer(values: pd.Series) -> pd.Series:
    """Return a boolean Series: True where the value contains a personnummer.

    Parameters
    ----------
    values : pandas.Series
        Any values; non-strings are converted with ``str``.
    """
    return pd.Series(pnr_rows(values), index=values.index)


def default_key_file() -> Path:
    """Return where the pseudonym key lives when no environment variable names one.

    ``$XDG_CONFIG_HOME/insyn/pseudonym.key``, or ``~/.config/insyn/pseudonym.key``.
    """
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "insyn" / "pseudonym.key"


def pseudonym_key(path: str | Path | None = None) -> bytes:
    """Return the secret key for pseudonyms; create a key file (mode 0600) on first use.

    Order: ``INSYN_PSEUDONYM_KEY`` (the key itself); ``path``;
    ``INSYN_PSEUDONYM_KEY_FILE``; :func:`default_key_file`. A missing key
    file is created with 32 random bytes (hex) and mode 0600. The key is
    never written to any artifact.

    Parameters
    ----------
    path : str or Path, optional
        A key file to use instead of the default.

    Raises
    ------
    ValueError
        When the key given in ``INSYN_PSEUDONYM_KEY`` or the key file is
        shorter than 16 characters (too short to be a secret).
    """
    env = os.environ.get(KEY_ENV)
    if env:
        if len(env) < 16:
            raise ValueError(f"{KEY_ENV} must hold a secret of at least 16 characters. Got {len(env)}.")
        return env.encode()
    file = Path(path) if path else Path(os.environ[KEY_FILE_ENV]) if os.environ.get(KEY_FILE_ENV) else default_key_file()
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another run created it first
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(os.urandom(32).hex() + "\n")
    key = file.read_text(encoding="utf-8").strip()
    if len(key) < 16:
        raise ValueError(f"the pseudonym key file {file} must hold a secret of at least 16 characters. "
                         f"Got {len(key)}.")
    return key.encode()


def pseudonymise(values: pd.Series, *, key: bytes | str) -> pd.Series:
    """Replace each value by a keyed pseudonym: ``"p-"`` + 20 base32 letters of HMAC-SHA256(key, value).

    Parameters
    ----------
    values : pandas.Series
        The identifiers to replace.
    key : bytes or str
        The secret (see :func:`pseudonym_key`); the same key maps a value to
        the same pseudonym, in every run.
    """
    secret = key.encode() if isinstance(key, str) else key
    text = values.astype("str")
    mapping = {
        u: "p-" + base64.b32encode(hmac.new(secret, u.encode(), hashlib.sha256).digest()).decode()[:20].lower()
        for u in pd.unique(text)
    }
    return text.map(mapping).astype("str")


def arrow_pnr_rows(text: Any) -> np.ndarray:
    """Which texts of an Arrow string array hold a personnummer: ``PNR_PATTERN.search`` per text, fast.

    Only texts of at least ten bytes can hold one, so only those are
    searched (their lengths read from the array's offsets); a text that
    repeats is searched once. ASCII texts are searched with :data:`PNR_RE2`
    in Arrow (the same matches as :data:`PNR_PATTERN` for ASCII), texts
    with other characters (whose digits Python's ``\\d`` also counts) with
    :data:`PNR_PATTERN`. Nulls never match. Texts searched before in the
    same memory (a run's case ids pass the intake check, the decisions'
    gate and every step of the journey) are not searched again
    (:class:`_Scans`).

    Parameters
    ----------
    text : pyarrow.Array or pyarrow.ChunkedArray
        Strings (``string``, ``large_string`` or ``string_view``).

    Returns
    -------
    numpy.ndarray of bool
        One flag per text.
    """
    import pyarrow as pa

    if pa.types.is_string_view(text.type):  # no offsets to read lengths from, and no regex kernel
        text = text.cast(pa.large_string())
    chunks = list(text.chunks) if isinstance(text, pa.ChunkedArray) else [text]
    if not chunks:
        return np.zeros(0, dtype=bool)
    # a chunk that is another one's texts (a journey's ids, step after step) is searched once
    kept, which = _distinct_chunks(chunks) if len(chunks) > 1 else (chunks, [0])
    found: list[np.ndarray | None] = [_SCANS.get(c) for c in kept]
    todo = [k for k, f in enumerate(found) if f is None]
    if todo:  # the rest in one array: a text repeated in two chunks is searched once
        part = [kept[k] for k in todo]
        flags = _scan(part[0] if len(part) == 1 else pa.concat_arrays(part))
        bounds = np.cumsum([0, *(len(c) for c in part)])
        for j, k in enumerate(todo):
            found[k] = flags[bounds[j]: bounds[j + 1]]
            _SCANS.put(kept[k], found[k])
    return np.concatenate([found[k] for k in which])  # a new array: what is remembered is never handed out


def _scan(text: Any) -> np.ndarray:
    """:func:`arrow_pnr_rows` of one contiguous string or large-string array."""
    import pyarrow as pa

    found = np.zeros(len(text), dtype=bool)
    if len(text):
        long = _long_texts(text)
        if long.all():
            found[:] = _search(text)
        elif long.any():
            where = np.flatnonzero(long)
            found[where] = _search(text.take(pa.array(where)))
    return found


class _Scans:
    """What :func:`arrow_pnr_rows` found in recent arrays, by the memory that holds their texts.

    An Arrow array never changes, and a run hands the same texts from step
    to step (the case ids reach the intake check, the decisions' gate and
    the journey's rows in one buffer, sometimes cast from ``large_string``
    to ``string``). An entry is found by the address of the array's data
    buffer and its length, and taken only when the array reads the same
    bytes in the same places (:func:`_same_texts`). It holds the array, so
    that buffer stays alive and its address cannot be given to other texts
    while the entry lasts. Arrays of fewer than ``smallest`` texts are not
    remembered; the oldest entries go when the buffers held exceed
    ``limit`` bytes.

    Parameters
    ----------
    limit : int
        Bytes of buffers the entries may keep alive.
    smallest : int
        The fewest texts an array must hold to be remembered.
    """

    def __init__(self, *, limit: int, smallest: int) -> None:
        self._limit = limit
        self._smallest = smallest
        self._entries: OrderedDict[tuple[int, int], tuple[Any, np.ndarray, int]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    @staticmethod
    def _key(array: Any) -> tuple[int, int] | None:
        data = array.buffers()[2]
        return None if data is None else (data.address, len(array))

    def get(self, array: Any) -> np.ndarray | None:
        """The flags found before in an array that reads the same texts, or None."""
        if len(array) < self._smallest or (key := self._key(array)) is None:
            return None
        with self._lock:
            hit = self._entries.get(key)
        if hit is None or not _same_texts(hit[0], array):
            return None
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
        return hit[1]

    def put(self, array: Any, found: np.ndarray) -> None:
        """Remember the flags found in ``array`` (a no-op for a small array or one too large to hold)."""
        if len(array) < self._smallest or (key := self._key(array)) is None:
            return
        size = sum(b.size for b in array.buffers() if b is not None)
        if size > self._limit:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._held -= old[2]
            self._entries[key] = (array, found, size)
            self._held += size
            while self._held > self._limit:
                _, (_, _, gone) = self._entries.popitem(last=False)
                self._held -= gone


_SCANS = _Scans(limit=64 << 20, smallest=4096)
"""The one memory of :func:`arrow_pnr_rows`: up to 64 MiB of texts kept alive, arrays of 4,096 texts or more."""


def _distinct_chunks(chunks: list[Any]) -> tuple[list[Any], list[int]]:
    """The chunks of a string column that hold different texts, and for each chunk which of those it equals.

    Two chunks are taken as equal only when they read the same bytes of
    the same text buffer through equal offsets and equal validity: the
    same texts in the same places, whatever made them (a column sliced or
    taken in full by two steps of a journey). Anything else counts as
    different, so an equal text elsewhere is merely searched again.
    """
    kept: list[Any] = []
    which: list[int] = []
    by_buffer: dict[tuple[int, int | None], list[int]] = {}  # only chunks of one length and text buffer can agree
    for chunk in chunks:
        data = chunk.buffers()[2] if len(chunk) else None
        candidates = by_buffer.setdefault((len(chunk), None if data is None else data.address), [])
        for k in candidates:
            if _same_texts(chunk, kept[k]):
                which.append(k)
                break
        else:
            which.append(len(kept))
            candidates.append(len(kept))
            kept.append(chunk)
    return kept, which


def _same_texts(a: Any, b: Any) -> bool:
    """Whether two string arrays read the same bytes of one data buffer in the same places.

    Their offsets are compared as numbers, so a ``string`` and a
    ``large_string`` array over one data buffer (a cast) agree.
    """
    if len(a) != len(b) or a.null_count != b.null_count or not len(a):
        return False
    data_a, data_b = a.buffers()[2], b.buffers()[2]
    if data_a is None or data_b is None or data_a.address != data_b.address:
        return False
    if not np.array_equal(_offsets(a), _offsets(b)):
        return False
    return not a.null_count or a.is_valid().equals(b.is_valid())


def _offsets(text: Any) -> np.ndarray:
    """The ``len + 1`` offsets of an Arrow string or large-string array's texts into its data buffer."""
    import pyarrow as pa

    width = np.int64 if pa.types.is_large_string(text.type) else np.int32
    return np.frombuffer(text.buffers()[1], dtype=width)[text.offset: text.offset + len(text) + 1]


def _long_texts(text: Any) -> np.ndarray:
    """Flags of the texts of an Arrow string array that are not null and at least ten bytes long."""
    long = np.diff(_offsets(text)) >= _PNR_MIN_LENGTH
    if text.null_count and long.any():
        long &= text.is_valid().to_numpy(zero_copy_only=False)
    return long


_PROBE = 4096
"""How many of a column's first texts :func:`_search` reads to tell a column of few labels from one of ids."""


def _search(candidates: Any) -> np.ndarray:
    """``PNR_PATTERN.search`` per text of an Arrow string array without nulls; a repeated text searched once."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(candidates)
    if n > 64 and pc.count_distinct(candidates.slice(0, _PROBE)).as_py() * 4 <= min(n, _PROBE):
        # the first texts repeat (a column of a few labels): search each distinct text once
        encoded = pc.dictionary_encode(candidates)
        if len(encoded.dictionary) * 4 <= n:
            return _search(encoded.dictionary)[encoded.indices.to_numpy(zero_copy_only=False)]
    hit = pc.fill_null(pc.match_substring_regex(candidates, PNR_RE2), False).to_numpy(zero_copy_only=False)
    other = np.flatnonzero(~pc.fill_null(pc.string_is_ascii(candidates), True).to_numpy(zero_copy_only=False))
    if other.size:
        hit = hit.copy()
        hit[other] = [bool(PNR_PATTERN.search(v)) for v in candidates.take(pa.array(other)).to_pylist()]
    return hit


_SMALL = 4096
"""Up to this many values, :func:`pnr_rows` searches with Python's regex instead of Arrow's."""


def pnr_rows(values: pd.Series) -> np.ndarray:
    """Which values hold a personnummer-shaped substring: ``PNR_PATTERN.search(str(v))`` per value, fast.

    A Python regular expression over a million texts takes about a second;
    this searches in Arrow (:func:`arrow_pnr_rows`), and a categorical once
    per category. Missing values never match.

    Parameters
    ----------
    values : pandas.Series
        Text, object or categorical values.

    Returns
    -------
    numpy.ndarray of bool
        One flag per value.
    """
    import pyarrow as pa

    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = pd.Series(values.cat.categories, dtype="object")
        if not len(categories):
            return np.zeros(len(values), dtype=bool)
        by_category = np.append(pnr_rows(categories), False)  # code -1 (missing) never matches
        return by_category[values.cat.codes.to_numpy()]
    present = values.notna().to_numpy()
    if len(values) <= _SMALL:  # a few texts: Python's regex itself is quicker than a trip to Arrow
        return np.fromiter((bool(p) and len(v) >= _PNR_MIN_LENGTH and PNR_PATTERN.search(v) is not None
                            for v, p in zip(values.astype("str").tolist(), present, strict=True)),
                           dtype=bool, count=len(values))
    return arrow_pnr_rows(pa.array(values.astype("str"), type=pa.large_string(), from_pandas=True)) & present


def mask_text_columns(frame: pd.DataFrame, *, skip: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[str]]:
    """Mask personnummer-shaped substrings in every text column.

    Returns
    -------
    (frame, columns)
        A copy with masked values (the input is unchanged when nothing
        matched) and the names of the columns where something was masked.
    """
    changed: list[str] = []
    out = frame
    for col in frame.columns:
        if col in skip:
            continue
        s = frame[col]
        if not (pd.api.types.is_string_dtype(s) or s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype)):
            continue
        hit = pd.Series(pnr_rows(s), index=s.index)
        if hit.any():
            text = s.astype("str")
            if out is frame:
                out = frame.copy()
            masked = text[hit].map(mask)
            changed_here = masked != text[hit]
            if not changed_here.any():
                continue
            col_values = out[col].astype("object")
            col_values[masked.index[changed_here]] = masked[changed_here]
            out[col] = col_values
            changed.append(col)
    return out, changed


def mask_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with personnummer masked in its column names and in every text column.

    The gate for tables that are written (decisions, journey, failure tables).
    """
    out, _ = mask_text_columns(frame)
    names = [mask(c) if isinstance(c, str) else c for c in out.columns]
    if names != list(out.columns):
        out = out.copy() if out is frame else out
        out.columns = names
    return out


def neutralise_csv_cell(value: Any) -> Any:
    """Defuse a CSV cell that a spreadsheet would run as a formula (OWASP CSV injection), and mask it.

    A text starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return
    gets a leading ``'``, unless the whole text is a number (``-0.5``,
    ``+3``, ``-inf``), which is left unchanged. Non-strings pass unchanged.
    """
    if not isinstance(value, str):
        return value
    value = mask(value)
    if value.startswith(_CSV_TRIGGERS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralise_csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` with :func:`neutralise_csv_cell` applied to every text cell and column name."""
    out = frame.copy()
    out.columns = [neutralise_csv_cell(c) for c in out.columns]
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            out[col] = s.map(lambda v: neutralise_csv_cell(v) if isinstance(v, str) else v)
    return out




def mask_table(table: Any) -> Any:
    """Return a pyarrow Table with personnummer masked in its column names and string columns.

    The texts that hold one are found in Arrow (:func:`arrow_pnr_rows`,
    which searches a repeated text once), and only those pass through
    :func:`mask`; columns without a hit are kept as they are, and a
    dictionary or string-view column keeps its type.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for col in table.columns:
        text = col
        if pa.types.is_dictionary(col.type) and pa.types.is_string(col.type.value_type):
            text = col.cast(pa.string())
        elif pa.types.is_string_view(col.type):
            text = col.cast(pa.large_string())
        if pa.types.is_string(text.type) or pa.types.is_large_string(text.type):
            rows = np.flatnonzero(arrow_pnr_rows(text))
            if rows.size:
                flat = pa.concat_arrays(text.chunks) if isinstance(text, pa.ChunkedArray) else text
                masked = pa.array([mask(v) for v in flat.take(pa.array(rows)).to_pylist()], type=flat.type)
                hit = np.zeros(len(flat), dtype=bool)
                hit[rows] = True
                replaced = pa.chunked_array([pc.replace_with_mask(flat, pa.array(hit), masked)])
                col = replaced.cast(col.type) if text is not col else replaced  # a dictionary column stays one
        columns.append(col)
    names = [mask(n) for n in table.column_names]
    return pa.table(columns, names=names)


class GatedStream(io.TextIOBase):
    """A text stream that passes every write through :func:`mask` before it reaches ``target``.

    The command line wraps ``sys.stdout`` and ``sys.stderr`` in it for the
    whole command, so whatever is printed (Insyn's own output, rich tables,
    warnings, an engine's prints, a library's messages) passes the gate.
    Writes are buffered up to the end of a line so that a number split over
    two writes is still seen whole.

    Parameters
    ----------
    target : text stream
        The real stream.
    """

    def __init__(self, target: Any) -> None:
        super().__init__()
        self.target = target
        self._pending = ""

    def write(self, text: str) -> int:
        """Mask and forward complete lines; keep an unfinished line until the next write or flush."""
        data = self._pending + text
        head, sep, tail = data.rpartition("\n")
        if len(tail) > 4096:  # a very long line without end: forward it now
            head, sep, tail = data, "", ""
        self._pending = tail
        if head or sep:
            self.target.write(mask(head + sep))
        return len(text)

    def flush(self) -> None:
        """Forward what is pending and flush the real stream."""
        if self._pending:
            self.target.write(mask(self._pending))
            self._pending = ""
        self.target.flush()

    def isatty(self) -> bool:
        """Whether the real stream is a terminal."""
        return bool(getattr(self.target, "isatty", lambda: False)())

    def fileno(self) -> int:
        """The real stream's file descriptor."""
        return self.target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The real stream's encoding."""
        return getattr(self.target, "encoding", "utf-8") or "utf-8"

    def writable(self) -> bool:
        """Always True."""
        return True
