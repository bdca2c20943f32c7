"""The names of Insyn's own expectations, known without importing great-expectations.

A suite names an expectation by its snake_case type. Which of those types
are Insyn's own, which are fairness-aware (aggregate, one verdict for the
whole frame), which judge row by row, and which argument of a fairness-aware
expectation names its group column, is needed to load and plan a suite; it
is kept here so that ``import audit.checks`` does not import
great-expectations (which takes seconds): that happens only when a suite is
loaded or run. :mod:`audit.checks._expectations` implements them.
"""

from __future__ import annotations

__all__ = [
    "AGGREGATE_EXPECTATIONS",
    "CUSTOM_EXPECTATIONS",
    "EXPECTATION_CLASSES",
    "GROUP_KWARGS",
    "ROW_LEVEL_EXPECTATIONS",
    "SHIPPED_SUITE_SHA256",
    "TABLE_EXPECTATIONS",
]

AGGREGATE_EXPECTATIONS: tuple[str, ...] = (
    "expect_column_failure_rate_gap_across_groups_to_be_at_most",
    "expect_column_group_representation_to_be_at_least",
    "expect_column_missing_rate_gap_across_groups_to_be_at_most",
    "expect_column_proxy_strength_to_be_at_most",
)
"""The fairness-aware (aggregate) custom expectations."""

ROW_LEVEL_EXPECTATIONS: tuple[str, ...] = (
    "expect_column_pair_values_a_to_be_at_most_count_of_ages_in_b",
    "expect_column_pair_values_b_to_be_between_where_a_in_set",
    "expect_column_values_to_be_age_lists",
    "expect_table_text_values_to_not_contain_personnummer",
)
"""The row-level custom expectations."""

TABLE_EXPECTATIONS: tuple[str, ...] = ("expect_table_columns_to_not_contain_set",)
"""Custom table-level expectations."""

CUSTOM_EXPECTATIONS: tuple[str, ...] = tuple(
    sorted(AGGREGATE_EXPECTATIONS + ROW_LEVEL_EXPECTATIONS + TABLE_EXPECTATIONS)
)
"""Every expectation type Insyn registers with great-expectations."""

EXPECTATION_CLASSES: dict[str, str] = {
    "".join(part.capitalize() for part in name.split("_")): name for name in CUSTOM_EXPECTATIONS
}
"""Class name (``ExpectColumnProxyStrengthToBeAtMost``) -> expectation type, for each custom expectation."""

GROUP_KWARGS: dict[str, str] = {
    "expect_column_failure_rate_gap_across_groups_to_be_at_most": "group_column",
    "expect_column_group_representation_to_be_at_least": "column",
    "expect_column_missing_rate_gap_across_groups_to_be_at_most": "group_column",
    "expect_column_proxy_strength_to_be_at_most": "sensitive_column",
}
"""For each fairness-aware expectation, the kwarg that names the group column.

When a suite leaves it out, :func:`audit.checks.validate` fills it from its
``groups`` argument (or the suite's ``groups`` key), one result per column.
"""

SHIPPED_SUITE_SHA256: dict[str, str] = {
    "application.yaml": "968244e752a630e0ee7b3b051c7c44d0a952a034f91d2658d84bcd14f2f96b27",
    "decision_log.yaml": "0f7eca97d20ba600edb86d48267c00d48f544ec05cc8c9069b4387ab83ad44b4",
    "decisions.yaml": "b77c17012a9106339722ccd67c29a6a154baf2e71cca7134f38eccbe47969da1",
    "engine_input.yaml": "141c885ee19dfb30e5c7b344217c1fc5865a11f6d5e130a4bcd16425cb13a574",
}
"""SHA-256 of each shipped suite file (``checks/*.yaml``) whose every entry the test suite validates with
great-expectations (``tests/test_checks_native.py``). :func:`audit.checks.load_suite` loads a file with one of
these exact contents without importing great-expectations: its strict check already passed, byte for byte.
Editing a shipped suite changes its hash, and the test names the new one."""
