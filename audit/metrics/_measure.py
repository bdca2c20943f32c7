"""Disparities between groups: values, intervals, comparisons and tests.

Measuring bias means comparing groups. For each sensitive attribute (sex,
region of birth, ...) and each listed intersection (sex × region of birth),
Insyn computes every metric for every group, picks a *reference group* (from
the spec, or the largest group), and reports for each other group the
``difference`` and ``ratio`` to the reference with intervals, a test with
multiple-testing correction, and the minimum detectable difference. Groups
too small to report are suppressed and shown as such.

Every number comes from :class:`~audit.metrics.GroupStatistics`: one
vectorised pass over the cases, then arithmetic on per-group counts.

Intervals
---------
* rates: Wilson score interval per group; for differences and ratios to the
  reference, the percentile interval of an exact multinomial bootstrap over
  the cell counts of the whole run (the row bootstrap of fairlearn, done on
  counts; seeded; ``statistics.bootstrap`` draws, default 2,000), or, with
  ``bootstrap: 0``, Newcombe's and Katz's analytic intervals;
* amounts (``mean_amount``, ``mean_shortfall``, ``calibration_gap``): the
  *analytic* t interval, Welch's t interval for differences and a delta-method
  log interval for ratios; ``amount_ratio`` (a ratio of sums): the delta
  method. Analytic rather than bootstrap, because (1) the exact integer sums
  and sums of squares per group are sufficient for them, so they work
  unchanged on chunks, Dask partitions and aggregated tables, where the rows
  needed by a bootstrap of amounts are gone; (2) groups are only reported
  from ``min_group_size`` cases up and amounts are bounded, so the central
  limit theorem applies; (3) they cost nothing, where a bootstrap of amounts
  would need one pass over the rows per draw. Their weakness, undercoverage
  for small and very skewed groups, is the same as the percentile bootstrap's;
* ``roc_auc``: the Hanley–McNeil standard error (Wald interval, clipped to
  [0, 1]).

Tests and correction
--------------------
Rates: pooled two-proportion z-test, or Fisher's exact test when an expected
cell count is below 5. Means: Welch's t-test. Ratios of sums and AUCs: z-test
on the standard errors above. All p-values of a table are corrected together
(``statistics.correction``: Holm by default). The minimum detectable
difference (``mdd``) is for a two-sided test with 80 % power at level
``alpha / m`` (``m`` the number of tests; ``alpha`` when the correction is
``none``), so it describes what the *corrected* tests can see. In a run,
``correct=False`` leaves both to :func:`audit.metrics.correct_family`, which
takes ``m`` over every test of the run. The table itself is built as every
metrics table is (:mod:`audit.metrics._table`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from audit.exceptions import DataError, SpecError
from audit.metrics._cells import CHANNELS, FAMILIES, channel_matrix, masked_matmul
from audit.metrics._disclosure import linked_suppression
from audit.metrics._estimates import metric_block
from audit.metrics._groups import Bootstrap, Grouping, is_bootstrapped
from audit.metrics._intervals import clopper_pearson_interval, wilson_interval
from audit.metrics._registry import BINARY_METRICS, GROUP_METRICS, METRICS
from audit.metrics._statistics import GROUP_SEPARATOR, GroupStatistics
from audit.metrics._table import SOURCE_SUPPRESSED, MetricBlock, metric_table, statistics_spec
from audit.spec import StatisticsSpec

__all__ = ["binary_metrics_from_counts", "measure", "measure_statistics"]


# --------------------------------------------------------------------------
# public entry points


def measure(
    frame: pd.DataFrame,
    *,
    sensitive_features: Sequence[str],
    intersections: Sequence[Sequence[str]] = (),
    reference_groups: Mapping[str, str] | None = None,
    favourable: Sequence[str] = ("grant", "partial"),
    review: Sequence[str] = ("refer",),
    pred_positive: Sequence[str] = ("deny",),
    truth_positive: Sequence[str] | None = None,
    statistics: StatisticsSpec | None = None,
    seed: int = 0,
    metrics: Sequence[str] | None = None,
    amount_tolerance: float = 1.0,
    score_bins: int = 1000,
    correct: bool = True,
) -> pd.DataFrame:
    """Measure every metric for every group of a measurement frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        The measurement frame (``docs/interfaces.md``): ``case_id``, the
        sensitive columns, ``status``, ``outcome``, ``final_outcome``,
        ``amount``, ``final_amount`` and optionally ``truth_outcome``,
        ``truth_amount``, ``score``.
    sensitive_features : sequence of str
        Columns that form groups. Missing values form the group ``(missing)``.
    intersections : sequence of sequences of str, optional
        Combinations of sensitive features to measure as well.
    reference_groups : mapping, optional
        ``{attribute: group}``; for an intersection, key the attributes joined
        with ``" & "``. Default: the largest group (ties: first label; never
        ``(missing)`` unless it is the only group); for an intersection, the
        combination of its attributes' references when that group is not
        suppressed, else the largest.
    favourable, review, pred_positive, truth_positive : sequence of str
        Outcome labels (see :class:`~audit.metrics.GroupStatistics`).
    statistics : audit.spec.StatisticsSpec, optional
        ``min_group_size``, ``alpha``, ``correction``, ``bootstrap``.
    seed : int, default 0
        Seed of the bootstrap; the same seed gives the same table.
    metrics : sequence of str, optional
        Metrics to compute (names of ``METRICS`` that are functions of group
        statistics, i.e. whose ``analyses`` is ``("measure",)``); default every metric the
        frame's columns allow.
    amount_tolerance : float, default 1.0
        SEK below the correct amount before a case counts as underpaid.
    score_bins : int, default 1000
        Bins of the score histogram used for ``roc_auc``.
    correct : bool, default True
        Correct the table's p-values together and size its minimum detectable
        differences for them. False leaves ``p_adjusted`` and ``mdd`` to
        :func:`audit.metrics.correct_family`, which does both once for every
        table of a run (the table then has the extra column ``mdd_se``).

    Returns
    -------
    pandas.DataFrame
        The tidy metrics table, one row per (metric, attributes, group), with
        the columns of ``COLUMNS`` (see :func:`measure_statistics`).

    Raises
    ------
    DataError
        When the frame lacks a column or holds invalid values, or a reference
        group is not in the data.
    SpecError
        When an option is invalid or a metric is unknown.
    """
    stats_ = GroupStatistics.from_frame(
        frame,
        sensitive_features=sensitive_features,
        favourable=favourable,
        review=review,
        pred_positive=pred_positive,
        truth_positive=truth_positive,
        amount_tolerance=amount_tolerance,
        score_bins=score_bins,
    )
    return measure_statistics(
        stats_,
        sensitive_features=sensitive_features,
        intersections=intersections,
        reference_groups=reference_groups,
        statistics=statistics,
        seed=seed,
        metrics=metrics,
        correct=correct,
    )


def measure_statistics(
    group_statistics: GroupStatistics | Mapping[str, GroupStatistics],
    *,
    sensitive_features: Sequence[str] | None = None,
    intersections: Sequence[Sequence[str]] = (),
    reference_groups: Mapping[str, str] | None = None,
    statistics: StatisticsSpec | None = None,
    seed: int = 0,
    metrics: Sequence[str] | None = None,
    correct: bool = True,
) -> pd.DataFrame:
    """Measure every metric for every group from sufficient statistics.

    Parameters
    ----------
    group_statistics : GroupStatistics or mapping of str to GroupStatistics
        The statistics of a run; or, for a published table that reports each
        attribute separately (marginals), one ``GroupStatistics`` per
        attribute, keyed by the attribute (then ``intersections`` must be
        empty, the overall row comes from the first attribute, and the
        bootstrap draws each attribute's cells separately).
    sensitive_features : sequence of str, optional
        Attributes to report; default all of the statistics.
    intersections, reference_groups, statistics, seed, metrics, correct
        As in :func:`measure`.

    Returns
    -------
    pandas.DataFrame
        One row per (metric, attributes, group): first the overall row
        (``attributes == []``, ``group == "all"``), then each attribute, then
        each intersection; groups sorted by value. Columns (``COLUMNS``):

        ``n``
            the metric's denominator (cases; the number of cases for ``n``
            and the run's total for ``share``);
        ``count``
            the numerator for rates, NaN for means and AUCs;
        ``value``, ``ci_low``, ``ci_high``
            the estimate and its ``1 - alpha`` interval;
        ``reference_group``, ``reference_value``, ``difference``, ``ratio``
            comparison with the attribute's reference group (``ratio`` is
            ``value / reference_value``); the reference row has 0 and 1;
        ``diff_ci_low`` .. ``ratio_ci_high``
            their intervals;
        ``p_value``, ``p_adjusted``, ``test``
            the test against the reference and its corrected p-value;
        ``mdd``
            the minimum detectable difference (see the module docstring);
        ``suppressed``
            True when the group has fewer than ``min_group_size`` cases or the
            metric's denominator is between 1 and ``min_group_size - 1``;
            value, count and every derived number are then NaN;
        ``four_fifths``
            for rates where higher is better for the applicant
            (``grant_rate``, ``automation_rate``): ``ratio < 0.8``; None for
            other metrics and where the ratio is undefined;
        ``max_min_gap``, ``min_max_ratio``
            for the attribute: max − min and min / max of ``value`` over its
            non-suppressed groups (fairlearn's ``difference()`` and
            ``ratio()``), repeated on each row of the attribute; NaN on the
            overall row;
        ``reason``
            why a value or comparison is NaN or suppressed, and which cases
            a metric left out; ``""`` otherwise.
    """
    spec = statistics_spec(statistics)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SpecError(f"seed must be an integer >= 0. Got {seed!r}.")
    sources = _sources(group_statistics, sensitive_features, intersections)
    first = sources[0][0]
    for stats_, _ in sources:
        if not stats_.counts.size or np.nansum(stats_.counts) == 0:
            raise DataError("the measurement holds no cases. Expected at least one case to measure.")
    families = frozenset.intersection(*(s.families for s, _ in sources))
    chosen = _choose_metrics(metrics, families, frozenset().union(*(_empty_families(s) for s, _ in sources)))
    refs = dict(reference_groups or {})
    rng_seeds = np.random.SeedSequence(int(seed)).spawn(len(sources))

    blocks: list[tuple[tuple[int, int], MetricBlock]] = []
    metric_order = {m: i for i, m in enumerate(chosen)}
    # the overall row comes from the first source
    all_groupings: list[tuple[GroupStatistics, list[str]]] = [(first, [])]
    for stats_, groupings in sources:
        all_groupings += [(stats_, g) for g in groupings]
    known_attrs = {a for _, g in all_groupings for a in g}
    for key in refs:
        parts = key.split(GROUP_SEPARATOR)
        if not all(p in known_attrs for p in parts):
            raise SpecError(
                f"reference_groups must be keyed by sensitive features ({', '.join(sorted(known_attrs))}) "
                f"or intersections joined with ' & '. Got {key!r}."
            )

    grouping_order = {tuple(g): i for i, (_, g) in enumerate(all_groupings)}
    per_source_attr_refs: dict[str, str] = {}
    for (stats_, groupings), ss in zip(sources, rng_seeds):
        todo: list[list[str]] = ([[]] if stats_ is first else []) + groupings
        groups = {tuple(g): Grouping(stats_, g) for g in todo}
        for g in groupings:
            if len(g) == 1:
                per_source_attr_refs[g[0]] = groups[tuple(g)].choose_reference(
                    refs.get(g[0]), spec.min_group_size, None
                )
        for g in groupings:
            if len(g) > 1:
                combo = [per_source_attr_refs.get(a) for a in g]
                groups[tuple(g)].choose_reference(
                    refs.get(GROUP_SEPARATOR.join(g)), spec.min_group_size, combo
                )
        linked = linked_suppression({tuple(g): (groups[tuple(g)].values, groups[tuple(g)].rows) for g in todo},
                                    spec.min_group_size)
        for g in todo:  # secondary suppression across the margins of this source's tables
            groups[tuple(g)].withheld = linked[tuple(g)]
        boot_infos = [METRICS[m] for m in chosen if is_bootstrapped(METRICS[m])]
        boot = None
        if spec.bootstrap > 0 and boot_infos and groupings:
            boot = Bootstrap(
                stats_, [groups[tuple(g)] for g in groupings], boot_infos, spec.bootstrap, np.random.default_rng(ss)
            )
        for name in chosen:
            info = METRICS[name]
            for g in todo:
                key = (metric_order[name], grouping_order[tuple(g)])
                blocks.append((key, metric_block(info, groups[tuple(g)], spec, boot)))

    blocks.sort(key=lambda kb: kb[0])
    return metric_table([b for _, b in blocks], spec, correct=correct)


def binary_metrics_from_counts(
    table: pd.DataFrame,
    *,
    alpha: float = 0.05,
    cells: Mapping[str, str] | None = None,
    source: str = "confusion table",
) -> pd.DataFrame:
    """Every binary metric with its Wilson and exact interval, from confusion counts.

    For published aggregated tables (per-group TP/FP/FN/TN). No minimum group
    size is applied here; :func:`measure_statistics` on
    :meth:`GroupStatistics.from_confusion` does that for an audit.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per group: the four cells plus any identifying columns, which
        are carried to the output. A NaN cell (suppressed at the source) makes
        every metric that needs it NaN with reason ``cell suppressed at source``.
    alpha : float, default 0.05
        One minus the confidence level.
    cells : mapping, optional
        ``{"tp": column, "fp": column, "fn": column, "tn": column}``; default
        the columns ``tp``, ``fp``, ``fn``, ``tn``.
    source : str
        Name used in error messages.

    Returns
    -------
    pandas.DataFrame
        One row per (input row, metric): the identifying columns, ``metric``,
        ``count``, ``n``, ``value``, ``wilson_low``, ``wilson_high``,
        ``exact_low``, ``exact_high`` (Clopper–Pearson) and ``reason``.
        Metrics: ``selection_rate`` ((tp + fp) / all) and the seven binary
        metrics of ``METRICS``.
    """
    if not isinstance(table, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame. Got {type(table).__name__}.")
    cellmap = dict(cells) if cells is not None else {k: k for k in ("tp", "fp", "fn", "tn")}
    if sorted(cellmap) != ["fn", "fp", "tn", "tp"]:
        raise SpecError(f"{source}: cells must map exactly tp, fp, fn, tn to columns. Got {sorted(cellmap)}.")
    missing = [c for c in cellmap.values() if c not in table.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(map(repr, missing))}. Got {list(table.columns)}.")
    s: dict[str, np.ndarray] = {}
    for cell, col in cellmap.items():
        if not pd.api.types.is_numeric_dtype(table[col].dtype) or pd.api.types.is_bool_dtype(table[col].dtype):
            raise DataError(f"{source}: column {col!r} ({cell}) must hold numbers. Got dtype {table[col].dtype}.")
        arr = table[col].to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(arr) & ~((arr >= 0) & np.isfinite(arr))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{source}: column {col!r} ({cell}) must hold counts >= 0. Got {float(arr[i])!r} in row {i + 1}.")
        s[cell] = arr
    s["ok"] = s["tp"] + s["fp"] + s["fn"] + s["tn"]
    s["ypred"] = s["tp"] + s["fp"]
    ident = [c for c in table.columns if c not in cellmap.values()]
    out = []
    for name in BINARY_METRICS:
        est = METRICS[name].function(s)
        k, nn = np.asarray(est.count, dtype=float), np.asarray(est.n, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(nn > 0, k / nn, np.nan)
        wl, wh = wilson_interval(k, nn, alpha)
        el, eh = clopper_pearson_interval(k, nn, alpha)
        reason = np.where(
            np.isnan(k) | np.isnan(nn), SOURCE_SUPPRESSED,
            np.where(nn == 0, f"undefined: the denominator ({METRICS[name].denominator}) is 0", ""),
        )
        part = table[ident].reset_index(drop=True).copy()
        part["metric"] = name
        part["count"], part["n"], part["value"] = k, nn, value
        part["wilson_low"], part["wilson_high"], part["exact_low"], part["exact_high"] = wl, wh, el, eh
        part["reason"] = pd.Series(reason, dtype="str")
        out.append(part)
    return pd.concat(out, ignore_index=True)


# --------------------------------------------------------------------------
# options


def _empty_families(group_statistics: GroupStatistics) -> frozenset[str]:
    """Families whose columns exist but hold nothing usable in the whole run (e.g. an all-empty score)."""
    totals = masked_matmul(
        np.nansum(group_statistics.counts, axis=0, keepdims=True), channel_matrix(group_statistics.codes)
    )[0]
    total = dict(zip(CHANNELS, totals))
    empty = set()
    if "truth" in group_statistics.families and total["truth"] == 0:
        empty |= {"truth", "entitlement", "score"}
    if "truth_amount" in group_statistics.families and total["priced"] == 0:
        empty.add("truth_amount")
    if "amount" in group_statistics.families and total["fav"] > 0 and total["paid"] == 0:
        # amounts are not available (e.g. a classifier that returns no amounts): never 0 granted, which
        # would show every owed case as underpaid (100 %)
        empty |= {"amount", "truth_amount"}
    hist = group_statistics.score_hist
    if "score" in group_statistics.families and (hist is None or hist.sum() == 0):
        empty.add("score")
    return frozenset(empty)


def _choose_metrics(metrics: Sequence[str] | None, families: frozenset[str], empty: frozenset[str]) -> list[str]:
    """The metrics to compute: those asked for, or every metric whose inputs the data holds.

    Without ``metrics``, metrics are left out when their columns are missing,
    or present but without a single usable value in the run (a truth column
    that is all empty, a score column that is all NaN); asked for explicitly,
    such a metric is computed and shows NaN with a reason.
    """
    if metrics is None:
        return [m for m in GROUP_METRICS if set(METRICS[m].needs) <= families - empty]
    if isinstance(metrics, str) or not isinstance(metrics, Iterable):
        raise SpecError(f"metrics must be a list of metric names. Got {metrics!r}.")
    chosen = list(dict.fromkeys(metrics))
    for m in chosen:
        if m in METRICS and m not in GROUP_METRICS:
            raise SpecError(
                f"metrics: {m!r} is a metric of {' and '.join(METRICS[m].analyses)}, not of measure. "
                f"Expected one of: {', '.join(GROUP_METRICS)}."
            )
        if m not in METRICS:
            raise SpecError(f"metrics: unknown metric {m!r}. Known metrics: {', '.join(GROUP_METRICS)}.")
        lacking = [f for f in METRICS[m].needs if f not in families]
        if lacking:
            raise DataError(
                f"metric {m!r} needs {FAMILIES[lacking[0]]}, which the data does not provide."
            )
    order = list(GROUP_METRICS)
    return sorted(chosen, key=order.index)


def _sources(
    group_statistics: GroupStatistics | Mapping[str, GroupStatistics],
    sensitive_features: Sequence[str] | None,
    intersections: Sequence[Sequence[str]],
) -> list[tuple[GroupStatistics, list[list[str]]]]:
    inters = [list(i) for i in intersections]
    if isinstance(group_statistics, GroupStatistics):
        feats = list(group_statistics.sensitive_features if sensitive_features is None else sensitive_features)
        for f in feats:
            if f not in group_statistics.sensitive_features:
                raise SpecError(
                    f"sensitive_features: {f!r} is not a sensitive feature of the statistics "
                    f"({', '.join(group_statistics.sensitive_features)})."
                )
        if len(set(feats)) != len(feats):
            raise SpecError(f"sensitive_features must be unique. Got {feats}.")
        seen = set()
        groupings = [[f] for f in feats]
        for i, inter in enumerate(inters):
            if len(inter) < 2 or any(a not in feats for a in inter) or len(set(inter)) != len(inter):
                raise SpecError(
                    f"intersections[{i}] must name two or more different sensitive features "
                    f"({', '.join(feats)}). Got {inter}."
                )
            if tuple(inter) not in seen:
                seen.add(tuple(inter))
                groupings.append(inter)
        return [(group_statistics, groupings)]
    if isinstance(group_statistics, Mapping) and group_statistics:
        if inters:
            raise SpecError("intersections need joint statistics; marginal tables per attribute have none.")
        out = []
        for attr, st in group_statistics.items():
            if not isinstance(st, GroupStatistics) or list(st.sensitive_features) != [attr]:
                raise SpecError(
                    f"marginal statistics must map each attribute to GroupStatistics of that attribute alone. "
                    f"Got {attr!r} -> {st!r}."
                )
            if sensitive_features is None or attr in sensitive_features:
                out.append((st, [[attr]]))
        if not out:
            raise SpecError(f"sensitive_features {list(sensitive_features or [])} match no attribute of the tables.")
        return out
    raise SpecError(
        f"expected GroupStatistics or a non-empty mapping of attribute to GroupStatistics. Got {group_statistics!r}."
    )
