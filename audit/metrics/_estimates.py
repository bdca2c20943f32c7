"""One metric over the groups of one attribute: values, intervals, comparisons.

For each group: the value with its interval, suppression and the reason for
any NaN; for each group but the reference: difference and ratio to the
reference with their intervals, the test and the quantity that the minimum
detectable difference scales (see :mod:`audit.metrics._measure` for the
choice of intervals and tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from audit.metrics._groups import Bootstrap, Grouping
from audit.metrics._intervals import katz_ratio_interval, newcombe_difference_interval, wilson_interval
from audit.metrics._registry import Auc, Count, Mean, MetricInfo, Proportion, RatioOfSums, Share
from audit.metrics._significance import proportion_null_se, two_proportion_test, welch_test, z_test
from audit.spec import StatisticsSpec

__all__ = ["FOUR_FIFTHS", "SOURCE_SUPPRESSED", "block"]

FOUR_FIFTHS = 0.8
"""The four-fifths rule: a favourable rate below 80 % of the reference's is flagged."""

SOURCE_SUPPRESSED = "cell suppressed at source"


def block(info: MetricInfo, grouping: Grouping, spec: StatisticsSpec, boot: Bootstrap | None) -> dict[str, Any]:
    """Compute one metric for every group of a grouping (columns as arrays, plus reasons)."""
    size = grouping.size
    alpha = spec.alpha
    est = info.function(grouping.s)
    b: dict[str, Any] = {
        "metric": np.full(size, info.name, dtype=object),
        "attributes": [list(grouping.attributes) for _ in range(size)],
        "group": np.array(grouping.labels, dtype=object),
        "reasons": [[] for _ in range(size)],
    }
    nan = np.full(size, np.nan)
    for col in ("n", "value", "ci_low", "ci_high", "count", "reference_value", "difference", "ratio",
                "p_value", "diff_ci_low", "diff_ci_high", "ratio_ci_low", "ratio_ci_high", "mdd_se",
                "max_min_gap", "min_max_ratio"):
        b[col] = nan.copy()
    b["test"] = np.full(size, "", dtype=object)
    b["reference_group"] = np.full(size, None, dtype=object)
    b["four_fifths"] = np.full(size, None, dtype=object)

    # ---- value, interval, denominator
    se = nan.copy()  # standard error of the estimate (non-proportions)
    var = nan.copy()
    undefined_text = f"undefined: the denominator ({info.denominator}) is 0"
    if isinstance(est, Count):
        den = np.asarray(est.n, dtype=float)
        b["n"], b["value"], b["count"] = den, den.copy(), den.copy()
    elif isinstance(est, (Share, Proportion)):
        k, den = np.asarray(est.count, dtype=float), np.asarray(est.n, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            b["value"] = np.where(den > 0, k / den, np.nan)
        b["n"], b["count"] = den, k
        b["ci_low"], b["ci_high"] = wilson_interval(k, den, alpha)
    elif isinstance(est, Mean):
        den, mean, var = _mean_moments(est)
        b["n"], b["value"] = den, mean
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.sqrt(var / den)
            tq = stats.t.ppf(1 - alpha / 2, den - 1)
        b["ci_low"], b["ci_high"] = mean - tq * se, mean + tq * se
    elif isinstance(est, RatioOfSums):
        den, ratio_v, se = _ratio_moments(est)
        b["n"], b["value"] = den, ratio_v
        z = stats.norm.ppf(1 - alpha / 2)
        b["ci_low"], b["ci_high"] = ratio_v - z * se, ratio_v + z * se
    elif isinstance(est, Auc):
        den, auc, se, npos, nneg = _auc_moments(est)
        b["n"], b["value"] = den, auc
        z = stats.norm.ppf(1 - alpha / 2)
        b["ci_low"], b["ci_high"] = np.clip(auc - z * se, 0, 1), np.clip(auc + z * se, 0, 1)
        undefined_text = "undefined: AUC needs at least one truth-positive and one truth-negative scored case"
        with np.errstate(invalid="ignore"):
            auc_undefined = (npos == 0) | (nneg == 0)
        b["value"] = np.where(auc_undefined, np.nan, auc)
    else:  # pragma: no cover - registry holds only the types above
        raise TypeError(f"unknown estimate {type(est).__name__}")

    den = np.asarray(b["n"], dtype=float)
    rows = grouping.rows
    min_n = spec.min_group_size
    source_nan = np.isnan(den) | (np.isnan(b["count"]) & isinstance(est, (Share, Proportion)))
    small_group = rows < min_n
    small_den = (den > 0) & (den < min_n)
    suppressed = ~source_nan & (small_group | small_den)
    if isinstance(est, Count):
        suppressed = ~source_nan & small_group
    undefined = ~source_nan & ~suppressed & np.isnan(b["value"])

    excluded = info.excluded(grouping.s) if info.excluded is not None else None
    for i in range(size):
        r = b["reasons"][i]
        if source_nan[i]:
            r.append(SOURCE_SUPPRESSED)
        elif suppressed[i]:
            if small_group[i]:
                k = int(rows[i])
                r.append(f"suppressed: the group has {k} case{'' if k == 1 else 's'} < min_group_size {min_n}")
            else:
                r.append(f"suppressed: n = {int(den[i])} < min_group_size {min_n}")
        elif undefined[i]:
            r.append(undefined_text if (den[i] == 0 or isinstance(est, Auc)) else "undefined")
        if excluded is not None and not suppressed[i]:
            ex = float(np.asarray(excluded, dtype=float)[i])
            if ex > 0:
                r.append(f"{int(round(ex))} {info.excluded_text}")
        if isinstance(est, (Mean, RatioOfSums)) and not suppressed[i] and den[i] == 1:
            r.append("interval needs at least 2 cases")

    hide = suppressed | source_nan
    for col in ("value", "ci_low", "ci_high", "count"):
        b[col] = np.where(hide, np.nan, b[col])
    if isinstance(est, Count):
        b["value"] = np.where(suppressed, np.nan, den)
        b["count"] = b["value"].copy()
    b["suppressed"] = suppressed
    value = b["value"]

    # ---- spread across groups (fairlearn's difference() and ratio())
    if grouping.attributes and info.name != "n":
        ok_vals = value[~hide & np.isfinite(value)]
        if ok_vals.size >= 2:
            b["max_min_gap"][:] = ok_vals.max() - ok_vals.min()
            if info.ratio_meaningful and ok_vals.max() > 0 and ok_vals.min() >= 0:
                b["min_max_ratio"][:] = ok_vals.min() / ok_vals.max()

    # ---- comparison with the reference
    ref = grouping.reference
    if not grouping.attributes or ref is None or not info.compare:
        return b
    ref_label = grouping.labels[ref]
    b["reference_group"][:] = ref_label
    if hide[ref] or not np.isfinite(value[ref]):
        why = "suppressed" if suppressed[ref] else "undefined"
        for i in range(size):
            if i != ref and not hide[i] and np.isfinite(value[i]):
                b["reasons"][i].append(f"no comparison: the reference group {ref_label!r} is {why}")
        return b
    v0 = value[ref]
    b["reference_value"][:] = v0
    cmp = ~hide & np.isfinite(value)
    others = cmp.copy()
    others[ref] = False
    b["difference"] = np.where(cmp, value - v0, np.nan)
    if info.ratio_meaningful:
        if v0 != 0:
            b["ratio"] = np.where(cmp, value / v0, np.nan)
        else:
            for i in np.flatnonzero(others):
                b["reasons"][i].append("ratio undefined: the reference value is 0")
    if info.kind == "rate" and info.favourable:
        b["four_fifths"] = np.array(
            [bool(r < FOUR_FIFTHS) if np.isfinite(r) else None for r in b["ratio"]], dtype=object
        )

    idx = np.flatnonzero(others)
    if idx.size == 0:
        return b
    if isinstance(est, Proportion):
        k, den = b["count"], b["n"]
        p, test = two_proportion_test(k[idx], den[idx], k[ref], den[ref])
        b["p_value"][idx], b["test"][idx] = p, test
        b["mdd_se"][idx] = proportion_null_se(k[ref], den[ref], den[idx])
        draws = boot.proportion(grouping, info) if boot is not None else None
        if draws is not None:
            _bootstrap_intervals(b, draws, idx, ref, alpha, info, boot.draws)
        else:
            b["diff_ci_low"][idx], b["diff_ci_high"][idx] = newcombe_difference_interval(
                k[idx], den[idx], k[ref], den[ref], alpha
            )
            if info.ratio_meaningful and v0 != 0:
                b["ratio_ci_low"][idx], b["ratio_ci_high"][idx] = katz_ratio_interval(
                    k[idx], den[idx], k[ref], den[ref], alpha
                )
        return b
    # means, ratios of sums, AUC: analytic
    if isinstance(est, Mean):
        p, se_d, dfree = welch_test(value[idx], var[idx], den[idx], v0, var[ref], den[ref])
        q = stats.t.ppf(1 - alpha / 2, dfree)
        b["test"][idx] = "Welch's t-test"
    else:
        p, se_d = z_test(value[idx], se[idx], v0, se[ref])
        q = np.full(idx.size, stats.norm.ppf(1 - alpha / 2))
        b["test"][idx] = "z-test (Hanley-McNeil)" if isinstance(est, Auc) else "z-test (delta method)"
    b["test"][idx] = np.where(np.isnan(p), "", b["test"][idx])
    b["p_value"][idx] = p
    d = value[idx] - v0
    b["diff_ci_low"][idx], b["diff_ci_high"][idx] = d - q * se_d, d + q * se_d
    b["mdd_se"][idx] = se_d
    if info.ratio_meaningful:
        with np.errstate(divide="ignore", invalid="ignore"):
            pos = (value[idx] > 0) & (v0 > 0)
            if isinstance(est, Mean):
                rel = np.sqrt(var[idx] / (den[idx] * value[idx] ** 2) + var[ref] / (den[ref] * v0**2))
            else:
                rel = np.sqrt(se[idx] ** 2 / value[idx] ** 2 + se[ref] ** 2 / v0**2)
            zq = stats.norm.ppf(1 - alpha / 2)
            lr = np.log(value[idx] / v0)
            b["ratio_ci_low"][idx] = np.where(pos, np.exp(lr - zq * rel), np.nan)
            b["ratio_ci_high"][idx] = np.where(pos, np.exp(lr + zq * rel), np.nan)
    for j, i in enumerate(idx):
        if np.isnan(p[j]):
            b["reasons"][i].append("no test: a group has fewer than 2 cases or no spread")
    return b


def _column_quantiles(x: np.ndarray, qs: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles of each column ignoring NaN (numpy's default linear method), and the valid counts."""
    x = np.where(np.isfinite(x), x, np.nan)
    srt = np.sort(x, axis=0)  # NaN sort last
    valid = (~np.isnan(x)).sum(axis=0)
    cols = np.arange(x.shape[1])
    out = np.full((len(qs), x.shape[1]), np.nan)
    last = np.maximum(valid - 1, 0)
    for i, q in enumerate(qs):
        pos = q * last
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, last)
        frac = pos - lo
        val = srt[lo, cols] * (1 - frac) + srt[hi, cols] * frac
        out[i] = np.where(valid > 0, val, np.nan)
    return out, valid


def _bootstrap_intervals(
    b: dict[str, Any], draws: np.ndarray, idx: np.ndarray, ref: int, alpha: float, info: MetricInfo, total: int
) -> None:
    qs = [alpha / 2, 1 - alpha / 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        dq, counts = _column_quantiles(draws[:, idx] - draws[:, [ref]], qs)
        if info.ratio_meaningful and b["reference_value"][ref] != 0:
            rq, rcount = _column_quantiles(draws[:, idx] / draws[:, [ref]], qs)
        else:
            rq, rcount = np.full((2, idx.size), np.nan), counts
    b["diff_ci_low"][idx], b["diff_ci_high"][idx] = dq[0], dq[1]
    b["ratio_ci_low"][idx], b["ratio_ci_high"][idx] = rq[0], rq[1]
    for j, i in enumerate(idx):
        used = int(min(counts[j], rcount[j]))
        if used < total:
            b["reasons"][i].append(
                f"bootstrap intervals from {used} of {total} draws (the others had a zero denominator)"
            )


def _mean_moments(est: Mean) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_ = np.asarray(est.n, dtype=float)
    size = n_.size
    mean = np.full(size, np.nan)
    var = np.full(size, np.nan)
    sc = est.scale
    for i in range(size):
        ni = n_[i]
        if not np.isfinite(ni) or ni <= 0:
            continue
        ni_int = int(round(ni))
        tot, sq = int(est.total[i]), int(est.total_sq[i])
        mean[i] = tot / ni_int / sc
        if ni_int >= 2:
            var[i] = (ni_int * sq - tot * tot) / (ni_int * (ni_int - 1)) / (sc * sc)
    return n_, mean, var


def _ratio_moments(est: RatioOfSums) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_ = np.asarray(est.n, dtype=float)
    size = n_.size
    ratio = np.full(size, np.nan)
    se = np.full(size, np.nan)
    for i in range(size):
        ni = int(round(n_[i])) if np.isfinite(n_[i]) else 0
        sx, sy = int(est.sx[i]), int(est.sy[i])
        if ni <= 0 or sy == 0:
            continue
        ratio[i] = sx / sy
        if ni >= 2:
            t = int(est.sxx[i]) * sy * sy - 2 * sx * int(est.sxy[i]) * sy + sx * sx * int(est.syy[i])
            se[i] = np.sqrt(ni * t / ((ni - 1) * float(sy) ** 4))
    return n_, ratio, se


def _auc_moments(est: Auc) -> tuple[np.ndarray, ...]:
    neg = np.asarray(est.negatives, dtype=float)
    pos = np.asarray(est.positives, dtype=float)
    npos, nneg = pos.sum(axis=-1), neg.sum(axis=-1)
    below = np.cumsum(neg, axis=-1) - neg
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (pos * (below + 0.5 * neg)).sum(axis=-1) / (npos * nneg)
        q1 = auc / (2 - auc)
        q2 = 2 * auc**2 / (1 + auc)
        var = (auc * (1 - auc) + (npos - 1) * (q1 - auc**2) + (nneg - 1) * (q2 - auc**2)) / (npos * nneg)
        se = np.sqrt(np.maximum(var, 0))
    return npos + nneg, auc, se, npos, nneg
