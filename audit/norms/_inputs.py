"""Validation of the case frame for the law's calculation, vectorised.

Every input the rules read is checked row by row; a row with any problem
gets a reason that names the column and the value (all problems, joined with
'; '), and its numbers are left undefined. Nothing is guessed and no row is
dropped. Messages are formatted once per distinct bad value, so validation
stays fast on millions of rows.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from audit._arrays import codes_of
from audit._columns import COST_COLUMNS, INCOME_COLUMNS
from audit.exceptions import CheckCode, DataError, FailureCollector, show_value
from audit.norms._rules import MONTH_PATTERN, RULE_VERSIONS
from audit.norms._tables import AGE_TO_BAND, MAX_AGE, AGE_BANDS

__all__: list[str] = []

_AGES = f"a ';'-separated list of ages 0-{MAX_AGE}"
NEED_COLUMNS: tuple[str, ...] = (
    ("benefit_month", "adults", "other_adults", "child_ages", "children_preschool_lunch")
    + INCOME_COLUMNS
    + ("months_on_assistance",)
    + COST_COLUMNS
)
ELIGIBILITY_COLUMNS: tuple[str, ...] = ("assets", "able_to_work", "registered_af", "follows_plan")
GUIDELINE_COLUMNS: tuple[str, ...] = ("adults", "other_adults", "child_ages") + COST_COLUMNS


class PreparedCases:
    """Validated input arrays and every problem found, row by row."""

    def __init__(self, cases: pd.DataFrame) -> None:
        if not isinstance(cases, pd.DataFrame):
            raise DataError(f"cases must be a pandas DataFrame. Got {type(cases).__name__}.")
        self.cases = cases
        self.n = len(cases)
        self.values: dict[str, np.ndarray] = {}
        self.problems: list[tuple[np.ndarray, str, CheckCode, np.ndarray, np.ndarray]] = []
        self.bad = np.zeros(self.n, dtype=bool)

    def add(self, rows: np.ndarray, column: str, check: CheckCode, values: np.ndarray, messages: np.ndarray) -> None:
        """Record a problem for the rows at positions ``rows``."""
        if len(rows):
            self.problems.append((rows, column, check, values, messages))
            self.bad[rows] = True

    def flag(
        self, mask: np.ndarray, column: str, check: CheckCode, source: pd.Series, template: Callable[[Any], str]
    ) -> None:
        """Record ``template(value)`` for the rows where ``mask`` holds (formatted once per distinct value)."""
        rows = np.flatnonzero(mask)
        if len(rows):
            vals = source.iloc[rows].to_numpy(dtype=object)
            codes, uniques = pd.factorize(pd.Series(vals, dtype=object), use_na_sentinel=False)
            msgs = np.array([template(u) for u in uniques], dtype=object)[codes]
            self.add(rows, column, check, vals, msgs)

    def error_text(self) -> np.ndarray:
        """One string per row: '' or every problem joined with '; '."""
        out = np.full(self.n, "", dtype=object)
        for rows, _, _, _, msgs in self.problems:
            cur = out[rows]
            out[rows] = np.where(cur == "", msgs, cur + "; " + msgs)
        return out

    def failures(self, source: str) -> FailureCollector:
        """Every problem, one failure row per case and problem (check, column, value, case_id, reason)."""
        ids = (
            self.cases["case_id"].to_numpy(dtype=object)
            if "case_id" in self.cases.columns
            else np.asarray(self.cases.index, dtype=object)
        )
        collector = FailureCollector(source, what="the cases", cap=None)
        for rows, col, check, vals, msgs in self.problems:
            collector.add_mask(
                check, column=col, mask=np.ones(len(rows), dtype=bool), values=vals, case_ids=ids[rows], reason=msgs
            )
        return collector

    def column(self, col: str) -> pd.Series | None:
        if col in self.cases.columns:
            return self.cases[col]
        self.add(np.arange(self.n), col, CheckCode.MISSING_COLUMN, np.full(self.n, None, dtype=object),
                 np.full(self.n, f"{col}: the column is missing; the reference rules need it", dtype=object))
        return None


def _amounts(prep: PreparedCases, col: str) -> np.ndarray:
    s = prep.column(col)
    if s is None:
        return np.full(prep.n, np.nan)
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):  # an Excel date cell too
        prep.flag(np.ones(prep.n, dtype=bool), col, CheckCode.DTYPE, s,
                  lambda v: f"{col}: {show_value(v)} is not an amount; expected a number >= 0 (SEK/month)")
        return np.full(prep.n, np.nan)
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan).copy()
    missing = s.isna().to_numpy()
    expected = "expected an amount >= 0 (SEK/month)"
    prep.flag(missing, col, CheckCode.NOT_NULL, s,
              lambda v: f"{col}: the value is missing ({show_value(v)}); {expected}")
    prep.flag(np.isnan(x) & ~missing, col, CheckCode.DTYPE, s,
              lambda v: f"{col}: {show_value(v)} is not a number; expected an amount >= 0 (SEK/month)")
    prep.flag(np.isinf(x), col, CheckCode.DTYPE, s,
              lambda v: f"{col}: {show_value(v)} is not a finite amount (SEK/month)")
    prep.flag(x < 0, col, CheckCode.IN_RANGE, s, lambda v: f"{col}: {show_value(v)} is negative; {expected}")
    x[~np.isfinite(x) | (x < 0)] = np.nan
    return x


def _counts(prep: PreparedCases, col: str, lo: int, hi: int | None = None) -> np.ndarray:
    s = prep.column(col)
    if s is None:
        return np.zeros(prep.n, dtype="int64")
    x = (
        np.full(prep.n, np.nan)
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_datetime64_any_dtype(s)
        else pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    )
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(x) & (x == np.floor(x)) & (x >= lo) & ((x <= hi) if hi is not None else True)
    if hi is None:
        expected = f"a whole number >= {lo}"
    else:
        expected = f"{lo} or {hi}" if hi == lo + 1 else f"a whole number {lo}-{hi}"
    prep.flag(~ok, col, CheckCode.IN_RANGE, s, lambda v: f"{col}: {show_value(v)} is not {expected}")
    return np.where(ok, np.nan_to_num(x), 0).astype("int64")


def _flags(prep: PreparedCases, col: str) -> np.ndarray:
    s = prep.column(col)
    if s is None:
        return np.zeros(prep.n, dtype=bool)
    if s.dtype == bool:
        return s.to_numpy()
    raw = s.to_numpy(dtype=object)
    ok = np.fromiter((isinstance(v, (bool, np.bool_)) for v in raw), dtype=bool, count=prep.n)
    missing = s.isna().to_numpy()
    prep.flag(~ok & missing, col, CheckCode.NOT_NULL, s,
              lambda v: f"{col}: the value is missing ({show_value(v)}); expected true or false")
    prep.flag(~ok & ~missing, col, CheckCode.DTYPE, s, lambda v: f"{col}: {show_value(v)} is not true or false")
    return np.where(ok, raw, False).astype(bool)


def _months(prep: PreparedCases, years_available: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Return (norm year, rule version index) per row; -1 where the month is unusable."""
    s = prep.column("benefit_month")
    year = np.full(prep.n, -1, dtype="int64")
    rule = np.full(prep.n, -1, dtype="int64")
    if s is None:
        return year, rule
    if isinstance(s.dtype, pd.PeriodDtype) or pd.api.types.is_datetime64_any_dtype(s):
        s = s.dt.strftime("%Y-%m")
    codes, uniques = codes_of(s, missing_code=True)  # numbered once per column (the law's and the engine's need)
    u_year = np.full(len(uniques), -1, dtype="int64")
    u_rule = np.full(len(uniques), -1, dtype="int64")
    u_state = np.zeros(len(uniques), dtype="int64")  # 0 ok, 1 malformed, 2 no table
    for i, u in enumerate(uniques):
        m = MONTH_PATTERN.match(u) if isinstance(u, str) else None
        if m is None:
            u_state[i] = 1
            continue
        y, month = int(m.group(1)), f"{m.group(1)}-{m.group(2)}"
        versions = [j for j, v in enumerate(RULE_VERSIONS) if v.effective_from <= month]
        if y not in years_available or not versions:
            u_state[i] = 2
            continue
        u_year[i], u_rule[i] = y, versions[-1]
    state = u_state[codes]
    prep.flag(state == 1, "benefit_month", CheckCode.DTYPE, s,
              lambda v: f"benefit_month: {show_value(v)} is not a month in the form YYYY-MM")
    span = f"{min(years_available)}-{max(years_available)}" if years_available else "none"
    prep.flag(state == 2, "benefit_month", CheckCode.IN_RANGE, s,
              lambda v: f"benefit_month: {show_value(v)} is outside the years that have riksnorm tables ({span})")
    return u_year[codes], u_rule[codes]


_MAX_CHILDREN = 30
"""More ';'-separated items than this cannot be a household's children."""

_AGE_TOKENS = {**{str(a): a for a in range(MAX_AGE + 1)}, **{f"0{a}": a for a in range(10)}}


def _parse_ages(value: Any) -> tuple[int, ...] | None:
    """Parse one distinct ``child_ages`` value; None when it does not parse.

    '' is no children; otherwise whole numbers 0-20 separated by ';' (spaces
    around them allowed). A single number (a column that a CSV reader made
    numeric) is one child. Texts are parsed once per process (the same lists
    recur in every chunk and in both the engine's and the law's need).
    """
    if isinstance(value, str):
        return _parse_age_text(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        f = float(value)
        return (int(f),) if math.isfinite(f) and f == int(f) and 0 <= f <= MAX_AGE else None
    return None


@functools.lru_cache(maxsize=1 << 16)
def _parse_age_text(value: str) -> tuple[int, ...] | None:
    """:func:`_parse_ages` of a text (cached: the distinct age lists of a population are few)."""
    text = value.strip()
    if not text:
        return ()
    parts = text.split(";")
    if len(parts) > _MAX_CHILDREN:
        return None
    try:
        return tuple(_AGE_TOKENS[p.strip()] for p in parts)
    except KeyError:
        return None


def _ages(prep: PreparedCases) -> None:
    """Parse ``child_ages`` once per distinct value.

    Stores in ``prep.values``: ``age_code`` (row -> distinct value; invalid
    rows point at a last, empty entry), ``u_counts`` (children per age band
    of each distinct value), ``u_young`` (band indices of its children aged
    0-6, oldest first, -1 padded), ``children`` and ``n_young`` per row, and
    ``ages_ok`` (the value parsed).
    """
    v = prep.values
    s = prep.column("child_ages")
    if s is None:
        codes, parsed, ok = np.zeros(prep.n, dtype="int64"), [], np.zeros(prep.n, dtype=bool)
    else:
        codes, uniques = codes_of(s, missing_code=True)
        parsed = [_parse_ages(u) for u in uniques.tolist()]
        u_ok = np.array([p is not None for p in parsed] + [False], dtype=bool)
        ok = u_ok[codes]
        missing = s.isna().to_numpy()
        prep.flag(~ok & missing, "child_ages", CheckCode.NOT_NULL, s,
                  lambda x: f"child_ages: the value is missing ({show_value(x)}); "
                            f"expected '' for no children or {_AGES}")
        prep.flag(~ok & ~missing, "child_ages", CheckCode.DTYPE, s,
                  lambda x: f"child_ages: {show_value(x)} is not {_AGES}")
        codes = np.where(ok, codes, len(parsed))
    rows = [p or () for p in parsed] + [()]
    width = max(1, max(len(r) for r in rows))
    ages = np.full((len(rows), width), -1, dtype="int64")
    for i, r in enumerate(rows):
        ages[i, : len(r)] = r
    bands = np.where(ages >= 0, AGE_TO_BAND[np.clip(ages, 0, MAX_AGE)], -1)
    u_counts = np.stack([(bands == b).sum(axis=1) for b in range(len(AGE_BANDS))], axis=1)
    young = np.where((ages >= 0) & (ages <= 6), bands, -1)
    v["u_young"] = -np.sort(-young, axis=1)
    v["u_counts"] = u_counts
    v["age_code"] = codes
    v["children"] = u_counts.sum(axis=1)[codes]
    v["n_young"] = (v["u_young"] >= 0).sum(axis=1)[codes]
    v["ages_ok"] = ok


def prepare_cases(cases: pd.DataFrame, columns: tuple[str, ...], years: tuple[int, ...]) -> PreparedCases:
    prep = PreparedCases(cases)
    v = prep.values
    if "benefit_month" in columns:
        v["year"], v["rule"] = _months(prep, years)
    v["adults"] = _counts(prep, "adults", 1, 2)
    v["other_adults"] = _counts(prep, "other_adults", 0)
    _ages(prep)
    if "children_preschool_lunch" in columns:
        lunch = _counts(prep, "children_preschool_lunch", 0)
        over = lunch > v["n_young"]
        rows = np.flatnonzero(over & v["ages_ok"])
        if len(rows):
            raw_ages = cases["child_ages"].iloc[rows].to_numpy(dtype=object)
            msgs = np.array(
                [
                    f"children_preschool_lunch: {k} is more than the {m} children aged 0-6 "
                    f"in child_ages {show_value(a)}"
                    for k, m, a in zip(lunch[rows], v["n_young"][rows], raw_ages)
                ],
                dtype=object,
            )
            prep.add(rows, "children_preschool_lunch", CheckCode.CONSISTENCY, lunch[rows].astype(object), msgs)
        v["lunch"] = np.where(over, 0, lunch)
    if "months_on_assistance" in columns:
        v["months"] = _counts(prep, "months_on_assistance", 0)
    for col in INCOME_COLUMNS + COST_COLUMNS + ("assets",):
        if col in columns:
            v[col] = _amounts(prep, col)
    for col in ("able_to_work", "registered_af", "follows_plan"):
        if col in columns:
            v[col] = _flags(prep, col)
    return prep
