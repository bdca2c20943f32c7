"""An audit that runs: the spec plus ``run``.

Following scikit-learn, configuration is kept apart from execution: an
:class:`audit.spec.AuditSpec` only stores what an auditor wrote, and
:class:`Audit` adds :meth:`Audit.run`, which does the work in three layers:

1. :func:`audit.runner.run` takes the spec through its table of steps and
   returns the run state (execution layer);
2. :meth:`audit.result.AuditResult.build` freezes what the run found into
   the result that ``results.json`` serialises (results layer);
3. :func:`audit.record.write_run` writes the run folder (results layer).

:func:`run_audit` is the same path for any spec (the monitor calls it for
each period's audit); :func:`load_spec` reads a YAML spec into an
:class:`Audit` (``audit.load_spec``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

from audit import record, runner
from audit._funnelrun import funnel_records
from audit._json import jsonable
from audit.public_values import public_values
from audit.result import AuditResult
from audit.runner import Progress, RunState, engine_info, population_info
from audit.spec import AuditSpec

__all__ = ["Audit", "engine_info", "load_spec", "population_info", "run_audit"]


class Audit(AuditSpec):
    """One audit: the spec's configuration, and :meth:`run` to do the work.

    Parameters are the keys of the YAML spec (see DESIGN.md); all are
    keyword-only. Build one from YAML with :meth:`from_yaml` or from a dict
    with :meth:`from_dict`.

    Examples
    --------
    >>> from audit import Audit
    >>> audit = Audit.from_yaml("examples/demo.yaml")  # doctest: +SKIP
    >>> result = audit.run()                            # doctest: +SKIP
    >>> result.findings                                 # doctest: +SKIP
    """

    def run(
        self,
        *,
        out: str | Path | None = None,
        run_id: str | None = None,
        progress: Progress | None = None,
        write: bool = True,
    ) -> AuditResult:
        """Run the audit and return its frozen result.

        Parameters
        ----------
        out : str or Path, optional
            Folder that receives ``<name>/<run_id>/`` (default ``reports/``
            in the current folder).
        run_id : str, optional
            Name of the run folder (default: a timestamp plus a short hash).
        progress : callable, optional
            Called as ``progress(step, state)`` when a step starts and ends.
        write : bool, default True
            Write the run folder. With False the result is only returned.

        Returns
        -------
        AuditResult
        """
        return run_audit(self, out=out, run_id=run_id, progress=progress, write=write)


def load_spec(path: str | Path) -> Audit:
    """Read an audit spec from a YAML file into an :class:`Audit` that can run.

    The same reader as :func:`audit.spec.load_spec` (``yaml.safe_load``,
    relative paths resolve against the file's folder, every problem a
    :class:`~audit.exceptions.SpecError` naming the file and the key), but
    the audit it returns has :meth:`Audit.run`. ``audit.load_spec`` is this
    function.
    """
    return Audit.from_yaml(path)


def run_audit(
    spec: AuditSpec,
    *,
    out: str | Path | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
    write: bool = True,
    annotate: Callable[[AuditResult], AuditResult] | None = None,
) -> AuditResult:
    """Run any audit spec end to end: run the steps, build the result, write the run folder.

    Parameters and return value as :meth:`Audit.run`; ``annotate(result) ->
    result``, when given, is called once the result is measured and before
    the run folder is written (``insyn monitor`` adds its alerts and baseline
    there, so that the report and ``results.json`` carry them).
    """
    state = runner.run(spec, run_id=run_id, progress=progress)
    result = AuditResult.build(
        decisions=state.final,
        run_id=state.run_id,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        spec=spec.to_dict(),
        population=population_info(state),
        engine=engine_info(state),
        checks=[{k: v for k, v in e.items() if k != "gx_result"} for e in state.checks],  # gx_result: checks.json only
        journey={"steps": state.journey.steps, "fields": state.journey.field_provenance(), "timings": state.timings},
        metrics=[jsonable(r) for r in state.metrics.to_dict(orient="records")],
        findings=state.findings,
        discovered=state.discovered.to_records() if state.discovered is not None else None,
        attribution=state.attribution.rows if state.attribution is not None else None,
        funnel=funnel_records(spec, state.funnel, state.metrics),
        values=_values(state),
    )
    if annotate is not None:  # e.g. insyn monitor adds its alerts before the report is written
        result = annotate(result)
    return record.write_run(spec, state, result, out=out, progress=progress) if write else result


def _values(state: RunState) -> list[dict[str, Any]]:
    """The run's public values by group (:func:`audit.public_values.public_values`), as records."""
    spec = state.spec
    if state.final is None:
        frame = public_values(None, sensitive_features=spec.sensitive_features,
                              absent="an aggregated table has no case rows")
    else:
        frame = public_values(state.final, state.cases, sensitive_features=spec.sensitive_features,
                              intersections=spec.intersections, review_outcomes=spec.outcomes.review,
                              review=spec.review is not None, min_group_size=spec.statistics.min_group_size,
                              alpha=spec.statistics.alpha)
    return [jsonable(r) for r in frame.to_dict(orient="records")]
