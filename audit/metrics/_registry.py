"""The metric registry: every metric is a plain function of group statistics.

A disparity audit asks the same few questions of every group: how often is
the application granted, refused, routed to a caseworker or left to the robot;
how often is someone refused although entitled, or paid less than the law
says; and, for a binary view of the engine, how its positive predictions
(default: refusals) line up with the correct outcome. Each metric below is a
plain function of the per-group counts and sums of
:class:`~audit.metrics.GroupStatistics`; its docstring states the exact
numerator and denominator. Names follow fairlearn where fairlearn has the
metric (``selection_rate``, ``true_positive_rate``, ...).

Conventions:

* "ok cases" are cases whose ``status`` is ``ok``; engine errors and
  quarantined cases are only counted by ``n``, ``share`` and ``error_rate``.
* ``refer_rate`` and ``automation_rate`` use ``outcome`` (the engine's
  routing); every other decision metric uses ``final_outcome`` and
  ``final_amount`` (after caseworker review).
* A *denied* case is an ok case whose final outcome is neither favourable nor
  a review label; an *unresolved* case is still in review (final outcome is a
  review label).
* A *usable truth* is a ``truth_outcome`` that is present and is not ``error``
  or a review label; cases without one are left out of truth metrics and
  counted in the ``reason`` column.
* ``y_true`` is "truth outcome in ``truth_positive``", ``y_pred`` is "final
  outcome in ``pred_positive``" (default: both ``deny``).
* A rate whose denominator is 0 is NaN with a reason, never 0.

``METRICS`` maps each name to a :class:`MetricInfo`: the one vocabulary of
metrics. It holds the metrics :func:`audit.metrics.measure` computes from
group statistics (each with its ``function``), and those that selection
audits, engine comparisons and counterfactual twins compute in their own
analyses (``function`` None; ``analyses`` names who emits them). Each entry
carries its report ``section`` (:data:`SECTIONS`), the ``kind`` of its
estimate (:data:`KINDS`), whether it is a ``headline`` figure of its section
and whether it is a ``key_figure`` of the summary, so that the report reads
the registry and keeps no second list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from audit._columns import DISCOVERED_PREFIX

__all__ = [
    "ANALYSES",
    "Auc",
    "BINARY_METRICS",
    "Count",
    "DISCOVERED_RATES",
    "GROUP_METRICS",
    "KINDS",
    "METRICS",
    "Mean",
    "MetricInfo",
    "Proportion",
    "RatioOfSums",
    "SECTIONS",
    "Share",
    "WRONGFUL_DECISION_RATE",
]

Stats = Mapping[str, Any]


# --------------------------------------------------------------------------
# estimator shapes


@dataclass(frozen=True)
class Count:
    """A number of cases (no interval, no comparison)."""

    n: np.ndarray


@dataclass(frozen=True)
class Share:
    """A group's share of all cases: ``count / n`` with ``n`` the run's total."""

    count: np.ndarray
    n: np.ndarray


@dataclass(frozen=True)
class Proportion:
    """A binomial rate ``count / n``."""

    count: np.ndarray
    n: np.ndarray


@dataclass(frozen=True)
class Mean:
    """A mean from exact integer sums: ``total / n / scale``."""

    n: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray
    scale: float


@dataclass(frozen=True)
class RatioOfSums:
    """A ratio of sums ``sum(x) / sum(y)`` over the same ``n`` cases."""

    n: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    sxx: np.ndarray
    syy: np.ndarray
    sxy: np.ndarray


@dataclass(frozen=True)
class Auc:
    """Score histograms of negatives and positives, ``(groups, bins)``."""

    negatives: np.ndarray
    positives: np.ndarray


Estimate = Count | Share | Proportion | Mean | RatioOfSums | Auc


SECTIONS: tuple[str, ...] = (
    "affected",
    "routing",
    "amounts",
    "baseline",
    "selection",
    "comparison",
    "flips",
    "discovered",
    "sample",
)
"""The report sections that show metrics, in report order.

``affected``: who is granted and refused; ``routing``: who is routed to a
caseworker, decided by the robot, or not decided at all; ``amounts``: who is
paid too little; ``baseline``: the engine against the law's baseline or a
recorded truth (binary classification, scores); ``selection``: selection
audits (:func:`audit.metrics.measure_selection`); ``comparison``: agreement
of two decision-makers on the same cases
(:func:`audit.metrics.compare_decisions`); ``flips``: decisions that change
within a pair of decisions of the same application, either between two
engines (:func:`audit.metrics.compare_decisions`) or between a case and its
counterfactual twin (:func:`audit.counterfactual.run_counterfactual`), which
report the same metric names; ``discovered``: groups found by subgroup
discovery against the rest of the cases (:func:`audit.metrics.discover`,
``discovered_<rate>``; the report gives them a section of their own);
``sample``: group sizes (shown with the method).
"""

KINDS: tuple[str, ...] = (
    "count",
    "share",
    "rate",
    "mean",
    "ratio_of_sums",
    "auc",
    "share_ratio",
    "estimated_rate",
    "share_difference",
)
"""The shapes of a metric's estimate, which decide its interval and test.

``count``: a number of cases (no interval); ``share``: a group's share of a
total (Wilson interval, not compared between groups); ``rate``: a binomial
proportion ``count / n`` (Wilson interval, two-proportion test); ``mean``: a
mean (t interval, Welch's test); ``ratio_of_sums``: ``sum(x) / sum(y)``
(delta method); ``auc``: an area under the ROC curve (Hanley-McNeil);
``share_ratio``: a ratio of two shares from independent samples (Katz's
interval, conditional test); ``estimated_rate``: a rate of a population
reconstructed from a selection audit (Katz's interval or bootstrap);
``share_difference``: a difference of two shares from independent samples
(Newcombe's interval), e.g. a group's share of selections minus its share of
errors.
"""

ANALYSES: tuple[str, ...] = ("measure", "measure_selection", "compare_decisions", "run_counterfactual", "discover")
"""The analyses that emit metric rows."""

Kind = Literal["count", "share", "rate", "mean", "ratio_of_sums", "auc", "share_ratio", "estimated_rate",
               "share_difference"]


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is, for computing it and for describing it in a report.

    Attributes
    ----------
    name : str
        The metric's name (fairlearn's where fairlearn has the metric).
    section : str
        The report section that shows the metric (one of :data:`SECTIONS`).
    kind : str
        The shape of its estimate (one of :data:`KINDS`).
    headline : bool
        A headline figure of its section: charted for every group, and its
        minimum detectable differences listed in the method section.
    key_figure : bool
        One of the run's key figures in the report's summary.
    analyses : tuple of str
        The analyses that emit it (see :data:`ANALYSES`).
    needs : tuple of str
        Families of statistics the metric needs (see ``FAMILIES``); a
        family missing from the data means the metric is not computed.
        Empty for metrics of the other analyses.
    needs_truth : bool
        Whether the metric needs ``truth_outcome`` or ``truth_amount``.
    description : str
        One sentence for readers of the report.
    numerator, denominator : str
        Exact definitions.
    unit : str
        ``cases``, ``share``, ``pp`` (percentage points: a difference of shares), ``SEK``, ``ratio`` or ``AUC``.
    favourable : bool or None
        True when a higher value is better for the applicant; the four-fifths
        flag is only set for rates with ``favourable=True``.
    compare : bool
        Whether groups are compared with the reference group (difference,
        ratio, test).
    ratio_meaningful : bool
        False for signed quantities, whose ratio is not reported.
    excluded : callable or None
        Cases of the group that the metric leaves out, reported in ``reason``.
    excluded_text : str
        What those cases are.
    function : callable or None
        The metric as a function of group statistics (statistics ->
        estimate), for :func:`audit.metrics.measure`; None for the metrics
        of selection audits, comparisons and counterfactuals, which their
        own analyses compute.
    """

    name: str
    section: str
    kind: Kind
    headline: bool
    description: str
    numerator: str
    denominator: str
    unit: str
    favourable: bool | None
    compare: bool
    needs: tuple[str, ...] = ()
    function: Callable[[Stats], Estimate] | None = field(default=None, repr=False)
    analyses: tuple[str, ...] = ("measure",)
    key_figure: bool = False
    needs_truth: bool = False
    ratio_meaningful: bool = True
    excluded: Callable[[Stats], np.ndarray] | None = field(default=None, repr=False)
    excluded_text: str = ""

    def __post_init__(self) -> None:
        if self.section not in SECTIONS:
            raise ValueError(f"MetricInfo {self.name!r}: section must be one of {SECTIONS}. Got {self.section!r}.")
        if self.kind not in KINDS:
            raise ValueError(f"MetricInfo {self.name!r}: kind must be one of {KINDS}. Got {self.kind!r}.")
        unknown = [a for a in self.analyses if a not in ANALYSES]
        if unknown:
            raise ValueError(f"MetricInfo {self.name!r}: analyses must be among {ANALYSES}. Got {unknown}.")


# --------------------------------------------------------------------------
# assistance: counts and rates over ok cases


def n(s: Stats) -> Count:
    """Number of cases in the group, whatever their status.

    numerator: none; denominator (``n``): every case of the group.
    """
    return Count(s["rows"])


def share(s: Stats) -> Share:
    """The group's share of all cases of the run.

    numerator: cases of the group; denominator: every case of the run.
    """
    return Share(s["rows"], s["total_rows"])


def error_rate(s: Stats) -> Proportion:
    """Share of cases the engine could not decide.

    numerator: cases with status ``error``; denominator: every case of the
    group (ok, error and quarantined).
    """
    return Proportion(s["error"], s["rows"])


def grant_rate(s: Stats) -> Proportion:
    """Share of ok cases with a favourable final outcome.

    numerator: ok cases whose ``final_outcome`` is favourable (default
    ``grant``, ``partial``); denominator: ok cases.
    """
    return Proportion(s["fav"], s["ok"])


def deny_rate(s: Stats) -> Proportion:
    """Share of ok cases that were denied.

    numerator: ok cases whose ``final_outcome`` is neither favourable nor a
    review label; denominator: ok cases.
    """
    return Proportion(s["deny"], s["ok"])


def refer_rate(s: Stats) -> Proportion:
    """Share of ok cases the engine routed to a caseworker.

    numerator: ok cases whose ``outcome`` (the engine's) is a review label
    (default ``refer``); denominator: ok cases.
    """
    return Proportion(s["refer"], s["ok"])


def automation_rate(s: Stats) -> Proportion:
    """Share of ok cases the engine decided without a caseworker.

    numerator: ok cases whose ``outcome`` is not a review label;
    denominator: ok cases. Equals ``1 - refer_rate``.
    """
    return Proportion(s["ok"] - s["refer"], s["ok"])


def mean_amount(s: Stats) -> Mean:
    """Mean amount granted (SEK/month) to cases with a favourable final outcome.

    numerator: sum of ``final_amount`` over ok cases with a favourable final
    outcome and an amount; denominator: those cases. Favourable cases without
    an amount are left out and counted in ``reason``.
    """
    return Mean(s["paid"], s["sum_paid"], s["sum_paid_sq"], 100.0)


# --------------------------------------------------------------------------
# assistance against the truth


def wrongful_denial_rate(s: Stats) -> Proportion:
    """Share of entitled cases that were denied ("denied though entitled").

    numerator: ok cases with a usable truth whose ``truth_outcome`` is
    favourable and whose ``final_outcome`` is a denial; denominator: ok cases
    whose ``truth_outcome`` is favourable.
    """
    return Proportion(s["wrong_deny"], s["entitled"])


def wrongful_grant_rate(s: Stats) -> Proportion:
    """Share of cases not entitled that were granted.

    numerator: ok cases with a usable truth that is not favourable and a
    favourable ``final_outcome``; denominator: ok cases with a usable truth
    that is not favourable.
    """
    return Proportion(s["wrong_grant"], s["not_entitled"])


def underpayment_rate(s: Stats) -> Proportion:
    """Share of cases owed money that were paid too little.

    numerator: owed cases granted more than ``amount_tolerance`` SEK less than
    ``truth_amount`` (``final_amount`` missing counts as 0 granted);
    denominator: *owed* cases: ok, decided (not still in review) and
    ``truth_amount > 0``.
    """
    return Proportion(s["underpaid"], s["owed"])


def mean_shortfall(s: Stats) -> Mean:
    """Mean shortfall in SEK/month of cases owed money.

    numerator: sum over owed cases of ``max(truth_amount - final_amount, 0)``
    (missing ``final_amount`` counts as 0); denominator: owed cases (see
    ``underpayment_rate``).
    """
    return Mean(s["owed"], s["sum_shortfall"], s["sum_shortfall_sq"], 100.0)


def amount_ratio(s: Stats) -> RatioOfSums:
    """Money granted per krona owed: ``sum(granted) / sum(correct)``.

    numerator: sum of ``final_amount`` (missing = 0) over owed cases;
    denominator: sum of ``truth_amount`` over the same cases. 1 means paid in
    full on average; below 1, underpaid.
    """
    return RatioOfSums(s["owed"], s["sum_granted"], s["sum_correct"], s["sum_granted_sq"],
                       s["sum_correct_sq"], s["sum_granted_correct"])


# --------------------------------------------------------------------------
# binary classification (fairlearn's names)


def selection_rate(s: Stats) -> Proportion:
    """Share of ok cases with a positive prediction (fairlearn's ``selection_rate``).

    numerator: ok cases whose ``final_outcome`` is in ``pred_positive``;
    denominator: ok cases (no truth needed). Equals fairlearn's value when every
    ok case has a usable truth.
    """
    return Proportion(s["ypred"], s["ok"])


def true_positive_rate(s: Stats) -> Proportion:
    """Recall: ``tp / (tp + fn)`` over ok cases with a usable truth."""
    return Proportion(s["tp"], s["tp"] + s["fn"])


def false_positive_rate(s: Stats) -> Proportion:
    """``fp / (fp + tn)`` over ok cases with a usable truth."""
    return Proportion(s["fp"], s["fp"] + s["tn"])


def false_negative_rate(s: Stats) -> Proportion:
    """``fn / (tp + fn)`` over ok cases with a usable truth."""
    return Proportion(s["fn"], s["tp"] + s["fn"])


def true_negative_rate(s: Stats) -> Proportion:
    """Specificity: ``tn / (fp + tn)`` over ok cases with a usable truth."""
    return Proportion(s["tn"], s["fp"] + s["tn"])


def precision(s: Stats) -> Proportion:
    """Positive predictive value: ``tp / (tp + fp)`` over ok cases with a usable truth."""
    return Proportion(s["tp"], s["tp"] + s["fp"])


def negative_predictive_value(s: Stats) -> Proportion:
    """``tn / (tn + fn)`` over ok cases with a usable truth."""
    return Proportion(s["tn"], s["tn"] + s["fn"])


def accuracy(s: Stats) -> Proportion:
    """``(tp + tn) / (tp + fp + fn + tn)`` over ok cases with a usable truth."""
    return Proportion(s["tp"] + s["tn"], s["tp"] + s["fp"] + s["fn"] + s["tn"])


# --------------------------------------------------------------------------
# scores


def roc_auc(s: Stats) -> Auc:
    """Area under the ROC curve of ``score`` for ``y_true`` (sklearn's ``roc_auc_score``).

    Over ok cases with a usable truth and a score. Computed from the score
    histogram: ``P(score_pos > score_neg) + P(same bin) / 2``; exact when
    scores take at most one value per bin (bins of width ``1 / score_bins``).
    Needs at least one positive and one negative case.
    """
    return Auc(s["hist"][..., 0, :], s["hist"][..., 1, :])


def calibration_gap(s: Stats) -> Mean:
    """Calibration-in-the-large: mean ``score`` minus the observed positive rate.

    numerator: sum over scored cases of ``score - y_true``; denominator: ok
    cases with a usable truth and a score. Positive: the score overstates the
    risk of a positive outcome in this group; negative: understates it.
    """
    unit = 1_000_000
    total = s["sum_score"] - unit * s["scored_pos"]
    total_sq = s["sum_score_sq"] - 2 * unit * s["sum_score_pos"] + unit * unit * s["scored_pos"]
    return Mean(s["scored"], total, total_sq, float(unit))


def _unusable_truth(s: Stats) -> np.ndarray:
    return s["ok"] - s["truth"]


def _unpaid_favourable(s: Stats) -> np.ndarray:
    return s["fav_no_amount"]


def _unpriced(s: Stats) -> np.ndarray:
    return s["unpriced"]


def _unscored(s: Stats) -> np.ndarray:
    return s["truth"] - s["scored"]


_TRUTH_TEXT = "ok cases without a usable truth_outcome excluded"
_AMOUNT_TEXT = "decided ok cases without a truth_amount excluded"

_BINARY_DEFS = {
    "true_positive_rate": ("tp", "tp + fn (truth positive)", "share of true positives that were predicted positive"),
    "false_positive_rate": ("fp", "fp + tn (truth negative)", "share of true negatives that were predicted positive"),
    "false_negative_rate": ("fn", "tp + fn (truth positive)", "share of true positives that were predicted negative"),
    "true_negative_rate": ("tn", "fp + tn (truth negative)", "share of true negatives that were predicted negative"),
    "precision": ("tp", "tp + fp (predicted positive)", "share of positive predictions that were right"),
    "negative_predictive_value": ("tn", "tn + fn (predicted negative)", "share of negative predictions that were right"),
    "accuracy": ("tp + tn", "tp + fp + fn + tn (usable truth)", "share of predictions that were right"),
}


_HEADLINE = frozenset({
    "grant_rate", "deny_rate", "refer_rate", "automation_rate", "underpayment_rate", "mean_shortfall",
    "wrongful_denial_rate", "wrongful_grant_rate", "selection_rate", "false_positive_rate", "false_negative_rate",
})
_KEY_FIGURES = frozenset({"grant_rate", "deny_rate", "refer_rate", "automation_rate", "underpayment_rate",
                          "error_rate"})
_SECTION_OF = {
    "n": "sample", "share": "sample",
    "grant_rate": "affected", "deny_rate": "affected",
    "refer_rate": "routing", "automation_rate": "routing", "error_rate": "routing",
    "underpayment_rate": "amounts", "mean_shortfall": "amounts", "mean_amount": "amounts", "amount_ratio": "amounts",
}


def _group_metric(name: str, kind: Kind, needs: tuple[str, ...], description: str, numerator: str,
                  denominator: str, unit: str, favourable: bool | None, compare: bool,
                  function: Callable[[Stats], Estimate], **kw: Any) -> MetricInfo:
    """A metric of :func:`audit.metrics.measure` (a function of group statistics)."""
    return MetricInfo(name=name, section=_SECTION_OF.get(name, "baseline"), kind=kind,
                      headline=name in _HEADLINE, key_figure=name in _KEY_FIGURES, description=description,
                      numerator=numerator, denominator=denominator, unit=unit, favourable=favourable,
                      compare=compare, needs=needs, function=function, **kw)


def _build() -> dict[str, MetricInfo]:
    ok_rate = "ok cases of the group"
    m = _group_metric
    items = [
        m("n", "count", ("rows",), "Number of cases in the group.", "", "every case of the group",
          "cases", None, False, n),
        m("share", "share", ("rows",), "The group's share of all cases.", "cases of the group",
          "every case of the run", "share", None, False, share),
        m("error_rate", "rate", ("status",), "Share of cases the engine failed to decide.",
          "cases with status error", "every case of the group", "share", False, True, error_rate),
        m("grant_rate", "rate", ("decision",), "Share of cases granted (fully or partly).",
          "ok cases with a favourable final outcome", ok_rate, "share", True, True, grant_rate),
        m("deny_rate", "rate", ("decision",), "Share of cases refused.",
          "ok cases whose final outcome is neither favourable nor in review", ok_rate, "share",
          False, True, deny_rate),
        m("refer_rate", "rate", ("routing",), "Share of cases the engine routed to a caseworker.",
          "ok cases whose engine outcome is a review label", ok_rate, "share", None, True, refer_rate),
        m("automation_rate", "rate", ("routing",), "Share of cases the engine decided on its own.",
          "ok cases whose engine outcome is not a review label", ok_rate, "share", True, True,
          automation_rate),
        m("mean_amount", "mean", ("decision", "amount"), "Mean amount granted, SEK/month.",
          "sum of final_amount over favourable ok cases with an amount", "those cases", "SEK",
          True, True, mean_amount, excluded=_unpaid_favourable,
          excluded_text="favourable cases without a final_amount excluded"),
        m("wrongful_denial_rate", "rate", ("decision", "entitlement"),
          "Share of entitled cases that were refused.",
          "entitled ok cases (favourable truth) that were denied", "entitled ok cases", "share",
          False, True, wrongful_denial_rate, needs_truth=True, excluded=_unusable_truth,
          excluded_text=_TRUTH_TEXT),
        m("wrongful_grant_rate", "rate", ("decision", "entitlement"),
          "Share of cases not entitled that were granted.",
          "ok cases with a non-favourable truth that were granted",
          "ok cases with a usable, non-favourable truth", "share", None, True, wrongful_grant_rate,
          needs_truth=True, excluded=_unusable_truth, excluded_text=_TRUTH_TEXT),
        m("underpayment_rate", "rate", ("decision", "truth_amount"),
          "Share of cases owed money that were paid too little.",
          "owed cases granted more than amount_tolerance SEK below truth_amount",
          "ok, decided cases with truth_amount > 0", "share", False, True, underpayment_rate,
          needs_truth=True, excluded=_unpriced, excluded_text=_AMOUNT_TEXT),
        m("mean_shortfall", "mean", ("decision", "truth_amount"),
          "Mean shortfall of cases owed money, SEK/month.",
          "sum of max(truth_amount - final_amount, 0) over owed cases",
          "ok, decided cases with truth_amount > 0", "SEK", False, True, mean_shortfall,
          needs_truth=True, excluded=_unpriced, excluded_text=_AMOUNT_TEXT),
        m("amount_ratio", "ratio_of_sums", ("decision", "truth_amount"),
          "Money granted per krona owed.", "sum of final_amount over owed cases",
          "sum of truth_amount over the same cases", "ratio", True, True, amount_ratio,
          needs_truth=True, excluded=_unpriced, excluded_text=_AMOUNT_TEXT),
        m("selection_rate", "rate", ("prediction",),
          "Share of cases predicted positive (fairlearn's selection_rate).",
          "ok cases whose final outcome is in pred_positive", ok_rate, "share", None, True,
          selection_rate),
    ]
    for name, (num, den, desc) in _BINARY_DEFS.items():
        items.append(
            m(name, "rate", ("truth",), desc[0].upper() + desc[1:] + ".", num, den, "share", None,
              True, globals()[name], needs_truth=True, excluded=_unusable_truth,
              excluded_text=_TRUTH_TEXT)
        )
    items += [
        m("roc_auc", "auc", ("score",), "Area under the ROC curve of the score.",
          "P(score of a truth-positive case > score of a truth-negative case)",
          "pairs of truth-positive and truth-negative scored cases", "AUC", None, True, roc_auc,
          needs_truth=True, excluded=_unscored, excluded_text="cases with a usable truth but no score excluded"),
        m("calibration_gap", "mean", ("score",),
          "Mean score minus the observed positive rate (calibration-in-the-large).",
          "sum of score - y_true over scored cases", "ok cases with a usable truth and a score",
          "share", None, True, calibration_gap, needs_truth=True, ratio_meaningful=False,
          excluded=_unscored, excluded_text="cases with a usable truth but no score excluded"),
    ]
    items += _selection_metrics() + _comparison_metrics()
    by_name = {info.name: info for info in items}
    items += _discovered_metrics(by_name)
    return {info.name: info for info in items}


def _selection_metrics() -> list[MetricInfo]:
    """Metrics of a selection audit (:func:`audit.metrics.measure_selection`), in report order."""

    def sel(name: str, kind: Kind, headline: bool, description: str, numerator: str, denominator: str,
            *, compare: bool = True, favourable: bool | None = None, unit: str = "share",
            needs_truth: bool = False) -> MetricInfo:
        return MetricInfo(name=name, section="selection", kind=kind, headline=headline, description=description,
                          numerator=numerator, denominator=denominator, unit=unit, favourable=favourable,
                          compare=compare, analyses=("measure_selection",), needs_truth=needs_truth)

    return [
        sel("selected_share", "share", False, "The group's share of the cases the model selected.",
            "selected cases of the group", "every selected case", compare=False),
        sel("random_share", "share", False, "The group's share of the random control sample.",
            "random cases of the group", "every random case", compare=False),
        sel("selection_ratio", "share_ratio", True,
            "Share among selected cases divided by share in the random sample.",
            "the group's share of the selected cases", "the group's share of the random sample", unit="ratio"),
        sel("base_rate", "rate", True, "Share of randomly sampled cases in which an error was found.",
            "random cases with an error found", "random cases with a known result", needs_truth=True),
        sel("hit_rate", "rate", True, "Share of selected cases in which an error was found.",
            "selected cases with an error found", "selected cases with a known result", needs_truth=True),
        sel("error_share", "share", False, "The group's share of the errors found in the random sample.",
            "errors found at random in the group", "every error found at random", compare=False,
            needs_truth=True),
        sel("equal_burden", "share_ratio", True,
            "The group's share of selections divided by its share of errors found at random.",
            "the group's share of the selected cases", "the group's share of the errors found at random",
            unit="ratio", needs_truth=True),
        MetricInfo(name="burden_gap", section="selection", kind="share_difference", headline=True,
                   description="The group's share of selections minus its share of errors found at random, in "
                               "percentage points (Lighthouse Reports / Svenska Dagbladet, 2024).",
                   numerator="the group's share of the selected cases minus its share of the errors found at "
                             "random", denominator="(shares of two totals: every selection, every error found)",
                   unit="pp", favourable=None, compare=False, analyses=("measure_selection",), needs_truth=True,
                   ratio_meaningful=False),
        sel("population_selection_rate", "estimated_rate", True,
            "Share of the group's population that the model selected.",
            "selected cases of the group", "estimated group size (population_size x random share)"),
        sel("population_false_positive_rate", "estimated_rate", True,
            "Share of the group's cases without an error that the model selected (reconstructed).",
            "estimated false positives", "estimated false positives + true negatives", needs_truth=True),
        sel("population_false_negative_rate", "estimated_rate", True,
            "Share of the group's cases with an error that the model did not select (reconstructed).",
            "estimated false negatives", "estimated false negatives + true positives", needs_truth=True),
    ]


def _comparison_metrics() -> list[MetricInfo]:
    """Metrics of two decisions of the same application (engine comparison, counterfactual twins)."""
    both = ("compare_decisions", "run_counterfactual")
    return [
        MetricInfo(name="agreement", section="comparison", kind="rate", headline=True,
                   description="Share of applications on which the two decision-makers reach the same outcome.",
                   numerator="compared cases with the same outcome label", denominator="compared cases",
                   unit="share", favourable=None, compare=True, analyses=("compare_decisions",)),
        MetricInfo(name="flip_rate", section="flips", kind="rate", headline=True,
                   description="Share of applications whose decision changes within the pair.",
                   numerator="compared cases whose favourability changes (comparison); share of a case's "
                             "twins whose outcome changed (counterfactual)",
                   denominator="compared cases (comparison); cases with a twin decided both times "
                               "(counterfactual)",
                   unit="share", favourable=None, compare=True, analyses=both),
        MetricInfo(name="flip_to_unfavourable", section="flips", kind="rate", headline=True,
                   description="Share of pairs whose decision went from favourable to not favourable.",
                   numerator="cases favourable under the current decision and not under the new one "
                             "(comparison); share of a case's twins that went from favourable to not "
                             "favourable (counterfactual)",
                   denominator="cases favourable under the current decision (comparison); cases with a twin "
                               "decided both times (counterfactual)",
                   unit="share", favourable=False, compare=True, analyses=both),
        MetricInfo(name="flip_to_favourable", section="flips", kind="rate", headline=True,
                   description="Share of pairs whose decision went from not favourable to favourable.",
                   numerator="cases not favourable under the current decision and favourable under the new "
                             "one (comparison); share of a case's twins that went from not favourable to "
                             "favourable (counterfactual)",
                   denominator="cases not favourable under the current decision (comparison); cases with a "
                               "twin decided both times (counterfactual)",
                   unit="share", favourable=None, compare=True, analyses=both),
        MetricInfo(name="mean_amount_change", section="flips", kind="mean", headline=True,
                   description="Mean change in the amount granted within the pair, SEK/month.",
                   numerator="sum of amount - compare_amount (comparison) or twin amount - original amount "
                             "(counterfactual)",
                   denominator="pairs with both amounts known", unit="SEK", favourable=None, compare=True,
                   ratio_meaningful=False, analyses=both),
    ]


WRONGFUL_DECISION_RATE = "wrongful_decision_rate"
"""Share of ok, decided cases with a usable truth whose final decision disagrees with it (subgroup discovery's
``wrongful`` outcome; a rate of cases, not of group statistics)."""

DISCOVERED_RATES: tuple[str, ...] = ("deny_rate", "refer_rate", WRONGFUL_DECISION_RATE, "underpayment_rate")
"""The rates of subgroup discovery's named outcomes (refusal, routing, wrongful decision, shortfall): each has a
registered ``discovered_<rate>`` metric. Discovery on another rate of cases emits ``discovered_<rate>`` rows too;
the report places any ``discovered_`` row in the discovered section."""


def _discovered_metrics(known: Mapping[str, MetricInfo]) -> list[MetricInfo]:
    """Metrics of subgroup discovery: a group found on the search half against the rest, on the test half."""
    out = []
    for rate in DISCOVERED_RATES:
        base = known.get(rate)
        description = base.description if base is not None else (
            "Share of decided cases with a usable truth whose decision (favourable or not) differs from the truth's."
        )
        numerator = base.numerator if base is not None else "ok, decided cases whose decision differs from the truth"
        denominator = base.denominator if base is not None else "ok, decided cases with a usable truth"
        out.append(MetricInfo(
            name=DISCOVERED_PREFIX + rate, section="discovered", kind="rate", headline=False,
            description=f"{description[:-1]} in a group found by subgroup discovery, against every other case "
                        "(test half).",
            numerator=f"{numerator}, in the group (test half)", denominator=f"{denominator}, in the group (test half)",
            unit="share", favourable=base.favourable if base is not None else False, compare=True,
            analyses=("discover",), needs_truth=base.needs_truth if base is not None else True,
        ))
    return out


METRICS: dict[str, MetricInfo] = _build()
"""Every metric Insyn computes, by name, in report order."""

BINARY_METRICS: tuple[str, ...] = ("selection_rate", *_BINARY_DEFS)
"""The binary-classification metrics (fairlearn's), computable from a confusion table."""

GROUP_METRICS: tuple[str, ...] = tuple(name for name, info in METRICS.items() if info.function is not None)
"""The metrics :func:`audit.metrics.measure` computes from group statistics, in report order."""
