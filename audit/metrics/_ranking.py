"""Ranking disparities: which group comparisons are furthest from parity.

A reader of an audit first asks "where is the gap largest?". A ranking by
p-value answers another question ("where is the evidence strongest?"): a
large group makes a tiny gap highly significant, so "paid per krona owed
1.12x" (p < 1e-10) would stand above "grant rate 0.10x" (p = 0.003). Insyn
ranks comparisons by their **distance from parity** and shows the adjusted
p-value beside each, so that size and significance are both in view.

Distance from parity:

* for a metric whose ratio is meaningful (rates, means of non-negative
  amounts, ratios of sums): ``|log(ratio)|``, which treats 0.5x and 2x
  alike (the log-ratio scale of the four-fifths rule and of risk ratios);
* for a signed quantity, whose ratio is not reported
  (``MetricInfo.ratio_meaningful`` False): ``|difference|`` when the metric
  is a share, else the difference relative to the larger magnitude of the
  two values, ``|value - reference| / max(|value|, |reference|)`` (a value
  in 0..2, so that SEK do not swamp shares).

Only comparisons with a test (an adjusted p-value), not suppressed and not
of the reference group with itself are ranked. The comparisons whose
adjusted p-value is below ``alpha`` come first, by distance; those that
could be chance follow, also by distance (a 7x ratio in a group of 12 with
an adjusted p of 1.0 must not head the list: that would overstate it).
Ties are broken by adjusted p-value, then by table order. This module is the one ranking: the command
line, the report and the notebook view all call :func:`rank_disparities`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from audit.metrics._registry import METRICS

__all__ = ["COMPLEMENT_METRICS", "parity_distance", "rank_disparities"]

COMPLEMENT_METRICS: dict[str, str] = {"automation_rate": "refer_rate"}
"""Metrics that are one minus another (the first is left out of a ranking when the second is in it)."""


def _number(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def parity_distance(row: Mapping[str, Any]) -> float | None:
    """The distance of one comparison from parity (see the module docstring).

    Parameters
    ----------
    row : mapping
        A metrics row (``metric``, ``value``, ``reference_value``,
        ``difference``, ``ratio``).

    Returns
    -------
    float or None
        None when the row has neither a usable ratio nor a difference.
    """
    info = METRICS.get(str(row.get("metric")))
    ratio = _number(row.get("ratio"))
    if (info is None or info.ratio_meaningful) and ratio is not None and ratio > 0:
        return abs(math.log(ratio))
    diff = _number(row.get("difference"))
    if diff is None:
        return None
    if info is not None and info.unit == "share":
        return abs(diff)
    value, ref = _number(row.get("value")), _number(row.get("reference_value"))
    scale = max(abs(value or 0.0), abs(ref or 0.0))
    return abs(diff) / scale if scale > 0 else None


def rank_disparities(rows: Sequence[Mapping[str, Any]], k: int = 5, *,
                     alpha: float = 0.05) -> list[dict[str, Any]]:
    """The ``k`` group comparisons furthest from parity, with their significance.

    Parameters
    ----------
    rows : sequence of mapping
        Metrics rows (``results.json``'s ``metrics``).
    k : int, default 5
        How many to return.
    alpha : float, default 0.05
        The significance level for the ``significant`` flag.

    Returns
    -------
    list of dict
        Copies of the chosen rows, significant ones first, each group by
        largest distance first, each with
        ``distance`` (from parity) and ``significant`` (adjusted p-value
        below ``alpha``). A metric that is the complement of another ranked
        metric (``automation_rate`` = 1 - ``refer_rate``) is left out, and so
        is a second metric with the very same values for the same comparison
        (an engine that never refuses has ``grant_rate`` equal to
        ``automation_rate``): neither says anything new.
    """
    candidates = []
    for index, r in enumerate(rows):
        p = _number(r.get("p_adjusted"))
        if not r.get("attributes") or r.get("suppressed") or p is None:
            continue
        if r.get("reference_group") is not None and str(r.get("group")) == str(r.get("reference_group")):
            continue
        distance = parity_distance(r)
        if distance is None:
            continue
        candidates.append((p >= alpha, -round(distance, 12), p, index, distance, r))
    candidates.sort(key=lambda c: c[:4])
    present = {c[5]["metric"] for c in candidates}
    chosen: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for *_, distance, r in candidates:
        if COMPLEMENT_METRICS.get(r["metric"]) in present:
            continue
        key = (str(r.get("group")), str(r.get("reference_group")), _round(r.get("value")),
               _round(r.get("reference_value")))
        if key in seen:
            continue
        seen.add(key)
        chosen.append({**r, "distance": distance, "significant": bool(float(r["p_adjusted"]) < alpha)})
        if len(chosen) == k:
            break
    return chosen


def _round(value: Any) -> float | None:
    f = _number(value)
    return None if f is None else round(f, 12)
