"""The statistics behind the fairness-aware checks, in plain pandas, numpy and pyarrow.

Each fairness-aware expectation of :mod:`audit.checks._expectations` asks a
question about groups of cases, and the answer is a small computation on
counts: the share of missing values per group and the largest gap between
groups (differential missingness), the share of failed registry lookups per
group (differential registry failure), the association between a feature and
a sensitive attribute (proxy strength, Cramér's V), and, for the assistance
case frame, the parsing of ``child_ages`` lists and conditional range rules.
They live here, apart from great-expectations, so that each can be used and
tested on its own; every one is vectorised (no Python loop over rows).

Conventions
-----------
* Groups are the distinct non-missing values of the group column; rows whose
  group is missing are counted apart and left out.
* A gap is taken over groups with at least ``min_group_size`` rows; smaller
  groups are listed as suppressed. With fewer than two such groups the gap is
  undefined: NaN with a reason, never 0.
* Cramér's V is Bergsma's (2013) bias-corrected statistic by default; the
  plain statistic equals ``scipy.stats.contingency.association(table,
  method="cramer")``.

Work that several checks repeat on the same column during one validation
(factorising a group column, parsing ``child_ages``) is done once inside a
:func:`caching` block, which :func:`audit.checks.validate` opens around each
run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audit._arrays import codes_of
from audit._privacy import arrow_pnr_rows

__all__ = [
    "as_json_float",
    "cached",
    "caching",
    "conditional_range_ok",
    "cramers_v",
    "cramers_v_of_table",
    "factorized",
    "gap_verdict",
    "group_rates",
    "is_binned_number",
    "parse_age_lists",
    "personnummer_rows",
    "proxy_verdict",
    "rates_of_counts",
    "representation_verdict",
]

_AGE_LIST_PATTERN = r"^(?:[0-9]{1,3}(?:;[0-9]{1,3})*)?$"
"""RE2 pattern of a well-formed age list; three digits at most so ages fit any int."""

_UNDEFINED_GAP = "fewer than two groups have at least min_group_size cases with a known value"


def as_json_float(value: float) -> float | None:
    """Return a Python float, or None for NaN (JSON has no NaN)."""
    value = float(value)
    return None if math.isnan(value) else value


_CACHE: dict[tuple[Any, ...], tuple[Any, Any]] = {}
_CACHE_SIZE = 32
"""Entries kept at once (the oldest goes first): each holds up to 8 bytes a row, so at most 256 bytes a row."""
_CACHING = {"on": False, "depth": 0}


def cached(values: pd.Series, kind: str, compute: Any) -> Any:
    """Compute something about a column once per validation (e.g. group codes), inside :func:`caching`.

    The key is the identity of the column's pandas extension array (stable
    across ``df[column]`` for ``str`` columns), or for a numpy-backed column
    (whose ``.array`` wrapper is new on every access) the address, shape,
    strides and type of its memory; the entry keeps that array alive, so
    the key cannot be reused while cached. ``kind`` names what is computed
    (with any parameter it depends on).
    """
    if not _CACHING["on"]:
        return compute(values)
    arr = values.array
    if isinstance(arr, pd.arrays.NumpyExtensionArray):
        data = values.to_numpy(copy=False)
        if data.dtype.kind == "O":  # a column of objects: nothing to key it by
            return compute(values)
        face = data.__array_interface__
        key: tuple[Any, ...] = ("np", data.dtype.str, face["data"][0], face["shape"], face["strides"], kind)
        alive: Any = data
    else:
        key, alive = (id(arr), kind), arr
    hit = _CACHE.get(key)
    if hit is not None and (hit[0] is alive or key[0] == "np"):
        return hit[1]
    result = compute(values)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = (alive, result)
    return result


@contextmanager
def caching() -> Iterator[None]:
    """Cache per-column work inside the block, and forget it on leaving.

    :func:`audit.checks.validate` runs great-expectations inside this block;
    the data cannot change there. Outside it nothing is cached, so direct
    calls always see the current values.
    """
    _CACHING["on"] = True
    _CACHING["depth"] += 1
    try:
        yield
    finally:
        _CACHING["depth"] -= 1
        if _CACHING["depth"] == 0:  # nested blocks share the outer one's cache
            _CACHING["on"] = False
            _CACHE.clear()


def factorized(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``pandas.factorize(values, sort=True)`` (missing values get code -1), cached inside :func:`caching`."""

    def compute(v: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(v.dtype, pd.StringDtype):  # numbered once per column array, then sorted
            raw, uniques = codes_of(v)
            order = np.argsort(uniques, kind="stable")
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order))
            return np.where(raw >= 0, rank[np.maximum(raw, 0)] if len(rank) else raw, -1), uniques[order]
        codes, uniques = pd.factorize(v, sort=True)
        return np.asarray(codes, dtype=np.int64), np.asarray(uniques, dtype=object)

    return cached(values, "factorize", compute)


def _dense(codes: np.ndarray) -> np.ndarray:
    """Renumber non-negative codes to 0..k-1 keeping their order (O(n))."""
    if len(codes) == 0:
        return codes.astype(np.int64)
    used = np.bincount(codes) > 0
    return (np.cumsum(used) - 1)[codes].astype(np.int64)


def group_rates(
    flags: pd.Series,
    groups: pd.Series,
    *,
    min_group_size: int = 10,
    count_missing: bool = False,
) -> dict[str, Any]:
    """Rate of a flag in each group and the largest gap between groups.

    Parameters
    ----------
    flags : pandas.Series
        With ``count_missing=False``: a boolean flag (bool, nullable boolean,
        0/1 numbers or objects ``True``/``False``); missing flags are left out
        of the rate and counted as ``missing``. With ``count_missing=True``:
        any column; the rate is the share of missing values.
    groups : pandas.Series
        The group of each row, aligned with ``flags``.
    min_group_size : int, default 10
        Groups with fewer rows entering the rate are suppressed from the gap.
    count_missing : bool, default False
        Measure missingness instead of the flag's value.

    Returns
    -------
    dict
        ``gap`` (max minus min rate over unsuppressed groups; NaN when fewer
        than two remain), ``reason`` (why the gap is undefined, else None),
        ``by_group`` ({group: {n, count, rate}} where ``n`` is the rows entering
        the rate and ``count`` those flagged), ``suppressed`` (sorted group
        names), ``n_missing_group`` (rows without a group) and, for flags,
        ``n_missing_flag``.

    Raises
    ------
    ValueError
        When ``flags`` holds values other than booleans, 0 and 1.
    """
    all_codes, uniques = factorized(groups)
    known_group = all_codes >= 0
    n_missing_group = int((~known_group).sum())
    n_missing_flag = 0
    if count_missing:
        hit = flags.isna().to_numpy()
        enters = np.ones(len(flags), dtype=bool)
    else:
        hit, enters = _boolean_values(flags)
        n_missing_flag = int((~enters & known_group).sum())
    keep = known_group & enters
    every = bool(keep.all())  # the common case: no row to leave out, no copies
    codes = all_codes if every else all_codes[keep]
    flagged = hit if every else hit[keep]
    n_by = np.bincount(codes, minlength=len(uniques))
    hit_by = np.bincount(codes[np.asarray(flagged, dtype=bool)], minlength=len(uniques))
    return rates_of_counts(
        [(str(name), int(n), int(k)) for name, n, k in zip(uniques, n_by, hit_by, strict=True)],
        min_group_size=min_group_size,
        n_missing_group=n_missing_group,
        n_missing_flag=None if count_missing else n_missing_flag,
    )


def rates_of_counts(
    counts: Sequence[tuple[str, int, int]],
    *,
    min_group_size: int,
    n_missing_group: int,
    n_missing_flag: int | None,
) -> dict[str, Any]:
    """The result of :func:`group_rates` from its sufficient statistics.

    Parameters
    ----------
    counts : sequence of (group, n, count)
        Per group, in sorted group order: rows entering the rate and rows
        flagged. Summing these over chunks of a frame gives the frame's, so a
        chunked run merges the per-chunk ``by_group`` exactly.
    min_group_size : int
        Groups with fewer rows entering the rate are suppressed from the gap.
    n_missing_group : int
        Rows without a group.
    n_missing_flag : int or None
        Rows with a group but no flag (None when measuring missingness).

    Returns
    -------
    dict
        As :func:`group_rates`.
    """
    by_group: dict[str, dict[str, Any]] = {}
    rates: list[float] = []
    suppressed: list[str] = []
    for name, n, k in counts:
        if n == 0:  # every row of the group lacks the flag
            continue
        rate = float(k) / float(n)
        by_group[str(name)] = {"n": int(n), "count": int(k), "rate": rate}
        if n >= min_group_size:
            rates.append(rate)
        else:
            suppressed.append(str(name))
    if len(rates) >= 2:
        gap, reason = max(rates) - min(rates), None
    else:
        gap, reason = math.nan, _UNDEFINED_GAP
    out: dict[str, Any] = {
        "gap": gap,
        "reason": reason,
        "by_group": by_group,
        "suppressed": sorted(suppressed),
        "n_missing_group": int(n_missing_group),
    }
    if n_missing_flag is not None:
        out["n_missing_flag"] = int(n_missing_flag)
    return out


def gap_verdict(info: dict[str, Any], max_gap: float) -> tuple[bool, dict[str, Any]]:
    """Success and result of a rate-gap expectation from :func:`group_rates`' output (NaN gap: success)."""
    gap = info["gap"]
    success = True if math.isnan(gap) else bool(gap <= max_gap)
    details = {k: v for k, v in info.items() if k != "gap"}
    return success, {"observed_value": as_json_float(gap), "details": details}


def representation_verdict(
    counts: dict[str, int],
    n: int,
    n_missing: int,
    *,
    min_count: int | None,
    min_share: float | None,
    expected_groups: Sequence[str] | None,
) -> tuple[bool, dict[str, Any]]:
    """Success and result of the group-representation expectation from group counts.

    ``counts`` maps each non-missing group to its rows, ``n`` is all rows
    (missing groups included) and ``n_missing`` the rows without a group;
    all three are sums over chunks of a frame.
    """
    counts = dict(counts)
    for g in expected_groups or []:
        counts.setdefault(str(g), 0)
    by_group = {g: {"n": c, "share": (c / n if n else math.nan)} for g, c in sorted(counts.items())}
    below = sorted(
        g
        for g, v in by_group.items()
        if (min_count is not None and v["n"] < min_count)
        or (min_share is not None and not (v["share"] >= min_share))
    )
    smallest = min(counts.values()) if counts else 0
    return bool(counts) and not below, {
        "observed_value": int(smallest),
        "details": {
            "by_group": {g: {"n": v["n"], "share": as_json_float(v["share"])} for g, v in by_group.items()},
            "below": below,
            "n_missing_group": n_missing,
            "reason": None if counts else "the column has no non-missing values",
        },
    }


def proxy_verdict(info: dict[str, Any], max_cramers_v: float, *, bias_correction: bool) -> tuple[bool, dict[str, Any]]:
    """Success and result of the proxy-strength expectation from :func:`cramers_v`' output (NaN V: success)."""
    v = info["value"]
    success = True if math.isnan(v) else bool(v <= max_cramers_v)
    details = {
        "n": info["n"],
        "shape": info["shape"],
        "chi2": as_json_float(info["chi2"]),
        "bias_correction": bias_correction,
        "reason": info["reason"],
    }
    return success, {"observed_value": as_json_float(v), "details": details}


def _boolean_values(flags: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Split a boolean-like column into (is_true, is_known) numpy arrays."""
    if pd.api.types.is_bool_dtype(flags.dtype):
        known = flags.notna().to_numpy()
        values = flags.fillna(False).to_numpy(dtype=bool) if not known.all() else flags.to_numpy(dtype=bool)
        return values & known, known
    known = flags.notna().to_numpy()
    present = flags[known]
    if pd.api.types.is_numeric_dtype(flags.dtype):
        bad = ~present.isin([0, 1])
    else:
        bad = ~present.map(lambda v: isinstance(v, (bool, np.bool_)), na_action="ignore").astype(bool)
    if bad.any():
        examples = sorted({repr(v) for v in present[bad].head(3).tolist()})
        raise ValueError(
            f"column {flags.name!r} must hold booleans (True/False, or 1/0). Got {', '.join(examples)}."
        )
    values = np.zeros(len(flags), dtype=bool)
    values[known] = present.to_numpy().astype(bool)
    return values, known


def cramers_v(
    x: pd.Series,
    y: pd.Series,
    *,
    bins: int = 5,
    bias_correction: bool = True,
) -> dict[str, Any]:
    """Cramér's V between two columns, binning numeric ones at their quantiles.

    Parameters
    ----------
    x, y : pandas.Series
        Aligned columns. A numeric (non-boolean) column with more than
        ``bins`` distinct values is cut into ``bins`` quantile bins.
    bins : int, default 5
        Number of quantile bins for numeric columns.
    bias_correction : bool, default True
        Bergsma's bias-corrected V; False gives the plain statistic (as
        ``scipy.stats.contingency.association(table, method="cramer")``).

    Returns
    -------
    dict
        ``value`` (V, NaN when undefined), ``reason`` (None, or why V is
        undefined), ``n`` (rows with both values), ``shape`` ([rows, columns]
        of the contingency table) and ``chi2``.
    """
    keep = _present(x) & _present(y)
    n = int(keep.sum())
    every = None if n == len(keep) else keep  # no row left out: each column's codes serve every pair it is in
    xc = _category_codes(x, every, bins=bins)
    yc = _category_codes(y, every, bins=bins)
    r = int(xc.max()) + 1 if n else 0
    c = int(yc.max()) + 1 if n else 0
    table = np.bincount(xc * max(c, 1) + yc, minlength=r * c).reshape(r, c).astype(np.float64) if n else None
    return cramers_v_of_table(table, n=n, shape=(r, c), bias_correction=bias_correction)


def cramers_v_of_table(
    table: np.ndarray | None, *, n: int, shape: tuple[int, int], bias_correction: bool = True
) -> dict[str, Any]:
    """Cramér's V of a contingency table (rows: categories of x, columns: of y, both in sorted order).

    The second half of :func:`cramers_v`; a chunked run calls it on the table
    summed over chunks (:mod:`audit.checks._merge`), so the statistic is
    computed by the same arithmetic in the same order as on the whole frame.
    """
    r, c = shape
    out: dict[str, Any] = {"value": math.nan, "reason": None, "n": n, "shape": [r, c], "chi2": math.nan}
    if table is None or min(r, c) < 2:
        out["reason"] = "the contingency table has fewer than two rows or columns"
        return out
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    out["chi2"] = chi2
    phi2 = chi2 / n
    if not bias_correction:
        out["value"] = math.sqrt(phi2 / (min(r, c) - 1))
        return out
    if n < 2:
        out["reason"] = "bias correction needs at least two rows"
        return out
    phi2c = max(0.0, phi2 - (r - 1) * (c - 1) / (n - 1))
    rc = r - (r - 1) ** 2 / (n - 1)
    cc = c - (c - 1) ** 2 / (n - 1)
    denom = min(rc - 1, cc - 1)
    if denom <= 0:
        out["reason"] = "too few rows for the bias-corrected statistic"
        return out
    out["value"] = math.sqrt(phi2c / denom)
    return out


def is_binned_number(values: pd.Series) -> bool:
    """True for a numeric, non-boolean column: Cramér's V cuts it at its quantiles when it has many values."""
    return pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)


def _present(values: pd.Series) -> np.ndarray:
    """Which values are not missing (cached inside :func:`caching`)."""
    return cached(values, "present", lambda v: v.notna().to_numpy(dtype=bool))


def _category_codes(values: pd.Series, keep: np.ndarray | None, *, bins: int) -> np.ndarray:
    """Dense integer codes 0..k-1 of ``values[keep]`` (rows without missing values; None: every row).

    The codes of every row are computed once per column inside :func:`caching`.

    A numeric (non-boolean) column with more than ``bins`` distinct values is
    cut at its quantiles into at most ``bins`` right-closed bins; when a
    quantile repeats (a point mass, e.g. most incomes are 0) the tied values
    form their own bin instead of swallowing the others. Anything else is used
    as categories.
    """
    if keep is None:
        return cached(values, f"category_codes:{bins}", lambda v: _category_codes_of(v, None, bins))
    return _category_codes_of(values, keep, bins)


def _category_codes_of(values: pd.Series, keep: np.ndarray | None, bins: int) -> np.ndarray:
    """:func:`_category_codes`, computed."""
    coded = None
    if is_binned_number(values):
        x = values.to_numpy(dtype=np.float64, na_value=np.nan)
        if keep is None:  # the distinct values counted from the column's codes (the pair counts number it too)
            coded = factorized(values)
            distinct = len(coded[1]) + int(bool(np.isnan(x).any()))  # numpy counts NaN once
        else:
            x = x[keep]
            distinct = len(np.unique(x))
        if distinct > bins:
            edges = np.quantile(x, np.linspace(0.0, 1.0, bins + 1))
            return _dense(np.searchsorted(edges[1:-1], x, side="left"))
    codes, _ = coded or factorized(values)
    return _dense(codes if keep is None else codes[keep])


def parse_age_lists(values: pd.Series, *, min_age: int, max_age: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse ``;``-separated age lists such as ``child_ages`` (vectorised, pyarrow).

    Parameters
    ----------
    values : pandas.Series
        Text such as ``"4;9"`` or ``""`` (no children). Missing values are
        not well-formed.
    min_age, max_age : int
        The band of ages to count, inclusive.

    Returns
    -------
    well_formed : numpy.ndarray of bool
        True where the value is ``""`` or whole numbers (at most three digits)
        joined by ``;``.
    n_in_band : numpy.ndarray of int64
        Per row, the number of ages within ``[min_age, max_age]``.
    n_ages : numpy.ndarray of int64
        Per row, the number of ages. Both counts are 0 where not well-formed.

    Raises
    ------
    ValueError
        When the column does not hold text.
    """
    n = len(values)
    if not pd.api.types.is_string_dtype(values.dtype):
        raise ValueError(f"column {values.name!r} must hold text such as '4;9'. Got dtype {values.dtype}.")
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return np.zeros(0, dtype=bool), empty, empty
    codes, (well_formed, parent, ages) = cached(values, "age_lists", _age_lists_by_value)
    k = len(well_formed)
    in_band = (ages >= min_age) & (ages <= max_age)
    by_value = np.append(np.bincount(parent[in_band], minlength=k), 0)  # the last: a missing value (code -1)
    n_ages = np.append(np.bincount(parent, minlength=k), 0)
    return np.append(well_formed, False)[codes], by_value[codes].astype(np.int64), n_ages[codes].astype(np.int64)


def _age_lists_by_value(values: pd.Series) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Each row's code among the column's distinct values, and :func:`_age_list_parts` of those values.

    A household's list of ages recurs in many rows: each distinct list is
    parsed once (the codes are shared with the rest of the run,
    :func:`audit._arrays.codes_of`).
    """
    codes, uniques = codes_of(values)
    return codes, _age_list_parts(pd.Series(uniques, dtype="str"))


def _age_list_parts(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(well_formed per row, row of each age, each age) of an age-list column without missing values."""
    arr = pa.array(values.astype("str"), type=pa.large_string(), from_pandas=True)
    well_formed = pc.fill_null(pc.match_substring_regex(arr, _AGE_LIST_PATTERN), False)
    clean = pc.if_else(well_formed, arr, pa.scalar("", pa.large_string()))
    parts = pc.split_pattern(clean, ";")
    flat = pc.list_flatten(parts)
    parent = pc.list_parent_indices(parts).to_numpy()
    nonempty = pc.not_equal(flat, "").to_numpy(zero_copy_only=False)
    ages = pc.cast(pc.filter(flat, pa.array(nonempty)), pa.int64()).to_numpy()
    return well_formed.to_numpy(zero_copy_only=False), parent[nonempty], ages


def conditional_range_ok(
    when: pd.Series,
    values: pd.Series,
    *,
    value_set: Sequence[Any],
    min_value: float | None = None,
    max_value: float | None = None,
    allow_missing: bool = True,
) -> np.ndarray:
    """Row verdict of a conditional range rule: where ``when`` is in ``value_set``, ``values`` is in range.

    Parameters
    ----------
    when : pandas.Series
        The column that decides whether the rule applies (e.g.
        ``application_type``); missing values never match.
    values : pandas.Series
        A numeric column (e.g. ``months_on_assistance``).
    value_set : sequence
        Values of ``when`` for which the rule applies.
    min_value, max_value : float, optional
        Inclusive bounds.
    allow_missing : bool, default True
        Whether a missing value passes where the rule applies.

    Returns
    -------
    numpy.ndarray of bool
        True where the row passes (always where the rule does not apply).

    Raises
    ------
    ValueError
        When ``values`` is not numeric.
    """
    if not (pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)):
        raise ValueError(f"column {values.name!r} must be numeric. Got dtype {values.dtype}.")
    applies = when.isin(list(value_set)).to_numpy(dtype=bool, na_value=False)
    x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(x)
    in_range = ~missing
    if min_value is not None:
        in_range &= x >= min_value
    if max_value is not None:
        in_range &= x <= max_value
    return ~applies | np.where(missing, allow_missing, in_range)


def personnummer_rows(frame: pd.DataFrame, *, ignore_columns: Sequence[str] = ()) -> dict[str, Any]:
    """Find rows with a personnummer-shaped value in any text column.

    The shape is the privacy gate's (:data:`audit._privacy.PNR_PATTERN`), found
    with the gate's own search (:func:`audit._privacy.arrow_pnr_rows`), so a
    check flags exactly the texts the gate would mask.

    Parameters
    ----------
    frame : pandas.DataFrame
        Any frame; text columns are those of ``str``/``string`` or ``object``
        dtype (objects are converted with ``str``).
    ignore_columns : sequence of str, optional
        Text columns not to scan.

    Returns
    -------
    dict
        ``positions`` (sorted row positions with a hit, numpy int64),
        ``by_column`` ({column: rows with a hit}, only columns with hits) and
        ``columns_scanned``.
    """
    hit = np.zeros(len(frame), dtype=bool)
    by_column: dict[str, int] = {}
    scanned: list[str] = []
    for name in frame.columns:
        col = frame[name]
        if name in ignore_columns or not (pd.api.types.is_string_dtype(col.dtype) or col.dtype == object):
            continue
        scanned.append(str(name))
        text = col if pd.api.types.is_string_dtype(col.dtype) and col.dtype != object else col.astype("str")
        found = arrow_pnr_rows(pa.array(text, type=pa.large_string(), from_pandas=True))  # the gate's own search
        if found.any():
            by_column[str(name)] = int(found.sum())
            hit |= found
    return {"positions": np.flatnonzero(hit).astype(np.int64), "by_column": by_column, "columns_scanned": scanned}
