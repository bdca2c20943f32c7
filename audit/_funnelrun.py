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
from audit.metrics import funnel_from_cases, journey_stages
from audit.runner import RunState

__all__ = ["funnel_outcomes", "funnel_records", "run_funnel"]


def funnel_outcomes(state: RunState) -> list[str]:
    """The outcomes a run's funnel follows: ``outcomes.positive``, else ``truth.positive``, else ``deny``."""
    spec = state.spec
    return list(spec.outcomes.positive or ([spec.truth.positive] if spec.truth.positive else ["deny"]))


def run_funnel(state: RunState) -> pd.DataFrame | None:
    """The funnel table of a run over cases (:data:`audit.metrics.FUNNEL_COLUMNS`); None without cases or engine."""
    if state.final is None or state.engine_run is None or state.live is None or state.engine_input is None:
        return None
    spec = state.spec
    stages = journey_stages(
        state.final, intake_ids=state.live["case_id"], engine_ids=state.engine_input["case_id"],
        decisions=state.engine_run.decisions, selected=funnel_outcomes(state),
        review_labels=list(spec.outcomes.review) if spec.review is not None else None,
    )
    return funnel_from_cases(state.final, stages, spec.sensitive_features, intersections=spec.intersections,
                             statistics=spec.statistics)


def funnel_records(state: RunState) -> list[dict[str, Any]] | None:
    """The run's funnel as the ``funnel`` list of ``results.json`` (None for a run without one).

    Each record is one row of the funnel table plus ``outcomes`` (what the
    decision, review and final stages follow) and ``correction`` (the method
    and the number of the funnel's tests, corrected together as one family).
    """
    table = run_funnel(state)
    if table is None:
        return None
    m = int(table["p_value"].notna().sum())
    extra = {"outcomes": funnel_outcomes(state),
             "correction": {"method": state.spec.statistics.correction, "family": "funnel", "m": m}}
    return [jsonable({**row, **extra}) for row in table.to_dict(orient="records")]
