"""``insyn trace RUN CASE``: which stage of the data journey changed one case's decision.

Reads ``attribution.parquet`` of a run folder (written when the spec has
``attribution:``): the stages whose changes touched the case and its
outcome under every coalition of stages. A stage *changed the decision*
when reverting its changes alone (the other stages' changes kept) gives
another outcome than the recorded one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audit.exceptions import DataError

__all__ = ["ATTRIBUTION_FILE", "trace_attribution"]

ATTRIBUTION_FILE = "attribution.parquet"
"""The run folder's per-case decisions under every coalition of stages."""

_COLUMN = re.compile(r"^outcome\[(.*)\]$")


def trace_attribution(run_dir: str | Path, case_id: str) -> str:
    """Lines telling which stage changed the case's decision ("" when the run has no attribution).

    Raises
    ------
    DataError
        When ``attribution.parquet`` cannot be read or lacks its columns.
    """
    path = Path(run_dir) / ATTRIBUTION_FILE
    if not path.is_file():
        return ""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot be read as Parquet ({exc}). Expected a file written by insyn run.") from None
    coalitions = {m.group(1): name for name in table.column_names if (m := _COLUMN.match(name))}
    if "case_id" not in table.column_names or "none" not in coalitions:
        raise DataError(f"{path}: expected the columns case_id and outcome[<stages kept>], e.g. outcome[none]. "
                        f"Got {', '.join(table.column_names)}.")
    full = max(coalitions, key=lambda c: 0 if c == "none" else len(c.split("+")))
    stages = [] if full == "none" else full.split("+")
    row = table.filter(pc.equal(table["case_id"], case_id)).to_pylist()
    lines = ["", "", f"Attribution along the data journey (stages {', '.join(stages)}):"]  # a blank line first
    if not row:
        return "\n".join([*lines, "  the case was not decided by the engine (not in attribution.parquet)."])
    case = row[0]
    recorded, true = case[coalitions[full]], case[coalitions["none"]]
    touched = [s for s in str(case.get("stages_changed") or "").split(";") if s]
    lines.append(f"  decision as recorded: {recorded}; on the true circumstances: {true}")
    if not touched:
        lines.append("  no stage changed a field the engine sees: the decision comes from the rules alone.")
        return "\n".join(lines)
    lines.append(f"  stages that changed its fields: {', '.join(touched)}")
    deciding = []
    for stage in touched:
        kept = "+".join(s for s in stages if s != stage) or "none"
        alone = case[coalitions[kept]]
        if alone != recorded:
            deciding.append(stage)
            lines.append(f"  {stage}: reverting its changes alone gives {alone}: this stage changed the decision.")
        else:
            lines.append(f"  {stage}: reverting its changes alone gives {alone}: the decision does not hang on it.")
    if not deciding and true != recorded:
        lines.append("  no single stage decides it, but the stages together changed the decision.")
    return "\n".join(lines)
