"""Secondary suppression across linked tables: a suppressed count is not recoverable from the margins.

An audit publishes the overall count, one table per sensitive attribute and the intersection table. These tests
build populations where, with suppression inside each table alone, a hidden count *is* recovered by subtraction
(the case the issue names), and check with a second method, linear programming over every count the metrics table
publishes (scipy's ``linprog``), that the hidden count is no longer determined.
"""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

from audit.metrics import measure
from audit.metrics._disclosure import linked_suppression
from audit.metrics._table import secondary_suppression

MIN_N = 10


def _frame(cells: dict[tuple[str, str], int]) -> pd.DataFrame:
    sex, region = [], []
    for (s, r), k in cells.items():
        sex += [s] * k
        region += [r] * k
    n = len(sex)
    outcome = np.where(np.arange(n) % 3 == 0, "deny", "grant")
    df = pd.DataFrame({"case_id": [f"c{i}" for i in range(n)], "sex": sex, "region": region, "status": "ok",
                       "outcome": outcome, "final_outcome": outcome,
                       "amount": np.where(outcome == "grant", 100.0, np.nan)})
    df["final_amount"] = df["amount"]
    return df


def _published_counts(table: pd.DataFrame) -> dict[tuple[tuple[str, ...], str], float]:
    """Every case count the table shows: the ``n`` metric's value and every metric's ``n`` (all cases decided)."""
    out: dict[tuple[tuple[str, ...], str], float] = {}
    for row in table.itertuples(index=False):
        attrs = tuple(row.attributes)
        for v in ((row.value if row.metric == "n" else np.nan), row.n):
            if v == v:  # not NaN
                key = (attrs, row.group)
                assert out.get(key, v) == v, key  # every shown count of a group agrees
                out[key] = float(v)
    return out


def _range_of(cells: list[tuple[str, str]], published: dict, target: tuple[str, str]) -> tuple[float, float]:
    """Smallest and largest value of one cell that agree with every published count (an LP, counts >= 0)."""
    index = {c: i for i, c in enumerate(cells)}
    a_eq, b_eq = [], []
    for (attrs, group), v in published.items():
        row = np.zeros(len(cells))
        if attrs == ():
            row[:] = 1
        elif attrs == ("sex",):
            row[[index[c] for c in cells if c[0] == group]] = 1
        elif attrs == ("region",):
            row[[index[c] for c in cells if c[1] == group]] = 1
        else:
            s, r = group.split(" & ")
            row[index[(s, r)]] = 1
        a_eq.append(row)
        b_eq.append(v)
    c = np.zeros(len(cells))
    c[index[target]] = 1
    low = linprog(c, A_eq=np.array(a_eq), b_eq=np.array(b_eq), bounds=(0, None), method="highs")
    high = linprog(-c, A_eq=np.array(a_eq), b_eq=np.array(b_eq), bounds=(0, None), method="highs")
    assert low.status == 0 and high.status == 0
    return low.fun, -high.fun


ROW_ATTACK = {("female", "a"): 50, ("female", "b"): 40, ("female", "c"): 4,
              ("male", "a"): 60, ("male", "b"): 45, ("male", "c"): 30}
"""(female, c) = 4 is suppressed; inside the intersection table its complement is (male, c). Then the female row
shows 50 and 40, the sex table shows 94 women, and 94 - 50 - 40 = 4."""

MARGIN_ATTACK = {("female", "a"): 50, ("female", "b"): 40, ("female", "c"): 20, ("female", "d"): 2,
                 ("male", "a"): 60, ("male", "b"): 45, ("male", "c"): 12, ("male", "d"): 3}
"""Region d (5 cases) is suppressed in the region table and its complement there is region c (32). The
intersection table shows (female, c) = 20 and (male, c) = 12, which give region c = 32, and then the total minus
the regions a, b, c gives region d = 5."""


def _measure(cells: dict[tuple[str, str], int]) -> pd.DataFrame:
    return measure(_frame(cells), sensitive_features=["sex", "region"], intersections=[["sex", "region"]],
                   metrics=["n", "grant_rate"])


@pytest.mark.parametrize(("cells", "target"), [(ROW_ATTACK, ("female", "c")), (MARGIN_ATTACK, ("female", "d")),
                                               (MARGIN_ATTACK, ("male", "d"))])
def test_a_suppressed_intersection_count_is_not_recoverable_by_subtraction(cells: dict, target: tuple) -> None:
    table = _measure(cells)
    published = _published_counts(table)
    assert ((("sex", "region")), " & ".join(target)) not in published  # primary suppression
    low, high = _range_of(list(cells), published, target)
    # before the linked suppression the LP pinned the cell to its true value (low == high == cells[target])
    assert high - low >= MIN_N - 1, (low, high)
    assert low <= cells[target] <= high


def test_without_linked_suppression_the_row_attack_works() -> None:
    """The attack is real: with only the suppression inside each table, the LP recovers the hidden count exactly."""
    keys = [k for k in ROW_ATTACK]
    sizes = np.array([ROW_ATTACK[k] for k in keys], dtype=float)
    inside = secondary_suppression(sizes, sizes < MIN_N, MIN_N)  # the intersection table on its own
    published = {((), "all"): sizes.sum()}
    for s in ("female", "male"):
        published[(("sex",), s)] = sum(v for k, v in ROW_ATTACK.items() if k[0] == s)
    for r in ("a", "b", "c"):
        published[(("region",), r)] = sum(v for k, v in ROW_ATTACK.items() if k[1] == r)
    for k, v, h in zip(keys, sizes, inside, strict=True):
        if not h:
            published[(("sex", "region"), " & ".join(k))] = v
    assert _range_of(keys, published, ("female", "c")) == (4.0, 4.0)


def test_linked_suppression_rules_by_hand() -> None:
    keys = list(ROW_ATTACK)
    tables = {(): ([()], [229]),
              ("sex",): ([("female",), ("male",)], [94, 135]),
              ("region",): ([("a",), ("b",), ("c",)], [110, 85, 34]),
              ("sex", "region"): (keys, [ROW_ATTACK[k] for k in keys])}
    hidden = linked_suppression(tables, MIN_N)
    # female row: c (primary) and then the smallest other, b (40); column c: male c (30); male row: b (45)
    assert dict(zip(keys, hidden[("sex", "region")].tolist(), strict=True)) == {
        ("female", "a"): False, ("female", "b"): True, ("female", "c"): True,
        ("male", "a"): False, ("male", "b"): True, ("male", "c"): True}
    assert not hidden[("sex",)].any() and not hidden[("region",)].any() and not hidden[()].any()
    # every line with a hidden cell has at least two, holding at least MIN_N
    grid = hidden[("sex", "region")].reshape(2, 3)
    sizes = np.array([ROW_ATTACK[k] for k in keys]).reshape(2, 3)
    for line, size in [*zip(grid, sizes, strict=True), *zip(grid.T, sizes.T, strict=True)]:
        assert line.sum() in (0, len(line)) or (line.sum() >= 2 and size[line].sum() >= MIN_N)


def test_linked_suppression_hides_a_line_that_would_reveal_a_hidden_margin() -> None:
    keys = list(MARGIN_ATTACK)
    region = {r: sum(v for k, v in MARGIN_ATTACK.items() if k[1] == r) for r in "abcd"}
    region_hidden = np.array([False, False, True, True])  # d primary, c its complement inside the region table
    tables = {("region",): ([(r,) for r in "abcd"], [region[r] for r in "abcd"]),
              ("sex", "region"): (keys, [MARGIN_ATTACK[k] for k in keys])}
    hidden = linked_suppression(tables, MIN_N)
    assert hidden[("region",)].tolist() == region_hidden.tolist()
    inter = dict(zip(keys, hidden[("sex", "region")].tolist(), strict=True))
    assert inter[("female", "c")] or inter[("male", "c")]  # region c's line is not fully shown


def test_nothing_small_nothing_hidden() -> None:
    cells = {(s, r): 30 + 7 * i for i, (s, r) in enumerate(product(("female", "male"), "abc"))}
    table = _measure(cells)
    assert table["n"].notna().all()
    assert not table["reason"].fillna("").str.contains("secondary suppression").any()


def test_reasons_name_the_secondary_suppression_across_tables() -> None:
    table = _measure(ROW_ATTACK)
    inter = table[table["attributes"].map(len) == 2]
    fb = inter[inter["group"] == "female & b"]
    assert fb["n"].isna().all() and fb.loc[fb["metric"] == "grant_rate", "value"].notna().all()
    assert fb["reason"].str.contains("secondary suppression across tables").all()
