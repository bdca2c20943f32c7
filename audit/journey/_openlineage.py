"""OpenLineage events of a journey, and sending them with openlineage-python's client.

The only module of Insyn that imports ``openlineage``: openlineage-python's
``event_v2`` and ``facet_v2`` classes build the events, and its
``OpenLineageClient`` emits them through one of its transports. The events
written to ``lineage.jsonl`` are the events as the client emits them (with
the client's own run tag and any tags or filters an ``openlineage.yml``
configures), so a file and an endpoint receive the same events. The client's
``sourceCodeLocation`` facet, which would read the local git repository, is
switched off. :class:`audit.journey.Journey` imports this module only when it
builds or sends a run's events, so importing Insyn, or a run that writes no
folder, does not load openlineage-python and its transports (about 0.3 s).

Where events go (:func:`audit.journey._target.lineage_target`), first match wins:

1. the spec's ``lineage:`` section: ``url`` (HTTP, e.g. Marquez) or
   ``transport: http | file | console``;
2. an ``openlineage.yml`` with a transport (``OPENLINEAGE_CONFIG``, the
   current folder, ``~/.openlineage/``) or ``OPENLINEAGE__TRANSPORT__*``
   environment variables, resolved by the client itself;
3. ``OPENLINEAGE_URL`` (with ``OPENLINEAGE_ENDPOINT`` and
   ``OPENLINEAGE_API_KEY``);
4. nowhere: the events are only in ``lineage.jsonl``.

``OPENLINEAGE_DISABLED=true`` sends nothing. HTTP transports that Insyn
configures (1 and 3) time out after ``timeout_s``, retry a 429, 502, 503 or 504
answer twice with a short backoff and never retry a connection error, so an
endpoint that is down costs about one timeout. Sending never fails an audit:
a refusal or an unreachable endpoint is a :class:`LineageWarning`.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit

import attr
from openlineage.client import OpenLineageClient
from openlineage.client import __version__ as _ol_version
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    error_message_run,
    input_statistics_input_dataset,
    job_type_job,
    output_statistics_output_dataset,
    ownership_job,
    parent_run,
    processing_engine_run,
    schema_dataset,
    tags_run,
)
from openlineage.client.serde import Serde
from openlineage.client.transport import Transport, get_default_factory
from openlineage.client.transport.noop import NoopTransport

from audit._json import jsonable
from audit._privacy import mask
from audit._version import __version__
from audit.journey._step import StepRecord
from audit.journey._target import LineageTarget, shown_url
from audit.journey._vocabulary import LineageWarning


@dataclass(frozen=True)
class LineageRun:
    """What the OpenLineage events of one run are built from.

    A :class:`audit.journey.Journey` hands this over (it knows its run; the
    events need only these parts of it), so that building events depends on
    the step records, not on the journey that collects them.

    Attributes
    ----------
    namespace, audit_name : str
        The OpenLineage namespace and the parent job's name.
    run_uuid : str
        The run's OpenLineage run id.
    producer : str
        The ``producer`` URI of every event and facet.
    provenance : Mapping
        Declared column origins: ``{column: (actor, source)}``.
    records : sequence of StepRecord
        The run's steps, in order.
    """

    namespace: str
    audit_name: str
    run_uuid: str
    producer: str
    provenance: Mapping[str, tuple[str, str]]
    records: Sequence[StepRecord]


def dataset_ref(name: str, *, namespace: str, audit_name: str) -> tuple[str, str]:
    """Map a step's input/output name to an OpenLineage (namespace, name).

    ``scheme://host/path`` -> (``scheme://host``, ``/path``), with
    ``file:///x`` -> (``file``, ``/x``) and credentials in the URL left
    out; a path (with ``/`` or a suffix) -> (``file``, path); a word such as
    ``cases`` -> (``namespace``, ``<audit_name>.cases``).
    """
    if "://" in name:
        parts = urlsplit(name)
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        ns = f"{parts.scheme}://{host}" if host else parts.scheme
        return ns, parts.path or "/"
    if "/" in name or "\\" in name or PurePath(name).suffix:
        return "file", name
    return namespace, f"{audit_name}.{name}"


# --------------------------------------------------------------------------
# building events


def _schema_facet(lineage: LineageRun, schema: list[tuple[str, str]], producer: str) -> schema_dataset.SchemaDatasetFacet:
    declared = lineage.provenance
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(
                name=col,
                type=dtype,
                description=(None if col not in declared else "origin: unknown (not declared in the spec)"
                             if declared[col][0] == "unknown" else
                             f"origin: {declared[col][0]} (declared in {declared[col][1]})"),
                ordinal_position=i + 1,
            )
            for i, (col, dtype) in enumerate(schema)
        ],
        producer=producer,
    )


def _tags(rec: StepRecord, producer: str) -> tags_run.TagsRunFacet:
    pairs: list[tuple[str, Any]] = [("actor", rec.actor), ("step_index", rec.index)]
    for key in ("rows_in", "rows_out"):
        value = getattr(rec, key)
        if value is not None:
            pairs.append((key, value))
    pairs += [("rows_rejected", rec.rows_rejected), ("rows_errored", rec.rows_errored)]
    for key, value in (rec.engine or {}).items():
        if value is not None:
            pairs.append((f"engine.{key}", value))
    if rec.overrides is not None:
        pairs += [
            ("caseworker.decisions", len(rec.overrides)),
            ("caseworker.overrides", int(rec.overrides["override"].sum())),
        ]
    for key, value in rec.notes.items():
        pairs.append((f"note.{key}", value if isinstance(value, str) else json.dumps(value, sort_keys=True)))
    return tags_run.TagsRunFacet(
        tags=[tags_run.TagsRunFacetFields(key=k, value=str(v), source="INSYN") for k, v in pairs],
        producer=producer,
    )


def _run_facets(lineage: LineageRun, rec: StepRecord, producer: str, *, failed: bool) -> dict[str, Any]:
    ns, audit = lineage.namespace, lineage.audit_name
    facets: dict[str, Any] = {
        "parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=lineage.run_uuid),
            job=parent_run.Job(namespace=ns, name=audit),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=lineage.run_uuid),
                job=parent_run.RootJob(namespace=ns, name=audit),
            ),
            producer=producer,
        ),
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=__version__, name="insyn", openlineageAdapterVersion=_ol_version, producer=producer
        ),
        "tags": _tags(rec, producer),
    }
    if failed:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=f"{rec.error_type}: {rec.error}",
            programmingLanguage="PYTHON",
            stackTrace=rec.stack,
            producer=producer,
        )
    return facets


def _job(lineage: LineageRun, name: str, actor: str | None, job_type: str, producer: str) -> Job:
    facets: dict[str, Any] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="INSYN", jobType=job_type, producer=producer
        )
    }
    if actor is not None:
        facets["ownership"] = ownership_job.OwnershipJobFacet(
            owners=[ownership_job.Owner(name=actor, type="ACTOR")], producer=producer
        )
    return Job(namespace=lineage.namespace, name=name, facets=facets)


def _step_events(lineage: LineageRun, rec: StepRecord) -> list[RunEvent]:
    producer = lineage.producer
    ns, audit = lineage.namespace, lineage.audit_name

    def ref(name: str) -> tuple[str, str]:
        return dataset_ref(name, namespace=ns, audit_name=audit)

    job = _job(lineage, f"{audit}.{rec.name}", rec.actor, "STEP", producer)
    start = RunEvent(
        eventType=RunState.START,
        eventTime=rec.started_at.isoformat(),
        run=Run(runId=rec.run_uuid, facets=_run_facets(lineage, rec, producer, failed=False)),
        job=job,
        inputs=[
            InputDataset(
                namespace=ref(d)[0],
                name=ref(d)[1],
                facets=(
                    {"schema": _schema_facet(lineage, rec.start_schemas[d], producer)}
                    if d in rec.start_schemas
                    else {}
                ),
            )
            for d in rec.inputs
        ],
        outputs=[OutputDataset(namespace=ref(d)[0], name=ref(d)[1]) for d in rec.outputs],
        producer=producer,
    )
    if rec.status == "running":
        return [start]
    failed = rec.status == "failed"
    inputs = []
    for i, d in enumerate(rec.inputs):
        schema = rec.before_schema if (i == 0 and rec.before_schema is not None) else rec.start_schemas.get(d)
        facets = {"schema": _schema_facet(lineage, schema, producer)} if schema is not None else {}
        input_facets: dict[str, Any] = {}
        assertions = [a for target, a in rec.assertions if target == d]
        if assertions:
            input_facets["dataQualityAssertions"] = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                assertions=[data_quality_assertions_dataset.Assertion(**jsonable(a)) for a in assertions],
                producer=producer,
            )
        if i == 0 and rec.rows_in is not None:
            input_facets["inputStatistics"] = input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
                rowCount=int(rec.rows_in), producer=producer
            )
        inputs.append(InputDataset(namespace=ref(d)[0], name=ref(d)[1], facets=facets, inputFacets=input_facets))
    outputs = []
    for i, d in enumerate(rec.outputs):
        facets = {}
        output_facets: dict[str, Any] = {}
        if i == 0 and rec.after_schema is not None:
            facets["schema"] = _schema_facet(lineage, rec.after_schema, producer)
        if i == 0 and rec.column_lineage:
            facets["columnLineage"] = _column_lineage_facet(lineage, rec, producer)
        if i == 0 and rec.rows_out is not None:
            output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=int(rec.rows_out), producer=producer
            )
        outputs.append(OutputDataset(namespace=ref(d)[0], name=ref(d)[1], facets=facets, outputFacets=output_facets))
    assert rec.ended_at is not None
    end = RunEvent(
        eventType=RunState.FAIL if failed else RunState.COMPLETE,
        eventTime=rec.ended_at.isoformat(),
        run=Run(runId=rec.run_uuid, facets=_run_facets(lineage, rec, producer, failed=failed)),
        job=job,
        inputs=inputs,
        outputs=outputs,
        producer=producer,
    )
    return [start, end]


def _column_lineage_facet(
    lineage: LineageRun, rec: StepRecord, producer: str
) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    ns, audit = lineage.namespace, lineage.audit_name
    cl = column_lineage_dataset

    def field(entry: dict[str, str]) -> cl.InputField:
        dns, dname = dataset_ref(entry["dataset"], namespace=ns, audit_name=audit)
        return cl.InputField(
            namespace=dns,
            name=dname,
            field=entry["field"],
            transformations=[
                cl.Transformation(
                    type=entry["type"],
                    subtype=entry["subtype"] or None,
                    description=entry["description"],
                    masking=False,
                )
            ],
        )

    dataset: list[cl.InputField] = []
    if (rec.rows_rejected or rec.rows_errored) and rec.inputs:
        dns, dname = dataset_ref(rec.inputs[0], namespace=ns, audit_name=audit)
        dataset.append(
            cl.InputField(
                namespace=dns,
                name=dname,
                field=rec.id_column,
                transformations=[
                    cl.Transformation(
                        type="INDIRECT",
                        subtype="FILTER",
                        description=(
                            f"{rec.rows_rejected} case(s) rejected and {rec.rows_errored} errored by step {rec.name}"
                        ),
                        masking=False,
                    )
                ],
            )
        )
    return cl.ColumnLineageDatasetFacet(
        fields={col: cl.Fields(inputFields=[field(e) for e in entries]) for col, entries in rec.column_lineage.items()},
        dataset=dataset,
        producer=producer,
    )


def build_events(lineage: LineageRun) -> list[dict[str, Any]]:
    """The OpenLineage RunEvents of a run's steps as the client emits them (see :meth:`Journey.lineage_events`)."""
    collected = _Collect()
    events = build_run_events(lineage)
    try:
        client = _client(collected)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # an openlineage.yml the client cannot read
        warnings.warn(
            f"The OpenLineage client cannot read its configuration ({type(exc).__name__}: {exc}); lineage.jsonl "
            "holds the events without the client's tags, filters and facets, and none are sent.",
            LineageWarning,
            stacklevel=3,
        )
        return [json.loads(Serde.to_json(e)) for e in events]
    for event in events:
        client.emit(event)
    return collected.events


def build_run_events(lineage: LineageRun) -> list[RunEvent]:
    """Build the OpenLineage RunEvents of a run's steps, before the client adds its facets."""
    records = lineage.records
    if not records:
        return []
    producer = lineage.producer
    parent_job = _job(lineage, lineage.audit_name, None, "AUDIT", producer)
    engine = processing_engine_run.ProcessingEngineRunFacet(
        version=__version__, name="insyn", openlineageAdapterVersion=_ol_version, producer=producer
    )
    events: list[RunEvent] = [
        RunEvent(
            eventType=RunState.START,
            eventTime=records[0].started_at.isoformat(),
            run=Run(runId=lineage.run_uuid, facets={"processing_engine": engine}),
            job=parent_job,
            producer=producer,
        )
    ]
    for rec in records:
        events.extend(_step_events(lineage, rec))
    if all(r.status != "running" for r in records):
        failed = [r for r in records if r.status == "failed"]
        facets: dict[str, Any] = {"processing_engine": engine}
        if failed:
            first = failed[0]
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=f"step {first.name} failed: {first.error_type}: {first.error}",
                programmingLanguage="PYTHON",
                producer=producer,
            )
        last = max(r.ended_at for r in records if r.ended_at is not None)
        events.append(
            RunEvent(
                eventType=RunState.FAIL if failed else RunState.COMPLETE,
                eventTime=last.isoformat(),
                run=Run(runId=lineage.run_uuid, facets=facets),
                job=parent_job,
                producer=producer,
            )
        )
    return events


# --------------------------------------------------------------------------
# sending

_CLIENT_CONFIG: dict[str, Any] = {"facets": {"source_code_location": {"disabled": True}}}
"""What Insyn sets on every client: no ``sourceCodeLocation`` facet read from a local git repository."""

_CONSOLE_LOGGER = "openlineage.client.transport.console"


class _Collect(Transport):
    """A transport that keeps the events it is given, as JSON-safe dicts (what ``lineage.jsonl`` holds)."""

    kind = "insyn-collect"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, event: Any) -> None:
        self.events.append(json.loads(Serde.to_json(event)))


def _client(transport: Transport | None) -> OpenLineageClient:
    """An OpenLineageClient with Insyn's facet settings (and an explicit transport, when given)."""
    return OpenLineageClient(transport=transport, config=copy.deepcopy(_CLIENT_CONFIG))


def masked_event(value: Any) -> Any:
    """A copy of an OpenLineage event (or any part of one) with every personnummer in its strings masked.

    Events are the client's attrs classes; they are rebuilt field by field
    (``attr.evolve``), so what a transport sends has passed the privacy gate
    just as ``lineage.jsonl`` has.
    """
    if isinstance(value, str):
        return mask(value)
    if attr.has(type(value)):
        changes = {f.name: masked_event(getattr(value, f.name)) for f in attr.fields(type(value)) if f.init}
        return attr.evolve(value, **{k.lstrip("_"): v for k, v in changes.items()})
    if isinstance(value, dict):
        return {masked_event(k): masked_event(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(masked_event(v) for v in value)
    return value


def emit_events(lineage: LineageRun, target: LineageTarget) -> int:
    """Emit a run's events through an OpenLineageClient with the target's transport.

    Events are emitted one by one. A refused event (an HTTP error status)
    is counted and the rest go on; a connection error, a timeout or any
    other failure of the transport stops the sending. Either is reported
    with one :class:`LineageWarning`; nothing is raised.

    Returns
    -------
    int
        How many events the transport accepted.
    """
    import requests

    events = [masked_event(e) for e in build_run_events(lineage)]
    try:
        transport = get_default_factory().create(target.config) if target.config is not None else None
        client = _client(transport)
    except (ValueError, TypeError, KeyError, RuntimeError, ImportError) as exc:
        warnings.warn(f"OpenLineage transport from {target.source} could not be set up ({type(exc).__name__}: "
                      f"{exc}); no event was sent. The audit goes on; the events are in lineage.jsonl.",
                      LineageWarning, stacklevel=3)
        return 0
    if isinstance(client.transport, NoopTransport):
        return 0
    console = logging.getLogger(_CONSOLE_LOGGER)
    handler: logging.Handler | None = None
    if client.transport.kind == "console":  # the console transport logs at INFO: show it on stderr
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        console.addHandler(handler)
        level = console.level
        console.setLevel(logging.INFO)
    sent = 0
    refused: list[tuple[int, int, str]] = []
    started = time.monotonic()
    shown = target.shown
    try:
        for i, event in enumerate(events):
            try:
                client.emit(event)
            except requests.HTTPError as exc:
                response = exc.response
                code = response.status_code if response is not None else 0
                refused.append((i, code, response.text[:200] if response is not None else str(exc)))
                continue
            except (requests.ConnectionError, requests.Timeout) as exc:
                base = (target.config or {}).get("url") or ""
                detail = (str(exc).replace(base, shown_url(base)) if base else str(exc)) or "no detail"
                warnings.warn(
                    f"OpenLineage endpoint {shown} is unreachable ({type(exc).__name__}: {detail}) after "
                    f"{time.monotonic() - started:.2f} s; {len(events) - i} of {len(events)} event(s) not sent. "
                    "The audit goes on; the events are in lineage.jsonl.",
                    LineageWarning,
                    stacklevel=3,
                )
                return sent
            except Exception as exc:  # any transport (file, kafka, ...) may fail in its own way
                warnings.warn(
                    f"OpenLineage events could not be sent to {shown} ({type(exc).__name__}: {exc}); "
                    f"{len(events) - i} of {len(events)} event(s) not sent. The audit goes on; the events are "
                    "in lineage.jsonl.",
                    LineageWarning,
                    stacklevel=3,
                )
                return sent
            sent += 1
    finally:
        client.close(timeout=1.0)
        if handler is not None:
            console.removeHandler(handler)
            console.setLevel(level)
    if refused:
        i, code, text = refused[0]
        warnings.warn(
            f"OpenLineage endpoint {shown} refused {len(refused)} of {len(events)} event(s); the first "
            f"(event {i}) with HTTP {code}: {text!r}. The audit goes on; the events are in lineage.jsonl.",
            LineageWarning,
            stacklevel=3,
        )
    return sent
