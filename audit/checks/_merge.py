"""Check results merged across the chunks of a run, exactly as if one frame had been checked.

A chunked run (:mod:`audit.execution`) validates each chunk's input of each
step on its own; the run's verdict per expectation is merged here from the
chunks' results and, for the two types that need them, the chunks'
sufficient statistics (:mod:`audit.checks._sufficient`). Every shipped
expectation type merges exactly:

row-level (values in a set or range, not null, regex, type of each value, age lists, pair rules)
    ``element_count``, ``missing_count`` and ``unexpected_count`` sum; the
    verdict is great-expectations' own rule on the sums (vacuously true
    without non-missing rows, else the share of expected rows among the
    non-missing ones >= ``mostly``) and ``unexpected_percent`` its formula
    (unexpected / non-missing * 100).
no personnummer in text
    rows with a hit and the hits per column sum.
uniqueness
    the chunks' hashes of non-missing values are pooled; a row is unexpected
    when its value's hash occurs more than once in the whole run.
group representation
    the rows per group and the rows without a group sum
    (:func:`audit.checks._statistics.representation_verdict`).
missing-rate and failure-rate gaps
    per group, the rows entering the rate and the rows flagged sum, and so do
    the rows without a group or flag; rates, suppression and the gap follow
    (:func:`audit.checks._statistics.rates_of_counts`).
proxy strength (Cramér's V)
    the counts of (feature, sensitive) value pairs sum; a numeric feature's
    quantile edges are taken from the pooled value counts with numpy's
    ``linear`` method, so the bins, the table and V equal the whole frame's.
table-level (columns present, dtype of a column, forbidden columns)
    every chunk sees the same columns; when all chunks agree, that is the
    result. When chunks disagree (a CSV column read as another dtype in one
    chunk), the merged result is marked ``exact: false``, fails when any
    chunk failed, and lists the chunks' observed values.

The ``sample_case_ids`` are the chunks' samples in chunk order, cut to the
longest chunk sample: the first unexpected cases of the run for additive
expectations; for uniqueness, duplicates that span chunks may be missing
from the sample (only their count is merged).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from audit._ids import RepeatCounter
from audit._json import jsonable
from audit.checks._statistics import (
    cramers_v_of_table,
    gap_verdict,
    proxy_verdict,
    rates_of_counts,
    representation_verdict,
)
from audit.checks._validate import failure_message

__all__ = ["linear_quantiles", "merge_chunk_checks", "proxy_from_pair_counts", "sum_pair_counts"]

_PNR = "expect_table_text_values_to_not_contain_personnummer"
_UNIQUE = "expect_column_values_to_be_unique"
_PROXY = "expect_column_proxy_strength_to_be_at_most"
_REPRESENTATION = "expect_column_group_representation_to_be_at_least"
_MISSING_GAP = "expect_column_missing_rate_gap_across_groups_to_be_at_most"
_FAILURE_GAP = "expect_column_failure_rate_gap_across_groups_to_be_at_most"


def merge_chunk_checks(
    per_chunk: Sequence[Sequence[Mapping[str, Any]]],
    per_chunk_statistics: Sequence[Sequence[tuple[str, Mapping[int, Any]]]] | None = None,
    *,
    repeats: RepeatCounter | None = None,
) -> list[dict[str, Any]]:
    """Merge the chunks' check entries into one result per (step, expectation).

    Parameters
    ----------
    per_chunk : sequence of sequences of dict
        Per chunk, its check entries (``{"step", "policy", "results", ...}``
        as a run's ``checks.json`` holds them), chunks in order.
    per_chunk_statistics : sequence, optional
        Per chunk, what :func:`audit.checks._sufficient.collecting_statistics`
        collected: ``(step, {result position: statistic})``.
    repeats : RepeatCounter, optional
        Counts the repeated id hashes of the uniqueness expectations; one
        that has already counted the same hashes (a chunked run's own
        case-id check) does not sort them again. Default: a new counter,
        shared by this merge's expectations.

    Returns
    -------
    list of dict
        One entry per step and expectation, in step and suite order, with the
        keys of a :class:`audit.checks.CheckReport` result (``suite``,
        ``index``, ``expectation``, ``column``, ``kwargs``, ``severity``,
        ``row_level``, ``element_count``, ``unexpected_count``,
        ``missing_count``, ``unexpected_percent``, ``observed_value``,
        ``details``, ``success``, ``message``, ``sample_case_ids``, ``meta``,
        ``engine`` of the first chunk)
        plus ``step``, ``policy``, ``chunks``, ``chunks_failed`` and ``exact``
        (False only where the module docstring says).
    """
    stats_by: dict[tuple[int, str], Mapping[int, Any]] = {}
    for c, collected in enumerate(per_chunk_statistics or []):
        for step, stats in collected:
            stats_by[(c, step)] = stats
    grouped: dict[tuple[str, int], list[tuple[int, Mapping[str, Any], Mapping[str, Any]]]] = {}
    order: list[tuple[str, int]] = []
    for c, entries in enumerate(per_chunk):
        for entry in entries:
            for pos, res in enumerate(entry.get("results", [])):
                key = (entry["step"], pos)
                if key not in grouped:
                    grouped[key] = []
                    order.append(key)
                grouped[key].append((c, entry, res))
    repeats = repeats if repeats is not None else RepeatCounter()
    return [_merge_one(key, grouped[key], stats_by, repeats) for key in order]


def _merge_one(key: tuple[str, int], items: list[tuple[int, Mapping[str, Any], Mapping[str, Any]]],
               stats_by: Mapping[tuple[int, str], Mapping[int, Any]], repeats: RepeatCounter) -> dict[str, Any]:
    step, pos = key
    results = [res for _, _, res in items]
    first = results[0]
    kind = first.get("expectation")
    kwargs = dict(first.get("kwargs") or {})
    out: dict[str, Any] = {
        "step": step,
        "policy": items[0][1].get("policy"),
        **{k: first.get(k) for k in ("suite", "index", "expectation", "column", "kwargs", "severity", "row_level",
                                     "meta", "engine")},
        "element_count": None, "unexpected_count": None, "missing_count": None, "unexpected_percent": None,
        "observed_value": None, "details": None, "success": True, "message": None,
        "chunks": len(items), "chunks_failed": sum(1 for r in results if not r.get("success", False)),
        "exact": True,
    }
    sample = max((len(r.get("sample_case_ids") or []) for r in results), default=0)
    out["sample_case_ids"] = [v for r in results for v in (r.get("sample_case_ids") or [])][:sample]
    problems = [r.get("message") for r in results if r.get("message") and r.get("element_count") is None
                and r.get("observed_value") is None and r.get("details") is None]
    if problems:  # a missing column or an expectation that raised: report the first chunk's message
        out.update(success=False, message=problems[0], exact=all(r == first for r in results))
        return out
    stats = [stats_by.get((c, step), {}).get(pos) for c, _, _ in items]
    if kind == _UNIQUE and all(s is not None for s in stats):
        _additive(out, results, unexpected=repeats([s["hashes"] for s in stats]))  # arrays, or references to a pool
    elif kind == _PROXY and all(s is not None for s in stats):
        info = proxy_from_pair_counts(stats, bins=int(kwargs.get("bins", 5)),
                                      bias_correction=bool(kwargs.get("bias_correction", True)))
        success, result = proxy_verdict(info, float(kwargs["max_cramers_v"]),
                                        bias_correction=bool(kwargs.get("bias_correction", True)))
        _verdict(out, success, result)
    elif kind == _REPRESENTATION and all(isinstance(r.get("details"), Mapping) for r in results):
        counts: dict[str, int] = {}
        n_missing = 0
        for r in results:
            for g, v in r["details"]["by_group"].items():
                counts[g] = counts.get(g, 0) + int(v["n"])
            n_missing += int(r["details"]["n_missing_group"])
        success, result = representation_verdict(
            {g: c for g, c in counts.items() if c > 0}, sum(counts.values()) + n_missing, n_missing,
            min_count=kwargs.get("min_count"), min_share=kwargs.get("min_share"),
            expected_groups=kwargs.get("expected_groups"))
        _verdict(out, success, result)
    elif kind in (_MISSING_GAP, _FAILURE_GAP) and all(isinstance(r.get("details"), Mapping) for r in results):
        by: dict[str, list[int]] = {}
        n_missing_group = n_missing_flag = 0
        for r in results:
            d = r["details"]
            for g, v in d["by_group"].items():
                acc = by.setdefault(g, [0, 0])
                acc[0] += int(v["n"])
                acc[1] += int(v["count"])
            n_missing_group += int(d["n_missing_group"])
            n_missing_flag += int(d.get("n_missing_flag") or 0)
        info = rates_of_counts([(g, n, k) for g, (n, k) in sorted(by.items())],
                               min_group_size=int(kwargs.get("min_group_size", 10)),
                               n_missing_group=n_missing_group,
                               n_missing_flag=n_missing_flag if kind == _FAILURE_GAP else None)
        success, result = gap_verdict(info, float(kwargs["max_gap"]))
        _verdict(out, success, result)
    elif kind == _PNR and all(r.get("unexpected_count") is not None for r in results):
        n = sum(int(r["element_count"]) for r in results)
        k = sum(int(r["unexpected_count"]) for r in results)
        by_column: dict[str, int] = {}
        scanned: list[str] = []
        for r in results:
            for col, hits in (r.get("observed_value") or {}).items():
                by_column[col] = by_column.get(col, 0) + int(hits)
            for col in (r.get("details") or {}).get("columns_scanned", []):
                if col not in scanned:
                    scanned.append(col)
        out.update(element_count=n, unexpected_count=k, unexpected_percent=(100.0 * k / n) if n else 0.0,
                   observed_value=by_column, details={"columns_scanned": scanned}, success=k == 0)
    elif kind not in (_UNIQUE, _PROXY) and all(r.get("unexpected_count") is not None for r in results):
        _additive(out, results, unexpected=sum(int(r["unexpected_count"]) for r in results))
        if any(r.get("observed_value") is not None or r.get("details") is not None for r in results):
            same = all((r.get("observed_value"), r.get("details")) == (first.get("observed_value"),
                                                                       first.get("details")) for r in results)
            out.update(observed_value=first.get("observed_value"), details=first.get("details"), exact=same)
    else:
        same = all((r.get("success"), r.get("observed_value"), r.get("details"))
                   == (first.get("success"), first.get("observed_value"), first.get("details")) for r in results)
        out.update(element_count=first.get("element_count"), observed_value=first.get("observed_value"),
                   details=first.get("details"), success=all(bool(r.get("success")) for r in results), exact=same)
        if not same:
            out["observed_value"] = [r.get("observed_value") for r in results]
    if not out["success"]:
        out["message"] = failure_message(str(kind), kwargs, out)
    return out


def _additive(out: dict[str, Any], results: Sequence[Mapping[str, Any]], *, unexpected: int) -> None:
    """Summed counts with great-expectations' verdict and percentage for a map expectation."""
    n = sum(int(r.get("element_count") or 0) for r in results)
    known_missing = all(r.get("missing_count") is not None for r in results)
    missing = sum(int(r.get("missing_count") or 0) for r in results) if known_missing else None
    nonnull = n - (missing or 0)
    mostly = float((results[0].get("kwargs") or {}).get("mostly", 1.0))
    if n == 0 or nonnull == 0:
        success = True  # vacuously true, as great-expectations has it
    else:
        success = (float(nonnull) - float(unexpected)) / float(nonnull) >= mostly
    if n > 0:
        total = unexpected / n * 100
        percent = (unexpected / nonnull * 100 if nonnull > 0 else None) if missing is not None else total
    else:
        percent = None
    out.update(element_count=n, unexpected_count=unexpected, missing_count=missing, unexpected_percent=percent,
               success=bool(success))


def _verdict(out: dict[str, Any], success: bool, result: Mapping[str, Any]) -> None:
    out.update(success=bool(success), observed_value=jsonable(result.get("observed_value"), default=str),
               details=jsonable(result.get("details"), default=str))


def linear_quantiles(values: np.ndarray, counts: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """``numpy.quantile(x, qs)`` (method ``linear``) of the sample holding ``values[i]`` ``counts[i]`` times.

    ``values`` sorted ascending and distinct. The index arithmetic and the
    interpolation copy numpy's (``(n - 1) * q``, ``floor``, and ``_lerp``,
    which takes ``b - (b - a) * (1 - t)`` where ``t >= 0.5``), so the result
    is bit-identical to numpy's on the expanded sample.
    """
    n = int(counts.sum())
    cum = np.cumsum(counts)
    virtual = (n - 1) * qs
    previous = np.floor(virtual)
    nxt = previous + 1
    above = virtual >= n - 1
    gamma = np.asanyarray(virtual - np.where(above, -1.0, previous), dtype=virtual.dtype)
    previous = np.where(above, n - 1, previous).astype(np.intp)
    nxt = np.where(above, n - 1, nxt).astype(np.intp)
    a = values[np.searchsorted(cum, previous, side="right")]
    b = values[np.searchsorted(cum, nxt, side="right")]
    diff = b - a
    out = np.add(a, diff * gamma)
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


def _axis_codes(keys: np.ndarray, weights: np.ndarray, *, numeric: bool, bins: int) -> np.ndarray:
    """Dense category codes of each distinct key, as :func:`audit.checks._statistics.cramers_v` codes its rows."""
    if numeric:
        x = keys.astype(np.float64)
        inverse, distinct = _sorted_codes(x)
        if len(distinct) > bins:
            w = np.bincount(inverse, weights=weights).astype(np.int64)
            edges = linear_quantiles(distinct, w, np.linspace(0.0, 1.0, bins + 1))
            raw = np.searchsorted(edges[1:-1], x, side="left")
            return _dense(raw)
        return inverse.astype(np.int64)
    codes, _ = pd.factorize(pd.Series(keys, dtype=object), sort=True)
    return np.asarray(codes, dtype=np.int64)


def _dense(codes: np.ndarray) -> np.ndarray:
    used = np.bincount(codes) > 0
    return (np.cumsum(used) - 1)[codes].astype(np.int64)


def _pooled(stats: Sequence[Mapping[str, Any]], axis: str) -> np.ndarray:
    """One axis of several pair-count statistics, concatenated: float64 when every part is numeric, else objects."""
    if all(bool(s[f"{axis}_numeric"]) for s in stats):
        return np.concatenate([np.asarray(s[axis], dtype=np.float64) for s in stats])
    return np.concatenate([np.asarray(s[axis], dtype=object) for s in stats])


def sum_pair_counts(stats: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Several chunks' (x, y) pair counts as one: the counts of equal pairs added.

    What a chunked run's parent keeps of a proxy-strength expectation while
    chunks arrive: one count per distinct pair, so that it holds the pairs
    the values allow rather than a table per chunk. Cramér's V of the sum
    (:func:`proxy_from_pair_counts`) equals that of the parts, because the
    table is built from sorted distinct values and integer counts.

    Parameters
    ----------
    stats : sequence of dict
        Pair counts (``x``, ``y``, ``count``, ``x_numeric``, ``y_numeric``)
        whose ``x_numeric`` and ``y_numeric`` agree.

    Returns
    -------
    dict
        The same keys; pairs sorted by x, then y.

    Raises
    ------
    ValueError
        When the parts disagree on whether an axis is numeric.
    """
    flags = {(bool(s["x_numeric"]), bool(s["y_numeric"])) for s in stats}
    if len(flags) != 1:
        raise ValueError("pair counts disagree on which axis is numeric. Expected one (x_numeric, y_numeric) for "
                         f"every part; got {sorted(flags)}.")
    (x_numeric, y_numeric), = flags
    x, y = _pooled(stats, "x"), _pooled(stats, "y")
    w = np.concatenate([np.asarray(s["count"], dtype=np.int64) for s in stats])
    xi, xu = _distinct_codes(x, x_numeric)
    yi, yu = _distinct_codes(y, y_numeric)
    ny = max(len(yu), 1)
    inverse, keys = _sorted_codes(xi * ny + yi)
    counts = np.bincount(inverse, weights=w, minlength=len(keys)).astype(np.int64) if len(keys) else w[:0]
    return {"x": xu[keys // ny], "y": yu[keys % ny], "count": counts, "x_numeric": x_numeric, "y_numeric": y_numeric}


def _distinct_codes(values: np.ndarray, numeric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Codes of each value among its sorted distinct values (numbers by value, text by ``pandas.factorize``)."""
    if numeric:
        return _sorted_codes(values)
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=True)
    return np.asarray(codes, dtype=np.int64), np.asarray(uniques, dtype=object)


def _sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``numpy.unique(values, return_inverse=True)`` of numbers, reversed: (codes, sorted distinct values).

    By hashing (``pandas.factorize``), which sorts only the distinct values:
    three to four times as fast as numpy's sort of every value on a batch of
    chunks' pair counts, with the same answer (NaN one value, last; 0.0 and
    -0.0 one value).
    """
    codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64), np.asarray(uniques)


def proxy_from_pair_counts(stats: Sequence[Mapping[str, Any]], *, bins: int, bias_correction: bool) -> dict[str, Any]:
    """Cramér's V (:func:`audit.checks._statistics.cramers_v`' result) from pooled (x, y) pair counts."""
    x = _pooled(stats, "x")
    y = _pooled(stats, "y")
    w = np.concatenate([np.asarray(s["count"], dtype=np.int64) for s in stats])
    n = int(w.sum())
    if n == 0:
        return cramers_v_of_table(None, n=0, shape=(0, 0), bias_correction=bias_correction)
    xc = _axis_codes(x, w, numeric=bool(stats[0]["x_numeric"]), bins=bins)
    yc = _axis_codes(y, w, numeric=bool(stats[0]["y_numeric"]), bins=bins)
    r = int(xc.max()) + 1
    c = int(yc.max()) + 1
    table = np.bincount(xc * c + yc, weights=w, minlength=r * c).reshape(r, c).astype(np.float64)
    return cramers_v_of_table(table, n=n, shape=(r, c), bias_correction=bias_correction)

