"""OpenLineage events of a journey, and sending them to an HTTP endpoint.

The only module of Insyn that imports ``openlineage`` (openlineage-python's
``event_v2`` and ``facet_v2`` classes, serialised with its ``Serde``).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit

import httpx
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

from audit._version import __version__
from audit.journey._step import StepRecord
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
                description=f"origin: {declared[col][0]} (declared in {declared[col][1]})" if col in declared else None,
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
                assertions=[data_quality_assertions_dataset.Assertion(**a) for a in assertions], producer=producer
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
    """Build the OpenLineage RunEvents of a run's steps (see :meth:`audit.journey.Journey.lineage_events`)."""
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
    return [Serde.to_dict(e) for e in events]


# --------------------------------------------------------------------------
# sending


def endpoint_url(url: str) -> str:
    """Where to POST events: ``{url}/api/v1/lineage``, or ``url`` if its path ends with ``/lineage``."""
    parts = urlsplit(url)
    if parts.path.rstrip("/").endswith("/lineage"):
        return url
    return url.rstrip("/") + "/api/v1/lineage"


def _shown(url: str) -> str:
    """The URL without user info (credentials never reach a message)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def send_events(
    events: list[dict[str, Any]],
    url: str,
    *,
    timeout_s: float = 2.0,
    api_key: str | None = None,
) -> int:
    """POST events one by one; warn (never raise) when the endpoint fails.

    See :meth:`audit.journey.Journey.emit`.
    """
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        warnings.warn(
            f"lineage.url must be an http:// or https:// URL. Got {url!r}. "
            "OpenLineage events were not sent (they are in lineage.jsonl).",
            LineageWarning,
            stacklevel=3,
        )
        return 0
    if not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise ValueError(f"timeout_s must be a number > 0. Got {timeout_s!r}.")
    target = endpoint_url(url)
    shown = _shown(target)
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    sent = 0
    refused: list[tuple[int, int, str]] = []
    started = time.monotonic()
    with httpx.Client(timeout=httpx.Timeout(timeout_s), headers=headers) as client:
        for i, event in enumerate(events):
            body = json.dumps(event, sort_keys=True, ensure_ascii=False).encode("utf-8")
            try:
                response = client.post(target, content=body)
            except httpx.HTTPError as exc:
                warnings.warn(
                    f"OpenLineage endpoint {shown} is unreachable ({type(exc).__name__}: {exc or 'no detail'}) after "
                    f"{time.monotonic() - started:.2f} s; {len(events) - i} of {len(events)} event(s) not sent. "
                    "The audit goes on; the events are in lineage.jsonl.",
                    LineageWarning,
                    stacklevel=3,
                )
                return sent
            if 200 <= response.status_code < 300:
                sent += 1
            else:
                refused.append((i, response.status_code, response.text[:200]))
    if refused:
        i, code, text = refused[0]
        warnings.warn(
            f"OpenLineage endpoint {shown} refused {len(refused)} of {len(events)} event(s); the first "
            f"(event {i}) with HTTP {code}: {text!r}. The audit goes on; the events are in lineage.jsonl.",
            LineageWarning,
            stacklevel=3,
        )
    return sent
