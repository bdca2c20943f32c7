"""The work behind the runner's steps, on plain frames (private helpers of :mod:`audit.runner`).

A run passes frames from step to step: the case frame, what the engine may
see, the truth, the engine's decisions, the final frame (one row per case,
``decisions.parquet``) and the frames each analysis measures. The runner's
step functions stay small by calling these helpers, which know the spec and
the frames but nothing of the run state, the journey or the timing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit._ids import positions, reindex_by_id
from audit._schema import coded_strings, text_values
from audit._columns import (
    ERROR_LABEL,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_QUARANTINED,
    TRUTH_AMOUNT,
    TRUTH_OUTCOME,
    TRUTH_REASONS,
)
from audit.checks import CheckReport, validate
from audit.counterfactual import CounterfactualResult, run_counterfactual
from audit.engine import build_engine, run_engine
from audit.exceptions import CheckFailedError, DataError, SpecError
from audit.metrics import (
    DiscoveryResult,
    GroupStatistics,
    compare_decisions,
    correct_family,
    discover_in_run,
    evaluate_thresholds,
    family_adjusted,
    funnel,
    journey_stages,
    measure,
    measure_selection,
    measure_statistics,
    stage_counts,
)
from audit.norms import ReferenceEngine
from audit.spec import AuditSpec, EngineSpec

__all__ = ["CaseStatus", "GRANT_LABELS", "TRUTH_ERROR", "aggregated_statistics", "assertions", "by_case_id",
           "check_columns", "check_step", "compare_frame", "comparison", "corrected", "counterfactual",
           "discovery_notes", "engine_columns", "final_frame", "funnel_outcomes", "funnel_stage_counts",
           "funnel_table", "measured", "metric_tables", "missing_amounts", "quarantined", "seen", "selection_frame",
           "table_metrics", "truth", "undecidable", "with_run_family"]


class CaseStatus:
    """The status and reason of every case of a run, in population order; the first problem found wins."""

    def __init__(self, case_ids: pd.Series) -> None:
        index = pd.Index(text_values(case_ids))
        self.status = pd.Series(STATUS_OK, index=index, dtype="str")
        self.reason = pd.Series("", index=index, dtype="str")

    def mark(self, status: str, reasons: pd.Series) -> None:
        """Give the cases of ``reasons`` (reason by case id) ``status``, unless an earlier step already did."""
        if not len(reasons):
            return
        where = positions(reasons.index, self.status.index)  # -1: not a case of the run, nothing to mark
        fresh = (where >= 0) & (self.status.to_numpy()[np.maximum(where, 0)] == STATUS_OK)
        rows = where[fresh]
        self.status.iloc[rows] = status
        self.reason.iloc[rows] = reasons.to_numpy()[fresh].astype("str")




def by_case_id(frame: pd.DataFrame, values: Any) -> pd.Series:
    """``values`` (aligned with ``frame``) as reasons indexed by case id."""
    return pd.Series(np.asarray(values, dtype=object), index=frame["case_id"].to_numpy(), dtype="str")


def seen(features: list[str]) -> list[str]:
    """The columns an engine sees, without the case id."""
    return [c for c in features if c != "case_id"]


def assertions(report: CheckReport | None, dataset: str | None = None) -> list[tuple[list[dict[str, Any]], str | None]]:
    """A report's OpenLineage assertions for a journey step (none without a report)."""
    return [] if report is None else [(report.to_openlineage_assertions(), dataset)]


def quarantined(frame: pd.DataFrame, reasons: pd.Series) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows of ``frame`` that ``reasons`` does not name (index reset), and the Record fields that reject the others.

    Without a quarantined case the kept frame shares ``frame``'s columns (no
    copy), so that the journey sees the step leave every column as it was.
    """
    ids = frame["case_id"]
    mask = ids.isin(reasons.index) if len(reasons) else np.zeros(len(frame), dtype=bool)
    if not mask.any():
        return frame.reset_index(drop=True), {}
    named = ids[mask].to_frame()  # only the ids: selecting every column copied the whole frame
    r = by_case_id(named, reasons.reindex(named["case_id"]).to_numpy())
    fields = {"rejected": r, "reason": r, "status": pd.Series(STATUS_QUARANTINED, index=r.index)}
    return frame.loc[~mask].reset_index(drop=True), fields


def check_step(
    spec: AuditSpec, step: str, frame: pd.DataFrame, entries: list[dict[str, Any]]
) -> tuple[CheckReport | None, pd.Series]:
    """Run a step's suites; return the report (None without suites) and the quarantine reasons by case id.

    The step's check entry (for ``checks.json``) is appended to ``entries``.
    With policy ``quarantine`` a failure that points at no case (a missing
    column, a wrong type, a table-level check) cannot be quarantined, so it
    stops the run as under ``fail``.
    """
    none = pd.Series([], dtype="str")
    cfg = getattr(spec.checks, step)
    if cfg is None:
        return None, none
    suites = [spec.resolve(s) for s in cfg.suites]
    missing = [str(s) for s in suites if not Path(s).is_file()]
    if missing:
        raise SpecError(f"{spec.source or '<spec>'}: checks.{step}.suites names {missing[0]}, which does not exist.")
    report = validate(frame, suites, step=step, id_column="case_id", groups=list(spec.sensitive_features))
    # gx_result: great-expectations' own result, kept for checks.json only (audit.record; not results.json)
    entries.append({"step": step, "policy": cfg.policy, **report.to_dict(), "gx_result": report.gx_result})
    if report.success:
        return report, none
    if cfg.policy == "fail" or (cfg.policy == "quarantine" and not report.quarantinable):
        why = "policy fail" if cfg.policy == "fail" else "policy quarantine, but a failure points at no case"
        raise CheckFailedError(f"checks.{step} failed with {why}:\n{report.to_text(max_rows=20)}",
                               failures=report.failures_table())
    if cfg.policy != "quarantine":
        return report, none
    failed = report.failed_cases()
    return report, pd.Series([f"quarantined at {step}: {r}" for r in failed["reasons"]],
                             index=failed["case_id"].astype("str").to_numpy(), dtype="str")


def check_columns(spec: AuditSpec, cases: pd.DataFrame) -> None:
    """Refuse a case frame that lacks a sensitive feature."""
    missing = [c for c in spec.sensitive_features if c not in cases.columns]
    if missing:
        p = spec.population
        raise DataError(
            f"{spec.source or '<spec>'}: sensitive_features names {missing[0]!r}, which is not a column of the "
            f"case frame from {p.file or p.synthetic or p.url}. Columns: {', '.join(map(str, cases.columns))}."
        )


def engine_columns(
    spec: AuditSpec, engine: EngineSpec, frame: pd.DataFrame, required: Any = ()
) -> tuple[list[str], list[str]]:
    """Return (columns the engine sees, sensitive columns withheld).

    Default: every column that is not sensitive (unless ``sees_sensitive``),
    truth, recorded or selection; the engine's ``required_columns`` are added.
    """
    sensitive = list(spec.sensitive_features)
    t, r, c, s = spec.truth, spec.review, spec.compare, spec.selection
    reserved = {TRUTH_OUTCOME, TRUTH_AMOUNT, TRUTH_REASONS, t.column, t.amount, s.column if s else None,
                *((r.recorded, r.amount) if r else ()),
                *((c.outcome, c.amount, c.reasons) if c is not None and c.kind == "recorded" else ()),
                *((engine.outcome, engine.amount, engine.reasons, engine.score) if engine.kind == "recorded" else ())}
    if engine.features is not None:
        missing = [col for col in engine.features if col not in frame.columns]
        if missing:
            raise SpecError(
                f"{spec.source or '<spec>'}: engine.features names {missing[0]!r}, which is not a column of the "
                f"case frame. Columns: {', '.join(map(str, frame.columns))}."
            )
        features = ["case_id", *[col for col in engine.features if col != "case_id"]]
    else:
        features = [col for col in frame.columns
                    if col not in reserved and (engine.sees_sensitive or col not in sensitive)]
    for col in tuple(required or ()):
        if col in frame.columns and col not in features:
            features.append(col)
    return features, [col for col in sensitive if col not in features]


TRUTH_ERROR = "truth_error"
"""Column of the reference truth frame: why the law's baseline could not decide a case ("" when it could)."""


def undecidable(truth_: pd.DataFrame | None) -> pd.Series:
    """Reasons, by case id, of the cases whose correct decision the law's baseline cannot compute.

    Such a case is never silently ``ok``: the run marks it ``error`` with this
    reason (a missing column, a value that is not a number, a benefit month
    without riksnorm tables, a household the rules do not cover).
    """
    if truth_ is None or TRUTH_ERROR not in truth_.columns:
        return pd.Series([], dtype="str")
    bad = truth_[TRUTH_ERROR].astype("str") != ""
    return by_case_id(truth_.loc[bad], truth_.loc[bad, TRUTH_ERROR])


GRANT_LABELS = ("grant", "partial")
"""Outcomes that grant money: when an engine gives amounts for some of them, each one needs an amount."""


def missing_amounts(decisions: pd.DataFrame) -> pd.Series:
    """Reasons, by case id, of grants without an amount from an engine that gives amounts for its other grants.

    A NaN amount on a grant is not "0 SEK": the case's payment is unknown,
    so it is an error with this reason, never silently accepted (a
    decisions suite with policy ``quarantine`` sees such cases first).
    """
    ok = decisions["status"] == STATUS_OK
    granted = ok & decisions["outcome"].isin(GRANT_LABELS)
    amount = pd.to_numeric(decisions["amount"], errors="coerce")
    bad = granted & amount.isna()
    if not bad.any() or not (granted & amount.notna()).any():
        return pd.Series([], dtype="str")
    text = ("amount is missing for the outcome " + decisions.loc[bad, "outcome"].astype("str")
            + "; expected the SEK/month granted (the engine gives amounts for its other grants)")
    return by_case_id(decisions.loc[bad], text)


def truth(spec: AuditSpec, frame: pd.DataFrame) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """Per-case truth columns aligned with ``frame`` and their description (``truth.reference`` or ``.column``)."""
    t, ids = spec.truth, text_values(frame["case_id"])
    if t.reference:
        ref = ReferenceEngine()
        dec = ref.decide(frame)
        errors = dec.get("error")
        out = pd.DataFrame({
            "case_id": ids,
            TRUTH_OUTCOME: dec["outcome"].astype("str").where(dec["outcome"] != ERROR_LABEL).array,
            TRUTH_AMOUNT: dec["amount"].astype("float64").to_numpy(),
            TRUTH_REASONS: dec["reasons"].astype("str").array,
        })
        undecidable = 0
        if errors is not None:  # each distinct error's text once (most cases have none), not once per case
            codes, uniques = pd.factorize(errors.astype("str").fillna(""))
            texts = uniques.tolist()
            out[TRUTH_ERROR] = coded_strings(codes, [f"the law's baseline cannot decide this case: {e}" if e else ""
                                                     for e in texts])
            undecidable = int(np.isin(codes, [i for i, e in enumerate(texts) if e]).sum())
        return out, {
            "kind": "reference",
            "engine": {"name": ref.name, "version": ref.version,
                       "definition_hash": getattr(ref, "definition_hash", None)},
            "undecidable": undecidable,
        }
    if not t.column:
        return None, {"kind": "none"}
    if t.column not in frame.columns:
        raise DataError(f"truth.column names {t.column!r}, which is not a column of the case frame. "
                        f"Columns: {', '.join(map(str, frame.columns))}.")
    out = pd.DataFrame({"case_id": ids,
                        TRUTH_OUTCOME: frame[t.column].astype("str").where(frame[t.column].notna()).to_numpy()})
    if t.amount:
        out[TRUTH_AMOUNT] = pd.to_numeric(frame[t.amount], errors="coerce").to_numpy(dtype="float64")
    return out, {"kind": "column", "column": t.column, "positive": t.positive}


def final_frame(
    spec: AuditSpec,
    cases: pd.DataFrame,
    decisions: pd.DataFrame,
    reviewed: pd.DataFrame,
    truth_: pd.DataFrame | None,
    status: pd.Series,
    reason: pd.Series,
) -> pd.DataFrame:
    """One row per case of the population, in population order (``decisions.parquet``).

    ``reviewed`` is aligned with ``decisions`` (:attr:`audit.review.Review.frame`);
    ``status`` and ``reason`` are indexed by case id (the run's case status).
    """
    final = cases[["case_id", *spec.sensitive_features]].copy()
    ids = final["case_id"]
    d = reindex_by_id(decisions.assign(**{c: reviewed[c] for c in reviewed.columns}), "case_id", ids)
    final["outcome"] = d["outcome"].astype("str").where(d["outcome"].notna()).array  # arrays: no Python strings
    final["amount"] = d["amount"].astype("float64").to_numpy()
    final["score"] = d["score"].astype("float64").to_numpy() if "score" in d.columns else np.full(len(final), np.nan)
    reasons = d["reasons"] if "reasons" in d.columns else pd.Series("", index=ids)
    final["reasons"] = reasons.astype("str").where(reasons.notna(), "").array
    final["final_outcome"] = d["final_outcome"].astype("str").where(d["final_outcome"].notna()).array
    final["final_amount"] = d["final_amount"].astype("float64").to_numpy()
    final["decided_by"] = d["decided_by"].astype("str").where(d["final_outcome"].notna(), "none").array
    final["override"] = d["override"].fillna(False).astype(bool).to_numpy()
    if truth_ is not None:
        t = reindex_by_id(truth_, "case_id", ids)
        for col in (c for c in (TRUTH_OUTCOME, TRUTH_AMOUNT, TRUTH_REASONS) if c in t.columns):
            final[col] = text_values(t[col])
    where = positions(ids, status.index)
    found = bool((where >= 0).all())
    final["status"] = status.array.take(where) if found else status.reindex(ids).array
    final["status_reason"] = reason.array.take(where) if found else reason.reindex(ids).array
    final.loc[final["status"] == STATUS_QUARANTINED, ["outcome", "final_outcome"]] = np.nan
    final.loc[final["status"] == STATUS_ERROR, ["outcome", "final_outcome"]] = ERROR_LABEL
    return final.reset_index(drop=True)


def comparison(
    spec: AuditSpec, cases: pd.DataFrame, live: pd.DataFrame, final: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Decide the live cases with the second engine (or read recorded decisions); one row per case of ``final``."""
    c = spec.compare
    assert c is not None
    engine = build_engine(c, base_dir=spec.base_dir)
    features, withheld = engine_columns(spec, c, cases, getattr(engine, "required_columns", ()))
    run = run_engine(engine, live[features], labels=spec.outcomes.labels, batch_size=c.batch_size,
                     workers=c.workers, error_budget=c.error_budget, timeout_s=c.batch_timeout_s)
    d = reindex_by_id(run.decisions, "case_id", final["case_id"])
    frame = pd.DataFrame({
        "case_id": text_values(final["case_id"]),
        "compare_outcome": d["outcome"].astype("str").where(d["status"] == STATUS_OK).array,
        "compare_amount": d["amount"].astype("float64").to_numpy(),
        "compare_status": d["status"].astype("str").where(d["status"].notna(), STATUS_QUARANTINED).array,
    })
    info = {"kind": c.kind, "name": getattr(engine, "name", c.kind), "version": str(getattr(engine, "version", "")),
            "definition_hash": getattr(engine, "definition_hash", None), "n_errors": int(run.n_errors),
            "features": seen(features), "withheld": withheld}
    return frame, info


def counterfactual(
    spec: AuditSpec, engine: Any, live: pd.DataFrame, features: list[str], decisions: pd.DataFrame
) -> CounterfactualResult:
    """Decide counterfactual twins and paired personas with the engine under audit."""
    assert spec.counterfactual is not None
    e = spec.engine
    return run_counterfactual(
        live, spec=spec.counterfactual, engine=engine, features=features, labels=spec.outcomes.labels,
        favourable=spec.outcomes.favourable, sensitive_features=spec.sensitive_features,
        statistics=spec.statistics, seed=spec.seed, base_decisions=decisions, base_dir=spec.base_dir,
        source=spec.source or "<spec>", reference_groups=spec.reference_groups,
        population=spec.resolve(spec.population.synthetic) if spec.population.synthetic else None,
        batch_size=e.batch_size if e else None, workers=e.workers if e else 1, correct=False,
    )


def metric_tables(
    spec: AuditSpec, cases: pd.DataFrame, final: pd.DataFrame, compared: pd.DataFrame | None,
    cf: CounterfactualResult | None,
) -> list[pd.DataFrame]:
    """Every analysis's metric table, uncorrected: group metrics, selection, comparison, counterfactual flips."""
    o = spec.outcomes
    t_pos = [spec.truth.positive] if spec.truth.positive else None
    common = {"sensitive_features": spec.sensitive_features, "intersections": spec.intersections,
              "reference_groups": spec.reference_groups, "statistics": spec.statistics, "seed": spec.seed,
              "correct": False}
    tables = [measure(final, favourable=o.favourable, review=o.review, pred_positive=o.positive or t_pos or ["deny"],
                      truth_positive=t_pos, **common)]
    if spec.selection is not None:
        frame = selection_frame(spec, cases, final)
        tables.append(measure_selection(frame, selection=spec.selection, truth_positive=t_pos or o.positive or ["deny"],
                                        truth_column=TRUTH_OUTCOME if TRUTH_OUTCOME in frame.columns else None,
                                        **common))
    if compared is not None:
        tables.append(compare_decisions(compare_frame(spec, final, compared), favourable=o.favourable, **common))
    if cf is not None:
        tables.append(cf.metrics)
    return tables


def table_metrics(spec: AuditSpec, table: pd.DataFrame) -> pd.DataFrame:
    """Group-level binary metrics of an aggregated table, uncorrected."""
    return measure_statistics(aggregated_statistics(spec, table), sensitive_features=spec.sensitive_features,
                              reference_groups=spec.reference_groups, statistics=spec.statistics, seed=spec.seed,
                              correct=False)


def corrected(spec: AuditSpec, tables: list[pd.DataFrame], funnel_table: pd.DataFrame | None = None,
              ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The run's metrics, every test corrected together as one family, and the thresholds evaluated on them.

    The stage funnel's shift tests (``funnel_table``, uncorrected) are tests of the run too: they join the
    family, so every metric's adjusted p-value and MDD counts them (:func:`with_run_family` gives the funnel
    its own adjusted values from the same family).
    """
    extra = None if funnel_table is None else funnel_table["p_value"].to_numpy(dtype=float)
    metrics = correct_family(tables, spec.statistics, extra_p=extra)
    return metrics, evaluate_thresholds(metrics, spec.thresholds)


def funnel_outcomes(spec: AuditSpec) -> list[str]:
    """The outcomes a run's funnel follows: ``outcomes.positive``, else ``truth.positive``, else ``deny``."""
    return list(spec.outcomes.positive or ([spec.truth.positive] if spec.truth.positive else ["deny"]))


def funnel_stage_counts(spec: AuditSpec, final: pd.DataFrame | None, live: pd.DataFrame | None,
                        engine_input: pd.DataFrame | None, decisions: pd.DataFrame | None) -> pd.DataFrame | None:
    """Each group's cases entering and leaving every step of a run over cases (None without cases or engine).

    ``live`` holds the cases that passed intake, ``engine_input`` those the engine saw, ``decisions`` the
    engine's decisions (:func:`audit.metrics.journey_stages`); the counts add up over a chunked run's chunks.
    """
    if final is None or live is None or engine_input is None or decisions is None:
        return None
    stages = journey_stages(
        final, intake_ids=live["case_id"], engine_ids=engine_input["case_id"], decisions=decisions,
        selected=funnel_outcomes(spec),
        review_labels=list(spec.outcomes.review) if spec.review is not None else None,
    )
    return stage_counts(final, stages, spec.sensitive_features, spec.intersections)


def funnel_table(spec: AuditSpec, counts: pd.DataFrame | None) -> pd.DataFrame | None:
    """The funnel measures of a run's stage counts, its tests not yet corrected (None without counts)."""
    return None if counts is None else funnel(counts, spec.statistics)


def with_run_family(spec: AuditSpec, table: pd.DataFrame | None, metrics: pd.DataFrame) -> pd.DataFrame | None:
    """The funnel with its p-values adjusted in the run's one family (the metrics' tests and its own)."""
    if table is None:
        return None
    _, adjusted = family_adjusted(metrics["p_value"].to_numpy(dtype=float), table["p_value"].to_numpy(dtype=float),
                                  spec.statistics)
    return table.assign(p_adjusted=adjusted)


def measured(
    spec: AuditSpec, cases: pd.DataFrame, final: pd.DataFrame, compared: pd.DataFrame | None,
    cf: CounterfactualResult | None, features: list[str], stages: tuple[Any, Any, Any] | None = None,
) -> tuple[pd.DataFrame, list[dict[str, Any]], DiscoveryResult | None, pd.DataFrame | None]:
    """The measurement of a run over cases: metrics, findings, subgroup discovery and the stage funnel.

    Every analysis's table (:func:`metric_tables`), subgroup discovery's
    tests when the spec has ``discover:`` (searched on one half of the
    cases, tested on the other; ``features`` are what the engine saw) and
    the stage funnel's shift tests (``stages``: the live cases, the engine's
    input and its run) are corrected together as the run's one family; the
    discovery (None without ``discover:``) and the funnel (None without an
    engine run) come back with those run-wide p-values.
    """
    tables = metric_tables(spec, cases, final, compared, cf)
    found = discover_in_run(spec, cases, final, features) if spec.discover is not None else None
    if found is not None:  # its tests join the run's family
        tables.append(found.metrics_frame())
    live, engine_input, engine_run = stages if stages is not None else (None, None, None)
    decisions = None if engine_run is None else engine_run.decisions
    funnel_raw = funnel_table(spec, funnel_stage_counts(spec, final, live, engine_input, decisions))
    metrics, findings = corrected(spec, tables, funnel_raw)  # the funnel's tests join the run's family too
    others = 0 if funnel_raw is None else int(funnel_raw["p_value"].notna().sum())
    found = None if found is None else found.with_run_correction(metrics, other_tests=others)
    return metrics, findings, found, with_run_family(spec, funnel_raw, metrics)


def discovery_notes(found: DiscoveryResult | None) -> dict[str, int]:
    """The journey's notes on subgroup discovery: groups found and groups confirmed (none without discovery)."""
    return {} if found is None else {"discovered": len(found.groups), "confirmed": len(found.confirmed)}


def selection_frame(spec: AuditSpec, cases: pd.DataFrame, final: pd.DataFrame) -> pd.DataFrame:
    """The final frame with the selection column (how each case was picked)."""
    sel = spec.selection
    assert sel is not None
    if sel.column not in cases.columns:
        raise DataError(f"selection.column names {sel.column!r}, which is not a column of the case frame. "
                        f"Columns: {', '.join(map(str, cases.columns))}.")
    return final.assign(**{sel.column: cases[sel.column].to_numpy()})


def compare_frame(spec: AuditSpec, final: pd.DataFrame, compared: pd.DataFrame) -> pd.DataFrame:
    """Final decisions next to the second engine's: a case either could not decide is an ``error``."""
    frame = final[["case_id", *spec.sensitive_features, "status"]].copy()
    frame["outcome"] = final["final_outcome"].to_numpy()
    frame["amount"] = final["final_amount"].to_numpy()
    frame["compare_outcome"] = compared["compare_outcome"].to_numpy()
    frame["compare_amount"] = compared["compare_amount"].to_numpy()
    bad = compared["compare_status"].to_numpy() != STATUS_OK
    frame.loc[bad & (frame["status"] == STATUS_OK).to_numpy(), "status"] = STATUS_ERROR
    return frame


def aggregated_statistics(spec: AuditSpec, table: pd.DataFrame) -> dict[str, GroupStatistics]:
    """Sufficient statistics of an aggregated table, one attribute at a time."""
    source = str(spec.population.aggregated)
    stats = {attribute: GroupStatistics.from_confusion(part.rename(columns={"group": attribute}),
                                                       sensitive_features=[attribute], source=source)
             for attribute, part in table.groupby("attribute", sort=False)}
    unknown = [a for a in spec.sensitive_features if a not in stats]
    if unknown:
        raise DataError(f"{source}: sensitive_features names {unknown[0]!r}, which is not an attribute of the table. "
                        f"Attributes: {', '.join(map(str, stats))}.")
    return stats

