"""Human review: how the cases an engine routes to a caseworker are resolved.

An automated engine does not decide every application itself: the cases it
should not decide alone get a review outcome (``outcomes.review``, by default
``refer``) and go to a caseworker. Who ends up with what therefore depends on
the engine *and* on the humans behind it, and a caseworker may also replace
an outcome the engine decided automatically (an *override*). The spec's
``review`` section says where the human decisions come from:

``review.recorded``
    a column of caseworker decisions from a decision log (with
    ``review.amount`` for the amounts granted). A decision on a referred case
    resolves it; a decision on an automatically decided case that differs
    from the engine's outcome is an override. A label that is not an outcome
    label (or is a review label) stops the run with a :class:`DataError`.
``review.model``
    a caseworker model for studies (``kind: python`` with a ``target``). It
    is built with :func:`audit.engine.build_engine` and run through
    :func:`audit.engine.run_engine` on the referred cases (the whole case
    file, sensitive columns included: a caseworker sees the applicant), with
    the spec's outcome labels less the review labels: the same decision
    contract as every engine. A referred case the model cannot decide (a
    missing row, an unknown label, a crash, a negative amount) is an error of
    the review with a reason: the case keeps the engine's outcome (it stays
    referred, unresolved), the failure is counted in the review info
    (``errors``) and every reason is kept in :attr:`Review.failures`. The
    model's errors do not stop the audit, since the engine under audit did
    decide the case.

Without a ``review`` section every case keeps the engine's outcome.

:func:`review` returns a :class:`Review`: the final outcome and amount of
each case, who decided (``engine``, ``caseworker`` or ``none`` for a case the
engine could not decide), whether it was an override and by whom, the
caseworker decisions in the form :meth:`audit.journey.Journey.record_overrides`
takes, and the info dict that ``results.json`` carries under
``engine.review``: ``configured``, ``referred``, and with a review ``by``,
``resolved``, ``unresolved``, ``overrides`` (and ``errors`` for a model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from audit._ids import positions, reindex_by_id
from audit._columns import STATUS_OK
from audit._schema import coded_strings
from audit.engine import build_engine, run_engine
from audit.exceptions import DataError
from audit.spec import AuditSpec, EngineSpec

__all__ = ["OVERRIDE_WHY", "REVIEW_COLUMNS", "Review", "review"]

REVIEW_COLUMNS: tuple[str, ...] = ("final_outcome", "final_amount", "decided_by", "override", "override_by")
"""Columns of :attr:`Review.frame`, aligned with the engine's decisions."""

OVERRIDE_WHY = "caseworker decision recorded against the engine's automatic outcome"
"""Why a case was overridden, as recorded in the journey."""

_FAILURE_COLUMNS = ("check", "column", "value", "case_id", "reason")


@dataclass(frozen=True)
class Review:
    """The outcome of human review of one run's decisions.

    Attributes
    ----------
    frame : pandas.DataFrame
        Aligned with the decisions (same index): ``final_outcome``,
        ``final_amount``, ``decided_by``, ``override``, ``override_by``.
    info : dict
        What ``results.json`` records under ``engine.review``.
    decided : pandas.DataFrame or None
        One row per case a caseworker decided (``case_id``, ``outcome``,
        ``final_outcome``, ``override``, ``by``, ``why``), for
        :meth:`audit.journey.Journey.record_overrides`; None when there is none.
    failures : pandas.DataFrame
        One tidy row per problem with a caseworker model's answer (``check``,
        ``column``, ``value``, ``case_id``, ``reason``); empty otherwise.
    """

    frame: pd.DataFrame
    info: dict[str, Any]
    decided: pd.DataFrame | None = None
    failures: pd.DataFrame = field(default_factory=lambda: _no_failures())


def review(spec: AuditSpec, cases: pd.DataFrame, decisions: pd.DataFrame) -> Review:
    """Resolve referred cases and record overrides of the engine.

    Parameters
    ----------
    spec : AuditSpec
        The audit; its ``review`` and ``outcomes`` sections are used.
    cases : pandas.DataFrame
        The case frame (one row per case, ``case_id`` unique).
    decisions : pandas.DataFrame
        The engine's decisions under the contract (``case_id``, ``outcome``,
        ``amount``, ``reasons``, ``status``), as :func:`audit.engine.run_engine`
        returns them.

    Returns
    -------
    Review

    Raises
    ------
    DataError
        When ``review.recorded`` names a column the case frame lacks, or a
        recorded caseworker decision is not an outcome label.
    """
    engine_outcome = decisions["outcome"].astype("str")
    status_ok = (decisions["status"] == STATUS_OK).to_numpy(dtype=bool)
    review_labels = set(spec.outcomes.review)
    referred = decisions["outcome"].isin(review_labels) & status_ok
    info: dict[str, Any] = {"configured": spec.review is not None, "referred": int(referred.sum())}
    out = pd.DataFrame(index=decisions.index)
    if spec.review is None:
        out["final_outcome"] = engine_outcome
        out["final_amount"] = decisions["amount"].astype("float64")
        out["decided_by"] = coded_strings(status_ok.astype(np.int8), _DECIDED_BY[:2])
        out["override"] = False
        out["override_by"] = ""
        return Review(out, info)
    valid = [label for label in spec.outcomes.labels if label not in review_labels]
    errors: int | None = None
    failures = _no_failures()
    if spec.review.recorded is not None:
        human, amount, who = _recorded(spec, cases, decisions, valid)
    else:
        human, amount, who, errors, failures = _model(spec, cases, decisions, referred, valid)
    known = human.notna().to_numpy(dtype=bool)
    ask = referred.to_numpy(dtype=bool)
    resolved = ask & known
    # a human decision that differs from an automatic engine decision is an override
    automatic = status_ok & ~ask & known
    overridden = automatic & (human != engine_outcome).to_numpy(dtype=bool, na_value=False)
    human_decides = resolved | overridden
    amt = amount.to_numpy(dtype="float64", na_value=np.nan)
    # a resolved case without an amount: none for a favourable outcome (not known), 0 for any other
    favourable = human.isin(spec.outcomes.favourable).to_numpy(dtype=bool)
    final_amount = decisions["amount"].to_numpy(dtype="float64", na_value=np.nan, copy=True)
    final_amount[resolved] = np.where(np.isnan(amt), np.where(favourable, np.nan, 0.0), amt)[resolved]
    final_amount[overridden] = amt[overridden]
    out["final_outcome"] = engine_outcome.where(~human_decides, human.astype("str"))
    out["final_amount"] = final_amount
    out["decided_by"] = coded_strings(np.where(human_decides, 2, status_ok.astype(np.int8)), _DECIDED_BY)
    out["override"] = overridden
    out["override_by"] = coded_strings(human_decides.astype(np.int8), ("", who))
    info.update({"by": who, "resolved": int(resolved.sum()), "unresolved": int((ask & ~known).sum()),
                 "overrides": int(overridden.sum())})
    if errors is not None:
        info["errors"] = errors
    return Review(out, info, _decided(decisions, out, info), failures)


def _recorded(
    spec: AuditSpec, cases: pd.DataFrame, decisions: pd.DataFrame, valid: list[str]
) -> tuple[pd.Series, pd.Series, str]:
    """Recorded caseworker decisions aligned with the decisions: (outcome, amount, who)."""
    r = spec.review
    assert r is not None and r.recorded is not None
    for key, column in (("recorded", r.recorded), ("amount", r.amount)):
        if column is not None and column not in cases.columns:
            raise DataError(
                f"review.{key} names {column!r}, which is not a column of the case frame. "
                f"Columns: {', '.join(map(str, cases.columns))}."
            )
    by = cases.set_index("case_id")
    raw = by[r.recorded].reindex(decisions["case_id"]).to_numpy()
    human = pd.Series(raw, index=decisions.index).astype("str").where(pd.notna(raw))
    who = f"recorded:{r.recorded}"
    unknown = human.notna() & ~human.isin(valid)
    if unknown.any():
        raise DataError(
            f"review: the caseworker decision {human[unknown].iloc[0]!r} (from {who}) is not an outcome label. "
            f"Expected one of {', '.join(sorted(valid))}."
        )
    amount = (pd.to_numeric(by[r.amount], errors="coerce").reindex(decisions["case_id"]).to_numpy(dtype="float64")
              if r.amount else np.full(len(decisions), np.nan))
    return human, pd.Series(amount, index=decisions.index), who


def _model(
    spec: AuditSpec, cases: pd.DataFrame, decisions: pd.DataFrame, referred: pd.Series, valid: list[str]
) -> tuple[pd.Series, pd.Series, str, int, pd.DataFrame]:
    """A caseworker model's decisions on the referred cases: (outcome, amount, who, errors, failures)."""
    m = spec.review.model if spec.review is not None else None
    assert m is not None
    model = build_engine(EngineSpec(kind="python", target=m.target, options=m.options), base_dir=spec.base_dir)
    ask = referred.to_numpy(dtype=bool)
    where = positions(decisions["case_id"], cases["case_id"])[ask]  # no hashing when both keep the cases' order
    if (where < 0).any():
        raise KeyError(f"referred case(s) not among the cases: {decisions.loc[referred, 'case_id'][where < 0].tolist()[:5]}")
    asked = cases.iloc[where].reset_index(drop=True)
    if len(asked):
        # error_budget 1: a case the model cannot decide stays referred and is counted; it does not stop the audit
        run = run_engine(model, asked, labels=valid, error_budget=1.0)
        answer, errors, failures = run.decisions, int(run.n_errors), run.failures
    else:  # nothing was referred: the model is not asked
        answer, errors, failures = pd.DataFrame(columns=["case_id", "outcome", "amount", "status"]), 0, _no_failures()
    answer = reindex_by_id(answer, "case_id", decisions["case_id"][ask])  # the referred cases, in their order
    ok = (answer["status"] == STATUS_OK).to_numpy(dtype=bool)
    row = np.full(len(decisions), -1, dtype=np.int64)  # each decision's row of the answer; -1: not asked or failed
    row[np.flatnonzero(ask)[ok]] = np.flatnonzero(ok)
    outcome = answer["outcome"].astype("str").array.take(row, allow_fill=True)
    amounts = np.append(answer["amount"].to_numpy(dtype="float64", na_value=np.nan), np.nan)  # row -1: NaN
    human = pd.Series(outcome, index=decisions.index)
    amount = pd.Series(amounts[row], index=decisions.index)
    return human, amount, f"model:{m.target}", errors, failures


_DECIDED_BY = ("none", "engine", "caseworker")
"""Who decided a case, by code: nobody (the engine's answer is an error), the engine, a caseworker."""


def _no_failures() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="str") for c in _FAILURE_COLUMNS})


def _decided(decisions: pd.DataFrame, out: pd.DataFrame, info: dict[str, Any]) -> pd.DataFrame | None:
    """The caseworker decisions in the form the journey records them, or None when there are none."""
    if not (info.get("overrides") or info.get("resolved")):
        return None
    keep = (out["decided_by"] == "caseworker").to_numpy(dtype=bool)  # only these are recorded
    d = decisions.loc[keep, ["case_id", "outcome", "reasons"]]
    o = out.loc[keep, ["final_outcome", "override", "override_by"]]
    # the texts once per distinct reason list (a missing one read as none), not once per case
    codes, uniques = pd.factorize(d["reasons"].astype("str").fillna(""))
    labels = [f"referred by the engine: {u}" for u in uniques.tolist()] + [OVERRIDE_WHY]
    why = coded_strings(np.where(o["override"].to_numpy(dtype=bool), len(labels) - 1, codes), labels)
    return d[["case_id"]].assign(outcome=d["outcome"], final_outcome=o["final_outcome"],
                                 override=o["override"], by=o["override_by"], why=why)
