"""Public values: efficiency, service, professionalism and engagement, measured from decision logs.

Social services answer to public values, not to accuracy alone. Research on
the Swedish decision robots (Ranerup and Henriksen's value framework, used
by Svensson and Ranerup) names four that automation changes and that must
be followed over time:

*efficiency*
    how much of the work the robot does, and how fast applicants get an
    answer;
*service*
    who is routed to a person, and how long those applicants wait;
*professionalism*
    whether decisions follow the law, and how often caseworkers have to
    correct the robot;
*engagement*
    the applicant's own part: applying digitally or on paper, meetings with a
    caseworker, appeals, and the documents asked for and handed in.

Each value is measured by *indicators* that a decision log can hold
(:data:`INDICATORS`), per group as the metrics are (all cases, each
sensitive feature, each intersection), with an interval, and suppressed below
the spec's minimum group size. An indicator whose columns the data lacks is
not measured: it gets one row with no value and a reason that names the
missing columns, never a 0. The run stores the rows in ``results.json``
(``values``), the report's scorecard shows them, and ``insyn monitor``
keeps them in its history so that the trend page follows them by group.

Columns read (case frame or decision frame; dates as ``YYYY-MM-DD``):

=========================  =====================================================
``outcome``                the engine's decision (every run with an engine)
``final_outcome``          the decision after review
``truth_outcome``          the law's baseline (``truth:`` in the spec)
``decided_by``, ``override``  who decided; whether a caseworker overrode the robot
``days_to_decision``       days from application to decision, or ``applied_at``
                           and ``decided_at``
``channel``                ``digital`` or ``paper``
``meeting_held``           a meeting with a caseworker was held (yes/no)
``appealed``               the decision was appealed (yes/no)
``documents_requested``,   documents asked for and handed in (counts)
``documents_completed``
=========================  =====================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from audit._distributions import t_ppf
from audit._arrays import codes_of
from audit._ids import reindex_by_id
from audit.exceptions import DataError
from audit.metrics import MISSING_LABEL, wilson_interval

__all__ = ["DIMENSIONS", "INDICATORS", "Indicator", "VALUE_COLUMNS", "ValueSums", "public_values", "value_sums"]

DIMENSIONS: tuple[str, ...] = ("efficiency", "service", "professionalism", "engagement")
"""The four public values, in the order they are shown."""

VALUE_COLUMNS: tuple[str, ...] = (
    "dimension", "indicator", "attributes", "group", "n", "count", "value", "ci_low", "ci_high", "se",
    "suppressed", "reason", "columns",
)
"""Columns of :func:`public_values` (one row per indicator and group)."""

Note = tuple[str, int]
"""A note on values left out: its wording (``{}`` for the count) and the count (no note when 0)."""

_TRUE = {"true", "yes", "ja", "1", "y", "j", "t"}
_FALSE = {"false", "no", "nej", "0", "n", "f", ""}


@dataclass(frozen=True)
class Indicator:
    """One measurable indicator of a public value.

    Attributes
    ----------
    name : str
        The indicator's name (a rate ends in ``_rate``).
    dimension : str
        The public value it measures (one of :data:`DIMENSIONS`).
    kind : {"rate", "mean"}
        A share (count over n, Wilson interval) or a mean (t interval).
    description : str
        What it measures, in one sentence.
    needs : tuple of tuple of str
        Alternative column sets; the indicator is measured when the data
        holds every column of one of them.
    """

    name: str
    dimension: str
    kind: str
    description: str
    needs: tuple[tuple[str, ...], ...]

    def missing(self, columns: set[str]) -> list[str]:
        """The columns lacking for the first alternative that is closest to complete ([] when measurable)."""
        gaps = [[c for c in option if c not in columns] for option in self.needs]
        return min(gaps, key=len) if all(gaps) else []


INDICATORS: tuple[Indicator, ...] = (
    Indicator("automation_rate", "efficiency", "rate",
              "Share of decided applications that the engine decided on its own.", (("outcome",),)),
    Indicator("days_to_decision", "efficiency", "mean", "Mean days from application to decision.",
              (("days_to_decision",), ("applied_at", "decided_at"))),
    Indicator("routed_to_person_rate", "service", "rate",
              "Share of decided applications routed to a caseworker (a person decides).", (("outcome",),)),
    Indicator("days_to_decision_routed", "service", "mean",
              "Mean days from application to decision for applications routed to a caseworker.",
              (("outcome", "days_to_decision"), ("outcome", "applied_at", "decided_at"))),
    Indicator("agreement_rate", "professionalism", "rate",
              "Share of applications decided (not left with a caseworker) whose decision agrees with the law's "
              "baseline.",
              (("final_outcome", "truth_outcome"),)),
    Indicator("override_rate", "professionalism", "rate",
              "Share of the engine's own decisions that a caseworker changed.", (("outcome", "override", "review"),)),
    Indicator("digital_rate", "engagement", "rate", "Share of applications made digitally (not on paper).",
              (("channel",),)),
    Indicator("meeting_rate", "engagement", "rate", "Share of applications with a meeting held with a caseworker.",
              (("meeting_held",),)),
    Indicator("appeal_rate", "engagement", "rate", "Share of decided applications that were appealed.",
              (("appealed",),)),
    Indicator("documents_completed_rate", "engagement", "rate",
              "Share of the documents asked of applicants that they handed in.",
              (("documents_requested", "documents_completed"),)),
)
"""Every indicator, by public value (see the module docstring for the columns)."""

_READ: frozenset[str] = frozenset({c for ind in INDICATORS for option in ind.needs for c in option} | {"status"})
"""Every column an indicator reads (its alternatives' columns, and ``status``)."""


def _flag(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A yes/no column as 1.0 / 0.0 (NaN where missing); anything else is a data error naming the value."""
    s = frame[column]
    if pd.api.types.is_bool_dtype(s):
        return s.astype("float64").to_numpy()
    if pd.api.types.is_numeric_dtype(s):
        v = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64")
        return np.where(np.isnan(v), np.nan, (v != 0).astype("float64"))
    text = s.astype("string").str.strip().str.lower()
    out = np.full(len(s), np.nan)
    out[text.isin(_TRUE).fillna(False).to_numpy(dtype=bool)] = 1.0
    out[(text.isin(_FALSE) & text.ne("")).fillna(False).to_numpy(dtype=bool)] = 0.0
    bad = text.notna() & ~text.isin(_TRUE | _FALSE)
    if bad.any():
        value = s[bad.to_numpy()].iloc[0]
        raise DataError(f"the column {column!r} must hold yes/no values (true/false, yes/no, ja/nej, 1/0). "
                        f"Got {value!r} in {int(bad.sum())} row(s).")
    return out


def _days(frame: pd.DataFrame) -> tuple[np.ndarray, Note]:
    """Days from application to decision, and a note on the values left out (its wording and count)."""
    if "days_to_decision" in frame.columns:
        days = pd.to_numeric(frame["days_to_decision"], errors="coerce").to_numpy(dtype="float64")
        bad = ~np.isnan(days) & (days < 0)
        return np.where(bad, np.nan, days), ("{} negative days_to_decision left out", int(bad.sum()))
    applied = pd.to_datetime(frame["applied_at"], errors="coerce")
    decided = pd.to_datetime(frame["decided_at"], errors="coerce")
    days = ((decided - applied).dt.total_seconds() / 86400.0).to_numpy(dtype="float64")
    bad = ~np.isnan(days) & (days < 0)
    return np.where(bad, np.nan, days), ("{} decided_at before applied_at left out", int(bad.sum()))


class _Common:
    """What several indicators read of a frame, worked out once: decided cases, cases with an outcome, routed ones.

    ``review`` holds the outcomes that route a case to a caseworker.
    """

    def __init__(self, frame: pd.DataFrame, review: Sequence[str]) -> None:
        self.decided = np.ones(len(frame), dtype=bool)
        if "status" in frame.columns:
            self.decided = frame["status"].astype("string").fillna("").eq("ok").to_numpy(dtype=bool)
        outcome = (frame["outcome"].astype("string") if "outcome" in frame.columns
                   else pd.Series(pd.NA, index=frame.index, dtype="string"))
        self.has_outcome = self.decided & outcome.notna().to_numpy(dtype=bool)
        self.review = list(review)
        self.routed = outcome.isin(self.review).fillna(False).to_numpy(dtype=bool)


def _cells(ind: Indicator, frame: pd.DataFrame, common: _Common) -> tuple[np.ndarray, np.ndarray, Note]:
    """Per case: the numerator (or the value, for a mean), the weight in the denominator (0: not counted), a note."""
    decided, has_outcome, routed = common.decided, common.has_outcome, common.routed
    note: Note = ("", 0)
    if ind.name in ("automation_rate", "routed_to_person_rate"):
        hit = ~routed if ind.name == "automation_rate" else routed
        return hit.astype("float64"), has_outcome.astype("float64"), note
    if ind.name in ("days_to_decision", "days_to_decision_routed"):
        days, note = _days(frame)
        keep = ~np.isnan(days) & (routed if ind.name == "days_to_decision_routed" else True)
        return np.where(keep, days, 0.0), keep.astype("float64"), note
    if ind.name == "agreement_rate":
        final = frame["final_outcome"].astype("string")
        truth = frame["truth_outcome"].astype("string")
        both = (decided & final.notna().to_numpy(dtype=bool) & truth.notna().to_numpy(dtype=bool)
                & ~final.isin(common.review).fillna(False).to_numpy(dtype=bool))
        agree = (final == truth).fillna(False).to_numpy(dtype=bool)
        return (agree & both).astype("float64"), both.astype("float64"), note
    if ind.name == "override_rate":
        own = has_outcome & ~routed
        over = _flag(frame, "override")
        return np.where(own, np.nan_to_num(over), 0.0), own.astype("float64"), note
    if ind.name == "digital_rate":
        channel = frame["channel"].astype("string").str.strip().str.lower()
        known = channel.isin(["digital", "paper"]).fillna(False).to_numpy(dtype=bool)
        other = channel.notna() & ~channel.isin(["digital", "paper"])
        if other.any():
            raise DataError(f"the column 'channel' must hold digital or paper. Got {frame['channel'][other].iloc[0]!r} "
                            f"in {int(other.sum())} row(s).")
        return channel.eq("digital").fillna(False).to_numpy(dtype="float64"), known.astype("float64"), note
    if ind.name in ("meeting_rate", "appeal_rate"):
        flag = _flag(frame, "meeting_held" if ind.name == "meeting_rate" else "appealed")
        keep = ~np.isnan(flag) & (has_outcome if ind.name == "appeal_rate" else True)
        return np.where(keep, flag, 0.0), keep.astype("float64"), note
    if ind.name == "documents_completed_rate":
        asked = pd.to_numeric(frame["documents_requested"], errors="coerce").to_numpy(dtype="float64")
        given = pd.to_numeric(frame["documents_completed"], errors="coerce").to_numpy(dtype="float64")
        ok = np.isfinite(asked) & np.isfinite(given) & (asked > 0)
        bad = ok & ((given < 0) | (given > asked))
        if bad.any():
            raise DataError(f"the column 'documents_completed' must lie between 0 and documents_requested. "
                            f"Got {given[bad][0]:g} of {asked[bad][0]:g} in {int(bad.sum())} row(s).")
        return np.where(ok, given, 0.0), np.where(ok, asked, 0.0), note
    raise DataError(f"no computation for the indicator {ind.name!r}.")  # pragma: no cover - INDICATORS is closed


@dataclass(frozen=True)
class _Partition:
    """The cases split once into *cells* (one per combination of every grouping attribute's values).

    Every group of every attribute set (all cases, each feature, each
    intersection) is a union of cells, so an indicator's sums are counted
    once per cell (:func:`_sums` over ``cells``) and each group's sums are
    added up from its cells' sums: a few rows per group instead of a pass
    over the cases per attribute set.

    Attributes
    ----------
    cells : numpy.ndarray
        The cell of each case (``int64``).
    size : int
        How many cells there are (some may hold no case).
    sets : list of (attributes, group of each cell, group labels)
        Per attribute set, in the order :func:`value_sums` reports them.
    """

    cells: np.ndarray
    size: int
    sets: list[tuple[list[str], np.ndarray, list[str]]]


_DENSE_CELLS = 1 << 22
"""At most this many cells (and four per case) are numbered by arithmetic; more are numbered by sorting."""


def _sorted_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each case's code among a feature's values as text, sorted; a missing value is :data:`MISSING_LABEL`."""
    if not isinstance(values.dtype, pd.StringDtype):
        codes, uniques = pd.factorize(values.astype("string").fillna(MISSING_LABEL), sort=True)
        return codes.astype(np.int64), [str(u) for u in uniques]
    raw, uniques = codes_of(values)  # numbered once per column (the metrics and the report number it too)
    missing = raw < 0
    texts = [str(u) for u in uniques] + ([MISSING_LABEL] if missing.any() else [])
    names, rank = np.unique(np.array(texts, dtype=object), return_inverse=True)
    return rank.ravel().astype(np.int64)[np.where(missing, len(texts) - 1, raw)], [str(n) for n in names]


def _partition(frame: pd.DataFrame, sensitive: Sequence[str], intersections: Sequence[Sequence[str]]) -> _Partition:
    """Split the cases into cells and say which group of each attribute set every cell belongs to.

    A feature's groups are its values, sorted, with missing values as
    :data:`audit.metrics.MISSING_LABEL`; an intersection's groups are the
    combinations of its features' values that occur, labelled
    ``"a & b"`` and sorted by label, exactly as factorizing ``"a & b"`` per
    case would give them.
    """
    sets = [[a] for a in sensitive] + [list(i) for i in intersections]
    names = list(dict.fromkeys(a for attrs in sets for a in attrs))
    single: dict[str, tuple[np.ndarray, list[str]]] = {}
    for a in names:
        single[a] = _sorted_codes(frame[a])
    n = len(frame)
    widths = [max(1, len(single[a][1])) for a in names]
    dense = 1
    for w in widths:
        dense *= w
    value_of: dict[str, np.ndarray] = {}  # each cell's code of each feature
    if dense <= min(_DENSE_CELLS, 4 * n + 1024):  # cell = the features' codes as digits of one number
        cells = np.zeros(n, dtype=np.int64)
        stride = 1
        for a, w in zip(names, widths, strict=True):
            cells += single[a][0] * stride
            value_of[a] = (np.arange(dense, dtype=np.int64) // stride) % w
            stride *= w
        size = dense
    else:  # too many combinations to number them all: number those that occur
        cells = np.zeros(n, dtype=np.int64)
        for a in names:
            cells = np.unique(cells * len(single[a][1]) + single[a][0], return_inverse=True)[1].ravel()
        size = int(cells.max()) + 1 if n else 0
        first = np.zeros(size, dtype=np.int64)
        first[cells[::-1]] = np.arange(n - 1, -1, -1, dtype=np.int64)  # the first case of each cell
        value_of = {a: single[a][0][first] for a in names}
    occurs = np.bincount(cells, minlength=size) > 0
    out: list[tuple[list[str], np.ndarray, list[str]]] = [([], np.zeros(size, dtype=np.int64), ["all"])]
    for attrs in sets:
        if len(attrs) == 1:
            out.append((attrs, value_of[attrs[0]], single[attrs[0]][1]))
            continue
        label = {int(c): " & ".join(single[a][1][value_of[a][c]] for a in attrs)
                 for c in np.flatnonzero(occurs).tolist()}
        labels = sorted(set(label.values()))
        index = {text: i for i, text in enumerate(labels)}
        group = np.zeros(size, dtype=np.int64)  # a cell no case falls in adds nothing to any group
        for c, text in label.items():
            group[c] = index[text]
        out.append((attrs, group, labels))
    return _Partition(cells=cells, size=size, sets=out)


_SUMS = ("num", "den", "sq", "cases")
"""What each group of an indicator adds up: the numerator, the denominator, the sum of squares and the cases."""


def _sums(num: np.ndarray, den: np.ndarray, codes: np.ndarray, size: int) -> np.ndarray:
    """Per group (rows of the result): the four sums of :data:`_SUMS`."""
    counted = den > 0
    kept = np.where(counted, num, 0.0)
    return np.column_stack([np.bincount(codes, weights=kept, minlength=size),
                            np.bincount(codes, weights=den, minlength=size),
                            np.bincount(codes, weights=kept**2, minlength=size),
                            np.bincount(codes, weights=counted.astype("float64"), minlength=size)])


def _summarise(kind: str, sums: np.ndarray, labels: list[str], alpha: float) -> pd.DataFrame:
    """Value, interval and standard error per group from its sums (a Wilson interval for a rate, t for a mean)."""
    s_num, s_den, s_sq, cases = (sums[:, i] for i in range(4))
    size = len(labels)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "rate":
            value = s_num / s_den
            low, high = wilson_interval(s_num, s_den, alpha)
            se = np.sqrt(value * (1 - value) / s_den)
            n, count = s_den, s_num
        else:
            n = cases
            value = s_num / n
            se = np.sqrt(np.maximum((s_sq - n * value**2) / (n - 1), 0.0) / n)
            q = t_ppf(1 - alpha / 2, np.maximum(n - 1, 1))
            low, high = value - q * se, value + q * se
            count = np.full(size, np.nan)
    return pd.DataFrame({"group": labels, "n": n, "count": count, "value": value, "ci_low": np.asarray(low),
                         "ci_high": np.asarray(high), "se": se, "cases": cases})


@dataclass
class ValueSums:
    """The sums behind every public value of a run, by indicator, attribute set and group.

    Each indicator's value per group follows from four sums over its cases
    (:data:`_SUMS`), and sums of parts add up to the sums of the whole: a
    chunked run adds the sums of its chunks (``+``) and finishes once
    (:meth:`values`), exactly as :func:`public_values` does on the whole
    frame. Groups are kept by label, so chunks that meet different groups
    merge correctly.

    Attributes
    ----------
    measured : dict
        ``indicator -> {attributes (tuple) -> {group label -> sums (array of 4)}}``.
    unmeasured : dict
        ``indicator -> (reason, missing columns)`` for indicators the data cannot measure.
    notes : dict
        ``indicator -> (wording, count)`` of values left out.
    """

    measured: dict[str, dict[tuple[str, ...], dict[str, np.ndarray]]]
    unmeasured: dict[str, tuple[str, list[str]]]
    notes: dict[str, Note]

    def __add__(self, other: ValueSums) -> ValueSums:
        measured = {k: {a: dict(g) for a, g in v.items()} for k, v in self.measured.items()}
        for ind, by_attrs in other.measured.items():
            mine = measured.setdefault(ind, {})
            for attrs, groups in by_attrs.items():
                target = mine.setdefault(attrs, {})
                for label, sums in groups.items():
                    target[label] = target[label] + sums if label in target else sums
        unmeasured = {**other.unmeasured, **self.unmeasured}
        for ind in measured:  # measured in some chunk: a chunk's gap (a column it lacks) cannot be
            unmeasured.pop(ind, None)
        notes = dict(self.notes)
        for ind, (text, count) in other.notes.items():
            notes[ind] = (text or notes.get(ind, ("", 0))[0], notes.get(ind, ("", 0))[1] + count)
        return ValueSums(measured, unmeasured, notes)

    def values(self, *, min_group_size: int = 10, alpha: float = 0.05) -> pd.DataFrame:
        """The public values (:data:`VALUE_COLUMNS`), as :func:`public_values` returns them."""
        rows: list[dict[str, Any]] = []
        for ind in INDICATORS:
            if ind.name in self.unmeasured or ind.name not in self.measured:
                reason, columns = self.unmeasured.get(ind.name, ("not measured: the run has no case rows", []))
                rows.append(_unmeasured_row(ind, reason, columns))
                continue
            text, count = self.notes.get(ind.name, ("", 0))
            note = text.format(count) if count else ""
            for attrs, groups in self.measured[ind.name].items():
                labels = sorted(groups)
                table = _summarise(ind.kind, np.array([groups[g] for g in labels]).reshape(len(labels), 4),
                                   labels, alpha)
                for r in table.itertuples(index=False):
                    small = r.cases < min_group_size
                    reason = ("" if not small else f"suppressed: fewer than {min_group_size} applications") or (
                        "undefined: no application counts in this indicator" if not np.isfinite(r.value) else "")
                    reason = "; ".join(x for x in (reason, note) if x)
                    blank = small or not np.isfinite(r.value)
                    rows.append({"dimension": ind.dimension, "indicator": ind.name, "attributes": list(attrs),
                                 "group": r.group, "n": r.n, "count": r.count,
                                 "value": np.nan if blank else r.value, "ci_low": np.nan if blank else r.ci_low,
                                 "ci_high": np.nan if blank else r.ci_high, "se": np.nan if blank else r.se,
                                 "suppressed": bool(small), "reason": reason, "columns": []})
        return pd.DataFrame(rows, columns=list(VALUE_COLUMNS))


def _unmeasured_row(ind: Indicator, reason: str, columns: Sequence[str]) -> dict[str, Any]:
    return {"dimension": ind.dimension, "indicator": ind.name, "attributes": [], "group": "all",
            "n": np.nan, "count": np.nan, "value": np.nan, "ci_low": np.nan, "ci_high": np.nan,
            "se": np.nan, "suppressed": False, "reason": reason, "columns": list(columns)}


def value_sums(
    final: pd.DataFrame,
    cases: pd.DataFrame | None = None,
    *,
    sensitive_features: Sequence[str],
    intersections: Sequence[Sequence[str]] = (),
    review_outcomes: Sequence[str] = ("refer",),
    review: bool = False,
) -> ValueSums:
    """The sums behind the public values of a decision frame (a whole run's, or one chunk's).

    Parameters are those of :func:`public_values`; ``final`` must hold case rows.
    """
    frame = final
    if cases is not None and "case_id" in cases.columns and "case_id" in final.columns:
        # only what an indicator or a group reads: the case frame has some forty columns, a chunk's every case
        wanted = _READ | set(sensitive_features) | {c for i in intersections for c in i}
        extra = [c for c in cases.columns if c not in final.columns and c in wanted]
        if extra:  # as final.merge(cases.drop_duplicates("case_id"), how="left"), aligned by position
            joined = reindex_by_id(cases[["case_id", *extra]], "case_id", final["case_id"], first=True)
            frame = final.reset_index(drop=True).assign(**{c: joined[c].array for c in extra})
    available = set(frame.columns) | ({"review"} if review else set())
    part = _partition(frame, sensitive_features, intersections)
    common = _Common(frame, review_outcomes)
    measured: dict[str, dict[tuple[str, ...], dict[str, np.ndarray]]] = {}
    unmeasured: dict[str, tuple[str, list[str]]] = {}
    notes: dict[str, Note] = {}
    for ind in INDICATORS:
        missing = ind.missing(available)
        if missing:
            what = ["review (recorded caseworker decisions)" if c == "review" else c for c in missing]
            unmeasured[ind.name] = ("not measured: the data has no column " + ", ".join(what), list(missing))
            continue
        num, den, notes[ind.name] = _cells(ind, frame, common)
        by_cell = _sums(num, den, part.cells, part.size)
        measured[ind.name] = {}
        for attrs, group, labels in part.sets:
            sums = np.column_stack([np.bincount(group, weights=by_cell[:, k], minlength=len(labels))
                                    for k in range(len(_SUMS))])
            measured[ind.name][tuple(attrs)] = {label: sums[i] for i, label in enumerate(labels)}
    return ValueSums(measured, unmeasured, notes)


def public_values(
    final: pd.DataFrame | None,
    cases: pd.DataFrame | None = None,
    *,
    sensitive_features: Sequence[str],
    intersections: Sequence[Sequence[str]] = (),
    review_outcomes: Sequence[str] = ("refer",),
    review: bool = False,
    min_group_size: int = 10,
    alpha: float = 0.05,
    absent: str | None = None,
) -> pd.DataFrame:
    """Measure every indicator of :data:`INDICATORS` by group.

    Parameters
    ----------
    final : pandas.DataFrame or None
        The decision frame of a run (``decisions.parquet``: ``case_id``, the
        sensitive columns, ``outcome``, ``final_outcome``, ``decided_by``,
        ``override``, truth columns, ``status``); None for a run without case
        rows.
    cases : pandas.DataFrame, optional
        The case frame; its columns (``channel``, ``meeting_held``, ...) are
        joined on ``case_id`` where the decision frame lacks them (a case id the
        case frame repeats takes its first row; a decision without a case id, or
        with one the case frame lacks, gets missing values there).
    sensitive_features, intersections : sequences
        The groups, as for the metrics.
    review_outcomes : sequence of str, default ("refer",)
        The outcomes that route an application to a caseworker
        (``outcomes.review``).
    review : bool, default False
        Whether caseworker decisions are recorded (``review:`` in the spec);
        without them the override rate is not measured.
    min_group_size : int, default 10
        Groups with fewer cases in an indicator's denominator are suppressed.
    alpha : float, default 0.05
        One minus the confidence level of the intervals.
    absent : str, optional
        Why there are no case rows at all (e.g. an aggregated table); every
        indicator then gets one row with this reason.

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`VALUE_COLUMNS`: one row per indicator and group,
        or one row (all cases, no value) per indicator that is not measured,
        whose ``reason`` names the missing columns (also in ``columns``).
    """
    if final is None:
        reason = f"not measured: {absent or 'the run has no case rows'}"
        return pd.DataFrame([_unmeasured_row(ind, reason, []) for ind in INDICATORS], columns=list(VALUE_COLUMNS))
    sums = value_sums(final, cases, sensitive_features=sensitive_features, intersections=intersections,
                      review_outcomes=review_outcomes, review=review)
    return sums.values(min_group_size=min_group_size, alpha=alpha)
