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

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["RepeatCounter", "distinct", "ids_in", "positions", "reindex_by_id", "repeated_count"]


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
    if len(values) < 2:
        return 0
    ordered = np.sort(values)
    same = ordered[1:] == ordered[:-1]  # same[i]: rows i and i + 1 of the sorted values are equal
    repeated = np.zeros(len(ordered), dtype=bool)
    repeated[1:] |= same
    repeated[:-1] |= same
    return int(repeated.sum())


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

    def __call__(self, values: np.ndarray) -> int:
        """The :func:`repeated_count` of ``values``."""
        values = np.asarray(values)
        for known, count in self._seen:
            if known.shape == values.shape and known.dtype == values.dtype and np.array_equal(known, values):
                return count
        count = repeated_count(values)
        self._seen.append((values, count))
        return count
