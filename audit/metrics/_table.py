"""The metrics table: every group compared with its reference group, in one shape.

An audit asks of every metric the same questions, whichever analysis
produced it (the group metrics of :func:`audit.metrics.measure`, a selection
audit, an engine comparison, counterfactual twins): what is each group's
value and its interval; is the group too small to report; how far is it from
the reference group (difference and ratio, with intervals); is that
difference more than chance (a test, its p-value corrected with every other
test of the run); and how large a difference could the test have seen (the
minimum detectable difference, MDD). This module answers them once:

* an analysis computes each group's value, interval and counts, and the
  *evidence* against the reference group (:class:`Evidence`: a test, the
  standard error that sizes the MDD, and analytic or bootstrap intervals of
  the difference and ratio); :func:`proportion_evidence`,
  :func:`mean_evidence`, :func:`se_evidence` and :func:`bootstrap_evidence`
  build the usual kinds;
* :func:`compare_groups` turns one metric over the groups of one attribute
  set into a :class:`MetricBlock`: suppression of small groups, the reason
  for every NaN, the spread across groups, the reference value, difference,
  ratio and their intervals, the four-fifths flag (from the registry);
* :func:`metric_table` concatenates blocks into the tidy table of
  :data:`COLUMNS`; with ``correct=True`` it corrects the table's p-values
  together and sizes its MDDs for them, as a standalone analysis does;
  with ``correct=False`` it leaves both to :func:`correct_family`, which
  corrects every test of a run together and sizes every MDD once for that
  family.

The MDD is for a two-sided test with 80 % power at level ``alpha / m``
(``m`` the number of tests of the family; ``alpha`` when the correction is
``none``): ``(z_{1 - alpha/(2m)} + z_{0.8}) * se`` with ``se`` the standard
error of the difference under the null (:func:`audit.metrics.mdd_proportions`
and :func:`audit.metrics.mdd_means` for a single test).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from audit._distributions import norm_ppf, norm_sf, t_ppf
from audit._columns import METRIC_COLUMNS
from audit.exceptions import SpecError
from audit.metrics._intervals import katz_ratio_interval, newcombe_difference_interval
from audit.metrics._registry import METRICS
from audit.metrics._significance import (
    adjust_pvalues,
    proportion_null_se,
    two_proportion_test,
    welch_test,
    z_power_sum,
    z_test,
)
from audit.spec import StatisticsSpec

__all__ = [
    "COLUMNS",
    "Evidence",
    "FOUR_FIFTHS",
    "MDD_SE",
    "MetricBlock",
    "SOURCE_SUPPRESSED",
    "bootstrap_evidence",
    "bootstrap_se",
    "compare_groups",
    "correct_family",
    "family_adjusted",
    "group_notes",
    "mean_evidence",
    "metric_table",
    "order_blocks",
    "percentile_interval",
    "proportion_evidence",
    "se_evidence",
    "secondary_suppression",
    "shown_groups",
    "statistics_spec",
]

COLUMNS: tuple[str, ...] = (
    *METRIC_COLUMNS,
    "count",
    "diff_ci_low",
    "diff_ci_high",
    "ratio_ci_low",
    "ratio_ci_high",
    "mdd",
    "test",
    "four_fifths",
    "max_min_gap",
    "min_max_ratio",
    "reason",
)
"""Columns of the metrics table, in order (the first 14 are DESIGN.md's)."""

MDD_SE = "mdd_se"
"""The extra column of a table measured with ``correct=False``: the standard
error of each comparison that :func:`correct_family` sizes the MDD from."""

FOUR_FIFTHS = 0.8
"""The four-fifths rule: a favourable rate below 80 % of the reference's is flagged."""

SOURCE_SUPPRESSED = "cell suppressed at source"
"""The reason of a row whose count an aggregated source suppressed."""

BOOTSTRAP_Z_TEST = "z-test (bootstrap SE)"

_NO_TEST = "no test: a group has fewer than 2 cases or no spread"


# --------------------------------------------------------------------------
# options


def statistics_spec(statistics: StatisticsSpec | Mapping[str, Any] | None) -> StatisticsSpec:
    """The statistics options as a :class:`~audit.spec.StatisticsSpec` (None: defaults; a mapping is validated).

    Raises
    ------
    SpecError
        When a mapping holds an invalid option or ``statistics`` is of another type.
    """
    if statistics is None:
        return StatisticsSpec()
    if isinstance(statistics, StatisticsSpec):
        return statistics
    if isinstance(statistics, Mapping):
        try:
            return StatisticsSpec(**dict(statistics))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            key = ".".join(str(p) for p in err.get("loc", ()))
            raise SpecError(f"statistics.{key}: {err.get('msg')}. Got {err.get('input')!r}.") from None
    raise SpecError(f"statistics must be a StatisticsSpec or a mapping. Got {type(statistics).__name__}.")


# --------------------------------------------------------------------------
# evidence against the reference group


@dataclass(frozen=True)
class Evidence:
    """How each group is compared with the reference group (arrays over the groups).

    Entries of the reference group and of groups that are not compared are
    ignored by :func:`compare_groups`.

    Attributes
    ----------
    p_value, test : numpy.ndarray
        The test's two-sided p-value and name (``""`` where no test ran).
    mdd_se : numpy.ndarray or None
        Standard error of the difference that the MDD is sized from.
    draws : numpy.ndarray or None
        Bootstrap draws of the metric, ``(draws, groups)``: the difference
        and ratio get percentile intervals from them.
    diff_ci, ratio_ci : tuple of numpy.ndarray, optional
        Analytic intervals of the difference and the ratio, used without draws.
    explain_missing_test : bool
        Say why in ``reason`` when a compared group has no p-value (tests that
        need two cases and some spread per group).
    """

    p_value: np.ndarray | None = None
    test: np.ndarray | None = None
    mdd_se: np.ndarray | None = None
    draws: np.ndarray | None = None
    diff_ci: tuple[np.ndarray, np.ndarray] | None = None
    ratio_ci: tuple[np.ndarray, np.ndarray] | None = None
    explain_missing_test: bool = False


def _at_ref(a: Any, ref: int, size: int) -> np.ndarray:
    return np.full(size, np.asarray(a, dtype=float)[ref])


def proportion_evidence(
    count: Any, n: Any, ref: int, alpha: float, *, draws: np.ndarray | None = None, where: Any = None
) -> Evidence:
    """Rates ``count / n`` against the reference group's rate.

    The pooled two-proportion z-test (Fisher's exact test for small expected
    counts); the MDD's standard error under the null
    (:func:`audit.metrics.mdd_proportions`); percentile intervals from
    ``draws`` when given, else Newcombe's interval of the difference and
    Katz's of the ratio. ``where`` (optional, bool per group) limits the
    work to the groups that will be compared (:func:`shown_groups`), which
    spares exact tests of suppressed small groups.
    """
    k = np.asarray(count, dtype=float)
    nn = np.asarray(n, dtype=float)
    g = k.size
    k0, n0 = _at_ref(k, ref, g), _at_ref(nn, ref, g)
    if where is not None:
        k = np.where(np.asarray(where, dtype=bool), k, np.nan)
    p, test = two_proportion_test(k, nn, k0, n0)
    if draws is not None:
        return Evidence(p, test, proportion_null_se(k0, n0, nn), draws=draws)
    return Evidence(
        p, test, proportion_null_se(k0, n0, nn),
        diff_ci=newcombe_difference_interval(k, nn, k0, n0, alpha),
        ratio_ci=katz_ratio_interval(k, nn, k0, n0, alpha),
    )


def mean_evidence(mean: Any, var: Any, n: Any, ref: int, alpha: float) -> Evidence:
    """Means against the reference group's mean: Welch's t-test and t interval; a delta-method log ratio interval.

    ``var`` are sample variances (``ddof=1``). The ratio interval is
    ``exp(log(m / m0) ± z sqrt(var / (n m²) + var0 / (n0 m0²)))`` where both
    means are positive.
    """
    m, v, nn = (np.asarray(x, dtype=float) for x in (mean, var, n))
    g = m.size
    m0, v0, n0 = _at_ref(m, ref, g), _at_ref(v, ref, g), _at_ref(nn, ref, g)
    p, se_d, dfree = welch_test(m, v, nn, m0, v0, n0)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = t_ppf(1 - alpha / 2, dfree)
        d = m - m0
        rel = np.sqrt(v / (nn * m**2) + v0 / (n0 * m0**2))
    return Evidence(
        p, np.where(np.isnan(p), "", "Welch's t-test").astype(object), se_d,
        diff_ci=(d - q * se_d, d + q * se_d), ratio_ci=_log_ratio_ci(m, m0, rel, alpha),
        explain_missing_test=True,
    )


def se_evidence(value: Any, se: Any, ref: int, alpha: float, *, test: str) -> Evidence:
    """Estimates with standard errors (delta method, Hanley-McNeil) against the reference: a z-test.

    Normal intervals of the difference; the ratio interval on the log scale
    with ``sqrt(se² / v² + se0² / v0²)``.
    """
    v, s = np.asarray(value, dtype=float), np.asarray(se, dtype=float)
    g = v.size
    v0, s0 = _at_ref(v, ref, g), _at_ref(s, ref, g)
    p, se_d = z_test(v, s, v0, s0)
    q = norm_ppf(1 - alpha / 2)
    d = v - v0
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.sqrt(s**2 / v**2 + s0**2 / v0**2)
    return Evidence(
        p, np.where(np.isnan(p), "", test).astype(object), se_d,
        diff_ci=(d - q * se_d, d + q * se_d), ratio_ci=_log_ratio_ci(v, v0, rel, alpha),
        explain_missing_test=True,
    )


def _log_ratio_ci(v: np.ndarray, v0: np.ndarray, rel: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = (v > 0) & (v0 > 0)
        zq = norm_ppf(1 - alpha / 2)
        lr = np.log(v / v0)
        return np.where(pos, np.exp(lr - zq * rel), np.nan), np.where(pos, np.exp(lr + zq * rel), np.nan)


def bootstrap_se(draws: np.ndarray | None, ref: int | None) -> np.ndarray | None:
    """Bootstrap standard error of each group's difference to the reference (``ddof=1``; undefined draws left out)."""
    if draws is None or ref is None:
        return None
    with np.errstate(invalid="ignore"):
        d = draws - draws[:, [ref]]
    d = np.where(np.isfinite(d), d, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column with fewer than 2 defined draws: NaN
        return np.nanstd(d, axis=0, ddof=1)


def bootstrap_evidence(value: Any, draws: np.ndarray, ref: int, *, test: str = BOOTSTRAP_Z_TEST) -> Evidence:
    """Estimates with bootstrap draws only: a z-test with the bootstrap SE of the difference; percentile intervals."""
    v = np.asarray(value, dtype=float)
    se = bootstrap_se(draws, ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (v - v[ref]) / se
        p = np.where((se > 0) & np.isfinite(z), 2 * norm_sf(np.abs(z)), np.nan)
    return Evidence(p, np.full(v.size, test, dtype=object), se, draws=draws)


# --------------------------------------------------------------------------
# one metric over the groups of one attribute set


@dataclass
class MetricBlock:
    """One metric over the groups of one attribute set: the columns of the table as arrays, plus reasons."""

    metric: np.ndarray
    attributes: list[list[str]]
    group: np.ndarray
    n: np.ndarray
    value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    count: np.ndarray
    suppressed: np.ndarray
    reasons: list[list[str]]
    reference_group: np.ndarray = field(default=None)  # type: ignore[assignment]
    reference_value: np.ndarray = field(default=None)  # type: ignore[assignment]
    difference: np.ndarray = field(default=None)  # type: ignore[assignment]
    ratio: np.ndarray = field(default=None)  # type: ignore[assignment]
    p_value: np.ndarray = field(default=None)  # type: ignore[assignment]
    test: np.ndarray = field(default=None)  # type: ignore[assignment]
    diff_ci_low: np.ndarray = field(default=None)  # type: ignore[assignment]
    diff_ci_high: np.ndarray = field(default=None)  # type: ignore[assignment]
    ratio_ci_low: np.ndarray = field(default=None)  # type: ignore[assignment]
    ratio_ci_high: np.ndarray = field(default=None)  # type: ignore[assignment]
    mdd_se: np.ndarray = field(default=None)  # type: ignore[assignment]
    four_fifths: np.ndarray = field(default=None)  # type: ignore[assignment]
    max_min_gap: np.ndarray = field(default=None)  # type: ignore[assignment]
    min_max_ratio: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        g = len(self.group)
        for name in ("reference_value", "difference", "ratio", "p_value", "diff_ci_low", "diff_ci_high",
                     "ratio_ci_low", "ratio_ci_high", "mdd_se", "max_min_gap", "min_max_ratio"):
            if getattr(self, name) is None:
                setattr(self, name, np.full(g, np.nan))
        for name in ("reference_group", "four_fifths"):
            if getattr(self, name) is None:
                setattr(self, name, np.full(g, None, dtype=object))
        if self.test is None:
            self.test = np.full(g, "", dtype=object)


def group_notes(*parts: Any) -> list[list[str]]:
    """Per-group lists of the non-empty notes in ``parts`` (arrays of str, one entry per group)."""
    arrays = [np.asarray(p, dtype=object) for p in parts]
    return [[str(a[i]) for a in arrays if a[i]] for i in range(len(arrays[0]))]


def order_blocks(blocks: Sequence[tuple[str, int, MetricBlock]], metrics: Sequence[str]) -> list[MetricBlock]:
    """``(metric, attribute set index, block)`` triples in report order: by metric, then attribute set."""
    rank = {m: i for i, m in enumerate(metrics)}
    return [b for _, _, b in sorted(blocks, key=lambda t: (rank[t[0]], t[1]))]


def percentile_interval(draws: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile interval of bootstrap draws per column, ignoring undefined draws, and how many were defined.

    Quantiles use numpy's default (linear) method; a column without a
    defined draw has a NaN interval.
    """
    x = np.where(np.isfinite(draws), draws, np.nan)
    srt = np.sort(x, axis=0)  # NaN sort last
    valid = (~np.isnan(x)).sum(axis=0)
    cols = np.arange(x.shape[1])
    out = np.full((2, x.shape[1]), np.nan)
    last = np.maximum(valid - 1, 0)
    for i, q in enumerate((alpha / 2, 1 - alpha / 2)):
        pos = q * last
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, last)
        frac = pos - lo
        val = srt[lo, cols] * (1 - frac) + srt[hi, cols] * frac
        out[i] = np.where(valid > 0, val, np.nan)
    return out[0], out[1], valid


def _suppression(rows: Any, den: np.ndarray, source: np.ndarray, min_n: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which groups are suppressed: too few cases, or a denominator between 1 and ``min_n - 1``."""
    small_group = np.asarray(rows, dtype=float) < min_n
    small_den = (den > 0) & (den < min_n)
    return ~source & (small_group | small_den), small_group, small_den


def _withheld(rows: np.ndarray, den: np.ndarray, hidden: np.ndarray, min_n: int) -> np.ndarray:
    """Groups whose counts are withheld in addition to the suppressed ones (secondary suppression of counts).

    The overall row and the other groups' counts are published, so one
    suppressed count could be recovered by subtraction. As statistics
    offices do (complementary suppression), the counts (``n``, the
    numerator, a count metric's value) of further groups are withheld,
    smallest first, until the withheld groups together hold at least
    ``min_n`` cases and are at least two; their rates stay shown.
    """
    if len(rows) < 2 or not hidden.any():
        return np.zeros(len(rows), dtype=bool)
    out = secondary_suppression(rows, hidden, min_n)
    out = secondary_suppression(np.nan_to_num(den), out, min_n)
    return out & ~hidden


def secondary_suppression(sizes: Any, hidden: Any, min_n: int) -> np.ndarray:
    """Hide further groups until no hidden count can be recovered from the published ones.

    Parameters
    ----------
    sizes : array_like
        Cases (or a metric's denominator) of each group of one attribute set.
    hidden : array_like of bool
        Groups already hidden (primary suppression, or suppressed at source).
    min_n : int
        The smallest count that may be published.

    Returns
    -------
    numpy.ndarray of bool
        ``hidden`` plus the groups hidden in addition: when any group is
        hidden, at least two are, and together they hold at least ``min_n``
        (unless every group is hidden). The smallest visible groups are
        chosen first (the least information lost), as in the cell
        suppression rules of SCB and Eurostat.
    """
    sizes = np.asarray(sizes, dtype=float)
    out = np.asarray(hidden, dtype=bool).copy()
    if not out.any():
        return out
    while (~out).any() and (out.sum() < 2 or sizes[out].sum() < min_n):
        visible = np.flatnonzero(~out)
        out[visible[np.argmin(sizes[visible])]] = True
    return out


def shown_groups(rows: Any, n: Any, value: Any, statistics: StatisticsSpec, *, den: Any = None,
                 source_missing: Any = None) -> np.ndarray:
    """The groups :func:`compare_groups` shows a value for (not suppressed, not source-suppressed, defined).

    Of these, every group but the reference is compared with the reference.
    """
    n = np.asarray(n, dtype=float)
    value = np.asarray(value, dtype=float)
    source = np.zeros(n.size, dtype=bool) if source_missing is None else np.asarray(source_missing, dtype=bool)
    suppressed, _, _ = _suppression(rows, n if den is None else np.asarray(den, dtype=float), source,
                                    statistics.min_group_size)
    return ~(suppressed | source) & np.isfinite(value)


def compare_groups(
    metric: str,
    attributes: Sequence[str],
    labels: Sequence[str],
    *,
    reference: int | None,
    rows: Any,
    n: Any,
    value: Any,
    ci: tuple[Any, Any],
    statistics: StatisticsSpec,
    count: Any = None,
    den: Any = None,
    den_name: str = "n",
    reasons: Sequence[Sequence[str]] | None = None,
    source_missing: Any = None,
    compare: bool = True,
    evidence: Evidence | None = None,
    reference_row: bool = True,
    withheld: Any = None,
) -> MetricBlock:
    """One metric over the groups of one attribute set, compared with the reference group.

    Parameters
    ----------
    metric : str
        The metric's name; its registry entry (:data:`audit.metrics.METRICS`)
        says whether a ratio is meaningful, whether the spread is reported
        (not for counts) and whether the four-fifths flag applies
        (favourable rates).
    attributes, labels : sequence of str
        The attribute set (``[]`` for the overall row, which is never
        compared) and its group labels.
    reference : int or None
        Index of the reference group.
    rows : array_like
        Cases of each group: a group with fewer than ``min_group_size`` is
        suppressed (value, interval, count and comparisons are NaN; only the
        suppression is given as the reason).
    n, value, ci, count : array_like
        The metric's denominator, estimate, interval and numerator (NaN where
        there is none).
    statistics : audit.spec.StatisticsSpec
        ``alpha`` and ``min_group_size``.
    den : array_like, optional
        Denominators whose values between 1 and ``min_group_size - 1`` also
        suppress the row (default ``n``); ``den_name`` names them in the reason.
    reasons : sequence of sequence of str, optional
        Notes per group (why a value is undefined, cases left out), kept
        unless the group is suppressed.
    source_missing : array_like of bool, optional
        Groups whose numbers a source suppressed: shown as
        :data:`SOURCE_SUPPRESSED`, not compared.
    compare : bool, default True
        Compare with the reference group (False for shares of one total).
    evidence : Evidence, optional
        The test and the intervals of the comparison.
    reference_row : bool, default True
        True: every row carries the reference value, the reference row its
        own comparison (difference 0, ratio 1), and a row with a value is told
        when the reference cannot be compared. False (the counterfactual's
        convention): only the compared rows carry the reference value,
        difference and ratio, and every row that is not suppressed is told.
    withheld : array_like of bool, optional
        Groups whose counts are hidden by secondary suppression across the
        run's linked tables (:func:`audit.metrics._disclosure.linked_suppression`:
        an intersection's lines add up to the one-attribute margins); their
        counts are withheld like those of this table's own complementary
        suppression.

    Returns
    -------
    MetricBlock
    """
    g = len(labels)
    alpha, min_n = statistics.alpha, statistics.min_group_size
    info = METRICS.get(metric)
    ratio_meaningful = info.ratio_meaningful if info is not None else True
    value = np.asarray(value, dtype=float)
    n = np.asarray(n, dtype=float)
    count = np.full(g, np.nan) if count is None else np.asarray(count, dtype=float)
    den = n if den is None else np.asarray(den, dtype=float)
    rows = np.asarray(rows, dtype=float)
    source = np.zeros(g, dtype=bool) if source_missing is None else np.asarray(source_missing, dtype=bool)
    suppressed, small_group, small_den = _suppression(rows, den, source, min_n)
    linked = np.zeros(g, dtype=bool) if withheld is None else np.asarray(withheld, dtype=bool) & ~(suppressed | source)
    own = _withheld(rows, den, suppressed | source, min_n)
    withheld = own | linked
    notes: list[list[str]] = []
    for i in range(g):
        given = [r for r in (reasons[i] if reasons is not None else ()) if r]
        if source[i]:
            notes.append([SOURCE_SUPPRESSED, *given])
        elif small_group[i]:  # never the exact count: a suppressed cell's size is itself disclosive
            notes.append([f"suppressed: the group has fewer than min_group_size {min_n} cases"])
        elif small_den[i]:
            notes.append([f"suppressed: {den_name} < min_group_size {min_n}"])
        elif own[i]:
            notes.append([*given, "counts withheld (secondary suppression): another group of this attribute is "
                                  "suppressed, and its count could otherwise be recovered from the published totals"])
        elif linked[i]:
            notes.append([*given, "counts withheld (secondary suppression across tables): a suppressed count of a "
                                  "linked table could otherwise be recovered from this table's counts and the "
                                  "published margins"])
        else:
            notes.append(given)
    hide = suppressed | source
    b = MetricBlock(
        metric=np.full(g, metric, dtype=object),
        attributes=[list(attributes) for _ in range(g)],
        group=np.array(list(labels), dtype=object),
        n=np.where(suppressed | withheld, np.nan, n),
        value=np.where(hide | (withheld & (info is not None and info.kind == "count")), np.nan, value),
        ci_low=np.where(hide, np.nan, np.asarray(ci[0], dtype=float)),
        ci_high=np.where(hide, np.nan, np.asarray(ci[1], dtype=float)),
        count=np.where(hide | withheld, np.nan, count),
        suppressed=suppressed,
        reasons=notes,
    )
    shown = b.value
    if attributes and (info is None or info.kind != "count"):
        ok_vals = shown[np.isfinite(shown)]
        if ok_vals.size >= 2:
            b.max_min_gap[:] = ok_vals.max() - ok_vals.min()
            if ratio_meaningful and ok_vals.max() > 0 and ok_vals.min() >= 0:
                b.min_max_ratio[:] = ok_vals.min() / ok_vals.max()
    if not attributes or reference is None or not compare:
        return b
    ref = reference
    ref_label = labels[ref]
    b.reference_group[:] = ref_label
    if hide[ref] or not np.isfinite(shown[ref]):
        why = "suppressed" if suppressed[ref] else "undefined"
        told = ~hide & np.isfinite(shown) if reference_row else ~suppressed
        for i in range(g):
            if i != ref and told[i]:
                notes[i].append(f"no comparison: the reference group {ref_label!r} is {why}")
        return b
    v0 = shown[ref]
    cmp = np.isfinite(shown)
    others = cmp.copy()
    others[ref] = False
    carries = cmp if reference_row else others
    if reference_row:
        b.reference_value[:] = v0
    else:
        b.reference_value[others] = v0
    b.difference = np.where(carries, shown - v0, np.nan)
    if ratio_meaningful:
        if v0 != 0:
            b.ratio = np.where(carries, shown / v0, np.nan)
        else:
            for i in np.flatnonzero(others):
                notes[i].append("ratio undefined: the reference value is 0")
    if info is not None and info.kind == "rate" and info.favourable:
        b.four_fifths = np.array([bool(r < FOUR_FIFTHS) if np.isfinite(r) else None for r in b.ratio], dtype=object)
    idx = np.flatnonzero(others)
    if idx.size == 0 or evidence is None:
        return b
    p = None
    if evidence.p_value is not None:
        p = np.asarray(evidence.p_value, dtype=float)[idx]
        b.p_value[idx] = p
        test = evidence.test if evidence.test is not None else np.full(g, "", dtype=object)
        b.test[idx] = np.where(np.isnan(p), "", np.asarray(test, dtype=object)[idx])
    if evidence.mdd_se is not None:
        b.mdd_se[idx] = np.asarray(evidence.mdd_se, dtype=float)[idx]
    if evidence.draws is not None:
        _bootstrap_intervals(b, evidence.draws, idx, ref, alpha, ratio_meaningful and v0 != 0)
    else:
        if evidence.diff_ci is not None:
            b.diff_ci_low[idx] = np.asarray(evidence.diff_ci[0], dtype=float)[idx]
            b.diff_ci_high[idx] = np.asarray(evidence.diff_ci[1], dtype=float)[idx]
        if evidence.ratio_ci is not None and ratio_meaningful and v0 != 0:
            b.ratio_ci_low[idx] = np.asarray(evidence.ratio_ci[0], dtype=float)[idx]
            b.ratio_ci_high[idx] = np.asarray(evidence.ratio_ci[1], dtype=float)[idx]
    if evidence.explain_missing_test and p is not None:
        for j, i in enumerate(idx):
            if np.isnan(p[j]):
                notes[i].append(_NO_TEST)
    return b


def _bootstrap_intervals(b: MetricBlock, draws: np.ndarray, idx: np.ndarray, ref: int, alpha: float,
                         ratio: bool) -> None:
    """Percentile intervals of the difference and ratio from the metric's draws ``(draws, groups)``."""
    total = draws.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi, used = percentile_interval(draws[:, idx] - draws[:, [ref]], alpha)
        b.diff_ci_low[idx], b.diff_ci_high[idx] = lo, hi
        if ratio:
            rlo, rhi, rused = percentile_interval(draws[:, idx] / draws[:, [ref]], alpha)
            b.ratio_ci_low[idx], b.ratio_ci_high[idx] = rlo, rhi
            used = np.minimum(used, rused)
    for j, i in enumerate(idx):
        if used[j] < total:
            b.reasons[i].append(
                f"bootstrap intervals from {int(used[j])} of {total} draws (the others had a zero denominator)"
            )


# --------------------------------------------------------------------------
# the table, and the run's family of tests


_FLOAT = ("n", "value", "ci_low", "ci_high", "reference_value", "difference", "ratio", "p_value", "count",
          "diff_ci_low", "diff_ci_high", "ratio_ci_low", "ratio_ci_high", "max_min_gap", "min_max_ratio")


def _alpha_per_test(p_value: np.ndarray, statistics: StatisticsSpec) -> float:
    """``alpha / m`` for the ``m`` tests that ran (``alpha`` when nothing is corrected)."""
    m = int(np.isfinite(p_value).sum())
    return statistics.alpha if statistics.correction == "none" or m == 0 else statistics.alpha / m


def metric_table(blocks: Sequence[MetricBlock], statistics: StatisticsSpec, *, correct: bool = True) -> pd.DataFrame:
    """Concatenate blocks into the tidy metrics table.

    Parameters
    ----------
    blocks : sequence of MetricBlock
        In report order.
    statistics : audit.spec.StatisticsSpec
        ``alpha`` and ``correction``.
    correct : bool, default True
        True: correct the table's p-values together (``p_adjusted``) and size
        its MDDs for that family, as a standalone analysis does. False: leave
        ``p_adjusted`` and ``mdd`` NaN and add the column :data:`MDD_SE`, for
        :func:`correct_family` to correct and size with the run's other tables.

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`COLUMNS` (and :data:`MDD_SE` when ``correct`` is False).
    """
    columns = list(COLUMNS) if correct else [*COLUMNS, MDD_SE]
    if not blocks:
        return pd.DataFrame({c: [] for c in columns})

    def cat(col: str, dtype: Any = float) -> np.ndarray:
        return np.concatenate([np.asarray(getattr(b, col), dtype=dtype) for b in blocks])

    data: dict[str, Any] = {c: cat(c) for c in _FLOAT}
    mdd_se = cat("mdd_se")
    if correct:
        data["p_adjusted"] = adjust_pvalues(data["p_value"], statistics.correction)
        data["mdd"] = z_power_sum(_alpha_per_test(data["p_value"], statistics)) * mdd_se
    else:
        data["p_adjusted"] = np.full(mdd_se.size, np.nan)
        data["mdd"] = np.full(mdd_se.size, np.nan)
        data[MDD_SE] = mdd_se
    data["metric"] = pd.Series(cat("metric", object), dtype="str")
    data["attributes"] = pd.Series([a for b in blocks for a in b.attributes], dtype=object)
    data["group"] = pd.Series(cat("group", object), dtype="str")
    data["reference_group"] = pd.Series(cat("reference_group", object), dtype=object)
    data["suppressed"] = cat("suppressed", object).astype(bool)
    data["test"] = pd.Series(cat("test", object), dtype="str")
    data["four_fifths"] = pd.Series(cat("four_fifths", object), dtype=object)
    data["reason"] = pd.Series(["; ".join(r) for b in blocks for r in b.reasons], dtype="str")
    return pd.DataFrame(data)[columns]


def correct_family(tables: Sequence[pd.DataFrame | None], statistics: StatisticsSpec | Mapping[str, Any] | None,
                   *, extra_p: np.ndarray | None = None) -> pd.DataFrame:
    """Concatenate the metric tables of a run; correct every p-value together and size every MDD once.

    The family of a run is every test in it: the p-values of all tables are
    adjusted together with ``statistics.correction`` (Holm by default), and
    each comparison's minimum detectable difference is sized for 80 % power
    at ``alpha / m`` with ``m`` the number of tests of the whole run.

    Parameters
    ----------
    tables : sequence of pandas.DataFrame
        Tables measured with ``correct=False`` (with the column
        :data:`MDD_SE`); None and empty tables are skipped. A table measured
        with ``correct=True`` is accepted too: its MDDs, sized for its own
        ``m_table`` tests, are rescaled by
        ``z_power_sum(alpha / m) / z_power_sum(alpha / m_table)``.
    statistics : audit.spec.StatisticsSpec or mapping
        ``alpha`` and ``correction`` of the run.
    extra_p : numpy.ndarray, optional
        p-values of the run's other tests that are not metric rows (the
        stage funnel's shift tests): they join the family, so every
        ``p_adjusted`` and MDD here counts them; their own adjusted values
        come from :func:`family_adjusted` with the same inputs.

    Returns
    -------
    pandas.DataFrame
        One table with the columns of :data:`COLUMNS` (columns beyond them,
        other than :data:`MDD_SE`, are kept).
    """
    spec = statistics_spec(statistics)
    parts = [t for t in tables if t is not None and len(t)]
    if not parts:
        return pd.DataFrame({c: [] for c in COLUMNS})
    extra = np.asarray(extra_p if extra_p is not None else [], dtype=float)
    p_all = np.concatenate([*(t["p_value"].to_numpy(dtype=float) for t in parts), extra])
    alpha_run = _alpha_per_test(p_all, spec)
    sized = []
    for t in parts:
        t = t.copy()
        if MDD_SE in t.columns:
            t["mdd"] = z_power_sum(alpha_run) * t[MDD_SE].to_numpy(dtype=float)
            t = t.drop(columns=[MDD_SE])
        else:
            p_table = t["p_value"].to_numpy(dtype=float)
            alpha_table = _alpha_per_test(p_table, spec)
            if np.isfinite(p_table).any() and alpha_table != alpha_run:
                factor = float(z_power_sum(alpha_run) / z_power_sum(alpha_table))
                t["mdd"] = t["mdd"].to_numpy(dtype=float) * factor
        sized.append(t)
    frame = pd.concat(sized, ignore_index=True, sort=False) if len(sized) > 1 else sized[0].reset_index(drop=True)
    frame["p_adjusted"] = family_adjusted(frame["p_value"].to_numpy(dtype=float), extra, spec)[0]
    return frame


def family_adjusted(metric_p: np.ndarray, extra_p: np.ndarray | None,
                    statistics: StatisticsSpec | Mapping[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """Adjust a run's metric p-values and its other tests' p-values together, as one family.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The adjusted metric p-values and the adjusted ``extra_p``, each in
        its input order (NaN stays NaN and does not count as a test).
    """
    spec = statistics_spec(statistics)
    first = np.asarray(metric_p, dtype=float)
    extra = np.asarray(extra_p if extra_p is not None else [], dtype=float)
    adjusted = adjust_pvalues(np.concatenate([first, extra]), spec.correction)
    return adjusted[: len(first)], adjusted[len(first):]
