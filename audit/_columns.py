"""Names of the assistance case frame and the decision frame (see DESIGN.md).

Kept in one private module so that the generator, the reference engine, the
rule engine and the shipped suites agree on every name; ``audit.population``
re-exports them as the public definition of the case frame.
"""

from __future__ import annotations

INCOME_COLUMNS: tuple[str, ...] = (
    "income_wages",
    "income_sickness",
    "income_unemployment",
    "income_parental",
    "income_pension",
    "income_housing_allowance",
    "income_child_allowance",
    "income_maintenance",
    "income_student",
    "income_other",
)
"""Household net income by type, SEK per month."""

COST_COLUMNS: tuple[str, ...] = (
    "rent",
    "electricity",
    "home_insurance",
    "work_travel",
    "union_fee",
    "akassa_fee",
    "medical",
    "childcare",
)
"""Reasonable costs applied for, SEK per month."""

ASSISTANCE_COLUMNS: dict[str, str] = {
    "case_id": "str",
    "benefit_month": "str",
    "municipality_code": "str",
    "application_type": "str",
    "channel": "str",
    "applicant_age": "int",
    "sex": "str",
    "birth_region": "str",
    "years_in_sweden": "int",
    "interpreter": "bool",
    "adults": "int",
    "other_adults": "int",
    "child_ages": "str",
    "children_preschool_lunch": "int",
    **{c: "float" for c in INCOME_COLUMNS},
    "months_on_assistance": "int",
    **{c: "float" for c in COST_COLUMNS},
    "assets": "float",
    "able_to_work": "bool",
    "registered_af": "bool",
    "follows_plan": "bool",
    "household_changed": "bool",
    "registry_read_failed": "bool",
}
"""Every column of the assistance case frame and its kind (str, int, float, bool)."""

ALLOWED_VALUES: dict[str, tuple[str, ...]] = {
    "application_type": ("new", "renewal"),
    "channel": ("digital", "paper"),
    "sex": ("female", "male"),
    "birth_region": ("sweden", "nordic", "eu", "outside_eu"),
}
"""Allowed values of the categorical case-frame columns."""

DECISION_COLUMNS: tuple[str, ...] = ("outcome", "amount", "score", "reasons")
"""Columns of the decision contract, besides ``case_id``."""

TRUTH_OUTCOME = "truth_outcome"
TRUTH_AMOUNT = "truth_amount"
TRUTH_REASONS = "truth_reasons"
"""Columns that hold the correct decision (from the reference engine or from data)."""

ERROR_LABEL = "error"
"""Outcome and status of a case that an engine could not decide."""

STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_QUARANTINED = "quarantined"
STATUS_VALUES: tuple[str, ...] = (STATUS_OK, STATUS_ERROR, STATUS_QUARANTINED)
"""Status of a case at the end of a run."""

METRIC_COLUMNS: tuple[str, ...] = (
    "metric",
    "attributes",
    "group",
    "n",
    "value",
    "ci_low",
    "ci_high",
    "reference_group",
    "reference_value",
    "difference",
    "ratio",
    "p_value",
    "p_adjusted",
    "suppressed",
)
"""The columns of a metrics row that DESIGN.md fixes, in order."""

DISCOVERED_PREFIX = "discovered_"
"""Metric names of subgroup discovery's rows: ``discovered_<rate>`` (``discovered_deny_rate``)."""

CASES_COLUMN = "_cases"
"""In the decisions of a chunked run's result, how many cases each row stands for.

A chunked run never holds every case's decision at once: the report reads
one row per distinct combination of the columns it counts in (status,
outcome, reasons, override, the sensitive features), with the number of
cases that share it in this column, so its memory does not grow with the
run. Without the column each row is one case (an in-memory run)."""
