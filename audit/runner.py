"""One audit run: load, check, decide, review, measure, record, report.

A run takes an :class:`audit.spec.Audit` through a fixed sequence of steps,
each of which is timed, row-accounted and recorded in the data journey:

``source``
    load the population (synthetic, file, SQL or aggregated table);
``intake``
    run the intake suites on the case frame; with policy ``quarantine`` the
    offending cases are kept out of decisions (accounted for and listed);
``reference``
    compute the correct decision with the law's baseline (``truth.reference``)
    or read it from a column (``truth.column``);
``engine_input``
    build what the engine may see: the spec's features, sensitive columns
    withheld unless ``engine.sees_sensitive``; run its suites;
``decision``
    call the engine in batches and hold every answer to the decision
    contract: a case the engine cannot decide is an ``error`` row with a
    reason, never dropped; run the decision suites;
``review``
    resolve referred cases by recorded caseworker decisions or a caseworker
    model; overrides of the engine are recorded with who and why;
``final``
    the decision each applicant ends up with;
``measurement``
    compute group metrics, intervals, tests and findings.

Every case is accounted for: at each step rows in = rows out + rows rejected
+ rows errored. The run folder ``reports/<audit>/<run_id>/`` is written to a
temporary folder next to it and renamed when complete, so a reader never sees
half a run.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit._columns import (
    ERROR_LABEL,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_QUARANTINED,
    TRUTH_AMOUNT,
    TRUTH_OUTCOME,
    TRUTH_REASONS,
)
from audit._version import __version__
from audit.exceptions import CheckFailedError, DataError, SpecError
from audit.population import Population, load_population, sha256_file
from audit.result import AuditResult, jsonable
from audit.spec import Audit

__all__ = ["ARTIFACTS", "Progress", "make_run_id", "run_audit"]

ARTIFACTS: tuple[str, ...] = (
    "report.html",
    "report.md",
    "results.json",
    "metrics.csv",
    "decisions.parquet",
    "journey.parquet",
    "lineage.jsonl",
    "checks.json",
    "manifest.json",
)
"""Files of a complete run folder (DESIGN.md)."""

Progress = Callable[[str, str], None]
"""``progress(step, state)`` with state ``start`` or ``end``."""


def make_run_id(audit: Audit, *, now: datetime | None = None) -> str:
    """Return a run id: UTC timestamp plus the first 8 hex digits of the spec's hash.

    The id sorts by time and tells runs of different specs apart at a glance.
    """
    now = now or datetime.now(UTC)
    digest = hashlib.sha256(json.dumps(audit.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{digest}"


class _Steps:
    """Calls the progress callback and keeps step timings."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}

    def start(self, name: str) -> float:
        if self.progress:
            self.progress(name, "start")
        return time.perf_counter()

    def end(self, name: str, t0: float) -> None:
        self.timings[name] = time.perf_counter() - t0
        if self.progress:
            self.progress(name, "end")


def _engine_columns(audit: Audit, frame: pd.DataFrame, required: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Return (columns the engine sees, sensitive columns withheld)."""
    spec = audit.engine
    assert spec is not None
    sensitive = list(audit.sensitive_features)
    reserved: set[str] = {TRUTH_OUTCOME, TRUTH_AMOUNT, TRUTH_REASONS}
    if audit.truth.column:
        reserved.add(audit.truth.column)
    if audit.truth.amount:
        reserved.add(audit.truth.amount)
    if audit.review is not None:
        reserved.update(c for c in (audit.review.recorded, audit.review.amount) if c)
    if audit.compare is not None and audit.compare.kind == "recorded":
        reserved.update(c for c in (audit.compare.outcome, audit.compare.amount, audit.compare.reasons) if c)
    if audit.selection is not None:
        reserved.add(audit.selection.column)
    if spec.kind == "recorded":
        reserved.update(c for c in (spec.outcome, spec.amount, spec.reasons, spec.score) if c)
    if spec.features is not None:
        missing = [c for c in spec.features if c not in frame.columns]
        if missing:
            raise SpecError(
                f"{audit.source or '<spec>'}: engine.features names {missing[0]!r}, which is not a column of the "
                f"case frame. Columns: {', '.join(map(str, frame.columns))}."
            )
        features = ["case_id", *[c for c in spec.features if c != "case_id"]]
    else:
        features = [c for c in frame.columns if c not in reserved and (spec.sees_sensitive or c not in sensitive)]
    for c in required:
        if c in frame.columns and c not in features:
            features.append(c)
    withheld = [c for c in sensitive if c not in features]
    return features, withheld


def _check_step(
    audit: Audit, step: str, frame: pd.DataFrame, checks_out: list[dict[str, Any]]
) -> tuple[Any, dict[str, str]]:
    """Run a step's suites; return (report or None, {case_id: reason} to quarantine).

    With policy ``quarantine`` a failure that points at no case (a missing
    column, a wrong type, a table-level check) cannot be quarantined, so it
    stops the run as under ``fail``.
    """
    cfg = getattr(audit.checks, step)
    if cfg is None:
        return None, {}
    from audit.checks import validate

    suites = [audit.resolve(s) for s in cfg.suites]
    missing = [str(s) for s in suites if not Path(s).is_file()]
    if missing:
        raise SpecError(f"{audit.source or '<spec>'}: checks.{step}.suites names {missing[0]}, which does not exist.")
    report = validate(frame, suites, step=step, id_column="case_id", groups=list(audit.sensitive_features))
    entry = {"step": step, "policy": cfg.policy, **report.to_dict(), "gx_result": report.gx_result}
    checks_out.append(entry)  # gx_result is taken out again before results.json (see run_audit)
    if report.success:
        return report, {}
    if cfg.policy == "fail" or (cfg.policy == "quarantine" and not report.quarantinable):
        why = "policy fail" if cfg.policy == "fail" else "policy quarantine, but a failure points at no case"
        raise CheckFailedError(
            f"checks.{step} failed with {why}:\n{report.to_text(max_rows=20)}",
            failures=report.failures_table(),
        )
    if cfg.policy == "quarantine":
        failed = report.failed_cases()
        return report, {
            str(c): f"quarantined at {step}: {r}" for c, r in zip(failed["case_id"], failed["reasons"], strict=True)
        }
    return report, {}


def _truth(audit: Audit, frame: pd.DataFrame) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """Return per-case truth columns aligned with ``frame`` and a description."""
    t = audit.truth
    if t.reference:
        from audit.norms import ReferenceEngine

        ref = ReferenceEngine()
        dec = ref.decide(frame)
        out = pd.DataFrame(
            {
                "case_id": frame["case_id"].to_numpy(),
                TRUTH_OUTCOME: dec["outcome"].astype("str").where(dec["outcome"] != ERROR_LABEL).to_numpy(),
                TRUTH_AMOUNT: dec["amount"].astype("float64").to_numpy(),
                TRUTH_REASONS: dec["reasons"].astype("str").to_numpy(),
            }
        )
        errors = dec.get("error")
        n_err = int((errors.astype("str") != "").sum()) if errors is not None else 0
        return out, {
            "kind": "reference",
            "engine": {"name": ref.name, "version": ref.version, "definition_hash": getattr(ref, "definition_hash", None)},
            "undecidable": n_err,
        }
    if t.column:
        if t.column not in frame.columns:
            raise DataError(
                f"truth.column names {t.column!r}, which is not a column of the case frame. "
                f"Columns: {', '.join(map(str, frame.columns))}."
            )
        out = pd.DataFrame({"case_id": frame["case_id"].to_numpy(),
                            TRUTH_OUTCOME: frame[t.column].astype("str").where(frame[t.column].notna()).to_numpy()})
        if t.amount:
            out[TRUTH_AMOUNT] = pd.to_numeric(frame[t.amount], errors="coerce").to_numpy(dtype="float64")
        return out, {"kind": "column", "column": t.column, "positive": t.positive}
    return None, {"kind": "none"}


def _review(audit: Audit, frame: pd.DataFrame, decisions: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Resolve referred cases; return final_outcome/final_amount/decided_by/override columns."""
    out = pd.DataFrame(index=decisions.index)
    out["final_outcome"] = decisions["outcome"].astype("str")
    out["final_amount"] = decisions["amount"].astype("float64")
    out["decided_by"] = np.where(decisions["status"] == STATUS_OK, "engine", "none")
    out["override"] = False
    out["override_by"] = ""
    review_labels = set(audit.outcomes.review)
    referred = decisions["outcome"].isin(review_labels) & (decisions["status"] == STATUS_OK)
    info: dict[str, Any] = {"configured": audit.review is not None, "referred": int(referred.sum())}
    if audit.review is None:
        return out, info
    r = audit.review
    if r.recorded is not None:
        if r.recorded not in frame.columns:
            raise DataError(
                f"review.recorded names {r.recorded!r}, which is not a column of the case frame. "
                f"Columns: {', '.join(map(str, frame.columns))}."
            )
        by = frame.set_index("case_id")
        human = by[r.recorded].reindex(decisions["case_id"]).to_numpy()
        human_amount = (
            pd.to_numeric(by[r.amount], errors="coerce").reindex(decisions["case_id"]).to_numpy(dtype="float64")
            if r.amount
            else np.full(len(decisions), np.nan)
        )
        who = f"recorded:{r.recorded}"
    else:
        from audit.engine import build_engine  # a caseworker model is an engine of kind python
        from audit.spec import EngineSpec

        assert r.model is not None
        model = build_engine(EngineSpec(kind="python", target=r.model.target, options=r.model.options),
                             base_dir=audit.base_dir)
        sub = frame.set_index("case_id").loc[decisions.loc[referred, "case_id"]].reset_index()
        answer = model.decide(sub) if len(sub) else pd.DataFrame(columns=["case_id", "outcome", "amount"])
        answer = answer.set_index("case_id")
        human = pd.Series(answer["outcome"]).reindex(decisions["case_id"]).to_numpy()
        human_amount = pd.to_numeric(answer.get("amount"), errors="coerce").reindex(decisions["case_id"]).to_numpy(
            dtype="float64") if "amount" in answer else np.full(len(decisions), np.nan)
        who = f"model:{r.model.target}"
    human_s = pd.Series(human, index=decisions.index).astype("str").where(pd.notna(human))
    valid = set(audit.outcomes.labels) - review_labels
    unknown = human_s.notna() & ~human_s.isin(valid)
    if unknown.any():
        bad = human_s[unknown].iloc[0]
        raise DataError(
            f"review: the caseworker decision {bad!r} (from {who}) is not an outcome label. "
            f"Expected one of {', '.join(sorted(valid))}."
        )
    resolved = referred & human_s.notna()
    out.loc[resolved, "final_outcome"] = human_s[resolved]
    out.loc[resolved, "final_amount"] = np.where(
        np.isnan(human_amount[resolved.to_numpy()]),
        np.where(human_s[resolved].isin(audit.outcomes.favourable), np.nan, 0.0),
        human_amount[resolved.to_numpy()],
    )
    out.loc[resolved, "decided_by"] = "caseworker"
    # a recorded human decision that differs from an automatic engine decision is an override
    automatic = (decisions["status"] == STATUS_OK) & ~referred & human_s.notna()
    overridden = automatic & (human_s != decisions["outcome"].astype("str"))
    out.loc[overridden, "final_outcome"] = human_s[overridden]
    out.loc[overridden, "final_amount"] = np.where(
        np.isnan(human_amount[overridden.to_numpy()]), np.nan, human_amount[overridden.to_numpy()]
    )
    out.loc[overridden, "decided_by"] = "caseworker"
    out.loc[overridden, "override"] = True
    out.loc[resolved | overridden, "override_by"] = who
    info.update(
        {
            "by": who,
            "resolved": int(resolved.sum()),
            "unresolved": int((referred & ~resolved).sum()),
            "overrides": int(overridden.sum()),
        }
    )
    return out, info


def run_audit(
    audit: Audit,
    *,
    out: str | Path | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
    write: bool = True,
) -> AuditResult:
    """Run an audit end to end. See :meth:`audit.spec.Audit.run` and the module docstring."""
    from audit.journey import Journey

    started = datetime.now(UTC)
    run_id = run_id or make_run_id(audit, now=started)
    steps = _Steps(progress)
    checks_out: list[dict[str, Any]] = []

    # ---------------------------------------------------------------- source
    t0 = steps.start("source")
    population = load_population(audit)
    journey = Journey(run_id=run_id, audit_name=audit.name, namespace=audit.lineage.namespace,
                      provenance=population.provenance)
    source_inputs = [str(p) for p in population.inputs]
    with journey.step("source", actor="system", inputs=source_inputs, outputs=["cases"]) as st:
        if population.frame is not None:
            st.account(rows_in=population.source.get("rows", len(population.frame)), rows_out=len(population.frame))
            st.frames(None, population.frame)
        else:
            assert population.aggregated is not None
            st.account(rows_in=len(population.aggregated), rows_out=len(population.aggregated))
        if population.notes:
            st.note(notes=list(population.notes))
    steps.end("source", t0)

    if population.frame is None:
        return _run_aggregated(audit, population, journey, steps, run_id, started, out, write)

    cases = population.frame
    _check_columns(audit, cases)
    n_cases = len(cases)

    # ---------------------------------------------------------------- intake
    t0 = steps.start("intake")
    with journey.step("intake", actor="system", inputs=["cases"], outputs=["cases"]) as st:
        report, quarantine = _check_step(audit, "intake", cases, checks_out)
        if report is not None:
            st.checks(report.to_openlineage_assertions())
        q_mask = cases["case_id"].isin(list(quarantine))
        rejected = cases.loc[q_mask, "case_id"].map(quarantine)
        rejected.index = cases.loc[q_mask, "case_id"].to_numpy()
        st.account(rows_in=n_cases, rows_out=int((~q_mask).sum()), rejected=rejected if len(rejected) else None)
        st.frames(cases, cases.loc[~q_mask],
                  status=pd.Series(STATUS_QUARANTINED, index=rejected.index) if len(rejected) else "ok",
                  reason=rejected if len(rejected) else None)
    steps.end("intake", t0)
    status = pd.Series(STATUS_OK, index=cases.index, dtype="str")
    status[q_mask] = STATUS_QUARANTINED
    status_reason = pd.Series("", index=cases.index, dtype="str")
    status_reason[q_mask] = cases.loc[q_mask, "case_id"].map(quarantine)
    live = cases.loc[~q_mask].reset_index(drop=True)

    # ---------------------------------------------------------------- truth
    truth, truth_info = None, {"kind": "none"}
    if audit.truth.reference or audit.truth.column:
        t0 = steps.start("reference")
        with journey.step("reference", actor="system", inputs=["cases"], outputs=["truth"]) as st:
            truth, truth_info = _truth(audit, cases)
            st.account(rows_in=n_cases, rows_out=n_cases)
            if "engine" in truth_info:
                st.note(engine=truth_info["engine"])
        steps.end("reference", t0)

    # ---------------------------------------------------------------- engine input
    from audit.engine import build_engine, run_engine

    assert audit.engine is not None
    t0 = steps.start("engine_input")
    engine = build_engine(audit.engine, base_dir=audit.base_dir)
    required = tuple(getattr(engine, "required_columns", ()) or ())
    features, withheld = _engine_columns(audit, cases, required)
    engine_input = live[features]
    journey.mark_engine_features([c for c in features if c != "case_id"])
    with journey.step("engine_input", actor="system", inputs=["cases"], outputs=["engine_input"]) as st:
        report, quarantine2 = _check_step(audit, "engine_input", engine_input, checks_out)
        if report is not None:
            st.checks(report.to_openlineage_assertions())
        q2 = engine_input["case_id"].isin(list(quarantine2))
        rejected = engine_input.loc[q2, "case_id"].map(quarantine2)
        rejected.index = engine_input.loc[q2, "case_id"].to_numpy()
        st.account(rows_in=len(engine_input), rows_out=int((~q2).sum()), rejected=rejected if len(rejected) else None)
        st.frames(live, engine_input.loc[~q2],
                  status=pd.Series(STATUS_QUARANTINED, index=rejected.index) if len(rejected) else "ok",
                  reason=rejected if len(rejected) else None)
        st.note(features=[c for c in features if c != "case_id"], withheld=withheld)
    if q2.any():
        mask = cases["case_id"].isin(list(quarantine2))
        status[mask] = STATUS_QUARANTINED
        status_reason[mask] = cases.loc[mask, "case_id"].map(quarantine2)
        engine_input = engine_input.loc[~q2].reset_index(drop=True)
    steps.end("engine_input", t0)

    # ---------------------------------------------------------------- decide
    t0 = steps.start("decision")
    engine_meta = {
        "name": getattr(engine, "name", audit.engine.kind),
        "version": str(getattr(engine, "version", "")),
        "definition_hash": getattr(engine, "definition_hash", None),
    }
    with journey.step("decision", actor="system", inputs=["engine_input"], outputs=["decisions"],
                      engine=engine_meta) as st:
        erun = run_engine(
            engine,
            engine_input,
            labels=audit.outcomes.labels,
            batch_size=audit.engine.batch_size,
            workers=audit.engine.workers,
            error_budget=audit.engine.error_budget,
            timeout_s=audit.engine.batch_timeout_s,
        )
        dec = erun.decisions
        errored = dec.loc[dec["status"] == STATUS_ERROR]
        err_series = pd.Series(errored["error_reason"].to_numpy(), index=errored["case_id"].to_numpy())
        st.account(rows_in=len(engine_input), rows_out=int((dec["status"] == STATUS_OK).sum()),
                   errored=err_series if len(err_series) else None)
        st.frames(engine_input, dec, status=dec["status"], reason=dec["error_reason"])
        decision_report, quarantine3 = _check_step(audit, "decisions", dec, checks_out)
        extra = getattr(erun, "extra", None)
        st.note(errors=int(erun.n_errors), extra_rows=0 if extra is None else len(extra))
    steps.end("decision", t0)

    # ---------------------------------------------------------------- review
    t0 = steps.start("review")
    with journey.step("review", actor="caseworker" if audit.review is not None else "system",
                      inputs=["decisions"], outputs=["final"]) as st:
        rev, review_info = _review(audit, cases, dec)
        st.account(rows_in=len(dec), rows_out=len(dec))
        if review_info.get("overrides") or review_info.get("resolved"):
            why = np.where(
                rev["override"].to_numpy(),
                "caseworker decision recorded against the engine's automatic outcome",
                "referred by the engine: " + dec["reasons"].astype("str").to_numpy(),
            )
            changed = dec[["case_id"]].assign(outcome=dec["outcome"], final_outcome=rev["final_outcome"],
                                              override=rev["override"], by=rev["override_by"], why=why)
            journey.record_overrides(changed.loc[rev["decided_by"] == "caseworker"],
                                     review_labels=audit.outcomes.review)
        st.note(**review_info)
    steps.end("review", t0)

    # ---------------------------------------------------------------- final frame
    final = _final_frame(audit, cases, status, status_reason, dec, rev, truth, quarantine3)
    with journey.step("final", actor="system", inputs=["decisions", "cases"], outputs=["final"]) as st:
        errored = final.loc[final["status"] == STATUS_ERROR]
        quarantined = final.loc[final["status"] == STATUS_QUARANTINED]
        st.account(
            rows_in=n_cases,
            rows_out=int((final["status"] == STATUS_OK).sum()),
            rejected=pd.Series(quarantined["status_reason"].to_numpy(), index=quarantined["case_id"].to_numpy())
            if len(quarantined) else None,
            errored=pd.Series(errored["status_reason"].to_numpy(), index=errored["case_id"].to_numpy())
            if len(errored) else None,
        )
        st.frames(None, final, status=final["status"], reason=final["status_reason"])
        if decision_report is not None:  # the decision suites check this step's input
            st.checks(decision_report.to_openlineage_assertions(), dataset="decisions")
        report, _ = _check_step(audit, "final", final, checks_out)
        if report is not None:
            st.checks(report.to_openlineage_assertions())

    # ---------------------------------------------------------------- compare
    compare_frame, compare_info = None, None
    if audit.compare is not None:
        t0 = steps.start("compare")
        with journey.step("compare", actor="system", inputs=["cases"], outputs=["comparison"]) as st:
            compare_frame, compare_info = _compare(audit, cases, live, final)
            st.account(rows_in=len(final), rows_out=len(final))
            st.note(**{k: v for k, v in compare_info.items() if isinstance(v, (int, float, str))})
        steps.end("compare", t0)

    # ---------------------------------------------------------------- counterfactual
    cf_result = None
    if audit.counterfactual is not None:
        t0 = steps.start("counterfactual")
        with journey.step("counterfactual", actor="system", inputs=["cases"], outputs=["twins"]) as st:
            cf_result = _counterfactual(audit, engine, live, features, dec)
            st.account(rows_in=len(live), rows_out=len(live))
        steps.end("counterfactual", t0)

    # ---------------------------------------------------------------- measure
    t0 = steps.start("measurement")
    from audit.metrics import evaluate_thresholds, measure

    with journey.step("measurement", actor="system", inputs=["final"], outputs=["metrics"]) as st:
        tables = [_measure(audit, final, measure)]
        if audit.selection is not None:
            tables.append(_measure_selection(audit, cases, final))
        if compare_frame is not None:
            tables.append(_measure_comparison(audit, final, compare_frame))
        if cf_result is not None:
            tables.append(cf_result.metrics)
        metrics = _adjust_all(audit, tables)
        findings = evaluate_thresholds(metrics, audit.thresholds)
        st.account(rows_in=len(final), rows_out=len(final))
        st.note(metric_rows=len(metrics), findings=len(findings))
    steps.end("measurement", t0)

    engine_info = {
        "kind": audit.engine.kind,
        **engine_meta,
        "features": [c for c in features if c != "case_id"],
        "withheld": withheld,
        "sees_sensitive": audit.engine.sees_sensitive,
        "error_budget": audit.engine.error_budget,
        "n_cases": int(erun.n_cases),
        "n_errors": int(erun.n_errors),
        "batches": int(erun.batches),
        "duration_s": float(erun.duration_s),
        "cases_per_s": float(erun.n_cases / erun.duration_s) if erun.duration_s > 0 else None,
        "review": review_info,
        "truth": truth_info,
        **({"compare": compare_info} if compare_info else {}),
        **({"counterfactual": _cf_summary(cf_result)} if cf_result is not None else {}),
    }
    population_info = _population_info(population, final)
    gx_results = {e["step"]: e.pop("gx_result") for e in checks_out if e.get("gx_result") is not None}
    for e in checks_out:
        e.pop("gx_result", None)
    result = AuditResult.build(
        decisions=final,
        run_id=run_id,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        spec=audit.to_dict(),
        population=population_info,
        engine=engine_info,
        checks=checks_out,
        journey={"steps": journey.steps, "fields": journey.field_provenance(), "timings": steps.timings},
        metrics=_metric_records(metrics),
        findings=findings,
    )
    if not write:
        return result
    return _write_run(audit, result, final, journey, population, out, steps, gx_results=gx_results)


def _check_columns(audit: Audit, cases: pd.DataFrame) -> None:
    missing = [c for c in audit.sensitive_features if c not in cases.columns]
    if missing:
        p = audit.population
        where = p.file or p.synthetic or p.url
        raise DataError(
            f"{audit.source or '<spec>'}: sensitive_features names {missing[0]!r}, which is not a column of the "
            f"case frame from {where}. Columns: {', '.join(map(str, cases.columns))}."
        )


def _final_frame(
    audit: Audit,
    cases: pd.DataFrame,
    status: pd.Series,
    status_reason: pd.Series,
    dec: pd.DataFrame,
    rev: pd.DataFrame,
    truth: pd.DataFrame | None,
    quarantined_decisions: dict[str, str],
) -> pd.DataFrame:
    """One row per case of the population, in population order (decisions.parquet)."""
    final = cases[["case_id", *audit.sensitive_features]].copy()
    d = dec.assign(**{c: rev[c] for c in rev.columns}).set_index("case_id")
    ids = final["case_id"]
    outcome = d["outcome"].reindex(ids)
    final["outcome"] = outcome.astype("str").where(outcome.notna()).to_numpy()
    final["amount"] = d["amount"].reindex(ids).astype("float64").to_numpy()
    final["score"] = (d["score"].reindex(ids).astype("float64").to_numpy()
                      if "score" in d.columns else np.full(len(final), np.nan))
    reasons = d["reasons"].reindex(ids) if "reasons" in d.columns else pd.Series("", index=ids)
    final["reasons"] = reasons.astype("str").where(reasons.notna(), "").to_numpy()
    fo = d["final_outcome"].reindex(ids)
    final["final_outcome"] = fo.astype("str").where(fo.notna()).to_numpy()
    final["final_amount"] = d["final_amount"].reindex(ids).astype("float64").to_numpy()
    final["decided_by"] = d["decided_by"].reindex(ids).astype("str").where(fo.notna(), "none").to_numpy()
    final["override"] = d["override"].reindex(ids).fillna(False).astype(bool).to_numpy()
    if truth is not None:
        t = truth.set_index("case_id").reindex(ids)
        for col in (TRUTH_OUTCOME, TRUTH_AMOUNT, TRUTH_REASONS):
            if col in t.columns:
                final[col] = t[col].to_numpy()
    st = status.copy()
    reason = status_reason.copy()
    dstat = d["status"].reindex(ids).to_numpy()
    derr = d["error_reason"].reindex(ids).to_numpy()
    is_err = (dstat == STATUS_ERROR) & (st.to_numpy() == STATUS_OK)
    st[is_err] = STATUS_ERROR
    reason[is_err] = derr[is_err]
    if quarantined_decisions:
        qd = final["case_id"].isin(list(quarantined_decisions)).to_numpy() & (st.to_numpy() == STATUS_OK)
        st[qd] = STATUS_QUARANTINED
        reason[qd] = final.loc[qd, "case_id"].map(quarantined_decisions).to_numpy()
    final["status"] = st.to_numpy()
    final["status_reason"] = reason.to_numpy()
    final.loc[final["status"] == STATUS_QUARANTINED, ["outcome", "final_outcome"]] = np.nan
    final.loc[final["status"] == STATUS_ERROR, ["outcome", "final_outcome"]] = ERROR_LABEL
    return final.reset_index(drop=True)


def _measure(audit: Audit, final: pd.DataFrame, measure: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    o = audit.outcomes
    pred_positive = o.positive or ([audit.truth.positive] if audit.truth.positive else ["deny"])
    truth_positive = [audit.truth.positive] if audit.truth.positive else None
    return measure(
        final,
        sensitive_features=audit.sensitive_features,
        intersections=audit.intersections,
        reference_groups=audit.reference_groups,
        favourable=o.favourable,
        review=o.review,
        pred_positive=pred_positive,
        truth_positive=truth_positive,
        statistics=audit.statistics,
        seed=audit.seed,
    )


def _compare(
    audit: Audit, cases: pd.DataFrame, live: pd.DataFrame, final: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Decide the same cases with the second engine (or read recorded decisions)."""
    from audit.engine import build_engine, run_engine

    spec = audit.compare
    assert spec is not None
    engine = build_engine(spec, base_dir=audit.base_dir)
    required = tuple(getattr(engine, "required_columns", ()) or ())
    shadow = audit.model_copy(update={"engine": spec})
    features, withheld = _engine_columns(shadow, cases, required)
    erun = run_engine(engine, live[features], labels=audit.outcomes.labels, batch_size=spec.batch_size,
                      workers=spec.workers, error_budget=spec.error_budget, timeout_s=spec.batch_timeout_s)
    d = erun.decisions.set_index("case_id").reindex(final["case_id"])
    frame = pd.DataFrame({
        "case_id": final["case_id"].to_numpy(),
        "compare_outcome": d["outcome"].astype("str").where(d["status"] == STATUS_OK).to_numpy(),
        "compare_amount": d["amount"].astype("float64").to_numpy(),
        "compare_status": d["status"].astype("str").where(d["status"].notna(), STATUS_QUARANTINED).to_numpy(),
    })
    info = {
        "kind": spec.kind,
        "name": getattr(engine, "name", spec.kind),
        "version": str(getattr(engine, "version", "")),
        "definition_hash": getattr(engine, "definition_hash", None),
        "n_errors": int(erun.n_errors),
        "features": [c for c in features if c != "case_id"],
        "withheld": withheld,
    }
    return frame, info


def _counterfactual(audit: Audit, engine: Any, live: pd.DataFrame, features: list[str], dec: pd.DataFrame) -> Any:
    """Decide counterfactual twins and paired personas with the same engine."""
    from audit.counterfactual import run_counterfactual

    assert audit.counterfactual is not None
    return run_counterfactual(
        live,
        spec=audit.counterfactual,
        engine=engine,
        features=features,
        labels=audit.outcomes.labels,
        favourable=audit.outcomes.favourable,
        sensitive_features=audit.sensitive_features,
        statistics=audit.statistics,
        seed=audit.seed,
        base_decisions=dec,
        base_dir=audit.base_dir,
        source=audit.source or "<spec>",
        reference_groups=audit.reference_groups,
        population=audit.resolve(audit.population.synthetic) if audit.population.synthetic else None,
        batch_size=audit.engine.batch_size if audit.engine else None,
        workers=audit.engine.workers if audit.engine else 1,
    )


def _cf_summary(cf: Any) -> dict[str, Any]:
    """The part of a counterfactual result that goes into results.json besides its metric rows."""
    data = dict(cf.to_dict())
    data.pop("metrics", None)
    return data


def _measure_comparison(audit: Audit, final: pd.DataFrame, compare_frame: pd.DataFrame) -> pd.DataFrame:
    from audit.compare import compare_decisions

    frame = final[["case_id", *audit.sensitive_features, "status"]].copy()
    frame["outcome"] = final["final_outcome"].to_numpy()
    frame["amount"] = final["final_amount"].to_numpy()
    frame["compare_outcome"] = compare_frame["compare_outcome"].to_numpy()
    frame["compare_amount"] = compare_frame["compare_amount"].to_numpy()
    bad = compare_frame["compare_status"].to_numpy() != STATUS_OK
    frame.loc[bad & (frame["status"] == STATUS_OK).to_numpy(), "status"] = STATUS_ERROR
    return compare_decisions(
        frame,
        sensitive_features=audit.sensitive_features,
        intersections=audit.intersections,
        favourable=audit.outcomes.favourable,
        reference_groups=audit.reference_groups,
        statistics=audit.statistics,
        seed=audit.seed,
    )


def _measure_selection(audit: Audit, cases: pd.DataFrame, final: pd.DataFrame) -> pd.DataFrame:
    from audit.selection import measure_selection

    sel = audit.selection
    assert sel is not None
    if sel.column not in cases.columns:
        raise DataError(
            f"selection.column names {sel.column!r}, which is not a column of the case frame. "
            f"Columns: {', '.join(map(str, cases.columns))}."
        )
    frame = final.copy()
    frame[sel.column] = cases[sel.column].to_numpy()
    truth_positive = [audit.truth.positive] if audit.truth.positive else list(audit.outcomes.positive or ["deny"])
    return measure_selection(
        frame,
        selection=sel,
        sensitive_features=audit.sensitive_features,
        intersections=audit.intersections,
        reference_groups=audit.reference_groups,
        truth_column=TRUTH_OUTCOME if TRUTH_OUTCOME in frame.columns else None,
        truth_positive=truth_positive,
        statistics=audit.statistics,
        seed=audit.seed,
    )


def _adjust_all(audit: Audit, tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate metric tables and correct every test of the run together.

    Each table's own ``p_adjusted`` is replaced: the family for the
    correction is every test in the run (Holm by default), as the spec's
    ``statistics.correction`` says.
    """
    from audit.metrics import adjust_pvalues

    from audit.metrics._significance import z_power_sum

    tables = [t for t in tables if t is not None and len(t)]
    if not tables:
        return pd.DataFrame()
    alpha = audit.statistics.alpha
    corrected = audit.statistics.correction != "none"
    m_total = sum(int(t["p_value"].notna().sum()) for t in tables if "p_value" in t.columns)
    scaled = []
    for t in tables:
        t = t.copy()
        m_table = int(t["p_value"].notna().sum()) if "p_value" in t.columns else 0
        if corrected and "mdd" in t.columns and m_table and m_total != m_table:
            # each module sized its detectable differences for its own tests (alpha / m_table);
            # the run's family is every test, so rescale to alpha / m_total
            factor = float(z_power_sum(alpha / m_total) / z_power_sum(alpha / m_table))
            t["mdd"] = t["mdd"].astype("float64") * factor
        scaled.append(t)
    metrics = pd.concat(scaled, ignore_index=True, sort=False) if len(scaled) > 1 else scaled[0]
    if "p_value" in metrics.columns:
        p = metrics["p_value"].to_numpy(dtype="float64")
        metrics["p_adjusted"] = adjust_pvalues(p, method=audit.statistics.correction)
    return metrics


def _metric_records(metrics: pd.DataFrame) -> list[dict[str, Any]]:
    records = metrics.to_dict(orient="records")
    return [jsonable(r) for r in records]


def _population_info(population: Population, final: pd.DataFrame | None) -> dict[str, Any]:
    info: dict[str, Any] = {**population.source, "n_cases": population.n, "provenance": population.provenance}
    if population.notes:
        info["notes"] = list(population.notes)
    if population.bias:
        info["bias"] = population.bias
    if final is not None:
        counts = final["status"].value_counts()
        info["status_counts"] = {k: int(counts.get(k, 0)) for k in (STATUS_OK, STATUS_ERROR, STATUS_QUARANTINED)}
    return info


def _run_aggregated(
    audit: Audit,
    population: Population,
    journey: Any,
    steps: _Steps,
    run_id: str,
    started: datetime,
    out: str | Path | None,
    write: bool,
) -> AuditResult:
    """Measure an aggregated table: group-level binary metrics only."""
    from audit.metrics import GroupStatistics, evaluate_thresholds, measure_statistics

    t0 = steps.start("measurement")
    table = population.aggregated
    assert table is not None
    with journey.step("measurement", actor="system", inputs=["cases"], outputs=["metrics"]) as st:
        source = str(audit.population.aggregated)
        stats = {
            attribute: GroupStatistics.from_confusion(
                part.rename(columns={"group": attribute}), sensitive_features=[attribute], source=source
            )
            for attribute, part in table.groupby("attribute", sort=False)
        }
        unknown = [a for a in audit.sensitive_features if a not in stats]
        if unknown:
            raise DataError(
                f"{source}: sensitive_features names {unknown[0]!r}, which is not an attribute of the table. "
                f"Attributes: {', '.join(map(str, stats))}."
            )
        metrics = measure_statistics(
            stats,
            sensitive_features=audit.sensitive_features,
            reference_groups=audit.reference_groups,
            statistics=audit.statistics,
            seed=audit.seed,
        )
        findings = evaluate_thresholds(metrics, audit.thresholds)
        st.account(rows_in=len(table), rows_out=len(table))
    steps.end("measurement", t0)
    result = AuditResult.build(
        decisions=None,
        run_id=run_id,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        spec=audit.to_dict(),
        population=_population_info(population, None),
        engine=None,
        checks=[],
        journey={"steps": journey.steps, "fields": journey.field_provenance(), "timings": steps.timings},
        metrics=_metric_records(metrics),
        findings=findings,
    )
    if not write:
        return result
    return _write_run(audit, result, None, journey, population, out, steps)


# ---------------------------------------------------------------------------
# writing the run folder


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"insyn": __version__, "python": platform.python_version()}
    for dist in ("pandas", "numpy", "scipy", "scikit-learn", "fairlearn", "great-expectations",
                 "openlineage-python", "duckdb", "pyarrow", "pydantic"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[dist] = "not installed"
    return out


def _write_run(
    audit: Audit,
    result: AuditResult,
    final: pd.DataFrame | None,
    journey: Any,
    population: Population,
    out: str | Path | None,
    steps: _Steps,
    *,
    gx_results: dict[str, Any] | None = None,
) -> AuditResult:
    from audit.report import render_html, render_markdown, render_metrics_csv

    root = Path(out) if out is not None else Path.cwd() / "reports"
    parent = root / audit.name
    parent.mkdir(parents=True, exist_ok=True)
    target = parent / result.run_id
    if target.exists():
        raise DataError(f"{target}: the run folder already exists. Expected a new run id.")
    tmp = Path(tempfile.mkdtemp(prefix=f".{result.run_id}.", dir=parent))
    t0 = steps.start("record")
    try:
        (tmp / "results.json").write_text(result.to_json(), encoding="utf-8")
        (tmp / "metrics.csv").write_text(render_metrics_csv(result), encoding="utf-8")
        if final is None:
            final = pd.DataFrame({"case_id": pd.Series(dtype="str"), "status": pd.Series(dtype="str")})
        final.to_parquet(tmp / "decisions.parquet", index=False)
        journey.write_cases(tmp / "journey.parquet")
        journey.write_lineage(tmp / "lineage.jsonl")
        lineage = audit.lineage  # spec, else openlineage.yml / OPENLINEAGE_URL; nothing configured sends nothing
        journey.emit(lineage.url, timeout_s=lineage.timeout_s, api_key=lineage.api_key, transport=lineage.transport,
                     path=audit.resolve(lineage.path) if lineage.path else None)
        gx = gx_results or {}  # each step's great-expectations result, beside Insyn's summary
        checks = [{**e, "gx_result": gx[e["step"]]} if e["step"] in gx else e for e in result.to_dict()["checks"]]
        (tmp / "checks.json").write_text(json.dumps(jsonable(checks), indent=2, ensure_ascii=False), encoding="utf-8")
        language = audit.report.language
        (tmp / "report.html").write_text(render_html(result, language=language), encoding="utf-8")
        (tmp / "report.md").write_text(render_markdown(result, language=language), encoding="utf-8")
        inputs: dict[str, str] = {}
        if audit.source and Path(audit.source).is_file():
            inputs[str(audit.source)] = sha256_file(audit.source)
        for p in population.inputs:
            inputs[str(p)] = sha256_file(p)
        for step in ("intake", "engine_input", "decisions", "final"):
            cfg = getattr(audit.checks, step)
            for s in cfg.suites if cfg else []:
                inputs[s] = sha256_file(audit.resolve(s))
        if audit.engine is not None and audit.engine.path:
            p = audit.resolve(audit.engine.path)
            if p.is_file():
                inputs[audit.engine.path] = sha256_file(p)
        artifacts = {name: sha256_file(tmp / name) for name in ARTIFACTS if name != "manifest.json"}
        manifest = {
            "run_id": result.run_id,
            "audit": audit.name,
            "seed": audit.seed,
            "spec": audit.to_dict(),
            "versions": _versions(),
            "platform": {"system": platform.system(), "machine": platform.machine()},
            "inputs": inputs,
            "artifacts": artifacts,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        missing = [a for a in ARTIFACTS if not (tmp / a).is_file()]
        if missing:  # pragma: no cover - guarded by tests
            raise RuntimeError(f"run folder incomplete: {missing}")
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    steps.end("record", t0)
    object.__setattr__(result, "run_dir", target)
    return result
