"""Data journeys: where every field comes from, what happened to every case.

Data in an assistance decision is not objective. It is created and changed
on a *journey*: the applicant declares income and costs, registries
(Försäkringskassan, Skatteverket, Arbetsförmedlingen, CSN ...) supply facts,
caseworkers judge (able to work? follows the plan?), software loads, checks,
computes and decides, and a caseworker may resolve a referred case or
override the robot. Who owns each piece is often unclear. An auditor must be
able to see, for any field and any case, where it came from, who changed it
and what the engine did with it. This package records that journey for one
audit run.

Steps
    A run is a sequence of steps (``source``, ``intake``, ``engine_input``,
    ``decision``, ``review``, ``final``, ``measurement``). Each is recorded
    with its actor (see :data:`ACTORS`), input and output datasets, row
    accounting (rows in = rows out + rejected + errored, every rejected or
    errored case with a reason; otherwise :class:`~audit.exceptions.DataError`),
    the columns it added, changed, dropped or retyped, the results of its
    data-quality checks, its duration and, for a step that runs a decision
    engine, the engine's name, version and the hash of its definition.

Field provenance
    Every column's origin is declared (in the population spec or a data
    card) as an actor. :meth:`Journey.field_provenance` is the data journey
    map: for each field its origin, whether it is a caseworker judgement
    (discretion), whether the engine used it or produced it, and which steps
    (and actors) changed it for how many cases.

Per-case lineage (``journey.parquet``)
    For every case at every step that records its frames: the status, a
    content hash of the case's row (``pd.util.hash_pandas_object``), the
    fields that changed with their old and new values, the reason for a
    rejection or error, who acted. It is computed column-wise (no loop over
    rows); see :meth:`Journey.cases_frame`. :func:`trace` turns it, with the
    run's decisions, checks and reference decision, into a readable timeline
    (``insyn trace RUN_DIR CASE_ID``).

Human in the loop
    Referred cases are resolved by recorded caseworker decisions (historical
    logs) or by a caseworker model (synthetic studies); the runner does it
    and records it here with :meth:`Journey.record_overrides`: who (e.g.
    ``recorded:caseworker_outcome`` or ``model:pkg.mod:attr``), why, and
    whether the caseworker overrode an automatic outcome.

OpenLineage
    Each step is an OpenLineage job ``<audit>.<step>`` whose run is a child
    (``parent`` run facet) of the run of job ``<audit>``. Its ``START`` and
    ``COMPLETE`` (or ``FAIL``, with an ``errorMessage`` run facet) events
    carry: ``schema`` dataset facets (columns, dtypes, declared origin);
    on the first output a ``columnLineage`` facet (a column from the same
    column of the input, IDENTITY when unchanged and TRANSFORMATION when the
    step changed it; a column an engine adds from the engine's features; a
    FILTER on ``case_id`` when cases were rejected) and an
    ``outputStatistics`` facet (rows out); on the inputs the
    ``dataQualityAssertions`` input facet (the checks) and an
    ``inputStatistics`` facet (rows in); run facets ``processing_engine``
    (Insyn's version) and ``tags`` (actor, row counts, engine, caseworker
    decisions, notes); job facets ``jobType`` and ``ownership`` (the actor).
    :meth:`Journey.write_lineage` writes them to ``lineage.jsonl``;
    :meth:`Journey.emit` sends them to an OpenLineage endpoint such as
    Marquez, where an unreachable endpoint is a :class:`LineageWarning`,
    never a failure. ``audit.journey`` is the only part of Insyn that
    imports ``openlineage``, and it does so only when events are built.

Examples
--------
>>> import pandas as pd
>>> from audit.journey import Journey
>>> cases = pd.DataFrame({"case_id": ["a", "b", "c"], "rent": [5000.0, 6200.0, 4100.0]})
>>> j = Journey(run_id="r1", audit_name="demo", provenance={"rent": "applicant"})
>>> with j.step("source", actor="system", inputs=["cases.csv"], outputs=["cases"]) as st:
...     st.account(rows_in=3, rows_out=3)
...     st.frames(None, cases)
>>> with j.step("intake", actor="system", inputs=["cases"], outputs=["cases"]) as st:
...     kept = cases.iloc[:2].assign(rent=[5000.0, 6000.0])
...     st.account(rows_in=3, rows_out=2, rejected=pd.Series({"c": "rent missing in registry"}))
...     st.frames(cases, kept)
>>> intake = j.cases_frame().query("step == 'intake'")
>>> cols = ["case_id", "status", "changed_fields", "values", "reason"]
>>> intake[cols].to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
[{'case_id': 'a', 'status': 'ok', 'changed_fields': '', 'values': nan, 'reason': ''},
 {'case_id': 'b', 'status': 'ok', 'changed_fields': 'rent', 'values': '{"rent":[6200,6000]}', 'reason': ''},
 {'case_id': 'c', 'status': 'rejected', 'changed_fields': '', 'values': nan, 'reason': 'rent missing in registry'}]
"""

from __future__ import annotations

from audit.journey._cases import CASES_COLUMNS
from audit.journey._journey import PRODUCER, Journey
from audit.journey._step import StepRecorder
from audit.journey._trace import trace
from audit.journey._provenance import REGISTRY_NAMES, UNKNOWN_ORIGIN, column_provenance, normalise_origin
from audit.journey._vocabulary import ACTORS, CASE_STATUSES, LineageWarning, validate_actor

__all__ = [
    "ACTORS",
    "CASES_COLUMNS",
    "CASE_STATUSES",
    "Journey",
    "LineageWarning",
    "PRODUCER",
    "REGISTRY_NAMES",
    "StepRecorder",
    "UNKNOWN_ORIGIN",
    "column_provenance",
    "normalise_origin",
    "trace",
    "validate_actor",
]
