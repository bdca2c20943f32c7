"""Data-quality expectations on every input of an audit, including fairness-aware ones.

A biased decision often starts with biased data. Along the *data journey* of
an application for ekonomiskt bistånd (applicant, caseworker, registries via
SSBTEK, the robot) values go missing, lookups fail and proxies creep in, and
they do not do so evenly: income missing more often for newly arrived
residents, registry reads failing more for some groups, an interpreter flag
standing in for country of birth. Before anything is measured, Insyn runs
great-expectations suites on the input of every step of a run, and adds the
fairness-aware expectations that no standard suite has (see
:mod:`audit.checks._expectations`): group representation, differential
missingness, differential registry failure and proxy strength.

This package is the only part of Insyn that imports great-expectations, and
it does so only when a suite is loaded or run: ``import audit`` and
``import audit.checks`` are cheap (the first suite built or validated imports
it and registers Insyn's expectations,
:func:`audit.checks._suite.register_expectations`). Suites go through great-expectations' public 1.x API (an
``ExpectationSuite`` per step, validated with ``batch.validate``), and the
custom expectations are ordinary great-expectations expectations: importing
one of their classes from this package registers all of them, after which a
plain great-expectations project can use them by type name, e.g. in a suite
written by ``insyn suite checks/application.yaml application.json``.

Suites are YAML files in ``checks/`` (one per stage contract), loaded
strictly by :func:`load_suite`, which also reads a suite in
great-expectations' own JSON; :func:`convert_suite` (``insyn suite``) writes
either form. The shipped ones:

``application``
    The assistance case frame (``audit._columns``) as it enters an audit:
    every column present with its type, ranges, allowed values, a unique
    ``case_id``, the formats of ``benefit_month``, ``municipality_code`` and
    ``child_ages``, and conditional rules (``children_preschool_lunch`` at
    most the number of children aged 0-6, ``years_in_sweden`` at most
    ``applicant_age``, a renewal follows at least one month of assistance,
    childcare costs only with children); plus, at severity ``warning``, the
    fairness-aware checks across the audit's sensitive features.
``engine_input``
    What an engine may receive: no personnummer-shaped values in any text
    column and no sensitive column (``sex``, ``birth_region``) unless the
    audit spec lets the engine see them (then leave this suite out).
``decisions``
    The decision contract: unique ``case_id``, ``outcome`` in ``grant``,
    ``partial``, ``deny``, ``refer``, ``error``, ``amount`` >= 0 or missing,
    ``reasons`` a ``;``-separated list of upper-case codes.
``decision_log``
    A historical decision log handed over by a municipality (see the suite
    file for its columns).

:func:`validate` runs every suite of a step in one great-expectations
validation and returns a frozen :class:`CheckReport`, which also keeps
great-expectations' own validation result (``gx_result``, written to
the ``gx_result`` of the step's entry in ``checks.json``); :func:`check_file` does the same
for a CSV or Parquet file (``insyn check DATA --suite checks/application.yaml
[--groups COL]``, exit code 1 when the report's ``success`` is False).

Policies
--------
Each step of an audit spec names its suites and a policy; the runner applies
it to the report (only failed ``critical`` expectations count; ``warning``
and ``info`` ones are always just recorded):

``fail``
    When ``report.success`` is False the run stops with
    :class:`audit.exceptions.CheckFailedError`, whose message lists the failed
    expectations and whose ``failures`` is ``report.failures_table()``.
``warn``
    The report goes to ``checks.json``, the journey, the OpenLineage facet
    (:meth:`CheckReport.to_openlineage_assertions`) and the report; the run
    goes on with every case.
``quarantine``
    The cases in ``report.failed_case_ids`` (those unexpected in a failed
    critical row-level expectation) are kept out of the decisions, accounted
    for with status ``quarantined`` and listed with their reasons
    (:meth:`CheckReport.failed_cases`). A failure that points at no cases
    (``report.quarantinable`` is False: a missing column, a wrong dtype, a
    table-level check) cannot be quarantined and should stop the run as under
    ``fail``.
"""

from __future__ import annotations

from typing import Any

from audit.checks._catalogue import CUSTOM_EXPECTATIONS, EXPECTATION_CLASSES
from audit.checks._suite import (
    SEVERITIES,
    Suite,
    SuiteExpectation,
    convert_suite,
    known_expectation_types,
    load_suite,
)
from audit.checks._merge import merge_chunk_checks
from audit.checks._sufficient import collecting_statistics
from audit.checks._validate import CheckReport, check_file, validate

__all__ = [
    "CUSTOM_EXPECTATIONS",
    "CheckReport",
    "ExpectColumnFailureRateGapAcrossGroupsToBeAtMost",
    "ExpectColumnGroupRepresentationToBeAtLeast",
    "ExpectColumnMissingRateGapAcrossGroupsToBeAtMost",
    "ExpectColumnPairValuesAToBeAtMostCountOfAgesInB",
    "ExpectColumnPairValuesBToBeBetweenWhereAInSet",
    "ExpectColumnProxyStrengthToBeAtMost",
    "ExpectColumnValuesToBeAgeLists",
    "ExpectTableColumnsToNotContainSet",
    "ExpectTableTextValuesToNotContainPersonnummer",
    "SEVERITIES",
    "Suite",
    "SuiteExpectation",
    "check_file",
    "collecting_statistics",
    "convert_suite",
    "known_expectation_types",
    "load_suite",
    "merge_chunk_checks",
    "validate",
]


def __getattr__(name: str) -> Any:
    """The expectation classes, imported (with great-expectations) on first use."""
    if name in EXPECTATION_CLASSES:
        import importlib

        return getattr(importlib.import_module("audit.checks._expectations"), name)
    raise AttributeError(f"module 'audit.checks' has no attribute {name!r}")
