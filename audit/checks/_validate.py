"""Run expectation suites on one step's input and report per expectation and per case.

Every step of an audit run (intake, engine input, decisions, ...) hands its
input frame to :func:`validate` together with the suites the spec names for
that step. Through great-expectations' public API, the step's suites become
one ``ExpectationSuite`` named after the step, the frame one batch of a
pandas data source on an ephemeral context (no files, no progress bars), and
``batch.validate(suite)`` one validation. The result is a frozen
:class:`CheckReport`: one JSON-safe dict per expectation in suite order, the
overall verdict, the cases that failed any row-level expectation (what the
``quarantine`` policy keeps out of the decisions), and great-expectations'
own validation result (:attr:`CheckReport.gx_result`), which a run folder
keeps beside Insyn's summary in ``checks.json`` (the step's ``gx_result``)
for great-expectations' own tools.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from datetime import UTC, datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit._columns import ASSISTANCE_COLUMNS
from audit._ids import distinct
from audit._json import jsonable
from audit._privacy import MASK, PNR_PATTERN, may_hold_personnummer
from audit._schema import coerce_case_frame
from audit.checks._statistics import caching
from audit.checks._native import NativeResult, evaluate_native
from audit.checks._sufficient import record_statistics
from audit.checks._suite import Suite, SuiteExpectation, build_expectation, expand_entry, load_suite
from audit.exceptions import DataError, SpecError
from audit.population import csv_dialect

__all__ = ["CheckReport", "check_file", "failure_message", "validate"]

_KEY = "insyn_key"
"""Meta key that ties a great-expectations result back to its planned entry."""

_COLUMN_KWARGS = ("column", "column_A", "column_B", "group_column", "sensitive_column")
_COLUMN_LIST_KWARGS = ("column_list",)


# --------------------------------------------------------------------------
# report


@dataclass(frozen=True, eq=False)
class CheckReport:
    """What the suites found in one step's input (frozen).

    Attributes
    ----------
    step : str
        The step whose input was checked (``intake``, ``engine_input``,
        ``decisions``, ``check`` for :func:`check_file`, ...).
    suites : tuple of str
        Names of the suites run, in order.
    results : tuple of dict
        One JSON-safe dict per expectation (after ``{groups}`` expansion), in
        suite order, with keys ``suite``, ``index`` (entry in the suite),
        ``expectation`` (type), ``column`` (the column or ``"A, B"`` or None
        for table-level ones), ``kwargs``, ``success``, ``row_level``,
        ``severity``, ``element_count``, ``unexpected_count``,
        ``unexpected_percent``, ``observed_value``, ``details``,
        ``sample_case_ids``, ``message`` and ``meta``.
    success : bool
        True when no ``critical`` expectation failed (failed ``warning`` and
        ``info`` expectations are reported but do not fail the step).
    failed_case_ids : frozenset of str
        Ids of the cases unexpected in a failed critical row-level
        expectation: what ``quarantine`` keeps out. Rows that a ``mostly``
        tolerated, and rows of warning-level expectations, are not in it.
        Rows with a missing id are in :attr:`failed_rows` only.
    failed_rows : numpy.ndarray
        Sorted row positions (0-based) of the same cases.
    id_column : str or None
        The column that identified cases; None when the frame had none and
        samples are row positions.
    n_rows : int
        Rows in the checked frame.
    gx_result : dict or None
        great-expectations' own ``ExpectationSuiteValidationResult`` of the
        step as JSON (``to_json_dict()``), with personnummer-shaped text
        masked; None when no expectation could run. Not part of
        :meth:`to_dict`: it carries run times and batch fingerprints.
    """

    step: str
    suites: tuple[str, ...]
    results: tuple[dict[str, Any], ...]
    success: bool
    failed_case_ids: frozenset[str]
    failed_rows: np.ndarray
    id_column: str | None
    n_rows: int
    gx_result: dict[str, Any] | None = field(default=None, repr=False)
    _row_failures: tuple[tuple[str, np.ndarray], ...] = field(default=(), repr=False)
    _ids: pd.Series | None = field(default=None, repr=False)

    @property
    def engine(self) -> str | None:
        """Which evaluated the expectations: ``native``, ``great_expectations``, both joined by ``+``, or None."""
        used = sorted({r["engine"] for r in self.results if r.get("engine")}, reverse=True)
        return "+".join(used) or None

    @property
    def quarantinable(self) -> bool:
        """True when every failed critical expectation is row-level.

        Then keeping :attr:`failed_case_ids` out of the run removes every
        case the failures point to. A failure that names no cases (a missing
        column, a wrong dtype, a table-level check) cannot be quarantined.
        """
        return all(r["row_level"] for r in self.results if not r["success"] and r["severity"] == "critical")

    @property
    def failures(self) -> list[dict[str, Any]]:
        """The results whose expectation did not succeed, of any severity."""
        return [r for r in self.results if not r["success"]]

    def failed_cases(self) -> pd.DataFrame:
        """One row per failed case: ``row``, ``case_id`` and ``reasons``.

        ``reasons`` joins, with ``"; "``, a label per row-level expectation
        the case failed: ``<suite>.expectations[<i>] <type> (<column>)``.
        """
        if not self._row_failures:
            return pd.DataFrame(
                {"row": pd.Series([], dtype="int64"), "case_id": pd.Series([], dtype="str"),
                 "reasons": pd.Series([], dtype="str")}
            )
        rows = np.concatenate([pos for _, pos in self._row_failures])
        which = np.concatenate([np.full(len(pos), i) for i, (_, pos) in enumerate(self._row_failures)])
        names = np.array([label for label, _ in self._row_failures], dtype=object)
        order = np.lexsort((which, rows))
        rows, which = rows[order], which[order]
        keep = np.ones(len(rows), dtype=bool)
        keep[1:] = (rows[1:] != rows[:-1]) | (which[1:] != which[:-1])
        rows, which = rows[keep], which[keep]
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        unique_rows = rows[starts]
        if len(names) <= 62:
            # each case's set of failed checks as a bit mask; join the text once per distinct set
            masks = np.bitwise_or.reduceat(np.left_shift(np.int64(1), which.astype(np.int64)), starts)
            distinct, inverse = np.unique(masks, return_inverse=True)
            texts = np.array(
                ["; ".join(names[[b for b in range(len(names)) if m >> b & 1]]) for m in distinct.tolist()],
                dtype=object,
            )
            reasons = texts[inverse.reshape(-1)]
        else:
            counts = np.diff(np.r_[starts, len(rows)])
            reasons = np.array(
                ["; ".join(names[which[a: a + c]]) for a, c in zip(starts, counts, strict=True)], dtype=object
            )
        out = pd.DataFrame({"row": unique_rows.astype(np.int64), "reasons": reasons})
        if self._ids is not None:
            out.insert(1, "case_id", self._ids.iloc[out["row"].to_numpy()].to_numpy())
        else:
            out.insert(1, "case_id", out["row"].astype("str"))
        out["reasons"] = out["reasons"].astype("str")
        return out

    def failures_table(self) -> pd.DataFrame:
        """The failed expectations as one tidy table.

        Columns: ``suite``, ``severity``, ``expectation``, ``column``,
        ``unexpected_count`` (nullable integer; missing for aggregate
        expectations), ``observed_value`` (JSON text), ``sample_case_ids``
        (a list per row) and ``message``.
        """
        rows = self.failures
        return pd.DataFrame(
            {
                "suite": pd.Series([r["suite"] for r in rows], dtype="str"),
                "severity": pd.Series([r["severity"] for r in rows], dtype="str"),
                "expectation": pd.Series([r["expectation"] for r in rows], dtype="str"),
                "column": pd.Series([r["column"] for r in rows], dtype="str"),
                "unexpected_count": pd.array([r["unexpected_count"] for r in rows], dtype="Int64"),
                "observed_value": pd.Series(
                    [None if r["observed_value"] is None else json.dumps(r["observed_value"]) for r in rows],
                    dtype="str",
                ),
                "sample_case_ids": pd.Series([list(r["sample_case_ids"]) for r in rows], dtype=object),
                "message": pd.Series([r["message"] for r in rows], dtype="str"),
            }
        )

    def to_text(self, *, max_rows: int = 50) -> str:
        """A plain-text table of the failures, for a terminal (``insyn check``).

        Parameters
        ----------
        max_rows : int, default 50
            Failures shown; the rest are counted in a last line.
        """
        failed = self.failures
        critical = sum(r["severity"] == "critical" for r in failed)
        head = (
            f"{self.step}: {len(self.results)} expectations ({', '.join(self.suites)}) on {self.n_rows} rows: "
            f"{critical} critical and {len(failed) - critical} other failures; "
            f"{len(self.failed_rows)} cases failed a critical row check."
        )
        table = self.failures_table()
        if table.empty:
            return head
        shown = table.head(max_rows).drop(columns=["suite"])
        shown["sample_case_ids"] = [", ".join(map(str, ids))[:60] for ids in shown["sample_case_ids"]]
        shown["unexpected_count"] = ["" if pd.isna(v) else str(int(v)) for v in shown["unexpected_count"]]
        shown["observed_value"] = [_short_json(v) for v in shown["observed_value"]]
        shown["column"] = shown["column"].fillna("")
        shown["message"] = shown["message"].fillna("").str.slice(0, 100)
        text = shown.to_string(index=False)
        more = f"\n... and {len(table) - max_rows} more failures." if len(table) > max_rows else ""
        return f"{head}\n{text}{more}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: what ``checks.json`` holds for this step."""
        return {
            "step": self.step,
            "suites": list(self.suites),
            "id_column": self.id_column,
            "n_rows": self.n_rows,
            "success": self.success,
            "quarantinable": self.quarantinable,
            "n_failed_critical": sum(1 for r in self.failures if r["severity"] == "critical"),
            "n_expectations": len(self.results),
            "n_failed_expectations": len(self.failures),
            "n_failed_cases": len(self.failed_rows),
            "engine": self.engine,
            "results": [dict(r) for r in self.results],
        }

    def to_openlineage_assertions(self) -> list[dict[str, Any]]:
        """The results as OpenLineage ``DataQualityAssertions`` items.

        Each item has ``assertion`` (the expectation type), ``success``,
        ``name`` (``<suite>.expectations[<i>]``), ``params`` (the kwargs),
        ``actual`` (what was observed, as text) and, where they apply,
        ``column`` (single-column expectations) and ``expected`` (the
        expectation's thresholds as JSON text). Keys without a value are left
        out, as the facet's schema requires strings there.
        """
        out: list[dict[str, Any]] = []
        for r in self.results:
            item: dict[str, Any] = {
                "assertion": r["expectation"],
                "success": bool(r["success"]),
                "severity": "error" if r["severity"] == "critical" else "warn",
                "name": f"{r['suite']}.expectations[{r['index']}]",
                "params": dict(r["kwargs"]),
                "actual": _actual_text(r),
            }
            column = r["kwargs"].get("column")
            if isinstance(column, str):
                item["column"] = column
            expected = {k: v for k, v in r["kwargs"].items() if k not in _COLUMN_KWARGS + _COLUMN_LIST_KWARGS}
            if expected:
                item["expected"] = json.dumps(expected, sort_keys=True)
            out.append(item)
        return out


def _short_json(text: Any, limit: int = 60) -> str:
    """Observed value for a terminal: numbers to 4 significant digits, long text cut."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    value = json.loads(text)
    if isinstance(value, float):
        return f"{value:.4g}"
    out = json.dumps(value)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _actual_text(r: Mapping[str, Any]) -> str:
    if r["message"] and r["element_count"] is None and r["observed_value"] is None:
        return str(r["message"])
    if r["unexpected_count"] is not None:
        return f"{r['unexpected_count']} unexpected of {r['element_count']}"
    return json.dumps(r["observed_value"])


# --------------------------------------------------------------------------
# validate


@dataclass(frozen=True)
class _Planned:
    """One expectation to run: a suite entry with its group column filled in."""

    key: int
    suite: Suite
    entry: SuiteExpectation
    kwargs: dict[str, Any]
    problem: str | None


def validate(
    frame: pd.DataFrame,
    suites: Sequence[str | Path | Suite],
    *,
    step: str,
    id_column: str = "case_id",
    groups: Sequence[str] | None = None,
    sample_size: int = 20,
    engine: str | None = None,
) -> CheckReport:
    """Run expectation suites on one step's input frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        The step's input, one row per case.
    suites : sequence of str, Path or Suite
        Suite files (see :func:`audit.checks.load_suite`) or loaded suites.
    step : str
        Name of the step, recorded in the report.
    id_column : str, default "case_id"
        Column whose values identify the unexpected rows. When the frame has
        no such column, samples are row positions.
    groups : sequence of str, optional
        Group columns (the audit's sensitive features, or ``insyn check
        --groups``). A fairness-aware expectation that leaves its group
        column out, and any kwarg written as ``"{groups}"``, runs once per
        column given here; without ``groups``, once per column of the suite's
        own ``groups`` key. A fairness-aware expectation whose group column
        would be its own ``column`` (the proxy strength of ``birth_region``
        for ``birth_region``) is skipped for that group column.
    sample_size : int, default 20
        How many offending ``case_id`` values to keep per expectation.
    engine : {"native", "gx"}, optional
        ``native`` (the default, or the environment variable
        ``INSYN_CHECKS_ENGINE``) evaluates every expectation type that
        :mod:`audit.checks._native` implements with pandas and numpy and
        leaves the rest to great-expectations (imported only then); ``gx``
        runs every expectation through great-expectations. Each result says
        which did (``engine``), and so does the report.

    Returns
    -------
    CheckReport
        Results in suite order, the verdict and the failed cases.

    Raises
    ------
    audit.exceptions.SpecError
        A suite cannot be loaded, or an argument of this function is invalid.
    audit.exceptions.DataError
        ``frame`` is not a DataFrame or has duplicate column names.

    Notes
    -----
    A suite that refers to a column the frame lacks gives a failed result
    with a message instead of an error, and so does an expectation whose
    computation raised (e.g. a range check on a text column). Unexpected row
    positions are mapped to ids here, not by great-expectations, whose
    ``unexpected_index_column_names`` loops over every unexpected row.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"audit.checks.validate: frame must be a pandas DataFrame. Got {type(frame).__name__}.")
    if not isinstance(step, str) or not step:
        raise SpecError(f"audit.checks.validate: step must be a non-empty string. Got {step!r}.")
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 0:
        raise SpecError(f"audit.checks.validate: sample_size must be an integer >= 0. Got {sample_size!r}.")
    if isinstance(suites, (str, Path, Suite)):
        suites = [suites]
    loaded = [s if isinstance(s, Suite) else load_suite(s) for s in suites]
    if not loaded:
        raise SpecError(f"audit.checks.validate: step {step!r} needs at least one suite. Got none.")
    if isinstance(groups, str):
        groups = [groups]
    group_list = list(groups) if groups else []
    bad_groups = [g for g in group_list if not isinstance(g, str) or not g]
    if bad_groups:
        raise SpecError(f"audit.checks.validate: groups must be column names. Got {bad_groups[0]!r}.")
    duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if duplicated:
        raise DataError(
            f"The {step} frame has duplicate column names: {', '.join(map(str, duplicated))}. "
            "Each column must appear once."
        )

    data = frame
    if not (isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 and frame.index.step == 1):
        data = frame.reset_index(drop=True)
    planned = _plan(loaded, group_list, data.columns, step=step)
    engine = engine or os.environ.get("INSYN_CHECKS_ENGINE") or "native"
    if engine not in ("native", "gx"):
        raise SpecError(f"audit.checks.validate: engine must be 'native' or 'gx'. Got {engine!r}.")
    with caching():  # group codes and parsed age lists once per validation
        record_statistics(step, data, [(p.entry.type, p.kwargs, p.problem is None) for p in planned])
        gx_results, gx_json = _run(data, planned, sample_size=sample_size, step=step, engine=engine)

    ids = data[id_column] if id_column in data.columns else None
    results: list[dict[str, Any]] = []
    row_failures: list[tuple[str, np.ndarray]] = []
    for p in planned:
        result, positions = _result_dict(p, gx_results.get(p.key), ids, sample_size)
        results.append(result)
        if positions is not None and len(positions) and not result["success"] and result["severity"] == "critical":
            label = f"{p.suite.name}.{p.entry.label}"
            if result["column"]:
                label += f" on {result['column']}"
            row_failures.append((label, positions))

    failed_rows = (
        distinct(np.concatenate([pos for _, pos in row_failures])) if row_failures else np.zeros(0, np.int64)
    )
    failed_rows.setflags(write=False)
    if ids is not None and len(failed_rows):
        picked = ids.iloc[failed_rows]
        failed_ids = frozenset(str(v) for v in picked[picked.notna()].tolist())
    else:
        failed_ids = frozenset()
    return CheckReport(
        step=step,
        suites=tuple(s.name for s in loaded),
        results=tuple(results),
        success=all(r["success"] or r["severity"] != "critical" for r in results),
        failed_case_ids=failed_ids,
        failed_rows=failed_rows,
        id_column=id_column if ids is not None else None,
        n_rows=len(data),
        gx_result=gx_json,
        _row_failures=tuple(row_failures),
        _ids=ids,
    )


def _plan(suites: list[Suite], groups: list[str], columns: pd.Index, *, step: str) -> list[_Planned]:
    """Expand ``{groups}`` and find references to absent columns."""
    present = set(columns)
    planned: list[_Planned] = []
    for suite in suites:
        for entry in suite.expectations:
            for kwargs, problem in expand_entry(entry, suite, groups):
                if problem is None:
                    problem = _missing_columns(kwargs, present, columns, step=step)
                planned.append(_Planned(len(planned), suite, entry, kwargs, problem))
    return planned


def _missing_columns(kwargs: Mapping[str, Any], present: set[Any], columns: pd.Index, *, step: str) -> str | None:
    wanted: list[str] = [kwargs[k] for k in _COLUMN_KWARGS if isinstance(kwargs.get(k), str)]
    for k in _COLUMN_LIST_KWARGS:
        if isinstance(kwargs.get(k), list):
            wanted.extend(c for c in kwargs[k] if isinstance(c, str))
    missing = [c for c in wanted if c not in present]
    if not missing:
        return None
    match = difflib.get_close_matches(missing[0], [str(c) for c in columns], n=1, cutoff=0.75)
    hint = f" Did you mean {match[0]}?" if match else ""
    return f"The {step} frame has no column {missing[0]!r}.{hint}"


_RESULT_FORMAT = {
    "result_format": "SUMMARY",
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}
_ALL_ROWS_FORMAT = {**_RESULT_FORMAT, "result_format": "COMPLETE", "partial_unexpected_count": 20,
                    "exclude_unexpected_values": True}


@dataclass
class _Outcome:
    """What great-expectations returned for one planned expectation."""

    result: Any
    positions: np.ndarray | None = None


def _run(
    data: pd.DataFrame, planned: list[_Planned], *, sample_size: int, step: str, engine: str = "native"
) -> tuple[dict[int, _Outcome], dict[str, Any] | None]:
    """Evaluate the planned expectations: natively where :mod:`audit.checks._native` can, else with GX.

    With ``engine="gx"`` every expectation goes through great-expectations
    (:func:`_run_gx`). The returned ``gx_result`` is great-expectations'
    JSON form of the step's validation; where expectations were evaluated
    natively their results are written in that same form and its
    ``meta.insyn_engine`` says ``native`` (or ``native+great_expectations``).
    """
    runnable = [p for p in planned if p.problem is None]
    if not runnable:
        return {}, None
    shown = max(sample_size, 1)
    native: dict[int, _Outcome] = {}
    if engine == "native":
        with caching():  # group codes and parsed age lists once per validation
            for p in runnable:
                got = evaluate_native(data, p.entry.type, p.kwargs, shown=shown)
                if got is not None:
                    native[p.key] = _Outcome(got, got.positions)
    rest = [p for p in runnable if p.key not in native]
    outcomes, gx_json = _run_gx(data, rest, sample_size=sample_size, step=step) if rest else ({}, None)
    if not native:
        return outcomes, gx_json
    outcomes.update(native)
    return outcomes, _native_gx_json(step, runnable, outcomes, gx_json)


def _native_gx_json(step: str, runnable: list[_Planned], outcomes: dict[int, _Outcome],
                    gx_json: dict[str, Any] | None) -> dict[str, Any]:
    """The step's validation in great-expectations' JSON form, with the native results written into it."""
    gx_rows = {int(r["expectation_config"]["meta"][_KEY]): r for r in (gx_json or {}).get("results", [])}
    rows: list[dict[str, Any]] = []
    for p in runnable:
        if p.key in gx_rows:
            rows.append(gx_rows[p.key])
            continue
        outcome = outcomes[p.key]
        meta = {**(p.entry.meta or {}), _KEY: p.key, "insyn": {"index": p.entry.index, "suite": p.suite.name}}
        rows.append({
            "success": bool(outcome.result.success),
            "expectation_config": {"type": p.entry.type, "kwargs": {"batch_id": f"insyn-{step}", **p.kwargs},
                                   "meta": meta, "id": None, "severity": p.entry.severity},
            "result": outcome.result.result,
            "meta": {"insyn_engine": "native"},
            "exception_info": dict(outcome.result.exception_info),
        })
    now = datetime.now(UTC).isoformat()
    meta = dict((gx_json or {}).get("meta") or {
        "great_expectations_version": None,
        "batch_spec": {"batch_data": "PandasDataFrame"},
        "batch_markers": {},
        "active_batch_definition": {"datasource_name": "insyn", "data_connector_name": "fluent",
                                    "data_asset_name": step, "batch_identifiers": {"dataframe": "<DATAFRAME>"}},
        "validation_id": None,
        "checkpoint_id": None,
        "run_id": {"run_name": None, "run_time": now},
        "validation_time": now,
        "batch_parameters": {"dataframe": "<DATAFRAME>"},
    })
    meta["insyn_engine"] = "native+great_expectations" if gx_json else "native"
    return _masked_tree(validation_document(step, rows, meta))


def validation_document(step: str, rows: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """A step's validation in great-expectations' suite-result form, around its per-expectation ``rows``.

    ``success`` when every row succeeded; ``statistics`` counts them (the
    success percent is None without rows).
    """
    good = sum(1 for r in rows if r["success"])
    return {
        "success": good == len(rows),
        "results": rows,
        "suite_name": step,
        "suite_parameters": {},
        "statistics": {"evaluated_expectations": len(rows), "successful_expectations": good,
                       "unsuccessful_expectations": len(rows) - good,
                       "success_percent": (good / len(rows) * 100) if rows else None},
        "meta": meta,
        "id": None,
    }


def _run_gx(
    data: pd.DataFrame, planned: list[_Planned], *, sample_size: int, step: str
) -> tuple[dict[int, _Outcome], dict[str, Any] | None]:
    """Validate every runnable planned expectation with great-expectations' public API.

    The frame is the one batch of a pandas data source on an ephemeral
    context; the expectations form one ``ExpectationSuite`` named after the
    step, run by a ``ValidationDefinition`` with SUMMARY results (one batch
    load: great-expectations fingerprints the frame, 0.5 s per million
    rows). For each failed critical row-level expectation whose sample does
    not hold every unexpected row, a second validation of just those
    expectations (``batch.validate``, COMPLETE results without the values,
    ``exclude_unexpected_values``) gives every unexpected row position. It
    costs two more batch loads and great-expectations' COMPLETE bookkeeping,
    and only when such a failure happens (``benchmarks/checks.py`` times the
    cases with 1 % and with every row failing).

    Returns
    -------
    (outcomes, gx_result)
        The results by planned key, and the SUMMARY validation result in
        great-expectations' JSON form (masked), or ({}, None) when nothing
        could run.
    """
    runnable = [p for p in planned if p.problem is None]
    if not runnable:
        return {}, None
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    def expectation(p: _Planned) -> Any:
        meta = {**(p.entry.meta or {}), _KEY: p.key, "insyn": {"suite": p.suite.name, "index": p.entry.index}}
        return build_expectation(p.entry.type, dict(p.kwargs), where=f"{p.suite.source}: {p.entry.label}",
                                 meta=meta, severity=p.entry.severity)

    # Ephemeral and silent: in-memory stores, no temporary Data Docs site, no
    # analytics, no tqdm bars (TQDM_DISABLE has no effect on GX).
    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        ),
    )
    batch_definition = (
        context.data_sources.add_pandas("insyn").add_dataframe_asset(step).add_batch_definition_whole_dataframe("frame")
    )

    def run(name: str, expectations: list[Any], result_format: dict[str, Any]) -> Any:
        suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch_definition, suite=suite))
        return definition.run(batch_parameters={"dataframe": data}, result_format=result_format)

    result_format = {**_RESULT_FORMAT, "partial_unexpected_count": max(sample_size, 1)}
    by_key = {p.key: p for p in runnable}
    with caching():
        validation = run(step, [expectation(p) for p in runnable], result_format)
        outcomes = {int(r.expectation_config.meta[_KEY]): _Outcome(r) for r in validation.results}
        incomplete: list[int] = []
        for key, outcome in outcomes.items():
            res = outcome.result.result or {}
            shown = res.get("partial_unexpected_index_list")
            if shown is None or _exception_message(outcome.result.exception_info) is not None:
                continue
            if len(shown) >= int(res.get("unexpected_count") or 0):
                outcome.positions = np.asarray(shown, dtype=np.int64).reshape(-1)
            elif not outcome.result.success and by_key[key].entry.severity == "critical":
                incomplete.append(key)
        if incomplete:
            rows = batch_definition.get_batch(batch_parameters={"dataframe": data}).validate(
                gx.ExpectationSuite(name=f"{step}.unexpected_rows",
                                    expectations=[expectation(by_key[k]) for k in incomplete]),
                result_format=dict(_ALL_ROWS_FORMAT))
            for r in rows.results:
                index_list = (r.result or {}).get("unexpected_index_list")
                if index_list is not None:
                    outcomes[int(r.expectation_config.meta[_KEY])].positions = np.asarray(
                        index_list, dtype=np.int64).reshape(-1)
    return outcomes, _masked_tree(validation.to_json_dict())


def _masked_tree(value: Any) -> Any:
    """Mask personnummer-shaped text anywhere in a JSON tree (the GX result lists unexpected values).

    A tree that cannot hold one (:func:`audit._privacy.may_hold_personnummer`) is returned as it is.
    """
    if not may_hold_personnummer(value):
        return value
    return _masked_parts(value)


def _masked_parts(value: Any) -> Any:
    """:func:`_masked_tree`, part by part."""
    if isinstance(value, str):
        return PNR_PATTERN.sub(MASK, value)
    if isinstance(value, int) and not isinstance(value, bool) and PNR_PATTERN.fullmatch(str(value)):
        return MASK  # a personnummer stored as a number
    if isinstance(value, Mapping):
        return {_masked_parts(k): _masked_parts(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked_parts(v) for v in value]
    return value


def _result_dict(
    p: _Planned, outcome: _Outcome | None, ids: pd.Series | None, sample_size: int
) -> tuple[dict[str, Any], np.ndarray | None]:
    """Turn one great-expectations result (or a planning problem) into a JSON-safe dict."""
    out: dict[str, Any] = {
        "suite": p.suite.name,
        "index": p.entry.index,
        "expectation": p.entry.type,
        "column": _column_label(p.kwargs),
        "kwargs": jsonable(p.kwargs, default=str),
        "success": False,
        "severity": p.entry.severity,
        "row_level": False,
        "element_count": None,
        "unexpected_count": None,
        "unexpected_percent": None,
        "missing_count": None,
        "observed_value": None,
        "details": None,
        "sample_case_ids": [],
        "message": p.problem,
        "meta": jsonable(dict(p.entry.meta), default=str) if p.entry.meta else None,
        "engine": None,
    }
    if outcome is None:
        if p.problem is None:  # pragma: no cover - every runnable expectation yields a result
            out["message"] = "great-expectations returned no result for this expectation."
        return out, None
    r = outcome.result
    res = r.result or {}
    out["engine"] = "native" if isinstance(r, NativeResult) else "great_expectations"
    out["success"] = bool(r.success)
    out["element_count"] = jsonable(res.get("element_count"), default=str)
    out["unexpected_count"] = jsonable(res.get("unexpected_count"), default=str)
    out["unexpected_percent"] = jsonable(res.get("unexpected_percent"), default=str)
    out["missing_count"] = jsonable(res.get("missing_count"), default=str)
    out["observed_value"] = jsonable(res.get("observed_value"), default=str)
    out["details"] = jsonable(res.get("details"), default=str)
    error = _exception_message(r.exception_info)
    if error is not None:
        out["message"] = f"could not be evaluated: {error}"
    elif not out["success"]:
        out["message"] = failure_message(p.entry.type, p.kwargs, out)
    positions: np.ndarray | None = None
    index_list = res.get("unexpected_index_list", res.get("partial_unexpected_index_list"))
    if index_list is not None and error is None:
        positions = outcome.positions if outcome.positions is not None else np.asarray(index_list, dtype=np.int64)
        out["row_level"] = True
        sample = np.asarray(index_list, dtype=np.int64).reshape(-1)[:sample_size]
        if ids is not None:
            out["sample_case_ids"] = [_masked(jsonable(v, default=str)) for v in ids.iloc[sample].tolist()]
        else:
            out["sample_case_ids"] = [int(v) for v in sample]
    return out, positions


def failure_message(kind: str, kwargs: Mapping[str, Any], out: Mapping[str, Any]) -> str:
    """A short sentence on why an evaluated expectation (of type ``kind``, result ``out``) failed."""
    details = out["details"] if isinstance(out["details"], Mapping) else {}
    observed = out["observed_value"]
    if out["unexpected_count"] is not None and out["element_count"] is not None:
        pct = out["unexpected_percent"]
        share = f" ({pct:.3g}% of non-missing)" if isinstance(pct, float) else ""
        return f"{out['unexpected_count']} of {out['element_count']} rows unexpected{share}."
    mismatched = details.get("mismatched")
    if isinstance(mismatched, Mapping):
        parts = [f"{k}: {', '.join(map(str, v))}" for k, v in mismatched.items() if v]
        return "columns " + "; ".join(parts) + "."
    if kind == "expect_table_columns_to_not_contain_set" and isinstance(observed, list):
        return f"columns that must not be here: {', '.join(map(str, observed))}."
    if details.get("reason"):
        return f"{details['reason']}."
    if "max_gap" in kwargs and isinstance(observed, float):
        return f"gap {observed:.4g} across groups of {kwargs.get('group_column')} > max_gap {kwargs['max_gap']}."
    if "max_cramers_v" in kwargs and isinstance(observed, float):
        return (
            f"Cramér's V {observed:.4g} with {kwargs.get('sensitive_column')} > max_cramers_v "
            f"{kwargs['max_cramers_v']}."
        )
    if details.get("below"):
        return f"groups below the minimum: {', '.join(map(str, details['below']))}."
    return f"observed {json.dumps(observed)}."


def _masked(value: Any) -> Any:
    """Replace a personnummer-shaped id by the privacy mask: ids go into artifacts."""
    if isinstance(value, str) and PNR_PATTERN.search(value):
        return MASK
    return value


def _column_label(kwargs: Mapping[str, Any]) -> str | None:
    if isinstance(kwargs.get("column"), str):
        return kwargs["column"]
    if isinstance(kwargs.get("column_A"), str) and isinstance(kwargs.get("column_B"), str):
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    if isinstance(kwargs.get("column_list"), list):
        return ", ".join(str(c) for c in kwargs["column_list"])
    return None


def _exception_message(info: Any) -> str | None:
    """The message of an exception great-expectations caught, in either of its two shapes."""
    if not isinstance(info, Mapping):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "the expectation raised an error")
    for value in info.values():
        if isinstance(value, Mapping) and value.get("raised_exception"):
            return str(value.get("exception_message") or "a metric raised an error")
    return None


# --------------------------------------------------------------------------
# files


def check_file(
    path: str | Path,
    suites: Sequence[str | Path | Suite],
    *,
    groups: Sequence[str] | None = None,
    id_column: str = "case_id",
) -> CheckReport:
    """Check a data file against suites, outside an audit (``insyn check``).

    Parameters
    ----------
    path : str or Path
        A ``.csv`` or ``.parquet`` file. In a CSV, columns that the case
        frame declares as text (and the id column) are read as text, with
        empty fields as ``""``, so that ``municipality_code`` keeps its
        leading zero and ``child_ages`` its empty lists.
    suites : sequence of str, Path or Suite
        The suites to run.
    groups : sequence of str, optional
        Group columns for fairness-aware expectations (see :func:`validate`).
    id_column : str, default "case_id"
        Column that identifies cases.

    Returns
    -------
    CheckReport
        The report, with step ``"check"``.

    Raises
    ------
    audit.exceptions.DataError
        The file is missing, has another suffix, or cannot be parsed.
    """
    frame, _ = coerce_case_frame(_read_frame(Path(path), id_column=id_column), source=str(path))
    return validate(frame, suites, step="check", id_column=id_column, groups=groups)


def _read_frame(path: Path, *, id_column: str) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise DataError(
            f"{path}: cannot check a {suffix or 'suffix-less'} file. Expected a .csv or .parquet file."
        )
    if not path.is_file():
        raise DataError(f"{path}: file not found.")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except (OSError, ValueError, ImportError) as exc:
        raise DataError(f"{path}: cannot read the file as {suffix[1:]}: {exc}") from None
    # As a run reads it: UTF-8 or cp1252, ',' ';' tab or '|' (a Swedish export: ';' with decimal commas), and a
    # header that names each column once (pandas would rename a repeated 'x' to 'x.1' and check both silently).
    encoding, delimiter, decimal = csv_dialect(path)
    try:
        header = pd.read_csv(path, nrows=0, sep=delimiter, encoding=encoding).columns
        text = [c for c in header if ASSISTANCE_COLUMNS.get(c) == "str" or c == id_column]
        others = [c for c in header if c not in text]
        return pd.read_csv(
            path,
            sep=delimiter,
            decimal=decimal,
            encoding=encoding,
            dtype={c: "str" for c in text},
            keep_default_na=False,
            na_values={c: ["", "NA", "N/A", "NaN", "nan", "null", "NULL"] for c in others},
        )
    except (OSError, ValueError, ImportError) as exc:
        raise DataError(f"{path}: cannot read the file as {suffix[1:]}: {exc}") from None
