"""Sufficient statistics of the whole-column expectations, collected per chunk of a frame.

Most expectations judge rows one at a time, so the verdict on a whole frame
follows from per-chunk counts (element, missing and unexpected rows sum).
Two of the shipped expectation types need more than counts to be merged
exactly across chunks:

``expect_column_values_to_be_unique``
    a value may repeat in another chunk. The statistic is one 64-bit hash
    per non-missing value (``pandas.util.hash_pandas_object``); over the
    whole run a row is unexpected when its hash occurs more than once. Two
    distinct values with the same 64-bit hash would count as a duplicate: at
    10 million values the chance that any pair collides is about 3e-6.
``expect_column_proxy_strength_to_be_at_most``
    Cramér's V needs the whole contingency table, and a numeric feature is cut
    at quantiles of the whole column. The statistic is the count of every
    distinct (feature value, sensitive value) pair among rows where both are
    known; summed over chunks it is the whole frame's joint distribution,
    from which the quantile edges, the bins and the table follow exactly
    (:func:`audit.checks._merge.merge_chunk_checks`). Its size grows with
    the number of distinct pairs, not with rows.

The group-rate gaps and group representation need only their per-group
counts, which their results already carry (``details.by_group``), so they
need nothing here.

:func:`collecting_statistics` opens a block in which every
:func:`audit.checks.validate` call records these statistics for its step;
outside such a block nothing is computed (the in-memory run pays nothing).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from audit.checks._statistics import cached, factorized, is_binned_number

__all__ = ["NEEDS_STATISTICS", "collecting_statistics", "record_statistics", "value_hashes",
           "whole_column_statistics"]

NEEDS_STATISTICS: tuple[str, ...] = (
    "expect_column_proxy_strength_to_be_at_most",
    "expect_column_values_to_be_unique",
)
"""Expectation types whose merge across chunks needs :func:`whole_column_statistics`."""

_COLLECTORS: list[list[tuple[str, dict[int, Any]]]] = []


@contextmanager
def collecting_statistics() -> Iterator[list[tuple[str, dict[int, Any]]]]:
    """Collect ``(step, {result position: statistic})`` from every validation inside the block."""
    collected: list[tuple[str, dict[int, Any]]] = []
    _COLLECTORS.append(collected)
    try:
        yield collected
    finally:
        _COLLECTORS.remove(collected)


def record_statistics(step: str, data: pd.DataFrame, planned: Sequence[tuple[str, Mapping[str, Any], bool]]) -> None:
    """Inside :func:`collecting_statistics`, compute and record the statistics of one validation.

    ``planned`` holds per result position ``(type, kwargs, runnable)``.
    """
    if not _COLLECTORS:
        return
    _COLLECTORS[-1].append((step, whole_column_statistics(data, planned)))


def whole_column_statistics(
    data: pd.DataFrame, planned: Sequence[tuple[str, Mapping[str, Any], bool]]
) -> dict[int, Any]:
    """The statistic of every planned expectation that needs one (module docstring), by result position."""
    out: dict[int, Any] = {}
    for pos, (kind, kwargs, runnable) in enumerate(planned):
        if not runnable or kind not in NEEDS_STATISTICS:
            continue
        try:
            if kind == "expect_column_values_to_be_unique":
                col = data[kwargs["column"]]
                known = col[col.notna()]
                out[pos] = {"hashes": cached(col, "hashes", value_hashes) if len(known) == len(col)
                            else value_hashes(known)}
            else:
                out[pos] = _pair_counts(data[kwargs["column"]], data[kwargs["sensitive_column"]])
        except (KeyError, TypeError, ValueError):
            continue  # the expectation itself reports the problem; the merge then marks it inexact
    return out


def _pair_counts(x: pd.Series, y: pd.Series) -> dict[str, Any]:
    """Counts of each distinct (x, y) pair among rows where both are known."""
    xcodes, xu = factorized(x)
    ycodes, yu = factorized(y)
    keep = (xcodes >= 0) & (ycodes >= 0)
    ny = max(len(yu), 1)
    combined = xcodes[keep] * ny + ycodes[keep]
    size = max(len(xu), 1) * ny
    if size <= max(4 * len(combined), 1 << 16):  # few possible pairs: count them all, no sort
        every = np.bincount(combined, minlength=size)
        pairs = np.flatnonzero(every)
        counts = every[pairs]
    else:
        pairs, counts = np.unique(combined, return_counts=True)
    x_numeric = is_binned_number(x)
    xs = np.asarray(xu, dtype=np.float64 if x_numeric else object)[pairs // ny]
    y_numeric = is_binned_number(y)
    ys = np.asarray(yu, dtype=np.float64 if y_numeric else object)[pairs % ny]
    return {"x": xs, "y": ys, "count": counts.astype(np.int64), "x_numeric": x_numeric, "y_numeric": y_numeric}


_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def value_hashes(values: pd.Series) -> np.ndarray:
    """A 64-bit hash of each value (no missing values), equal for equal values.

    Text is hashed with FNV-1a over its UTF-8 bytes, vectorised over the
    Arrow buffers (one numpy pass per byte position);
    anything else with ``pandas.util.hash_pandas_object``.
    """
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        import pyarrow as pa

        arr = pa.array(values.array)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        arr = arr.cast(pa.large_string())
        if arr.null_count == 0:
            n = len(arr)
            offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset: arr.offset + n + 1]
            data = arr.buffers()[2]
            data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
            starts = offsets[:-1]
            lengths = offsets[1:] - starts
            h = np.full(n, _FNV_OFFSET, dtype=np.uint64)
            shortest = int(lengths.min()) if n else 0
            for j in range(shortest):  # every value has a byte here: whole-array passes
                h ^= data[starts + j]
                h *= _FNV_PRIME
            live = np.arange(n)
            for j in range(shortest, int(lengths.max()) if n else 0):
                live = live[lengths[live] > j]
                h[live] = (h[live] ^ data[starts[live] + j]) * _FNV_PRIME
            return h
    return pd.util.hash_pandas_object(values, index=False).to_numpy(dtype=np.uint64)
