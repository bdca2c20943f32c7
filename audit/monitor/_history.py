"""The monitoring history: one Parquet file per run in a folder, read with DuckDB.

A monitoring job runs once per period (a month of decisions) and must never
lose a run, even when two jobs (two municipalities, a re-run, a backfill)
write at the same time. A database file would make writers queue for a lock;
instead every run writes its own file, ``run=<run_id>.parquet``, first under a
hidden temporary name and then renamed into place (an atomic step on one file
system), so a reader sees a run completely or not at all. Readers query every
file at once with DuckDB's ``read_parquet('<dir>/run=*.parquet',
union_by_name=true)``, which takes no lock.

A history row is one metric row of a run (``attributes`` joined with
``" & "``, ``""`` for all cases) plus what identifies the run (``audit``,
``period``, ``run_id``, ``generated_at``, ``spec_hash``, ``engine_hash``,
``baseline``) and what the monitor computed for it (scores, CUSUM state,
alerts); :data:`HISTORY_COLUMNS` lists every column and its type. The run's
public values (:mod:`audit.public_values`) are rows too: their ``metric`` is
``<value>:<indicator>`` (``engagement:digital_rate``), ``public_value``
names the value, and an indicator the data cannot measure has one row
without a value whose ``reason`` names the missing columns. ``language`` is
the spec's report language, which the trend page follows by default.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit._privacy import mask_table
from audit.exceptions import DataError

__all__ = [
    "HISTORY_COLUMNS",
    "history_files",
    "latest_runs",
    "load_history",
    "read_runs",
    "write_history",
]

HISTORY_COLUMNS: dict[str, str] = {
    "audit": "str",
    "period": "str",
    "run_id": "str",
    "generated_at": "str",
    "spec_hash": "str",
    "engine_hash": "str",
    "baseline": "str",
    "metric": "str",
    "attributes": "str",
    "group": "str",
    "n": "float",
    "value": "float",
    "ci_low": "float",
    "ci_high": "float",
    "se": "float",
    "count": "float",
    "reference_group": "str",
    "reference_value": "float",
    "difference": "float",
    "ratio": "float",
    "p_value": "float",
    "p_adjusted": "float",
    "suppressed": "bool",
    "reason": "str",
    "monitored": "bool",
    "baseline_value": "float",
    "baseline_low": "float",
    "baseline_high": "float",
    "baseline_n": "float",
    "baseline_periods": "int",
    "dispersion": "float",
    "z": "float",
    "change_limit": "float",
    "reference_z": "float",
    "cusum_upper": "float",
    "cusum_lower": "float",
    "cusum_h": "float",
    "cusum_since": "str",
    "alert": "str",
    "note": "str",
    "public_value": "str",
    "language": "str",
}
"""Columns of a history file and their kinds (str, float, int, bool); strings are never null."""

_PATTERN = "run=*.parquet"


def _schema() -> Any:
    import pyarrow as pa

    kinds = {"str": pa.string(), "float": pa.float64(), "int": pa.int64(), "bool": pa.bool_()}
    return pa.schema([(name, kinds[kind]) for name, kind in HISTORY_COLUMNS.items()])


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the frame with exactly the history columns, in order, with their kinds."""
    out: dict[str, Any] = {}
    size = len(frame)
    for name, kind in HISTORY_COLUMNS.items():
        col = frame[name] if name in frame.columns else None
        if kind == "str":
            s = pd.Series([""] * size if col is None else col.to_numpy(), index=frame.index, dtype=object)
            out[name] = s.where(s.notna(), "").astype("str")
        elif kind == "float":
            out[name] = (pd.Series(np.nan, index=frame.index) if col is None
                         else pd.to_numeric(col, errors="coerce")).astype("float64")
        elif kind == "int":
            out[name] = (pd.Series(0, index=frame.index) if col is None
                         else pd.to_numeric(col, errors="coerce").fillna(0)).astype("int64")
        else:
            out[name] = (pd.Series(False, index=frame.index) if col is None
                         else col.astype(object).where(col.notna(), False)).astype(bool)
    return pd.DataFrame(out, index=frame.index).reset_index(drop=True)


def check_dir(directory: str | Path, *, create: bool) -> Path:
    """Return the history folder; create it when ``create``, else refuse a missing one (DataError)."""
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise DataError(f"{d}: the history must be a folder. Got a file.")
    if not d.exists():
        if not create:
            raise DataError(f"{d}: no such history folder. Expected a folder written by insyn monitor.")
        d.mkdir(parents=True, exist_ok=True)
    return d


def write_history(directory: str | Path, rows: pd.DataFrame, *, run_id: str) -> Path:
    """Write one run's rows as ``run=<run_id>.parquet``, atomically.

    The file is written under a hidden temporary name in the same folder,
    flushed to disk and renamed, so that concurrent readers and writers never
    see a partial file and two writers never touch the same file.

    Parameters
    ----------
    directory : str or Path
        The history folder (created when missing).
    rows : pandas.DataFrame
        The run's rows; missing history columns are filled (empty strings,
        NaN, 0, False) and extra columns dropped.
    run_id : str
        The run's id; it names the file, fills the ``run_id`` column and
        must be new in the folder.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    DataError
        When the folder is a file, the run id is already in the history or
        the rows name another run.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = check_dir(directory, create=True)
    if not run_id or "/" in run_id or os.sep in run_id or run_id.startswith("."):
        raise DataError(f"{d}: a run id must be a non-empty file name without '/' or a leading '.'. Got {run_id!r}.")
    target = d / f"run={run_id}.parquet"
    if target.exists():
        raise DataError(f"{target}: the history already holds run {run_id!r}. Expected a new run id.")
    frame = conform(rows)
    other = sorted(set(frame["run_id"]) - {"", run_id})
    if other:
        raise DataError(f"{target}: the rows name the run {other[0]!r}, not {run_id!r}. Expected one run per file.")
    frame["run_id"] = run_id
    table = mask_table(pa.Table.from_pandas(frame, schema=_schema(), preserve_index=False))  # the privacy gate
    tmp = d / f".run={run_id}.parquet.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def history_files(directory: str | Path) -> list[Path]:
    """The run files of a history folder, sorted by name."""
    d = check_dir(directory, create=False)
    return sorted(p for p in d.glob(_PATTERN) if p.is_file())


def _query(directory: str | Path, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Run ``sql`` with the relation ``history`` bound to every run file of the folder."""
    import duckdb

    files = history_files(directory)
    if not files:
        return conform(pd.DataFrame(columns=list(HISTORY_COLUMNS)))
    query = (f"WITH history AS (SELECT * FROM read_parquet($files, union_by_name = true)) {sql}")
    try:
        with duckdb.connect(":memory:") as con:
            frame = con.execute(query, {"files": [str(f) for f in files], **(params or {})}).df()
    except duckdb.Error as exc:
        raise DataError(f"{directory}: cannot read the history files ({len(files)} run=*.parquet): {exc}") from None
    return frame


def load_history(directory: str | Path, *, audit: str | None = None) -> pd.DataFrame:
    """Read every run of a history folder.

    Parameters
    ----------
    directory : str or Path
        A folder written by :func:`audit.monitor.run_monitor`.
    audit : str, optional
        Keep only the runs of this audit.

    Returns
    -------
    pandas.DataFrame
        One row per metric row of each run, with the columns of
        :data:`HISTORY_COLUMNS`, sorted by period, time of the run, metric,
        attributes and group; empty (with the columns) when the folder holds
        no run.

    Raises
    ------
    DataError
        When the folder does not exist or a file cannot be read.
    """
    where = "WHERE audit = $audit" if audit is not None else ""
    params = {"audit": audit} if audit is not None else {}
    frame = _query(directory, f"SELECT * FROM history {where} "
                              "ORDER BY period, generated_at, run_id, metric, attributes, \"group\"", params)
    return conform(frame)


def latest_runs(directory: str | Path, *, audit: str) -> pd.DataFrame:
    """The latest run of each period of an audit: columns period, run_id, generated_at, engine_hash, drift.

    When a period was run more than once, the run that finished last counts.
    ``drift`` is True when the run raised a change or sequential alert (a
    row's ``alert`` is not empty). Sorted by period.
    """
    frame = _query(
        directory,
        "SELECT period, run_id, generated_at, engine_hash, drift FROM ("
        "  SELECT period, run_id, generated_at, any_value(engine_hash) AS engine_hash,"
        "    bool_or(coalesce(alert, '') <> '') AS drift FROM history"
        "  WHERE audit = $audit GROUP BY period, run_id, generated_at"
        ") QUALIFY row_number() OVER (PARTITION BY period ORDER BY generated_at DESC, run_id DESC) = 1 "
        "ORDER BY period",
        {"audit": audit},
    )
    if frame.empty:
        return pd.DataFrame({"period": pd.Series(dtype="str"), "run_id": pd.Series(dtype="str"),
                             "generated_at": pd.Series(dtype="str"), "engine_hash": pd.Series(dtype="str"),
                             "drift": pd.Series(dtype=bool)})
    frame["drift"] = frame["drift"].fillna(False).astype(bool)
    return frame.astype({"period": "str", "run_id": "str", "generated_at": "str", "engine_hash": "str"})


def read_runs(directory: str | Path, run_ids: Sequence[str]) -> pd.DataFrame:
    """The rows of the given runs (any audit), with the history columns."""
    if not run_ids:
        return conform(pd.DataFrame(columns=list(HISTORY_COLUMNS)))
    frame = _query(directory, "SELECT * FROM history WHERE list_contains($ids, run_id) "
                              "ORDER BY period, run_id, metric, attributes, \"group\"", {"ids": list(run_ids)})
    return conform(frame)
