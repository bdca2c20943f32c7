"""Flip rates, directions and amount changes by group, with intervals and tests.

The unit is the case: a case with several twins counts once, with the share
of its twins that changed. Rates get Wilson intervals on the number of
cases, differences to the reference group Newcombe's interval, ratios
Katz's, tests the pooled two-proportion z-test or Fisher's exact test; amount
changes get t intervals and Welch's test (see :mod:`audit.counterfactual`).
The comparison with the reference group, the suppression of small groups and
the table are those of every metrics table (:func:`audit.metrics.compare_groups`,
:func:`audit.metrics.metric_table`). The reason and routing codes that a
change adds or removes are counted per group.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from audit._distributions import t_ppf
from audit.metrics import (
    OVERALL,
    MetricBlock,
    compare_groups,
    mean_evidence,
    proportion_evidence,
    wilson_interval,
)
from audit.spec import StatisticsSpec

__all__ = ["FLIP_METRICS", "OVERALL", "code_changes", "empty_codes", "metric_blocks"]

FLIP_METRICS: tuple[str, ...] = ("flip_rate", "flip_to_unfavourable", "flip_to_favourable", "mean_amount_change")
"""The metrics of the counterfactual section, in report order."""


def metric_blocks(attr: str, groups: list[str], twin_group: np.ndarray, pos: np.ndarray, n_cases: int,
                  pairs: dict[str, Any], statistics: StatisticsSpec, reference: str | None) -> list[MetricBlock]:
    """Metric blocks of one attribute: per original-value group, then all cases (group ``all``); case units.

    The groups are compared with the reference group (``reference``, else
    the group with the most cases); the row ``all`` is not compared. Only
    the compared rows carry the reference value, difference and ratio.
    """
    code = pd.Categorical(twin_group, categories=groups).codes.astype(np.int64)
    case_group = np.full(n_cases, -1, dtype=np.int64)
    case_group[pos] = code
    per_case = np.bincount(pos, minlength=n_cases)
    twinned = per_case > 0
    multi = int(per_case.max()) if per_case.size else 0
    decided = np.bincount(pos, weights=pairs["decided"], minlength=n_cases)
    n_amount = np.bincount(pos, weights=pairs["has_amount"], minlength=n_cases)
    sum_delta = np.bincount(pos, weights=pairs["delta"], minlength=n_cases)
    members = [twinned & (case_group == g) for g in range(len(groups))] + [twinned]
    sizes = np.array([int(m.sum()) for m in members])
    if reference in groups:
        ref: int | None = groups.index(reference)
    else:
        ref = int(np.argmax(sizes[:-1])) if len(groups) else None
    blocks: list[MetricBlock] = []
    for metric in FLIP_METRICS:
        if metric == "mean_amount_change":
            has = n_amount > 0
            share = np.divide(sum_delta, n_amount, out=np.zeros(n_cases), where=has)
        else:
            key = {"flip_rate": "flip", "flip_to_unfavourable": "to_unfavourable",
                   "flip_to_favourable": "to_favourable"}[metric]
            has = decided > 0
            share = np.divide(np.bincount(pos, weights=pairs[key], minlength=n_cases), decided,
                              out=np.zeros(n_cases), where=has)
        est = _Groups(metric, [share[m & has] for m in members], sizes,
                      [int(pairs["decided"][m[pos]].sum()) for m in members], multi, statistics)
        g = len(groups)
        evidence = None
        if ref is not None:
            evidence = (mean_evidence(est.value[:g], est.var[:g], est.n[:g], ref, statistics.alpha)
                        if metric == "mean_amount_change"
                        else proportion_evidence(est.count[:g], est.n[:g], ref, statistics.alpha))
        for part, labels, reference_index, compare in ((slice(0, g), groups, ref, True),
                                                       (slice(g, g + 1), [OVERALL], None, False)):
            blocks.append(compare_groups(
                metric, [attr], labels, reference=reference_index, rows=sizes[part], n=est.n[part],
                den=sizes[part], value=est.value[part], ci=(est.ci_low[part], est.ci_high[part]),
                count=est.count[part], statistics=statistics, reasons=est.reasons[part], compare=compare,
                evidence=evidence if compare else None, reference_row=False,
            ))
    return blocks


class _Groups:
    """One metric's value, interval and notes per group, from one value per case of the group.

    ``x`` holds, per group, one value per case: a share of twins that
    changed, or a mean change of amount. ``sizes`` are the groups' cases with
    twins, ``pairs`` their decided pairs, ``multi`` the most twins a case has.
    """

    def __init__(self, metric: str, x: list[np.ndarray], sizes: np.ndarray, pairs: list[int], multi: int,
                 statistics: StatisticsSpec) -> None:
        size = len(x)
        self.n = np.array([float(v.size) for v in x])
        self.value, self.ci_low, self.ci_high, self.count, self.var = (np.full(size, math.nan) for _ in range(5))
        self.reasons: list[list[str]] = [[] for _ in range(size)]
        amount = metric == "mean_amount_change"
        for i, v in enumerate(x):
            n = v.size
            if n == 0:
                what = "had an amount both times" if amount else "was decided both times"
                self.reasons[i].append(f"undefined: no twin pair of the group's {int(sizes[i])} cases {what}")
                continue
            if amount:
                mean = float(v.mean())
                self.value[i] = mean
                if n >= 2:
                    se = float(v.std(ddof=1)) / math.sqrt(n)
                    q = float(t_ppf(1 - statistics.alpha / 2, n - 1))
                    self.ci_low[i], self.ci_high[i] = mean - q * se, mean + q * se
                    self.var[i] = float(v.var(ddof=1))
                else:
                    self.reasons[i].append("interval needs at least 2 cases")
            else:
                k = float(v.sum())
                self.count[i], self.value[i] = k, k / n
                lo, hi = wilson_interval(k, n, statistics.alpha)
                self.ci_low[i], self.ci_high[i] = float(lo), float(hi)
            if multi > 1:
                what = "the mean change of its twins" if amount else "the share of its twins that changed"
                self.reasons[i].append(
                    f"n counts cases ({pairs[i]} twin pairs decided): each case counts once, with {what}")


def _split_codes(reasons: np.ndarray, pair: np.ndarray) -> pd.DataFrame:
    """One row per (pair, code) of ``;``-joined reason strings."""
    s = pd.Series(reasons, dtype="str", index=pair).str.split(";").explode().str.strip()
    s = s[s.notna() & (s != "")]
    return pd.DataFrame({"pair": s.index.to_numpy(dtype=np.int64), "code": s.to_numpy(dtype=object)})


def code_changes(attr: str, twin_group: np.ndarray, base: dict[str, np.ndarray], run: pd.DataFrame,
                 pos: np.ndarray, pairs: dict[str, Any]) -> pd.DataFrame:
    """Counts of codes added and removed by the change, per original-value group and overall."""
    idx = np.flatnonzero(pairs["decided"])
    before = _split_codes(base["reasons"][pos][idx], idx).drop_duplicates()
    after = _split_codes(run["reasons"].astype("str").fillna("").to_numpy(dtype=object)[idx], idx).drop_duplicates()
    both = before.merge(after, on=["pair", "code"], how="outer", indicator=True)
    both = both[both["_merge"] != "both"].copy()
    both["group"] = twin_group[both["pair"].to_numpy(dtype=np.int64)] if len(both) else []
    both["added"] = (both["_merge"] == "right_only").astype(np.int64)
    both["removed"] = (both["_merge"] == "left_only").astype(np.int64)
    decided = pd.Series(np.ones(idx.size, dtype=np.int64)).groupby(twin_group[idx]).sum()
    parts = []
    for grouping, label in ((["group", "code"], None), (["code"], OVERALL)):
        g = both.groupby(grouping, sort=True)[["added", "removed"]].sum().reset_index()
        if label is not None:
            g.insert(0, "group", label)
        g["pairs"] = int(idx.size) if label is not None else g["group"].map(decided).fillna(0).astype(np.int64)
        parts.append(g)
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "attribute", attr)
    out = out[["attribute", "group", "code", "added", "removed", "pairs"]]
    return out.astype({"attribute": "str", "group": "str", "code": "str", "added": np.int64,
                       "removed": np.int64, "pairs": np.int64})


def empty_codes() -> pd.DataFrame:
    """A codes table without rows (no attribute was changed)."""
    return pd.DataFrame({"attribute": pd.Series(dtype="str"), "group": pd.Series(dtype="str"),
                         "code": pd.Series(dtype="str"), "added": pd.Series(dtype=np.int64),
                         "removed": pd.Series(dtype=np.int64), "pairs": pd.Series(dtype=np.int64)})
