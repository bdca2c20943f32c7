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
intervals. ``selection_ratio``, ``equal_burden`` and
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
compared between groups. P-values are adjusted together with
``statistics.correction``; the minimum detectable difference is that of
:func:`audit.metrics.measure`.

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

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError
from scipy import stats as _stats

from audit.exceptions import DataError, SpecError
from audit.metrics import (
    MISSING_LABEL,
    katz_ratio_interval,
    mdd_means,
    mdd_proportions,
    multinomial_bootstrap,
    newcombe_difference_interval,
    two_proportion_test,
    wilson_interval,
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
    "population_selection_rate",
    "population_false_positive_rate",
    "population_false_negative_rate",
)
"""Metrics of a selection audit, in the order they are reported."""

_OVERALL = "all"
_SEP = " & "
_BOOT_TEST = "z-test (bootstrap SE)"
_POS, _NEG, _UNKNOWN = 0, 1, 2


# ---------------------------------------------------------------------------
# groups and the tidy table (shared with audit.compare)


def _group_labels(frame: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
    """Sensitive values as strings; missing or blank values become ``(missing)``."""
    out = {}
    for f in features:
        s = frame[f]
        text = s.astype("str")
        missing = s.isna().to_numpy(dtype=bool) | text.str.strip().eq("").to_numpy(dtype=bool, na_value=True)
        out[f] = pd.Series(np.where(missing, MISSING_LABEL, text.to_numpy(dtype=object, na_value="")),
                           index=frame.index, dtype="str")
    return pd.DataFrame(out, index=frame.index)


def _atoms(frame: pd.DataFrame, features: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Atom id per row (one atom per observed combination of all sensitive values) and the atom keys."""
    if not features or len(frame) == 0:
        keys = pd.DataFrame({f: pd.Series([], dtype="str") for f in features})
        return np.zeros(len(frame), dtype=np.int64), keys if features else pd.DataFrame(index=pd.RangeIndex(1))
    labels = _group_labels(frame, features)
    grouped = labels.groupby(list(features), sort=True)
    atom = grouped.ngroup().to_numpy(dtype=np.int64)
    keys = grouped.size().index.to_frame(index=False).astype("str")
    return atom, keys


def _attribute_sets(features: Sequence[str], intersections: Sequence[Sequence[str]]) -> list[list[str]]:
    """The overall set ``[]``, each sensitive feature, then each intersection (once)."""
    sets: list[list[str]] = [[]] + [[f] for f in features]
    for i, inter in enumerate(intersections):
        inter = list(inter)
        if len(inter) < 2 or len(set(inter)) != len(inter) or any(a not in features for a in inter):
            raise DataError(
                f"intersections[{i}] must name two or more different sensitive features "
                f"({', '.join(features)}). Got {inter}."
            )
        if inter not in sets:
            sets.append(inter)
    return sets


def _grouping(keys: pd.DataFrame, attributes: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Sorted group labels of an attribute set and the ``(atoms, groups)`` 0/1 matrix."""
    n_atoms = len(keys)
    if not attributes:
        return [_OVERALL], np.ones((n_atoms, 1))
    parts = [keys[a].astype("str").to_numpy(dtype=str) for a in attributes]
    joined = parts[0]
    for part in parts[1:]:
        joined = np.char.add(np.char.add(joined, _SEP), part)
    labels, inverse = np.unique(joined, return_inverse=True)
    matrix = np.zeros((n_atoms, len(labels)))
    matrix[np.arange(n_atoms), inverse] = 1.0
    return [str(v) for v in labels], matrix


def _choose_reference(
    attributes: Sequence[str],
    labels: Sequence[str],
    rows: np.ndarray,
    reference_groups: Mapping[str, str],
    attribute_refs: dict[str, str],
    min_group_size: int,
) -> int | None:
    """Index of the reference group, as :func:`audit.metrics.measure` chooses it.

    The spec's choice (keyed by the attribute, or the attributes joined with
    ``" & "``); for an intersection without one, the combination of its
    attributes' references when that group is not too small; else the
    largest group (never ``(missing)`` unless it is the only group).
    """
    if not attributes:
        return None
    key = _SEP.join(attributes)
    wanted = reference_groups.get(key)
    if wanted is not None:
        if str(wanted) not in labels:
            raise DataError(
                f"reference_groups: {wanted!r} is not a group of {key}. Groups in the data: {', '.join(labels)}."
            )
        return list(labels).index(str(wanted))
    if len(attributes) > 1 and all(a in attribute_refs for a in attributes):
        label = _SEP.join(attribute_refs[a] for a in attributes)
        if label in labels and rows[list(labels).index(label)] >= min_group_size:
            return list(labels).index(label)
    candidates = [i for i, lab in enumerate(labels) if MISSING_LABEL not in lab.split(_SEP)]
    candidates = candidates or list(range(len(labels)))
    return max(candidates, key=lambda i: (rows[i], -i))


def _references(
    sets: list[list[str]],
    labels_of: dict[int, list[str]],
    rows_of: dict[int, np.ndarray],
    reference_groups: Mapping[str, str] | None,
    min_group_size: int,
) -> dict[int, int | None]:
    """Reference group index of every attribute set (single attributes first, then intersections)."""
    refs = {str(k): str(v) for k, v in (reference_groups or {}).items()}
    known = {a for s in sets for a in s}
    for key in refs:
        if not all(part in known for part in key.split(_SEP)):
            raise DataError(
                f"reference_groups must be keyed by sensitive features ({', '.join(sorted(known))}) "
                f"or intersections joined with ' & '. Got {key!r}."
            )
    out: dict[int, int | None] = {}
    attribute_refs: dict[str, str] = {}
    for i, attrs in enumerate(sets):
        if len(attrs) <= 1:
            out[i] = _choose_reference(attrs, labels_of[i], rows_of[i], refs, attribute_refs, min_group_size)
            if attrs and out[i] is not None:
                attribute_refs[attrs[0]] = labels_of[i][out[i]]
    for i, attrs in enumerate(sets):
        if len(attrs) > 1:
            out[i] = _choose_reference(attrs, labels_of[i], rows_of[i], refs, attribute_refs, min_group_size)
    return out


def _z_p_value(difference: np.ndarray, se: np.ndarray) -> np.ndarray:
    """Two-sided normal p-value of ``difference / se``; NaN where ``se`` is 0 or undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = difference / se
        return np.where((se > 0) & np.isfinite(z), 2 * _stats.norm.sf(np.abs(z)), np.nan)


def _proportion_null_se(k0: np.ndarray, n0: np.ndarray, n1: np.ndarray, alpha: float) -> np.ndarray:
    """Standard error of a rate difference under the null, as in :func:`audit.metrics.mdd_proportions`."""
    return mdd_proportions(k0, n0, n1, alpha=alpha) / mdd_means(1.0, alpha=alpha)


def _quantiles(draws: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile interval of bootstrap draws per column, and how many draws were finite."""
    draws = np.where(np.isfinite(draws), draws, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanquantile(draws, [alpha / 2, 1 - alpha / 2], axis=0)
    return q[0], q[1], np.isfinite(draws).sum(axis=0)


def _block(
    *,
    metric: str,
    attributes: Sequence[str],
    labels: Sequence[str],
    ref: int | None,
    rows: np.ndarray,
    n: np.ndarray,
    count: np.ndarray,
    value: np.ndarray,
    ci: tuple[np.ndarray, np.ndarray],
    alpha: float,
    min_group_size: int,
    reasons: Sequence[Sequence[str]] | None = None,
    den: np.ndarray | None = None,
    den_name: str = "n",
    draws: np.ndarray | None = None,
    compare: bool = True,
    ratio_meaningful: bool = True,
    p_value: np.ndarray | None = None,
    test: np.ndarray | None = None,
    mdd_se: np.ndarray | None = None,
    diff_ci: tuple[np.ndarray, np.ndarray] | None = None,
    ratio_ci: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """One metric over the groups of one attribute set, in the conventions of :func:`audit.metrics.measure`.

    Parameters
    ----------
    rows : numpy.ndarray
        The group's cases: a group with fewer than ``min_group_size`` is
        suppressed (value, interval, count and comparisons are NaN).
    n, count, value, ci : numpy.ndarray
        The metric's denominator, numerator (NaN where none), estimate and
        interval.
    den : numpy.ndarray, optional
        Denominators whose values between 1 and ``min_group_size - 1`` also
        suppress the row (default ``n``); ``den_name`` names them in the reason.
    reasons : sequence of sequence of str, optional
        Notes per group (why a value is undefined, cases left out).
    draws : numpy.ndarray, optional
        Bootstrap draws of the metric ``(draws, groups)``; they give the
        intervals of the difference and ratio against the reference
        (percentile); else ``diff_ci`` and ``ratio_ci`` do.
    p_value, test, mdd_se : numpy.ndarray, optional
        Test against the reference per group, its name, and the standard error
        of the difference that the minimum detectable difference is built from.
    """
    g = len(labels)
    nan = np.full(g, np.nan)
    value = np.asarray(value, dtype=float)
    n = np.asarray(n, dtype=float)
    den = n if den is None else np.asarray(den, dtype=float)
    rows = np.asarray(rows, dtype=float)
    small_group = rows < min_group_size
    small_den = (den > 0) & (den < min_group_size)
    suppressed = small_group | small_den
    notes: list[list[str]] = []
    for i in range(g):
        if small_group[i]:
            notes.append([f"suppressed: the group has {int(rows[i])} cases < min_group_size {min_group_size}"])
        elif small_den[i]:
            notes.append([f"suppressed: {den_name} = {int(den[i])} < min_group_size {min_group_size}"])
        else:
            notes.append([r for r in (reasons[i] if reasons is not None else ()) if r])
    hide = suppressed
    b: dict[str, Any] = {
        "metric": np.full(g, metric, dtype=object),
        "attributes": [list(attributes) for _ in range(g)],
        "group": np.array(list(labels), dtype=object),
        "n": n,
        "value": np.where(hide, np.nan, value),
        "ci_low": np.where(hide, np.nan, np.asarray(ci[0], dtype=float)),
        "ci_high": np.where(hide, np.nan, np.asarray(ci[1], dtype=float)),
        "count": np.where(hide, np.nan, np.asarray(count, dtype=float)),
        "suppressed": suppressed,
        "reference_group": np.full(g, None, dtype=object),
        "four_fifths": np.full(g, None, dtype=object),
        "test": np.full(g, "", dtype=object),
        "reasons": notes,
    }
    for col in ("reference_value", "difference", "ratio", "p_value", "diff_ci_low", "diff_ci_high",
                "ratio_ci_low", "ratio_ci_high", "mdd_se", "max_min_gap", "min_max_ratio"):
        b[col] = nan.copy()
    shown = b["value"]
    if attributes:
        ok_vals = shown[np.isfinite(shown)]
        if ok_vals.size >= 2:
            b["max_min_gap"][:] = ok_vals.max() - ok_vals.min()
            if ratio_meaningful and ok_vals.max() > 0 and ok_vals.min() >= 0:
                b["min_max_ratio"][:] = ok_vals.min() / ok_vals.max()
    if not attributes or ref is None or not compare:
        return b
    ref_label = labels[ref]
    b["reference_group"][:] = ref_label
    if hide[ref] or not np.isfinite(shown[ref]):
        why = "suppressed" if hide[ref] else "undefined"
        for i in range(g):
            if i != ref:
                notes[i].append(f"no comparison: the reference group {ref_label!r} is {why}")
        return b
    v0 = shown[ref]
    b["reference_value"][:] = v0
    cmp = np.isfinite(shown)
    others = cmp.copy()
    others[ref] = False
    b["difference"] = np.where(cmp, shown - v0, np.nan)
    if ratio_meaningful:
        if v0 != 0:
            b["ratio"] = np.where(cmp, shown / v0, np.nan)
        else:
            for i in np.flatnonzero(others):
                notes[i].append("ratio undefined: the reference value is 0")
    idx = np.flatnonzero(others)
    if idx.size == 0:
        return b
    if p_value is not None:
        b["p_value"][idx] = np.asarray(p_value, dtype=float)[idx]
        b["test"][idx] = np.where(np.isnan(b["p_value"][idx]), "",
                                  np.asarray(test, dtype=object)[idx] if test is not None else "")
    if mdd_se is not None:
        b["mdd_se"][idx] = np.asarray(mdd_se, dtype=float)[idx]
    if draws is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            lo, hi, used = _quantiles(draws[:, idx] - draws[:, [ref]], alpha)
            b["diff_ci_low"][idx], b["diff_ci_high"][idx] = lo, hi
            if ratio_meaningful and v0 != 0:
                rlo, rhi, rused = _quantiles(draws[:, idx] / draws[:, [ref]], alpha)
                b["ratio_ci_low"][idx], b["ratio_ci_high"][idx] = rlo, rhi
                used = np.minimum(used, rused)
        total = draws.shape[0]
        for j, i in enumerate(idx):
            if used[j] < total:
                notes[i].append(f"bootstrap intervals from {int(used[j])} of {total} draws "
                                "(the others had a zero denominator)")
    else:
        if diff_ci is not None:
            b["diff_ci_low"][idx] = np.asarray(diff_ci[0], dtype=float)[idx]
            b["diff_ci_high"][idx] = np.asarray(diff_ci[1], dtype=float)[idx]
        if ratio_ci is not None and ratio_meaningful and v0 != 0:
            b["ratio_ci_low"][idx] = np.asarray(ratio_ci[0], dtype=float)[idx]
            b["ratio_ci_high"][idx] = np.asarray(ratio_ci[1], dtype=float)[idx]
    return b


def _assemble(blocks: list[dict[str, Any]], statistics: StatisticsSpec) -> pd.DataFrame:
    """Concatenate blocks into the tidy table; adjust the p-values of the table together.

    The same assembly as :func:`audit.metrics.measure` (one implementation):
    the minimum detectable difference is for a two-sided test with 80 % power
    at level ``alpha / m`` (``m`` the number of tests in the table).
    """
    from audit.metrics._measure import _assemble as assemble_metric_table

    return assemble_metric_table(blocks, statistics)


def _order(blocks: list[tuple[str, int, dict[str, Any]]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Blocks ordered by metric, then by attribute set (overall, attributes, intersections)."""
    rank = {m: i for i, m in enumerate(metrics)}
    return [b for _, _, b in sorted(blocks, key=lambda t: (rank[t[0]], t[1]))]


def _statistics(statistics: StatisticsSpec | Mapping[str, Any] | None) -> StatisticsSpec:
    """The statistics options as a :class:`~audit.spec.StatisticsSpec` (a mapping is validated)."""
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


def _notes(*parts: Any) -> list[list[str]]:
    """Per-group lists of the non-empty notes in ``parts`` (arrays of str, one per group)."""
    arrays = [np.asarray(p, dtype=object) for p in parts]
    return [[str(a[i]) for a in arrays if a[i]] for i in range(len(arrays[0]))]


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
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError(
            f"selection audit: column {selection.column!r} (selection.column) is empty for "
            f"{int(missing.sum())} case(s), e.g. case_id {ids.iloc[i]!r}. Expected {selection.random!r} for the "
            f"random sample or {selected_text} for cases the engine selected.",
            failures=pd.DataFrame({"check": "not_null", "column": selection.column, "value": "",
                                   "case_id": ids[missing].to_numpy(dtype=str),
                                   "reason": "how the case was picked is missing"}),
        )
    is_random = text.eq(str(selection.random)).to_numpy(dtype=bool, na_value=False)
    if selection.selected is not None:
        other = ~is_random & ~text.eq(str(selection.selected)).to_numpy(dtype=bool, na_value=False)
        if other.any():
            values = pd.unique(text[other])
            i = int(np.flatnonzero(other)[0])
            raise DataError(
                f"selection audit: column {selection.column!r} (selection.column) has the value {values[0]!r} "
                f"for {int(other.sum())} case(s), e.g. case_id {ids.iloc[i]!r}. Expected {selection.random!r} "
                f"(selection.random) or {selection.selected!r} (selection.selected)."
                + (f" Other values: {', '.join(map(repr, values[1:6]))}." if len(values) > 1 else ""),
                failures=pd.DataFrame({"check": "in_set", "column": selection.column,
                                       "value": text[other].to_numpy(dtype=str),
                                       "case_id": ids[other].to_numpy(dtype=str),
                                       "reason": "neither the random nor the selected value"}),
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
    atom, keys = _atoms(frame, sensitive_features)
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
    for attributes in _attribute_sets(sensitive_features, intersections):
        labels, matrix = _grouping(keys, attributes)
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
    spec = _statistics(statistics)
    keys, counts, info = _selection_counts(frame, selection=selection, sensitive_features=sensitive_features,
                                           truth_column=truth_column, truth_positive=truth_positive)
    population = float(selection.population_size)
    boot_counts = None
    if spec.bootstrap > 0:
        rng = np.random.default_rng(seed)
        boot_sel = multinomial_bootstrap(counts[:, 0, :], draws=spec.bootstrap, seed=rng)
        boot_rnd = multinomial_bootstrap(counts[:, 1, :], draws=spec.bootstrap, seed=rng)
        boot_counts = np.stack([boot_sel, boot_rnd], axis=2).astype(float)  # (draws, atoms, 2, 3)
    sets = _attribute_sets(sensitive_features, intersections)
    estimates, boots, labels_of, rows_of = {}, {}, {}, {}
    for i, attributes in enumerate(sets):
        labels, matrix = _grouping(keys, attributes)
        estimates[i] = _estimates(*_group_counts(counts, matrix), population)
        boots[i] = (None if boot_counts is None
                    else _estimates(*_group_counts(boot_counts, matrix), population))
        labels_of[i], rows_of[i] = labels, estimates[i]["r"]
    refs = _references(sets, labels_of, rows_of, reference_groups, spec.min_group_size)
    blocks: list[tuple[str, int, dict[str, Any]]] = []
    for i, attributes in enumerate(sets):
        for metric, block in _selection_blocks(attributes, labels_of[i], refs[i], estimates[i], boots[i],
                                               truth_column is not None, spec=spec, population=population,
                                               left_out=info["left_out_status"]):
            blocks.append((metric, i, block))
    return _assemble(_order(blocks, SELECTION_METRICS), spec)


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
) -> list[tuple[str, dict[str, Any]]]:
    """The metric blocks of one attribute set (see the module docstring for each definition)."""
    g = len(labels)
    alpha, m = spec.alpha, spec.min_group_size
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
    out: list[tuple[str, dict[str, Any]]] = []

    def ref_of(a: np.ndarray) -> np.ndarray:
        return nan.copy() if ref is None else np.full(g, a[ref])

    def add(metric: str, **kw: Any) -> None:
        notes = kw.pop("notes", ())
        out.append((metric, _block(
            metric=metric, attributes=attributes, labels=labels, ref=ref, rows=audited, value=est[metric],
            alpha=alpha, min_group_size=m, reasons=_notes(*notes, status_note),
            draws=None if boot is None else boot[metric], **kw,
        )))

    def boot_se(metric: str) -> np.ndarray:
        """Bootstrap standard error of the difference to the reference."""
        if boot is None or ref is None:
            return nan.copy()
        with np.errstate(invalid="ignore"):
            d = boot[metric] - boot[metric][:, [ref]]
        d = np.where(np.isfinite(d), d, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanstd(d, axis=0, ddof=1)

    def conditional(k: np.ndarray, other: np.ndarray, metric: str) -> dict[str, Any]:
        """Test of ``k / (k + other)`` against the reference: a ratio of two groups' ratios equal to 1."""
        if ref is None:
            return {}
        p, test = two_proportion_test(k, k + other, ref_of(k), ref_of(k + other))
        return {"p_value": p, "test": np.char.add(test.astype(str), " (conditional)").astype(object),
                "mdd_se": boot_se(metric)}

    if not overall:
        add("selected_share", n=total_s, count=s, ci=wilson_interval(s, total_s, alpha), compare=False)
        add("random_share", n=total_r, count=r, ci=wilson_interval(r, total_r, alpha), compare=False)
        add("selection_ratio", n=audited, count=s, den=nan,
            ci=katz_ratio_interval(s, total_s, r, total_r, alpha),
            notes=(np.where(r == 0, "undefined: no random cases in this group", ""),),
            **conditional(s, r, "selection_ratio"))
    if has_truth:
        for metric, k, nn, what, unknown in (("base_rate", rp, rk, "random", unknown_rnd),
                                             ("hit_rate", sp, sk, "selected", unknown_sel)):
            kw: dict[str, Any] = {}
            if ref is not None:
                p, test = two_proportion_test(k, nn, ref_of(k), ref_of(nn))
                kw = {"p_value": p, "test": test, "mdd_se": _proportion_null_se(ref_of(k), ref_of(nn), nn, alpha)}
                if boot is None:
                    kw["diff_ci"] = newcombe_difference_interval(k, nn, ref_of(k), ref_of(nn), alpha)
                    kw["ratio_ci"] = katz_ratio_interval(k, nn, ref_of(k), ref_of(nn), alpha)
            add(metric, n=nn, count=k, ci=wilson_interval(k, nn, alpha),
                notes=(np.where(nn == 0, f"undefined: no {what} cases with a known result", ""), unknown),
                **kw)
        if not overall:
            add("error_share", n=total_e, count=rp, den=rk, den_name="random cases with a result",
                ci=wilson_interval(rp, total_e, alpha), compare=False,
                notes=(np.where(total_e == 0, "undefined: no errors found in the random sample", ""), unknown_rnd))
            add("equal_burden", n=audited, count=s, den=rk, den_name="random cases with a result",
                ci=katz_ratio_interval(s, total_s, rp, total_e, alpha),
                notes=(np.where(rp == 0, "undefined: no errors found at random in this group", ""), unknown_rnd),
                **conditional(s, rp, "equal_burden"))
    if overall:
        ci = (est["population_selection_rate"], est["population_selection_rate"])  # S / N: both known exactly
    else:
        lo, hi = katz_ratio_interval(s, total_s, r, total_r, alpha)
        ci = (lo * total_s / population, hi * total_s / population)
    add("population_selection_rate", n=audited, count=s, den=nan, ci=ci,
        notes=(np.where(r == 0, "undefined: no random cases in this group, so no estimate of its size", ""),),
        **conditional(s, r, "population_selection_rate"))
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
            if boot is not None:
                lo, hi, used = _quantiles(boot[metric], alpha)
                draws = boot[metric].shape[0]
                boot_note = np.array([f"interval from {u} of {draws} bootstrap draws (the others undefined)"
                                      if 0 < u < draws else "" for u in used], dtype=object)
                ci = (lo, hi)
            else:
                ci = (nan.copy(), nan.copy())
                boot_note = np.full(g, "no interval: statistics.bootstrap is 0", dtype=object)
            kw = {}
            if ref is not None and boot is not None:
                se = boot_se(metric)
                kw = {"p_value": _z_p_value(est[metric] - est[metric][ref], se),
                      "test": np.full(g, _BOOT_TEST, dtype=object), "mdd_se": se}
            add(metric, n=audited, count=nan, den=np.minimum(rk, sk),
                den_name="random or selected cases with a result", ci=ci,
                notes=(why, clipped_fn, clipped_tn, unknown_sel, unknown_rnd, boot_note), **kw)
    return out
