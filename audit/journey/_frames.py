"""Per-case lineage, computed column-wise: row hashes, id alignment, changes.

A step hands the journey the case frame before and after it ran. For every
case this module works out, without a Python loop over rows:

* the content hash of the case's row after the step, equal to
  ``pd.util.hash_pandas_object(after, index=False)``;
* where the case was before the step (the frames are aligned by ``case_id``,
  not by position, because a step may drop, add or reorder rows);
* which fields changed, as a ``;``-joined list of column names, and the old
  and new values of those fields as a small JSON object.

Hashing is the expensive part on large frames (about 0.6 s for 1,000,000
cases of the assistance frame). Pandas under copy-on-write shares the buffers
of a column between frames until one of them writes, so a column whose
buffers are the ones already hashed at an earlier step keeps its hash, and a
column whose values did not change keeps the hash of the old column, moved
to the new row order. Only new or changed columns are hashed again; the
per-column hashes are then combined in exactly the way pandas combines them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audit._arrays import codes_of, mostly_distinct
from audit._ids import known_unique
from audit.exceptions import DataError

_NEEDS_ESCAPE = r'["\\\x00-\x1f]'
"""Characters that a JSON string cannot hold as they are (RE2 syntax)."""


# --------------------------------------------------------------------------
# hashing


def combine_hashes(arrays: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Combine per-column hashes into one hash per row, as pandas does.

    This is the algorithm of ``pandas.core.util.hashing.combine_hash_arrays``
    (CPython's tuple hash), so that the result equals
    ``pd.util.hash_pandas_object(frame, index=False)`` when ``arrays`` are the
    hashes of the frame's columns in order.

    Parameters
    ----------
    arrays : sequence of numpy.ndarray
        One ``uint64`` array per column, all of length ``length``.
    length : int
        Number of rows (used when there are no columns).

    Returns
    -------
    numpy.ndarray
        ``uint64`` row hashes.
    """
    num_items = len(arrays)
    if num_items == 0:
        return np.full(length, 0x345678 + 97531, dtype=np.uint64)
    mult = np.uint64(1000003)
    out = np.full(length, 0x345678, dtype=np.uint64)
    for i, a in enumerate(arrays):
        inverse_i = num_items - i
        out ^= a
        out *= mult
        mult = np.uint64((int(mult) + 82520 + inverse_i + inverse_i) % (1 << 64))
    out += np.uint64(97531)
    return out


def column_hash(values: pd.Series) -> np.ndarray:
    """Return the ``uint64`` hash of each value of a column (pandas' hash).

    Pandas hashes a text column's distinct values and spreads them over the
    rows (``categorize``), which pays when values repeat and costs a
    dictionary of every value when they do not: a column that looks like
    ids (:func:`audit._arrays.mostly_distinct`) is hashed value by value.
    The hashes are the same either way, except for a missing value, which
    pandas hashes differently without the dictionary: a column with one is
    always hashed by distinct value. The distinct values of a
    ``str`` column are numbered by :func:`audit._arrays.codes_of`, once per
    column array (the checks and the statistics number the same columns),
    and a missing value gets pandas' marker for one, the largest ``uint64``.
    """
    if not isinstance(values.dtype, pd.StringDtype):
        return pd.util.hash_pandas_object(values, index=False, categorize=True).to_numpy(dtype=np.uint64, copy=False)
    if not values.hasnans and mostly_distinct(values):
        return pd.util.hash_pandas_object(values, index=False, categorize=False).to_numpy(dtype=np.uint64,
                                                                                           copy=False)
    codes, uniques = codes_of(values)
    hashed = pd.util.hash_array(np.asarray(uniques, dtype=object), categorize=False)
    out = hashed.take(np.maximum(codes, 0)) if len(hashed) else np.zeros(len(codes), dtype=np.uint64)
    out[codes < 0] = np.iinfo(np.uint64).max  # pandas' hash of a missing value among categories
    return out


def fingerprint(values: pd.Series) -> tuple[Any, ...] | None:
    """Identify the memory that holds a column, or None when it cannot be told.

    Two columns with the same fingerprint share their buffers and hence their
    values (pandas copy-on-write never writes into a buffer that another
    object still refers to). Only numpy columns (not ``object``) and
    pyarrow-backed columns are fingerprinted.
    """
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind == "O":
            return None
        arr = values.to_numpy(copy=False)
        ai = arr.__array_interface__
        return ("np", dtype.str, ai["data"][0], ai["shape"], ai["strides"])
    array = values.array
    if isinstance(array, pd.arrays.ArrowExtensionArray):
        chunked = array.__arrow_array__()
        return (
            "pa",
            str(dtype),
            len(values),
            tuple(
                (chunk.offset, len(chunk), tuple(0 if b is None else b.address for b in chunk.buffers()))
                for chunk in chunked.chunks
            ),
        )
    return None


class _Lazy:
    """A column hash moved to a new row order on first use (``hashes[pos]``).

    With ``runs`` (few runs of consecutive rows, see :func:`_runs`) the move
    is a concatenation of slices, which is much cheaper than a gather.
    """

    __slots__ = ("_hashes", "_pos", "_runs")

    def __init__(self, hashes: np.ndarray, pos: np.ndarray, runs: list[tuple[int, int, int]] | None = None) -> None:
        self._hashes = hashes
        self._pos: np.ndarray | None = pos
        self._runs = runs

    def get(self) -> np.ndarray:
        if self._pos is not None:
            if self._runs is not None:
                h = self._hashes
                self._hashes = np.concatenate([h[b : b + k] for _, b, k in self._runs]) if self._runs else h[:0]
            else:
                self._hashes = self._hashes[self._pos]
            self._pos = None
            self._runs = None
        return self._hashes


def _value(h: np.ndarray | _Lazy) -> np.ndarray:
    return h.get() if isinstance(h, _Lazy) else h


class HashCache:
    """Column hashes of recent frames, keyed by the column's fingerprint and name.

    Each entry keeps a reference to the column it was computed from, so its
    buffers stay alive (an address cannot be reused by another array) and
    pandas knows that the buffer is shared (a later in-place write copies).
    Entries not used by the last ``keep`` frames are forgotten.

    Parameters
    ----------
    keep : int, default 4
        How many recent frames' columns to remember.
    """

    def __init__(self, *, keep: int = 4) -> None:
        self._by_key: dict[tuple[Any, ...], tuple[pd.Series, np.ndarray | _Lazy, int]] = {}
        self._by_name: dict[str, list[tuple[tuple[Any, ...], pd.Series, np.ndarray | _Lazy, int]]] = {}
        self._rows: dict[tuple[Any, ...], np.ndarray] = {}
        self._generation = 0
        self._keep = keep

    def __len__(self) -> int:
        return len(self._by_key)

    def next_frame(self) -> None:
        """Start a new frame: entries not used by the last ``keep`` frames go."""
        self._generation += 1
        oldest = self._generation - self._keep
        self._by_key = {k: v for k, v in self._by_key.items() if v[2] > oldest}
        self._by_name = {
            name: kept
            for name, entries in self._by_name.items()
            if (kept := [e for e in entries if e[0] in self._by_key])
        }
        self._rows = {k: v for k, v in self._rows.items() if all(c in self._by_key for c in k[1])}

    def get_rows(self, names: tuple[str, ...], keys: tuple[tuple[Any, ...] | None, ...]) -> np.ndarray | None:
        """The row hashes of a frame whose columns (names and buffers) were hashed before."""
        if any(k is None for k in keys):
            return None
        return self._rows.get((names, keys))

    def put_rows(self, names: tuple[str, ...], keys: tuple[tuple[Any, ...] | None, ...], hashes: np.ndarray) -> None:
        """Remember a frame's row hashes (only when all its columns have fingerprints)."""
        if all(k is not None and k in self._by_key for k in keys):
            self._rows[(names, keys)] = hashes

    def get(self, key: tuple[Any, ...] | None, name: str, values: pd.Series) -> np.ndarray | None:
        """Return the hash of a column seen before, or None.

        A column is found by its fingerprint, or else by an earlier column of
        the same name, dtype and length that holds identical values (a cheap
        comparison next to hashing, e.g. a copied id column).
        """
        if key is not None:
            hit = self._by_key.get(key)
            if hit is not None:
                hashes = _value(hit[1])
                self._by_key[key] = (hit[0], hashes, self._generation)
                return hashes
        for old_key, old_values, _, _ in self._by_name.get(name, ()):
            hit = self._by_key.get(old_key)
            if hit is not None and identical(old_values, values):
                hashes = _value(hit[1])
                self._by_key[old_key] = (hit[0], hashes, self._generation)
                return hashes
        return None

    def put(self, key: tuple[Any, ...] | None, name: str, values: pd.Series, hashes: np.ndarray | _Lazy) -> None:
        """Remember the hash of a column (no-op when it has no fingerprint)."""
        if key is None:
            return
        if key not in self._by_key:
            self._by_name.setdefault(name, []).append((key, values, hashes, self._generation))
        self._by_key[key] = (values, hashes, self._generation)


def identical(a: pd.Series, b: pd.Series) -> bool:
    """True when two columns hold bit-for-bit the same values (same dtype)."""
    if len(a) != len(b) or str(a.dtype) != str(b.dtype):
        return False
    if isinstance(a.dtype, np.dtype):
        if a.dtype.kind == "O":
            return False
        va, vb = a.to_numpy(copy=False), b.to_numpy(copy=False)
        if va.dtype.itemsize not in (1, 2, 4, 8):
            return False
        return bool(np.array_equal(va.view(f"u{va.dtype.itemsize}"), vb.view(f"u{vb.dtype.itemsize}")))
    if isinstance(a.array, pd.arrays.ArrowExtensionArray) and isinstance(b.array, pd.arrays.ArrowExtensionArray):
        return bool(a.array.__arrow_array__().equals(b.array.__arrow_array__()))
    return False


# --------------------------------------------------------------------------
# ids and alignment


def id_strings(frame: pd.DataFrame, id_column: str, *, step: str, which: str) -> pd.Series:
    """Return the case ids of a frame as a ``str`` column (not yet checked, see :func:`check_present`)."""
    if id_column not in frame.columns:
        raise DataError(
            f"step {step}: the {which} frame has no id column {id_column!r}. "
            f"Columns: {', '.join(map(str, frame.columns))}."
        )
    ids = frame[id_column]
    if not isinstance(ids.dtype, pd.StringDtype):
        ids = ids.astype("str")
    return ids.reset_index(drop=True)


def _empty_rows(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Rows holding a missing or empty string (read from the offsets, no string is touched)."""
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    out: list[np.ndarray] = []
    start = 0
    for chunk in chunks:
        n = len(chunk)
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)[chunk.offset : chunk.offset + n + 1]
        bad = np.diff(offsets) == 0
        if chunk.null_count:
            bad |= ~np.asarray(chunk.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        out.append(np.flatnonzero(bad) + start)
        start += n
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


def check_present(ids: pd.Series, *, step: str, which: str, id_column: str) -> None:
    """Raise DataError when a case id is missing or empty."""
    rows = _empty_rows(string_array(ids))
    if len(rows):
        raise DataError(
            f"step {step}: {which}[{id_column!r}] has {len(rows)} missing or empty case id(s), "
            f"first at row {int(rows[0])}. Every case needs an id."
        )


def string_array(values: pd.Series | pd.Index) -> pa.Array | pa.ChunkedArray:
    """Ids or labels as pyarrow strings (zero-copy for pandas ``str`` columns; chunks kept)."""
    if not isinstance(values.dtype, pd.StringDtype):
        values = values.astype("str")
    arr = values.array.__arrow_array__()
    return arr if arr.type == pa.string() else arr.cast(pa.string())


def value_set(values: pd.Series | pd.Index) -> pa.Array:
    """Ids or labels as one pyarrow string array (for ``value_set=`` arguments)."""
    arr = string_array(values)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def constant_strings(value: str, n: int) -> pa.Array:
    """A string array of ``n`` copies of ``value``, built from two buffers."""
    data = value.encode("utf-8")
    size = len(data)
    offsets = np.arange(0, (n + 1) * size, size, dtype=np.int64) if size else np.zeros(n + 1, dtype=np.int64)
    if offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data * n))
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data * n)).cast(pa.string())


def is_in(values: pd.Series | pd.Index, labels: pd.Series | pd.Index) -> np.ndarray:
    """``values.isin(labels)`` for strings, with pyarrow's hash kernels.

    pandas' ``isin`` on pyarrow strings loops over ``labels`` in Python,
    which takes seconds for large sets. Build the hash table on the smaller
    side: pass the few labels, not the million ids, as ``labels``.
    """
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    if len(labels) == 0:
        return np.zeros(len(values), dtype=bool)
    hit = pc.is_in(string_array(values), value_set=value_set(labels))
    return hit.to_numpy(zero_copy_only=False).astype(bool, copy=False)


def match(ids: pd.Series | pd.Index, labels: pd.Series | pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``ids`` whose id is in ``labels``, and the position of that id in ``labels``.

    Fast when ``labels`` is small next to ``ids`` (hash tables are built on
    ``labels`` and on the matching ids only). Both must be unique.
    """
    rows = np.flatnonzero(is_in(ids, labels))
    if len(rows) == 0:
        return rows, np.empty(0, dtype=np.int64)
    found = string_array(ids).take(pa.array(rows))
    where = pc.index_in(found, value_set=value_set(labels)).to_numpy(zero_copy_only=False)
    return rows, where.astype(np.int64)


def ids_equal(a: pd.Series, b: pd.Series) -> bool:
    """True when two id columns hold the same ids in the same order."""
    if len(a) != len(b):
        return False
    ka, kb = fingerprint(a), fingerprint(b)
    if ka is not None and ka == kb:
        return True
    return bool(string_array(a).equals(string_array(b)))


def check_unique(ids: pd.Series, *, step: str, which: str, id_column: str) -> None:
    """Raise DataError naming the first duplicated case id."""
    if ids.is_unique:
        return
    dup = ids[ids.duplicated()].iloc[0]
    n = int(ids.duplicated(keep=False).sum())
    raise DataError(
        f"step {step}: {which}[{id_column!r}] holds case id {dup!r} more than once "
        f"({n} rows share a duplicated id). Expected one row per case."
    )


@dataclass
class Alignment:
    """Where each row of ``after`` was in ``before``.

    ``pos`` is None when the rows are the same cases in the same order;
    otherwise ``pos[i]`` is the row of ``before`` that holds the case of row
    ``i`` of ``after``, or -1 for a case that was not there.
    """

    pos: np.ndarray | None
    gone: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """Rows of ``before`` whose case is not in ``after``."""


def align(
    before_ids: pd.Series,
    after_ids: pd.Series,
    *,
    removed: pd.Index | None,
    step: str,
    id_column: str,
) -> Alignment:
    """Align two id columns; cheap when ``after`` keeps ``before``'s order.

    Parameters
    ----------
    before_ids, after_ids : pandas.Series
        Unique ids (``before_ids`` must already be known to be unique).
    removed : pandas.Index, optional
        Ids the step said it rejected or errored; used for the common case
        where ``after`` is ``before`` without them, in the same order.
    step, id_column : str
        For error messages.

    Returns
    -------
    Alignment
    """
    n_before = len(before_ids)
    if ids_equal(before_ids, after_ids):
        return Alignment(pos=None)
    if removed is not None and len(removed) and len(after_ids) < n_before:
        keep = ~is_in(before_ids, removed)
        if int(keep.sum()) == len(after_ids) and ids_equal(before_ids[keep].reset_index(drop=True), after_ids):
            return Alignment(pos=np.flatnonzero(keep), gone=np.flatnonzero(~keep))
    pos_arr = pc.index_in(string_array(after_ids), value_set=value_set(before_ids))
    pos = pos_arr.to_numpy(zero_copy_only=False)
    pos = np.where(np.isnan(pos), -1, pos).astype(np.int64) if pos.dtype.kind == "f" else pos.astype(np.int64)
    found = pos[pos >= 0]
    if len(found):
        counts = np.bincount(found, minlength=n_before)
        if counts.max() > 1:
            first = int(np.flatnonzero(counts > 1)[0])
            raise DataError(
                f"step {step}: after[{id_column!r}] holds case id {before_ids.iloc[first]!r} more than once. "
                "Expected one row per case."
            )
    new = after_ids[pos < 0]
    if len(new):
        check_unique(new, step=step, which="after", id_column=id_column)
    present = np.zeros(n_before, dtype=bool)
    present[found] = True
    return Alignment(pos=pos, gone=np.flatnonzero(~present))


# --------------------------------------------------------------------------
# changes


def _take(values: pd.Series, pos: np.ndarray | None) -> pd.Series:
    """``values`` at positions ``pos`` (all of it when None), with a fresh RangeIndex."""
    if pos is None:
        return values.reset_index(drop=True)
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        return pd.Series(values.to_numpy(copy=False)[pos], dtype=dtype, copy=False)
    array = values.array
    if isinstance(array, pd.arrays.ArrowExtensionArray):
        taken = array.__arrow_array__().take(pa.array(pos))
        return pd.Series(dtype.__from_arrow__(taken), copy=False)
    return values.take(pos).reset_index(drop=True)


def differs(old: pd.Series, new: pd.Series) -> np.ndarray:
    """Element-wise "value changed" for two aligned columns (missing == missing)."""
    old = old.reset_index(drop=True)
    new = new.reset_index(drop=True)
    try:
        ne = old.ne(new)
    except (TypeError, ValueError):
        ne = old.astype(object).ne(new.astype(object))
    both_missing = (old.isna() & new.isna()).to_numpy(dtype=bool)
    if not isinstance(ne.dtype, np.dtype):
        ne = ne.fillna(True)
    return ne.to_numpy(dtype=bool) & ~both_missing


@dataclass
class FrameLineage:
    """What :func:`frame_lineage` found out about one step's frames."""

    ids: pd.Series
    row_hash: np.ndarray
    changed_fields: pa.Array
    values: pa.Array
    change_counts: dict[str, int]
    columns_added: list[str]
    columns_changed: list[str]
    columns_dropped: list[str]
    columns_retyped: list[str]
    alignment: Alignment | None
    before_ids: pd.Series | None
    before_hash: np.ndarray | None


def _verify_unique(
    frame: pd.DataFrame, ids: pd.Series, id_column: str, cache: HashCache, *, step: str, which: str
) -> None:
    """Check that the ids are unique, via the id column's hash when it is a ``str`` column.

    The hash is needed for the row hashes anyway, and distinct hashes prove
    distinct ids; only when two hashes collide are the ids compared.
    """
    raw = frame[id_column]
    if known_unique(raw):  # the same ids were found unique before (the population's, the engine's contract)
        return
    if isinstance(raw.dtype, pd.StringDtype):
        key = fingerprint(raw)
        h = cache.get(key, str(id_column), raw)
        if h is None:
            h = column_hash(raw)
            cache.put(key, str(id_column), raw, h)
        if pd.Index(h).is_unique:
            return
    check_unique(ids, step=step, which=which, id_column=id_column)


def _runs(pos: np.ndarray | None, n: int, *, limit: int = 256) -> list[tuple[int, int, int]] | None:
    """Split an increasing alignment into runs of consecutive rows: (start in after, start in before, length).

    None when the alignment is not increasing or has more than ``limit`` runs
    (then comparing gathered columns is cheaper).
    """
    if pos is None:
        return [(0, 0, n)]
    if n == 0:
        return []
    steps = np.diff(pos)
    if (steps <= 0).any():
        return None
    breaks = np.flatnonzero(steps != 1) + 1
    if len(breaks) >= limit:
        return None
    starts = [0, *breaks.tolist()]
    ends = [*breaks.tolist(), n]
    return [(a, int(pos[a]), b - a) for a, b in zip(starts, ends, strict=True)]


def identical_runs(old: pd.Series, new: pd.Series, runs: list[tuple[int, int, int]]) -> bool:
    """True when ``new`` equals ``old`` (bit for bit) at the aligned runs, compared on views."""
    if str(old.dtype) != str(new.dtype):
        return False
    if isinstance(old.dtype, np.dtype):
        if old.dtype.kind == "O" or old.dtype.itemsize not in (1, 2, 4, 8):
            return False
        u = f"u{old.dtype.itemsize}"
        vo = old.to_numpy(copy=False).view(u)
        vn = new.to_numpy(copy=False).view(u)
        return all(np.array_equal(vo[b : b + k], vn[a : a + k]) for a, b, k in runs)
    if isinstance(old.array, pd.arrays.ArrowExtensionArray) and isinstance(new.array, pd.arrays.ArrowExtensionArray):
        co = old.array.__arrow_array__()
        cn = new.array.__arrow_array__()
        return all(co.slice(b, k).equals(cn.slice(a, k)) for a, b, k in runs)
    return False


def _frame_keys(frame: pd.DataFrame) -> tuple[tuple[str, ...], tuple[tuple[Any, ...] | None, ...]]:
    return tuple(str(c) for c in frame.columns), tuple(fingerprint(frame[c]) for c in frame.columns)


def _hash_frame(
    frame: pd.DataFrame,
    cache: HashCache,
    *,
    reuse: dict[str, np.ndarray | _Lazy] | None = None,
) -> np.ndarray:
    """Row hashes of ``frame``; reuse known row or column hashes where possible."""
    names, keys = _frame_keys(frame)
    labels = list(frame.columns)
    known = cache.get_rows(names, keys)
    if known is not None:
        for label, name, key in zip(labels, names, keys, strict=True):
            cache.get(key, name, frame[label])  # keep the columns' entries fresh
        return known
    arrays: list[np.ndarray] = []
    for label, name, key in zip(labels, names, keys, strict=True):
        col = frame[label]
        h = cache.get(key, name, col)
        if h is None and reuse is not None and label in reuse:
            h = _value(reuse[label])
        if h is None:
            h = column_hash(col)
        cache.put(key, name, col, h)
        arrays.append(h)
    out = combine_hashes(arrays, len(frame))
    cache.put_rows(names, keys, out)
    return out


def frame_lineage(
    before: pd.DataFrame | None,
    after: pd.DataFrame,
    *,
    id_column: str,
    step: str,
    cache: HashCache,
    verified: list[pd.Series],
    removed: pd.Index | None,
    want_before_hash: bool,
) -> FrameLineage:
    """Compute the per-case lineage of one step (see the module docstring).

    Parameters
    ----------
    before : pandas.DataFrame, optional
        The frame the step started from; None at a step that creates cases.
    after : pandas.DataFrame
        The frame the step produced.
    id_column : str
        The column that identifies a case.
    step : str
        The step's name, for error messages.
    cache : HashCache
        Column hashes of earlier frames; updated.
    verified : list of pandas.Series
        Id columns already known to be unique; updated (the last four kept).
    removed : pandas.Index, optional
        Ids the step rejected or errored.
    want_before_hash : bool
        Also return the row hashes of ``before`` (for cases that left).

    Returns
    -------
    FrameLineage
    """
    cache.next_frame()
    after_ids = id_strings(after, id_column, step=step, which="after")
    before_ids = id_strings(before, id_column, step=step, which="before") if before is not None else None
    n = len(after)

    alignment: Alignment | None = None
    if before is not None and before_ids is not None:
        if not any(ids_equal(v, before_ids) for v in verified):
            check_present(before_ids, step=step, which="before", id_column=id_column)
            _verify_unique(before, before_ids, id_column, cache, step=step, which="before")
            verified.append(before_ids)
        if not any(ids_equal(v, after_ids) for v in verified):
            check_present(after_ids, step=step, which="after", id_column=id_column)
        alignment = align(before_ids, after_ids, removed=removed, step=step, id_column=id_column)
    elif not any(ids_equal(v, after_ids) for v in verified):
        check_present(after_ids, step=step, which="after", id_column=id_column)
        _verify_unique(after, after_ids, id_column, cache, step=step, which="after")
    if not any(ids_equal(v, after_ids) for v in verified):
        verified.append(after_ids)
    del verified[:-4]

    before_cols = list(before.columns) if before is not None else []
    after_cols = list(after.columns)
    before_set = set(before_cols)
    after_set = set(after_cols)
    added = [c for c in after_cols if c not in before_set] if before is not None else []
    dropped = [c for c in before_cols if c not in after_set]
    common = [c for c in after_cols if c in before_set and c != id_column]

    masks: dict[str, np.ndarray] = {}
    reuse: dict[str, np.ndarray | _Lazy] = {}
    unchanged: set[str] = set()
    retyped: list[str] = []
    if before is not None and alignment is not None:
        pos = alignment.pos
        valid = None if pos is None else pos >= 0
        all_valid = valid is None or bool(valid.all())
        safe_pos = None if pos is None else np.where(pos >= 0, pos, 0)
        runs = _runs(pos, n) if all_valid else None
        for c in [*common, *([id_column] if id_column in before_set and id_column in after_set else [])]:
            old_col, new_col = before[c], after[c]
            same_dtype = str(old_col.dtype) == str(new_col.dtype)
            if not same_dtype and c != id_column:
                retyped.append(c)
            key_old = fingerprint(old_col)
            if pos is None and key_old is not None and key_old == fingerprint(new_col):
                unchanged.add(c)
                continue
            if same_dtype and runs is not None and identical_runs(old_col, new_col, runs):
                unchanged.add(c)
                h_old = cache.get(key_old, str(c), old_col)
                if h_old is not None:
                    reuse[c] = h_old if pos is None else _Lazy(h_old, pos, runs)
                continue
            old_aligned = _take(old_col, safe_pos)
            if same_dtype and all_valid and runs is None and identical(old_aligned, new_col):
                unchanged.add(c)
                h_old = cache.get(key_old, str(c), old_col)
                if h_old is not None:
                    reuse[c] = h_old if pos is None else h_old[pos]
                continue
            if c == id_column:
                continue
            mask = differs(old_aligned, new_col)
            if valid is not None:
                mask &= valid
            if mask.any():
                masks[c] = mask

    before_hash = _hash_frame(before, cache) if want_before_hash and before is not None else None
    row_hash = None
    if before is not None and alignment is not None and before_cols == after_cols and unchanged == set(after_cols):
        # every column kept its values: the rows are the old rows, moved
        old_rows = before_hash if before_hash is not None else cache.get_rows(*_frame_keys(before))
        if old_rows is not None:
            row_hash = old_rows if alignment.pos is None else old_rows[alignment.pos]
            for label, h in reuse.items():
                cache.put(fingerprint(after[label]), str(label), after[label], h)
    if row_hash is None:
        row_hash = _hash_frame(after, cache, reuse=reuse)

    changed_cols = [c for c in common if c in masks]
    counts = {str(c): int(masks[c].sum()) for c in changed_cols}
    changed_fields, values = _changes(before, after, alignment, masks, changed_cols, n)
    return FrameLineage(
        ids=after_ids,
        row_hash=row_hash,
        changed_fields=changed_fields,
        values=values,
        change_counts=counts,
        columns_added=[str(c) for c in added],
        columns_changed=[str(c) for c in changed_cols],
        columns_dropped=[str(c) for c in dropped],
        columns_retyped=[str(c) for c in retyped],
        alignment=alignment,
        before_ids=before_ids,
        before_hash=before_hash,
    )


def _changes(
    before: pd.DataFrame | None,
    after: pd.DataFrame,
    alignment: Alignment | None,
    masks: dict[str, np.ndarray],
    changed_cols: list[str],
    n: int,
) -> tuple[pa.Array, pa.Array]:
    """Build the ``changed_fields`` and ``values`` columns (one entry per row of ``after``)."""
    if not changed_cols or before is None or alignment is None:
        return constant_strings("", n), pa.nulls(n, pa.string())
    any_changed = np.zeros(n, dtype=bool)
    for c in changed_cols:
        any_changed |= masks[c]
    rows = np.flatnonzero(any_changed)
    pos = alignment.pos
    old_rows = rows if pos is None else pos[rows]
    name_parts: list[pa.Array] = []
    value_parts: list[pa.Array] = []
    for c in changed_cols:
        m = pa.array(masks[c][rows])
        name_parts.append(pc.if_else(m, f"{c};", ""))
        old_text = json_text(before[c].take(old_rows))
        new_text = json_text(after[c].take(rows))
        key = json.dumps(str(c), ensure_ascii=False)
        pair = pc.binary_join_element_wise(f"{key}:[", old_text, ",", new_text, "],", "")
        value_parts.append(pc.if_else(m, pair, ""))
    names = pc.utf8_slice_codeunits(pc.binary_join_element_wise(*name_parts, ""), 0, -1)
    body = pc.utf8_slice_codeunits(pc.binary_join_element_wise(*value_parts, ""), 0, -1)
    objects = pc.binary_join_element_wise("{", body, "}", "")
    mask = pa.array(any_changed)
    changed_fields = pc.replace_with_mask(constant_strings("", n), mask, names)
    values = pc.replace_with_mask(pa.nulls(n, pa.string()), mask, objects)
    return changed_fields, values


# --------------------------------------------------------------------------
# JSON text of values, vectorised


def _to_arrow(values: pd.Series) -> pa.Array:
    try:
        arr = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        text = values.astype(object).where(values.notna(), None).map(lambda v: v if v is None else str(v))
        arr = pa.array(text.tolist(), type=pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def _quote(arr: pa.Array) -> pa.Array:
    """JSON string literals for a string array (nulls stay null)."""
    quoted = pc.binary_join_element_wise('"', arr, '"', "")
    needs = pc.fill_null(pc.match_substring_regex(arr, _NEEDS_ESCAPE), False)
    if pc.any(needs).as_py():
        idx = np.flatnonzero(needs.to_numpy(zero_copy_only=False))
        exact = [json.dumps(v, ensure_ascii=False) for v in pc.take(arr, pa.array(idx)).to_pylist()]
        quoted = pc.replace_with_mask(quoted, needs, pa.array(exact, type=pa.string()))
    return quoted


def json_text(values: pd.Series) -> pa.Array:
    """Return the JSON text of each value (``null`` for a missing value).

    Booleans become ``true``/``false``, integers and finite floats numbers,
    infinite floats the strings ``"inf"``/``"-inf"``, and everything else a
    JSON string of its text form. Only values that need escaping go through
    :func:`json.dumps`; the rest is built with pyarrow compute kernels.
    """
    arr = _to_arrow(values)
    t = arr.type
    if pa.types.is_boolean(t):
        text = pc.if_else(arr, "true", "false")
    elif pa.types.is_integer(t):
        text = pc.cast(arr, pa.string())
    elif pa.types.is_floating(t):
        nan = pc.fill_null(pc.is_nan(arr), False)
        arr = pc.if_else(nan, pa.scalar(None, type=t), arr)
        raw = pc.cast(arr, pa.string())
        inf = pc.fill_null(pc.is_inf(arr), False)
        text = pc.if_else(inf, pc.binary_join_element_wise('"', raw, '"', ""), raw)
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        text = _quote(arr.cast(pa.string()))
    else:
        try:
            as_str = pc.cast(arr, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            as_str = pa.array([None if v is None else str(v) for v in arr.to_pylist()], type=pa.string())
        text = _quote(as_str)
    return pc.fill_null(text, "null")
