"""Fairness-aware and assistance-specific great-expectations expectations.

A biased decision often starts with biased data. Before an engine decides a
single case, the input can already treat groups differently: income fields
left empty more often for newly arrived residents, registry lookups (SSBTEK)
failing more often for some groups, too few cases of a group to say anything
about it, or a feature that stands in for a sensitive attribute (years in
Sweden for country of birth, an interpreter flag for language). No standard
great-expectations suite checks for any of this, so this module adds the
expectations that do, plus the row-level rules of the assistance case frame
that no built-in expectation expresses.

Importing the module registers every expectation with great-expectations under
its snake_case name, so a suite in ``checks/*.yaml`` names it like any
built-in one. The statistics themselves are plain functions in
:mod:`audit.checks._statistics`.

Fairness-aware (aggregate: one result for the whole frame):

``expect_column_group_representation_to_be_at_least``
    (``column``, ``min_count``, ``min_share``, ``expected_groups``) every group
    of ``column`` has at least ``min_count`` cases and at least ``min_share``
    of all rows. A group named in ``expected_groups`` that does not occur has
    0 cases, so an absent group fails instead of disappearing.
``expect_column_missing_rate_gap_across_groups_to_be_at_most``
    (``column``, ``group_column``, ``max_gap``, ``min_group_size``)
    differential missingness: the largest minus the smallest share of missing
    values of ``column`` across the groups of ``group_column``.
``expect_column_failure_rate_gap_across_groups_to_be_at_most``
    (``column``, ``group_column``, ``max_gap``, ``min_group_size``)
    differential registry failure: the same gap for the share of ``True`` in
    a boolean failure flag such as ``registry_read_failed``.
``expect_column_proxy_strength_to_be_at_most``
    (``column``, ``sensitive_column``, ``max_cramers_v``, ``bins``,
    ``bias_correction``) proxy strength: Cramér's V between a feature and a
    sensitive attribute, bias-corrected (Bergsma 2013) unless
    ``bias_correction: false``. The plain V grows with the number of
    categories even without association: on 20,000 synthetic cases
    ``child_ages`` (1,700 distinct lists) has a plain V of 0.29 with
    ``birth_region`` but a corrected V of 0.05. A numeric feature with more
    than ``bins`` (default 5) distinct values is cut at its quantiles into at
    most ``bins`` right-closed bins, and a repeated quantile (a point mass
    such as the many incomes of 0) keeps its own bin.

For the gaps, groups with fewer than ``min_group_size`` (default 10, the audit
spec's default) rows are suppressed; with fewer than two groups left, or a
contingency table with fewer than two rows or columns, the statistic is
undefined: ``observed_value`` is NaN (``null`` in JSON), ``details.reason``
says why, and the expectation succeeds, because an unassessable gap is not
evidence of one. The representation expectation is the one that flags groups
too small to measure. A fairness-aware expectation may leave its group column
out; :func:`audit.checks.validate` then fills it (see ``GROUP_KWARGS``).

Row-level (one verdict per case; failing cases can be quarantined):

``expect_column_values_to_be_age_lists``
    (``column``, ``min_age``, ``max_age``) the ``child_ages`` format:
    ``;``-separated whole ages within ``[min_age, max_age]``, ``""`` for none.
``expect_column_pair_values_a_to_be_at_most_count_of_ages_in_b``
    (``column_A``, ``column_B``, ``min_age``, ``max_age``) e.g.
    ``children_preschool_lunch`` is at most the number of children in
    ``child_ages`` aged 0 to 6. A malformed age list cannot confirm the count
    and is unexpected too.
``expect_column_pair_values_b_to_be_between_where_a_in_set``
    (``column_A``, ``value_set``, ``column_B``, ``min_value``, ``max_value``,
    ``allow_missing``) a conditional rule: where A is in the set, B is in
    range (e.g. a renewal follows at least one month of assistance), without
    the whole-frame copies of great-expectations' ``row_condition``.
``expect_table_text_values_to_not_contain_personnummer``
    (``ignore_columns``) no Swedish personal identity number (personnummer or
    samordningsnummer) in any text column, whatever the columns are. The
    numbers themselves never enter a result.

Table-level:

``expect_table_columns_to_not_contain_set``
    (``column_set``) none of these columns is present, e.g. no sensitive
    column in what an engine receives.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, List, Optional, Tuple, Union

import numpy as np
import pandas as pd
from great_expectations.compatibility import pydantic
from great_expectations.core.metric_domain_types import MetricDomainTypes
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import (
    BatchExpectation,
    ColumnAggregateExpectation,
    ColumnMapExpectation,
    ColumnPairMapExpectation,
)
from great_expectations.expectations.metrics.column_aggregate_metric_provider import (
    ColumnAggregateMetricProvider,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    ColumnPairMapMetricProvider,
    column_condition_partial,
    column_pair_condition_partial,
)
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.metrics.table_metric_provider import TableMetricProvider

from audit.checks._catalogue import (
    AGGREGATE_EXPECTATIONS,
    CUSTOM_EXPECTATIONS,
    GROUP_KWARGS,
    ROW_LEVEL_EXPECTATIONS,
    TABLE_EXPECTATIONS,
)
from audit.checks._statistics import (
    conditional_range_ok,
    cramers_v,
    gap_verdict,
    group_rates,
    parse_age_lists,
    personnummer_rows,
    proxy_verdict,
    representation_verdict,
)

__all__ = [
    "AGGREGATE_EXPECTATIONS",
    "CUSTOM_EXPECTATIONS",
    "ExpectColumnFailureRateGapAcrossGroupsToBeAtMost",
    "ExpectColumnGroupRepresentationToBeAtLeast",
    "ExpectColumnMissingRateGapAcrossGroupsToBeAtMost",
    "ExpectColumnPairValuesAToBeAtMostCountOfAgesInB",
    "ExpectColumnPairValuesBToBeBetweenWhereAInSet",
    "ExpectColumnProxyStrengthToBeAtMost",
    "ExpectColumnValuesToBeAgeLists",
    "ExpectTableColumnsToNotContainSet",
    "ExpectTableTextValuesToNotContainPersonnummer",
    "GROUP_KWARGS",
    "ROW_LEVEL_EXPECTATIONS",
    "TABLE_EXPECTATIONS",
]

_NonNegativeInt = pydantic.conint(strict=True, ge=0)
_PositiveInt = pydantic.conint(strict=True, ge=1)
_BinCount = pydantic.conint(strict=True, ge=2)
_Share = pydantic.confloat(ge=0, le=1)


# --------------------------------------------------------------------------
# metrics


class _ColumnGroupCounts(ColumnAggregateMetricProvider):
    """Rows per distinct value of a column (missing values counted apart)."""

    metric_name = "insyn.column.group_counts"
    value_keys = ()

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, runtime_configuration):
        df, _, acc = execution_engine.get_compute_domain(metric_domain_kwargs, domain_type=MetricDomainTypes.COLUMN)
        col = df[acc["column"]]
        counts = col.value_counts(dropna=True, sort=False)
        return {
            "n": len(col),
            "n_missing": int(col.isna().sum()),
            "counts": {str(k): int(v) for k, v in counts.items()},
        }


def _rates_by_group(execution_engine, metric_domain_kwargs, metric_value_kwargs, *, count_missing: bool):
    """Per-group rate of a column (missing values, or True values) for the two group-rate metrics."""
    df, _, acc = execution_engine.get_compute_domain(metric_domain_kwargs, domain_type=MetricDomainTypes.COLUMN)
    group_column = metric_value_kwargs["group_column"]
    _require_column(df, group_column)
    return group_rates(
        df[acc["column"]],
        df[group_column],
        min_group_size=metric_value_kwargs["min_group_size"],
        count_missing=count_missing,
    )


class _ColumnMissingRateByGroup(ColumnAggregateMetricProvider):
    """Share of missing values of a column per group."""

    metric_name = "insyn.column.missing_rate_by_group"
    value_keys = ("group_column", "min_group_size")

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, runtime_configuration):
        return _rates_by_group(execution_engine, metric_domain_kwargs, metric_value_kwargs, count_missing=True)


class _ColumnTrueRateByGroup(ColumnAggregateMetricProvider):
    """Share of True of a boolean column per group."""

    metric_name = "insyn.column.true_rate_by_group"
    value_keys = ("group_column", "min_group_size")

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, runtime_configuration):
        return _rates_by_group(execution_engine, metric_domain_kwargs, metric_value_kwargs, count_missing=False)


class _ColumnCramersV(ColumnAggregateMetricProvider):
    """Cramér's V between a column and a sensitive column."""

    metric_name = "insyn.column.cramers_v"
    value_keys = ("sensitive_column", "bins", "bias_correction")

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, runtime_configuration):
        df, _, acc = execution_engine.get_compute_domain(metric_domain_kwargs, domain_type=MetricDomainTypes.COLUMN)
        sensitive = metric_value_kwargs["sensitive_column"]
        _require_column(df, sensitive)
        return cramers_v(
            df[acc["column"]],
            df[sensitive],
            bins=metric_value_kwargs["bins"],
            bias_correction=metric_value_kwargs["bias_correction"],
        )


def _require_column(df: pd.DataFrame, column: str | None) -> None:
    if column is None or column not in df.columns:
        raise ValueError(f"column {column!r} is not in the frame.")


class _TablePersonnummerRows(TableMetricProvider):
    """Rows with a personnummer-shaped value in any text column."""

    metric_name = "insyn.table.personnummer_rows"
    value_keys = ("ignore_columns",)

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, runtime_configuration):
        df, _, _ = execution_engine.get_compute_domain(metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE)
        return personnummer_rows(df, ignore_columns=tuple(metric_value_kwargs.get("ignore_columns") or ()))


class _ColumnValuesAgeLists(ColumnMapMetricProvider):
    """Row verdict: a well-formed ``;``-separated list of ages within range."""

    condition_metric_name = "insyn.column_values.age_list"
    condition_value_keys = ("min_age", "max_age")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, min_age, max_age, **kwargs):
        well_formed, n_in_band, n_ages = parse_age_lists(column, min_age=min_age, max_age=max_age)
        return pd.Series(well_formed & (n_in_band == n_ages), index=column.index)


class _ColumnPairAAtMostCountOfAgesInB(ColumnPairMapMetricProvider):
    """Row verdict: A (a count) <= the number of ages in list B within a band."""

    condition_metric_name = "insyn.column_pair_values.a_at_most_count_of_ages_in_b"
    condition_value_keys = ("min_age", "max_age")

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A, column_B, **kwargs):
        well_formed, n_in_band, _ = parse_age_lists(column_B, min_age=kwargs["min_age"], max_age=kwargs["max_age"])
        a = pd.to_numeric(column_A, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        ok = well_formed & ~np.isnan(a) & (a <= n_in_band)
        return pd.Series(ok, index=column_A.index)


class _ColumnPairBBetweenWhereAInSet(ColumnPairMapMetricProvider):
    """Row verdict: where A is in a set, B lies within [min, max] (or is allowed to be missing)."""

    condition_metric_name = "insyn.column_pair_values.b_between_where_a_in_set"
    condition_value_keys = ("value_set", "min_value", "max_value", "allow_missing")

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A, column_B, **kwargs):
        return pd.Series(
            conditional_range_ok(
                column_A,
                column_B,
                value_set=kwargs["value_set"],
                min_value=kwargs.get("min_value"),
                max_value=kwargs.get("max_value"),
                allow_missing=kwargs.get("allow_missing", True),
            ),
            index=column_A.index,
        )


# --------------------------------------------------------------------------
# expectations


class ExpectColumnGroupRepresentationToBeAtLeast(ColumnAggregateExpectation):
    """Expect every group of a column to have at least a count and/or a share of the rows.

    ``column`` is the group column (a sensitive attribute such as
    ``birth_region``). Give ``min_count``, ``min_share`` (of all rows,
    including rows whose group is missing) or both. Groups listed in
    ``expected_groups`` that do not occur count as 0 rows. ``observed_value``
    is the size of the smallest group.
    """

    column: Optional[str] = None  # type: ignore[assignment]  # filled from `groups` when omitted
    min_count: Optional[_NonNegativeInt] = None
    min_share: Optional[_Share] = None
    expected_groups: Optional[List[str]] = None

    metric_dependencies: ClassVar[Tuple[str, ...]] = ("insyn.column.group_counts",)
    success_keys: ClassVar[Tuple[str, ...]] = ("min_count", "min_share", "expected_groups")
    args_keys: ClassVar[Tuple[str, ...]] = ("column", "min_count", "min_share")

    @pydantic.root_validator(skip_on_failure=True)
    def _one_bound(cls, values: Dict[str, Any]) -> Dict[str, Any]:
        if values.get("min_count") is None and values.get("min_share") is None:
            raise ValueError("give min_count, min_share or both")
        return values

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        info = metrics["insyn.column.group_counts"]
        success, result = representation_verdict(
            info["counts"], info["n"], info["n_missing"], min_count=self.min_count, min_share=self.min_share,
            expected_groups=self.expected_groups)
        return {"success": success, "result": result}


class _GapExpectation(ColumnAggregateExpectation):
    """Shared fields and verdict of the rate-gap-across-groups expectations."""

    group_column: Optional[str] = None
    max_gap: _Share
    min_group_size: _PositiveInt = 10

    success_keys: ClassVar[Tuple[str, ...]] = ("group_column", "max_gap", "min_group_size")
    args_keys: ClassVar[Tuple[str, ...]] = ("column", "group_column", "max_gap")
    _metric: ClassVar[str] = ""

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        success, result = gap_verdict(metrics[self._metric], self.max_gap)
        return {"success": success, "result": result}


class ExpectColumnMissingRateGapAcrossGroupsToBeAtMost(_GapExpectation):
    """Expect the missing-value rate of a column to differ across groups by at most ``max_gap``.

    ``observed_value`` is max minus min of the per-group share of missing
    values of ``column`` over groups of ``group_column`` with at least
    ``min_group_size`` rows (NaN, and success, when fewer than two).
    """

    metric_dependencies: ClassVar[Tuple[str, ...]] = ("insyn.column.missing_rate_by_group",)
    _metric: ClassVar[str] = "insyn.column.missing_rate_by_group"


class ExpectColumnFailureRateGapAcrossGroupsToBeAtMost(_GapExpectation):
    """Expect the rate of a boolean failure flag to differ across groups by at most ``max_gap``.

    ``column`` is a flag where True marks a failure (``registry_read_failed``);
    missing flags are left out of the rates. ``observed_value`` is max minus
    min of the per-group share of True over groups of ``group_column`` with at
    least ``min_group_size`` known flags (NaN, and success, when fewer than
    two).
    """

    metric_dependencies: ClassVar[Tuple[str, ...]] = ("insyn.column.true_rate_by_group",)
    _metric: ClassVar[str] = "insyn.column.true_rate_by_group"


class ExpectColumnProxyStrengthToBeAtMost(ColumnAggregateExpectation):
    """Expect a feature to be at most a weak proxy for a sensitive attribute.

    ``observed_value`` is Cramér's V between ``column`` and
    ``sensitive_column`` (bias-corrected by default, plain with
    ``bias_correction: false``); numeric columns with more than ``bins``
    distinct values are cut at their quantiles into at most ``bins`` bins. NaN (and success)
    when the table has fewer than two rows or columns.
    """

    sensitive_column: Optional[str] = None
    max_cramers_v: _Share
    bins: _BinCount = 5
    bias_correction: bool = True

    metric_dependencies: ClassVar[Tuple[str, ...]] = ("insyn.column.cramers_v",)
    success_keys: ClassVar[Tuple[str, ...]] = ("sensitive_column", "max_cramers_v", "bins", "bias_correction")
    args_keys: ClassVar[Tuple[str, ...]] = ("column", "sensitive_column", "max_cramers_v")

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        success, result = proxy_verdict(metrics["insyn.column.cramers_v"], self.max_cramers_v,
                                        bias_correction=self.bias_correction)
        return {"success": success, "result": result}


class ExpectColumnValuesToBeAgeLists(ColumnMapExpectation):
    """Expect ``;``-separated whole ages within ``[min_age, max_age]`` (``""`` for none).

    Missing values are not judged here (use
    ``expect_column_values_to_not_be_null``).
    """

    min_age: _NonNegativeInt = 0
    max_age: _NonNegativeInt = 20

    map_metric: ClassVar[str] = "insyn.column_values.age_list"
    success_keys: ClassVar[Tuple[str, ...]] = ("min_age", "max_age", "mostly")
    args_keys: ClassVar[Tuple[str, ...]] = ("column", "min_age", "max_age")

    @pydantic.root_validator(skip_on_failure=True)
    def _ordered(cls, values: Dict[str, Any]) -> Dict[str, Any]:
        if values["min_age"] > values["max_age"]:
            raise ValueError(f"min_age ({values['min_age']}) must be <= max_age ({values['max_age']})")
        return values


class ExpectColumnPairValuesAToBeAtMostCountOfAgesInB(ColumnPairMapExpectation):
    """Expect a count in column A to be at most the number of ages in B's list within a band.

    For example ``children_preschool_lunch`` (A) <= the number of children
    aged 0 to 6 in ``child_ages`` (B). A row whose A is not a number or whose
    B is not a well-formed age list is unexpected: the rule cannot be
    confirmed. By default rows where both values are missing are skipped.
    """

    min_age: _NonNegativeInt
    max_age: _NonNegativeInt
    ignore_row_if: Union[str, None] = pydantic.Field(default="both_values_are_missing")

    map_metric: ClassVar[str] = "insyn.column_pair_values.a_at_most_count_of_ages_in_b"
    success_keys: ClassVar[Tuple[str, ...]] = ("min_age", "max_age", "ignore_row_if", "mostly")
    args_keys: ClassVar[Tuple[str, ...]] = ("column_A", "column_B", "min_age", "max_age")
    domain_keys: ClassVar[Tuple[str, ...]] = (
        "batch_id",
        "column_A",
        "column_B",
        "row_condition",
        "condition_parser",
        "ignore_row_if",
    )

    @pydantic.root_validator(skip_on_failure=True)
    def _ordered(cls, values: Dict[str, Any]) -> Dict[str, Any]:
        if values["min_age"] > values["max_age"]:
            raise ValueError(f"min_age ({values['min_age']}) must be <= max_age ({values['max_age']})")
        if values.get("ignore_row_if") not in ("both_values_are_missing", "either_value_is_missing", "neither"):
            raise ValueError(
                "ignore_row_if must be one of both_values_are_missing, either_value_is_missing, neither"
            )
        return values


class ExpectTableColumnsToNotContainSet(BatchExpectation):
    """Expect none of ``column_set`` among the table's columns.

    Used to keep sensitive columns (``sex``, ``birth_region``) away from an
    engine that may not see them. ``observed_value`` lists the forbidden
    columns found.
    """

    column_set: List[str]

    metric_dependencies: ClassVar[Tuple[str, ...]] = ("table.columns",)
    success_keys: ClassVar[Tuple[str, ...]] = ("column_set",)
    args_keys: ClassVar[Tuple[str, ...]] = ("column_set",)

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        present = [str(c) for c in metrics["table.columns"]]
        found = sorted(set(present) & set(self.column_set))
        return {"success": not found, "result": {"observed_value": found}}


class ExpectTableTextValuesToNotContainPersonnummer(BatchExpectation):
    """Expect no personnummer-shaped value in any text column (row-level).

    Scans every ``str``/``object`` column except ``ignore_columns`` for the
    privacy gate's pattern (:data:`audit._privacy.PNR_PATTERN`, with the gate's
    own search). A row with a hit in any column is unexpected;
    ``observed_value`` maps each column to its rows with a hit. The values
    themselves are never put in the result.
    """

    ignore_columns: List[str] = pydantic.Field(default_factory=list)

    metric_dependencies: ClassVar[Tuple[str, ...]] = ("insyn.table.personnummer_rows", "table.row_count")
    success_keys: ClassVar[Tuple[str, ...]] = ("ignore_columns",)
    args_keys: ClassVar[Tuple[str, ...]] = ()

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        info = metrics["insyn.table.personnummer_rows"]
        positions = info["positions"]
        n = int(metrics["table.row_count"])
        k = int(len(positions))
        result_format = self._get_result_format(runtime_configuration=runtime_configuration)
        shown = result_format.get("partial_unexpected_count", 20) if isinstance(result_format, dict) else 20
        result = {
            "observed_value": info["by_column"],
            "element_count": n,
            "unexpected_count": k,
            "unexpected_percent": (100.0 * k / n) if n else 0.0,
            "partial_unexpected_index_list": positions[:shown].tolist(),
            "details": {"columns_scanned": info["columns_scanned"]},
        }
        if isinstance(result_format, dict) and result_format.get("result_format") == "COMPLETE":
            result["unexpected_index_list"] = positions.tolist()  # every row, as map expectations give
        return {"success": k == 0, "result": result}


class ExpectColumnPairValuesBToBeBetweenWhereAInSet(ColumnPairMapExpectation):
    """Expect column B within ``[min_value, max_value]`` on the rows where column A is in ``value_set``.

    A conditional rule evaluated row by row without filtering the whole frame
    (great-expectations' ``row_condition`` copies every column per metric).
    For example: where ``application_type`` is ``renewal``,
    ``months_on_assistance`` >= 1. A missing B passes when ``allow_missing``
    (the default) and fails otherwise, so ``allow_missing: false`` alone
    expresses "B is not missing where A is in the set". Rows where A is not
    in the set (or missing) always pass.
    """

    value_set: List[Any] = pydantic.Field(min_items=1)
    min_value: Optional[float] = None
    max_value: Optional[float] = None
    allow_missing: bool = True
    ignore_row_if: str = "neither"

    map_metric: ClassVar[str] = "insyn.column_pair_values.b_between_where_a_in_set"
    success_keys: ClassVar[Tuple[str, ...]] = (
        "value_set", "min_value", "max_value", "allow_missing", "ignore_row_if", "mostly",
    )
    args_keys: ClassVar[Tuple[str, ...]] = ("column_A", "value_set", "column_B", "min_value", "max_value")
    domain_keys: ClassVar[Tuple[str, ...]] = (
        "batch_id",
        "column_A",
        "column_B",
        "row_condition",
        "condition_parser",
        "ignore_row_if",
    )

    @pydantic.root_validator(skip_on_failure=True)
    def _some_rule(cls, values: Dict[str, Any]) -> Dict[str, Any]:
        lo, hi = values.get("min_value"), values.get("max_value")
        if lo is None and hi is None and values.get("allow_missing", True):
            raise ValueError("give min_value, max_value or allow_missing: false")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_value ({lo}) must be <= max_value ({hi})")
        if values.get("ignore_row_if") not in ("both_values_are_missing", "either_value_is_missing", "neither"):
            raise ValueError(
                "ignore_row_if must be one of both_values_are_missing, either_value_is_missing, neither"
            )
        return values
