"""``insyn trace RUN_DIR CASE_ID``: one case's data journey as a readable timeline.

Reads a finished run folder (``journey.parquet``, ``decisions.parquet``,
``results.json``, ``checks.json``) and tells, for one case: what happened at
each step and who acted, which fields changed and from what to what, which
checks it failed, what the engine decided and why, what a caseworker did,
and what the law's baseline (the reference) says it should have got.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from audit.exceptions import DataError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_JOURNEY_COLUMNS = ("case_id", "step", "step_index", "status")
_TYPES = {pa.uint64(): pd.UInt64Dtype()}


def _clean(value: object) -> str:
    """Text of a value for a terminal: control characters shown as escapes."""
    text = str(value)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _money(value: object) -> str:
    if _missing(value):
        return "-"
    try:
        return f"{float(value):,.2f} SEK"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return _clean(value)


def _text(value: object) -> str:
    return "-" if _missing(value) or value == "" else _clean(value)


def _codes(value: object) -> str:
    if _missing(value) or value == "":
        return "-"
    return ", ".join(_clean(v) for v in str(value).split(";") if v)


def _columns(names: list[Any], *, shown: int = 8) -> str:
    """Column names for one line: the first ``shown`` and how many more."""
    text = ", ".join(_clean(c) for c in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _read_case(path: Path, case_id: str, *, required: tuple[str, ...]) -> pd.DataFrame:
    """The rows of one case in a Parquet file of the run (read with a filter, not whole)."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot be read as Parquet ({exc}). Expected a file written by insyn run.") from None
    missing = [c for c in required if c not in schema.names]
    if missing:
        raise DataError(
            f"{path}: has no column {missing[0]!r}. Expected columns {', '.join(required)}. "
            f"Got {', '.join(schema.names)}."
        )
    if not pa.types.is_string(schema.field("case_id").type) and not pa.types.is_large_string(
        schema.field("case_id").type
    ):
        table = pq.read_table(path)
        frame = table.to_pandas(types_mapper=_TYPES.get)
        return frame.loc[frame["case_id"].astype("str") == case_id].reset_index(drop=True)
    table = pq.read_table(path, filters=[("case_id", "=", case_id)])
    return table.to_pandas(types_mapper=_TYPES.get)


def _load_json(path: Path) -> Any:
    """A JSON file of the run, or None when it is not there."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: is not valid JSON ({exc}). Expected a file written by insyn run.") from None


def _unknown_case(run: Path, case_id: str, journey_path: Path) -> DataError:
    first = pq.read_table(journey_path, columns=["case_id"]).slice(0, 50_000).column(0).unique()
    examples = ", ".join(repr(v) for v in first.slice(0, 3).to_pylist())
    hint = f" Case ids look like {examples}." if examples else " The journey has no cases."
    return DataError(f"{run}: case id {case_id!r} is not in this run (journey.parquet, decisions.parquet).{hint}")


def _check_lines(checks: Any, case_id: str) -> tuple[list[str], list[str], list[str]]:
    """(failed for this case, failed for some cases not sampled, failed for the data set as a whole)."""
    mine: list[str] = []
    maybe: list[str] = []
    whole: list[str] = []
    if isinstance(checks, dict):
        entries = checks.get("checks", [])
    else:
        entries = checks if isinstance(checks, list) else []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        step = entry.get("step", "?")
        policy = entry.get("policy")
        for r in entry.get("results", []) or []:
            if not isinstance(r, dict) or r.get("success", True):
                continue
            name = r.get("expectation") or r.get("type") or r.get("assertion") or "expectation"
            col = r.get("column")
            where = f"{_clean(step)}: {_clean(name)}" + (f" on {_clean(col)}" if col else "")
            if policy:
                where += f" (policy {_clean(policy)})"
            ids: list[str] = []
            for key in ("failed_case_ids", "sample_case_ids", "case_ids"):
                if isinstance(r.get(key), list):
                    ids.extend(str(v) for v in r[key])
            count = r.get("unexpected_count")
            if case_id in ids:
                mine.append(where + (f": failed for {count} case(s), this one among them" if count is not None else ""))
            elif count is None and not ids:
                whole.append(where)
            elif count is None or count > len(ids):
                maybe.append(where + f": failed for {count if count is not None else 'some'} case(s); the stored "
                             f"sample of {len(ids)} does not include this case")
    return mine, maybe, whole


def trace(run_dir: str | Path, case_id: str) -> str:
    """Tell the data journey of one case in a finished run, as plain text.

    Parameters
    ----------
    run_dir : str or Path
        A run folder, ``reports/<audit>/<run_id>/``.
    case_id : str
        The case to trace.

    Returns
    -------
    str
        A timeline: the run, each step (actor, status, reason, fields changed
        with old and new values, who decided), the checks the case failed,
        the engine's decision and reasons, a caseworker's decision, and the
        reference decision.

    Raises
    ------
    DataError
        When the folder or its ``journey.parquet`` is missing or unreadable,
        or ``case_id`` is not a case of the run (the message names both).
    """
    run = Path(run_dir)
    case_id = str(case_id)
    if not run.is_dir():
        raise DataError(f"{run}: no such run folder. Expected reports/<audit>/<run_id>/ written by insyn run.")
    journey_path = run / "journey.parquet"
    if not journey_path.is_file():
        raise DataError(f"{run}: journey.parquet is missing. Expected a complete run folder written by insyn run.")
    rows = _read_case(journey_path, case_id, required=_JOURNEY_COLUMNS).sort_values("step_index", kind="stable")
    decisions_path = run / "decisions.parquet"
    decision = (
        _read_case(decisions_path, case_id, required=("case_id",)) if decisions_path.is_file() else pd.DataFrame()
    )
    if rows.empty and decision.empty:
        raise _unknown_case(run, case_id, journey_path)
    results = _load_json(run / "results.json") or {}
    checks = _load_json(run / "checks.json")
    if checks is None:
        checks = results.get("checks")
    summaries = {s.get("name"): s for s in (results.get("journey") or {}).get("steps", []) if isinstance(s, dict)}

    out: list[str] = []
    spec = results.get("spec") or {}
    audit = spec.get("name") if isinstance(spec, dict) else None
    out.append(f"Data journey of case {_clean(case_id)!s}")
    out.append(
        f"run {_clean(results.get('run_id', run.name))}"
        + (f" (audit {_clean(audit)})" if audit else "")
        + f", folder {run}"
    )
    out.append("")
    out.append("Steps")
    by_step = {str(r["step"]): r for r in rows.to_dict(orient="records")}
    order: list[tuple[int, str]] = [(int(r["step_index"]), str(r["step"])) for r in rows.to_dict(orient="records")]
    for name, s in summaries.items():
        if name not in by_step and isinstance(s.get("index"), int):
            order.append((s["index"], str(name)))
    order = sorted(set(order))
    width = max([len(n) for _, n in order] + [4])
    for idx, name in order:
        s = summaries.get(name, {})
        row = by_step.get(name)
        actor = row.get("actor") if row is not None and not _missing(row.get("actor")) else s.get("actor", "?")
        head = f"  {idx + 1:>2}. {name:<{width}}  {_clean(actor):<12}"
        if row is None:
            out.append(head + "  (no record for this case: the step handled all cases alike)")
        else:
            status = _clean(row.get("status"))
            line = head + f"  {status}"
            by = row.get("by")
            if not _missing(by) and by:
                line += f" by {_clean(by)}"
            reason = row.get("reason")
            if not _missing(reason) and reason:
                line += f": {_clean(reason)}"
            out.append(line)
        engine = s.get("engine")
        if isinstance(engine, dict) and engine.get("name"):
            desc = f"engine {_clean(engine['name'])}"
            if engine.get("version"):
                desc += f" {_clean(engine['version'])}"
            if engine.get("definition_hash"):
                desc += f" (definition {_clean(engine['definition_hash'])})"
            out.append(f"        {desc}")
        if s.get("columns_added"):
            out.append(f"        added: {_columns(s['columns_added'])}")
        if s.get("columns_dropped"):
            out.append(f"        dropped: {_columns(s['columns_dropped'])}")
        if row is not None:
            values = row.get("values")
            changes: dict[str, Any] = {}
            if not _missing(values) and values:
                try:
                    changes = json.loads(values)
                except json.JSONDecodeError:
                    changes = {}
            fields = [f for f in str(row.get("changed_fields") or "").split(";") if f]
            for f in fields:
                pair = changes.get(f)
                if isinstance(pair, list) and len(pair) == 2:
                    out.append(
                        f"        {_clean(f)}: {_clean(json.dumps(pair[0], ensure_ascii=False))} -> "
                        f"{_clean(json.dumps(pair[1], ensure_ascii=False))} (changed by {_clean(actor)})"
                    )
                else:
                    out.append(f"        {_clean(f)} changed (by {_clean(actor)})")
            h = row.get("row_hash")
            if not _missing(h):
                out.append(f"        row hash {int(h):016x}")

    mine, maybe, whole = _check_lines(checks, case_id)
    out.append("")
    out.append("Checks")
    if not (mine or maybe or whole):
        out.append("  no failed check concerns this case")
    for line in mine:
        out.append(f"  FAILED for this case  {line}")
    for line in maybe:
        out.append(f"  failed (not sampled)  {line}")
    for line in whole:
        out.append(f"  failed (data set)     {line}")

    out.append("")
    out.append("Decision")
    if decision.empty:
        out.append("  not in decisions.parquet")
    else:
        d = decision.iloc[0].to_dict()
        status_reason = d.get("status_reason")
        shown_reason = f": {_clean(status_reason)}" if not _missing(status_reason) and status_reason else ""
        out.append(f"  status          {_text(d.get('status'))}{shown_reason}")
        out.append(f"  engine outcome  {_text(d.get('outcome'))}")
        out.append(f"  engine amount   {_money(d.get('amount'))}")
        out.append(f"  engine reasons  {_codes(d.get('reasons'))}")
        if "final_outcome" in d:
            who = d.get("decided_by")
            extra = []
            if not _missing(who) and who:
                extra.append(f"decided by {_clean(who)}")
            if d.get("override") is True:
                extra.append("override of the engine")
            shown_extra = f" ({'; '.join(extra)})" if extra else ""
            out.append(f"  final outcome   {_text(d.get('final_outcome'))}{shown_extra}")
            out.append(f"  final amount    {_money(d.get('final_amount'))}")
        groups = [
            f"{_clean(c)}: {_text(d[c])}"
            for c in (spec.get("sensitive_features") or [] if isinstance(spec, dict) else [])
            if c in d
        ]
        if groups:
            out.append(f"  groups          {'; '.join(groups)}")

        out.append("")
        out.append("Reference (what the law's baseline says)")
        if "truth_outcome" not in d and "truth_amount" not in d:
            out.append("  no reference decision in this run")
        else:
            out.append(f"  outcome         {_text(d.get('truth_outcome'))}")
            if "truth_amount" in d:
                out.append(f"  amount          {_money(d.get('truth_amount'))}")
            if "truth_reasons" in d:
                out.append(f"  reasons         {_codes(d.get('truth_reasons'))}")
            final = d.get("final_outcome", d.get("outcome"))
            truth = d.get("truth_outcome")
            if not _missing(truth) and not _missing(final):
                if str(final) == str(truth):
                    out.append(f"  the final outcome agrees with the reference ({_clean(truth)})")
                else:
                    out.append(f"  the final outcome ({_clean(final)}) differs from the reference ({_clean(truth)})")
            fa, ta = d.get("final_amount", d.get("amount")), d.get("truth_amount")
            if not _missing(fa) and not _missing(ta):
                diff = float(fa) - float(ta)
                if abs(diff) >= 0.005:
                    side = "above" if diff > 0 else "below"
                    out.append(f"  the final amount is {_money(abs(diff))} {side} the reference")
    return "\n".join(out) + "\n"
