"""Column arrays: what is worked out about a text column once, while its array lives.

A run hands the same columns from step to step: the sensitive features,
the outcome and the case ids of one frame reach the checks, the engine's
contract, the group statistics, the funnel, the public values and the
report's combination counts. pandas keeps a ``str`` column's values in an
Arrow array that never changes and passes from frame to frame under
copy-on-write (a changed column is a new array), so anything computed from
the values alone (are they unique, which code is each value) holds for as
long as that array lives.

:func:`remembered` keeps such a result per Arrow array, by the array's
identity with a weak reference: the entry goes when the array does, so an
identity cannot be reused while its entry stays; :func:`known` reads what is
kept without computing anything. A column without an Arrow array of its own
(numbers, text held as Python objects) is computed afresh every time.

:func:`codes_of` numbers a column's distinct values (``pandas.factorize``)
through it, and keeps the codes of a column of at most 65,536 distinct
values (groups, labels; not ids or free text, whose distinct values would
cost more to keep than to number again). A column built from codes
(:func:`audit._schema.coded_strings`) hands them over with
:func:`known_codes`, so its texts are never numbered. :func:`text_objects`
spells a column of few values as Python strings once per value, and
:func:`mostly_distinct` tells a column of ids from one of labels by its
first :data:`PROBE` values.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd

__all__ = ["PROBE", "codes_of", "known", "known_codes", "mostly_distinct", "remembered", "text_objects"]

T = TypeVar("T")

_KEPT: dict[int, tuple[weakref.ref[Any], dict[str, Any]]] = {}
"""Per Arrow array (by identity): a weak reference to it and its results by kind; the entry leaves with the array."""


def remembered(values: pd.Series, kind: str, compute: Callable[[pd.Series], T],
               keep: Callable[[T], bool] | None = None) -> T:
    """``compute(values)``, kept for as long as a ``str`` column's own Arrow array lives.

    Parameters
    ----------
    values : pandas.Series
        The column.
    kind : str
        What ``compute`` works out (one result per array and kind).
    compute : callable
        A function of the column's values alone. Its result is shared by
        every later call on the same array: callers must not change it.
    keep : callable, optional
        Whether a result is worth keeping (default: every result is).

    Returns
    -------
    The result of ``compute``.
    """
    results = _results(values.array)
    if results is None:
        return compute(values)
    if kind in results:
        return results[kind]
    result = compute(values)
    if keep is None or keep(result):
        results[kind] = result
    return result


def known(values: pd.Series, kind: str) -> Any | None:
    """What :func:`remembered` keeps of ``kind`` for the column's Arrow array, or None when nothing is kept."""
    results = _results(values.array, create=False)
    return None if results is None else results.get(kind)


def _results(held: Any, *, create: bool = True) -> dict[str, Any] | None:
    """The results kept for an extension array's own Arrow array (a new, empty entry with ``create``).

    None when the array has no Arrow array of its own, or (without ``create``) nothing is kept for it.
    """
    arrow = held.__arrow_array__() if isinstance(held, pd.arrays.ArrowExtensionArray) else None  # its own array
    if arrow is None:
        return None
    key = id(arrow)
    entry = _KEPT.get(key)
    if entry is None or entry[0]() is not arrow:
        if not create:
            return None
        entry = (weakref.ref(arrow, lambda _ref, key=key: _KEPT.pop(key, None)), {})
        _KEPT[key] = entry
    return entry[1]


def codes_of(values: pd.Series, *, missing_code: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Number a column's distinct values in order of appearance: ``pandas.factorize(values)``.

    Parameters
    ----------
    values : pandas.Series
    missing_code : bool, default False
        Give a missing value a code of its own, after the others, with NaN
        as its value (as ``use_na_sentinel=False`` does, though pandas puts
        it where the first missing value appears). By default it is -1.

    Returns
    -------
    codes : numpy.ndarray of int64
        Each value's code. A new array on each call.
    uniques : numpy.ndarray of object
        The distinct values, read-only (shared between calls) unless a
        missing value's code was added.
    """
    compact, uniques = remembered(values, "codes", _codes, keep=_few)
    codes = compact.astype(np.int64)
    if missing_code and len(codes) and codes.min() < 0:
        codes[codes < 0] = len(uniques)
        uniques = np.append(uniques, np.nan)
    return codes, uniques


def known_codes(array: Any, codes: np.ndarray, labels: list[str | None] | tuple[str | None, ...]) -> None:
    """Tell :func:`codes_of` the codes of a text array built as ``labels[code]`` (:func:`audit._schema.coded_strings`).

    The array's values are known by code already, so numbering them again
    (hashing every text) is left out: the codes are renumbered in order of
    first appearance, as ``pandas.factorize`` would number the texts (equal
    labels one value, a None label missing).

    Parameters
    ----------
    array : pandas.api.extensions.ExtensionArray
        The ``str`` array built from ``codes`` and ``labels``.
    codes : numpy.ndarray of int
        One code per value, each in ``range(len(labels))``.
    labels : sequence of str or None
        The text of each code (None: a missing value).
    """
    if len(labels) > _FEW:
        return
    results = _results(array)
    if results is None or "codes" in results:
        return
    codes = np.asarray(codes, dtype=np.int64)
    new: dict[str, int] = {}
    remap = np.full(len(labels) + 1, -1, dtype=np.int64)
    for code in _first_seen(codes, len(labels)):
        label = labels[code]
        if label is not None:
            remap[code] = new.setdefault(label, len(new))
    uniques = np.array(list(new), dtype=object)
    uniques.flags.writeable = False
    compact = remap[codes].astype(_width(len(uniques)))
    compact.flags.writeable = False
    results["codes"] = (compact, uniques)


def text_objects(values: pd.Series) -> np.ndarray:
    """A text column as a numpy array of Python strings, a missing value as None: ``to_numpy(object, na_value=None)``.

    pandas makes a Python string from Arrow for every row; a column of few
    distinct values (its codes known, or its first 4,096 values mostly
    repeats) is spelled out once per distinct value and the strings are
    repeated by code, eight times as fast on 250,000 rows.

    Parameters
    ----------
    values : pandas.Series
        A ``str`` (or other string) column.

    Returns
    -------
    numpy.ndarray of object
    """
    if known(values, "codes") is None and (len(values) <= PROBE or mostly_distinct(values)):
        return values.to_numpy(dtype=object, na_value=None)
    codes, uniques = codes_of(values)
    spelled = np.empty(len(uniques) + 1, dtype=object)  # the last: a missing value (code -1)
    spelled[:-1] = uniques
    spelled[-1] = None
    return spelled[codes]


PROBE = 4096
"""How many of a column's first values :func:`mostly_distinct` reads to tell ids from labels."""


def mostly_distinct(values: pd.Series) -> bool:
    """Whether a column looks like ids: more than :data:`PROBE` values, and most of its first :data:`PROBE` distinct.

    Numbering (``pandas.factorize``) pays for a column whose values repeat and
    costs a table of every value for one of ids; this tells the two apart
    from a look at the first values.
    """
    return len(values) > PROBE and values.iloc[:PROBE].nunique(dropna=False) * 2 > PROBE


def _first_seen(codes: np.ndarray, size: int) -> list[int]:
    """The distinct codes (each in ``range(size)``) in order of first appearance."""
    if size > 16:
        return pd.unique(codes).tolist()
    seen = np.flatnonzero(np.bincount(codes, minlength=size))
    first = [int((codes == c).argmax()) for c in seen.tolist()]  # one comparison per code, argmax from the start
    return [int(c) for _, c in sorted(zip(first, seen.tolist(), strict=True))]


_FEW = 1 << 16
"""The most distinct values whose codes are kept: a column of groups or labels, not of ids or free text."""


def _few(result: tuple[np.ndarray, np.ndarray]) -> bool:
    return len(result[1]) <= _FEW


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(values, sort=False, use_na_sentinel=True)
    kept = np.asarray(uniques, dtype=object).copy()
    kept.flags.writeable = False
    compact = np.asarray(codes).astype(_width(len(kept)))  # 1 byte a row for a few groups, kept while the column lives
    compact.flags.writeable = False
    return compact, kept


def _width(distinct: int) -> type[np.signedinteger[Any]]:
    """The smallest signed integer type that holds the codes of ``distinct`` values and -1."""
    return np.int8 if distinct < 127 else np.int16 if distinct < 32767 else np.int32 if distinct < 2**31 - 1 else np.int64
