"""Each case's part in a rate: the cells of one case.

Group statistics (:class:`~audit.metrics.GroupStatistics`) sort every case
into a cell (decided or not, routed to a caseworker, refused, entitled,
underpaid ...) and count the cells per group; every rate of the report is a
function of those counts. Subgroup discovery needs the same facts per case:
whether a case is in a rate's denominator (a refusal rate counts ok cases; an
underpayment rate the cases owed money) and in its numerator. This module
computes each case's cells exactly as :meth:`GroupStatistics.from_frame`
does, applies the registry's own metric function to them, and checks the
totals against :class:`GroupStatistics`, so that a rate means the same
thing in discovery as in the rest of the report.

One rate exists only here: ``wrongful_decision_rate``, the share of ok,
decided cases with a usable truth whose final decision (favourable or not)
differs from the truth's (a wrongful refusal or a wrongful grant).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from audit._columns import ERROR_LABEL, STATUS_ERROR, STATUS_OK, STATUS_QUARANTINED, TRUTH_AMOUNT, TRUTH_OUTCOME
from audit.exceptions import DataError, SpecError
from audit.metrics._registry import METRICS, WRONGFUL_DECISION_RATE, Proportion
from audit.metrics._statistics import GroupStatistics

__all__ = ["case_rate_parts", "case_rates"]


def case_rates() -> tuple[str, ...]:
    """Names of the rates each case has a part in: the registry's rates of cases, and ``wrongful_decision_rate``."""
    rates = sorted(n for n, m in METRICS.items() if m.kind == "rate" and m.function is not None)
    return (*rates, WRONGFUL_DECISION_RATE)


def _isin(series: pd.Series, labels: Sequence[str]) -> np.ndarray:
    return series.isin(list(labels)).to_numpy(dtype=bool)


def case_rate_parts(
    frame: pd.DataFrame,
    metric: str,
    *,
    favourable: Sequence[str] = ("grant", "partial"),
    review: Sequence[str] = ("refer",),
    pred_positive: Sequence[str] = ("deny",),
    truth_positive: Sequence[str] | None = None,
    amount_tolerance: float = 1.0,
    source: str = "discovery frame",
) -> tuple[np.ndarray, np.ndarray]:
    """Each case's part in a rate: is it in the denominator, is it in the numerator.

    The measurement frame is checked as :meth:`GroupStatistics.from_frame`
    checks it (every problem listed at once); each case's cells (``ok``,
    ``refer``, ``deny``, ``wrong_deny``, ``underpaid`` ...) are computed as
    there, and the registry's metric function, applied to one case's cells,
    gives the case's numerator and denominator. The totals are checked against
    :class:`GroupStatistics`, so a rate here is the rate of the report.

    Parameters
    ----------
    frame : pandas.DataFrame
        The measurement frame: ``case_id``, ``status``, ``outcome``,
        ``final_outcome`` and, as the metric needs, ``final_amount``,
        ``truth_outcome``, ``truth_amount``.
    metric : str
        A rate metric of :data:`METRICS`, or ``wrongful_decision_rate``.
    favourable, review, pred_positive, truth_positive, amount_tolerance
        As for :func:`audit.metrics.measure`.
    source : str
        Name used at the start of error messages.

    Returns
    -------
    eligible, positive : numpy.ndarray of bool
        ``positive`` implies ``eligible``.

    Raises
    ------
    SpecError
        When ``metric`` is not a rate of cases.
    DataError
        When the frame lacks a column the metric needs or holds invalid values.
    """
    info = METRICS.get(metric)
    if metric not in case_rates():
        raise SpecError(f"{metric!r} is not a rate of cases. Expected one of {', '.join(case_rates())}.")
    needs_truth = metric == WRONGFUL_DECISION_RATE or (info is not None and info.needs_truth)
    needs_amount = info is not None and "truth_amount" in info.needs
    if needs_truth and TRUTH_OUTCOME not in frame.columns:
        raise DataError(
            f"{source}: the rate {metric!r} needs the correct outcome (column {TRUTH_OUTCOME!r}: "
            "truth.reference or truth.column in the spec). Got no such column."
        )
    if needs_amount and not {TRUTH_AMOUNT, "final_amount"} <= set(frame.columns):
        raise DataError(
            f"{source}: the rate {metric!r} needs the columns {TRUTH_AMOUNT!r} and 'final_amount'. "
            f"Got columns {list(frame.columns)}."
        )
    measured = [c for c in ("case_id", "status", "outcome", "final_outcome", "final_amount", TRUTH_OUTCOME,
                            TRUTH_AMOUNT) if c in frame.columns]
    # validation and the reference totals: one vectorised pass of the report's own statistics
    check = frame[measured].assign(_everyone="all")
    stats = GroupStatistics.from_frame(
        check, sensitive_features=["_everyone"], favourable=favourable, review=review,
        pred_positive=pred_positive, truth_positive=truth_positive, amount_tolerance=amount_tolerance,
        source=source,
    )
    cells = _case_cells(frame, stats)
    totals = stats.channels()
    for name, values in cells.items():
        if name in totals.columns and float(totals[name].iloc[0]) != float(values.sum()):
            raise AssertionError(  # pragma: no cover - guards the agreement of two definitions
                f"discovery cells disagree with GroupStatistics on {name!r}: "
                f"{values.sum()} != {totals[name].iloc[0]}"
            )
    if metric == WRONGFUL_DECISION_RATE:
        est = Proportion(cells["wrong_deny"] + cells["wrong_grant"], cells["truth_decided"])
    else:
        assert info is not None
        est = info.function(cells)
    if not isinstance(est, Proportion):  # pragma: no cover - rate metrics are proportions
        raise SpecError(f"{metric!r} is not a proportion of cases.")
    eligible = np.asarray(est.n, dtype=float)
    positive = np.asarray(est.count, dtype=float)
    binary = np.isin(eligible, (0.0, 1.0)).all() and np.isin(positive, (0.0, 1.0)).all()
    if not (binary and (positive <= eligible).all()):
        raise SpecError(  # pragma: no cover - every registered rate counts each case at most once
            f"{metric!r} counts a case more than once in its numerator or denominator; it is not a rate of cases."
        )
    return eligible.astype(bool), positive.astype(bool)


def _case_cells(frame: pd.DataFrame, stats: GroupStatistics) -> dict[str, np.ndarray]:
    """The cells of every case (0/1 floats), as ``GroupStatistics`` sorts them."""
    d = stats.definition
    status = frame["status"]
    ok = _isin(status, [STATUS_OK])
    n = len(frame)
    outcome, final = frame["outcome"], frame["final_outcome"]
    refer = ok & _isin(outcome, d.review)
    fav = ok & _isin(final, d.favourable)
    unresolved = ok & _isin(final, d.review)
    deny = ok & ~fav & ~unresolved
    ypred = ok & _isin(final, d.pred_positive)
    if TRUTH_OUTCOME in frame.columns:
        t = frame[TRUTH_OUTCOME]
        blank = t.isna().to_numpy(dtype=bool) | (t.astype("str").str.strip() == "").to_numpy(dtype=bool)
        truth = ok & ~blank & ~_isin(t, [ERROR_LABEL, *d.review])
        entitled = truth & _isin(t, d.favourable)
        ytrue = truth & _isin(t, d.truth_positive)
    else:
        truth = entitled = ytrue = np.zeros(n, dtype=bool)
    not_entitled = truth & ~entitled
    decided = ok & ~unresolved
    if TRUTH_AMOUNT in frame.columns and "final_amount" in frame.columns:
        fa = pd.to_numeric(frame["final_amount"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        ta = pd.to_numeric(frame[TRUTH_AMOUNT], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        granted = np.where(np.isnan(fa), 0.0, np.rint(fa * 100))
        with np.errstate(invalid="ignore"):
            owed = decided & (ta > 0)
        correct = np.where(owed, np.rint(np.nan_to_num(ta) * 100), 0.0)
        underpaid = owed & (granted < correct - round(d.amount_tolerance * 100))
    else:
        owed = underpaid = np.zeros(n, dtype=bool)
    cells = {
        "rows": np.ones(n, dtype=bool),
        "ok": ok,
        "error": _isin(status, [STATUS_ERROR]),
        "quarantined": _isin(status, [STATUS_QUARANTINED]),
        "refer": refer,
        "fav": fav,
        "deny": deny,
        "unresolved": unresolved,
        "ypred": ypred,
        "truth": truth,
        "entitled": entitled,
        "not_entitled": not_entitled,
        "wrong_deny": entitled & deny,
        "wrong_grant": not_entitled & fav,
        "tp": truth & ytrue & ypred,
        "fp": truth & ~ytrue & ypred,
        "fn": truth & ytrue & ~ypred,
        "tn": truth & ~ytrue & ~ypred,
        "owed": owed,
        "underpaid": underpaid,
        "truth_decided": truth & ~unresolved,
    }
    return {k: v.astype(float) for k, v in cells.items()}
