"""Recorded engines: replay the decisions that were actually made.

Often the engine itself is out of reach: the municipality will not release
the robot's rules (Trelleborg's source code took a court ruling), the vendor
has moved on, or the question is about decisions already taken. What remains
is the log: one row per application with the decision, the amount paid and
the reason codes. The ``recorded`` adapter turns that log into an engine that
"decides" each case by looking up what was decided, so the same contract
checks, metrics and reports apply to historical decisions as to a live
engine.

The decisions come either from columns of the case frame itself (``outcome:
decision`` names the column) or from a separate log file joined on
``case_id`` (``path:``). A case with no recorded decision is an error with a
reason, never a silent gap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit._paths import display_path, sha256_file
from audit.engine._protocol import short_repr
from audit.exceptions import DataError, SpecError

__all__ = ["RecordedEngine"]


def _read_log(path: Path) -> pd.DataFrame:
    shown = display_path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in {".csv", ".txt"}:
            return pd.read_csv(path, dtype={"case_id": "str"})
        if suffix in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        if suffix in {".xlsx", ".xlsm", ".xls"}:
            return pd.read_excel(path, dtype={"case_id": "str"})
        if suffix in {".jsonl", ".ndjson"}:
            return pd.read_json(path, lines=True, dtype={"case_id": "str"})
    except Exception as exc:
        raise DataError(f"{shown}: cannot read the decision log: {type(exc).__name__}: {exc}.") from None
    raise DataError(
        f"{shown}: a decision log must be CSV, Parquet, Excel or JSON lines. Got a {suffix or 'file without suffix'}."
    )


class RecordedEngine:
    """Replay recorded decisions by ``case_id``.

    Parameters
    ----------
    outcome : str
        Column holding the recorded outcome label.
    amount, reasons, score : str, optional
        Columns holding the amount paid, the reason codes and a score.
    path : str or Path, optional
        A decision log (CSV, Parquet, Excel, JSON lines) with a ``case_id``
        column. Without it the columns are read from the cases themselves
        (and listed in ``required_columns`` so that the runner passes them).
    name, version : str, optional
        Shown in reports.

    Raises
    ------
    SpecError
        When a column name is not a non-empty string.
    DataError
        When the log cannot be read, lacks a column, or repeats a case_id.
    """

    def __init__(
        self,
        *,
        outcome: str,
        amount: str | None = None,
        reasons: str | None = None,
        score: str | None = None,
        path: str | Path | None = None,
        name: str | None = None,
        version: str | None = None,
    ) -> None:
        cols = {"outcome": outcome, "amount": amount, "reasons": reasons, "score": score}
        for key, col in cols.items():
            if col is not None and (not isinstance(col, str) or not col):
                raise SpecError(f"engine.{key} must name a column. Got {short_repr(col)}.")
        if outcome is None:
            raise SpecError("engine.outcome (the column of recorded outcomes) is required for a recorded engine.")
        self._cols: dict[str, str] = {k: v for k, v in cols.items() if v is not None}
        self._log: pd.DataFrame | None = None
        self.path = Path(path) if path is not None else None
        self.definition_hash: str | None = None
        if self.path is not None:
            shown = display_path(self.path)
            if not self.path.is_file():
                raise DataError(f"{shown}: no such decision log. Expected a CSV, Parquet, Excel or JSON-lines file.")
            log = _read_log(self.path)
            need = ["case_id", *self._cols.values()]
            missing = [c for c in need if c not in log.columns]
            if missing:
                raise DataError(
                    f"{shown}: the decision log has no column {missing[0]!r}. "
                    f"Columns given: {', '.join(map(str, log.columns[:15]))}."
                )
            ids = log["case_id"].astype("str")
            dup = ids.duplicated()
            if dup.any():
                raise DataError(
                    f"{shown}: column 'case_id' must be unique in a decision log. Got {int(dup.sum())} "
                    f"repeated value(s), the first {ids[dup].iloc[0]!r}."
                )
            self._log = log[list(dict.fromkeys(self._cols.values()))].set_axis(pd.Index(ids), axis=0)
            self.definition_hash = sha256_file(self.path)
            self.required_columns: tuple[str, ...] = ()
            default_name = self.path.stem
        else:
            self.required_columns = tuple(dict.fromkeys(self._cols.values()))
            default_name = f"recorded:{outcome}"
        self.sees: tuple[str, ...] = self.required_columns
        self.name: str = name or default_name
        self.version: str = version or (f"sha256:{self.definition_hash[:12]}" if self.definition_hash else "recorded")

    def __repr__(self) -> str:
        src = display_path(self.path) if self.path is not None else "the cases"
        return f"RecordedEngine(outcome={self._cols['outcome']!r}, from={src!r})"

    def decide(self, cases: pd.DataFrame) -> pd.DataFrame:
        """Look up each case's recorded decision."""
        n = len(cases)
        ids = cases["case_id"].astype("str")
        if self._log is not None:
            source = self._log.reindex(pd.Index(ids.to_numpy()))
            missing = ~pd.Index(ids.to_numpy()).isin(self._log.index)
            where = display_path(self.path) if self.path is not None else ""
            error = np.where(missing, f"no recorded decision for this case in {where}", "")
            source = source.reset_index(drop=True)
        else:
            absent = [c for c in self._cols.values() if c not in cases.columns]
            if absent:
                raise DataError(
                    f"The recorded engine reads the column {absent[0]!r}, which the cases lack. "
                    "Check engine.outcome / amount / reasons / score in the spec."
                )
            source = cases.reset_index(drop=True)
            error = np.full(n, "", dtype=object)
        out: dict[str, Any] = {"case_id": ids.to_numpy()}
        for key in ("outcome", "amount", "score", "reasons"):
            col = self._cols.get(key)
            if col is None:
                out[key] = np.full(n, np.nan) if key in {"amount", "score"} else pd.array([""] * n, dtype="str")
            elif key == "reasons":
                out[key] = source[col].astype("str").fillna("").to_numpy()
            else:
                out[key] = source[col].to_numpy()
        out["error"] = pd.array(error, dtype="str")
        return pd.DataFrame(out)
