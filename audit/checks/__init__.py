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

Two engines evaluate a suite, with one meaning:

native (the default)
    Every expectation type the shipped suites use is evaluated with pandas
    and numpy (:mod:`audit.checks._native`): vectorised, by the same pandas
    operations, null filtering, ``mostly`` rule and percentages as
    great-expectations' pandas engine, and for the fairness-aware types by
    the same functions (:mod:`audit.checks._statistics`).
    ``tests/test_checks_native.py`` holds it to great-expectations on the
    same data and suites: same success, element, unexpected and missing
    counts, observed values, details, unexpected rows and exported result.
great-expectations
    The definition of the suites (strict loading through
    ``ExpectationConfiguration``), the reference, the format of the exported
    result, and the executor of any expectation type without a native
    implementation (or a dtype the native code leaves to it, e.g. a type
    check on an ``object`` column). ``validate(..., engine="gx")`` or the
    environment variable ``INSYN_CHECKS_ENGINE=gx`` runs every expectation
    through it.

This package is the only part of Insyn that imports great-expectations, and
it does so only when a suite needs it: ``import audit`` and ``import
audit.checks`` are cheap; a shipped suite whose bytes match the ones the
test suite validated with great-expectations (:data:`SHIPPED_SUITE_SHA256`
in :mod:`audit.checks._catalogue`) loads without it; any other suite is
checked by great-expectations when loaded, and a validation imports it only
for the expectations the native engine does not cover (it then registers
Insyn's expectations, :func:`audit.checks._suite.register_expectations`).
Suites go through great-expectations' public 1.x API (an
``ExpectationSuite`` per step, validated with ``batch.validate``), and the
custom expectations are ordinary great-expectations expectations: importing
one of their classes from this package registers all of them, after which a
plain great-expectations project can use them by type name, e.g. in a suite
written by ``insyn suite checks/application.yaml application.json``.

Each result says which engine produced it (``engine``: ``native`` or
``great_expectations``), and so does the step (:attr:`CheckReport.engine`).
The step's ``gx_result`` (``checks.json``) is always in great-expectations'
JSON form (``ExpectationSuiteValidationResult``, which great-expectations'
schema loads); its ``meta.insyn_engine`` says ``native``,
``native+great_expectations`` or is absent (great-expectations alone, with
its own batch markers). Native rows carry the same result keys as
great-expectations' SUMMARY except the unexpected values of column-pair
rules (only their row positions).

Chunked runs (:mod:`audit.execution`) validate each chunk and merge the
results exactly (:func:`merge_chunk_checks`): counts sum; uniqueness, group
representation, rate gaps and Cramér's V merge from sufficient statistics
that each chunk records inside :func:`collecting_statistics` (64-bit value
hashes, group counts, (feature, sensitive) pair counts).

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

:func:`validate` runs every suite of a step as one validation and returns
a frozen :class:`CheckReport`, which also keeps the validation result in
great-expectations' form (``gx_result``, written to the ``gx_result`` of
the step's entry in ``checks.json``); :func:`check_file` does the same
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
from audit.checks._merge import merge_chunk_checks, sum_pair_counts
from audit.checks._sufficient import collecting_statistics, value_hashes
from audit.checks._validate import CheckReport, check_file, validate, validation_document

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
    "sum_pair_counts",
    "validate",
    "validation_document",
    "value_hashes",
]


def __getattr__(name: str) -> Any:
    """The expectation classes, imported (with great-expectations) on first use."""
    if name in EXPECTATION_CLASSES:
        import importlib

        return getattr(importlib.import_module("audit.checks._expectations"), name)
    raise AttributeError(f"module 'audit.checks' has no attribute {name!r}")
