"""Engine comparison: what changes for whom when one decision-maker replaces another.

A municipality that lets an RPA robot decide applications that caseworkers
used to decide, or that replaces rule set v1 by v2, changes decisions for
some applicants and not for others. Averages hide this: two engines can
refuse the same share of applicants and still refuse different people. The
comparison puts two sets of decisions on the *same* cases side by side and
asks, per group, how often they agree and who is moved in which direction.

The audited engine's decisions (``outcome``, ``amount``: the final decision
after any caseworker review) are the *new* decisions; the spec's
``compare:`` section names the *current* ones (``compare_outcome``,
``compare_amount``): a second engine, or recorded human decisions. A
decision is *favourable* when its outcome is in ``favourable`` (default
``grant`` and ``partial``); every other outcome (refusal, a referral still
unresolved) is *unfavourable*.

Metrics per group (and overall), with ``n`` and ``count`` as reported:

==========================  ===============================================  ========================================
metric                      value                                            n
==========================  ===============================================  ========================================
``agreement``               share of cases with the same outcome label       compared cases
``flip_rate``               share of cases whose favourability changes       compared cases
``flip_to_unfavourable``    share refused (or left unresolved) by the new    cases favourable under the current
                            engine among those the current one favoured      decisions
``flip_to_favourable``      share favoured by the new engine among those     cases unfavourable under the current
                            the current one did not favour                   decisions
``mean_amount_change``      mean of ``amount - compare_amount`` (SEK/month)  cases with both amounts known
==========================  ===============================================  ========================================

Cases are compared when their ``status`` is ``ok`` (when the frame has a
status) and both outcomes are present and not ``error``; the others are
counted in the ``reason`` column, never dropped silently. For amounts, an
unfavourable decision without an amount pays 0 SEK; a favourable decision
without an amount cannot be compared and is counted in ``reason``.

Intervals and tests
-------------------
The four rates are binomial proportions of disjoint cell counts per group
(both favourable with the same or another label, both unfavourable with the
same or another label, favourable to unfavourable, unfavourable to
favourable). Each rate has a Wilson score interval; the test against the
reference group is the two-proportion z-test (Fisher's exact test when an
expected count is below 5); differences and ratios to the reference get
percentile intervals from a seeded multinomial bootstrap over all cells of
all groups at once (``statistics.bootstrap`` draws; the row bootstrap done
on counts), or Newcombe's and Katz's intervals with ``bootstrap: 0``.

``mean_amount_change`` is the mean of paired differences: each case is its
own control, so the variation between households (rent, household size)
drops out and only the engines' disagreement remains. Cases are independent,
so the mean of ``n`` differences is approximately normal (central limit
theorem) and the Student *t* interval ``mean ± t(n-1) · sd / sqrt(n)``
applies; the difference between two groups uses Welch's *t* interval and
test, whose unequal variances suit groups in which the engines disagree to
different degrees. Amount changes are bounded (a month's assistance) and
groups are only reported from ``statistics.min_group_size`` cases up, which
keeps the approximation honest; as for every mean in Insyn, the interval is
analytic, so it works from per-group sums and needs no pass over the rows per
draw. When every compared case of a group has the same change (often 0),
the standard deviation is 0 and the interval collapses onto the mean, which
is exact for the cases observed; the test is then not run and the reason
says so.

Groups below ``statistics.min_group_size`` are suppressed; a rate whose
denominator is 0 is NaN with a reason, never 0. P-values are adjusted
together with ``statistics.correction``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from audit._distributions import t_ppf
from audit.exceptions import DataError, SpecError
from audit.metrics._groups import atoms, attribute_sets, grouping_matrix, references
from audit.metrics._intervals import multinomial_bootstrap, wilson_interval
from audit.metrics._table import (
    MetricBlock,
    compare_groups,
    group_notes,
    mean_evidence,
    metric_table,
    order_blocks,
    proportion_evidence,
    statistics_spec,
)
from audit.spec import StatisticsSpec

__all__ = ["COMPARE_METRICS", "compare_decisions"]

COMPARE_METRICS: tuple[str, ...] = (
    "agreement",
    "flip_rate",
    "flip_to_unfavourable",
    "flip_to_favourable",
    "mean_amount_change",
)
"""Metrics of an engine comparison, in the order they are reported."""

_ERROR = "error"
# cells of a compared case: current (compare) decision -> new (audited) decision
_FF_SAME, _FF_OTHER, _UU_SAME, _UU_OTHER, _F_TO_U, _U_TO_F = range(6)
_N_CELLS = 6


def _missing(series: pd.Series) -> np.ndarray:
    """True where a decision is missing: NaN, blank or a lone space."""
    text = series.astype("str")
    return series.isna().to_numpy(dtype=bool) | text.str.strip().eq("").to_numpy(dtype=bool, na_value=True)


def _amounts(frame: pd.DataFrame, column: str) -> np.ndarray:
    """An amount column as floats (NaN where missing); text that is not a number or a negative amount is refused."""
    series = frame[column]
    if pd.api.types.is_bool_dtype(series.dtype) or not (
        pd.api.types.is_numeric_dtype(series.dtype) or series.isna().all()
    ):
        numeric = pd.to_numeric(series, errors="coerce")
        bad = series.notna().to_numpy(dtype=bool) & numeric.isna().to_numpy(dtype=bool)
        if bad.any() or pd.api.types.is_bool_dtype(series.dtype):
            i = int(np.flatnonzero(bad)[0]) if bad.any() else 0
            case = frame["case_id"].iloc[i] if "case_id" in frame.columns else i + 1
            raise DataError(
                f"engine comparison: column {column!r} must hold amounts in SEK (numbers). "
                f"Got {series.iloc[i]!r} for case_id {case!r}."
            )
        series = numeric
    values = series.to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(values) & (values < 0) | np.isinf(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        case = frame["case_id"].iloc[i] if "case_id" in frame.columns else i + 1
        raise DataError(
            f"engine comparison: column {column!r} must hold amounts >= 0 SEK. "
            f"Got {float(values[i])!r} for case_id {case!r}."
        )
    return values


def compare_decisions(
    frame: pd.DataFrame,
    *,
    sensitive_features: Sequence[str],
    intersections: Sequence[Sequence[str]] = (),
    favourable: Sequence[str] = ("grant", "partial"),
    statistics: StatisticsSpec | None = None,
    seed: int = 0,
    reference_groups: Mapping[str, str] | None = None,
    correct: bool = True,
) -> pd.DataFrame:
    """Compare two sets of decisions on the same cases, by group.

    See the module docstring for the definitions, the intervals and the tests.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per case: ``case_id``, the sensitive columns, optionally
        ``status``, ``outcome`` and ``compare_outcome`` (the audited engine's
        and the current decisions), optionally ``amount`` and
        ``compare_amount`` (SEK per month; both are needed for
        ``mean_amount_change``).
    sensitive_features : sequence of str
        Columns that form groups; missing values form ``(missing)``.
    intersections : sequence of sequence of str, default ()
        Combinations of sensitive features to report as well.
    favourable : sequence of str, default ("grant", "partial")
        Outcome labels that are favourable to the applicant.
    statistics : audit.spec.StatisticsSpec, optional
        ``min_group_size``, ``alpha``, ``correction``, ``bootstrap``.
    seed : int, default 0
        Seed of the bootstrap; the same seed gives the same table.
    reference_groups : mapping of str to str, optional
        Reference group per sensitive feature (or intersection, keyed by its
        attributes joined with ``" & "``). Default: the group with the most
        compared cases.
    correct : bool, default True
        Correct the table's p-values together and size its minimum detectable
        differences for them. False leaves both to
        :func:`audit.metrics.correct_family` (the table then has the extra
        column ``mdd_se``).

    Returns
    -------
    pandas.DataFrame
        Tidy metric rows with the columns of :data:`audit.metrics.COLUMNS`,
        ordered by metric (``COMPARE_METRICS``), then the overall row
        (``attributes == []``, ``group == "all"``), attributes and
        intersections.

    Raises
    ------
    DataError
        When a column is missing, an amount is not a number >= 0, no case can
        be compared, or a reference group is not in the data.
    SpecError
        When ``favourable`` is empty or ``statistics`` is invalid.
    """
    spec = statistics_spec(statistics)
    if isinstance(favourable, str) or not list(favourable):
        raise SpecError(f"favourable must name at least one outcome label. Got {favourable!r}.")
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"engine comparison: expected a pandas DataFrame. Got {type(frame).__name__}.")
    needed = [*sensitive_features, "outcome", "compare_outcome"]
    missing_cols = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing_cols:
        raise DataError(
            f"engine comparison: missing column(s) {', '.join(map(repr, missing_cols))}. Expected case_id, the "
            "sensitive columns, status, outcome and compare_outcome (the audited engine's and the current "
            f"decisions), and optionally amount and compare_amount. Columns: {', '.join(map(str, frame.columns))}."
        )
    favourable = [str(v) for v in favourable]
    n_rows = len(frame)
    ok = (frame["status"].astype("str").eq("ok").to_numpy(dtype=bool, na_value=False)
          if "status" in frame.columns else np.ones(n_rows, dtype=bool))
    new, old = frame["outcome"], frame["compare_outcome"]
    new_missing = _missing(new) | new.astype("str").eq(_ERROR).to_numpy(dtype=bool, na_value=False)
    old_missing = _missing(old) | old.astype("str").eq(_ERROR).to_numpy(dtype=bool, na_value=False)
    compared = ok & ~new_missing & ~old_missing
    if not compared.any():
        raise DataError(
            f"engine comparison: none of the {n_rows} case(s) can be compared. Expected cases with status ok and "
            f"both outcome and compare_outcome decided; {int((~ok).sum())} case(s) do not have status ok, "
            f"{int((ok & new_missing).sum())} have no audited outcome and {int((ok & old_missing).sum())} "
            "have no compare_outcome."
        )
    new_fav = new.isin(favourable).to_numpy(dtype=bool, na_value=False)
    old_fav = old.isin(favourable).to_numpy(dtype=bool, na_value=False)
    same = new.astype("str").to_numpy(dtype=object, na_value="") == old.astype("str").to_numpy(dtype=object,
                                                                                               na_value="")
    cell = np.select(
        [old_fav & new_fav & same, old_fav & new_fav, ~old_fav & ~new_fav & same, ~old_fav & ~new_fav,
         old_fav & ~new_fav],
        [_FF_SAME, _FF_OTHER, _UU_SAME, _UU_OTHER, _F_TO_U],
        default=_U_TO_F,
    )
    has_amounts = "amount" in frame.columns and "compare_amount" in frame.columns
    change = np.full(n_rows, np.nan)
    no_amount = np.zeros(n_rows, dtype=bool)
    if has_amounts:
        a_new = _amounts(frame, "amount")
        a_old = _amounts(frame, "compare_amount")
        a_new = np.where(np.isnan(a_new) & ~new_fav, 0.0, a_new)
        a_old = np.where(np.isnan(a_old) & ~old_fav, 0.0, a_old)
        change = np.where(compared, a_new - a_old, np.nan)
        no_amount = compared & np.isnan(change)

    atom, keys = atoms(frame, sensitive_features)
    n_atoms = len(keys)
    counts = np.bincount(atom[compared] * _N_CELLS + cell[compared],
                         minlength=n_atoms * _N_CELLS).reshape(n_atoms, _N_CELLS).astype(float)
    left_status = np.bincount(atom[~ok], minlength=n_atoms).astype(float)
    left_new = np.bincount(atom[ok & new_missing], minlength=n_atoms).astype(float)
    left_old = np.bincount(atom[ok & ~new_missing & old_missing], minlength=n_atoms).astype(float)
    left_amount = np.bincount(atom[no_amount], minlength=n_atoms).astype(float)
    boot_counts = None
    if spec.bootstrap > 0:
        boot_counts = multinomial_bootstrap(counts, draws=spec.bootstrap, seed=np.random.default_rng(seed))
        boot_counts = boot_counts.astype(float)

    sets = attribute_sets(sensitive_features, intersections)
    grouped: dict[int, dict[str, Any]] = {}
    labels_of: dict[int, list[str]] = {}
    rows_of: dict[int, np.ndarray] = {}
    for i, attributes in enumerate(sets):
        labels, matrix = grouping_matrix(keys, attributes)
        group_of_atom = matrix.argmax(axis=1)
        c = counts.T @ matrix  # (cells, groups)
        info: dict[str, Any] = {
            "cells": c,
            "boot": None if boot_counts is None else np.einsum("bak,ag->bkg", boot_counts, matrix),
            "left": [left_status @ matrix, left_new @ matrix, left_old @ matrix, left_amount @ matrix],
        }
        if has_amounts:
            info["amounts"] = _amount_moments(change, group_of_atom[atom], len(labels))
        grouped[i] = info
        labels_of[i] = labels
        rows_of[i] = c.sum(axis=0)
    refs = references(sets, labels_of, rows_of, reference_groups, spec.min_group_size)
    blocks: list[tuple[str, int, MetricBlock]] = []
    for i, attributes in enumerate(sets):
        for metric, block in _compare_blocks(attributes, labels_of[i], refs[i], grouped[i], spec=spec):
            blocks.append((metric, i, block))
    return metric_table(order_blocks(blocks, COMPARE_METRICS), spec, correct=correct)


def _amount_moments(change: np.ndarray, group: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Per-group number, mean and sample variance (two-pass, ``ddof=1``) of the amount changes."""
    known = ~np.isnan(change)
    g = group[known]
    d = change[known]
    n = np.bincount(g, minlength=size).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.bincount(g, weights=d, minlength=size) / n
        dev2 = np.bincount(g, weights=(d - mean[g]) ** 2, minlength=size)
        var = np.where(n >= 2, dev2 / (n - 1), np.nan)
    return {"n": n, "mean": np.where(n > 0, mean, np.nan), "var": var}


def _compare_blocks(
    attributes: list[str],
    labels: list[str],
    ref: int | None,
    grouped: dict[str, Any],
    *,
    spec: StatisticsSpec,
) -> list[tuple[str, MetricBlock]]:
    """The metric blocks of one attribute set."""
    g = len(labels)
    alpha = spec.alpha
    c = grouped["cells"]
    boot = grouped["boot"]
    rows = c.sum(axis=0)
    left_status, left_new, left_old, left_amount = grouped["left"]
    left_notes = (
        np.array([f"{int(v)} case(s) with a status other than ok left out" if v else "" for v in left_status],
                 dtype=object),
        np.array([f"{int(v)} case(s) without an audited outcome left out" if v else "" for v in left_new],
                 dtype=object),
        np.array([f"{int(v)} case(s) without a compare_outcome left out" if v else "" for v in left_old],
                 dtype=object),
    )
    out: list[tuple[str, MetricBlock]] = []

    def rate(cells: list[int], base: list[int] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        k = c[cells].sum(axis=0)
        n = c[base].sum(axis=0) if base is not None else rows
        draws = None
        if boot is not None:
            bk = boot[:, cells, :].sum(axis=1)
            bn = boot[:, base, :].sum(axis=1) if base is not None else boot.sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                draws = np.where(bn > 0, bk / bn, np.nan)
        return k, n, draws

    definitions = (
        ("agreement", [_FF_SAME, _UU_SAME], None, "compared cases"),
        ("flip_rate", [_F_TO_U, _U_TO_F], None, "compared cases"),
        ("flip_to_unfavourable", [_F_TO_U], [_FF_SAME, _FF_OTHER, _F_TO_U],
         "cases with a favourable compare_outcome"),
        ("flip_to_favourable", [_U_TO_F], [_UU_SAME, _UU_OTHER, _U_TO_F],
         "cases with an unfavourable compare_outcome"),
    )
    for metric, cells, base, denominator in definitions:
        k, n, draws = rate(cells, base)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(n > 0, k / n, np.nan)
        undefined = np.where(n == 0, f"undefined: the denominator ({denominator}) is 0", "")
        out.append((metric, compare_groups(
            metric, attributes, labels, reference=ref, rows=rows, n=n, count=k, value=value,
            ci=wilson_interval(k, n, alpha), statistics=spec, reasons=group_notes(undefined, *left_notes),
            evidence=None if ref is None else proportion_evidence(k, n, ref, alpha, draws=draws),
        )))
    if "amounts" in grouped:
        mom = grouped["amounts"]
        n, mean, var = mom["n"], mom["mean"], mom["var"]
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.sqrt(var / n)
            tq = t_ppf(1 - alpha / 2, n - 1)
        notes = group_notes(
            np.where(n == 0, "undefined: no compared case with both amounts known", ""),
            np.where(n == 1, "interval needs at least 2 cases", ""),
            np.array([f"{int(v)} favourable decision(s) without an amount left out" if v else ""
                      for v in left_amount], dtype=object),
            *left_notes,
        )
        out.append(("mean_amount_change", compare_groups(
            "mean_amount_change", attributes, labels, reference=ref, rows=rows, n=n, value=mean,
            ci=(mean - tq * se, mean + tq * se), statistics=spec, reasons=notes,
            evidence=None if ref is None else mean_evidence(mean, var, n, ref, alpha),
        )))
    return out
