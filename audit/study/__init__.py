"""Academic bias studies: one audit run over a grid or sample of scenarios, many times.

A study (``insyn study STUDY.yaml``) runs a base audit spec once per
replicate of every point of its design, with factor levels set on key paths
of the audit spec and seeds derived from the study's seed, on local
processes or a Dask cluster (:mod:`audit.execution`). It leaves a study
folder (``runs/<point>-<replicate>.parquet``, ``study.parquet``,
``power.csv``, ``study.html``) that a rerun resumes. The spec models are in
:mod:`audit.study_spec`.

Modules: ``_design`` (points and seeds), ``_run`` (one run as a tidy table),
``_folder`` (the study folder and its atomic writes), ``_power`` (detection
rates with Wilson intervals), ``_page`` (the figures of ``study.html``; :mod:`audit.report` renders it), ``_study``
(:func:`run_study`).
"""

from __future__ import annotations

from audit.study._design import Point, RunTask, derive_seed, expand_points, run_key, set_key
from audit.study._folder import StudyFolder
from audit.study._page import study_view, write_page
from audit.study._power import NO_FACTOR, POWER_COLUMNS, analytic_power, detected, family_wise, power_table
from audit.study._run import ID_COLUMNS, build_audit, run_frame, run_task
from audit.study._study import StudyProgress, StudyResult, plan_study, run_study
from audit.study_spec import StudySpec, load_study_spec

__all__ = [
    "ID_COLUMNS",
    "NO_FACTOR",
    "POWER_COLUMNS",
    "Point",
    "RunTask",
    "StudyFolder",
    "StudyProgress",
    "StudyResult",
    "StudySpec",
    "analytic_power",
    "build_audit",
    "derive_seed",
    "detected",
    "expand_points",
    "family_wise",
    "load_study_spec",
    "plan_study",
    "power_table",
    "run_frame",
    "run_key",
    "run_study",
    "run_task",
    "set_key",
    "study_view",
    "write_page",
]
