"""One audit run: a table of steps over one run state.

Each step of a run is a small function over the :class:`RunState`: it sets what it produces on the state and returns
a :class:`Record` of what the data journey holds for it (rows in, out, rejected and errored with reasons, the frames
before and after, check assertions, notes). One wrapper, :func:`run_step`, reports progress, times the step once, runs
the step's ``prepare`` hook (what its declaration needs: the population's files, the engine's features), opens the
journey step and records the :class:`Record`; the journey refuses a step whose rows do not add up.

Step tables (one is chosen per run by :func:`steps_for`):

``ROW_STEPS`` (a case frame and an engine)
    ``source``; ``intake`` (the sensitive columns exist; the intake suites, whose policy ``quarantine``
    keeps offending cases out); ``reference`` (the correct decision, when ``truth`` asks);
    ``engine_input`` (what the engine may see; its suites); ``decision`` (the engine under the decision
    contract; the decision suites); ``review`` (:mod:`audit.review`); ``final`` (the decision each
    applicant ends up with: journaled, neither timed nor reported to ``progress``); ``compare``,
    ``counterfactual`` and ``attribution`` (when configured); ``measurement`` (every analysis's metric table
    and subgroup discovery's tests when ``discover:`` asks, corrected together by
    :func:`audit.metrics.correct_family`; findings).
``RECORDED_STEPS`` (``engine.kind: recorded``)
    a recorded engine replays decisions through the same decision contract, so every row-level step applies.
``AGGREGATED_STEPS`` (``population.aggregated``)
    ``source``, then ``measurement`` of group-level binary metrics.

A case's status and reason live in one place, the run's :class:`~audit._steps.CaseStatus`: quarantine at intake and
engine input, engine errors and decision-suite quarantine mark it (the first problem wins); the final frame reads it.
The runner builds no result and writes no file (:mod:`audit.audit`, :mod:`audit.record`); the work on frames behind
the steps is in :mod:`audit._steps`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from audit import _memory, _steps
from audit._columns import STATUS_ERROR, STATUS_OK, STATUS_QUARANTINED
from audit._steps import CaseStatus, assertions, by_case_id, quarantined, seen
from audit.attribution import Attribution, attribute_run, basis_cases
from audit.checks import CheckReport
from audit.counterfactual import CounterfactualResult
from audit.engine import EngineRun, build_engine, run_engine
from audit.journey import Journey
from audit.metrics import DiscoveryResult
from audit.population import Population, load_population
from audit.review import Review, review
from audit.spec import AuditSpec

__all__ = ["AGGREGATED_STEPS", "CaseStatus", "Progress", "RECORDED_STEPS", "ROW_STEPS", "Record", "RunState", "Step",
           "engine_info", "make_run_id", "population_info", "run", "run_step", "steps_for"]

Progress = Callable[[str, str], None]
"""``progress(step, state)`` with state ``start`` or ``end``."""


def make_run_id(spec: AuditSpec, *, now: datetime | None = None) -> str:
    """Return a run id: UTC timestamp plus the first 8 hex digits of the spec's hash (sorts by time)."""
    now = now or datetime.now(UTC)
    digest = hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{digest}"


@dataclass
class Record:
    """What the journey records for one step (see :class:`audit.journey.StepRecorder`)."""

    rows_in: int
    rows_out: int
    rejected: pd.Series | None = None
    errored: pd.Series | None = None
    frames: tuple[pd.DataFrame | None, pd.DataFrame] | None = None
    status: pd.Series | str = "ok"
    reason: pd.Series | None = None
    checks: list[tuple[list[dict[str, Any]], str | None]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    overrides: pd.DataFrame | None = None


@dataclass
class RunState:
    """The state of one run, filled in step by step: the spec, population and journey; the frames passed between steps
    (cases, live cases, truth, engine input, the engine's run, final); the case status; the engine and its features;
    the review, comparison, counterfactual, attribution, discovery; metrics, stage funnel, findings, checks, timings."""

    spec: AuditSpec
    run_id: str
    progress: Progress | None = None
    population: Population | None = None
    journey: Journey = field(init=False)
    cases: pd.DataFrame | None = None
    status: CaseStatus | None = None
    live: pd.DataFrame | None = None
    truth: pd.DataFrame | None = None
    truth_info: dict[str, Any] = field(default_factory=lambda: {"kind": "none"})
    engine: Any = None
    features: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)
    engine_input: pd.DataFrame | None = None
    engine_run: EngineRun | None = None
    decision_report: CheckReport | None = None
    review: Review | None = None
    final: pd.DataFrame | None = None
    compare: pd.DataFrame | None = None
    compare_info: dict[str, Any] | None = None
    counterfactual: CounterfactualResult | None = None
    discovered: DiscoveryResult | None = None
    attribution: Attribution | None = None
    funnel: pd.DataFrame | None = None  # corrected in the run's family (audit._steps.measured)
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    findings: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def engine_meta(self) -> dict[str, Any]:
        """Name, version and definition hash of the engine under audit."""
        kind = self.spec.engine.kind if self.spec.engine else ""
        return {"name": getattr(self.engine, "name", kind), "version": str(getattr(self.engine, "version", "")),
                "definition_hash": getattr(self.engine, "definition_hash", None)}


@dataclass(frozen=True)
class Step:
    """One row of a step table: the journey step's declaration and the function that does the work."""

    name: str
    work: Callable[[RunState], Record]
    inputs: tuple[str, ...] = ("cases",)
    outputs: tuple[str, ...] = ()
    prepare: Callable[[RunState], None] | None = None
    declare: Callable[[RunState], dict[str, Any]] | None = None  # journey.step keywords known only at run time
    when: Callable[[AuditSpec], bool] = lambda spec: True
    timed: bool = True


def run_step(state: RunState, step: Step) -> None:
    """Run one step: progress, one timing, the journey step and its row accounting."""
    if step.timed and state.progress:
        state.progress(step.name, "start")
    t0 = time.perf_counter()
    if step.prepare is not None:
        step.prepare(state)
    declared = {"actor": "system", "inputs": list(step.inputs), "outputs": list(step.outputs),
                **(step.declare(state) if step.declare else {})}
    with state.journey.step(step.name, **declared) as st:
        rec = step.work(state)
        st.account(rows_in=rec.rows_in, rows_out=rec.rows_out, rejected=rec.rejected, errored=rec.errored)
        if rec.frames is not None:
            st.frames(*rec.frames, status=rec.status, reason=rec.reason)
        for assertions, dataset in rec.checks:
            st.checks(assertions, dataset=dataset)
        if rec.overrides is not None:
            state.journey.record_overrides(rec.overrides, review_labels=state.spec.outcomes.review)
        if rec.notes:
            st.note(**rec.notes)
    if step.timed:
        state.timings[step.name] = time.perf_counter() - t0
        if state.progress:
            state.progress(step.name, "end")


def _load(state: RunState) -> None:
    spec, state.population = state.spec, load_population(state.spec)
    state.journey = Journey(run_id=state.run_id, audit_name=spec.name, namespace=spec.lineage.namespace,
                            provenance=state.population.provenance)


def _source(state: RunState) -> Record:
    """The case frame; every case starts ``ok``."""
    pop = state.population
    state.cases, state.status = pop.frame, CaseStatus(pop.frame["case_id"])
    return Record(pop.source.get("rows", len(pop.frame)), len(pop.frame), frames=(None, pop.frame),
                  notes={"notes": list(pop.notes)} if pop.notes else {})


def _source_table(state: RunState) -> Record:
    """An aggregated table: per-group counts, no cases."""
    pop, n = state.population, len(state.population.aggregated)
    return Record(n, n, notes={"notes": list(pop.notes)} if pop.notes else {})


def _intake(state: RunState) -> Record:
    """The intake suites; quarantined cases are kept out of decisions."""
    cases = state.cases
    report, quarantine = _steps.check_step(state.spec, "intake", cases, state.checks)
    state.live, removed = quarantined(cases, quarantine)
    state.status.mark(STATUS_QUARANTINED, quarantine)
    return Record(len(cases), len(state.live), frames=(cases, state.live), checks=assertions(report), **removed)


def _reference(state: RunState) -> Record:  # a case the law's baseline cannot decide is an error, never ok
    state.truth, state.truth_info = _steps.truth(state.spec, basis_cases(state.spec, state.cases, state.population))
    state.status.mark(STATUS_ERROR, errored := _steps.undecidable(state.truth))
    return Record(len(state.cases), len(state.cases) - len(errored), errored=errored if len(errored) else None,
                  notes={"engine": state.truth_info["engine"]} if "engine" in state.truth_info else {})


def _build_engine(state: RunState) -> None:
    spec = state.spec
    state.engine = build_engine(spec.engine, base_dir=spec.base_dir)
    required = getattr(state.engine, "required_columns", ())
    state.features, state.withheld = _steps.engine_columns(spec, spec.engine, state.cases, required)
    state.journey.mark_engine_features(seen(state.features))


def _engine_input(state: RunState) -> Record:
    """What the engine may see, checked by its suites."""
    given = state.live[state.features]
    report, quarantine = _steps.check_step(state.spec, "engine_input", given, state.checks)
    state.engine_input, removed = quarantined(given, quarantine)
    state.status.mark(STATUS_QUARANTINED, quarantine)
    return Record(len(given), len(state.engine_input), frames=(state.live, state.engine_input),
                  checks=assertions(report), notes={"features": seen(state.features), "withheld": state.withheld},
                  **removed)


def _decide(state: RunState) -> Record:
    """The engine under the decision contract (a case it cannot decide is an error with a reason); its suites."""
    e = state.spec.engine
    run = state.engine_run = run_engine(state.engine, state.engine_input, labels=state.spec.outcomes.labels,
                                        batch_size=e.batch_size, workers=e.workers, error_budget=e.error_budget,
                                        timeout_s=e.batch_timeout_s)
    dec, ok = run.decisions, run.decisions["status"] == STATUS_OK
    state.status.mark(STATUS_ERROR, errored := by_case_id(dec.loc[~ok], dec.loc[~ok, "error_reason"]))
    state.decision_report, quarantine = _steps.check_step(state.spec, "decisions", dec, state.checks)
    state.status.mark(STATUS_QUARANTINED, quarantine)
    state.status.mark(STATUS_ERROR, _steps.missing_amounts(dec))  # a grant without an amount is never silently ok
    return Record(len(state.engine_input), int(ok.sum()), errored=errored if len(errored) else None,
                  frames=(state.engine_input, dec), status=dec["status"], reason=dec["error_reason"],
                  notes={"errors": int(run.n_errors), "extra_rows": 0 if run.extra is None else len(run.extra)})


def _review(state: RunState) -> Record:
    state.review = review(state.spec, state.cases, dec := state.engine_run.decisions)
    return Record(len(dec), len(dec), overrides=state.review.decided, notes=state.review.info)


def _final(state: RunState) -> Record:
    """The decision each applicant ends up with, and the case status."""
    final = state.final = _steps.final_frame(state.spec, state.cases, state.engine_run.decisions, state.review.frame,
                                             state.truth, state.status.status, state.status.reason)
    st = final["status"]
    q, err = final.loc[st == STATUS_QUARANTINED], final.loc[st == STATUS_ERROR]
    report, _ = _steps.check_step(state.spec, "final", final, state.checks)
    return Record(len(state.cases), int((st == STATUS_OK).sum()),
                  rejected=by_case_id(q, q["status_reason"]) if len(q) else None,
                  errored=by_case_id(err, err["status_reason"]) if len(err) else None,
                  frames=(None, final), status=st, reason=final["status_reason"],
                  checks=assertions(state.decision_report, "decisions") + assertions(report))


def _compare(state: RunState) -> Record:
    state.compare, state.compare_info = _steps.comparison(state.spec, state.cases, state.live, state.final)
    return Record(len(state.final), len(state.final),
                  notes={k: v for k, v in state.compare_info.items() if isinstance(v, (int, float, str))})


def _counterfactual(state: RunState) -> Record:
    state.counterfactual = _steps.counterfactual(state.spec, state.engine, state.live, state.features,
                                                 state.engine_run.decisions)
    return Record(len(state.live), len(state.live))


def _attribute(state: RunState) -> Record:  # replays of the engine per coalition of stages (audit.attribution)
    state.attribution = attribute_run(state)
    return Record(len(state.engine_input), len(state.engine_input), notes=state.attribution.notes)


def _measure(state: RunState) -> Record:
    state.metrics, state.findings, state.discovered, state.funnel = _steps.measured(
        state.spec, state.cases, state.final, state.compare, state.counterfactual, state.features,
        (state.live, state.engine_input, state.engine_run))
    return Record(len(state.final), len(state.final), notes={"metric_rows": len(state.metrics),
                  "findings": len(state.findings), **_steps.discovery_notes(state.discovered)})


def _measure_table(state: RunState) -> Record:
    table = _steps.table_metrics(state.spec, state.population.aggregated)
    state.metrics, state.findings = _steps.corrected(state.spec, [table])
    return Record(len(state.population.aggregated), len(state.population.aggregated))


def _inputs(state: RunState) -> dict[str, Any]:
    return {"inputs": [str(p) for p in state.population.inputs]}


ROW_STEPS: tuple[Step, ...] = (
    Step("source", _source, inputs=(), outputs=("cases",), prepare=_load, declare=_inputs),
    Step("intake", _intake, outputs=("cases",), prepare=lambda state: _steps.check_columns(state.spec, state.cases)),
    Step("reference", _reference, outputs=("truth",), when=lambda s: bool(s.truth.reference or s.truth.column)),
    Step("engine_input", _engine_input, outputs=("engine_input",), prepare=_build_engine),
    Step("decision", _decide, inputs=("engine_input",), outputs=("decisions",),
         declare=lambda state: {"engine": state.engine_meta}),
    Step("review", _review, inputs=("decisions",), outputs=("final",),
         declare=lambda state: {"actor": "caseworker" if state.spec.review is not None else "system"}),
    Step("final", _final, inputs=("decisions", "cases"), outputs=("final",), timed=False),
    Step("compare", _compare, outputs=("comparison",), when=lambda s: s.compare is not None),
    Step("counterfactual", _counterfactual, outputs=("twins",), when=lambda s: s.counterfactual is not None),
    Step("attribution", _attribute, outputs=("attribution",), when=lambda s: s.attribution is not None),
    Step("measurement", _measure, inputs=("final",), outputs=("metrics",)),
)
"""Steps of a run over a case frame with an engine."""

RECORDED_STEPS: tuple[Step, ...] = ROW_STEPS
"""Steps of a run whose engine replays recorded decisions: every row-level step applies (module docstring)."""

AGGREGATED_STEPS: tuple[Step, ...] = (
    Step("source", _source_table, inputs=(), outputs=("cases",), prepare=_load, declare=_inputs),
    Step("measurement", _measure_table, outputs=("metrics",)),
)
"""Steps of a run over an aggregated table: no cases, no engine."""


def steps_for(spec: AuditSpec) -> tuple[Step, ...]:
    """The step table of a spec: aggregated, recorded-only or row-level."""
    if spec.population.aggregated is not None:
        return AGGREGATED_STEPS
    return RECORDED_STEPS if spec.engine is not None and spec.engine.kind == "recorded" else ROW_STEPS


def run(spec: AuditSpec, *, run_id: str | None = None, progress: Progress | None = None) -> RunState:
    """Run an audit's steps and return the run state (no result is built and no file is written).

    Parameters
    ----------
    spec : AuditSpec
        The audit.
    run_id : str, optional
        The run's id (default :func:`make_run_id`).
    progress : callable, optional
        Called as ``progress(step, state)`` when a step starts and ends.

    Returns
    -------
    RunState
    """
    _memory.tune()
    state = RunState(spec=spec, run_id=run_id or make_run_id(spec), progress=progress)
    for step in steps_for(spec):
        if step.when(spec):
            run_step(state, step)
    return state


def engine_info(state: RunState) -> dict[str, Any] | None:
    """What ``results.json`` says about the engine, the review, the truth, the comparison and the counterfactuals.

    None for a run without an engine (an aggregated table).
    """
    e, er, rev = state.spec.engine, state.engine_run, state.review
    if e is None or er is None or rev is None:
        return None
    cf = state.counterfactual
    return {
        "kind": e.kind,
        **state.engine_meta,
        "features": [c for c in state.features if c != "case_id"],
        "withheld": state.withheld,
        "sees_sensitive": e.sees_sensitive,
        "error_budget": e.error_budget,
        "n_cases": int(er.n_cases),
        "n_errors": int(er.n_errors),
        "batches": int(er.batches),
        "duration_s": float(er.duration_s),
        "cases_per_s": float(er.n_cases / er.duration_s) if er.duration_s > 0 else None,
        "review": rev.info,
        "truth": state.truth_info,
        **({"compare": state.compare_info} if state.compare_info else {}),
        **({"counterfactual": {k: v for k, v in cf.to_dict().items() if k != "metrics"}} if cf is not None else {}),
    }


def population_info(state: RunState) -> dict[str, Any]:
    """What ``results.json`` says about the population (with status counts for a case frame)."""
    p = state.population
    assert p is not None
    info: dict[str, Any] = {**p.source, "n_cases": p.n, "provenance": p.provenance}
    if p.notes:
        info["notes"] = list(p.notes)
    if p.bias:
        info["bias"] = p.bias
    if state.final is not None:
        counts = state.final["status"].value_counts()
        info["status_counts"] = {k: int(counts.get(k, 0)) for k in (STATUS_OK, STATUS_ERROR, STATUS_QUARANTINED)}
    return info
