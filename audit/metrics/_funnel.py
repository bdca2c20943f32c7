"""Stage funnels: where along the data journey a group's share shifts.

A case travels a *data journey*: it is part of the population, passes intake
(or is quarantined), is handed to the engine (or is quarantined there), is
decided, perhaps reviewed by a caseworker, and ends with a final decision.
Published audits of selection processes (Algorithm Audit's audit of the Dutch
student-grant control: population -> risk category -> selected -> outcome)
measure the *demographic shift* at each stage: a group that is 20 % of the
population but 33 % of those refused has been shifted somewhere along the
way. A *funnel* shows where.

Each stage has the cases *entering* it and the cases *leaving* it (a subset
of those entering, and of the population). For every group of every
attribute set and every stage the funnel gives:

* ``share_in`` and ``share_out``: the group's share of the cases entering and
  leaving the stage (Wilson intervals);
* ``rate``: the group's rate at the stage, ``leaving / entering`` (Wilson
  interval): the pass rate of a check, the selection rate of a decision;
* the *shift* against the starting population: ``shift = share_out -
  population_share`` and ``shift_ratio = share_out / population_share``
  (intervals from the Wilson interval of ``share_out``, the population share
  being the census of the run's population, known exactly);
* a test of the shift: under "no shift" the cases leaving the stage are a
  random draw from the population, so the group's cumulative rate of
  reaching this point (``leaving_g / population_g``) equals the rest's. The
  pooled two-proportion z-test (Fisher's exact test for small expected
  counts) of group against rest tests exactly that; the first stage (the
  population) is not tested. The funnel's p-values are corrected together
  with the run's correction method (``statistics.correction``, Holm by
  default) as one family of their own: ``correction`` and ``m`` say so.

Small groups are suppressed as everywhere in Insyn: a group whose population
count, or any of whose entering or leaving counts, is between 1 and
``min_group_size - 1`` is suppressed at every stage (a count hidden at one
stage could otherwise be recovered from the next stage's entering count),
and secondary suppression hides further groups of the attribute set until no
hidden count can be recovered from the published ones. Suppressed rows carry
no count, share, rate or test, only the reason. Cells suppressed *at the
source* (a published stage table, :mod:`audit._cells`) are NaN with the
reason :data:`SOURCE_SUPPRESSED`.

The funnel is computed from *stage counts* (:data:`STAGE_COUNT_COLUMNS`),
which come either from the cases of a run (:func:`stage_counts` over
:class:`FunnelStage` masks, :func:`journey_stages` for the steps a run has)
or from a published stage table without case data
(:func:`read_stage_table`, long or wide); both give the same numbers from
the same counts.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit._arrays import codes_of
from audit._ids import ids_in, reindex_by_id
from audit._cells import DEFAULT_SUPPRESSION_MARKERS, parse_cells
from audit.exceptions import DataError
from audit.metrics._groups import attribute_sets, group_labels
from audit.metrics._intervals import wilson_interval
from audit.metrics._significance import adjust_pvalues, two_proportion_test
from audit.metrics._statistics import GROUP_SEPARATOR
from audit.metrics._table import SOURCE_SUPPRESSED, secondary_suppression, statistics_spec
from audit.spec import StatisticsSpec

__all__ = [
    "FUNNEL_COLUMNS",
    "FUNNEL_STAGES",
    "FunnelStage",
    "STAGE_COUNT_COLUMNS",
    "TOTAL_GROUP",
    "funnel",
    "funnel_from_cases",
    "journey_stages",
    "read_stage_table",
    "stage_counts",
]

FUNNEL_STAGES: tuple[str, ...] = ("population", "intake", "engine_input", "decision", "review", "final")
"""The stages of a run's funnel, in journey order (a run has ``review`` only when the spec has ``review:``)."""

STAGE_COUNT_COLUMNS: tuple[str, ...] = ("stage", "attributes", "group", "entering", "leaving")
"""Columns of a stage-count table: ``attributes`` is the attribute set joined with `` & ``; NaN counts are
suppressed at the source."""

TOTAL_GROUP = "(total)"
"""The group label of a stage's total in a stage-count table (optional: else the groups are summed)."""

FUNNEL_COLUMNS: tuple[str, ...] = (
    "stage", "stage_index", "attributes", "group", "entering", "leaving",
    "share_in", "share_in_ci_low", "share_in_ci_high", "share_out", "share_out_ci_low", "share_out_ci_high",
    "rate", "rate_ci_low", "rate_ci_high", "population_share",
    "shift", "shift_ci_low", "shift_ci_high", "shift_ratio", "shift_ratio_ci_low", "shift_ratio_ci_high",
    "test", "p_value", "p_adjusted", "suppressed", "reason",
)
"""Columns of a funnel table, in order (one row per stage, attribute set and group)."""

_FLOATS = ("share_in", "share_in_ci_low", "share_in_ci_high", "share_out", "share_out_ci_low", "share_out_ci_high",
           "rate", "rate_ci_low", "rate_ci_high", "population_share", "shift", "shift_ci_low", "shift_ci_high",
           "shift_ratio", "shift_ratio_ci_low", "shift_ratio_ci_high", "p_value", "p_adjusted")


@dataclass(frozen=True)
class FunnelStage:
    """One stage of a funnel over cases: which cases enter it and which leave it.

    Attributes
    ----------
    name : str
        The stage (a journey step: ``population``, ``intake``, ...).
    entering, leaving : numpy.ndarray of bool
        Per case (aligned with the case frame): the case enters / leaves the
        stage. A case that leaves must have entered.
    """

    name: str
    entering: np.ndarray
    leaving: np.ndarray


def journey_stages(
    final: pd.DataFrame,
    *,
    intake_ids: Any,
    engine_ids: Any,
    decisions: pd.DataFrame,
    selected: Sequence[str],
    review_labels: Sequence[str] | None = None,
) -> list[FunnelStage]:
    """The funnel stages of a run over cases, aligned with its final frame (one row per case).

    ``population``: every case. ``intake``: enter all, leave those not
    quarantined at intake. ``engine_input``: enter those, leave those the
    engine was given. ``decision``: enter those, leave those the engine
    decided (status ``ok``) with an outcome in ``selected``. ``review`` (only
    with ``review_labels``, i.e. when the run has a review): enter the cases
    the engine referred, leave those whose final outcome is in ``selected``.
    ``final``: enter the cases with a final decision (status ``ok``), leave
    those whose final outcome is in ``selected``.

    Parameters
    ----------
    final : pandas.DataFrame
        The run's final frame (``decisions.parquet``): ``case_id``,
        ``final_outcome``, ``status``, in population order.
    intake_ids, engine_ids : array_like
        Case ids of the cases that passed intake, and of the cases the engine was given.
    decisions : pandas.DataFrame
        The engine's decisions: ``case_id``, ``outcome``, ``status``.
    selected : sequence of str
        The outcomes the funnel follows (e.g. ``["deny"]``).
    review_labels : sequence of str, optional
        The outcomes routed to review; None when the run has no review step.

    Returns
    -------
    list of FunnelStage
    """
    ids = final["case_id"].astype("str")
    every = np.ones(len(final), dtype=bool)
    passed = ids_in(ids, intake_ids)
    given = ids_in(ids, engine_ids) & passed
    d = reindex_by_id(decisions.assign(case_id=decisions["case_id"].astype("str")), "case_id", ids, first=True)
    decided = given & (d["status"] == "ok").to_numpy()
    outcome = d["outcome"].astype("str")  # asked in Arrow, not as a Python string per case
    final_ok = (final["status"] == "ok").to_numpy()
    final_sel = final_ok & final["final_outcome"].isin(list(selected)).to_numpy()
    stages = [
        FunnelStage("population", every, every),
        FunnelStage("intake", every, passed),
        FunnelStage("engine_input", passed, given),
        FunnelStage("decision", given, decided & outcome.isin(list(selected)).to_numpy(dtype=bool)),
    ]
    if review_labels is not None:
        referred = decided & outcome.isin(list(review_labels)).to_numpy(dtype=bool)
        stages.append(FunnelStage("review", referred, referred & final_sel))
    stages.append(FunnelStage("final", final_ok, final_sel))
    return stages


def stage_counts(
    frame: pd.DataFrame, stages: Sequence[FunnelStage], sensitive_features: Sequence[str],
    intersections: Sequence[Sequence[str]] = (),
) -> pd.DataFrame:
    """Count the cases entering and leaving each stage by group (:data:`STAGE_COUNT_COLUMNS`).

    Groups are those of each sensitive feature and each intersection (a
    missing value is the group ``(missing)``, as in the metrics).

    Raises
    ------
    DataError
        When a stage's masks do not match the frame, or a case leaves a stage it did not enter.
    """
    masks = []
    for st in stages:
        ent, lea = np.asarray(st.entering, dtype=bool), np.asarray(st.leaving, dtype=bool)
        if ent.shape != (len(frame),) or lea.shape != (len(frame),):
            raise DataError(f"funnel stage {st.name!r}: expected one entering and one leaving flag per case "
                            f"({len(frame)}). Got {ent.shape[0]} and {lea.shape[0]}.")
        if (lea & ~ent).any():
            raise DataError(f"funnel stage {st.name!r}: {int((lea & ~ent).sum())} case(s) leave the stage without "
                            "entering it. Expected the cases leaving a stage to be among those entering it.")
        masks.append((st.name, ent, lea))
    coded = {f: _codes(frame, f) for f in sensitive_features}
    keyed = []
    for attrs in attribute_sets(list(sensitive_features), intersections)[1:]:
        codes, names = coded[attrs[0]]
        for a in attrs[1:]:  # combine the codes, not the strings: one pass over the cases per attribute
            c2, n2 = coded[a]
            combined = codes.astype(np.int64) * len(n2) + c2
            present = np.flatnonzero(np.bincount(combined, minlength=len(names) * len(n2)))
            lookup = np.zeros(len(names) * len(n2), dtype=np.int64)
            lookup[present] = np.arange(present.size)
            codes = lookup[combined]
            names = [f"{names[i // len(n2)]}{GROUP_SEPARATOR}{n2[i % len(n2)]}" for i in present]
        order = np.argsort(np.asarray(names, dtype=object), kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        keyed.append((GROUP_SEPARATOR.join(attrs), rank[codes], [names[i] for i in order]))
    stage_col: list[str] = []
    attrs_col: list[str] = []
    group_col: list[str] = []
    entering: list[np.ndarray] = []
    leaving: list[np.ndarray] = []
    for name, ent, lea in masks:  # one frame at the end: a frame per stage and grouping cost more than the counts
        for attrs_text, codes, groups in keyed:
            stage_col += [name] * len(groups)
            attrs_col += [attrs_text] * len(groups)
            group_col += groups
            entering.append(np.bincount(codes, weights=ent, minlength=len(groups)))
            leaving.append(np.bincount(codes, weights=lea, minlength=len(groups)))
    if not entering:
        return pd.DataFrame({c: [] for c in STAGE_COUNT_COLUMNS})
    return pd.DataFrame({
        "stage": pd.array(stage_col, dtype="str"), "attributes": pd.array(attrs_col, dtype="str"),
        "group": pd.array(group_col, dtype="str"),
        "entering": np.concatenate(entering).astype("float64"), "leaving": np.concatenate(leaving).astype("float64"),
    })[list(STAGE_COUNT_COLUMNS)]


def _codes(frame: pd.DataFrame, feature: str) -> tuple[np.ndarray, list[str]]:
    """Group code per case and the group labels of one sensitive feature (labels as in the metrics)."""
    raw, uniques = codes_of(frame[feature], missing_code=True)  # a missing value is a group, as in the metrics
    labels = group_labels(pd.DataFrame({feature: pd.Series(uniques, dtype=frame[feature].dtype)}), [feature])[feature]
    label_codes, names = pd.factorize(labels.to_numpy(dtype=object), sort=True)
    return label_codes[raw], [str(n) for n in names]


def funnel_from_cases(
    frame: pd.DataFrame, stages: Sequence[FunnelStage], sensitive_features: Sequence[str], *,
    intersections: Sequence[Sequence[str]] = (), statistics: StatisticsSpec | Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The funnel of cases over ``stages``: :func:`stage_counts`, then :func:`funnel`."""
    return funnel(stage_counts(frame, stages, sensitive_features, intersections), statistics)


def _hidden_groups(counts: pd.DataFrame, groups: list[str], min_n: int) -> tuple[np.ndarray, list[str]]:
    """Groups of one attribute set suppressed at every stage, and why (primary, then secondary)."""
    small = (counts[["entering", "leaving"]] >= 1) & (counts[["entering", "leaving"]] < min_n)
    by_group = small.any(axis=1).groupby(counts["group"]).any().reindex(groups, fill_value=False)
    first = counts.loc[counts["stage"] == counts["stage"].iloc[0]].set_index("group")["entering"].reindex(groups)
    tiny = (first < min_n).fillna(False).to_numpy()
    primary = by_group.to_numpy() | tiny
    source = first.isna().to_numpy()
    hidden = secondary_suppression(first.fillna(0).to_numpy(), primary | source, min_n) & ~source
    why = []
    for i in range(len(groups)):
        if tiny[i]:
            why.append(f"suppressed: the group has fewer than min_group_size {min_n} cases")
        elif primary[i]:
            why.append(f"suppressed: a count of the group at some stage is below min_group_size {min_n}")
        elif hidden[i]:
            why.append("suppressed (secondary suppression): another group of this attribute is suppressed, and "
                       "its counts could otherwise be recovered from this group's")
        else:
            why.append("")
    return hidden, why


def funnel(counts: pd.DataFrame, statistics: StatisticsSpec | Mapping[str, Any] | None = None, *,
           correct: bool = True) -> pd.DataFrame:
    """The funnel measures from stage counts (see the module docstring).

    Parameters
    ----------
    counts : pandas.DataFrame
        :data:`STAGE_COUNT_COLUMNS`; stages in journey order (the first is the
        starting population); rows with group :data:`TOTAL_GROUP` give a
        stage's totals (else the groups are summed, and a stage with a cell
        suppressed at the source has no total: shares are NaN with a reason).
    statistics : StatisticsSpec or mapping, optional
        ``alpha``, ``min_group_size`` and ``correction``.
    correct : bool, default True
        Correct the funnel's p-values together (``p_adjusted``) with
        ``statistics.correction``; False leaves ``p_adjusted`` NaN.

    Returns
    -------
    pandas.DataFrame
        :data:`FUNNEL_COLUMNS`; attributes as lists of column names.

    Raises
    ------
    DataError
        When a column is missing, a count is negative, more cases leave a stage than enter it, a group has
        two rows at one stage, a group's count is above its stage's total row, or more cases of a group
        leave a stage than its population (the first stage) holds.
    """
    spec = statistics_spec(statistics)
    missing = [c for c in STAGE_COUNT_COLUMNS if c not in counts.columns]
    if missing:
        raise DataError(f"stage counts: no column {missing[0]!r}. Expected columns {', '.join(STAGE_COUNT_COLUMNS)}. "
                        f"Got {', '.join(map(str, counts.columns))}.")
    c = counts.copy()
    c["stage"], c["attributes"], c["group"] = (c[k].astype("str") for k in ("stage", "attributes", "group"))
    for col in ("entering", "leaving"):
        c[col] = pd.to_numeric(c[col], errors="coerce").astype("float64")
        bad = c[col] < 0
        if bad.any():
            r = c.loc[bad].iloc[0]
            raise DataError(f"stage counts: {col} of group {r['group']!r} at stage {r['stage']!r} is {r[col]:g}. "
                            "Expected a count >= 0.")
    over = c["leaving"] > c["entering"]
    if over.any():
        r = c.loc[over].iloc[0]
        raise DataError(f"stage counts: at stage {r['stage']!r}, {r['leaving']:g} cases of group {r['group']!r} "
                        f"leave but {r['entering']:g} enter. Expected leaving <= entering.")
    dup = c.duplicated(["attributes", "group", "stage"])
    if dup.any():
        r = c.loc[dup].iloc[0]
        raise DataError(f"stage counts: group {r['group']!r} of {r['attributes']!r} has two rows at stage "
                        f"{r['stage']!r}. Expected one row per attribute set, group and stage.")
    given = c.loc[c["group"] == TOTAL_GROUP, ["attributes", "stage", "entering", "leaving"]]
    if len(given):
        both = c.loc[c["group"] != TOTAL_GROUP].merge(given, on=["attributes", "stage"], suffixes=("", "_total"))
        for col in ("entering", "leaving"):
            over = both[col] > both[f"{col}_total"]
            if over.any():
                r = both.loc[over].iloc[0]
                raise DataError(f"stage counts: at stage {r['stage']!r}, group {r['group']!r} has {col} "
                                f"{r[col]:g} but the stage's total row ({TOTAL_GROUP!r}) has {col} "
                                f"{r[f'{col}_total']:g}. Expected no group above its stage's total.")
    stages = list(dict.fromkeys(c["stage"]))
    first = c.loc[c["stage"] == stages[0], ["attributes", "group", "leaving"]] if stages else c.iloc[:0]
    later = c.merge(first, on=["attributes", "group"], suffixes=("", "_population"))
    over = later["leaving"] > later["leaving_population"]
    if over.any():  # the cases leaving a stage are a subset of the population
        r = later.loc[over].iloc[0]
        raise DataError(f"stage counts: at stage {r['stage']!r}, {r['leaving']:g} cases of group {r['group']!r} "
                        f"leave, more than its {r['leaving_population']:g} at the first stage {stages[0]!r} (the "
                        "population). Expected the cases leaving any stage to be part of the population.")
    out: list[pd.DataFrame] = []
    for attrs, part in c.groupby("attributes", sort=False):
        out.append(_attribute_funnel(str(attrs), part, stages, spec))
    if not out:
        return pd.DataFrame({k: [] for k in FUNNEL_COLUMNS})
    table = pd.concat(out, ignore_index=True)
    table["p_adjusted"] = adjust_pvalues(table["p_value"].to_numpy(dtype=float), spec.correction) if correct \
        else np.nan
    return table[list(FUNNEL_COLUMNS)]


def _attribute_funnel(attrs: str, part: pd.DataFrame, stages: list[str], spec: StatisticsSpec) -> pd.DataFrame:
    """The funnel rows of one attribute set: every stage at once, as arrays of stage x group."""
    alpha, min_n = spec.alpha, spec.min_group_size
    totals = part.loc[part["group"] == TOTAL_GROUP].set_index("stage")
    part = part.loc[part["group"] != TOTAL_GROUP]
    groups = list(dict.fromkeys(part["group"]))
    hidden, why = _hidden_groups(part, groups, min_n)
    n_stages, n_groups = len(stages), len(groups)
    stage_pos = pd.Index(stages).get_indexer(part["stage"])
    group_pos = pd.Index(groups).get_indexer(part["group"])
    e = np.full((n_stages, n_groups), np.nan)
    l_ = np.full((n_stages, n_groups), np.nan)
    e[stage_pos, group_pos] = part["entering"].to_numpy(dtype=float)
    l_[stage_pos, group_pos] = part["leaving"].to_numpy(dtype=float)
    e_tot = np.array([_total(totals, stage, "entering", e[i]) for i, stage in enumerate(stages)])[:, None]
    l_tot = np.array([_total(totals, stage, "leaving", l_[i]) for i, stage in enumerate(stages)])[:, None]
    pop, pop_total = l_[0], float(l_tot[0, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        share_in, share_out = e / e_tot, l_ / l_tot
        rate, pop_share = l_ / e, np.broadcast_to(pop / pop_total, e.shape)
        shift, ratio = share_out - pop_share, share_out / pop_share
    si, so, ra = wilson_interval(e, e_tot, alpha), wilson_interval(l_, l_tot, alpha), wilson_interval(l_, e, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        shift_ci = (so[0] - pop_share, so[1] - pop_share)
        ratio_ci = (so[0] / pop_share, so[1] / pop_share)
    p = np.full(e.shape, np.nan)
    test = np.full(e.shape, "", dtype=object)
    if n_stages > 1:  # the first stage is the population itself: nothing to test
        p[1:], test[1:] = two_proportion_test(l_[1:], pop, l_tot[1:] - l_[1:], pop_total - pop)
        nobody = ~(l_tot[:, 0] > 0)  # nobody leaves the step: no share to shift, nothing to test
        nobody[0] = False
        p[nobody], test[nobody] = np.nan, ""
    reasons = [_reason(hidden[g], why[g], i, e[i, g], l_[i, g], e_tot[i, 0], l_tot[i, 0], p[i, g], pop_share[i, g],
                       pop[g])
               for i in range(n_stages) for g in range(n_groups)]
    drop = hidden | ~np.isfinite(e) | ~np.isfinite(l_)
    vals = {"share_in": share_in, "share_in_ci_low": si[0], "share_in_ci_high": si[1], "share_out": share_out,
            "share_out_ci_low": so[0], "share_out_ci_high": so[1], "rate": rate, "rate_ci_low": ra[0],
            "rate_ci_high": ra[1], "population_share": pop_share, "shift": shift, "shift_ci_low": shift_ci[0],
            "shift_ci_high": shift_ci[1], "shift_ratio": ratio, "shift_ratio_ci_low": ratio_ci[0],
            "shift_ratio_ci_high": ratio_ci[1], "p_value": p}
    for k in ("shift_ci_low", "shift_ci_high", "shift_ratio_ci_low", "shift_ratio_ci_high"):
        vals[k] = np.array(vals[k], dtype=float)
        vals[k][0] = np.nan  # the population has no shift against itself
    row = {k: np.where(drop | ~np.isfinite(v), np.nan, v).ravel() for k, v in vals.items()}
    names = attrs.split(GROUP_SEPARATOR)
    return pd.DataFrame({
        "stage": np.repeat(np.array(stages, dtype=object), n_groups),
        "stage_index": np.repeat(np.arange(n_stages, dtype=np.int64), n_groups),
        "attributes": [names] * (n_stages * n_groups), "group": groups * n_stages,
        "entering": np.where(drop, np.nan, e).ravel(), "leaving": np.where(drop, np.nan, l_).ravel(),
        **row, "test": np.where(drop | np.isnan(p), "", test).astype(object).ravel(),
        "suppressed": np.tile(hidden, n_stages), "reason": reasons,
    })


def _reason(hidden: bool, why: str, index: int, e: float, leaving: float, e_tot: float, l_tot: float, p: float,
            pop_share: float, pop: float) -> str:
    """Why a funnel cell is empty or partly undefined ("" when every value is defined)."""
    if hidden:
        return why
    if not np.isfinite(e) or not np.isfinite(leaving):
        return SOURCE_SUPPRESSED
    notes = []
    if not np.isfinite(e_tot) or not np.isfinite(l_tot):
        notes.append("shares undefined: the stage total is unknown (a cell is suppressed at source)")
    elif l_tot == 0:
        notes.append("share leaving and shift undefined: no case leaves the step")
    if e == 0:
        notes.append("rate undefined: no case of the group enters the stage")
    if index > 0 and not np.isfinite(p) and np.isfinite(pop_share) and l_tot > 0:
        notes.append("no test: the group or the rest has no case in the population")
    if pop == 0 or not np.isfinite(pop):
        notes.append("no shift: the group's population count is unknown or 0")
    return "; ".join(notes)


def _total(totals: pd.DataFrame, stage: str, col: str, values: np.ndarray) -> float:
    """A stage's total: the total row when given, else the sum of the groups (NaN when a cell is unknown)."""
    if stage in totals.index and np.isfinite(float(totals.loc[stage, col])):
        return float(totals.loc[stage, col])
    return float(np.sum(values)) if np.isfinite(values).all() else float("nan")


def read_stage_table(
    source: str | Path | pd.DataFrame,
    *,
    stages: Sequence[str] | None = None,
    group: str = "group",
    attribute: str | None = None,
    markers: Sequence[str] = DEFAULT_SUPPRESSION_MARKERS,
    total: str | None = None,
) -> pd.DataFrame:
    """Stage counts (:data:`STAGE_COUNT_COLUMNS`) from a published stage table, without case data.

    Two shapes are read:

    *wide*: one row per group, one column of counts per stage, named by
    ``stages`` in journey order. Each stage's cases enter the next one: a
    stage's ``entering`` is the previous stage's count, the first stage (the
    population) enters and leaves with its own count.

    *long*: a column ``stage`` and either one ``count`` column (stages in
    order of first appearance, chained as in the wide shape; ``stages``
    orders or selects them) or ``entering`` and ``leaving`` columns.

    ``group`` names the group column; ``attribute`` names a column that says
    which attribute each row's group belongs to (else the attribute is the
    group column's name). Suppressed cells (``..``, ``x``, ``<5``, blank, ...,
    see :mod:`audit._cells`) become NaN (suppressed at the source). A row
    whose group is ``total`` gives the stage's total.

    Raises
    ------
    DataError
        Naming the file, the column and the value, when a column is missing,
        a cell is neither a number nor a suppression marker, or a stage is named twice.
    """
    where = "<table>" if isinstance(source, pd.DataFrame) else str(source)
    table = source.copy() if isinstance(source, pd.DataFrame) else _read(Path(source))
    table.columns = [str(c) for c in table.columns]
    if group not in table.columns:
        raise DataError(f"{where}: no group column {group!r}. Columns: {', '.join(table.columns)}.")
    if attribute is not None and attribute not in table.columns:
        raise DataError(f"{where}: no attribute column {attribute!r}. Columns: {', '.join(table.columns)}.")
    attrs = table[attribute].astype("str") if attribute else pd.Series(group, index=table.index)
    if table.empty:
        raise DataError(f"{where}: the stage table has no rows. Expected one row per group (wide) or per group and "
                        "stage (long).")
    labels = table[group].astype("str").str.strip()
    blank = (table[group].isna() | (labels == "")).to_numpy()
    if blank.any():
        i = int(np.flatnonzero(blank)[0])
        raise DataError(f"{where}: column {group!r}, row {i + 2}: the group is empty. Expected a group label on "
                        "every row.")
    if total is not None:
        labels = labels.where(labels != total, TOTAL_GROUP)

    def cells(col: str) -> np.ndarray:
        parsed = parse_cells(table[col], markers=markers)
        if parsed.bad.any():
            i = int(np.flatnonzero(parsed.bad)[0])
            raise DataError(f"{where}: column {col!r}, row {i + 2} (group {labels.iloc[i]!r}): "
                            f"{table[col].iloc[i]!r} is not a count. Expected a number or a suppression marker "
                            f"({', '.join(repr(m) for m in markers if m)} or <k).")
        return parsed.values

    if "stage" in table.columns:
        names = table["stage"].astype("str").str.strip()
        order = list(stages) if stages else list(dict.fromkeys(names))
        unknown = [s for s in order if s not in set(names)]
        if unknown:
            raise DataError(f"{where}: stage {unknown[0]!r} is not in column 'stage'. "
                            f"Stages: {', '.join(dict.fromkeys(names))}.")
        if {"entering", "leaving"} <= set(table.columns):
            long = pd.DataFrame({"stage": names, "attributes": attrs, "group": labels,
                                 "entering": cells("entering"), "leaving": cells("leaving")})
            long = long.loc[long["stage"].isin(order)]
            long["_o"] = long["stage"].map({s: i for i, s in enumerate(order)})
            return long.sort_values("_o", kind="stable").drop(columns="_o")[list(STAGE_COUNT_COLUMNS)] \
                .reset_index(drop=True)
        if "count" not in table.columns:
            raise DataError(f"{where}: a long stage table needs a column 'count' or columns 'entering' and "
                            f"'leaving'. Columns: {', '.join(table.columns)}.")
        values = cells("count")
        wide = pd.DataFrame({"attributes": attrs, "group": labels, "stage": names, "count": values})
        dup = wide.duplicated(["attributes", "group", "stage"])
        if dup.any():
            r = wide.loc[dup].iloc[0]
            raise DataError(f"{where}: group {r['group']!r} has two rows at stage {r['stage']!r}. "
                            "Expected one count per group and stage.")
        wide = wide.pivot(index=["attributes", "group"], columns="stage", values="count").reset_index()
        return _chain(wide, order)
    if not stages:
        raise DataError(f"{where}: a wide stage table needs the stage columns in journey order (stages). "
                        f"Columns: {', '.join(table.columns)}.")
    absent = [s for s in stages if s not in table.columns]
    if absent:
        raise DataError(f"{where}: no stage column {absent[0]!r}. Columns: {', '.join(table.columns)}.")
    if len(set(stages)) != len(stages):
        raise DataError(f"{where}: stages name a column twice. Got {list(stages)}.")
    wide = pd.DataFrame({"attributes": attrs, "group": labels, **{s: cells(s) for s in stages}})
    return _chain(wide, list(stages))


def _chain(wide: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    parts = []
    for i, s in enumerate(order):
        prev = order[i - 1] if i else s
        parts.append(pd.DataFrame({"stage": s, "attributes": wide["attributes"].to_numpy(),
                                   "group": wide["group"].to_numpy(), "entering": wide[prev].to_numpy(dtype=float),
                                   "leaving": wide[s].to_numpy(dtype=float)}))
    return pd.concat(parts, ignore_index=True)[list(STAGE_COUNT_COLUMNS)]


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: no such file. Expected a stage table (CSV, Excel or Parquet).")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".xlsx", ".xls"):
            return pd.read_excel(path, dtype=str)
        return pd.read_csv(path, dtype=str, keep_default_na=False, sep=None, engine="python")
    except (OSError, ValueError, csv.Error, pd.errors.ParserError) as exc:  # csv.Error: an empty file, no delimiter
        raise DataError(f"{path}: cannot read the stage table ({exc}). Expected a CSV file with a header row, "
                        "an Excel workbook or a Parquet file.") from None
