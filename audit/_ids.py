"""Case ids: which of many ids are among many others, without pandas' slow path for text.

Every case carries a ``case_id`` (text), and several steps ask, for each
case, whether its id is in another step's set of ids: did it pass intake,
was it given to the engine, does the decision log hold it. pandas 3 answers
``Series.isin`` on its Arrow-backed text by turning every allowed value into
a Python object, about ten seconds for a million against a million. Arrow's
hash-based ``is_in`` answers the same question in well under a second, and
its ``index_in`` says where each id is, so that frames keyed by case id are
aligned by position instead of through a text index.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit._arrays import known, remembered
from audit._background import on_every_core

__all__ = ["HashPool", "HashRef", "RepeatCounter", "distinct", "ids_in", "is_unique", "known_unique", "positions",
           "reindex_by_id", "repeated_count"]


def is_unique(values: pd.Series) -> bool:
    """``values.is_unique``, remembered for a ``str`` column's own Arrow array.

    A run asks whether its case ids are unique at several steps (the
    population's mapping, the engine's decision contract, the group
    statistics), and each asks of the same ids: the array a ``str`` column
    holds is immutable and passes from frame to frame under copy-on-write.
    The answer is kept while the array lives (:func:`audit._arrays.remembered`);
    any other column (numpy-backed, or text held as Python objects) is asked
    afresh.
    """
    return remembered(values, "unique", _unique)


def known_unique(values: pd.Series) -> bool:
    """True when ``values`` were found unique before (:func:`is_unique`) and their array still holds them.

    Asks nothing: False means not known, not duplicated.
    """
    return known(values, "unique") is True


def _unique(values: pd.Series) -> bool:
    return bool(values.is_unique)


def ids_in(ids: Any, allowed: Any) -> np.ndarray:
    """For each id, whether it is among ``allowed``, comparing both as text.

    Parameters
    ----------
    ids : array_like
        The ids to look up (a Series, Index, array or list); missing values
        are never found.
    allowed : array_like
        The ids to look in.

    Returns
    -------
    numpy.ndarray of bool
        One flag per id, in order.
    """
    import pyarrow.compute as pc

    looked, pool = _text(ids), _text(allowed)
    if _same(looked, pool):  # the common case (no case left the step): no hashing
        return np.ones(len(looked), dtype=bool)
    found = pc.is_in(looked, value_set=pool, skip_nulls=True)
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False)


def positions(ids: Any, among: Any) -> np.ndarray:
    """For each id, its position in ``among`` (the first, if it repeats), or -1 when it is not there.

    Parameters
    ----------
    ids : array_like
        The ids to look up; missing values are never found.
    among : array_like
        The ids to look in, in their order.

    Returns
    -------
    numpy.ndarray of int64
    """
    import pyarrow.compute as pc

    looked, pool = _text(ids), _text(among)
    if _same(looked, pool):  # the common case (steps keep the population's order): no hashing
        return np.arange(len(looked), dtype=np.int64)
    where = pc.index_in(looked, value_set=pool, skip_nulls=True)
    return pc.fill_null(where, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _same(a: Any, b: Any) -> bool:
    """Whether two Arrow text arrays hold the same ids in the same order, none missing."""
    import pyarrow.compute as pc

    return len(a) == len(b) and a.null_count == 0 and b.null_count == 0 and bool(pc.all(pc.equal(a, b)).as_py())


def reindex_by_id(frame: pd.DataFrame, key: str, ids: Any, *, first: bool = False) -> pd.DataFrame:
    """``frame.set_index(key).reindex(ids)``, aligned by position: the rows of ``frame`` in the order of ``ids``.

    An id that ``frame`` does not hold gives a row of missing values (as
    pandas' ``reindex``: numbers become float NaN, text NaN); the result is
    indexed by ``ids`` and has every column of ``frame`` but ``key``.

    Parameters
    ----------
    frame : pandas.DataFrame
    key : str
        The column of ``frame`` that holds the ids.
    ids : array_like
        The ids, in the order wanted.
    first : bool, default False
        When True, an id that ``frame`` repeats takes its first row (as
        ``frame.drop_duplicates(key)`` before reindexing); when False, a
        repeated id is refused. Either way, when ``frame[key]`` equals
        ``ids`` position by position, row *i* is taken for id *i*.

    Raises
    ------
    ValueError
        When ``first`` is False and ``frame[key]`` repeats an id and is not
        already in the order of ``ids`` (pandas' ``reindex`` refuses
        repeated ids either way).
    """
    import pyarrow.compute as pc

    keys, looked = _text(frame[key]), _text(ids)
    if _same(keys, looked):
        out = frame.drop(columns=[key]).reset_index(drop=True)
        out.index = pd.Index(ids)
        return out
    if not first and pc.count_distinct(keys, mode="only_valid").as_py() != len(keys) - keys.null_count:
        raise ValueError(f"cannot reindex on column {key!r}: it repeats an id.")
    where = positions(looked, keys)
    out = frame.drop(columns=[key]).reset_index(drop=True).reindex(where)  # -1 is no row: all missing
    out.index = pd.Index(ids)
    return out


def _text(values: Any) -> Any:
    """Ids as an Arrow text array (a pyarrow array passes through)."""
    import pyarrow as pa

    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    if isinstance(values, (pd.Series, pd.Index)) and isinstance(values.dtype, pd.StringDtype) and isinstance(
            values.array, pd.arrays.ArrowExtensionArray):  # text in Arrow already (an Index too): no copy
        return values.array.__arrow_array__()
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    return pa.array(series.astype("str"), type=pa.large_string(), from_pandas=True)


def distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values of an integer array (row positions, id hashes), sorted: ``numpy.unique`` by sorting.

    numpy 2.4's ``numpy.unique`` without ``return_counts`` or
    ``return_inverse`` takes a hash-table path for integers that is slow when
    most values differ: 0.9 s for a million 64-bit hashes and 10.7 s for ten
    million, against 0.015 s and 0.18 s for a sort and a comparison of
    neighbours. Other dtypes (floats, whose NaNs numpy counts once) are
    handed to ``numpy.unique``.
    """
    values = np.asarray(values)
    if values.dtype.kind not in "iub":  # floats (NaN equal to NaN in numpy's answer) and the rest: numpy itself
        return np.unique(values)
    if values.ndim != 1:
        values = values.ravel()
    if len(values) < 2:
        return values.copy()
    ordered = np.sort(values)
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def repeated_count(values: np.ndarray) -> int:
    """How many of ``values`` occur more than once, every occurrence counted (what a uniqueness check flags).

    By sorting and comparing neighbours, as :func:`distinct`: ``numpy.unique``
    with ``return_counts`` takes about three times as long on ten million
    64-bit hashes. Integer arrays (row positions, id hashes) only.
    """
    values = np.asarray(values).ravel()
    if values.dtype.kind not in "iub":
        raise TypeError(f"repeated_count counts integers (row positions, id hashes). Got an array of {values.dtype}.")
    return _sorted_repeats(np.sort(values))[0]


def _sorted_repeats(ordered: np.ndarray) -> tuple[int, np.ndarray]:
    """Of sorted values: how many occur more than once (every occurrence counted), and which (distinct, sorted)."""
    if len(ordered) < 2:
        return 0, ordered[:0]
    same = ordered[1:] == ordered[:-1]  # same[i]: rows i and i + 1 of the sorted values are equal
    if not same.any():
        return 0, ordered[:0]
    repeated = np.zeros(len(ordered), dtype=bool)
    repeated[1:] |= same
    repeated[:-1] |= same
    return int(repeated.sum()), distinct(ordered[1:][same])


class RepeatCounter:
    """:func:`repeated_count` that counts an array equal to one it has seen only once.

    A chunked run checks the uniqueness of its case ids over the whole run,
    and every step's ``expect_column_values_to_be_unique`` on ``case_id``
    asks the same of the same ids whenever no case left in between: ten
    million hashes sorted three or four times. Equal arrays (compared in
    full, a hundredth of a sort) are counted once; the counter keeps the
    arrays it has seen, so it lives as long as one merge.
    """

    def __init__(self) -> None:
        self._seen: list[tuple[np.ndarray, int]] = []

    def __call__(self, values: np.ndarray | Sequence[HashRef]) -> int:
        """The :func:`repeated_count` of ``values``, or of the stream that a list of :class:`HashRef` names."""
        if isinstance(values, (list, tuple)):  # the chunks' parts of one column
            if values and all(isinstance(v, HashRef) for v in values):
                return HashRef.count(values)
            values = np.concatenate([np.asarray(v) for v in values]) if values else np.array([], dtype=np.uint64)
        values = np.asarray(values)
        for known, count in self._seen:
            if known.shape == values.shape and known.dtype == values.dtype and np.array_equal(known, values):
                return count
        count = repeated_count(values)
        self._seen.append((values, count))
        return count


class HashRef:
    """A chunk's 64-bit value hashes, handed to a :class:`HashPool` and dropped from memory.

    Stands where the chunk's hash array stood (a uniqueness statistic, a
    chunk's case-id hashes); a list of the references of every chunk of one
    stream is counted by :meth:`count` from the pool's files.
    """

    __slots__ = ("chunk", "pool", "stream")

    def __init__(self, pool: HashPool, stream: str, chunk: int) -> None:
        self.pool, self.stream, self.chunk = pool, stream, chunk

    @staticmethod
    def count(refs: Sequence[HashRef]) -> int:
        """:func:`repeated_count` of the concatenation of the chunks' hashes the references stand for.

        Raises
        ------
        ValueError
            When the references are not every chunk of one stream of one pool.
        """
        pool, stream = refs[0].pool, refs[0].stream
        if any(r.pool is not pool or r.stream != stream for r in refs) or \
                sorted(r.chunk for r in refs) != pool.chunks(stream):
            raise ValueError(f"expected the references of every chunk of one stream (got {len(refs)} of "
                             f"{sorted({r.stream for r in refs})}); a stream is counted whole")
        return pool.repeated_count(stream)


class HashPool:
    """The 64-bit value hashes of a whole chunked run, on disk, in buckets: memory independent of the run's size.

    Exact uniqueness over a run of ``n`` cases compares every hash with
    every other; holding them costs 8 bytes a case and a stream (about 80 MB
    a stream at ten million cases, several streams when several steps check
    the same ids). The pool appends each chunk's hashes to one of
    ``buckets`` files by their top bits, so that two equal hashes always
    land in the same file; a stream is then counted one bucket at a time
    (sorted, neighbours compared), holding ``n / buckets`` hashes.

    A chunk's streams are added together (:meth:`add_chunk`). A stream whose
    array equals another's in every chunk so far (every step's uniqueness
    check on ``case_id`` while no case leaves) is stored once: it stays an
    alias of the first, and is written out on its own (the first's files
    copied) as soon as a chunk shows them apart. Counts are kept per stored
    stream, so equal streams are sorted once.

    Parameters
    ----------
    folder : path, optional
        Where the bucket files go (default a new temporary folder, removed
        by :meth:`close`).
    buckets : int
        Files per stream (default 64).
    """

    def __init__(self, folder: str | Path | None = None, *, buckets: int = 64) -> None:
        if not 1 <= buckets <= 4096 or buckets & (buckets - 1):
            raise ValueError(f"buckets must be a power of two from 1 to 4096. Got {buckets}.")
        self._own = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="insyn-hashes-")) if folder is None else Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.buckets = buckets
        self._shift = np.uint64(64 - max(buckets.bit_length() - 1, 0)) if buckets > 1 else None
        self._alias: dict[str, str | None] = {}  # stream -> the stored stream it equals (None: stored itself)
        self._chunks: dict[str, list[int]] = {}
        self._files: dict[str, str] = {}  # stream -> its file stem (streams are named by steps; stems are safe)
        self._scanned: dict[str, tuple[int, np.ndarray]] = {}  # stored stream -> (repeated count, repeated values)

    def __enter__(self) -> HashPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the bucket files (and the folder, when the pool made it)."""
        if self._own:
            shutil.rmtree(self.folder, ignore_errors=True)
        else:
            for stem in self._files.values():
                for path in self.folder.glob(f"{stem}-*.u64"):
                    path.unlink(missing_ok=True)

    def chunks(self, stream: str) -> list[int]:
        """The chunks added to ``stream``, sorted."""
        return sorted(self._chunks.get(stream, []))

    def add_chunk(self, chunk: int, streams: Mapping[str, np.ndarray]) -> dict[str, HashRef]:
        """Add one chunk's hash arrays, by stream; return a reference for each.

        Parameters
        ----------
        chunk : int
            The chunk's number (each chunk once per stream).
        streams : mapping of str to numpy.ndarray
            ``uint64`` hashes (other integer arrays are viewed as 64-bit).

        Returns
        -------
        dict of str to HashRef
        """
        arrays = {name: np.ascontiguousarray(values).astype(np.uint64, copy=False)
                  for name, values in streams.items()}
        for name in arrays:
            if chunk in self._chunks.get(name, []):
                raise ValueError(f"chunk {chunk} of stream {name!r} was added already. Expected each chunk once "
                                 "per stream.")
        # an alias whose stored stream is not in this chunk with equal values is written out first
        for name, target in list(self._alias.items()):
            if target is None:
                continue
            same = name in arrays and target in arrays and np.array_equal(arrays[name], arrays[target])
            if not same and (name in arrays or target in arrays):
                self._materialise(name)
        new = [name for name in arrays if name not in self._alias]
        for i, name in enumerate(new):  # a new stream is an alias of an equal new stream stored before it
            twin = next((t for t in new[:i] if self._alias[t] is None and np.array_equal(arrays[t], arrays[name])),
                        None)
            self._alias[name] = twin
            self._chunks[name] = []
            if twin is None:
                self._files[name] = f"s{len(self._files):04d}"
        for name, values in arrays.items():
            if self._alias[name] is None:
                self._append(name, values)
            self._chunks[name].append(chunk)
            self._scanned.pop(self._root(name), None)
        return {name: HashRef(self, name, chunk) for name in arrays}

    def _root(self, stream: str) -> str:
        target = self._alias.get(stream)
        return stream if target is None else target

    def _paths(self, stream: str) -> list[Path]:
        stem = self._files[self._root(stream)]
        return [self.folder / f"{stem}-{b:04d}.u64" for b in range(self.buckets)]

    def _append(self, stream: str, values: np.ndarray) -> None:
        paths = self._paths(stream)
        if self._shift is None:
            with paths[0].open("ab") as fh:
                values.tofile(fh)
            return
        bucket = (values >> self._shift).astype(np.intp)
        order = np.argsort(bucket, kind="stable")
        ends = np.cumsum(np.bincount(bucket, minlength=self.buckets))
        ordered = values[order]
        start = 0
        for b, end in enumerate(ends.tolist()):
            if end > start:
                with paths[b].open("ab") as fh:
                    ordered[start:end].tofile(fh)
            start = end

    def _materialise(self, stream: str) -> None:
        """Give an alias files of its own: a copy of its stored stream's (equal in every chunk so far)."""
        source = self._paths(stream)
        self._files[stream] = f"s{len(self._files):04d}"
        self._alias[stream] = None
        for src, dst in zip(source, self._paths(stream), strict=True):
            if src.exists():
                shutil.copyfile(src, dst)

    def repeated_count(self, stream: str) -> int:
        """How many of the stream's hashes occur more than once, every occurrence counted (:func:`repeated_count`)."""
        return self._counted(stream)[0]

    def repeated(self, stream: str) -> np.ndarray:
        """The distinct hashes that occur more than once in the stream, sorted."""
        return self._counted(stream)[1]

    def _counted(self, stream: str) -> tuple[int, np.ndarray]:
        """The stream's scan, done once per stored stream until a chunk adds to it."""
        root = self._root(stream)
        if root not in self._scanned:
            self._scanned[root] = self._scan(root)
        return self._scanned[root]

    def _scan(self, root: str) -> tuple[int, np.ndarray]:
        """Count a stored stream by bucket file: (repeated count, distinct repeated values).

        Buckets are counted on every core at once (threads: reading a file
        and sorting release Python's global lock), each a file's worth of
        memory, and added up in bucket order.
        """
        scans = on_every_core(_scan_bucket, self._paths(root))
        found = [values for _, values in scans if len(values)]
        return sum(count for count, _ in scans), np.concatenate(found) if found else np.array([], dtype=np.uint64)


def _scan_bucket(path: Path) -> tuple[int, np.ndarray]:
    """One bucket file of a :class:`HashPool` stream: how many hashes repeat (every occurrence), which (distinct)."""
    if not path.exists():
        return 0, np.array([], dtype=np.uint64)
    return _sorted_repeats(np.sort(np.fromfile(path, dtype=np.uint64)))
