"""The names of Insyn's own expectation types, readable without importing great-expectations.

:mod:`audit.checks._expectations` defines these expectations as
great-expectations classes and registers them when it is imported; that
import costs seconds (great-expectations itself), so everything that only
needs to know the names (loading a suite's YAML, planning a validation,
``import audit``) reads them here, and the classes are loaded when a suite is
built (:func:`audit.checks._suite.register_expectations`).
"""

from __future__ import annotations

__all__ = [
    "AGGREGATE_EXPECTATIONS",
    "CUSTOM_EXPECTATIONS",
    "GROUP_KWARGS",
    "ROW_LEVEL_EXPECTATIONS",
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
"""Every expectation type this module registers."""

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
