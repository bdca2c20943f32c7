"""Subgroup discovery: find the groups nobody named, with honest statistics.

An auditor names the groups to compare (sex, region of birth, age band), but
an automated decision system discriminates through proxies and combinations
that nobody thought of: a paper application, an interpreter, a new income
type, a young single father who has just moved. Swedish registries hold the
country of birth but no ethnicity, and many decision logs hold neither.
*Subgroup discovery* searches the cases for the groups whose outcome (refusal,
routing to a caseworker, a wrongful decision, being paid too little) deviates
most from everyone else's, then tells the auditor who is in them: "the
applicants with an interpreter who applied on paper are refused 2.1 times as
often as the rest; 86 % of them were born outside the EU".

Method
------
A *subgroup* is a conjunction of up to ``max_conditions`` conditions on the
case frame's columns: ``channel = paper``, ``interpreter = True``,
``applicant_age ≤ 29``, ``birth_region ≠ sweden`` (categorical columns give
one condition per value; numeric columns are cut at their quantiles into
``bins`` bins; see :mod:`audit.metrics._subgroups`). A beam search finds the
conjunctions: every single condition is scored; the ``beam`` best are
refined by one more condition on another column, and so on. The score is
the two-proportion z statistic of the subgroup against the rest, which
weighs the size of a deviation by the evidence for it (a large group with a
small deviation and a small group with a large one can both win). A
subgroup, or its rest, with fewer than ``min_size`` cases (over all cases;
about half of them on the search half) is never considered.

The ``top`` groups are found by *sequential covering* (as in CN2-SD): the
strongest group is kept, its cases are left out, and the search runs again
on the remaining cases, ``top`` times. A group found later must therefore
deviate on its own, not because it holds a group found before: after
``channel = paper & interpreter = True``, neither ``channel = paper`` nor
``interpreter = True & channel = paper & applicant_age > 30`` comes back, and
the mirror image ``channel = digital`` scores nothing once the paper
applicants with an interpreter are gone. Each group is still reported and
tested as it is defined, with all its cases.

Why this method and not another:

* Algorithm Audit's bias-detection tool clusters the cases (hierarchical
  bias-aware clustering) and reports clusters with a deviating outcome. A
  cluster is a region of feature space that nobody can state as a rule, so
  an auditor cannot say who is in it, and a municipality cannot check its
  own rules against it. A conjunction of conditions is a sentence.
* Giskard's slice finder also reports conjunctions of conditions, with a
  Benjamini–Hochberg correction and a minimum slice size, but it tests the
  slices on the same data it searched, so its p-values are too small:
  the search has already picked the most extreme slices.
* FairTest grows an association-guided tree on one part of the data and
  tests its leaves on another; a tree forces the groups to be disjoint, and
  a split high in the tree hides a combination that only matters lower down.
  A beam over conjunctions can return overlapping groups (sequential
  covering keeps them from repeating each other) and finds a two-column
  combination whichever column comes first.

None of the three reports intervals on the groups found, corrects for the
search honestly, or says how a group is made of the named groups; the next
section does.

Everything is counting: each column is coded once per case, and the counts of
every refinement of a beam member by every condition on one column come from
one ``numpy.bincount`` over the member's cases. A million cases with twenty
columns take seconds (``benchmarks/discovery.py``).

Honest statistics
-----------------
The cases are split at random (seeded) into two halves. The search (and the
cut points of numeric columns) sees only the *search half*; each group found
is then tested on the *test half*, which played no part in choosing it, so its
p-value is a valid p-value for one pre-specified hypothesis. Reported per
group, on the test half: size, rate with a Wilson interval, the rate of the
rest, the difference (Newcombe's interval) and the ratio to the rest (Katz's
log interval), the two-proportion z-test (Fisher's exact test for small
expected counts) and the minimum detectable difference; each group against
its rest is built by the metrics table's one path
(:func:`audit.metrics.compare_groups`), as every other comparison of a run. The ``top`` p-values
are corrected together (``statistics.correction``, Holm by default) when
discovery is used alone; in an audit run they join the run's family and are
corrected with every other test of the run. The p-value is two-sided, like
every other test of the run, but a group is *confirmed* only when the
corrected p-value is below ``alpha`` and the test half deviates in the
direction the search found: a group found refused more often and then
refused significantly less often on the test half contradicts the search.
(With no disparity anywhere, the chance that any group is confirmed is
about ``alpha / 2``: Holm rejects nothing unless the smallest p-value is
below ``alpha / m``, and that test agrees with the search half the time;
``tests/test_metrics_discovery.py`` measures it.) A
group with fewer than
``statistics.min_group_size`` cases on the test half is suppressed: no rate,
no counts. The search half's own figures are reported too, marked as the
optimistic ones that chose the group.

Each group's *make-up* says how it is made of the named sensitive groups, over
all cases: the share of each group of each sensitive attribute inside the
subgroup, next to its share of all cases. Shares resting on fewer than
``min_group_size`` cases are suppressed.

Outcomes
--------
``deny`` (alias ``refusal``): ``deny_rate``; ``refer`` (alias ``routing``):
``refer_rate``; ``wrongful``: ``wrongful_decision_rate``, the share of ok,
decided cases with a usable truth whose final decision (favourable or not)
differs from the truth's; ``shortfall``: ``underpayment_rate``; or the name of
any rate metric of :data:`audit.metrics.METRICS`. Each case's part in a rate
(is it in the denominator, is it in the numerator) comes from the registry's
own metric function applied to the case's cells, so a rate means here what it
means in the rest of the report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from audit._columns import DISCOVERED_PREFIX, TRUTH_AMOUNT, TRUTH_OUTCOME, TRUTH_REASONS
from audit.exceptions import DataError, SpecError
from audit.metrics._casecells import case_rate_parts, case_rates
from audit.metrics._discoveryresult import REST_LABEL, DiscoveredGroup, DiscoveryResult, p_or_nan
from audit.metrics._intervals import wilson_interval
from audit.metrics._registry import WRONGFUL_DECISION_RATE
from audit.metrics._significance import adjust_pvalues
from audit.metrics._statistics import MISSING_LABEL
from audit.metrics._subgroups import EncodedFeature, encode_features, subgroup_mask
from audit.metrics._table import compare_groups, metric_table, proportion_evidence
from audit.spec import AuditSpec, DiscoverSpec, StatisticsSpec

__all__ = [
    "BEAM_WIDTH",
    "DISCOVERY_OUTCOMES",
    "MEASUREMENT_COLUMNS",
    "default_features",
    "discover",
    "discover_in_run",
    "discovery_frame",
    "recorded_columns",
    "split_halves",
]

DISCOVERY_OUTCOMES: dict[str, str] = {
    "deny": "deny_rate",
    "refusal": "deny_rate",
    "refer": "refer_rate",
    "routing": "refer_rate",
    "wrongful": WRONGFUL_DECISION_RATE,
    "shortfall": "underpayment_rate",
}
"""The outcome names of ``discover.outcome`` and the rate each one searches."""

MEASUREMENT_COLUMNS: frozenset[str] = frozenset(
    {
        "case_id",
        "status",
        "status_reason",
        "outcome",
        "amount",
        "score",
        "reasons",
        "final_outcome",
        "final_amount",
        "decided_by",
        "override",
        "override_by",
        TRUTH_OUTCOME,
        TRUTH_AMOUNT,
        TRUTH_REASONS,
    }
)
"""Columns of the measurement frame that describe a decision, not a case; never searched."""

BEAM_WIDTH = 20
"""Conjunctions kept at each level of the beam search (the ``beam`` option)."""

_STREAM = 24
"""Mixed into the seed, so that the split does not share a stream with other draws of a run."""

# --------------------------------------------------------------------------
# the frame and its features


def default_features(columns: Sequence[str], *, exclude: Sequence[str] = ()) -> list[str]:
    """The columns discovery searches by default: every column that describes the case.

    Leaves out ``case_id``, the decision and truth columns of the measurement
    frame (:data:`MEASUREMENT_COLUMNS`) and ``exclude`` (recorded decisions,
    selection columns).
    """
    skip = set(MEASUREMENT_COLUMNS) | set(exclude)
    return [str(c) for c in columns if str(c) not in skip]


def discovery_frame(final: pd.DataFrame, cases: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
    """The measurement frame of a run with the case columns discovery searches.

    Parameters
    ----------
    final : pandas.DataFrame
        One row per case (``decisions.parquet``): ``case_id``, the sensitive
        columns, ``status``, outcomes, amounts, truth.
    cases : pandas.DataFrame
        The case frame, with ``case_id``; rows are matched by ``case_id``.
    features : sequence of str
        Columns of the case frame to add (those already in ``final`` are kept).

    Raises
    ------
    DataError
        When a feature is not a column of either frame, or a case of ``final``
        is not in ``cases``.
    """
    missing = [c for c in features if c not in final.columns and c not in cases.columns]
    if missing:
        raise DataError(
            f"discover.features names {missing[0]!r}, which is not a column of the case frame. "
            f"Columns: {', '.join(map(str, cases.columns))}."
        )
    add = [c for c in dict.fromkeys(features) if c not in final.columns]
    out = final.copy()
    if not add:
        return out
    same_order = len(cases) == len(final) and (cases["case_id"].to_numpy() == final["case_id"].to_numpy()).all()
    if same_order:
        for c in add:
            out[c] = cases[c].to_numpy()
        return out
    by_id = cases.set_index("case_id")
    absent = ~final["case_id"].isin(by_id.index)
    if absent.any():
        raise DataError(
            f"the case frame holds no case {final.loc[absent, 'case_id'].iloc[0]!r} of the decisions "
            f"({int(absent.sum())} case(s) missing). Expected the cases the decisions were made on."
        )
    for c in add:
        out[c] = by_id[c].reindex(final["case_id"]).to_numpy()
    return out


# --------------------------------------------------------------------------
# search


@dataclass
class _Candidate:
    key: tuple[tuple[int, int], ...]
    rows: float
    eligible: float
    positive: float
    z: float
    rest_value: float | None = None


def _z(rows: np.ndarray, elig: np.ndarray, pos: np.ndarray, total: tuple[float, float, float],
       min_rows: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-proportion z of each candidate against the rest of the search half, and which are valid."""
    r_all, e_all, p_all = total
    n1, k1 = elig, pos
    n0, k0 = e_all - elig, p_all - pos
    pooled = p_all / e_all
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (k1 / n1 - k0 / n0) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    valid = (rows >= min_rows) & (r_all - rows >= min_rows) & (n1 > 0) & (n0 > 0) & np.isfinite(z)
    return z, valid


def _search(
    features: list[EncodedFeature],
    state: np.ndarray,
    *,
    max_conditions: int,
    min_rows: float,
    beam: int,
) -> tuple[list[_Candidate], int]:
    """One beam search over the search half.

    ``state`` holds, per case of the search half, 0 (outside the rate's
    denominator), 1 (in the denominator only), 2 (in the numerator) or 3
    (left out: a case of a group found before). Returns every valid
    candidate, strongest first, and how many conjunctions were scored.
    """
    total = (float((state < 3).sum()), float(((state == 1) | (state == 2)).sum()), float((state == 2).sum()))
    keys = [f.search_codes.astype(np.int64) * 4 + state for f in features]
    members = [f.member.astype(np.float64) for f in features]
    seen: set[tuple[tuple[int, int], ...]] = set()
    found: list[_Candidate] = []
    scored = 0
    parents: list[tuple[tuple[int, int], ...]] = [()]
    for _ in range(max_conditions):
        new_keys: list[tuple[tuple[int, int], ...]] = []
        parts: list[np.ndarray] = []
        for parent in parents:
            rows = None if not parent else np.flatnonzero(subgroup_mask(parent, features, search=True))
            used = {f for f, _ in parent}
            for fi, feat in enumerate(features):
                if fi in used or not feat.conditions:
                    continue
                k = keys[fi] if rows is None else keys[fi][rows]
                counts = np.bincount(k, minlength=feat.member.shape[0] * 4).reshape(-1, 4).astype(np.float64)
                level = np.stack([counts[:, :3].sum(axis=1), counts[:, 1] + counts[:, 2], counts[:, 2]])
                per_condition = level @ members[fi]  # (cases, eligible, positive) x conditions
                take = []
                for ci in range(per_condition.shape[1]):
                    key = tuple(sorted((*parent, (fi, ci))))
                    if key not in seen:
                        seen.add(key)
                        new_keys.append(key)
                        take.append(ci)
                if take:
                    parts.append(per_condition[:, take])
        if not new_keys:
            break
        counts_all = np.concatenate(parts, axis=1)
        scored += len(new_keys)
        z, valid = _z(counts_all[0], counts_all[1], counts_all[2], total, min_rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            rest = (total[2] - counts_all[2]) / (total[1] - counts_all[1])
        level_found = [
            _Candidate(key, float(counts_all[0, i]), float(counts_all[1, i]), float(counts_all[2, i]), float(z[i]),
                       _float(rest[i]))
            for i, key in enumerate(new_keys)
            if valid[i]
        ]
        level_found.sort(key=_rank_key)
        found.extend(level_found)
        parents = [c.key for c in level_found[:beam]]
        if not parents:
            break
    found.sort(key=_rank_key)
    return found, scored


def _rank_key(c: _Candidate) -> tuple[float, int, tuple[tuple[int, int], ...]]:
    return (-abs(c.z), len(c.key), c.key)


def _find(
    features: list[EncodedFeature],
    state: np.ndarray,
    *,
    top: int,
    max_conditions: int,
    min_rows: float,
    beam: int,
) -> tuple[list[_Candidate], int]:
    """Sequential covering: search, keep the strongest group, leave its cases out, search again.

    Each group after the first is scored on the search half *without* the
    cases of the groups found before it (in the group and in the rest), so
    it is reported only when it deviates on its own, not because it holds a
    group already found (``channel = paper`` after ``channel = paper &
    interpreter = True``). Returns the chosen candidates with the counts and
    z that chose them, and how many conjunctions were scored in all.
    """
    state = state.copy()
    chosen: list[_Candidate] = []
    scored = 0
    for _ in range(top):
        found, n = _search(features, state, max_conditions=max_conditions, min_rows=min_rows, beam=beam)
        scored += n
        pick = next((c for c in found if all(c.key != o.key for o in chosen)), None)
        if pick is None:
            break
        chosen.append(pick)
        state[subgroup_mask(pick.key, features, search=True)] = 3
    return chosen, scored


# --------------------------------------------------------------------------
# test and make-up


def _float(value: Any) -> float | None:
    f = float(value)
    return None if math.isnan(f) or math.isinf(f) else f


def _test(
    masks: list[np.ndarray],
    eligible: np.ndarray,
    positive: np.ndarray,
    test_rows: np.ndarray,
    *,
    metric: str,
    groups: Sequence[tuple[str, list[str]]],
    statistics: StatisticsSpec,
) -> list[dict[str, Any]]:
    """The test half's figures of each group, in the tidy metrics-row fields.

    Each group against its rest is one comparison of the metrics table's one
    path (:func:`~audit.metrics.compare_groups` with
    :func:`~audit.metrics.proportion_evidence`: Wilson, Newcombe and Katz
    intervals, the two-proportion z-test or Fisher's exact test), and
    :func:`~audit.metrics.metric_table` sizes the minimum detectable
    differences for the groups tested. A group whose test half holds fewer
    than ``min_group_size`` cases, in the group or in its rest, is
    suppressed whole: no counts, no rate. ``groups`` holds each group's
    label (its definition) and attributes; ``metric`` names the rows.
    """
    if not masks:
        return []
    alpha, min_n = statistics.alpha, statistics.min_group_size
    el, po = eligible[test_rows], positive[test_rows]
    inside = np.stack([m[test_rows] for m in masks])  # (groups, test cases)
    cases = inside.sum(axis=1).astype(float)
    rest_cases = float(test_rows.size) - cases
    n1 = (inside & el).sum(axis=1).astype(float)
    k1 = (inside & po).sum(axis=1).astype(float)
    n0 = float(el.sum()) - n1
    k0 = float(po.sum()) - k1
    small = (cases < min_n) | ((n1 > 0) & (n1 < min_n)) | (rest_cases < min_n) | ((n0 > 0) & (n0 < min_n))
    blocks = []
    for i in np.flatnonzero(~small):
        k, n = np.array([k1[i], k0[i]]), np.array([n1[i], n0[i]])
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(n > 0, k / n, np.nan)
        undefined = "undefined: no case of the group on the test half is in the rate's denominator"
        label, attributes = groups[i]
        blocks.append(compare_groups(
            metric, attributes, [label, REST_LABEL], reference=1, rows=[cases[i], rest_cases[i]], n=n,
            value=value, ci=wilson_interval(k, n, alpha), count=k, statistics=statistics,
            reasons=[[undefined] if n1[i] == 0 else [], []], evidence=proportion_evidence(k, n, 1, alpha),
            reference_row=False,
        ))
    table = metric_table(blocks, statistics, correct=True).iloc[::2].reset_index(drop=True)  # the groups' rows
    rows = iter(table.to_dict(orient="records"))
    out = []
    for i in range(len(masks)):
        if small[i]:
            who = "the group" if cases[i] < min_n or (0 < n1[i] < min_n) else "the rest"
            out.append({
                "n": None, "n_test_cases": None, "count": None, "value": None, "ci_low": None, "ci_high": None,
                "reference_value": None, "rest_n": None, "difference": None, "diff_ci_low": None,
                "diff_ci_high": None, "ratio": None, "ratio_ci_low": None, "ratio_ci_high": None,
                "p_value": None, "p_adjusted": None, "test": "", "mdd": None, "suppressed": True,
                "reason": f"suppressed: {who} has fewer than min_group_size {min_n} cases on the test half",
            })
            continue
        r = next(rows)
        out.append({
            "n": int(n1[i]),
            "n_test_cases": int(cases[i]),
            "count": int(k1[i]),
            **{key: _float(r[key]) for key in ("value", "ci_low", "ci_high", "reference_value")},
            "rest_n": int(n0[i]),
            **{key: _float(r[key]) for key in ("difference", "diff_ci_low", "diff_ci_high", "ratio", "ratio_ci_low",
                                               "ratio_ci_high", "p_value")},
            "p_adjusted": None,
            "test": str(r["test"]),
            "mdd": _float(r["mdd"]),
            "suppressed": False,
            "reason": str(r["reason"]),
        })
    return out


def _sensitive_codes(frame: pd.DataFrame, sensitive: Sequence[str]) -> list[tuple[str, np.ndarray, list[str]]]:
    out = []
    for name in sensitive:
        codes, uniques = pd.factorize(frame[name], use_na_sentinel=True)
        labels = [MISSING_LABEL if str(u).strip() == "" else str(u) for u in uniques] + [MISSING_LABEL]
        codes = np.where(codes < 0, len(labels) - 1, codes)
        names = sorted({labels[i] for i in np.unique(codes)})
        position = {label: j for j, label in enumerate(names)}
        lut = np.asarray([position.get(lab, 0) for lab in labels], dtype=np.int64)  # unused labels map anywhere
        out.append((name, lut[codes], names))
    return out


def _makeup(
    mask: np.ndarray, sensitive: list[tuple[str, np.ndarray, list[str]]], *, min_n: int
) -> tuple[dict[str, Any], ...]:
    """Shares of each named group inside the subgroup and among all cases; small counts suppressed."""
    size = int(mask.sum())
    n = mask.size
    rows = []
    for name, codes, labels in sensitive:
        inside = np.bincount(codes[mask], minlength=len(labels))
        everyone = np.bincount(codes, minlength=len(labels))
        part = []
        for j, label in enumerate(labels):
            hidden = size < min_n or 0 < inside[j] < min_n
            pop_hidden = 0 < everyone[j] < min_n
            part.append({
                "attribute": name,
                "group": label,
                "share": None if hidden or size == 0 else float(inside[j] / size),
                "population_share": None if pop_hidden else float(everyone[j] / n),
                "suppressed": bool(hidden),
            })
        part.sort(key=lambda r: (r["share"] is None, -(r["share"] or 0.0), r["group"]))
        rows.extend(part)
    return tuple(rows)


# --------------------------------------------------------------------------
# the entry point


def split_halves(n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The random split of ``n`` cases into the search half and the test half.

    A seeded permutation (its own random stream, so that it shares no draws
    with the bootstrap of the same seed); the search half is its first
    ``n // 2`` positions. Returns both halves as sorted positions.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _STREAM]))
    order = rng.permutation(int(n))
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SpecError(f"{name} must be an integer >= {minimum}. Got {value!r}.")
    return int(value)


def discover(
    frame: pd.DataFrame,
    *,
    sensitive_features: Sequence[str] = (),
    spec: DiscoverSpec | None = None,
    outcome: str | None = None,
    features: Sequence[str] | None = None,
    statistics: StatisticsSpec | None = None,
    favourable: Sequence[str] = ("grant", "partial"),
    review: Sequence[str] = ("refer",),
    pred_positive: Sequence[str] = ("deny",),
    truth_positive: Sequence[str] | None = None,
    amount_tolerance: float = 1.0,
    seed: int = 0,
    beam: int = BEAM_WIDTH,
    source: str = "discovery frame",
) -> DiscoveryResult:
    """Find the subgroups whose outcome deviates most from the rest, and test them honestly.

    See the module docstring for the method and the statistics.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per case: the measurement frame (``case_id``, ``status``,
        ``outcome``, ``final_outcome`` and, as the outcome needs,
        ``final_amount``, ``truth_outcome``, ``truth_amount``), the columns to
        search and the sensitive columns (see :func:`discovery_frame`).
    sensitive_features : sequence of str, optional
        The named groups; each found group's make-up is given by them.
    spec : audit.spec.DiscoverSpec, optional
        ``outcome``, ``features``, ``max_conditions``, ``min_size``,
        ``bins``, ``top`` (defaults of :class:`~audit.spec.DiscoverSpec`).
    outcome : str, optional
        Overrides ``spec.outcome``: ``deny`` (``refusal``), ``refer``
        (``routing``), ``wrongful``, ``shortfall`` or a rate metric's name.
    features : sequence of str, optional
        Overrides ``spec.features``; default :func:`default_features` of the
        frame (every column but the decision and truth columns).
    statistics : audit.spec.StatisticsSpec, optional
        ``alpha``, ``correction`` and ``min_group_size``.
    favourable, review, pred_positive, truth_positive, amount_tolerance
        Outcome labels and options, as for :func:`audit.metrics.measure`.
    seed : int, default 0
        Seed of the split into search and test halves.
    beam : int, default :data:`BEAM_WIDTH`
        Conjunctions refined at each level of the search.
    source : str
        Name used at the start of error messages.

    Returns
    -------
    DiscoveryResult
        The groups found, strongest first, each with its test-half statistics
        and its make-up; p-values corrected among the groups found
        (:meth:`DiscoveryResult.with_run_correction` takes a run's).

    Raises
    ------
    SpecError
        For an unknown outcome or an invalid option.
    DataError
        When a column is missing or the measurement columns hold invalid values.
    """
    spec = spec if spec is not None else DiscoverSpec()
    stats_spec = statistics if statistics is not None else StatisticsSpec()
    seed = _check_int("seed", seed, 0)
    beam = _check_int("beam", beam, 1)
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame. Got {type(frame).__name__}.")
    name = outcome if outcome is not None else spec.outcome
    metric = DISCOVERY_OUTCOMES.get(name, name)
    if metric not in case_rates():
        raise SpecError(
            f"discover.outcome must be one of {', '.join(DISCOVERY_OUTCOMES)} or the name of a rate metric "
            f"({', '.join(case_rates())}). Got {name!r}."
        )
    if features is not None:
        names = [str(f) for f in features]
    elif spec.features is not None:
        names = list(spec.features)
    else:
        names = default_features(frame.columns)
    names = list(dict.fromkeys(names))
    decision_columns = [f for f in names if f in MEASUREMENT_COLUMNS]
    if decision_columns:
        raise SpecError(
            f"discover.features names {decision_columns[0]!r}, a decision or identity column. Expected columns "
            "that describe the case before the decision (the engine's features and the sensitive columns)."
        )
    missing = [f for f in [*names, *sensitive_features] if f not in frame.columns]
    if missing:
        key = "discover.features" if missing[0] in names else "sensitive_features"
        raise DataError(
            f"{source}: {key} names {missing[0]!r}, which is not a column. Columns: "
            f"{', '.join(map(str, frame.columns))}."
        )
    if not names:
        raise SpecError("discover.features must name at least one column to search. Got none.")
    eligible, positive = case_rate_parts(
        frame, metric, favourable=favourable, review=review, pred_positive=pred_positive,
        truth_positive=truth_positive, amount_tolerance=amount_tolerance, source=source,
    )
    n = len(frame)
    search_rows, test_rows = split_halves(n, seed=seed)
    settings = {
        "max_conditions": spec.max_conditions, "min_size": spec.min_size, "bins": spec.bins, "top": spec.top,
        "beam": beam, "seed": seed, "alpha": stats_spec.alpha, "min_group_size": stats_spec.min_group_size,
    }
    state = eligible.astype(np.int64) + positive.astype(np.int64)
    min_rows = max(1, math.ceil(spec.min_size * search_rows.size / n)) if n else 1
    encoded = encode_features(frame, names, search_rows, bins=spec.bins, min_rows=min_rows)
    notes: list[str] = []
    se = state[search_rows]
    if (se > 0).sum() == 0:
        notes.append(f"no case of the search half is in the denominator of {metric}; nothing to search")
        chosen, scored = [], 0
    elif (se == 2).sum() in (0, (se > 0).sum()):
        notes.append(f"{metric} is the same for every case of the search half; no subgroup can deviate")
        chosen, scored = [], 0
    else:
        chosen, scored = _find(encoded, se, top=spec.top, max_conditions=spec.max_conditions, min_rows=min_rows,
                               beam=beam)
        if not chosen:
            notes.append(f"no subgroup and its rest both have at least min_size {spec.min_size} cases")
    masks = [subgroup_mask(c.key, encoded) for c in chosen]
    definitions = [tuple(encoded[f].conditions[ci] for f, ci in c.key) for c in chosen]
    named = [(" & ".join(x.text for x in cs), [x.feature for x in cs]) for cs in definitions]
    tests = _test(masks, eligible, positive, test_rows, metric=DISCOVERED_PREFIX + metric, groups=named,
                  statistics=stats_spec)
    p = np.asarray([p_or_nan(t["p_value"]) for t in tests], dtype=float)
    adjusted = adjust_pvalues(p, method=stats_spec.correction) if p.size else p
    sensitive = _sensitive_codes(frame, sensitive_features)
    min_n = stats_spec.min_group_size
    groups = []
    for rank, (c, m, t, adj) in enumerate(zip(chosen, masks, tests, adjusted, strict=True), start=1):
        size = int(m.sum())
        hidden = c.rows < min_n
        search = {
            "n": None if hidden else int(c.rows),
            "n_eligible": None if hidden else int(c.eligible),
            "value": None if hidden or c.eligible == 0 else c.positive / c.eligible,
            "rest_value": None if hidden else c.rest_value,
            "z": c.z,
        }
        groups.append(DiscoveredGroup(
            rank=rank,
            conditions=definitions[rank - 1],
            search=search,
            test={**t, "p_adjusted": None if math.isnan(adj) else float(adj)},
            n_cases=None if size < min_n else size,
            share=None if size < min_n else size / n,
            makeup=_makeup(m, sensitive, min_n=min_n),
        ))
    return DiscoveryResult(
        outcome=str(name),
        metric=metric,
        groups=tuple(groups),
        features=tuple(names),
        settings=settings,
        sizes={"cases": n, "search": int(search_rows.size), "test": int(test_rows.size),
               "conditions": sum(len(f.conditions) for f in encoded), "candidates": int(scored)},
        correction={"method": stats_spec.correction, "family": "discovery", "m": int(np.isfinite(p).sum())},
        notes=tuple(notes),
    )


def recorded_columns(audit: AuditSpec) -> frozenset[str]:
    """Columns of the case frame that a spec declares as decisions, truths or selections.

    A recorded engine's outcome, amount, reasons and score; the truth column
    and amount; recorded caseworker decisions; a compared engine's recorded
    columns; the selection column. They may reach the engine (a recorded
    engine reads them), but a subgroup defined by one would only find the
    outcome itself, so discovery never searches them.
    """
    columns = set()
    if audit.engine is not None and audit.engine.kind == "recorded":
        columns.update((audit.engine.outcome, audit.engine.amount, audit.engine.reasons, audit.engine.score))
    if audit.compare is not None and audit.compare.kind == "recorded":
        columns.update((audit.compare.outcome, audit.compare.amount, audit.compare.reasons, audit.compare.score))
    columns.update((audit.truth.column, audit.truth.amount))
    if audit.review is not None:
        columns.update((audit.review.recorded, audit.review.amount))
    if audit.selection is not None:
        columns.add(audit.selection.column)
    return frozenset(c for c in columns if c)


def discover_in_run(
    audit: AuditSpec, cases: pd.DataFrame, final: pd.DataFrame, engine_features: Sequence[str]
) -> DiscoveryResult:
    """Subgroup discovery as an audit run does it (the spec's ``discover:`` section).

    Parameters
    ----------
    audit : audit.spec.AuditSpec
        The spec; ``audit.discover`` must be set. Outcome labels, truth,
        statistics and seed come from it.
    cases : pandas.DataFrame
        The case frame (with ``case_id``).
    final : pandas.DataFrame
        The run's final decisions (``decisions.parquet``).
    engine_features : sequence of str
        What the engine saw; with the sensitive columns, and without the
        columns of :func:`recorded_columns`, the default of
        ``discover.features``.

    Returns
    -------
    DiscoveryResult
        Corrected among the groups found; an audit run then takes the
        run-wide correction with :meth:`DiscoveryResult.with_run_correction`.
    """
    spec = audit.discover
    if spec is None:
        raise SpecError(
            f"{audit.source or '<spec>'}: the spec has no discover: section. Expected one to run discovery."
        )
    outcomes = recorded_columns(audit)
    if spec.features is not None:
        named = [f for f in spec.features if f in outcomes]
        if named:
            raise SpecError(
                f"{audit.source or '<spec>'}: discover.features names {named[0]!r}, which holds a recorded decision, "
                "a truth or a selection; a subgroup defined by it would find the outcome itself. Expected columns "
                "that describe the case."
            )
        searched = list(spec.features)
    else:
        searched = list(dict.fromkeys(
            c for c in [*engine_features, *audit.sensitive_features] if c != "case_id" and c not in outcomes
        ))
    o = audit.outcomes
    return discover(
        discovery_frame(final, cases, searched),
        sensitive_features=audit.sensitive_features,
        spec=spec,
        features=searched,
        statistics=audit.statistics,
        favourable=o.favourable,
        review=o.review,
        pred_positive=o.positive or ([audit.truth.positive] if audit.truth.positive else ["deny"]),
        truth_positive=[audit.truth.positive] if audit.truth.positive else None,
        seed=audit.seed,
        source=audit.source or "<spec>",
    )
