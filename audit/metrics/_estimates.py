"""A registry metric over the groups of one attribute: values and intervals from group statistics.

Each metric of :data:`audit.metrics.METRICS` that :func:`audit.metrics.measure`
computes is a function of group statistics returning an estimate of one
shape (a count, a share, a proportion, a mean from exact sums, a ratio of
sums, or score histograms for an AUC). This module turns the estimate into
each group's value with its interval and the evidence against the reference
group (see :mod:`audit.metrics._measure` for the choice of intervals and
tests); :func:`audit.metrics._table.compare_groups` does the rest, as for
every other analysis.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audit._distributions import norm_ppf, t_ppf
from audit.metrics._groups import Bootstrap, Grouping
from audit.metrics._intervals import wilson_interval
from audit.metrics._registry import Auc, Count, Mean, MetricInfo, Proportion, RatioOfSums, Share
from audit.metrics._table import (
    Evidence,
    MetricBlock,
    compare_groups,
    mean_evidence,
    proportion_evidence,
    se_evidence,
    shown_groups,
)
from audit.spec import StatisticsSpec

__all__ = ["metric_block"]


def metric_block(info: MetricInfo, grouping: Grouping, spec: StatisticsSpec, boot: Bootstrap | None) -> MetricBlock:
    """Compute one registry metric for every group of a grouping, compared with its reference group."""
    size = grouping.size
    alpha = spec.alpha
    est = info.function(grouping.s)
    nan = np.full(size, np.nan)
    count = nan.copy()
    ci = (nan.copy(), nan.copy())
    se = nan.copy()  # standard error of the estimate (non-proportions)
    var = nan.copy()
    undefined_text = f"undefined: the denominator ({info.denominator}) is 0"
    if isinstance(est, Count):
        den = np.asarray(est.n, dtype=float)
        value, count = den.copy(), den.copy()
    elif isinstance(est, (Share, Proportion)):
        count, den = np.asarray(est.count, dtype=float), np.asarray(est.n, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(den > 0, count / den, np.nan)
        ci = wilson_interval(count, den, alpha)
    elif isinstance(est, Mean):
        den, value, var = _mean_moments(est)
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.sqrt(var / den)
            tq = t_ppf(1 - alpha / 2, den - 1)
        ci = (value - tq * se, value + tq * se)
    elif isinstance(est, RatioOfSums):
        den, value, se = _ratio_moments(est)
        z = norm_ppf(1 - alpha / 2)
        ci = (value - z * se, value + z * se)
    elif isinstance(est, Auc):
        den, auc, se, npos, nneg = _auc_moments(est)
        z = norm_ppf(1 - alpha / 2)
        ci = (np.clip(auc - z * se, 0, 1), np.clip(auc + z * se, 0, 1))
        undefined_text = "undefined: AUC needs at least one truth-positive and one truth-negative scored case"
        with np.errstate(invalid="ignore"):
            value = np.where((npos == 0) | (nneg == 0), np.nan, auc)
    else:  # pragma: no cover - registry holds only the types above
        raise TypeError(f"unknown estimate {type(est).__name__}")

    source = np.isnan(den) | (np.isnan(count) & isinstance(est, (Share, Proportion)))
    excluded = info.excluded(grouping.s) if info.excluded is not None else None
    reasons: list[list[str]] = []
    for i in range(size):
        r: list[str] = []
        if not source[i] and np.isnan(value[i]):
            r.append(undefined_text if (den[i] == 0 or isinstance(est, Auc)) else "undefined")
        if excluded is not None:
            ex = float(np.asarray(excluded, dtype=float)[i])
            if ex > 0:
                r.append(f"{int(round(ex))} {info.excluded_text}")
        if isinstance(est, (Mean, RatioOfSums)) and den[i] == 1:
            r.append("interval needs at least 2 cases")
        reasons.append(r)

    ref = grouping.reference
    evidence = None
    if grouping.attributes and ref is not None and info.compare:
        shown = shown_groups(grouping.rows, den, value, spec, source_missing=source)
        evidence = _evidence(est, info, grouping, boot, ref, alpha, count=count, den=den, value=value, var=var,
                             se=se, shown=shown)
    return compare_groups(
        info.name, grouping.attributes, grouping.labels, reference=ref, rows=grouping.rows, n=den, value=value,
        ci=ci, count=count, statistics=spec, reasons=reasons, source_missing=source, compare=info.compare,
        evidence=evidence, withheld=grouping.withheld,
    )


def _evidence(est: Any, info: MetricInfo, grouping: Grouping, boot: Bootstrap | None, ref: int, alpha: float, *,
              count: np.ndarray, den: np.ndarray, value: np.ndarray, var: np.ndarray, se: np.ndarray,
              shown: np.ndarray) -> Evidence | None:
    """The test and intervals against the reference group, by the estimate's shape."""
    if isinstance(est, Proportion):
        if not shown[ref] or shown.sum() < 2:
            return None  # nothing to compare: the reference or every other group is hidden
        draws = boot.proportion(grouping, info) if boot is not None else None
        return proportion_evidence(count, den, ref, alpha, draws=draws, where=shown)
    if isinstance(est, Mean):
        return mean_evidence(value, var, den, ref, alpha)
    if isinstance(est, (RatioOfSums, Auc)):
        test = "z-test (Hanley-McNeil)" if isinstance(est, Auc) else "z-test (delta method)"
        return se_evidence(value, se, ref, alpha, test=test)
    return None


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
