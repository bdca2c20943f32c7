"""Native, vectorised evaluation of the shipped suites' expectation types, exact to great-expectations.

great-expectations defines Insyn's suites and is the reference for what each
expectation means, but running a suite through it costs seconds: importing
it (about 2 s), fingerprinting the whole frame once per validation, and
resolving every metric through its graph. For the expectation types the
shipped suites use, this module computes the same result directly with
pandas and numpy, by the same pandas operations great-expectations' pandas
engine applies (``isin``, ``duplicated(keep=False)``, ``astype(str).str.contains``,
``strptime`` per distinct value, the dtype comparison of
``expect_column_values_to_be_of_type``), the same null filtering
(``ignore_row_if`` for column pairs), the same verdict (``mostly`` over the
non-missing rows, vacuously true without them) and the same percentages. The
fairness-aware types call the very functions great-expectations calls
through Insyn's metrics (:mod:`audit.checks._statistics`).

``tests/test_checks_native.py`` holds the native path to great-expectations
on the same data and suites (success, element, unexpected and missing
counts, observed values, details, unexpected rows). A type not listed in
:data:`NATIVE_TYPES`, or a column whose dtype the native code does not
cover (an ``object`` column under a type check, a non-numeric column under a
range), is left to great-expectations, which is then imported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from audit._ids import known_unique
from audit.checks._statistics import (
    cached,
    conditional_range_ok,
    cramers_v,
    factorized,
    gap_verdict,
    group_rates,
    parse_age_lists,
    personnummer_rows,
    proxy_verdict,
    representation_verdict,
)
from audit.checks._sufficient import value_hashes

__all__ = ["NATIVE_TYPES", "NativeResult", "evaluate_native"]


@dataclass
class NativeResult:
    """One expectation's result in the shape great-expectations returns it (``success``, ``result``)."""

    success: bool
    result: dict[str, Any]
    positions: np.ndarray | None = None
    exception_info: dict[str, Any] = field(
        default_factory=lambda: {"raised_exception": False, "exception_traceback": None, "exception_message": None})


class _Defer(Exception):
    """The native code does not cover this case: great-expectations evaluates it."""


def _mostly(nonnull: int, unexpected: int, mostly: float) -> bool:
    return (float(nonnull) - float(unexpected)) / float(nonnull) >= mostly


def _map_result(ok: np.ndarray, considered: np.ndarray, kwargs: Mapping[str, Any], *, shown: int,
                values: pd.Series | None = None) -> NativeResult:
    """A column (pair) map expectation: ``ok`` per considered row; rows not considered count as missing.

    With ``values`` (single-column expectations) the result also lists the
    first unexpected values and their counts, as great-expectations' SUMMARY
    does (:func:`audit.checks.validate` masks personnummer-shaped ones).
    """
    n = len(considered)
    nonnull = int(considered.sum())
    positions = np.flatnonzero(considered & ~ok).astype(np.int64)
    k = int(len(positions))
    mostly = float(kwargs.get("mostly", 1.0))
    success = True if n == 0 or nonnull == 0 else _mostly(nonnull, k, mostly)
    missing = n - nonnull
    total = k / n * 100 if n > 0 else None
    percent = (k / nonnull * 100 if nonnull > 0 else None) if n > 0 else None
    result: dict[str, Any] = {"element_count": n, "unexpected_count": k, "unexpected_percent": percent}
    if values is not None:
        result["partial_unexpected_list"] = _plain(values.iloc[positions[:shown]].tolist())
    result.update(missing_count=missing, missing_percent=(missing / n * 100) if n > 0 else None,
                  unexpected_percent_total=total, unexpected_percent_nonmissing=percent)
    if values is not None:
        _add_counts(result, result["partial_unexpected_list"], shown)
    result["partial_unexpected_index_list"] = positions[:shown].tolist()
    return NativeResult(success=bool(success), result=result, positions=positions)


def _plain(items: list[Any]) -> list[Any]:
    """Python scalars for JSON: numpy scalars unwrapped, NaN as None."""
    out: list[Any] = []
    for v in items:
        if isinstance(v, np.generic):
            v = v.item()
        if v is pd.NA or (isinstance(v, float) and v != v):
            v = None
        out.append(v)
    return out


def _add_counts(result: dict[str, Any], unexpected: list[Any], shown: int) -> None:
    """``partial_unexpected_counts`` as great-expectations orders them (most common first, then by value)."""
    try:
        counted = Counter(unexpected).most_common(shown)
        result["partial_unexpected_counts"] = [{"value": v, "count": c}
                                               for v, c in sorted(counted, key=lambda x: (-x[1], x[0]))]
    except TypeError:
        pass  # values that do not sort: great-expectations leaves the counts out too


def _column_map(condition: Callable[[pd.Series], np.ndarray]) -> Callable[..., NativeResult]:
    def run(data: pd.DataFrame, kwargs: Mapping[str, Any], shown: int) -> NativeResult:
        col = data[kwargs["column"]]
        considered = col.notna().to_numpy(dtype=bool)
        if considered.all():  # the column itself: per-column work stays cached (audit.checks._statistics)
            ok = np.asarray(condition(col, kwargs), dtype=bool)
        else:
            ok = np.ones(len(col), dtype=bool)
            if considered.any():
                ok[considered] = np.asarray(condition(col[considered], kwargs), dtype=bool)
        return _map_result(ok, considered, kwargs, shown=shown, values=col)

    return run


def _in_set(col: pd.Series, kwargs: Mapping[str, Any]) -> np.ndarray:
    if kwargs.get("value_set") is None:
        return np.ones(len(col), dtype=bool)
    return col.isin(kwargs["value_set"]).to_numpy(dtype=bool)


def _unique(col: pd.Series, kwargs: Mapping[str, Any]) -> np.ndarray:
    """``~duplicated(keep=False)``: rows sharing a 64-bit hash are candidates, confirmed on their values."""
    if not (pd.api.types.is_string_dtype(col.dtype) and col.dtype != object):
        return (~col.duplicated(keep=False)).to_numpy(dtype=bool)
    if known_unique(col):  # the same ids were found unique before (the population's, the engine's)
        return np.ones(len(col), dtype=bool)
    h = cached(col, "hashes", value_hashes)
    order = np.argsort(h, kind="stable")
    same = h[order][1:] == h[order][:-1]
    flagged = np.zeros(len(h), dtype=bool)
    flagged[1:] |= same
    flagged[:-1] |= same
    candidate = np.zeros(len(h), dtype=bool)
    candidate[order] = flagged
    duplicated = np.zeros(len(h), dtype=bool)
    if candidate.any():  # equal values have equal hashes; a collision is sorted out here
        duplicated[candidate] = col[candidate].duplicated(keep=False).to_numpy(dtype=bool)
    return ~duplicated


def _regex(col: pd.Series, kwargs: Mapping[str, Any]) -> np.ndarray:
    """great-expectations' ``astype(str).str.contains(regex)``, once per distinct value when values repeat."""
    codes, uniques = factorized(col)
    if 2 * len(uniques) < len(col) and codes.min(initial=0) >= 0:
        distinct = pd.Series(uniques, dtype=col.dtype)
        return distinct.astype(str).str.contains(kwargs["regex"]).to_numpy(dtype=bool)[codes]
    return col.astype(str).str.contains(kwargs["regex"]).to_numpy(dtype=bool)


def _strftime(col: pd.Series, kwargs: Mapping[str, Any]) -> np.ndarray:
    fmt = kwargs["strftime_format"]
    values = col.to_numpy(dtype=object)
    if not all(isinstance(v, str) for v in values[:1]):
        raise _Defer
    codes, uniques = pd.factorize(values)
    ok = np.empty(len(uniques), dtype=bool)
    for i, v in enumerate(uniques):
        if not isinstance(v, str):
            raise _Defer
        try:
            datetime.strptime(v, fmt)  # noqa: DTZ007 - a format check, as great-expectations makes it
            ok[i] = True
        except ValueError:
            ok[i] = False
    return ok[codes]


def _between(col: pd.Series, kwargs: Mapping[str, Any]) -> np.ndarray:
    if not (pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)):
        raise _Defer
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if lo is None and hi is None:
        raise _Defer  # great-expectations raises; its message is its own
    if any(v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))) for v in (lo, hi)):
        raise _Defer
    if lo is not None and hi is not None and lo > hi:
        raise _Defer
    x = col.to_numpy(dtype=np.float64) if col.dtype != np.int64 else col.to_numpy()
    ok = np.ones(len(x), dtype=bool)
    if lo is not None:
        ok &= (x > lo) if kwargs.get("strict_min") else (x >= lo)
    if hi is not None:
        ok &= (x < hi) if kwargs.get("strict_max") else (x <= hi)
    return ok


def _age_lists(col: pd.Series, kwargs: Mapping[str, Any]) -> np.ndarray:
    well_formed, n_in_band, n_ages = parse_age_lists(col, min_age=kwargs.get("min_age", 0),
                                                     max_age=kwargs.get("max_age", 20))
    return well_formed & (n_in_band == n_ages)


def _pair(condition: Callable[[pd.Series, pd.Series, Mapping[str, Any]], np.ndarray],
          default_ignore: str) -> Callable[..., NativeResult]:
    def run(data: pd.DataFrame, kwargs: Mapping[str, Any], shown: int) -> NativeResult:
        a, b = data[kwargs["column_A"]], data[kwargs["column_B"]]
        ignore = kwargs.get("ignore_row_if", default_ignore)
        na, nb = a.isna().to_numpy(dtype=bool), b.isna().to_numpy(dtype=bool)
        if ignore == "both_values_are_missing":
            considered = ~(na & nb)
        elif ignore == "either_value_is_missing":
            considered = ~(na | nb)
        elif ignore == "neither":
            considered = np.ones(len(a), dtype=bool)
        else:
            raise _Defer
        ok = np.ones(len(a), dtype=bool)
        if considered.any():
            if considered.all():
                ok = np.asarray(condition(a, b, kwargs), dtype=bool)
            else:
                ok[considered] = np.asarray(condition(a[considered], b[considered], kwargs), dtype=bool)
        return _map_result(ok, considered, kwargs, shown=shown)

    return run


def _a_at_most_count_of_ages_in_b(a: pd.Series, b: pd.Series, kwargs: Mapping[str, Any]) -> np.ndarray:
    well_formed, n_in_band, _ = parse_age_lists(b, min_age=kwargs["min_age"], max_age=kwargs["max_age"])
    x = pd.to_numeric(a, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return well_formed & ~np.isnan(x) & (x <= n_in_band)


def _b_between_where_a_in_set(a: pd.Series, b: pd.Series, kwargs: Mapping[str, Any]) -> np.ndarray:
    return conditional_range_ok(a, b, value_set=kwargs["value_set"], min_value=kwargs.get("min_value"),
                                max_value=kwargs.get("max_value"), allow_missing=kwargs.get("allow_missing", True))


def _a_greater_than_b(a: pd.Series, b: pd.Series, kwargs: Mapping[str, Any]) -> np.ndarray:
    if not all(pd.api.types.is_numeric_dtype(c.dtype) for c in (a, b)):
        raise _Defer
    out = (a >= b) if kwargs.get("or_equal") else (a > b)
    if out.isna().any():
        raise _Defer
    return out.to_numpy(dtype=bool)


def _not_null(data: pd.DataFrame, kwargs: Mapping[str, Any], shown: int) -> NativeResult:
    col = data[kwargs["column"]]
    positions = np.flatnonzero(col.isna().to_numpy(dtype=bool)).astype(np.int64)
    n, k = len(col), int(len(positions))
    mostly = float(kwargs.get("mostly", 1.0))
    success = True if n == 0 else (n - k) / n >= mostly
    result: dict[str, Any] = {"element_count": n, "unexpected_count": k,
                              "unexpected_percent": (k / n * 100) if n else None,
                              "partial_unexpected_list": [None] * min(k, shown)}
    _add_counts(result, result["partial_unexpected_list"], shown)
    result["partial_unexpected_index_list"] = positions[:shown].tolist()
    return NativeResult(success=bool(success), result=result, positions=positions)


def _of_type(data: pd.DataFrame, kwargs: Mapping[str, Any], shown: int) -> NativeResult:
    dtype = data.dtypes[kwargs["column"]]
    expected = kwargs.get("type_")
    if dtype.type.__name__ == "object_" and expected not in ("object", "object_", "O", None):
        raise _Defer  # great-expectations checks each value's type: a map over an object column
    if expected is None:
        success = True
    else:
        comp: list[Any] = []
        try:
            comp.append(np.dtype(expected).type)
        except TypeError:
            for owner in (pd, pd.core.dtypes.dtypes):
                candidate = getattr(owner, expected, None)
                if isinstance(candidate, type):
                    comp.append(candidate)
        comp.extend(_PYTHON_TYPES.get(expected.lower(), ()))
        success = dtype.type in comp
    return NativeResult(success=bool(success), result={"observed_value": dtype.type.__name__})


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "none": (type(None),), "bool": (bool,), "int": (int,), "long": (int,), "float": (float,), "bytes": (bytes,),
    "complex": (complex,), "str": (str,), "string_types": (str,), "list": (list,), "dict": (dict,),
}
"""great-expectations' ``native_type_type_map`` (``expectations/type_comparison.py``)."""


def _column_exists(data: pd.DataFrame, kwargs: Mapping[str, Any], shown: int) -> NativeResult:
    if kwargs.get("column_index") is not None:
        raise _Defer
    return NativeResult(success=kwargs["column"] in data.columns, result={})


def _columns_match_set(data: pd.DataFrame, kwargs: Mapping[str, Any], shown: int) -> NativeResult:
    expected = set(kwargs.get("column_set") or [])
    actual = {str(c) for c in data.columns}
    observed = sorted(actual)
    extra, missing = sorted(actual - expected), sorted(expected - actual)
    if not extra and not missing:
        return NativeResult(success=True, result={"observed_value": observed})
    mismatched: dict[str, list[str]] = {}
    if extra:
        mismatched["unexpected"] = extra
    if missing:
        mismatched["missing"] = missing
    exact = kwargs.get("exact_match", True)
    success = False if exact else not missing
    return NativeResult(success=success, result={"observed_value": observed, "details": {"mismatched": mismatched}})


def _not_contain_set(data: pd.DataFrame, kwargs: Mapping[str, Any], shown: int) -> NativeResult:
    found = sorted({str(c) for c in data.columns} & set(kwargs["column_set"]))
    return NativeResult(success=not found, result={"observed_value": found})


def _personnummer(data: pd.DataFrame, kwargs: Mapping[str, Any], shown: int) -> NativeResult:
    info = personnummer_rows(data, ignore_columns=tuple(kwargs.get("ignore_columns") or ()))
    positions = info["positions"]
    n, k = len(data), int(len(positions))
    result = {"observed_value": info["by_column"], "element_count": n, "unexpected_count": k,
              "unexpected_percent": (100.0 * k / n) if n else 0.0,
              "partial_unexpected_index_list": positions[:shown].tolist(),
              "details": {"columns_scanned": info["columns_scanned"]}}
    return NativeResult(success=k == 0, result=result, positions=positions)


def _representation(data: pd.DataFrame, kwargs: Mapping[str, Any], shown: int) -> NativeResult:
    col = data[kwargs["column"]]
    counts = col.value_counts(dropna=True, sort=False)
    success, result = representation_verdict(
        {str(k): int(v) for k, v in counts.items()}, len(col), int(col.isna().sum()),
        min_count=kwargs.get("min_count"), min_share=kwargs.get("min_share"),
        expected_groups=kwargs.get("expected_groups"))
    return NativeResult(success=success, result=result)


def _gap(count_missing: bool) -> Callable[..., NativeResult]:
    def run(data: pd.DataFrame, kwargs: Mapping[str, Any], shown: int) -> NativeResult:
        group = kwargs.get("group_column")
        if group is None or group not in data.columns:
            raise _Defer
        info = group_rates(data[kwargs["column"]], data[group], min_group_size=kwargs.get("min_group_size", 10),
                           count_missing=count_missing)
        success, result = gap_verdict(info, kwargs["max_gap"])
        return NativeResult(success=success, result=result)

    return run


def _proxy(data: pd.DataFrame, kwargs: Mapping[str, Any], shown: int) -> NativeResult:
    sensitive = kwargs.get("sensitive_column")
    if sensitive is None or sensitive not in data.columns:
        raise _Defer
    bias = kwargs.get("bias_correction", True)
    info = cramers_v(data[kwargs["column"]], data[sensitive], bins=kwargs.get("bins", 5), bias_correction=bias)
    success, result = proxy_verdict(info, kwargs["max_cramers_v"], bias_correction=bias)
    return NativeResult(success=success, result=result)


_EVALUATORS: dict[str, Callable[[pd.DataFrame, Mapping[str, Any], int], NativeResult]] = {
    "expect_column_to_exist": _column_exists,
    "expect_table_columns_to_match_set": _columns_match_set,
    "expect_column_values_to_be_of_type": _of_type,
    "expect_column_values_to_not_be_null": _not_null,
    "expect_column_values_to_be_unique": _column_map(_unique),
    "expect_column_values_to_be_in_set": _column_map(_in_set),
    "expect_column_values_to_be_between": _column_map(_between),
    "expect_column_values_to_match_regex": _column_map(_regex),
    "expect_column_values_to_match_strftime_format": _column_map(_strftime),
    "expect_column_values_to_be_age_lists": _column_map(_age_lists),
    "expect_column_pair_values_a_to_be_at_most_count_of_ages_in_b": _pair(_a_at_most_count_of_ages_in_b,
                                                                          "both_values_are_missing"),
    "expect_column_pair_values_b_to_be_between_where_a_in_set": _pair(_b_between_where_a_in_set, "neither"),
    "expect_column_pair_values_a_to_be_greater_than_b": _pair(_a_greater_than_b, "both_values_are_missing"),
    "expect_table_columns_to_not_contain_set": _not_contain_set,
    "expect_table_text_values_to_not_contain_personnummer": _personnummer,
    "expect_column_group_representation_to_be_at_least": _representation,
    "expect_column_missing_rate_gap_across_groups_to_be_at_most": _gap(count_missing=True),
    "expect_column_failure_rate_gap_across_groups_to_be_at_most": _gap(count_missing=False),
    "expect_column_proxy_strength_to_be_at_most": _proxy,
}

NATIVE_TYPES: frozenset[str] = frozenset(_EVALUATORS)
"""Expectation types with a native implementation (every type the shipped suites use)."""

_GX_ONLY_KWARGS = frozenset({"row_condition", "condition_parser", "parse_strings_as_datetimes", "catch_exceptions",
                             "column_index"})


def evaluate_native(data: pd.DataFrame, kind: str, kwargs: Mapping[str, Any], *, shown: int) -> NativeResult | None:
    """Evaluate one expectation natively; None when great-expectations must (module docstring).

    Parameters
    ----------
    data : pandas.DataFrame
        The step's frame with a 0-based RangeIndex.
    kind : str
        The expectation type.
    kwargs : mapping
        Its kwargs (columns present: :func:`audit.checks.validate` plans that).
    shown : int
        Unexpected row positions to keep in ``partial_unexpected_index_list``.
    """
    run = _EVALUATORS.get(kind)
    if run is None or _GX_ONLY_KWARGS & set(kwargs):
        return None
    try:
        return run(data, kwargs, shown)
    except (_Defer, ValueError, TypeError, KeyError):
        return None  # great-expectations evaluates it and reports its own error, if any

