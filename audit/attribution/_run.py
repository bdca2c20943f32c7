"""Attribution in a run: from the spec, the run's frames and the population's true circumstances.

The runner's ``attribution`` step calls :func:`attribute` after the
decision step; ``truth.basis: true_circumstances`` makes the ``reference``
step read :func:`basis_cases` instead of the recorded cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from audit.attribution._attribution import Attribution, attribution_rows
from audit.attribution._circumstances import stage_columns
from audit.attribution._replay import replay
from audit.exceptions import DataError, SpecError
from audit.spec import AuditSpec

__all__ = ["attribute", "attribute_run", "basis_cases", "true_rows"]

_NO_TRUTH = ("{what} needs the cases' true circumstances beside what was recorded: a synthetic population "
             "(population.synthetic), or true_<column> columns next to the recorded columns of a file or SQL source. "
             "This population has none.")


def true_rows(cases: pd.DataFrame, circumstances: pd.DataFrame | None, *, what: str) -> pd.DataFrame:
    """The true circumstances of ``cases`` (same rows, by case id, and the same columns).

    Raises
    ------
    DataError
        When there are no true circumstances, or a case has none.
    """
    if circumstances is None:
        raise DataError(_NO_TRUTH.format(what=what))
    pos = pd.Index(circumstances["case_id"]).get_indexer(cases["case_id"])
    if (pos < 0).any():
        raise DataError(f"{what}: the case {cases['case_id'].iloc[int(np.argmax(pos < 0))]!r} has no true "
                        f"circumstances. Expected one row of true circumstances per case.")
    held = [c for c in cases.columns if c in circumstances.columns]
    out = circumstances[held].iloc[pos].reset_index(drop=True)
    for c in cases.columns:  # a column the truth does not hold (e.g. derived later) keeps its recorded value
        if c not in out.columns:
            out[c] = cases[c].to_numpy()
    return out[list(cases.columns)]


def basis_cases(spec: AuditSpec, cases: pd.DataFrame, population: Any) -> pd.DataFrame:
    """The cases the law's baseline reads: as recorded, or their true circumstances (``truth.basis``).

    ``population`` is the run's :class:`audit.population.Population` (its ``circumstances``).
    """
    if spec.truth.basis != "true_circumstances":
        return cases
    return true_rows(cases, getattr(population, "circumstances", None),
                     what=f"{spec.source or '<spec>'}: truth.basis true_circumstances")


def attribute_run(state: Any) -> Attribution:
    """:func:`attribute` from a run's state (:class:`audit.runner.RunState`, after its decision step)."""
    return attribute(state.spec, engine=state.engine, engine_input=state.engine_input,
                     decisions=state.engine_run.decisions, cases=state.cases,
                     circumstances=state.population.circumstances, provenance=state.population.provenance)


def attribute(
    spec: AuditSpec,
    *,
    engine: Any,
    engine_input: pd.DataFrame,
    decisions: pd.DataFrame,
    cases: pd.DataFrame,
    circumstances: pd.DataFrame | None,
    provenance: Mapping[str, str],
) -> Attribution:
    """Replay the engine with each coalition of stages reverted and decompose the spec's disparity.

    Parameters
    ----------
    spec : AuditSpec
        The audit; ``spec.attribution`` says which disparity and which stages.
    engine : Engine
        The engine under audit (built by the run).
    engine_input : pandas.DataFrame
        What the engine saw (recorded), with ``case_id``.
    decisions : pandas.DataFrame
        The run's decisions on ``engine_input``, row-aligned.
    cases : pandas.DataFrame
        The case frame (for the sensitive attribute).
    circumstances : pandas.DataFrame or None
        The population's true circumstances.
    provenance : mapping
        Column -> creator.

    Returns
    -------
    Attribution

    Raises
    ------
    SpecError
        When the groups are not values of the attribute.
    DataError
        Without true circumstances.
    """
    a = spec.attribution
    assert a is not None
    where = f"{spec.source or '<spec>'}: attribution"
    if spec.engine is not None and spec.engine.kind == "recorded":
        raise SpecError(f"{where} replays the engine on changed data, but engine.kind is recorded: recorded "
                        "decisions cannot decide data they were not made on. Expected an engine that decides "
                        "(rules, python, sklearn, http, subprocess, reference).")
    reference = a.reference or spec.reference_groups.get(a.attribute)
    values = cases.set_index("case_id")[a.attribute].reindex(engine_input["case_id"].to_numpy()).to_numpy()
    present = sorted({str(v) for v in pd.unique(values) if not pd.isna(v)})
    if reference is None:
        raise SpecError(f"{where}.reference is required when reference_groups has no group for {a.attribute!r}. "
                        f"Values: {', '.join(present)}.")
    for key, value in (("group", a.group), ("reference", reference)):
        if value not in present:
            raise SpecError(f"{where}.{key} must be a value of {a.attribute} among the decided cases "
                            f"({', '.join(present)}). Got {value!r}.")
    truth = true_rows(engine_input, circumstances, what=where)
    features = [c for c in engine_input.columns if c != "case_id"]
    columns = stage_columns(a.stages, provenance, features, explicit=a.columns, source=spec.source or "<spec>")
    e = spec.engine
    options = {"batch_size": e.batch_size, "workers": e.workers, "error_budget": e.error_budget,
               "timeout_s": e.batch_timeout_s} if e is not None else {}
    replays = replay(engine, engine_input, truth, decisions, columns, labels=spec.outcomes.labels,
                     run_options=options)
    st = spec.statistics
    draws = a.bootstrap if a.bootstrap is not None else st.bootstrap
    return attribution_rows(replays, values, metric=a.metric, attribute=a.attribute, group=a.group,
                            reference=reference, scale=a.scale, review=list(spec.outcomes.review),
                            min_group_size=st.min_group_size, bootstrap=int(draws), alpha=st.alpha, seed=spec.seed)
