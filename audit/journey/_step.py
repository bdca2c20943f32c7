"""One step of a run: its record, and the :class:`StepRecorder` that fills it.

A step is recorded while it runs: its row accounting, its frames before and
after, the data-quality assertions evaluated on its input, caseworker
decisions, and free-form notes. The work on the frames happens when the step
ends (see :class:`audit.journey.Journey`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audit._json import jsonable
from audit.exceptions import DataError
from audit.journey._frames import is_in, string_array
from audit.journey._vocabulary import CASE_STATUSES, validate_actor

STEP_NAME = re.compile(r"[a-z][a-z0-9_]*")
_ASSERTION_FIELDS = (
    "assertion",
    "success",
    "column",
    "severity",
    "name",
    "description",
    "expected",
    "actual",
    "content",
    "contentType",
    "params",
)
_OVERRIDE_COLUMNS = ("case_id", "outcome", "final_outcome", "by")

# --------------------------------------------------------------------------
# small helpers


def utc_now() -> datetime:
    """The current time in UTC (OpenLineage event times carry the offset)."""
    return datetime.now(UTC)


def check_names(values: Sequence[str] | str, *, what: str, step: str) -> tuple[str, ...]:
    """Dataset or column names as a tuple of non-empty strings (a single string is one name)."""
    if isinstance(values, str):
        values = (values,)
    out = tuple(values)
    bad = [v for v in out if not isinstance(v, str) or not v]
    if bad:
        raise ValueError(f"step {step}: {what} must be non-empty strings. Got {bad[0]!r}.")
    return out


def _count(value: object, *, what: str, step: str) -> int:
    """A row count: an integer >= 0 (numpy integers accepted, booleans refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or int(value) < 0:
        raise DataError(f"step {step}: {what} must be an integer >= 0. Got {value!r}.")
    return int(value)


def _reason_series(series: pd.Series | None, *, what: str, step: str) -> pd.Series | None:
    """Check a rejected/errored Series: unique case ids, a non-empty reason each."""
    if series is None:
        return None
    if not isinstance(series, pd.Series):
        raise DataError(
            f"step {step}: {what} must be a pandas Series indexed by case_id holding the reason. "
            f"Got {type(series).__name__}."
        )
    ids = pd.Index(series.index.astype("str"))
    if not ids.is_unique:
        dup = ids[ids.duplicated()][0]
        raise DataError(f"step {step}: {what} lists case id {dup!r} more than once. Expected one reason per case.")
    reasons = series.astype("str").where(series.notna(), "")
    empty = reasons.str.strip().str.len().to_numpy() == 0
    if empty.any():
        bad = ids[np.flatnonzero(empty)[:3]]
        raise DataError(
            f"step {step}: every {what} case needs a non-empty reason. "
            f"Got none for {int(empty.sum())} case(s), e.g. {', '.join(map(repr, bad))}."
        )
    return pd.Series(reasons.to_numpy(), index=ids, dtype="str")


# --------------------------------------------------------------------------
# step records


@dataclass
class StepFrames:
    """The frames a step recorded with :meth:`StepRecorder.frames` (copy-on-write snapshots)."""

    before: pd.DataFrame | None
    after: pd.DataFrame
    id_column: str
    status: pd.Series | str
    reason: pd.Series | None


@dataclass
class StepRecord:
    """Everything recorded about one step (mutable while the step is open)."""

    index: int
    name: str
    actor: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    engine: dict[str, str | None] | None
    run_uuid: str
    started_at: datetime
    t0: float
    start_schemas: dict[str, list[tuple[str, str]]]
    ended_at: datetime | None = None
    duration_s: float | None = None
    status: str = "running"
    error: str | None = None
    error_type: str | None = None
    stack: str | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    rejected: pd.Series | None = None
    errored: pd.Series | None = None
    accounted: bool = False
    frames: StepFrames | None = None
    overrides: pd.DataFrame | None = None
    assertions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    derived: dict[str, tuple[str, ...]] = field(default_factory=dict)
    columns_added: list[str] = field(default_factory=list)
    columns_changed: list[str] = field(default_factory=list)
    columns_dropped: list[str] = field(default_factory=list)
    columns_retyped: list[str] = field(default_factory=list)
    change_counts: dict[str, int] = field(default_factory=dict)
    id_column: str = "case_id"
    before_schema: list[tuple[str, str]] | None = None
    after_schema: list[tuple[str, str]] | None = None
    column_lineage: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    case_table: pa.Table | None = None

    @property
    def rows_rejected(self) -> int:
        """Number of cases the step rejected."""
        return 0 if self.rejected is None else len(self.rejected)

    @property
    def rows_errored(self) -> int:
        """Number of cases the step could not process."""
        return 0 if self.errored is None else len(self.errored)


class StepRecorder:
    """Records one step of a run; use it as a context manager.

    Made by :meth:`Journey.step`, which hands over the record and the two
    journey callbacks ``start(record)`` and ``finish(record, exc)`` (so that
    a step does not depend on the journey that collects it). Entering the
    ``with`` block starts the step (its clock and its OpenLineage ``START``
    event); leaving it cleanly
    checks the row accounting, computes the per-case lineage and records
    ``COMPLETE``; an exception that escapes records ``FAIL`` with the error
    message and is re-raised.

    Examples
    --------
    >>> from audit.journey import Journey
    >>> j = Journey(run_id="r1", audit_name="demo")
    >>> frame = pd.DataFrame({"case_id": ["a", "b"], "rent": [5000.0, 6200.0]})
    >>> with j.step("source", actor="applicant", outputs=["cases"]) as st:
    ...     st.account(rows_in=2, rows_out=2)
    ...     st.frames(None, frame)
    >>> j.steps[0]["rows_out"]
    2
    """

    def __init__(
        self,
        record: StepRecord,
        *,
        start: Callable[[StepRecord], None],
        finish: Callable[[StepRecord, BaseException | None], None],
    ) -> None:
        self._record = record
        self._start = start
        self._finish = finish
        self._entered = False

    # ------------------------------------------------------------ context
    def __enter__(self) -> StepRecorder:
        if self._entered:
            raise RuntimeError(f"step {self._record.name} was already started; make a new one with Journey.step().")
        self._entered = True
        self._start(self._record)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._finish(self._record, exc)
        return False

    # ------------------------------------------------------------ info
    @property
    def name(self) -> str:
        """The step's name."""
        return self._record.name

    @property
    def run_uuid(self) -> str:
        """The OpenLineage run id of this step."""
        return self._record.run_uuid

    def _open(self, what: str) -> StepRecord:
        rec = self._record
        if rec.status != "running" or not self._entered:
            raise RuntimeError(
                f"step {rec.name}: {what}() must be called inside the step's with block (the step is {rec.status}"
                f"{'' if self._entered else ', not started'})."
            )
        return rec

    # ------------------------------------------------------------ recording
    def account(
        self,
        *,
        rows_in: int,
        rows_out: int,
        rejected: pd.Series | None = None,
        errored: pd.Series | None = None,
    ) -> None:
        """Record the step's row accounting: rows in = out + rejected + errored.

        Parameters
        ----------
        rows_in, rows_out : int
            Rows the step received and passed on. Rows that the step marks as
            rejected or errored but keeps in its output frame (e.g. an engine
            error row in the decision frame) are not counted in ``rows_out``.
        rejected, errored : pandas.Series, optional
            Indexed by ``case_id``, holding the reason for each case (a
            non-empty string).

        Raises
        ------
        DataError
            When the numbers do not balance, a case is listed twice, in both
            series, or without a reason.
        """
        rec = self._open("account")
        name = rec.name
        n_in = _count(rows_in, what="rows_in", step=name)
        n_out = _count(rows_out, what="rows_out", step=name)
        rej = _reason_series(rejected, what="rejected", step=name)
        err = _reason_series(errored, what="errored", step=name)
        n_rej = 0 if rej is None else len(rej)
        n_err = 0 if err is None else len(err)
        if n_in != n_out + n_rej + n_err:
            raise DataError(
                f"step {name}: cannot account for rows: {n_in} in != {n_out} out + {n_rej} rejected + {n_err} errored"
            )
        if rej is not None and err is not None:
            both = rej.index.intersection(err.index)
            if len(both):
                raise DataError(
                    f"step {name}: case id {both[0]!r} is both rejected and errored. "
                    "Expected each case in at most one of them."
                )
        rec.rows_in, rec.rows_out, rec.rejected, rec.errored = n_in, n_out, rej, err
        rec.accounted = True

    def frames(
        self,
        before: pd.DataFrame | None,
        after: pd.DataFrame,
        *,
        id_column: str = "case_id",
        status: pd.Series | str = "ok",
        reason: pd.Series | None = None,
    ) -> None:
        """Record the case frame before and after the step, for per-case lineage.

        The work (row hashes, alignment by id, changed fields) is done, column
        by column, when the step ends. Both frames are kept as copy-on-write
        snapshots, so later changes to them do not leak into the record.

        Parameters
        ----------
        before : pandas.DataFrame, optional
            The frame the step started from; None where the step creates the
            cases (e.g. loading them) or builds a new frame.
        after : pandas.DataFrame
            The frame the step produced.
        id_column : str, default "case_id"
            The column that identifies a case in both frames.
        status : str or pandas.Series, default "ok"
            The status of each case after the step (one of
            :data:`CASE_STATUSES`): one value for all, or a Series either
            aligned with ``after`` (same index) or indexed by case id. An
            id-indexed Series may also name cases the step rejected or
            errored and left out of ``after`` (e.g. ``quarantined``). Cases
            not listed are ``ok``, or ``rejected``/``error`` when
            :meth:`account` lists them.
        reason : pandas.Series, optional
            Why a case has its status, aligned like ``status``; missing and
            empty mean no reason (the reason given to :meth:`account`, if
            any, is used).
        """
        rec = self._open("frames")
        if rec.frames is not None:
            raise RuntimeError(f"step {rec.name}: frames() was already called; a step has one before and one after.")
        if not isinstance(after, pd.DataFrame) or (before is not None and not isinstance(before, pd.DataFrame)):
            raise DataError(
                f"step {rec.name}: frames() needs pandas DataFrames. "
                f"Got before={type(before).__name__}, after={type(after).__name__}."
            )
        for which, frame in (("before", before), ("after", after)):
            if frame is not None and not frame.columns.is_unique:
                dup = frame.columns[frame.columns.duplicated()][0]
                raise DataError(
                    f"step {rec.name}: the {which} frame has the column {dup!r} more than once. "
                    "Expected unique column names."
                )
        if id_column not in after.columns:
            raise DataError(
                f"step {rec.name}: the after frame has no id column {id_column!r}. "
                f"Columns: {', '.join(map(str, after.columns))}."
            )
        if before is not None and id_column not in before.columns:
            raise DataError(
                f"step {rec.name}: the before frame has no id column {id_column!r}. "
                f"Columns: {', '.join(map(str, before.columns))}."
            )
        if isinstance(status, str):
            if status not in CASE_STATUSES:
                raise DataError(
                    f"step {rec.name}: status must be one of {', '.join(CASE_STATUSES)}. Got {status!r}."
                )
        elif not isinstance(status, pd.Series):
            raise DataError(
                f"step {rec.name}: status must be a string or a pandas Series. Got {type(status).__name__}."
            )
        if reason is not None and not isinstance(reason, pd.Series):
            raise DataError(f"step {rec.name}: reason must be a pandas Series. Got {type(reason).__name__}.")
        rec.frames = StepFrames(
            before=None if before is None else before.copy(deep=False),
            after=after.copy(deep=False),
            id_column=id_column,
            status=status if isinstance(status, str) else status.copy(deep=False),
            reason=None if reason is None else reason.copy(deep=False),
        )
        rec.id_column = id_column

    def checks(self, assertions: Iterable[Mapping[str, Any]], *, dataset: str | None = None) -> None:
        """Record data-quality assertions evaluated on one of the step's inputs.

        They become the OpenLineage ``dataQualityAssertions`` input facet of
        that dataset, and the step's check summary.

        Parameters
        ----------
        assertions : iterable of dict
            Each with ``assertion`` (str) and ``success`` (bool), optionally
            ``column``, ``expected``, ``actual`` (stringified), ``params``
            (dict) and the other fields of OpenLineage's ``Assertion``
            (``severity``, ``name``, ``description``, ``content``,
            ``contentType``). Any other key is kept in ``params``.
        dataset : str, optional
            The input it was evaluated on (default: the step's first input).
        """
        rec = self._open("checks")
        if not rec.inputs:
            raise ValueError(f"step {rec.name}: checks need an input dataset to attach to; give the step inputs=[...].")
        target = dataset if dataset is not None else rec.inputs[0]
        if target not in rec.inputs:
            raise ValueError(
                f"step {rec.name}: dataset must be one of the step's inputs ({', '.join(rec.inputs)}). Got {target!r}."
            )
        for i, raw in enumerate(assertions):
            if not isinstance(raw, Mapping):
                raise DataError(f"step {rec.name}: assertions[{i}] must be a dict. Got {type(raw).__name__}.")
            if not isinstance(raw.get("assertion"), str) or not raw.get("assertion"):
                raise DataError(
                    f"step {rec.name}: assertions[{i}].assertion must be a non-empty string. "
                    f"Got {raw.get('assertion')!r}."
                )
            success = raw.get("success")
            if not isinstance(success, (bool, np.bool_)):
                raise DataError(f"step {rec.name}: assertions[{i}].success must be true or false. Got {success!r}.")
            clean: dict[str, Any] = {"assertion": raw["assertion"], "success": bool(success)}
            params = dict(jsonable(raw.get("params") or {}, default=str))
            for key, value in raw.items():
                if key in ("assertion", "success", "params"):
                    continue
                if key not in _ASSERTION_FIELDS:
                    params[str(key)] = jsonable(value, default=str)
                elif value is not None:
                    v = jsonable(value, default=str)
                    clean[key] = v if isinstance(v, str) else _json_dumps(v)
            clean["params"] = params
            rec.assertions.append((target, clean))

    def note(self, **info: Any) -> None:
        """Record free-form facts about the step (e.g. engine errors, override counts)."""
        rec = self._open("note")
        rec.notes.update(jsonable(info, default=str))

    def derive(self, columns: Mapping[str, Sequence[str]]) -> None:
        """Declare which input columns each new output column is computed from.

        Used for the OpenLineage column lineage of columns the step adds
        (e.g. ``{"truth_amount": ["rent", "income_wages", ...]}``). Columns
        added by a step with an engine default to the engine's features.
        """
        rec = self._open("derive")
        for out, ins in columns.items():
            rec.derived[str(out)] = check_names(ins, what=f"derive[{out!r}]", step=rec.name)

    def overrides(self, frame: pd.DataFrame, *, review_labels: Sequence[str] = ("refer",)) -> None:
        """Record caseworker decisions on cases the engine decided or referred.

        See :meth:`Journey.record_overrides`.
        """
        add_overrides(self._open("overrides"), frame, review_labels)


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def add_overrides(rec: StepRecord, frame: pd.DataFrame, review_labels: Sequence[str]) -> None:
    """Validate caseworker decisions and add them to a step (see :meth:`Journey.record_overrides`)."""
    table = _check_overrides(frame, step=rec.name, review_labels=review_labels)
    table.insert(1, "step", rec.name)
    if rec.overrides is not None:
        again = pd.Series(is_in(table["case_id"], rec.overrides["case_id"]), index=table.index)
        if bool(again.any()):
            raise DataError(
                f"step {rec.name}: case id {table.loc[again, 'case_id'].iloc[0]!r} already has a recorded caseworker "
                "decision at this step."
            )
        table = pd.concat([rec.overrides, table], ignore_index=True)
    rec.overrides = table


def _str(values: pd.Series) -> pd.Series:
    """A column as pandas ``str`` (missing stays missing), with a fresh RangeIndex."""
    out = values if isinstance(values.dtype, pd.StringDtype) else values.astype("str")
    return out.reset_index(drop=True)


def _check_overrides(frame: pd.DataFrame, *, step: str, review_labels: Sequence[str]) -> pd.DataFrame:
    """Validate an overrides frame and return it in canonical form."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"step {step}: overrides must be a pandas DataFrame. Got {type(frame).__name__}.")
    missing = [c for c in _OVERRIDE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"step {step}: the overrides frame has no column {missing[0]!r}. Expected columns case_id, outcome "
            f"(the engine's), final_outcome (the caseworker's), by (who decided, e.g. 'recorded:caseworker_outcome'), "
            f"optionally override (bool), why (reason codes) and actor. Got {', '.join(map(str, frame.columns))}."
        )
    n = len(frame)
    ids = _str(frame["case_id"])
    no_id = pc.or_kleene(pc.is_null(string_array(ids)), pc.equal(pc.utf8_length(string_array(ids)), 0))
    if n and pc.any(no_id).as_py():
        raise DataError(f"step {step}: the overrides frame has a missing case_id. Every decision needs a case.")
    if not ids.is_unique:
        raise DataError(
            f"step {step}: the overrides frame lists case id {ids[ids.duplicated()].iloc[0]!r} more than once."
        )
    by = _str(frame["by"])
    by_text = pc.utf8_trim_whitespace(string_array(by))
    no_by = pc.fill_null(pc.equal(pc.utf8_length(by_text), 0), True).to_numpy(zero_copy_only=False)
    if no_by.any():
        raise DataError(
            f"step {step}: every caseworker decision must say who decided (column by). "
            f"Got none for case id {ids.iloc[int(np.flatnonzero(no_by)[0])]!r}."
        )
    final = _str(frame["final_outcome"])
    if bool(final.isna().any()):
        raise DataError(
            f"step {step}: final_outcome is missing for case id {ids[final.isna().to_numpy()].iloc[0]!r}. "
            "A recorded caseworker decision must have an outcome."
        )
    outcome = _str(frame["outcome"])
    changed = pc.fill_null(pc.not_equal(string_array(outcome), string_array(final)), True)
    changed_np = np.asarray(changed.to_numpy(zero_copy_only=False), dtype=bool)
    if "override" in frame.columns:
        ov = frame["override"].reset_index(drop=True)
        if ov.dtype != bool:
            bad = ~ov.isin([True, False]) | ov.isna()
            if bool(bad.any()):
                raise DataError(f"step {step}: override must hold true or false. Got {ov[bad].iloc[0]!r}.")
            ov = ov.astype(bool)
        override = ov.to_numpy(dtype=bool)
    else:
        referred = is_in(outcome.fillna(""), pd.Index(list(review_labels), dtype="str"))
        override = changed_np & ~referred
    actor = _str(frame["actor"]) if "actor" in frame.columns else pd.Series("caseworker", index=range(n), dtype="str")
    for value in pc.unique(string_array(actor)).to_pylist():
        validate_actor(value, where=f"step {step}: overrides actor")
    why = _str(frame["why"]).fillna("") if "why" in frame.columns else pd.Series("", index=range(n), dtype="str")
    return pd.DataFrame(
        {
            "case_id": ids,
            "outcome": outcome,
            "final_outcome": final,
            "changed": changed_np,
            "override": override,
            "actor": actor,
            "by": by,
            "why": why,
        }
    )
