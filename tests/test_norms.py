"""Tests of audit.norms: riksnorm tables, the reference engine and municipal guidelines.

Every household test writes its arithmetic in the docstring. The 2026 figures
used (SEK/month, datasets/sweden/riksnorm-2026.yaml): single adult 3 940,
cohabiting adult 3 550 (couple 7 100); children 0: 2 730, 1-2: 3 010,
3: 2 700, 4-6: 3 030, 7-10: 3 820, 11-14: 4 390, 15-18: 4 930, 19-20: 4 980;
with preschool lunch 0: 2 560, 1-2: 2 800, 3: 2 490, 4-6: 2 710; common costs
for 1-7 persons 1 280, 1 410, 1 780, 2 030, 2 310, 2 610, 2 830, +220 per
further person. Law-level rent limit: 133 SEK/m2 x 60 m2 (1-2 adults),
78 m2 (+1 bedroom), 98 m2 (+2), +20 m2 per further bedroom.
"""

from __future__ import annotations

import re
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import audit.norms as norms
from audit._columns import COST_COLUMNS, INCOME_COLUMNS
from audit.exceptions import DataError, SpecError
from audit.norms import (
    NORM_YEARS,
    PROVENANCE_STATUSES,
    REASON_CODES,
    MunicipalGuideline,
    ReferenceEngine,
    ReferenceOptions,
    compute_need,
    load_norm_table,
    rule_version,
)

ROOT = Path(__file__).resolve().parents[1]
SWEDEN = ROOT / "datasets" / "sweden"
GUIDELINES = SWEDEN / "guidelines"


def case(**overrides: object) -> dict[str, object]:
    """A single adult in March 2026 with no income, no costs, no assets, not assessed able to work."""
    row: dict[str, object] = {
        "case_id": "c1",
        "benefit_month": "2026-03",
        "adults": 1,
        "other_adults": 0,
        "child_ages": "",
        "children_preschool_lunch": 0,
        "months_on_assistance": 0,
        "assets": 0.0,
        "able_to_work": False,
        "registered_af": True,
        "follows_plan": True,
    }
    row.update({c: 0.0 for c in INCOME_COLUMNS + COST_COLUMNS})
    row.update(overrides)
    return row


def frame(*rows: dict[str, object]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    return df.astype({"case_id": "str", "benefit_month": "str", "child_ages": "str"})


def decide_one(**overrides: object) -> pd.Series:
    out = ReferenceEngine().decide(frame(case(**overrides)))
    assert len(out) == 1
    return out.iloc[0]


# --------------------------------------------------------------------------
# fixed points of the 2026 table (issue 3)


def test_fixed_points_2026() -> None:
    """Single 3 940 + 1 280 = 5 220; couple 2 x 3 550 + 1 410 = 8 510; child 7-10 3 820;
    child 11-14 4 390; common costs for 4 persons 2 030."""
    t = load_norm_table(2026)
    assert t.personal["single_adult"] + t.common[0] == 5220
    assert t.personal["single_adult"] == 3940 and t.common[0] == 1280
    assert 2 * t.personal["cohabiting_adult"] + t.common[1] == 8510
    assert t.personal["cohabiting_adult"] == 3550 and t.common[1] == 1410
    assert t.personal["child_7_10"] == 3820
    assert t.personal["child_11_14"] == 4390
    assert t.common[3] == 2030


def test_fixed_points_through_the_engine() -> None:
    """Single: 3 940 + 1 280 = 5 220. Couple: 7 100 + 1 410 = 8 510 (no costs, no income)."""
    out = ReferenceEngine().decide(frame(case(case_id="s"), case(case_id="c", adults=2)))
    assert out["norm_amount"].tolist() == [5220.0, 8510.0]
    assert out["amount"].tolist() == [5220.0, 8510.0]
    assert out["outcome"].tolist() == ["grant", "grant"]


# --------------------------------------------------------------------------
# the household norm


def test_single_adult_with_rent_and_electricity() -> None:
    """Norm 3 940 + 1 280 = 5 220; costs 5 000 + 300 = 5 300; need 10 520 -> grant 10 520."""
    r = decide_one(rent=5000.0, electricity=300.0)
    assert r["outcome"] == "grant"
    assert r["norm_amount"] == 5220.0
    assert r["costs_allowed"] == 5300.0
    assert r["amount"] == 10520.0
    assert r["reasons"] == ""


def test_couple_with_school_children_and_child_allowance() -> None:
    """Ages 8 and 12: 7 100 + 3 820 + 4 390 + common(4) 2 030 = 17 340; rent 8 000;
    child allowance 2 500 counted. Need 17 340 + 8 000 - 2 500 = 22 840."""
    r = decide_one(adults=2, child_ages="8;12", rent=8000.0, income_child_allowance=2500.0)
    assert r["norm_amount"] == 17340.0
    assert r["income_counted"] == 2500.0
    assert r["amount"] == 22840.0


def test_single_parent_with_young_children() -> None:
    """Ages 0, 2, 3, 5: 3 940 + 2 730 + 3 010 + 2 700 + 3 030 + common(5) 2 310 = 17 720."""
    assert decide_one(child_ages="0;2;3;5")["norm_amount"] == 17720.0


def test_preschool_lunch_goes_to_the_oldest_young_child_first() -> None:
    """Ages 2 and 5, one at preschool: 3 940 + 3 010 + 2 710 (5 yrs, lunch) + common(3) 1 780 = 11 440.
    Both at preschool: 3 940 + 2 800 + 2 710 + 1 780 = 11 230.
    Ages 0 and 3 with 10, one at preschool: the 3-year-old, 3 940 + 2 730 + 2 490 + 3 820
    + common(4) 2 030 = 15 010."""
    out = ReferenceEngine().decide(
        frame(
            case(case_id="a", child_ages="2;5", children_preschool_lunch=1),
            case(case_id="b", child_ages="5;2", children_preschool_lunch=2),
            case(case_id="c", child_ages="10;0;3", children_preschool_lunch=1),
        )
    )
    assert out["norm_amount"].tolist() == [11440.0, 11230.0, 15010.0]


def test_teenager_and_school_youth() -> None:
    """Couple, ages 16 and 19: 7 100 + 4 930 + 4 980 + common(4) 2 030 = 19 040."""
    assert decide_one(adults=2, child_ages="16;19")["norm_amount"] == 19040.0


def test_household_larger_than_seven() -> None:
    """Couple + 7 children (9 persons), ages 1, 3, 5, 8, 11, 15, 17:
    personal 7 100 + 3 010 + 2 700 + 3 030 + 3 820 + 4 390 + 4 930 + 4 930 = 33 910;
    common 2 830 + 2 x 220 = 3 270; norm 37 180."""
    assert decide_one(adults=2, child_ages="1;3;5;8;11;15;17")["norm_amount"] == 37180.0


def test_common_costs_by_size() -> None:
    """7 persons 2 830; 8 persons 2 830 + 220 = 3 050; 10 persons 2 830 + 3 x 220 = 3 490."""
    t = load_norm_table(2026)
    assert t.common_costs([1, 4, 7, 8, 10]).tolist() == [1280.0, 2030.0, 2830.0, 3050.0, 3490.0]


def test_non_partner_adult_gets_single_costs_and_an_equal_share() -> None:
    """Applicant, an adult lodger and a child aged 10 (3 persons):
    lodger 3 940 + 1 780 / 3 = 4 533.33; applicant and child 3 940 + 3 820 + 1 780 x 2/3 = 8 946.67;
    norm 13 480 (= 3 940 + 3 940 + 3 820 + 1 780)."""
    out = compute_need(frame(case(other_adults=1, child_ages="10")), detail=True).iloc[0]
    assert out["norm_amount"] == pytest.approx(13480.0)
    assert out["norm_other_adults"] == pytest.approx(3940 + 1780 / 3)
    assert out["norm_amount"] - out["norm_other_adults"] == pytest.approx(3940 + 3820 + 1780 * 2 / 3)
    assert load_norm_table(2026).non_partner_adult_norm(3) == pytest.approx(4533.3333333)


def test_couple_with_an_adult_child_at_home() -> None:
    """Couple + adult child aged 22 (other adult): 7 100 + 3 940 + common(3) 1 780 = 12 820."""
    assert decide_one(adults=2, other_adults=1)["norm_amount"] == 12820.0


# --------------------------------------------------------------------------
# income


def test_jobbstimulans_from_six_months() -> None:
    """Wages 8 000, rent 4 000, norm 5 220. Month 6: counted 8 000 x 0.75 = 6 000,
    need 9 220 - 6 000 = 3 220. Month 5: counted 8 000, need 1 220."""
    out = ReferenceEngine().decide(
        frame(
            case(case_id="m6", income_wages=8000.0, rent=4000.0, months_on_assistance=6),
            case(case_id="m5", income_wages=8000.0, rent=4000.0, months_on_assistance=5),
        )
    )
    assert out["income_counted"].tolist() == [6000.0, 8000.0]
    assert out["amount"].tolist() == [3220.0, 1220.0]


def test_jobbstimulans_window_option() -> None:
    """With a 24-month window from month 6: month 29 disregards 25 % (counted 3 000 of 4 000),
    month 30 counts all 4 000."""
    eng = ReferenceEngine(jobbstimulans_window_months=24)
    out = eng.decide(
        frame(
            case(case_id="a", income_wages=4000.0, months_on_assistance=29),
            case(case_id="b", income_wages=4000.0, months_on_assistance=30),
        )
    )
    assert out["income_counted"].tolist() == [3000.0, 4000.0]


@pytest.mark.parametrize("column", INCOME_COLUMNS)
def test_every_income_type_is_counted(column: str) -> None:
    """1 000 of one income type, rent 4 000, month 0: need 5 220 + 4 000 - 1 000 = 8 220."""
    r = decide_one(**{column: 1000.0, "rent": 4000.0})
    assert r["income_counted"] == 1000.0
    assert r["amount"] == 8220.0


def test_all_incomes_add_up() -> None:
    """Incomes 100, 200, ..., 1 000 (in column order) sum to 5 500; month 12 disregards 25 % of
    wages (100 -> 25): counted 5 475. Rent 6 000: need 5 220 + 6 000 - 5 475 = 5 745."""
    incomes = {c: 100.0 * (i + 1) for i, c in enumerate(INCOME_COLUMNS)}
    r = decide_one(rent=6000.0, months_on_assistance=12, **incomes)
    assert r["income_counted"] == 5475.0
    assert r["amount"] == 5745.0


# --------------------------------------------------------------------------
# costs


@pytest.mark.parametrize("column", COST_COLUMNS)
def test_every_cost_type_is_allowed(column: str) -> None:
    """700 of one cost type: allowed in full; need 5 220 + 700 = 5 920."""
    r = decide_one(**{column: 700.0})
    assert r["costs_applied"] == 700.0 and r["costs_allowed"] == 700.0
    assert r["amount"] == 5920.0
    assert r["outcome"] == "grant"


def test_all_costs_add_up() -> None:
    """Costs 100 ... 800 in column order sum to 3 600; need 5 220 + 3 600 = 8 820."""
    costs = {c: 100.0 * (i + 1) for i, c in enumerate(COST_COLUMNS)}
    r = decide_one(**costs)
    assert r["costs_allowed"] == 3600.0
    assert r["amount"] == 8820.0


def test_rent_above_the_law_limit_is_partial() -> None:
    """Single, rent 9 000 > limit 133 x 60 = 7 980: allowed 7 980; need 5 220 + 7 980 = 13 200;
    partial with COST_NOT_REASONABLE."""
    r = decide_one(rent=9000.0)
    assert r["outcome"] == "partial"
    assert r["costs_applied"] == 9000.0
    assert r["costs_allowed"] == pytest.approx(7980.0)
    assert r["amount"] == pytest.approx(13200.0)
    assert r["reasons"] == "COST_NOT_REASONABLE"
    assert r["capped_items"] == "rent"


def test_rent_limit_grows_with_bedrooms() -> None:
    """Couple, ages 8 and 12: 3 bedrooms + living room = 4 rok, 98 m2, limit 133 x 98 = 13 034;
    rent 14 000 -> need 17 340 + 13 034 = 30 374 (partial). Couple + 4 children: 6 rooms,
    98 + 2 x 20 = 138 m2, limit 18 354; rent 18 000 is allowed in full (grant)."""
    out = ReferenceEngine().decide(
        frame(
            case(case_id="a", adults=2, child_ages="8;12", rent=14000.0),
            case(case_id="b", adults=2, child_ages="1;4;8;12", rent=18000.0),
        )
    )
    assert out["costs_allowed"].tolist() == pytest.approx([13034.0, 18000.0])
    assert out["amount"].iloc[0] == pytest.approx(30374.0)
    assert out["outcome"].tolist() == ["partial", "grant"]


def test_cost_limits_option() -> None:
    """Electricity limit 500: electricity 800 -> allowed 500; need 5 220 + 500 = 5 720, partial."""
    r = ReferenceEngine(cost_limits={"electricity": 500}).decide(frame(case(electricity=800.0))).iloc[0]
    assert r["outcome"] == "partial" and r["amount"] == 5720.0 and r["capped_items"] == "electricity"


def test_no_rent_limit_option() -> None:
    """rent_limit_per_sqm None: rent 20 000 allowed in full; need 25 220 (grant)."""
    r = ReferenceEngine(rent_limit_per_sqm=None).decide(frame(case(rent=20000.0))).iloc[0]
    assert r["outcome"] == "grant" and r["amount"] == 25220.0


# --------------------------------------------------------------------------
# eligibility and outcomes


def test_assets_above_buffer_deny() -> None:
    """Default buffer 10 000: assets 10 001 -> deny ASSETS_AVAILABLE, amount 0 (need still 5 220);
    assets 10 000 -> grant 5 220; buffer 20 000 -> 15 000 is kept, grant."""
    out = ReferenceEngine().decide(frame(case(case_id="a", assets=10001.0), case(case_id="b", assets=10000.0)))
    assert out["outcome"].tolist() == ["deny", "grant"]
    assert out["amount"].tolist() == [0.0, 5220.0]
    assert out["reasons"].tolist() == ["ASSETS_AVAILABLE", ""]
    assert out["need_amount"].tolist() == [5220.0, 5220.0]
    assert ReferenceEngine(asset_buffer=20000).decide(frame(case(assets=15000.0)))["outcome"].iloc[0] == "grant"


def test_labour_market_requirement() -> None:
    """Able to work: not registered -> deny; registered but not following the plan -> deny;
    registered and following -> grant 5 220. Not able to work and not registered -> grant (before 2026-10)."""
    out = ReferenceEngine().decide(
        frame(
            case(case_id="a", able_to_work=True, registered_af=False, follows_plan=True),
            case(case_id="b", able_to_work=True, registered_af=True, follows_plan=False),
            case(case_id="c", able_to_work=True, registered_af=True, follows_plan=True),
            case(case_id="d", able_to_work=False, registered_af=False, follows_plan=False),
        )
    )
    assert out["outcome"].tolist() == ["deny", "deny", "grant", "grant"]
    assert out["reasons"].tolist() == ["NOT_AVAILABLE_LABOUR_MARKET"] * 2 + ["", ""]
    assert out["amount"].tolist() == [0.0, 0.0, 5220.0, 5220.0]


def test_no_need_when_income_suffices() -> None:
    """Wages 12 000, rent 5 000: need 5 220 + 5 000 - 12 000 = -1 780 -> deny, amount 0.
    Income 10 220 exactly: need 0 -> deny (no need)."""
    out = ReferenceEngine().decide(
        frame(
            case(case_id="a", income_wages=12000.0, rent=5000.0),
            case(case_id="b", income_pension=10220.0, rent=5000.0),
        )
    )
    assert out["need_amount"].tolist() == [-1780.0, 0.0]
    assert out["outcome"].tolist() == ["deny", "deny"]
    assert out["amount"].tolist() == [0.0, 0.0]
    assert out["reasons"].tolist() == ["NO_NEED_INCOME_SUFFICIENT"] * 2


def test_every_ground_is_listed() -> None:
    """Assets 50 000, able to work and not registered, rent 9 000 (capped to 7 980) and income
    14 000: need 13 200 - 14 000 = -800; every ground is a reason, in the documented order."""
    r = decide_one(assets=50000.0, able_to_work=True, registered_af=False, rent=9000.0, income_other=14000.0)
    assert r["outcome"] == "deny"
    assert r["need_amount"] == pytest.approx(-800.0)
    assert r["reasons"] == "ASSETS_AVAILABLE;NOT_AVAILABLE_LABOUR_MARKET;NO_NEED_INCOME_SUFFICIENT;COST_NOT_REASONABLE"
    assert set(r["reasons"].split(";")) <= set(REASON_CODES)


# --------------------------------------------------------------------------
# years and rule versions


def test_norm_year_follows_benefit_month() -> None:
    """Single: 2023 3 490 + 1 130 = 4 620; 2024 3 790 + 1 230 = 5 020; 2025 3 900 + 1 270 = 5 170;
    2026 5 220. Couple: 2023 6 300 + 1 250 = 7 550; 2024 6 850 + 1 360 = 8 210;
    2025 7 040 + 1 400 = 8 440."""
    months = ["2023-06", "2024-01", "2025-12", "2026-06"]
    out = ReferenceEngine().decide(frame(*[case(case_id=m, benefit_month=m) for m in months]))
    assert out["norm_amount"].tolist() == [4620.0, 5020.0, 5170.0, 5220.0]
    assert out["norm_year"].tolist() == [2023, 2024, 2025, 2026]
    couples = ReferenceEngine().decide(frame(*[case(case_id=m, benefit_month=m, adults=2) for m in months[:3]]))
    assert couples["norm_amount"].tolist() == [7550.0, 8210.0, 8440.0]


def test_rule_version_by_month() -> None:
    """2025-06 -> 2023-01 rules; 2025-07 -> 2025-07 (new SoL); 2026-09 -> 2025-07; 2026-10 -> 2026-10."""
    assert rule_version("2025-06").rule_id == "2023-01"
    assert rule_version("2025-07").rule_id == "2025-07"
    assert rule_version("2026-09").rule_id == "2025-07"
    assert rule_version("2026-10").activity_requirement
    with pytest.raises(DataError, match="YYYY-MM. Got '2026-13'"):
        rule_version("2026-13")


def test_activity_requirement_from_october_2026() -> None:
    """Not able to work, not following the plan, 3 months on assistance: 2026-09 grant 5 220;
    2026-10 deny ACTIVITY_REQUIREMENT_NOT_MET. Exempt with sickness benefit 2 000 (grant
    5 220 - 2 000 = 3 220) or pension 1 000 (grant 4 220); 2 months on assistance -> not yet required."""
    base = {"able_to_work": False, "registered_af": False, "follows_plan": False, "months_on_assistance": 3}
    out = ReferenceEngine().decide(
        frame(
            case(case_id="sep", benefit_month="2026-09", **base),
            case(case_id="oct", benefit_month="2026-10", **base),
            case(case_id="sick", benefit_month="2026-10", income_sickness=2000.0, **base),
            case(case_id="pens", benefit_month="2026-10", income_pension=1000.0, **base),
            case(case_id="new", benefit_month="2026-10", **{**base, "months_on_assistance": 2}),
        )
    )
    assert out["outcome"].tolist() == ["grant", "deny", "grant", "grant", "grant"]
    assert out["reasons"].tolist() == ["", "ACTIVITY_REQUIREMENT_NOT_MET", "", "", ""]
    assert out["amount"].tolist() == [5220.0, 0.0, 3220.0, 4220.0, 5220.0]
    assert out["rule_version"].tolist() == ["2025-07", "2026-10", "2026-10", "2026-10", "2026-10"]


# --------------------------------------------------------------------------
# error rows: never guessed, never dropped


def test_missing_column_is_an_error_row_for_every_case() -> None:
    """Without 'rent' no case can be decided: every row is an error naming the column."""
    df = frame(case(case_id="a"), case(case_id="b")).drop(columns=["rent"])
    out = ReferenceEngine().decide(df)
    assert out["outcome"].tolist() == ["error", "error"]
    assert out["amount"].isna().all()
    assert (out["error"] == "rent: the column is missing; the reference rules need it").all()


def test_negative_amount() -> None:
    """rent -100 is an error row that names the column and the value."""
    r = decide_one(rent=-100.0)
    assert r["outcome"] == "error" and np.isnan(r["amount"]) and np.isnan(r["norm_amount"])
    assert r["error"] == "rent: -100.0 is negative; expected an amount >= 0 (SEK/month)"
    assert r["reasons"] == ""


@pytest.mark.parametrize("ages", ["4;x", "21", "4;;9", "-1", "4.5", "4;", "x"])
def test_unparsable_child_ages(ages: str) -> None:
    """Ages must be whole numbers 0-20 separated by ';'."""
    r = decide_one(child_ages=ages)
    assert r["outcome"] == "error"
    assert r["error"] == f"child_ages: {ages!r} is not a ';'-separated list of ages 0-20"


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("2022-12", "benefit_month: '2022-12' is outside the years that have riksnorm tables (2023-2026)"),
        ("2027-01", "benefit_month: '2027-01' is outside the years that have riksnorm tables (2023-2026)"),
        ("2026-13", "benefit_month: '2026-13' is not a month in the form YYYY-MM"),
        ("March 2026", "benefit_month: 'March 2026' is not a month in the form YYYY-MM"),
    ],
)
def test_benefit_month_outside_tables(month: str, message: str) -> None:
    assert decide_one(benefit_month=month)["error"] == message


def test_other_invalid_values() -> None:
    """Each bad value names its column and value; several problems in one row are all listed."""
    out = ReferenceEngine().decide(
        pd.DataFrame(
            [
                case(case_id="a", adults=3),
                case(case_id="b", income_wages="abc"),
                case(case_id="c", income_wages=np.nan),
                case(case_id="d", child_ages="2", children_preschool_lunch=2),
                case(case_id="e", able_to_work=None),
                case(case_id="g", registered_af="yes"),
                case(case_id="f", other_adults=-1, months_on_assistance=2.5),
            ]
        )
    )
    assert out["error"].tolist() == [
        "adults: 3 is not 1 or 2",
        "income_wages: 'abc' is not a number; expected an amount >= 0 (SEK/month)",
        "income_wages: the value is missing (NaN); expected an amount >= 0 (SEK/month)",
        "children_preschool_lunch: 2 is more than the 1 children aged 0-6 in child_ages '2'",
        "able_to_work: the value is missing (NaN); expected true or false",
        "registered_af: 'yes' is not true or false",
        "other_adults: -1 is not a whole number >= 0; months_on_assistance: 2.5 is not a whole number >= 0",
    ]
    assert (out["outcome"] == "error").all()


def test_nothing_is_dropped() -> None:
    """Seven cases, three undecidable, on a shuffled index with a repeated label: seven rows come
    back in the same order with the same case_ids and index; exactly the bad ones are errors."""
    rows = [
        case(case_id="k1"),
        case(case_id="k2", rent=-1.0),
        case(case_id="k3", adults=2, child_ages="3;9", rent=7000.0),
        case(case_id="k4", benefit_month="2030-01"),
        case(case_id="k5", income_wages=20000.0),
        case(case_id="k6", child_ages="4;x"),
        case(case_id="k7", rent=9000.0),
    ]
    df = frame(*rows)
    df.index = [70, 3, 3, 12, 5, 0, 1]
    out = ReferenceEngine().decide(df)
    assert len(out) == 7
    assert out.index.tolist() == [70, 3, 3, 12, 5, 0, 1]
    assert out["case_id"].tolist() == [f"k{i}" for i in range(1, 8)]
    assert out["outcome"].tolist() == ["grant", "error", "grant", "error", "deny", "error", "partial"]
    assert (out["error"] != "").tolist() == [False, True, False, True, False, True, False]
    need = compute_need(df)
    assert need.index.tolist() == df.index.tolist() and len(need) == 7


def test_case_id_is_required() -> None:
    with pytest.raises(DataError, match="no 'case_id' column"):
        ReferenceEngine().decide(frame(case()).drop(columns=["case_id"]))


def test_needs_only_its_own_columns() -> None:
    """A frame with only case_id and the required columns decides the same as one with extra
    (sensitive) columns: single with rent 5 000 -> 10 220."""
    full = frame(case(rent=5000.0)).assign(sex="female", birth_region="sweden", applicant_age=34)
    eng = ReferenceEngine()
    only = full[["case_id", *eng.required_columns]]
    a, b = eng.decide(full), eng.decide(only)
    pd.testing.assert_frame_equal(a, b)
    assert a["amount"].iloc[0] == 10220.0


def test_empty_frame() -> None:
    out = ReferenceEngine().decide(frame(case()).iloc[:0])
    assert len(out) == 0 and "outcome" in out.columns


def test_decision_frame_columns_and_types() -> None:
    out = ReferenceEngine().decide(frame(case(), case(case_id="x", rent=-5.0)))
    assert list(out.columns[:5]) == ["case_id", "outcome", "amount", "reasons", "error"]
    for col in ("norm_amount", "costs_allowed", "income_counted", "need_amount"):
        assert out[col].dtype == "float64"
    for col in ("outcome", "reasons", "error"):
        assert pd.api.types.is_string_dtype(out[col])
    assert out["amount"].dtype == "float64"


def test_compute_need_columns() -> None:
    need = compute_need(frame(case(rent=9000.0)))
    assert list(need.columns) == [
        "norm_amount",
        "costs_applied",
        "costs_allowed",
        "costs_capped",
        "capped_items",
        "income_counted",
        "need_amount",
        "error",
    ]
    assert need["costs_capped"].dtype == bool and bool(need["costs_capped"].iloc[0])


# --------------------------------------------------------------------------
# a second method: the plain statement of the rules on random households


def test_vectorised_norm_matches_the_plain_rules() -> None:
    """NormTable.household_norm (pure Python, one household at a time) agrees with
    compute_need on 300 seeded random households across all years."""
    rng = np.random.default_rng(7)
    rows, expected = [], []
    for i in range(300):
        year = int(rng.choice(NORM_YEARS))
        ages = tuple(int(a) for a in rng.integers(0, 21, size=rng.integers(0, 9)))
        young = sum(a <= 6 for a in ages)
        lunch = int(rng.integers(0, young + 1))
        adults, others = int(rng.integers(1, 3)), int(rng.integers(0, 3))
        rows.append(
            case(
                case_id=f"r{i}",
                benefit_month=f"{year}-{rng.integers(1, 13):02d}",
                adults=adults,
                other_adults=others,
                child_ages=";".join(map(str, ages)),
                children_preschool_lunch=lunch,
            )
        )
        t = load_norm_table(year)
        expected.append(t.household_norm(adults=adults, other_adults=others, child_ages=ages, preschool_lunch=lunch))
    got = compute_need(frame(*rows))["norm_amount"].to_numpy()
    np.testing.assert_allclose(got, expected)


# --------------------------------------------------------------------------
# the data files


def _r10(x: Decimal) -> int:
    return int((x / 10).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * 10


def test_shipped_years_are_exactly_the_files() -> None:
    files = sorted(int(re.search(r"(\d{4})", p.name).group(1)) for p in SWEDEN.glob("riksnorm-*.yaml"))
    assert tuple(files) == NORM_YEARS


@pytest.mark.parametrize("year", NORM_YEARS[1:])
def test_derived_figures_follow_from_the_previous_year(year: int) -> None:
    """Each 'derived' total equals the previous year's items x (1 + uplift), each item rounded to
    the nearest 10 kr (half up), summed; lunch amounts from the previous amount x (1 + uplift).
    Anchored figures differ from that derivation by at most 1.5 %."""
    prev = yaml.safe_load((SWEDEN / f"riksnorm-{year - 1}.yaml").read_text(encoding="utf-8"))
    cur = yaml.safe_load((SWEDEN / f"riksnorm-{year}.yaml").read_text(encoding="utf-8"))
    table = load_norm_table(year)
    factor = 1 + Decimal(str(cur["uplift_percent"])) / 100
    assert cur["derived_from"] == year - 1
    totals = {k: cur["personal"][k] for k in cur["personal"] if k != "cohabiting_adult"}
    totals["cohabiting_couple"] = 2 * cur["personal"]["cohabiting_adult"]
    totals.update({f"common_{i}": cur["common"][i] for i in range(1, 8)})
    figure = {k: f"personal.{k}" for k in totals}
    figure["cohabiting_couple"] = "personal.cohabiting_adult"
    figure.update({f"common_{i}": f"common.{i}" for i in range(1, 8)})
    checked = 0
    for row, items in prev["items"].items():
        derived_items = {name: _r10(Decimal(v) * factor) for name, v in items.items()}
        derived = sum(derived_items.values())
        status = table.provenance[figure[row]].split(":")[0]
        if status == "derived":
            assert totals[row] == derived, row
            assert cur["items"][row] == derived_items, row
            checked += 1
        else:
            assert status == "anchored", row
            assert abs(totals[row] - derived) <= 0.015 * derived, row
    assert checked >= 10
    for band, amount in prev["preschool_lunch"].items():
        assert cur["preschool_lunch"][band] == _r10(Decimal(amount) * factor)
    assert cur["common"]["increment_beyond_7"] == cur["common"][7] - cur["common"][6]


def test_every_figure_has_a_provenance() -> None:
    for year in NORM_YEARS:
        t = load_norm_table(year)
        assert len(t.provenance) == 10 + 4 + 7 + 1
        assert all(p.split(":")[0] in PROVENANCE_STATUSES for p in t.provenance.values())
    t26 = load_norm_table(2026)
    assert t26.provenance["personal.child_7_10"].startswith("anchored:")
    assert t26.provenance["personal.child_0"].startswith("derived:")


def _copy_table(tmp_path: Path, year: int = 2026) -> tuple[Path, dict]:
    data = yaml.safe_load((SWEDEN / f"riksnorm-{year}.yaml").read_text(encoding="utf-8"))
    return tmp_path / f"riksnorm-{year}.yaml", data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["personal"].update(child_7_10="abc"), "personal.child_7_10 must be a number >= 0. Got 'abc'."),
        (lambda d: d["personal"].update(child_0=-5), "personal.child_0 must be a number >= 0. Got -5."),
        (lambda d: d["personal"].pop("single_adult"), "personal.single_adult is required (a number >= 0)."),
        (lambda d: d.update(colour="red"), "colour is not a known key."),
        (lambda d: d.update(year=2025), "year must be 2026, the year in the file name. Got 2025."),
        (
            lambda d: d["common"].update(increment_beyond_7=200),
            "common.increment_beyond_7 must equal common.7 - common.6 "
            "(2830 - 2610 = 220; the published rule). Got 200.",
        ),
        (lambda d: d["items"]["child_0"].update(food=1000), "items.child_0 must sum to its total 2730. Got 2720."),
        (
            lambda d: d["preschool_lunch"].update(child_3=2800),
            "preschool_lunch.child_3 must not exceed personal.child_3 (2700). Got 2800.",
        ),
        (lambda d: d["provenance"].update(default="guess"), "provenance.default must read '<status>: <how>'"),
    ],
)
def test_bad_table_files_name_file_key_and_value(tmp_path: Path, change, message: str) -> None:
    path, data = _copy_table(tmp_path)
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_norm_table(2026, directory=tmp_path)
    assert f"riksnorm-2026.yaml: {message}" in str(err.value)


def test_missing_table_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no riksnorm table for 2026"):
        load_norm_table(2026, directory=tmp_path)
    with pytest.raises(SpecError, match="no riksnorm table for 2031"):
        load_norm_table(2031)


def test_engine_reads_tables_from_norm_dir(tmp_path: Path) -> None:
    """Copy the tables, raise single_adult 2026 to 4 000: a single person's norm becomes 4 000 + 1 280."""
    for year in NORM_YEARS:
        shutil.copy(SWEDEN / f"riksnorm-{year}.yaml", tmp_path)
    path, data = _copy_table(tmp_path)
    data["personal"]["single_adult"] = 4000
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    eng = ReferenceEngine(norm_dir=str(tmp_path))
    assert eng.decide(frame(case()))["norm_amount"].iloc[0] == 5280.0
    assert eng.definition_hash != ReferenceEngine().definition_hash


# --------------------------------------------------------------------------
# municipal guidelines


def test_trelleborg_caps_rent_and_electricity() -> None:
    """Trelleborg-2019 caps: single rent 5 000 -> 3 901, electricity 600 -> 400.
    need 5 220 + 3 901 + 400 = 9 521; the reference allows both in full: 5 220 + 5 600 = 10 820."""
    g = MunicipalGuideline.from_yaml(GUIDELINES / "trelleborg-2019.yaml")
    df = frame(case(rent=5000.0, electricity=600.0))
    capped = compute_need(df, guideline=g).iloc[0]
    assert capped["costs_allowed"] == 4301.0
    assert capped["need_amount"] == 9521.0
    assert capped["capped_items"] == "rent;electricity"
    ref = ReferenceEngine().decide(df).iloc[0]
    assert ref["outcome"] == "grant" and ref["amount"] == 10820.0


def test_vimmerby_housing_caps_by_household() -> None:
    """Vimmerby-2024 caps: single 4 700; couple 6 400; couple + 3 children 8 400; + 5 children 8 700
    (last row); 2 partners + 1 other adult, no children: the third adult counts as a child, 6 400."""
    g = MunicipalGuideline.from_yaml(GUIDELINES / "vimmerby-2024.yaml")
    df = frame(
        case(case_id="a", rent=9000.0),
        case(case_id="b", adults=2, rent=9000.0),
        case(case_id="c", adults=2, child_ages="1;4;9", rent=9000.0),
        case(case_id="d", adults=2, child_ages="1;4;9;12;15", rent=9000.0),
        case(case_id="e", adults=2, other_adults=1, rent=9000.0),
    )
    allowed = g.allowed_costs(df)
    assert allowed["rent"].tolist() == [4700.0, 6400.0, 8400.0, 8700.0, 6400.0]
    assert compute_need(df, guideline=g)["costs_allowed"].tolist() == [4700.0, 6400.0, 8400.0, 8700.0, 6400.0]


def test_guideline_per_extra_child() -> None:
    """Malmö-style: 1-2 adults 6 300; +1 child 7 625; +2 9 425; +1 800 per further child.
    4 children: 9 425 + 2 x 1 800 = 13 025."""
    g = MunicipalGuideline.from_dict(
        {"name": "malmo-2019", "housing_cap": {"no_children": {1: 6300, 2: 6300},
                                               "children": {1: 7625, 2: 9425}, "per_extra_child": 1800}}
    )
    caps = g.housing_cap(adults=[1, 2, 1, 2], other_adults=[0, 0, 0, 0], children=[0, 1, 2, 4])
    assert caps.tolist() == [6300.0, 7625.0, 9425.0, 13025.0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["cost_caps"].update(rent=100), "cost_caps.rent: rent is capped by housing_cap"),
        (lambda d: d["cost_caps"].update(electricity=-1), "cost_caps.electricity must be a number >= 0. Got -1."),
        (lambda d: d["cost_caps"].update(phone=10), "cost_caps.phone is not a cost column."),
        (lambda d: d.update(colour="red"), "colour is not a known key."),
        (lambda d: d["housing_cap"]["children"].pop(2), "housing_cap.children must have the keys 1, 2."),
        (lambda d: d.update(municipality_code=1287), "municipality_code must be a string. Got 1287."),
    ],
)
def test_bad_guideline_files(tmp_path: Path, change, message: str) -> None:
    data = yaml.safe_load((GUIDELINES / "trelleborg-2019.yaml").read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        MunicipalGuideline.from_yaml(path)
    assert f"g.yaml: {message}" in str(err.value)


def test_guideline_reports_bad_cases() -> None:
    g = MunicipalGuideline.from_yaml(GUIDELINES / "vimmerby-2024.yaml")
    with pytest.raises(DataError) as err:
        g.allowed_costs(frame(case(case_id="x1", rent=-3.0), case(case_id="x2")))
    table = err.value.failures
    assert table[["column", "value", "case_id"]].values.tolist() == [["rent", "-3.0", "x1"]]


# --------------------------------------------------------------------------
# options, identity and the public surface


def test_unknown_or_bad_options() -> None:
    with pytest.raises(SpecError, match="'speed' is not a known option of the reference engine"):
        ReferenceEngine(speed=3)
    with pytest.raises(SpecError, match="The 'jobbstimulans_share' option must be a number between 0 and 1. Got 1.5."):
        ReferenceOptions(jobbstimulans_share=1.5)
    with pytest.raises(SpecError, match="The 'asset_buffer' option must be a number >= 0"):
        ReferenceEngine(asset_buffer=-1)
    with pytest.raises(SpecError, match="'cost_limits' option names 'phone'"):
        ReferenceEngine(cost_limits={"phone": 100})


def test_engine_identity() -> None:
    a, b = ReferenceEngine(), ReferenceEngine(options={"jobbstimulans_share": 0.25})
    assert a.name == "reference"
    assert "2026-10" in a.version
    assert re.fullmatch(r"[0-9a-f]{64}", a.definition_hash)
    assert a.definition_hash == b.definition_hash
    assert ReferenceEngine(asset_buffer=5000).definition_hash != a.definition_hash
    assert ReferenceEngine(rent_limit_per_sqm=120).definition_hash != a.definition_hash


def test_public_surface() -> None:
    """__all__ is sorted and lists only names that exist; every public name is listed."""
    names = norms.__all__
    assert names == sorted(names)
    assert all(hasattr(norms, n) for n in names)
    public = {n for n in vars(norms) if not n.startswith("_") and not isinstance(getattr(norms, n), type(norms))}
    assert public - {"annotations"} <= set(names)
    assert set(REASON_CODES) >= {
        "NO_NEED_INCOME_SUFFICIENT",
        "NOT_AVAILABLE_LABOUR_MARKET",
        "ASSETS_AVAILABLE",
        "COST_NOT_REASONABLE",
        "COST_ABOVE_CAP",
        "ACTIVITY_REQUIREMENT_NOT_MET",
    }
