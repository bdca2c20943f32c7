"""Subgroups: conjunctions of conditions on the columns of the case frame.

A subgroup that nobody named must still be a sentence an auditor can read
and a municipality can check against its own rules: "applied on paper and
needs an interpreter", "at most 29 years old and new in Sweden". Subgroup
discovery (:mod:`audit.metrics._discovery`) therefore searches conjunctions
of simple conditions, one per column:

* a categorical or boolean column gives ``column = value`` for each of its
  :data:`MAX_LEVELS` most frequent values, ``column ≠ value`` (a known value
  other than this one) when it has three to :data:`NEGATED_LEVELS` values
  (``birth_region ≠ sweden``; with many values, "anything but one" is nearly
  everyone), and
  ``column is missing`` when values are missing;
* a numeric column is cut at the quantiles of the search half into ``bins``
  bins (a column with at most ``bins`` distinct values keeps each value);
  each bin gives a condition (``30 < applicant_age ≤ 44``, or
  ``income_wages = 0`` when a bin holds one value), and the inner cut
  points give the one-sided ``column ≤ x`` and ``column > x``.

Each column is coded once: every case gets a small integer *level code*, and
a condition is a set of level codes (a column of the boolean ``member``
matrix). Counting a condition, or every condition of a column within a
group, is then one ``numpy.bincount`` over the level codes, and a
conjunction's cases are the AND of one table look-up per condition.

A value that holds a personal identity number (personnummer) names a
person, not a group: it never becomes a condition, so it cannot reach a
report, ``results.json`` or the command line through a group's definition.

Levels, cut points and the conditions kept come from the search half alone,
so that the test half plays no part in defining the groups it tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from audit._privacy import looks_like_personnummer

__all__ = ["MAX_LEVELS", "NEGATED_LEVELS", "Condition", "EncodedFeature", "encode_features", "subgroup_mask"]

MAX_LEVELS = 32
"""Values of a categorical column that get their own condition (the most frequent on the search half)."""

NEGATED_LEVELS = 8
"""A categorical column with 3 to this many values also gets ``column ≠ value`` conditions."""

Op = Literal["=", "!=", "<=", ">", "in", "missing"]
"""The operators of a condition."""


def _num(value: float) -> str:
    v = float(value)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.6g}"


def _shown(value: Any) -> str:
    text = str(value)
    return '""' if text.strip() == "" else text


@dataclass(frozen=True)
class Condition:
    """One condition of a subgroup's definition.

    Attributes
    ----------
    feature : str
        The column.
    op : {"=", "!=", "<=", ">", "in", "missing"}
        ``=`` and ``!=`` compare with a value (``!=`` leaves out missing
        values); ``<=`` and ``>`` with a number; ``in`` is the bin
        ``low < x <= high`` (``low`` or ``high`` None for an open end);
        ``missing`` is a missing value.
    value : str, float, tuple of float or None, or None
        The value, the number, or ``(low, high)``.
    """

    feature: str
    op: Op
    value: Any = None

    @property
    def text(self) -> str:
        """The condition as a reader sees it: ``applicant_age ≤ 29``."""
        f, v = self.feature, self.value
        if self.op == "=":
            return f"{f} = {_num(v) if isinstance(v, float) else _shown(v)}"
        if self.op == "!=":
            return f"{f} ≠ {_shown(v)}"
        if self.op == "<=":
            return f"{f} ≤ {_num(v)}"
        if self.op == ">":
            return f"{f} > {_num(v)}"
        if self.op == "missing":
            return f"{f} is missing"
        low, high = v
        if low is None:
            return f"{f} ≤ {_num(high)}"
        if high is None:
            return f"{f} > {_num(low)}"
        return f"{_num(low)} < {f} ≤ {_num(high)}"

    def to_dict(self) -> dict[str, Any]:
        """``{feature, op, value, text}`` with JSON-safe values."""
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"feature": self.feature, "op": self.op, "value": value, "text": self.text}


@dataclass
class EncodedFeature:
    """A column coded once per case: level codes, and which levels each condition takes.

    Codes ``0 .. L-1`` are levels, ``L`` is a value without a level of its own
    (a rare category, or a category not seen on the search half) and ``L + 1``
    is a missing value. ``member[:, c]`` is True for the codes that condition
    ``c`` takes.
    """

    name: str
    codes: np.ndarray
    member: np.ndarray
    conditions: list[Condition]
    search_codes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))


def _categorical(name: str, values: pd.Series, search: np.ndarray) -> EncodedFeature:
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    counts = np.bincount(codes[search] + 1, minlength=len(uniques) + 1)[1:]
    order = [i for i in np.argsort(-counts, kind="stable") if counts[i] > 0][:MAX_LEVELS]
    if order:  # a value holding a personnummer names a person, not a group: it gets no condition
        personal = looks_like_personnummer(pd.Series([str(uniques[i]) for i in order])).to_numpy(dtype=bool)
        order = [i for i, p in zip(order, personal, strict=True) if not p]
    n_levels = len(order)
    lut = np.full(len(uniques) + 1, n_levels, dtype=np.int64)  # unseen or rare: "other"
    lut[np.asarray(order, dtype=np.int64)] = np.arange(n_levels)
    lut[-1] = n_levels + 1  # missing (factorize code -1)
    level_codes = lut[codes]
    labels = [uniques[i] for i in order]
    values_shown = [bool(v) if isinstance(v, (bool, np.bool_)) else str(v) for v in labels]
    conditions: list[Condition] = []
    columns: list[np.ndarray] = []
    for j, v in enumerate(values_shown):
        col = np.zeros(n_levels + 2, dtype=bool)
        col[j] = True
        conditions.append(Condition(name, "=", v))
        columns.append(col)
    if 3 <= n_levels <= NEGATED_LEVELS:
        for j, v in enumerate(values_shown):
            col = np.ones(n_levels + 2, dtype=bool)
            col[j] = False
            col[n_levels + 1] = False
            conditions.append(Condition(name, "!=", v))
            columns.append(col)
    return _encoded(name, level_codes, search, n_levels, conditions, columns)


def _numeric(name: str, values: np.ndarray, search: np.ndarray, bins: int) -> EncodedFeature:
    xs = values[search]
    srt = np.sort(xs[~np.isnan(xs)])
    if srt.size == 0:
        return EncodedFeature(name, np.full(values.size, 1, dtype=np.int32), np.zeros((2, 0), dtype=bool), [])
    distinct = np.unique(srt) if srt.size <= 2_000_000 else None
    if distinct is not None and distinct.size <= bins:
        edges = distinct[:-1]
    else:
        cuts = np.quantile(srt, np.arange(1, bins) / bins, method="lower")
        edges = np.unique(cuts)
        edges = edges[edges < srt[-1]]
    n_bins = edges.size + 1
    codes = np.searchsorted(edges, values, side="left").astype(np.int64)
    codes[np.isnan(values)] = n_bins + 1
    # the observed range of each bin on the search half: a bin holding one value reads "= value"
    bounds = np.searchsorted(srt, edges, side="right")
    starts = np.concatenate([[0], bounds])
    stops = np.concatenate([bounds, [srt.size]])
    conditions: list[Condition] = []
    columns: list[np.ndarray] = []
    for j in range(n_bins):
        if stops[j] <= starts[j]:
            continue
        lo_obs, hi_obs = srt[starts[j]], srt[stops[j] - 1]
        col = np.zeros(n_bins + 2, dtype=bool)
        col[j] = True
        if lo_obs == hi_obs:
            conditions.append(Condition(name, "=", float(lo_obs)))
        else:
            low = None if j == 0 else float(edges[j - 1])
            high = None if j == n_bins - 1 else float(edges[j])
            conditions.append(Condition(name, "in", (low, high)))
        columns.append(col)
    for j in range(1, n_bins - 1):  # at most edges[j]: bins 0..j (j = 0 is the first bin itself)
        col = np.zeros(n_bins + 2, dtype=bool)
        col[: j + 1] = True
        conditions.append(Condition(name, "<=", float(edges[j])))
        columns.append(col)
    for j in range(0, n_bins - 2):  # more than edges[j]: bins j+1..last (j = n_bins-2 is the last bin)
        col = np.zeros(n_bins + 2, dtype=bool)
        col[j + 1 : n_bins] = True
        conditions.append(Condition(name, ">", float(edges[j])))
        columns.append(col)
    return _encoded(name, codes, search, n_bins, conditions, columns)


def _encoded(name: str, codes: np.ndarray, search: np.ndarray, n: int, conditions: list[Condition],
             columns: list[np.ndarray]) -> EncodedFeature:
    """The encoded feature of ``n`` levels (code ``n + 1`` is missing), with a ``missing`` condition when searched."""
    if (codes[search] == n + 1).any():
        col = np.zeros(n + 2, dtype=bool)
        col[n + 1] = True
        conditions.append(Condition(name, "missing"))
        columns.append(col)
    member = np.stack(columns, axis=1) if columns else np.zeros((n + 2, 0), dtype=bool)
    return EncodedFeature(name, codes.astype(np.int32), member, conditions)


def encode_features(
    frame: pd.DataFrame, features: Sequence[str], search: np.ndarray, *, bins: int, min_rows: int = 1
) -> list[EncodedFeature]:
    """Code each column once and list its conditions, from the search half alone.

    Parameters
    ----------
    frame : pandas.DataFrame
        The cases.
    features : sequence of str
        Columns to code. Boolean and non-numeric columns are categorical;
        numeric columns are cut at the quantiles of the search half.
    search : numpy.ndarray of int
        Positions of the search half: levels, cut points and the conditions
        kept come from these cases only.
    bins : int
        Quantile bins of a numeric column.
    min_rows : int, default 1
        A condition that holds for fewer than ``min_rows`` cases of the
        search half, or fails for fewer, is dropped: no subgroup with it
        (or a refinement of it) can be large enough, or it says nothing
        (``child_ages ≠ "6;4"`` holds for nearly everyone).

    Returns
    -------
    list of EncodedFeature
        In the order of ``features``.
    """
    out = []
    for name in features:
        s = frame[name]
        if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
            feat = _categorical(name, s, search)
        else:
            feat = _numeric(name, s.to_numpy(dtype="float64", na_value=np.nan), search, bins)
        feat = _prune(feat, search, min_rows)
        feat.search_codes = feat.codes[search]
        out.append(feat)
    return out


def _prune(feat: EncodedFeature, search: np.ndarray, min_rows: int) -> EncodedFeature:
    if not feat.conditions:
        return feat
    levels = np.bincount(feat.codes[search], minlength=feat.member.shape[0]).astype(np.float64)
    support = levels @ feat.member
    keep = (support >= min_rows) & (search.size - support >= min_rows)
    return EncodedFeature(
        feat.name, feat.codes, feat.member[:, keep], [c for c, k in zip(feat.conditions, keep, strict=True) if k]
    )




def subgroup_mask(
    key: tuple[tuple[int, int], ...], features: Sequence[EncodedFeature], *, search: bool = False
) -> np.ndarray:
    """Which cases a conjunction takes; ``key`` holds ``(feature index, condition index)`` pairs.

    Over every case, or with ``search=True`` over the cases of the search half.
    """
    mask: np.ndarray | None = None
    for f, c in key:
        codes = features[f].search_codes if search else features[f].codes
        m = features[f].member[:, c][codes]
        mask = m if mask is None else mask & m
    if mask is None:
        raise ValueError("a subgroup needs at least one condition. Got none.")
    return mask
