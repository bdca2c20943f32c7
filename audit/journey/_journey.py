"""The :class:`Journey` of one audit run.

See the package docstring (:mod:`audit.journey`) for the concepts.
"""

from __future__ import annotations

import json
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from audit._json import jsonable
from audit._parquet import write_table
from audit._privacy import mask_table, masked_json
from audit._version import __version__
from audit.journey._cases import CASES_SCHEMA, case_table, check_accounting
from audit.journey._frames import FrameLineage, HashCache, constant_strings, frame_lineage
from audit.exceptions import SpecError
from audit.journey._step import (
    STEP_NAME,
    StepRecord,
    StepRecorder,
    add_overrides,
    check_names,
    utc_now,
)
from audit.journey._provenance import UNKNOWN_ORIGIN, normalise_origin
from audit.journey._vocabulary import validate_actor

if TYPE_CHECKING:  # pragma: no cover
    from audit.journey._openlineage import LineageRun

_LOW_CARDINALITY = ["step", "status", "changed_fields", "reason", "actor", "by"]
"""Columns of ``journey.parquet`` worth dictionary-encoding (few distinct values)."""

PRODUCER = f"https://pypi.org/project/insyn/{__version__}/"
"""The OpenLineage ``producer`` of Insyn's events: a URI naming the software and its version."""


class Journey:
    """The data journey of one audit run.

    Parameters
    ----------
    run_id : str
        The run's id (the run folder's name).
    audit_name : str
        The audit's name; OpenLineage jobs are ``<audit_name>.<step>``.
    namespace : str, default "insyn"
        The OpenLineage namespace of the jobs and of the run's datasets.
    provenance : mapping of str to str, optional
        Declared origin of each column: column name -> actor (see
        :data:`ACTORS`), from the population spec or a data card. More can
        be declared later with :meth:`declare_provenance`.
    producer : str, optional
        The OpenLineage producer URI (default: Insyn's PyPI page and version).

    Raises
    ------
    SpecError
        When an argument is empty or a declared origin is not an actor.

    Notes
    -----
    Dataset names given as a step's ``inputs``/``outputs`` map to
    OpenLineage datasets as follows: a URI (``scheme://host/path``) becomes
    namespace ``scheme://host`` and name ``/path`` (``file:///x.csv``:
    namespace ``file``); a file path (containing ``/`` or with a suffix)
    becomes namespace ``file`` and the path; any other word (``cases``,
    ``decisions``) is a dataset of the run, namespace ``namespace`` and name
    ``<audit_name>.<word>``.
    """

    def __init__(
        self,
        *,
        run_id: str,
        audit_name: str,
        namespace: str = "insyn",
        provenance: Mapping[str, str] | None = None,
        producer: str = PRODUCER,
    ) -> None:
        given = {"run_id": run_id, "audit_name": audit_name, "namespace": namespace, "producer": producer}
        for key, value in given.items():
            if not isinstance(value, str) or not value.strip():
                raise SpecError(f"Journey: {key} must be a non-empty string. Got {value!r}.")
        self._run_id = run_id
        self._audit_name = audit_name
        self._namespace = namespace
        self._producer = producer
        self._run_uuid = self._uuid(None)
        self._provenance: dict[str, tuple[str, str]] = {}
        self._records: list[StepRecord] = []
        self._open: StepRecord | None = None
        self._engine_features: tuple[str, ...] = ()
        self._schemas: dict[str, list[tuple[str, str]]] = {}
        self._cache = HashCache()
        self._verified: list[pd.Series] = []
        self._columns_seen: dict[str, dict[str, Any]] = {}
        if provenance is not None:
            self.declare_provenance(provenance, source="provenance")

    # ------------------------------------------------------------ identity
    def _uuid(self, step: str | None) -> str:
        """A UUID (version 5) for the run or one of its steps: the same run always gets the same ids."""
        path = f"insyn:{self._namespace}/{self._audit_name}/{self._run_id}" + (f"/{step}" if step else "")
        return str(uuid.uuid5(uuid.NAMESPACE_URL, path))

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self._run_id

    @property
    def audit_name(self) -> str:
        """The audit's name."""
        return self._audit_name

    @property
    def namespace(self) -> str:
        """The OpenLineage namespace."""
        return self._namespace

    @property
    def producer(self) -> str:
        """The OpenLineage producer URI."""
        return self._producer

    @property
    def run_uuid(self) -> str:
        """The OpenLineage run id of the whole run (the parent of every step's run).

        A UUID derived from namespace, audit name and run id, so that the same
        run always has the same id.
        """
        return self._run_uuid

    # ------------------------------------------------------------ declarations
    def declare_provenance(self, provenance: Mapping[str, str], *, source: str = "provenance") -> None:
        """Declare where columns come from.

        Parameters
        ----------
        provenance : mapping of str to str
            Column name -> actor (``applicant``, ``caseworker``, ``system`` or
            ``registry:<name>``).
        source : str, default "provenance"
            Where the declaration comes from (a population spec or a data card
            file), used in messages and shown in :meth:`field_provenance`.

        Raises
        ------
        SpecError
            ``"<source>: <column> must be one of applicant, ... Got 'x'."``
        """
        if not isinstance(provenance, Mapping):
            raise SpecError(
                f"{source}: provenance must be a mapping of column -> actor. Got {type(provenance).__name__}."
            )
        checked = {str(col): normalise_origin(actor, where=f"{source}: {col}") for col, actor in provenance.items()}
        for col, actor in checked.items():
            self._provenance[col] = (actor, source)

    def mark_engine_features(self, columns: Iterable[str]) -> None:
        """Name the columns the engine under audit sees (its features).

        They are flagged ``used_by_engine`` in :meth:`field_provenance`, and
        the columns an engine step adds are lineage-linked to them.
        """
        cols = tuple(columns)
        bad = [c for c in cols if not isinstance(c, str) or not c]
        if bad:
            raise ValueError(f"mark_engine_features: columns must be non-empty strings. Got {bad[0]!r}.")
        self._engine_features = tuple(dict.fromkeys([*self._engine_features, *cols]))

    # ------------------------------------------------------------ steps
    def step(
        self,
        name: str,
        *,
        actor: str,
        inputs: Sequence[str] = (),
        outputs: Sequence[str] = (),
        engine: Mapping[str, str | None] | None = None,
    ) -> StepRecorder:
        """Make the recorder of one step; use it in a ``with`` block.

        Parameters
        ----------
        name : str
            Unique within the run; lower-case snake_case (``intake``,
            ``engine_input``, ``decision``).
        actor : str
            Who performs the step (see :data:`ACTORS`).
        inputs, outputs : sequence of str
            Names of the datasets read and written (see the class Notes).
        engine : mapping, optional
            The decision engine the step runs: ``name``, ``version`` and
            ``definition_hash`` (a hash of its rule file, model file or code);
            other keys are kept as given.

        Returns
        -------
        StepRecorder
        """
        if not isinstance(name, str) or not STEP_NAME.fullmatch(name):
            raise ValueError(
                f"step name must be lower-case snake_case (letters, digits, '_', starting with a letter). Got {name!r}."
            )
        if any(r.name == name for r in self._records):
            raise ValueError(f"step {name!r} was already recorded in this run. Expected a unique step name.")
        validate_actor(actor, where=f"step {name}: actor")
        ins = check_names(inputs, what="inputs", step=name)
        outs = check_names(outputs, what="outputs", step=name)
        eng: dict[str, str | None] | None = None
        if engine is not None:
            if not isinstance(engine, Mapping) or not engine.get("name"):
                raise ValueError(f"step {name}: engine must be a mapping with at least a name. Got {engine!r}.")
            eng = {str(k): (None if v is None else str(v)) for k, v in engine.items()}
            for key in ("version", "definition_hash"):
                eng.setdefault(key, None)
        record = StepRecord(
            index=-1,
            name=name,
            actor=actor,
            inputs=ins,
            outputs=outs,
            engine=eng,
            run_uuid=self._uuid(name),
            started_at=utc_now(),
            t0=0.0,
            start_schemas={},
        )
        return StepRecorder(record, start=self._start, finish=self._finish)

    def _start(self, record: StepRecord) -> None:
        if self._open is not None:
            raise RuntimeError(
                f"step {record.name} started while step {self._open.name} is still open. Steps do not nest."
            )
        if any(r.name == record.name for r in self._records):
            raise ValueError(f"step {record.name!r} was already recorded in this run. Expected a unique step name.")
        record.index = len(self._records)
        record.started_at = utc_now()
        record.t0 = time.perf_counter()
        record.start_schemas = {d: list(self._schemas[d]) for d in record.inputs if d in self._schemas}
        self._records.append(record)
        self._open = record

    def _finish(self, record: StepRecord, exc: BaseException | None) -> None:
        self._open = None
        try:
            if exc is None:
                try:
                    self._finalise(record)
                except BaseException as err:
                    self._fail(record, err)
                    raise
                record.status = "ok"
            else:
                self._fail(record, exc)
        finally:
            record.frames = None
            record.duration_s = time.perf_counter() - record.t0
            record.ended_at = utc_now()

    def _fail(self, record: StepRecord, exc: BaseException) -> None:
        record.status = "failed"
        record.error = str(exc) or type(exc).__name__
        record.error_type = type(exc).__name__
        record.stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        record.frames = None

    def record_overrides(self, frame: pd.DataFrame, *, review_labels: Sequence[str] = ("refer",)) -> None:
        """Record caseworker decisions on the engine's outcome, in the open step.

        Call it inside the review step. A referred case resolved by a
        caseworker becomes status ``reviewed``; a case where the caseworker
        replaced an automatic outcome becomes ``overridden``. Each gets a row
        in ``journey.parquet`` (actor, who, why, and ``final_outcome`` as the
        changed field with its old and new value).

        Parameters
        ----------
        frame : pandas.DataFrame
            One row per case a caseworker decided, with columns ``case_id``,
            ``outcome`` (the engine's), ``final_outcome`` (the caseworker's),
            ``by`` (who: ``recorded:<column>`` for historical logs,
            ``model:<package.module:attr>`` for a caseworker model),
            optionally ``override`` (bool; default: ``final_outcome`` differs
            from an ``outcome`` that is not a referral), ``why`` (reason
            codes, ``;``-separated) and ``actor`` (default ``caseworker``).
        review_labels : sequence of str, default ("refer",)
            Engine outcomes that route a case to a caseworker; deciding such a
            case is a resolution, not an override.

        Raises
        ------
        DataError
            When a column is missing, a case is listed twice, has no
            ``final_outcome`` or does not say who decided.
        """
        if self._open is None:
            raise RuntimeError(
                "record_overrides() must be called inside a step, e.g. "
                "with journey.step('review', actor='caseworker', ...): journey.record_overrides(frame)."
            )
        add_overrides(self._open, frame, review_labels)

    # ------------------------------------------------------------ finalising
    def _finalise(self, rec: StepRecord) -> None:
        """Check the accounting, compute the per-case lineage and the step's facts."""
        removed_parts = [s.index for s in (rec.rejected, rec.errored) if s is not None]
        removed = removed_parts[0].append(removed_parts[1:]) if removed_parts else None
        lineage: FrameLineage | None = None
        fr = rec.frames
        if fr is not None:
            lineage = frame_lineage(
                fr.before,
                fr.after,
                id_column=fr.id_column,
                step=rec.name,
                cache=self._cache,
                verified=self._verified,
                removed=removed,
                want_before_hash=bool(removed is not None and len(removed)),
            )
            check_accounting(rec, fr, lineage, removed)
            rec.columns_added = lineage.columns_added
            rec.columns_changed = lineage.columns_changed
            rec.columns_dropped = lineage.columns_dropped
            rec.columns_retyped = lineage.columns_retyped
            rec.change_counts = dict(lineage.change_counts)
            rec.after_schema = [(str(c), str(t)) for c, t in fr.after.dtypes.items()]
            if fr.before is not None:
                rec.before_schema = [(str(c), str(t)) for c, t in fr.before.dtypes.items()]
        rec.case_table = case_table(rec, lineage)
        self._update_fields(rec)
        self._update_schemas(rec)
        rec.column_lineage = self._column_lineage(rec)

    def _update_fields(self, rec: StepRecord) -> None:
        fr = rec.frames
        seen = self._columns_seen
        if fr is not None:
            frames = [fr.before, fr.after] if fr.before is not None else [fr.after]
            for frame in frames:
                for col, dtype in frame.dtypes.items():
                    c = str(col)
                    if c not in seen:
                        seen[c] = {"added_by": rec.name, "added_by_actor": rec.actor, "dtype": str(dtype),
                                   "engine_output": rec.engine is not None and frame is fr.after
                                   and fr.before is not None,
                                   "changed_by": [], "dropped_by": []}
                    elif frame is fr.after:
                        seen[c]["dtype"] = str(dtype)
            for c in rec.columns_added:
                if rec.engine is not None:
                    seen[c]["engine_output"] = True
            for c in rec.columns_dropped:
                seen[c]["dropped_by"].append(rec.name)
        changes = [(col, rec.actor, count) for col, count in rec.change_counts.items()]
        if rec.overrides is not None:
            decided = rec.overrides.loc[rec.overrides["changed"]]
            changes += [("final_outcome", str(actor), len(rows)) for actor, rows in decided.groupby("actor", sort=True)]
        for col, actor, count in changes:
            entry = seen.setdefault(col, {"added_by": None, "added_by_actor": None, "dtype": None,
                                          "engine_output": False, "changed_by": [], "dropped_by": []})
            entry["changed_by"].append({"step": rec.name, "actor": actor, "cases": int(count)})

    def _update_schemas(self, rec: StepRecord) -> None:
        if rec.before_schema is not None and rec.inputs:
            self._schemas[rec.inputs[0]] = rec.before_schema
        if rec.after_schema is not None and rec.outputs:
            self._schemas[rec.outputs[0]] = rec.after_schema

    def _locate(self, rec: StepRecord, column: str) -> str | None:
        """The input dataset of ``rec`` that holds ``column``, if known."""
        if rec.before_schema is not None and rec.inputs and any(c == column for c, _ in rec.before_schema):
            return rec.inputs[0]
        for ds in rec.inputs:
            schema = rec.start_schemas.get(ds)
            if schema is not None and any(c == column for c, _ in schema):
                return ds
        return None

    def _column_lineage(self, rec: StepRecord) -> dict[str, list[dict[str, str]]]:
        """Output column -> its input fields ({dataset, field, type, subtype, description})."""
        if rec.after_schema is None or not rec.outputs or not rec.inputs:
            return {}
        out: dict[str, list[dict[str, str]]] = {}
        added = set(rec.columns_added)
        changed = set(rec.columns_changed)
        any_known = rec.before_schema is not None or any(ds in rec.start_schemas for ds in rec.inputs)
        features = list(self._engine_features)
        if not features and rec.before_schema is not None:
            features = [c for c, _ in rec.before_schema if c != rec.id_column]
        for col, _ in rec.after_schema:
            fields: list[dict[str, str]] = []
            if col in rec.derived:
                for src in rec.derived[col]:
                    ds = self._locate(rec, src) or rec.inputs[0]
                    fields.append({"dataset": ds, "field": src, "type": "DIRECT", "subtype": "TRANSFORMATION",
                                   "description": f"{col} computed from {src} by step {rec.name}"})
            elif rec.engine is not None and col in added:
                for src in features:
                    ds = self._locate(rec, src) or rec.inputs[0]
                    fields.append({"dataset": ds, "field": src, "type": "DIRECT", "subtype": "TRANSFORMATION",
                                   "description": f"decided by engine {rec.engine.get('name')} from its features"})
            else:
                ds = self._locate(rec, col)
                if ds is not None:
                    if col in changed:
                        fields.append({"dataset": ds, "field": col, "type": "DIRECT", "subtype": "TRANSFORMATION",
                                       "description": f"changed by step {rec.name} for "
                                                      f"{rec.change_counts.get(col, 0)} case(s)"})
                    else:
                        fields.append({"dataset": ds, "field": col, "type": "DIRECT", "subtype": "IDENTITY",
                                       "description": "passed on unchanged"})
                elif not any_known:
                    fields.append({"dataset": rec.inputs[0], "field": col, "type": "DIRECT", "subtype": "",
                                   "description": f"read from {rec.inputs[0]}"})
            if fields:
                out[col] = fields
        return out

    # ------------------------------------------------------------ results
    @property
    def steps(self) -> list[dict[str, Any]]:
        """A JSON-safe summary of each step, in order (for ``results.json``).

        Each dict has ``index``, ``name``, ``actor``, ``status`` (``running``,
        ``ok``, ``failed``), ``inputs``, ``outputs``, ``started_at``,
        ``ended_at``, ``duration_s``, ``rows_in``, ``rows_out``,
        ``rows_rejected``, ``rows_errored``, ``columns_added``,
        ``columns_changed``, ``columns_dropped``, ``columns_retyped``,
        ``cases_changed`` (column -> number of cases), ``checks`` (``total``,
        ``passed``, ``failed``, ``failed_assertions``), ``engine`` (``name``,
        ``version``, ``definition_hash``) or None, ``caseworker`` (decisions,
        overrides, by whom) or None, ``notes``, ``error`` and ``run_uuid``.
        """
        return [self._summary(r) for r in self._records]

    def _summary(self, r: StepRecord) -> dict[str, Any]:
        assertions = [a for _, a in r.assertions]
        failed = [a for a in assertions if not a["success"]]
        caseworker = None
        if r.overrides is not None:
            ov = r.overrides
            caseworker = {
                "decisions": len(ov),
                "overrides": int(ov["override"].sum()),
                "changed_outcome": int(ov["changed"].sum()),
                "by": {str(k): int(v) for k, v in ov["by"].value_counts().sort_index().items()},
            }
        return jsonable(
            {
                "index": r.index,
                "name": r.name,
                "actor": r.actor,
                "status": r.status,
                "inputs": list(r.inputs),
                "outputs": list(r.outputs),
                "started_at": r.started_at.isoformat(),
                "ended_at": None if r.ended_at is None else r.ended_at.isoformat(),
                "duration_s": r.duration_s,
                "rows_in": r.rows_in,
                "rows_out": r.rows_out,
                "rows_rejected": r.rows_rejected,
                "rows_errored": r.rows_errored,
                "columns_added": r.columns_added,
                "columns_changed": r.columns_changed,
                "columns_dropped": r.columns_dropped,
                "columns_retyped": r.columns_retyped,
                "cases_changed": r.change_counts,
                "checks": {
                    "total": len(assertions),
                    "passed": len(assertions) - len(failed),
                    "failed": len(failed),
                    "failed_assertions": [
                        {"assertion": a["assertion"], "column": a.get("column")} for a in failed
                    ],
                },
                "engine": r.engine,
                "caseworker": caseworker,
                "notes": r.notes,
                "error": r.error,
                "run_uuid": r.run_uuid,
            },
            default=str,
        )

    def cases_table(self) -> pa.Table:
        """The per-case lineage of every finished step as a pyarrow Table (see :meth:`cases_frame`)."""
        parts = []
        for r in self._records:
            if r.case_table is None:
                continue
            t = r.case_table
            n = t.num_rows
            parts.append(
                pa.table(
                    {
                        "case_id": t["case_id"],
                        "step": constant_strings(r.name, n),
                        "step_index": pa.array(np.full(n, r.index, dtype=np.int16)),
                        **{name: t[name] for name in t.column_names if name != "case_id"},
                    },
                    schema=CASES_SCHEMA,
                )
            )
        return pa.concat_tables(parts) if parts else CASES_SCHEMA.empty_table()

    def cases_frame(self) -> pd.DataFrame:
        """The per-case lineage, one row per case and step (``journey.parquet``).

        Columns: ``case_id`` (str); ``step`` (str) and ``step_index`` (int);
        ``status`` (one of :data:`CASE_STATUSES`); ``row_hash`` (``UInt64``:
        ``pd.util.hash_pandas_object`` of the case's row after the step, or of
        its row before the step for a case that left it; missing where the
        step did not record frames); ``changed_fields`` (``;``-joined columns
        whose value changed at this step; ``""`` for none); ``values`` (a JSON
        object ``{column: [old, new]}`` of those changes, missing for none);
        ``reason`` (why the case was rejected, errored, quarantined or
        decided by a caseworker; ``""`` for none); ``actor`` (who acted);
        ``by`` (which caseworker source decided, e.g.
        ``recorded:caseworker_outcome``; ``""`` otherwise).

        A step that records frames has a row for every case in its output
        plus every case it rejected or errored; a step without frames has
        rows only for the cases it rejected, errored or that a caseworker
        decided.
        """
        table = self.cases_table()
        frame = table.to_pandas(types_mapper={pa.uint64(): pd.UInt64Dtype()}.get)
        frame["step_index"] = frame["step_index"].astype("int64")
        return frame

    def write_cases(self, path: str | Path) -> Path:
        """Write :meth:`cases_frame` to a Parquet file (``journey.parquet``) without a pandas round trip."""
        p = Path(path)
        write_table(mask_table(self.cases_table()), p, use_dictionary=_LOW_CARDINALITY)  # the privacy gate
        return p

    def overrides_frame(self) -> pd.DataFrame:
        """Every recorded caseworker decision.

        Columns ``case_id``, ``step``, ``outcome`` (the engine's),
        ``final_outcome`` (the caseworker's), ``changed``, ``override``,
        ``actor``, ``by`` (who) and ``why``.
        """
        frames = [r.overrides for r in self._records if r.overrides is not None]
        if not frames:
            return pd.DataFrame(
                {c: pd.Series(dtype="bool" if c in ("changed", "override") else "str")
                 for c in ("case_id", "step", "outcome", "final_outcome", "changed", "override", "actor", "by", "why")}
            )
        return pd.concat(frames, ignore_index=True)

    def field_provenance(self) -> list[dict[str, Any]]:
        """Where every field comes from and what happened to it (the data journey map).

        Returns
        -------
        list of dict
            One per column seen in a recorded frame (in order of first
            appearance), then declared columns never seen. Keys: ``column``;
            ``origin`` (the declared actor; else the actor of the step that
            added it; ``"undeclared"`` for a column that was there from the
            first frame without a declaration; ``"unknown"`` for a column of a
            file or SQL source whose creator the spec does not declare); ``declared`` (bool);
            ``source`` (where it was declared, or None); ``seen`` (bool);
            ``dtype``; ``discretion`` (True for a caseworker judgement: the
            origin or any change is by a caseworker); ``used_by_engine``
            (bool, see :meth:`mark_engine_features`); ``produced_by_engine``
            (added by a step that ran an engine); ``added_by`` (step);
            ``changed_by`` (list of ``{step, actor, cases}``); ``dropped_by``
            (steps).
        """
        out: list[dict[str, Any]] = []
        features = set(self._engine_features)
        names = list(self._columns_seen) + [c for c in self._provenance if c not in self._columns_seen]
        for col in names:
            info = self._columns_seen.get(col)
            declared = self._provenance.get(col)
            if declared is not None and declared[0] == UNKNOWN_ORIGIN:  # the source's creator is not known
                origin, declared = UNKNOWN_ORIGIN, None
            elif declared is not None:
                origin = declared[0]
            elif info is not None and info["added_by"] is not None and info["added_by"] != self._first_frame_step():
                origin = info["added_by_actor"]
            else:
                origin = "undeclared"
            changed_by = [] if info is None else list(info["changed_by"])
            out.append(
                jsonable(
                    {
                        "column": col,
                        "origin": origin,
                        "declared": declared is not None,
                        "source": None if declared is None else declared[1],
                        "seen": info is not None and info["added_by"] is not None,
                        "dtype": None if info is None else info["dtype"],
                        "discretion": origin == "caseworker" or any(c["actor"] == "caseworker" for c in changed_by),
                        "used_by_engine": col in features,
                        "produced_by_engine": bool(info is not None and info["engine_output"]),
                        "added_by": None if info is None else info["added_by"],
                        "changed_by": changed_by,
                        "dropped_by": [] if info is None else list(info["dropped_by"]),
                    },
                    default=str,
                )
            )
        return out

    def _first_frame_step(self) -> str | None:
        for r in self._records:
            if r.after_schema is not None:
                return r.name
        return None

    # ------------------------------------------------------------ OpenLineage
    def lineage_events(self) -> list[dict[str, Any]]:
        """The run's OpenLineage RunEvents as JSON-safe dicts, in order.

        A ``START`` for the whole run (job ``<audit_name>``), then ``START``
        and ``COMPLETE`` (or ``FAIL``) for each step (job
        ``<audit_name>.<step>``, with a ``parent`` run facet pointing at the
        whole run), then ``COMPLETE`` (or ``FAIL`` when a step failed) for the
        whole run once no step is open. See :mod:`audit.journey` for the facets.
        """
        from audit.journey._openlineage import build_events  # openlineage-python loads when events are built

        return build_events(self.lineage_run())

    def lineage_run(self) -> LineageRun:
        """What the run's OpenLineage events are built from: namespace, names, run id, provenance, step records."""
        from audit.journey._openlineage import LineageRun

        return LineageRun(
            namespace=self.namespace,
            audit_name=self.audit_name,
            run_uuid=self.run_uuid,
            producer=self.producer,
            provenance=dict(self._provenance),
            records=tuple(self._records),
        )

    def write_lineage(self, path: str | Path) -> Path:
        """Write :meth:`lineage_events` to a JSON Lines file (``lineage.jsonl``)."""
        p = Path(path)
        with p.open("w", encoding="utf-8") as fh:
            for event in self.lineage_events():
                fh.write(masked_json(event, sort_keys=True) + "\n")
        return p

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write ``journey.parquet`` and ``lineage.jsonl`` into a run folder."""
        f = Path(folder)
        return {"journey.parquet": self.write_cases(f / "journey.parquet"),
                "lineage.jsonl": self.write_lineage(f / "lineage.jsonl")}

    def emit(
        self,
        url: str | None = None,
        *,
        timeout_s: float = 2.0,
        api_key: str | None = None,
        transport: str | None = None,
        path: str | Path | None = None,
    ) -> int:
        """Send the run's OpenLineage events with openlineage-python's client (e.g. to Marquez).

        With ``url`` (or ``transport="http"``) events are POSTed one by one
        to ``{url}/api/v1/lineage`` (the OpenLineage HTTP API that Marquez
        serves), or to ``url`` as given when its path already ends with
        ``/lineage``; ``transport="file"`` appends them to ``path`` as JSON
        lines, ``transport="console"`` logs them to stderr. Without any of
        these, an ``openlineage.yml``, ``OPENLINEAGE__TRANSPORT__*`` or
        ``OPENLINEAGE_URL`` decides, and without those nothing is sent
        (see :mod:`audit.journey._openlineage`). An unreachable or failing
        endpoint never fails the audit: it is reported with a
        :class:`LineageWarning`, and sending stops at the first connection
        error or timeout, so it costs at most about ``timeout_s``.

        Parameters
        ----------
        url : str, optional
            ``http://`` or ``https://`` URL of the endpoint.
        timeout_s : float, default 2.0
            Timeout of each request (connect and read).
        api_key : str, optional
            Sent as ``Authorization: Bearer <api_key>``; never logged.
        transport : {"http", "file", "console"}, optional
            The transport (default: ``http`` when ``url`` is given).
        path : str or Path, optional
            The JSON lines file of the file transport.

        Returns
        -------
        int
            How many events the transport accepted (for HTTP, answered 2xx).
        """
        from audit.journey._target import lineage_target

        target = lineage_target(url=url, transport=transport, path=path, timeout_s=timeout_s, api_key=api_key)
        if target is None:  # nowhere to send: openlineage-python is not loaded
            return 0
        from audit.journey._openlineage import emit_events

        return emit_events(self.lineage_run(), target)
