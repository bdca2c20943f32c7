"""Flip rates, directions and amount changes by group, with intervals and tests.

The unit is the case: a case with several twins counts once, with the share
of its twins that changed. Rates get Wilson intervals on the number of
cases, differences to the reference group Newcombe's interval, ratios
Katz's, tests the pooled two-proportion z-test or Fisher's exact test; amount
changes get t intervals and Welch's test (see :mod:`audit.counterfactual`).
The reason and routing codes that a change adds or removes are counted per
group.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from audit.metrics import (
    COLUMNS,
    adjust_pvalues,
    katz_ratio_interval,
    mdd_means,
    mdd_proportions,
    newcombe_difference_interval,
    two_proportion_test,
    welch_test,
    wilson_interval,
)
from audit.spec import StatisticsSpec

__all__ = ["FLIP_METRICS", "OVERALL", "code_changes", "empty_codes", "metric_rows", "metric_table"]

FLIP_METRICS: tuple[str, ...] = ("flip_rate", "flip_to_unfavourable", "flip_to_favourable", "mean_amount_change")
"""The metrics of the counterfactual section, in report order."""

OVERALL = "all"
"""Group label of all cases."""


def metric_rows(attr: str, groups: list[str], twin_group: np.ndarray, pos: np.ndarray, n_cases: int,
                pairs: dict[str, Any], statistics: StatisticsSpec, reference: str | None) -> list[dict[str, Any]]:
    """Metric rows of one attribute: per original-value group and overall, case units."""
    code = pd.Categorical(twin_group, categories=groups).codes.astype(np.int64)
    case_group = np.full(n_cases, -1, dtype=np.int64)
    case_group[pos] = code
    per_case = np.bincount(pos, minlength=n_cases)
    twinned = per_case > 0
    multi = int(per_case.max()) if per_case.size else 0
    decided = np.bincount(pos, weights=pairs["decided"], minlength=n_cases)
    n_amount = np.bincount(pos, weights=pairs["has_amount"], minlength=n_cases)
    sum_delta = np.bincount(pos, weights=pairs["delta"], minlength=n_cases)
    labels = [*groups, OVERALL]
    members = [twinned & (case_group == g) for g in range(len(groups))] + [twinned]
    sizes = np.array([int(m.sum()) for m in members])
    if reference in groups:
        ref = groups.index(reference)
    else:
        ref = int(np.argmax(sizes[:-1])) if len(groups) else -1
    rows: list[dict[str, Any]] = []
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
        block = [_group_row(attr, metric, lab, share[m & has], int(sizes[i]), _pairs_in(m, pos, pairs),
                            multi, statistics) for i, (lab, m) in enumerate(zip(labels, members, strict=True))]
        _compare(block, ref, metric, statistics)
        rows += block
    return rows


def _pairs_in(member: np.ndarray, pos: np.ndarray, pairs: dict[str, Any]) -> int:
    """Number of twin pairs of the cases in ``member`` that were decided both times."""
    return int(pairs["decided"][member[pos]].sum())


def _group_row(attr: str, metric: str, group: str, x: np.ndarray, size: int, n_pairs: int, multi: int,
               statistics: StatisticsSpec) -> dict[str, Any]:
    """One metric row of one group; ``x`` holds one value per case (a share of twins, or a mean change).

    ``size`` is the number of cases of the group with twins, ``n_pairs`` the
    number of its decided pairs and ``multi`` the most twins a case has.
    Helper keys (``_reasons``, ``_var``, ``_mdd``) are resolved by
    :func:`metric_table`.
    """
    row: dict[str, Any] = {c: math.nan for c in COLUMNS}
    row.update(metric=metric, attributes=[attr], group=group, reference_group=None, suppressed=False, test="",
               four_fifths=None, _reasons=[])
    n = x.size
    row["n"] = float(n)
    if size < statistics.min_group_size:
        row["suppressed"] = True
        row["_reasons"].append(f"suppressed: the group has {size} cases < min_group_size {statistics.min_group_size}")
        return row
    if n == 0:
        what = "had an amount both times" if metric == "mean_amount_change" else "was decided both times"
        row["_reasons"].append(f"undefined: no twin pair of the group's {size} cases {what}")
        return row
    if metric == "mean_amount_change":
        mean = float(x.mean())
        row["value"] = mean
        if n >= 2:
            se = float(x.std(ddof=1)) / math.sqrt(n)
            q = float(stats.t.ppf(1 - statistics.alpha / 2, n - 1))
            row["ci_low"], row["ci_high"] = mean - q * se, mean + q * se
        else:
            row["_reasons"].append("interval needs at least 2 cases")
        row["_var"] = float(x.var(ddof=1)) if n >= 2 else math.nan
    else:
        k = float(x.sum())
        row["count"], row["value"] = k, k / n
        lo, hi = wilson_interval(k, n, statistics.alpha)
        row["ci_low"], row["ci_high"] = float(lo), float(hi)
    if multi > 1:
        what = ("the mean change of its twins" if metric == "mean_amount_change"
                else "the share of its twins that changed")
        row["_reasons"].append(f"n counts cases ({n_pairs} twin pairs decided): each case counts once, with {what}")
    return row


def _compare(block: list[dict[str, Any]], ref: int, metric: str, statistics: StatisticsSpec) -> None:
    """Fill the comparison of each group with the reference group (the last row, ``all``, is not compared)."""
    groups = block[:-1]
    values = [r["value"] for r in groups if not r["suppressed"] and np.isfinite(r["value"])]
    if len(values) >= 2:
        for r in groups:
            r["max_min_gap"] = max(values) - min(values)
            if metric != "mean_amount_change" and max(values) > 0:
                r["min_max_ratio"] = min(values) / max(values)
    if ref < 0 or not groups:
        return
    r0 = groups[ref]
    for i, r in enumerate(groups):
        r["reference_group"] = r0["group"]
        if i == ref or r["suppressed"]:
            continue
        if r0["suppressed"] or not np.isfinite(r0["value"]):
            r["_reasons"].append(f"no comparison: the reference group {r0['group']!r} is "
                                 f"{'suppressed' if r0['suppressed'] else 'undefined'}")
            continue
        if not np.isfinite(r["value"]):
            continue
        v0 = r0["value"]
        r["reference_value"], r["difference"] = v0, r["value"] - v0
        n1, n0 = r["n"], r0["n"]
        if metric == "mean_amount_change":
            p, se, df = welch_test(r["value"], r.get("_var", math.nan), n1, v0, r0.get("_var", math.nan), n0)
            p, se, df = float(p), float(se), float(df)
            if np.isfinite(p):
                q = float(stats.t.ppf(1 - statistics.alpha / 2, df))
                r.update(p_value=p, test="Welch's t-test", diff_ci_low=r["difference"] - q * se,
                         diff_ci_high=r["difference"] + q * se, _mdd=("mean", se))
            else:
                r["_reasons"].append("no test: a group has fewer than 2 cases or no spread")
            continue
        k1, k0 = r["count"], r0["count"]
        p, test = two_proportion_test(k1, n1, k0, n0)
        lo, hi = newcombe_difference_interval(k1, n1, k0, n0, statistics.alpha)
        r.update(p_value=float(p), test=str(np.asarray(test).item()), diff_ci_low=float(lo), diff_ci_high=float(hi),
                 _mdd=("rate", k0, n0, n1))
        if v0 > 0:
            rl, rh = katz_ratio_interval(k1, n1, k0, n0, statistics.alpha)
            r.update(ratio=r["value"] / v0, ratio_ci_low=float(rl), ratio_ci_high=float(rh))
        else:
            r["_reasons"].append("ratio undefined: the reference value is 0")


def metric_table(rows: list[dict[str, Any]], statistics: StatisticsSpec) -> pd.DataFrame:
    """The rows as a metrics table: p-values corrected together, detectable differences, suppression, reasons.

    The minimum detectable difference is for 80 % power at ``alpha / m``
    (``m`` the number of tests of the section), as in :func:`audit.metrics.measure`.
    """
    if not rows:
        return pd.DataFrame({c: [] for c in COLUMNS})
    p = np.array([r["p_value"] for r in rows], dtype=float)
    m = int(np.isfinite(p).sum())
    alpha = statistics.alpha if statistics.correction == "none" or m == 0 else statistics.alpha / m
    adjusted = adjust_pvalues(p, statistics.correction)
    for r, pa in zip(rows, adjusted, strict=True):
        r["p_adjusted"] = float(pa)
        spec = r.get("_mdd")
        if spec is not None and spec[0] == "rate":
            r["mdd"] = float(mdd_proportions(spec[1], spec[2], spec[3], alpha=alpha))
        elif spec is not None:
            r["mdd"] = float(mdd_means(spec[1], alpha=alpha))
        if r["suppressed"]:
            for c in ("value", "ci_low", "ci_high", "count"):
                r[c] = math.nan
        r["reason"] = "; ".join(r["_reasons"])
    table = pd.DataFrame([{c: r[c] for c in COLUMNS} for r in rows])
    for c in ("metric", "group", "test", "reason"):
        table[c] = table[c].astype("str")
    table["suppressed"] = table["suppressed"].astype(bool)
    table["reference_group"] = table["reference_group"].astype(object)
    table["four_fifths"] = table["four_fifths"].astype(object)
    return table[list(COLUMNS)]


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
