"""The funnel of one run: where along its data journey each group's share shifts.

A run over cases passes its population through intake, engine input, the
decision, the review (when the spec has one) and the final decision; the
:class:`~audit.runner.RunState` holds who passed each step. This module turns
that state into the stage masks of :func:`audit.metrics.journey_stages` and
the funnel table of :func:`audit.metrics.funnel` (see :mod:`audit.metrics`
for the measures). The funnel follows the outcomes the run counts as its
positive predictions (``outcomes.positive``, else ``truth.positive``, else
``deny``), the same outcomes the confusion-matrix metrics count.

The funnel's tests are corrected with the run's correction method
(``statistics.correction``) as a family of their own: joining them to the
metrics' family would change the run's published metrics, so the funnel says
which family corrected it (:func:`funnel_records`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from audit._json import jsonable
from audit.metrics import FUNNEL_STAGES, funnel, journey_stages, stage_counts
from audit.runner import RunState
from audit.spec import AuditSpec

__all__ = ["funnel_outcomes", "funnel_records", "run_funnel", "run_stage_counts", "summed_funnel_records",
           "summed_stage_counts"]


def funnel_outcomes(spec: AuditSpec) -> list[str]:
    """The outcomes a run's funnel follows: ``outcomes.positive``, else ``truth.positive``, else ``deny``."""
    return list(spec.outcomes.positive or ([spec.truth.positive] if spec.truth.positive else ["deny"]))


def run_stage_counts(state: RunState) -> pd.DataFrame | None:
    """The stage counts of a run over cases (:data:`audit.metrics.STAGE_COUNT_COLUMNS`); None without cases or engine.

    Counts add up over the chunks of a chunked run (:func:`summed_funnel_records`).
    """
    if state.final is None or state.engine_run is None or state.live is None or state.engine_input is None:
        return None
    spec = state.spec
    stages = journey_stages(
        state.final, intake_ids=state.live["case_id"], engine_ids=state.engine_input["case_id"],
        decisions=state.engine_run.decisions, selected=funnel_outcomes(spec),
        review_labels=list(spec.outcomes.review) if spec.review is not None else None,
    )
    return stage_counts(state.final, stages, spec.sensitive_features, spec.intersections)


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


def run_funnel(state: RunState) -> pd.DataFrame | None:
    """The funnel table of a run over cases (:data:`audit.metrics.FUNNEL_COLUMNS`); None without cases or engine."""
    counts = run_stage_counts(state)
    return None if counts is None else funnel(counts, state.spec.statistics)


def _records(spec: AuditSpec, table: pd.DataFrame) -> list[dict[str, Any]]:
    m = int(table["p_value"].notna().sum())
    extra = {"outcomes": funnel_outcomes(spec),
             "correction": {"method": spec.statistics.correction, "family": "funnel", "m": m}}
    return [jsonable({**row, **extra}) for row in table.to_dict(orient="records")]


def funnel_records(state: RunState) -> list[dict[str, Any]] | None:
    """The run's funnel as the ``funnel`` list of ``results.json`` (None for a run without one).

    Each record is one row of the funnel table plus ``outcomes`` (what the
    decision, review and final stages follow) and ``correction`` (the method
    and the number of the funnel's tests, corrected together as one family).
    """
    table = run_funnel(state)
    return None if table is None else _records(state.spec, table)


def summed_funnel_records(spec: AuditSpec, parts: list[pd.DataFrame | None]) -> list[dict[str, Any]] | None:
    """The funnel of a chunked run from its chunks' stage counts (:func:`run_stage_counts`), as :func:`funnel_records`."""
    counts = summed_stage_counts(parts)
    return None if counts is None else _records(spec, funnel(counts, spec.statistics))
