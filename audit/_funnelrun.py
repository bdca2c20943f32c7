"""The funnel of one run: where along its data journey each group's share shifts.

A run over cases passes its population through intake, engine input, the
decision, the review (when the spec has one) and the final decision; the
:class:`~audit.runner.RunState` holds who passed each step. The measurement
step turns that into the stage counts of :func:`audit._steps.funnel_stage_counts`
and the funnel table of :func:`audit.metrics.funnel` (see :mod:`audit.metrics`
for the measures). The funnel follows the outcomes the run counts as its
positive predictions (``outcomes.positive``, else ``truth.positive``, else
``deny``), the same outcomes the confusion-matrix metrics count.

The funnel's shift tests are tests of the run: they are corrected together
with every metric's test as the run's one family (``statistics.correction``,
Holm by default), so adding the funnel makes every adjusted p-value of the
run count them. Each funnel record says so (``correction``: the method,
``family: run`` and ``m``, the number of tests in the family). This module
turns a finished state into the records of ``results.json`` and sums the
stage counts of a chunked run's chunks.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from audit import _steps
from audit._json import jsonable
from audit.metrics import FUNNEL_STAGES
from audit.runner import RunState
from audit.spec import AuditSpec

__all__ = ["funnel_records", "run_stage_counts", "summed_funnel", "summed_stage_counts"]


def run_stage_counts(state: RunState) -> pd.DataFrame | None:
    """The stage counts of a run over cases (:data:`audit.metrics.STAGE_COUNT_COLUMNS`); None without cases or engine.

    Counts add up over the chunks of a chunked run (:func:`summed_funnel`).
    """
    decisions = None if state.engine_run is None else state.engine_run.decisions
    return _steps.funnel_stage_counts(state.spec, state.final, state.live, state.engine_input, decisions)


def summed_stage_counts(parts: list[pd.DataFrame | None]) -> pd.DataFrame | None:
    """The stage counts of the chunks of one run, added up (stages in journey order, groups sorted)."""
    given = [p for p in parts if p is not None and len(p)]
    if not given:
        return None
    frame = pd.concat(given, ignore_index=True)
    attrs = {a: i for i, a in enumerate(dict.fromkeys(frame["attributes"]))}
    total = frame.groupby(["stage", "attributes", "group"], sort=False)[["entering", "leaving"]].sum().reset_index()
    total["_s"] = total["stage"].map({s: i for i, s in enumerate(FUNNEL_STAGES)})
    total["_a"] = total["attributes"].map(attrs)
    return total.sort_values(["_s", "_a", "group"], kind="stable").drop(columns=["_s", "_a"]).reset_index(drop=True)


def summed_funnel(spec: AuditSpec, parts: list[pd.DataFrame | None]) -> pd.DataFrame | None:
    """The funnel table of a chunked run from its chunks' stage counts, its tests not yet corrected."""
    return _steps.funnel_table(spec, summed_stage_counts(parts))


def funnel_records(spec: AuditSpec, table: pd.DataFrame | None, metrics: pd.DataFrame) -> list[dict[str, Any]] | None:
    """A run's funnel (corrected in the run's family) as the ``funnel`` list of ``results.json``.

    Each record is one row of the funnel table plus ``outcomes`` (what the
    decision, review and final stages follow) and ``correction`` (the
    method, ``family: run`` and the number of tests of the run's family:
    the metrics' and the funnel's). None for a run without a funnel.
    """
    if table is None:
        return None
    m = int(table["p_value"].notna().sum())
    if "p_value" in metrics.columns:
        m += int(metrics["p_value"].notna().sum())
    extra = {"outcomes": _steps.funnel_outcomes(spec),
             "correction": {"method": spec.statistics.correction, "family": "run", "m": m}}
    return [jsonable({**row, **extra}) for row in table.to_dict(orient="records")]
