"""Selection audits: who is picked for investigation, and is it fair?

Many welfare agencies run a risk model that picks applications or recipients
for investigation (a home visit, a request for documents, a control of the
payments). The Swedish Social Insurance Agency's control model and
Amsterdam's welfare-fraud model are well-known examples. An auditor usually
receives three things:

* the cases that the model **selected** (every one of them), each with the
  result of the investigation (an error was found or not);
* a **random control sample** drawn from the same population and
  investigated in the same way;
* the **population size** ``N``: how many cases the model chose from.

The spec says which column marks how a case was picked
(``selection.column``), which value marks the random sample
(``selection.random``), optionally which value marks the selected cases
(``selection.selected``; default: every other value) and ``N``
(``selection.population_size``). The truth column holds the investigation's
result; the labels in ``truth_positive`` (default ``error``) count as a
positive (an error was found). A missing result (investigation not finished)
leaves the case out of every rate that needs the result; the ``reason``
column says how many.

Method
------
For a group ``g`` (one value of a sensitive attribute, or of an
intersection) let

* ``s_g`` be its selected cases, ``S = sum_g s_g`` all selected cases;
* ``r_g`` its random cases, ``R = sum_g r_g`` the random sample;
* ``sp_g / sk_g`` its selected cases with an error / with a known result;
* ``rp_g / rk_g`` its random cases with an error / with a known result, and
  ``E = sum_g rp_g`` the errors found at random.

Metrics (``n`` and ``count`` are the columns of the metrics table):

=================================  ==========================================  ==================  ===========
metric                             value                                       n                   count
=================================  ==========================================  ==================  ===========
``selected_share``                 ``s_g / S``                                 ``S``               ``s_g``
``random_share``                   ``r_g / R``                                 ``R``               ``r_g``
``selection_ratio``                ``(s_g / S) / (r_g / R)``                   ``s_g + r_g``       ``s_g``
``base_rate``                      ``rp_g / rk_g`` (error rate at random)      ``rk_g``            ``rp_g``
``hit_rate``                       ``sp_g / sk_g`` (precision of selection)    ``sk_g``            ``sp_g``
``error_share``                    ``rp_g / E``                                ``E``               ``rp_g``
``equal_burden``                   ``(s_g / S) / (rp_g / E)``                  ``s_g + r_g``       ``s_g``
``burden_gap``                     ``s_g / S - rp_g / E``                      ``s_g + r_g``       ``s_g``
``population_selection_rate``      ``s_g / N_g``                               ``s_g + r_g``       ``s_g``
``population_false_positive_rate`` ``FP_g / (FP_g + TN_g)``                    ``s_g + r_g``       --
``population_false_negative_rate`` ``FN_g / (FN_g + TP_g)``                    ``s_g + r_g``       --
=================================  ==========================================  ==================  ===========

A ``selection_ratio`` above 1 means the group is over-represented among the
selected cases compared with its share of the population (estimated by the
random sample). ``equal_burden`` puts the group's share of the selections
against its share of the errors that exist (estimated by the errors found at
random): 1 means the group carries the burden of investigation in proportion
to its errors; above 1 it is investigated more than its errors warrant.
``burden_gap`` is the same comparison as a difference, in percentage points:
the group's share of the selections minus its share of the errors found at
random (0 is equal burden; +10 pp means the group makes up 10 percentage
points more of those investigated than of the errors). This is the measure
that Lighthouse Reports and Svenska Dagbladet published on the Swedish
Social Insurance Agency's (Försäkringskassan's) control model for temporary
parental benefit ("Sweden's Suspicion Machine", 27 November 2024,
https://www.lighthousereports.com/investigation/swedens-suspicion-machine/),
where the ratio alone hides how many people the gap concerns; Insyn reports
both.

**The population confusion matrix.** The selected cases are the model's
predicted positives; the random sample is a simple random sample of the
whole population of ``N`` cases (including cases the model selected), so it
estimates each group's size and base rate:

* estimated group size ``N_g = N * r_g / R``;
* predicted positives: ``TP_g = s_g * hit_rate_g`` (errors among selected)
  and ``FP_g = s_g - TP_g``;
* actual positives: ``P_g = N_g * base_rate_g``, hence
  ``FN_g = max(P_g - TP_g, 0)`` (errors the model missed) and
  ``TN_g = max(N_g - s_g - FN_g, 0)``.

The clipping at 0 only bites when sampling noise makes the random sample
find fewer errors in a group than the model found; the ``reason`` column
says so. Assumptions: every selected case is in the data (a census of the
predicted positives) and was investigated like the random cases; the random
sample is drawn from the same ``N`` cases; a case picked at random is
recorded as random even if the model would also have picked it.

Intervals and tests
-------------------
Plain proportions (the shares, ``base_rate``, ``hit_rate``) get Wilson score
intervals. ``burden_gap`` is a difference of two proportions from
independent samples (the selections and the errors found at random) and gets
Newcombe's hybrid score interval. ``selection_ratio``, ``equal_burden`` and
``population_selection_rate`` (which equals ``selection_ratio * S / N``) are
ratios of proportions from two independent samples (the selected cases and
the random sample) and get Katz's log interval. The reconstructed false
positive and false negative rates, and every difference and ratio against
the reference group, get percentile intervals from a stratified multinomial
bootstrap: the cell counts (group x result) of the selected cases are drawn
from ``Multinomial(S, observed shares)`` and those of the random sample from
``Multinomial(R, observed shares)``, ``statistics.bootstrap`` times with the
run's seed. This is the row bootstrap of each sample, done on counts, and it
keeps ``S`` and ``R`` fixed as the design does. With ``bootstrap: 0`` the
differences and ratios of ``base_rate`` and ``hit_rate`` get Newcombe's and
Katz's intervals, and the reconstructed rates no interval (the reason says
so).

Tests against the reference group: two-proportion tests (Fisher's exact
test for small expected counts) for ``base_rate`` and ``hit_rate``. For
``selection_ratio`` and ``population_selection_rate`` the same test on
``s_g / (s_g + r_g)`` against ``s_ref / (s_ref + r_ref)``: the ratio of two
groups' selection ratios is 1 exactly when these are equal, and given
``s_g + r_g`` the count ``s_g`` is binomial (the usual conditional test of two
Poisson rates). ``equal_burden`` is tested the same way on
``s_g / (s_g + rp_g)``. The reconstructed rates get a z-test with the
bootstrap standard error of the difference. Shares of one total are not
compared between groups. The table is built as every metrics table is
(:mod:`audit.metrics._table`): p-values are adjusted together with
``statistics.correction`` (in a run, with every other test of the run:
``correct=False`` and :func:`audit.metrics.correct_family`), and the minimum
detectable difference is that of :func:`audit.metrics.measure`.

The reference group is the spec's (``reference_groups``), else the group
with the most random cases (the largest estimated group), never
``(missing)``; an intersection without one uses the combination of its
attributes' references. The overall row (``attributes == []``, ``group ==
"all"``) is reported for the metrics that are not 1 by definition.

Suppression: a group with fewer than ``statistics.min_group_size`` audited
cases (``s_g + r_g``) is suppressed for every metric; so is a rate whose
own denominator is between 1 and ``min_group_size - 1`` (``rk_g`` for
``base_rate``, ``error_share`` and ``equal_burden``; ``sk_g`` for
``hit_rate``; either for the reconstructed rates). A suppressed row shows
``n`` only: no value, count, interval or comparison. A rate that cannot be
computed (a zero denominator) is NaN with the reason, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from audit.exceptions import CheckCode, DataError, FailureCollector
from audit.metrics._groups import OVERALL, atoms, attribute_sets, grouping_matrix, references
from audit.metrics._intervals import (
    katz_ratio_interval,
    multinomial_bootstrap,
    newcombe_difference_interval,
    wilson_interval,
)
from audit.metrics._significance import two_proportion_test
from audit.metrics._table import (
    Evidence,
    MetricBlock,
    bootstrap_evidence,
    bootstrap_se,
    compare_groups,
    group_notes,
    metric_table,
    order_blocks,
    percentile_interval,
    proportion_evidence,
    statistics_spec,
)
from audit.spec import SelectionSpec, StatisticsSpec

__all__ = ["SELECTION_METRICS", "measure_selection", "population_confusion"]

SELECTION_METRICS: tuple[str, ...] = (
    "selected_share",
    "random_share",
    "selection_ratio",
    "base_rate",
    "hit_rate",
    "error_share",
    "equal_burden",
    "burden_gap",
    "population_selection_rate",
    "population_false_positive_rate",
    "population_false_negative_rate",
)
"""Metrics of a selection audit, in the order they are reported."""

_POS, _NEG, _UNKNOWN = 0, 1, 2


# ---------------------------------------------------------------------------
# counts


def _selection_counts(
    frame: pd.DataFrame,
    *,
    selection: SelectionSpec,
    sensitive_features: Sequence[str],
    truth_column: str | None,
    truth_positive: Sequence[str],
) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any]]:
    """Validate the frame; count cases per atom x (selected, random) x (error, no error, unknown result)."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"selection audit: expected a pandas DataFrame. Got {type(frame).__name__}.")
    if isinstance(truth_positive, str):
        truth_positive = (truth_positive,)
    needed = {"selection.column": selection.column}
    needed.update({f"sensitive_features[{i}]": f for i, f in enumerate(sensitive_features)})
    if truth_column is not None:
        needed["the truth column"] = truth_column
    for role, col in needed.items():
        if col not in frame.columns:
            raise DataError(
                f"selection audit: {role} names the column {col!r}, which is not in the case frame. "
                f"Columns: {', '.join(map(str, frame.columns))}."
            )
    info: dict[str, Any] = {"left_out_status": 0}
    if "status" in frame.columns:
        ok = frame["status"].astype("str").eq("ok").to_numpy(dtype=bool, na_value=False)
        info["left_out_status"] = int((~ok).sum())
        frame = frame.loc[ok]
    ids = (frame["case_id"].astype("str") if "case_id" in frame.columns
           else pd.Series(np.arange(1, len(frame) + 1), index=frame.index).astype("str"))
    how = frame[selection.column]
    text = how.astype("str")
    missing = how.isna().to_numpy(dtype=bool) | text.str.strip().eq("").to_numpy(dtype=bool, na_value=True)
    selected_text = repr(selection.selected) if selection.selected is not None else "another value"
    failures = FailureCollector("selection audit", what="the selection column")
    failures.add_mask(CheckCode.NOT_NULL, column=selection.column, mask=missing, values=how, case_ids=ids,
                      reason="how the case was picked is missing")
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError(
            f"selection audit: column {selection.column!r} (selection.column) is empty for "
            f"{int(missing.sum())} case(s), e.g. case_id {ids.iloc[i]!r}. Expected {selection.random!r} for the "
            f"random sample or {selected_text} for cases the engine selected.",
            failures=failures.table(),
        )
    is_random = text.eq(str(selection.random)).to_numpy(dtype=bool, na_value=False)
    if selection.selected is not None:
        other = ~is_random & ~text.eq(str(selection.selected)).to_numpy(dtype=bool, na_value=False)
        failures.add_mask(CheckCode.IN_SET, column=selection.column, mask=other, values=text, case_ids=ids,
                          reason="neither the random nor the selected value")
        if other.any():
            values = pd.unique(text[other])
            i = int(np.flatnonzero(other)[0])
            raise DataError(
                f"selection audit: column {selection.column!r} (selection.column) has the value {values[0]!r} "
                f"for {int(other.sum())} case(s), e.g. case_id {ids.iloc[i]!r}. Expected {selection.random!r} "
                f"(selection.random) or {selection.selected!r} (selection.selected)."
                + (f" Other values: {', '.join(map(repr, values[1:6]))}." if len(values) > 1 else ""),
                failures=failures.table(),
            )
    n_random = int(is_random.sum())
    n_selected = int(len(frame) - n_random)
    if n_random == 0:
        raise DataError(
            f"selection audit: no case has the value {selection.random!r} (selection.random) in column "
            f"{selection.column!r}. A selection audit needs a random control sample. "
            f"Values found: {', '.join(map(repr, pd.unique(text)[:10])) or 'none'}."
        )
    if n_selected == 0:
        raise DataError(
            f"selection audit: every case in column {selection.column!r} is {selection.random!r} "
            "(the random sample). A selection audit needs the cases the engine selected as well."
        )
    if selection.population_size < n_selected + n_random:
        raise DataError(
            f"selection audit: selection.population_size is {selection.population_size}, but the data hold "
            f"{n_selected} selected and {n_random} random cases. Expected the size of the whole population the "
            f"cases were picked from (at least {n_selected + n_random})."
        )
    if truth_column is not None:
        t = frame[truth_column]
        ttext = t.astype("str")
        known = ~(t.isna().to_numpy(dtype=bool) | ttext.str.strip().eq("").to_numpy(dtype=bool, na_value=True))
        positive = known & ttext.isin([str(v) for v in truth_positive]).to_numpy(dtype=bool, na_value=False)
        truth_code = np.where(positive, _POS, np.where(known, _NEG, _UNKNOWN))
    else:
        truth_code = np.full(len(frame), _UNKNOWN)
    atom, keys = atoms(frame, sensitive_features)
    stratum = np.where(is_random, 1, 0)
    flat = np.bincount(atom * 6 + stratum * 3 + truth_code, minlength=len(keys) * 6)
    counts = flat.reshape(len(keys), 2, 3).astype(float)
    info.update({"selected": n_selected, "random": n_random})
    return keys, counts, info


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b``, NaN where ``b`` is 0 or undefined (an undefined rate is never 0 or infinite)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((b != 0) & np.isfinite(b), a / b, np.nan)


def _estimates(sel: np.ndarray, rnd: np.ndarray, population_size: float) -> dict[str, np.ndarray]:
    """Every selection metric from the counts ``(..., groups, 3)`` of the selected and the random cases.

    The last axis is (error found, no error found, no result). Works on one
    set of counts and on bootstrap draws alike (leading axes).
    """
    s = sel.sum(-1)
    sp = sel[..., _POS]
    sk = sp + sel[..., _NEG]
    r = rnd.sum(-1)
    rp = rnd[..., _POS]
    rk = rp + rnd[..., _NEG]
    total_s = np.broadcast_to(s.sum(-1, keepdims=True), s.shape)
    total_r = np.broadcast_to(r.sum(-1, keepdims=True), r.shape)
    total_e = np.broadcast_to(rp.sum(-1, keepdims=True), rp.shape)
    selected_share = _divide(s, total_s)
    random_share = _divide(r, total_r)
    hit = _divide(sp, sk)
    base = _divide(rp, rk)
    error_share = _divide(rp, total_e)
    size = population_size * random_share
    tp = np.where(s > 0, s * hit, 0.0)
    fp = s - tp
    fn_raw = size * base - tp
    fn = np.maximum(fn_raw, 0.0)
    tn_raw = size - s - fn
    tn = np.maximum(tn_raw, 0.0)
    return {
        "selected_share": selected_share,
        "random_share": random_share,
        "selection_ratio": _divide(selected_share, random_share),
        "base_rate": base,
        "hit_rate": hit,
        "error_share": error_share,
        "equal_burden": _divide(selected_share, error_share),
        "burden_gap": selected_share - error_share,
        "population_selection_rate": _divide(s, size),
        "population_false_positive_rate": _divide(fp, fp + tn),
        "population_false_negative_rate": _divide(fn, fn + tp),
        "s": s, "sp": sp, "sk": sk, "r": r, "rp": rp, "rk": rk,
        "total_s": total_s, "total_r": total_r, "total_e": total_e,
        "size": size, "tp": tp, "fp": fp, "fn": fn, "tn": tn, "fn_raw": fn_raw, "tn_raw": tn_raw,
    }


def _group_counts(counts: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum atom counts ``(..., atoms, 2, 3)`` into groups: (selected, random), each ``(..., groups, 3)``."""
    grouped = np.einsum("...atk,ag->...gtk", counts, matrix)
    return grouped[..., 0, :], grouped[..., 1, :]


# ---------------------------------------------------------------------------
# public API


def population_confusion(
    frame: pd.DataFrame,
    *,
    selection: SelectionSpec,
    sensitive_features: Sequence[str],
    intersections: Sequence[Sequence[str]] = (),
    truth_column: str | None = "truth_outcome",
    truth_positive: Sequence[str] = ("error",),
) -> pd.DataFrame:
    """Reconstruct each group's population confusion matrix from a selection audit.

    See the module docstring for the method and its assumptions.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per investigated case: the selection column, the sensitive
        columns and the truth column (the investigation's result).
    selection : audit.spec.SelectionSpec
        Which column and values mark the random sample and the selected
        cases, and the population size ``N``.
    sensitive_features : sequence of str
        Columns that form the groups; missing values form ``(missing)``.
    intersections : sequence of sequence of str, default ()
        Combinations of sensitive features to report as well.
    truth_column : str, default "truth_outcome"
        Column with the investigation's result.
    truth_positive : sequence of str, default ("error",)
        Results that count as an error found.

    Returns
    -------
    pandas.DataFrame
        One row per group, the overall row (``attributes == []``, ``group ==
        "all"``) first: ``attributes``, ``group``, ``selected``, ``random``,
        ``errors_selected``, ``errors_random``, ``group_size`` (estimated
        ``N_g``), ``tp``, ``fp``, ``fn``, ``tn`` (estimated counts, floats;
        NaN where the group's base or hit rate is undefined) and ``clipped``
        (True where ``FN`` or ``TN`` was clipped at 0).

    Raises
    ------
    DataError
        When a column is missing, a case has no selection value or an
        unknown one, the data hold no random or no selected case, or
        ``population_size`` is smaller than the number of cases.
    """
    keys, counts, _ = _selection_counts(frame, selection=selection, sensitive_features=sensitive_features,
                                        truth_column=truth_column, truth_positive=truth_positive)
    parts = []
    for attributes in attribute_sets(sensitive_features, intersections):
        labels, matrix = grouping_matrix(keys, attributes)
        est = _estimates(*_group_counts(counts, matrix), float(selection.population_size))
        parts.append(pd.DataFrame({
            "attributes": pd.Series([list(attributes)] * len(labels), dtype=object),
            "group": pd.Series(labels, dtype="str"),
            "selected": est["s"], "random": est["r"],
            "errors_selected": est["sp"], "errors_random": est["rp"],
            "group_size": est["size"], "tp": est["tp"], "fp": est["fp"], "fn": est["fn"], "tn": est["tn"],
            "clipped": (est["fn_raw"] < 0) | (est["tn_raw"] < 0),
        }))
    return pd.concat(parts, ignore_index=True)


def measure_selection(
    frame: pd.DataFrame,
    *,
    selection: SelectionSpec,
    sensitive_features: Sequence[str],
    intersections: Sequence[Sequence[str]] = (),
    truth_column: str | None = "truth_outcome",
    truth_positive: Sequence[str] = ("error",),
    statistics: StatisticsSpec | None = None,
    seed: int = 0,
    reference_groups: Mapping[str, str] | None = None,
    correct: bool = True,
) -> pd.DataFrame:
    """Measure a selection audit: shares, ratios, base and hit rates, reconstructed error rates.

    See the module docstring for every definition, the method and the
    intervals.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per investigated case: ``case_id`` (named in messages), the
        selection column, the sensitive columns, the truth column and
        optionally ``status`` (only ``ok`` cases are used; the others are
        counted in ``reason``).
    selection : audit.spec.SelectionSpec
        The ``selection`` section of the audit spec.
    sensitive_features : sequence of str
        Columns that form the groups; missing values form ``(missing)``.
    intersections : sequence of sequence of str, default ()
        Combinations of sensitive features to report as well.
    truth_column : str or None, default "truth_outcome"
        The investigation's result; None reports the shares, ratios and the
        selection rate only.
    truth_positive : sequence of str, default ("error",)
        Results that count as an error found.
    statistics : audit.spec.StatisticsSpec, optional
        ``min_group_size``, ``alpha``, ``correction`` and ``bootstrap``
        (default: the spec's defaults).
    seed : int, default 0
        Seed of the bootstrap; the same seed gives the same table.
    reference_groups : mapping of str to str, optional
        Reference group per sensitive feature (or intersection, keyed by its
        attributes joined with ``" & "``). Default: the group with the most
        random cases, i.e. the largest estimated group.
    correct : bool, default True
        Correct the table's p-values together and size its minimum detectable
        differences for them. False leaves both to
        :func:`audit.metrics.correct_family` (the table then has the extra
        column ``mdd_se``).

    Returns
    -------
    pandas.DataFrame
        Tidy metric rows with the columns of :data:`audit.metrics.COLUMNS`,
        ordered by metric (``SELECTION_METRICS``), then overall row
        (``attributes == []``, ``group == "all"``; only for ``base_rate``,
        ``hit_rate``, ``population_selection_rate`` and the reconstructed
        rates, the others being 1 by definition), attributes and
        intersections.

    Raises
    ------
    DataError
        As :func:`population_confusion`, and for an unknown reference group.
    SpecError
        When ``statistics`` is invalid.
    """
    spec = statistics_spec(statistics)
    keys, counts, info = _selection_counts(frame, selection=selection, sensitive_features=sensitive_features,
                                           truth_column=truth_column, truth_positive=truth_positive)
    population = float(selection.population_size)
    boot_counts = None
    if spec.bootstrap > 0:
        rng = np.random.default_rng(seed)
        boot_sel = multinomial_bootstrap(counts[:, 0, :], draws=spec.bootstrap, seed=rng)
        boot_rnd = multinomial_bootstrap(counts[:, 1, :], draws=spec.bootstrap, seed=rng)
        boot_counts = np.stack([boot_sel, boot_rnd], axis=2).astype(float)  # (draws, atoms, 2, 3)
    sets = attribute_sets(sensitive_features, intersections)
    estimates, boots, labels_of, rows_of = {}, {}, {}, {}
    for i, attributes in enumerate(sets):
        labels, matrix = grouping_matrix(keys, attributes)
        estimates[i] = _estimates(*_group_counts(counts, matrix), population)
        boots[i] = (None if boot_counts is None
                    else _estimates(*_group_counts(boot_counts, matrix), population))
        labels_of[i], rows_of[i] = labels, estimates[i]["r"]
    refs = references(sets, labels_of, rows_of, reference_groups, spec.min_group_size)
    blocks: list[tuple[str, int, MetricBlock]] = []
    for i, attributes in enumerate(sets):
        for metric, block in _selection_blocks(attributes, labels_of[i], refs[i], estimates[i], boots[i],
                                               truth_column is not None, spec=spec, population=population,
                                               left_out=info["left_out_status"]):
            blocks.append((metric, i, block))
    return metric_table(order_blocks(blocks, SELECTION_METRICS), spec, correct=correct)


def _selection_blocks(
    attributes: list[str],
    labels: list[str],
    ref: int | None,
    est: dict[str, np.ndarray],
    boot: dict[str, np.ndarray] | None,
    has_truth: bool,
    *,
    spec: StatisticsSpec,
    population: float,
    left_out: int,
) -> list[tuple[str, MetricBlock]]:
    """The metric blocks of one attribute set (see the module docstring for each definition)."""
    g = len(labels)
    alpha = spec.alpha
    s, r, sp, sk, rp, rk = (est[k] for k in ("s", "r", "sp", "sk", "rp", "rk"))
    total_s, total_r, total_e = est["total_s"], est["total_r"], est["total_e"]
    audited = s + r
    overall = not attributes
    nan = np.full(g, np.nan)
    unknown_s, unknown_r = (s - sk).astype(int), (r - rk).astype(int)
    unknown_sel = np.array([f"{a} selected case(s) without a result left out" if a else "" for a in unknown_s],
                           dtype=object)
    unknown_rnd = np.array([f"{b} random case(s) without a result left out" if b else "" for b in unknown_r],
                           dtype=object)
    status_note = np.full(g, f"{left_out} case(s) with a status other than ok left out" if left_out else "",
                          dtype=object)
    out: list[tuple[str, MetricBlock]] = []

    def add(metric: str, *, n: np.ndarray, ci: tuple[np.ndarray, np.ndarray], count: np.ndarray,
            notes: tuple[Any, ...] = (), evidence: Evidence | None = None, **kw: Any) -> None:
        out.append((metric, compare_groups(
            metric, attributes, labels, reference=ref, rows=audited, n=n, value=est[metric], ci=ci, count=count,
            statistics=spec, reasons=group_notes(*notes, status_note), evidence=evidence, **kw,
        )))

    def draws(metric: str) -> np.ndarray | None:
        return None if boot is None else boot[metric]

    def conditional(k: np.ndarray, other: np.ndarray, metric: str) -> Evidence | None:
        """Test of ``k / (k + other)`` against the reference: a ratio of two groups' ratios equal to 1."""
        if ref is None:
            return None
        p, test = two_proportion_test(k, k + other, np.full(g, k[ref]), np.full(g, k[ref] + other[ref]))
        return Evidence(p, np.char.add(test.astype(str), " (conditional)").astype(object),
                        bootstrap_se(draws(metric), ref), draws=draws(metric))

    if not overall:
        add("selected_share", n=total_s, count=s, ci=wilson_interval(s, total_s, alpha), compare=False)
        add("random_share", n=total_r, count=r, ci=wilson_interval(r, total_r, alpha), compare=False)
        add("selection_ratio", n=audited, count=s, den=nan,
            ci=katz_ratio_interval(s, total_s, r, total_r, alpha),
            notes=(np.where(r == 0, "undefined: no random cases in this group", ""),),
            evidence=conditional(s, r, "selection_ratio"))
    if has_truth:
        for metric, k, nn, what, unknown in (("base_rate", rp, rk, "random", unknown_rnd),
                                             ("hit_rate", sp, sk, "selected", unknown_sel)):
            evidence = None if ref is None else proportion_evidence(k, nn, ref, alpha, draws=draws(metric))
            add(metric, n=nn, count=k, ci=wilson_interval(k, nn, alpha),
                notes=(np.where(nn == 0, f"undefined: no {what} cases with a known result", ""), unknown),
                evidence=evidence)
        if not overall:
            add("error_share", n=total_e, count=rp, den=rk, den_name="random cases with a result",
                ci=wilson_interval(rp, total_e, alpha), compare=False,
                notes=(np.where(total_e == 0, "undefined: no errors found in the random sample", ""), unknown_rnd))
            add("equal_burden", n=audited, count=s, den=rk, den_name="random cases with a result",
                ci=katz_ratio_interval(s, total_s, rp, total_e, alpha),
                notes=(np.where(rp == 0, "undefined: no errors found at random in this group", ""), unknown_rnd),
                evidence=conditional(s, rp, "equal_burden"))
            lo, hi = newcombe_difference_interval(s, total_s, rp, total_e, alpha)
            add("burden_gap", n=audited, count=s, den=rk, den_name="random cases with a result",
                ci=(lo, hi), compare=False,
                notes=(np.where(total_e == 0, "undefined: no errors found in the random sample", ""), unknown_rnd))
    if overall:
        ci = (est["population_selection_rate"], est["population_selection_rate"])  # S / N: both known exactly
    else:
        lo, hi = katz_ratio_interval(s, total_s, r, total_r, alpha)
        ci = (lo * total_s / population, hi * total_s / population)
    add("population_selection_rate", n=audited, count=s, den=nan, ci=ci,
        notes=(np.where(r == 0, "undefined: no random cases in this group, so no estimate of its size", ""),),
        evidence=conditional(s, r, "population_selection_rate"))
    if has_truth:
        clipped_fn = np.where(est["fn_raw"] < 0, "FN clipped to 0: the random sample finds fewer errors in this "
                              "group than were found among its selected cases", "")
        clipped_tn = np.where(est["tn_raw"] < 0, "TN clipped to 0: more selected cases than the estimated group "
                              "size", "")
        for metric, denominator, what in (
            ("population_false_positive_rate", est["fp"] + est["tn"], "no estimated cases without an error"),
            ("population_false_negative_rate", est["fn"] + est["tp"], "no estimated errors"),
        ):
            cause = np.where(r == 0, "undefined: no random cases in this group",
                             np.where(rk == 0, "undefined: no random cases with a known result",
                                      np.where((sk == 0) & (s > 0), "undefined: no selected cases with a known result",
                                               np.where(denominator == 0, f"undefined: {what}", ""))))
            why = np.where(np.isnan(est[metric]), cause, "")
            metric_draws = draws(metric)
            if metric_draws is not None:
                lo, hi, used = percentile_interval(metric_draws, alpha)
                total = metric_draws.shape[0]
                boot_note = np.array([f"interval from {u} of {total} bootstrap draws (the others undefined)"
                                      if 0 < u < total else "" for u in used], dtype=object)
                ci = (lo, hi)
            else:
                ci = (nan.copy(), nan.copy())
                boot_note = np.full(g, "no interval: statistics.bootstrap is 0", dtype=object)
            evidence = (bootstrap_evidence(est[metric], metric_draws, ref)
                        if ref is not None and metric_draws is not None else None)
            add(metric, n=audited, count=nan, den=np.minimum(rk, sk),
                den_name="random or selected cases with a result", ci=ci,
                notes=(why, clipped_fn, clipped_tn, unknown_sel, unknown_rnd, boot_note), evidence=evidence)
    return out

