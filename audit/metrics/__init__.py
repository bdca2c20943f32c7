"""Disparity metrics with sound statistics, computed from group counts.

Who is refused, who is routed to a caseworker, who is underpaid: an audit of
an automated decision system on social assistance compares groups of
applicants (by sex, region of birth, age, and their intersections) on such
rates and amounts. A number without its uncertainty misleads, many
comparisons produce chance findings, and an undefined rate reported as 0
hides a problem; this package gives every group's value with an interval,
every comparison with the reference group with an interval, a test, a
corrected p-value and the minimum detectable difference, suppresses groups too
small to report, and reports NaN with a reason where a rate is undefined.

Every number comes from :class:`GroupStatistics`: counts of disjoint cells
and exact sums per combination of sensitive values, computed in one
vectorised pass over the cases (or from chunks, Dask partitions or published
aggregated tables, which add up to the same statistics). Rates, intervals,
bootstrap draws and tests are arithmetic on those counts, which is why a
million cases with 2,000 bootstrap draws take about a second.

Main entry points:

* :func:`measure`: the measurement frame in, the tidy metrics table out;
* :func:`evaluate_thresholds` and :func:`exit_status`: the spec's thresholds
  as PASS / FAIL / WARN / ERROR findings;
* :class:`GroupStatistics` and :func:`measure_statistics`: the same from
  statistics built elsewhere (chunks, Dask, aggregated tables);
* :func:`binary_metrics_from_counts`: binary metrics with Wilson and exact
  intervals from a published confusion table;
* :data:`METRICS`: the registry; each metric's definition for the report;
* :func:`discover`: subgroup discovery, the groups nobody named, searched
  on one half of the cases and tested on the other;
* :func:`wilson_interval`, :func:`clopper_pearson_interval`,
  :func:`multinomial_bootstrap`, :func:`adjust_pvalues`: reusable statistics.
"""

from __future__ import annotations

from audit._columns import DISCOVERED_PREFIX
from audit.metrics._discovery import (
    DISCOVERY_OUTCOMES,
    discover,
    discover_in_run,
    discovery_frame,
    split_halves,
)
from audit.metrics._discoveryresult import DiscoveredGroup, DiscoveryResult
from audit.metrics._findings import FINDING_STATUSES, evaluate_thresholds, exit_status
from audit.metrics._intervals import (
    clopper_pearson_interval,
    katz_ratio_interval,
    multinomial_bootstrap,
    newcombe_difference_interval,
    wilson_interval,
)
from audit.metrics._measure import COLUMNS, binary_metrics_from_counts, measure, measure_statistics
from audit.metrics._registry import METRICS, MetricInfo
from audit.metrics._significance import (
    CORRECTIONS,
    adjust_pvalues,
    mdd_means,
    mdd_proportions,
    two_proportion_test,
    welch_test,
)
from audit.metrics._statistics import MISSING_LABEL, GroupStatistics
from audit.metrics._subgroups import Condition

__all__ = [
    "COLUMNS",
    "CORRECTIONS",
    "Condition",
    "DISCOVERED_PREFIX",
    "DISCOVERY_OUTCOMES",
    "DiscoveredGroup",
    "DiscoveryResult",
    "FINDING_STATUSES",
    "GroupStatistics",
    "METRICS",
    "MISSING_LABEL",
    "MetricInfo",
    "adjust_pvalues",
    "binary_metrics_from_counts",
    "clopper_pearson_interval",
    "discover",
    "discover_in_run",
    "discovery_frame",
    "evaluate_thresholds",
    "exit_status",
    "katz_ratio_interval",
    "mdd_means",
    "mdd_proportions",
    "measure",
    "measure_statistics",
    "multinomial_bootstrap",
    "newcombe_difference_interval",
    "split_halves",
    "two_proportion_test",
    "welch_test",
    "wilson_interval",
]
