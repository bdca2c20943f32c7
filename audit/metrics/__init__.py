"""Disparity metrics with sound statistics, computed from group counts.

Who is refused, who is routed to a caseworker, who is underpaid, who is
picked for investigation: an audit of an automated decision system on social
assistance compares groups of applicants (by sex, region of birth, age, and
their intersections) on such rates and amounts. A number without its
uncertainty misleads, many comparisons produce chance findings, and an
undefined rate reported as 0 hides a problem; this package gives every
group's value with an interval, every comparison with the reference group
with an interval, a test, a corrected p-value and the minimum detectable
difference, suppresses groups too small to report, and reports NaN with a
reason where a rate is undefined.

Every number of :func:`measure` comes from :class:`GroupStatistics`: counts
of disjoint cells and exact sums per combination of sensitive values,
computed in one vectorised pass over the cases (or from chunks, Dask
partitions or published aggregated tables, which add up to the same
statistics). Rates, intervals, bootstrap draws and tests are arithmetic on
those counts, which is why a million cases with 2,000 bootstrap draws take
about a second.

Analyses (each returns the tidy table of :data:`COLUMNS`):

* :func:`measure` (and :func:`measure_statistics` for statistics built
  elsewhere): the group metrics of the measurement frame;
* :func:`measure_selection` and :func:`population_confusion`: selection
  audits (cases picked by a model or at random), :data:`SELECTION_METRICS`;
* :func:`compare_decisions`: two decision-makers on the same cases,
  :data:`COMPARE_METRICS`;
* the counterfactual flips of :func:`audit.counterfactual.run_counterfactual`
  build their table from the same parts.

One table path: every group-against-reference comparison is built by
:func:`compare_groups` from the analysis' values and its :class:`Evidence`
(:func:`proportion_evidence`, :func:`mean_evidence`, :func:`se_evidence`,
:func:`bootstrap_evidence`), and :func:`metric_table` assembles the blocks.
Each analysis takes ``correct=True`` (standalone use: the table's p-values
corrected together, its minimum detectable differences sized for them); a
run passes ``correct=False`` and calls :func:`correct_family` once, which
corrects every p-value of the run together and sizes every minimum
detectable difference for that family.

Findings and vocabulary:

* :func:`evaluate_thresholds` and :func:`exit_status`: the spec's thresholds
  as PASS / FAIL / WARN / ERROR findings;
* :data:`METRICS`: the registry of every metric any analysis emits, with its
  definition, report section (:data:`SECTIONS`), kind of estimate
  (:data:`KINDS`) and whether it is a headline figure;
* :func:`binary_metrics_from_counts`: binary metrics with Wilson and exact
  intervals from a published confusion table;
* :func:`funnel`: stage funnels, each group's share entering and leaving
  every step of the journey and its shift against the population, from the
  cases of a run (:func:`funnel_from_cases`, :func:`journey_stages`) or from
  a published stage table (:func:`read_stage_table`);
* :func:`discover`: subgroup discovery, the groups nobody named, searched
  on one half of the cases and tested on the other (:data:`DISCOVERY_OUTCOMES`);
* :func:`wilson_interval`, :func:`clopper_pearson_interval`,
  :func:`newcombe_difference_interval`, :func:`katz_ratio_interval`,
  :func:`multinomial_bootstrap`, :func:`adjust_pvalues`,
  :func:`two_proportion_test`, :func:`welch_test`, :func:`mdd_proportions`,
  :func:`mdd_means`: reusable statistics.
"""

from __future__ import annotations

from audit._columns import DISCOVERED_PREFIX
from audit.metrics._comparison import COMPARE_METRICS, compare_decisions
from audit.metrics._discovery import (
    DISCOVERY_OUTCOMES,
    discover,
    discover_in_run,
    discovery_frame,
    split_halves,
)
from audit.metrics._discoveryresult import DiscoveredGroup, DiscoveryResult
from audit.metrics._findings import FINDING_STATUSES, evaluate_thresholds, exit_status
from audit.metrics._funnel import (
    FUNNEL_COLUMNS,
    FUNNEL_STAGES,
    STAGE_COUNT_COLUMNS,
    TOTAL_GROUP,
    FunnelStage,
    funnel,
    funnel_from_cases,
    journey_stages,
    read_stage_table,
    stage_counts,
)
from audit.metrics._groups import OVERALL
from audit.metrics._intervals import (
    clopper_pearson_interval,
    katz_ratio_interval,
    multinomial_bootstrap,
    newcombe_difference_interval,
    wilson_interval,
)
from audit.metrics._measure import binary_metrics_from_counts, measure, measure_statistics
from audit.metrics._ranking import COMPLEMENT_METRICS, parity_distance, rank_disparities
from audit.metrics._registry import KINDS, METRICS, SECTIONS, MetricInfo
from audit.metrics._selection import SELECTION_METRICS, measure_selection, population_confusion
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
from audit.metrics._table import (
    COLUMNS,
    MDD_SE,
    Evidence,
    MetricBlock,
    bootstrap_evidence,
    compare_groups,
    correct_family,
    family_adjusted,
    mean_evidence,
    metric_table,
    proportion_evidence,
    se_evidence,
)

__all__ = [
    "COLUMNS",
    "COMPARE_METRICS",
    "COMPLEMENT_METRICS",
    "CORRECTIONS",
    "Condition",
    "DISCOVERED_PREFIX",
    "DISCOVERY_OUTCOMES",
    "DiscoveredGroup",
    "DiscoveryResult",
    "Evidence",
    "FINDING_STATUSES",
    "FUNNEL_COLUMNS",
    "FUNNEL_STAGES",
    "FunnelStage",
    "GroupStatistics",
    "KINDS",
    "MDD_SE",
    "METRICS",
    "MISSING_LABEL",
    "MetricBlock",
    "MetricInfo",
    "OVERALL",
    "SECTIONS",
    "SELECTION_METRICS",
    "STAGE_COUNT_COLUMNS",
    "TOTAL_GROUP",
    "adjust_pvalues",
    "binary_metrics_from_counts",
    "bootstrap_evidence",
    "clopper_pearson_interval",
    "compare_decisions",
    "compare_groups",
    "correct_family",
    "discover",
    "discover_in_run",
    "discovery_frame",
    "evaluate_thresholds",
    "exit_status",
    "family_adjusted",
    "funnel",
    "funnel_from_cases",
    "journey_stages",
    "katz_ratio_interval",
    "mdd_means",
    "mdd_proportions",
    "mean_evidence",
    "measure",
    "measure_selection",
    "measure_statistics",
    "metric_table",
    "multinomial_bootstrap",
    "newcombe_difference_interval",
    "parity_distance",
    "population_confusion",
    "proportion_evidence",
    "rank_disparities",
    "read_stage_table",
    "se_evidence",
    "split_halves",
    "stage_counts",
    "two_proportion_test",
    "welch_test",
    "wilson_interval",
]
