"""The one failure collector: every problem first, then one error with one tidy table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit.exceptions import FAILURE_COLUMNS, CheckCode, DataError, EngineError, FailureCollector


def test_single_failure_with_its_own_line_is_the_message() -> None:
    fc = FailureCollector("cases.csv", what="the case ids")
    fc.add(CheckCode.UNIQUE, column="case_id", reason="duplicated case_id",
           line="cases.csv: column 'case_id' has 2 rows with duplicated values.")
    with pytest.raises(DataError) as info:
        fc.raise_if_any()
    assert str(info.value) == "cases.csv: column 'case_id' has 2 rows with duplicated values."
    assert info.value.failures.to_dict("records") == [
        {"check": "unique", "column": "case_id", "value": np.nan, "case_id": np.nan, "reason": "duplicated case_id"}
    ]


def test_several_failures_are_listed_under_one_head_and_extras_follow_the_columns() -> None:
    fc = FailureCollector("log.csv", what="population.recode")
    fc.add(CheckCode.UNMAPPED, column="sex", value="Okänd", reason="has no recode", row=3, source_column="Kön")
    fc.add(CheckCode.UNMAPPED, column="sex", value="X", reason="has no recode", row=7, source_column="Kön")
    assert len(fc) == 2
    assert fc.message() == (
        "log.csv: 2 problem(s) in population.recode:\n"
        "  column 'sex' has no recode. Got 'Okänd'.\n"
        "  column 'sex' has no recode. Got 'X'."
    )
    table = fc.table()
    assert list(table.columns) == [*FAILURE_COLUMNS, "row", "source_column"]
    assert table[["value", "row"]].values.tolist() == [["Okänd", 3], ["X", 7]]


def test_add_mask_takes_one_reason_or_one_per_row_and_keeps_the_order_of_calls() -> None:
    ids = pd.Series(["a", "b", "c", "d"])
    amount = np.array([1.0, -2.0, np.nan, -4.0])
    fc = FailureCollector("engine", cap=None, error=EngineError)
    fc.add(CheckCode.MISSING_CASE_ID, column="case_id", value="z", case_id="z", reason="no answer")
    neg = amount < 0
    fc.add_mask(CheckCode.IN_RANGE, column="amount", mask=neg, values=amount, case_ids=ids,
                reason=np.array([f"amount {v:g} is negative" for v in amount], dtype=object))
    fc.add_mask(CheckCode.NOT_NULL, column="amount", mask=np.isnan(amount), values=amount, case_ids=ids,
                reason="amount is missing")
    table = fc.table()
    assert table["case_id"].tolist() == ["z", "b", "d", "c"]
    assert table["reason"].tolist() == ["no answer", "amount -2 is negative", "amount -4 is negative",
                                        "amount is missing"]
    assert table["check"].tolist() == ["missing_case_id", "in_range", "in_range", "not_null"]
    assert table["value"].tolist()[:3] == ["z", "-2.0", "-4.0"] and pd.isna(table["value"].iloc[3])
    assert fc.lines[1] == "column 'amount' amount -2 is negative. Got -2.0 for 2 case(s) (first case_id 'b')."
    with pytest.raises(EngineError):
        fc.raise_if_any()


def test_cap_limits_the_rows_of_one_vectorised_failure_but_not_the_count() -> None:
    ids = pd.Series([f"c{i}" for i in range(25)])
    capped = FailureCollector("x", cap=10)
    capped.add_mask(CheckCode.DTYPE, column="rent", mask=np.ones(25, dtype=bool), values=["?"] * 25,
                    case_ids=ids, reason="is not a number")
    assert len(capped.table()) == 10 and "for 25 case(s)" in capped.lines[0]
    kept = FailureCollector("x", cap=None)
    kept.add_mask(CheckCode.DTYPE, column="rent", mask=np.ones(25, dtype=bool), values=["?"] * 25,
                  case_ids=ids, reason="is not a number")
    assert kept.table()["case_id"].tolist() == ids.tolist()


def test_extend_appends_another_collectors_failures_in_order() -> None:
    first, second, merged = FailureCollector("b1"), FailureCollector("b2"), FailureCollector("run")
    first.add(CheckCode.IN_SET, column="outcome", value="ok", case_id="1", reason="unknown label")
    second.add_mask(CheckCode.TIMEOUT, column="", mask=np.array([True, True]), values=[None, None],
                    case_ids=["2", "3"], reason="timeout")
    second.add(CheckCode.EXCEPTION, case_id="4", reason="raised")
    for part in (first, second):
        merged.extend(part)
    assert merged.table()["case_id"].tolist() == ["1", "2", "3", "4"]
    assert len(merged) == 3
    assert not FailureCollector("none").table().columns.difference(FAILURE_COLUMNS).size
