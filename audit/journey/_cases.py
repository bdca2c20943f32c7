"""The rows of ``journey.parquet``: one per case and step, built column-wise.

A step's rows come from three sources that are merged here: the frames the
step recorded (every case in its output, with its row hash, changed fields
and status), its row accounting (cases it rejected or errored, with the
reason, also when they are no longer in the output) and caseworker
decisions recorded at the step (who decided and why). The same module checks
that the frames and the accounting agree, so that no case is lost.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audit.exceptions import DataError
from audit.journey._frames import FrameLineage, constant_strings, is_in, json_text, match, string_array
from audit.journey._step import StepFrames, StepRecord
from audit.journey._vocabulary import CASE_STATUSES

CASES_COLUMNS: tuple[str, ...] = (
    "case_id",
    "step",
    "step_index",
    "status",
    "row_hash",
    "changed_fields",
    "values",
    "reason",
    "actor",
    "by",
)
"""Columns of ``journey.parquet`` (see :meth:`Journey.cases_frame`)."""

_CASE_SCHEMA = pa.schema(
    [
        ("case_id", pa.string()),
        ("status", pa.string()),
        ("row_hash", pa.uint64()),
        ("changed_fields", pa.string()),
        ("values", pa.string()),
        ("reason", pa.string()),
        ("actor", pa.string()),
        ("by", pa.string()),
    ]
)


CASES_SCHEMA = pa.schema(
    [
        ("case_id", pa.string()),
        ("step", pa.string()),
        ("step_index", pa.int16()),
        *[(f.name, f.type) for f in _CASE_SCHEMA if f.name != "case_id"],
    ]
).remove_metadata()
"""Arrow schema of ``journey.parquet``."""


def set_rows(column: pa.Array, rows: np.ndarray, values: pa.Array) -> pa.Array:
    """Return ``column`` with ``column[rows[i]] = values[i]`` (rows unique)."""
    if len(rows) == 0:
        return column
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    order = np.argsort(rows, kind="stable")
    mask = np.zeros(len(column), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(column, pa.array(mask), values.take(pa.array(order)))


def check_accounting(rec: StepRecord, fr: StepFrames, lin: FrameLineage, removed: pd.Index | None) -> None:
    """Check that the frames agree with the step's row accounting; fill it in when the step gave none.

    Rows in must be the rows of ``before``; rows out the rows of ``after``
    that were not rejected or errored; a case may leave the frame only as a
    rejected or errored case, and no case may appear from nowhere.

    Raises
    ------
    DataError
        ``"step <name>: cannot account for rows: ..."`` naming the numbers
        or the first cases that cannot be accounted for.
    """
    name = rec.name
    n_after = len(fr.after)
    in_after = 0
    if removed is not None and len(removed):
        in_after = int(is_in(lin.ids, removed).sum())
    if not rec.accounted:
        rec.rows_in = len(fr.before) if fr.before is not None else n_after
        rec.rows_out = n_after
    else:
        if fr.before is not None and rec.rows_in != len(fr.before):
            raise DataError(
                f"step {name}: cannot account for rows: rows_in is {rec.rows_in} but the before frame has "
                f"{len(fr.before)} rows."
            )
        expected_out = n_after - in_after
        if rec.rows_out != expected_out:
            raise DataError(
                f"step {name}: cannot account for rows: rows_out is {rec.rows_out} but the after frame has "
                f"{n_after} rows, {in_after} of them rejected or errored (expected rows_out {expected_out})."
            )
    if fr.before is not None and lin.alignment is not None and lin.before_ids is not None:
        if lin.alignment.pos is not None and bool((lin.alignment.pos < 0).any()):
            new_ids = lin.ids[lin.alignment.pos < 0]
            raise DataError(
                f"step {name}: cannot account for rows: {len(new_ids)} case(s) in the after frame were not in the "
                f"before frame, e.g. {', '.join(repr(v) for v in new_ids.iloc[:3])}. A step may drop cases "
                "(rejected or errored) but not add them."
            )
        gone_ids = lin.before_ids.take(lin.alignment.gone)
        unaccounted = gone_ids if removed is None else gone_ids[~is_in(gone_ids, removed)]
        if len(unaccounted):
            sample = ", ".join(repr(v) for v in unaccounted.iloc[:3])
            raise DataError(
                f"step {name}: cannot account for rows: {len(unaccounted)} case(s) left the frame without being "
                f"rejected or errored, e.g. {sample}."
            )


def status_arrays(rec: StepRecord, fr: StepFrames, ids: pd.Series) -> tuple[pa.Array, pa.Array]:
    """Status and reason per row of ``after`` from frames(status=..., reason=...)."""
    n = len(ids)
    name = rec.name

    def aligned(series: pd.Series, what: str) -> tuple[pd.Series, np.ndarray | None]:
        if series.index.equals(fr.after.index):
            return series.reset_index(drop=True), None
        labels = pd.Index(series.index.astype("str"))
        if not labels.is_unique:
            raise DataError(f"step {name}: {what} lists case id {labels[labels.duplicated()][0]!r} more than once.")
        rows, where = match(ids, labels)
        found = np.zeros(len(labels), dtype=bool)
        found[where] = True
        if not found.all():
            left = labels[~found]
            removed = [s.index for s in (rec.rejected, rec.errored) if s is not None]
            stray = left[~is_in(left, removed[0].append(removed[1:]))] if removed else left
            if len(stray):
                raise DataError(
                    f"step {name}: {what} is neither aligned with the after frame (same index) nor indexed by "
                    f"case ids of the step: {stray[0]!r} is not a case of the after frame, nor rejected or errored."
                )
        values = series.reset_index(drop=True)
        return values.iloc[where], rows

    if isinstance(fr.status, str):
        status = constant_strings(fr.status, n)
    else:
        values, rows = aligned(fr.status, "status")
        _check_statuses(values, ids if rows is None else ids.iloc[rows], step=name)
        arr = string_array(values)
        status = arr if rows is None else set_rows(constant_strings("ok", n), rows, arr)
    if fr.reason is None:
        reason = constant_strings("", n)
    else:
        values, rows = aligned(fr.reason, "reason")
        arr = pc.fill_null(string_array(values), "")
        reason = arr if rows is None else set_rows(constant_strings("", n), rows, arr)
    return status, reason


def _check_statuses(values: pd.Series, ids: pd.Series | pd.Index, *, step: str) -> None:
    """Raise DataError naming the first status that is not one of CASE_STATUSES, and its case."""
    bad = ~values.isin(CASE_STATUSES).to_numpy(dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"step {step}: status must be one of {', '.join(CASE_STATUSES)}. "
            f"Got {values.iloc[i]!r} for case id {ids[i] if isinstance(ids, pd.Index) else ids.iloc[i]!r}."
        )


def _given_for(series: pd.Series | str | None, fr: StepFrames, ids: pd.Index) -> pd.Series | None:
    """Values of an id-indexed status/reason Series for cases that left the after frame (None when not given)."""
    if not isinstance(series, pd.Series) or series.index.equals(fr.after.index):
        return None
    values = pd.Series(series.to_numpy(), index=pd.Index(series.index.astype("str")))
    rows, where = match(pd.Series(ids), values.index)
    out = pd.Series(np.nan, index=ids, dtype="str")
    out.iloc[rows] = values.iloc[where].astype("str").to_numpy()
    return out


def case_table(rec: StepRecord, lin: FrameLineage | None) -> pa.Table:
    """The step's rows of ``journey.parquet`` (without step and step_index)."""
    fr = rec.frames
    parts: list[pa.Table] = []
    after_ids: pd.Series | None = None
    if fr is not None and lin is not None:
        after_ids = lin.ids
        n = len(after_ids)
        status, reason = status_arrays(rec, fr, after_ids)
        table = pa.table(
            {
                "case_id": string_array(after_ids),
                "status": status,
                "row_hash": pa.array(lin.row_hash, type=pa.uint64()),
                "changed_fields": lin.changed_fields,
                "values": lin.values,
                "reason": reason,
                "actor": constant_strings(rec.actor, n),
                "by": constant_strings("", n),
            },
            schema=_CASE_SCHEMA,
        )
        for series, default in ((rec.rejected, "rejected"), (rec.errored, "error")):
            if series is None or not len(series):
                continue
            r, where = match(after_ids, series.index)
            if not len(r):
                continue
            cur_status = table["status"].take(pa.array(r))
            new_status = pc.if_else(pc.equal(cur_status, "ok"), default, cur_status)
            cur_reason = table["reason"].take(pa.array(r))
            given = string_array(series).take(pa.array(where))
            new_reason = pc.if_else(pc.equal(cur_reason, ""), given, cur_reason)
            table = table.set_column(1, "status", set_rows(table["status"], r, new_status))
            table = table.set_column(5, "reason", set_rows(table["reason"], r, new_reason))
        parts.append(table)
    # cases that left (rejected or errored and not in the after frame)
    for series, default in ((rec.rejected, "rejected"), (rec.errored, "error")):
        if series is None or not len(series):
            continue
        if after_ids is not None:
            stayed = after_ids[is_in(after_ids, series.index)]
            series = series[~is_in(series.index, stayed)]
        if not len(series):
            continue
        m = len(series)
        status: pa.Array = constant_strings(default, m)
        reason: pa.Array | pa.ChunkedArray = string_array(series)
        if fr is not None:
            given_status = _given_for(fr.status, fr, series.index)
            if given_status is not None and given_status.notna().any():
                filled = given_status.fillna(default)
                _check_statuses(filled, series.index, step=rec.name)
                status = string_array(filled)
            given_reason = _given_for(fr.reason, fr, series.index)
            if given_reason is not None:
                keep = given_reason.notna() & (given_reason.str.len() > 0)
                reason = string_array(given_reason.where(keep, series.to_numpy()))
        hashes: pa.Array = pa.nulls(m, pa.uint64())
        if lin is not None and lin.before_hash is not None and lin.before_ids is not None:
            rows, where = match(lin.before_ids, series.index)
            vals = np.zeros(m, dtype=np.uint64)
            ok = np.zeros(m, dtype=bool)
            vals[where] = lin.before_hash[rows]
            ok[where] = True
            hashes = pa.array(vals, type=pa.uint64(), mask=~ok)
        parts.append(
            pa.table(
                {
                    "case_id": string_array(series.index),
                    "status": status,
                    "row_hash": hashes,
                    "changed_fields": constant_strings("", m),
                    "values": pa.nulls(m, pa.string()),
                    "reason": reason,
                    "actor": constant_strings(rec.actor, m),
                    "by": constant_strings("", m),
                },
                schema=_CASE_SCHEMA,
            )
        )
    table = pa.concat_tables(parts) if parts else _CASE_SCHEMA.empty_table()
    if rec.overrides is not None and len(rec.overrides):
        table = merge_overrides(table, rec)
    return table


def merge_overrides(table: pa.Table, rec: StepRecord) -> pa.Table:
    """Add the step's caseworker decisions to its rows.

    A case that already has a row (the step recorded frames) gets the
    caseworker's status, actor, who and why, and ``final_outcome`` as its
    changed field unless the frames found other changes; any other case gets
    a row of its own (without a row hash: the step did not show its frame).
    """
    ov = rec.overrides
    assert ov is not None
    m = len(ov)
    status = np.where(ov["override"].to_numpy(dtype=bool), "overridden", "reviewed")
    changed = ov["changed"].to_numpy(dtype=bool)
    old_text = json_text(ov["outcome"])
    new_text = json_text(ov["final_outcome"])
    pair = pc.binary_join_element_wise('{"final_outcome":[', old_text, ",", new_text, "]}", "")
    values = pc.if_else(pa.array(changed), pair, pa.scalar(None, pa.string()))
    fields = pc.if_else(pa.array(changed), "final_outcome", "")
    ov_table = pa.table(
        {
            "case_id": string_array(ov["case_id"]),
            "status": pa.array(status.astype(object), type=pa.string()),
            "row_hash": pa.nulls(m, pa.uint64()),
            "changed_fields": fields,
            "values": values,
            "reason": string_array(ov["why"]),
            "actor": string_array(ov["actor"]),
            "by": string_array(ov["by"]),
        },
        schema=_CASE_SCHEMA,
    )
    if table.num_rows == 0:
        return ov_table
    table_ids = pd.Series(pd.StringDtype("pyarrow", na_value=np.nan).__from_arrow__(table["case_id"]), copy=False)
    rows, where = match(table_ids, ov["case_id"])
    hit = np.zeros(m, dtype=bool)
    hit[where] = True
    if hit.any():
        sub = ov_table.take(pa.array(where))
        cols = {name: table[name].combine_chunks() for name in table.column_names}
        for name in ("status", "reason", "actor", "by"):
            cols[name] = set_rows(cols[name], rows, sub[name].combine_chunks())
        cur_fields = cols["changed_fields"].take(pa.array(rows))
        cur_values = cols["values"].take(pa.array(rows))
        empty = pc.equal(cur_fields, "")
        new_fields = pc.if_else(empty, sub["changed_fields"].combine_chunks(), cur_fields)
        new_values = pc.if_else(empty, sub["values"].combine_chunks(), cur_values)
        cols["changed_fields"] = set_rows(cols["changed_fields"], rows, new_fields)
        cols["values"] = set_rows(cols["values"], rows, new_values)
        table = pa.table(cols, schema=_CASE_SCHEMA)
    rest = ov_table.filter(pa.array(~hit))
    return pa.concat_tables([table, rest]) if rest.num_rows else table
