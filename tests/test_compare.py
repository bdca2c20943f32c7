"""Engine comparison: agreement, flips by direction and amount change, checked by hand and with scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from audit import DataError, SpecError
from audit.metrics import COLUMNS, COMPARE_METRICS, compare_decisions
from audit.spec import StatisticsSpec

NO_BOOT = StatisticsSpec(min_group_size=10, bootstrap=0)
FAV = ["grant", "partial"]

# (sex, current decision, current amount, new decision, new amount, cases)
FEMALE = [
    ("female", "grant", 5000.0, "grant", 5000.0, 20),      # agree
    ("female", "grant", 5000.0, "partial", 4000.0, 5),     # both favourable, other label: -1000
    ("female", "deny", 0.0, "deny", np.nan, 15),           # agree; a refusal without an amount pays 0
    ("female", "grant", 5000.0, "deny", np.nan, 6),        # favourable -> unfavourable: -5000
    ("female", "deny", 0.0, "grant", 3000.0, 4),           # unfavourable -> favourable: +3000
]
MALE = [
    ("male", "grant", 4000.0, "grant", 4000.0, 10),
    ("male", "partial", 2000.0, "partial", 2000.0, 5),
    ("male", "deny", 0.0, "refer", np.nan, 5),             # both unfavourable, other label: 0
    ("male", "grant", 6000.0, "deny", 0.0, 12),            # -6000
    ("male", "deny", np.nan, "partial", 2000.0, 8),        # +2000
]


def _frame(spec: list[tuple]) -> pd.DataFrame:
    cols = {"sex": [], "compare_outcome": [], "compare_amount": [], "outcome": [], "amount": []}
    for sex, old, old_amount, new, new_amount, k in spec:
        for key, value in zip(cols, (sex, old, old_amount, new, new_amount)):
            cols[key] += [value] * k
    frame = pd.DataFrame({
        "case_id": pd.Series([f"c{i}" for i in range(len(cols["sex"]))], dtype="str"),
        "sex": pd.Series(cols["sex"], dtype="str"),
        "status": pd.Series(["ok"] * len(cols["sex"]), dtype="str"),
        "outcome": pd.Series(cols["outcome"], dtype="str"),
        "amount": np.array(cols["amount"], dtype=float),
        "compare_outcome": pd.Series(cols["compare_outcome"], dtype="str"),
        "compare_amount": np.array(cols["compare_amount"], dtype=float),
    })
    return frame


def _get(table: pd.DataFrame, metric: str, group: str) -> pd.Series:
    rows = table[(table["metric"] == metric) & (table["group"] == group)]
    assert len(rows) == 1, (metric, group)
    return rows.iloc[0]


def _changes(spec: list[tuple]) -> np.ndarray:
    """Per-case amount change, with a refusal's missing amount as 0."""
    out = []
    for _, old, old_amount, new, new_amount, k in spec:
        new_a = 0.0 if np.isnan(new_amount) and new not in FAV else new_amount
        old_a = 0.0 if np.isnan(old_amount) and old not in FAV else old_amount
        out += [new_a - old_a] * k
    return np.array(out)


def test_values_by_hand() -> None:
    """female (50 cases): agreement (20 + 15)/50 = 0.7, flips 10/50, to unfavourable 6/(20+5+6),
    to favourable 4/(15+4), mean change (5*-1000 + 6*-5000 + 4*3000)/50 = -460 SEK.
    male (40 cases): agreement (10 + 5)/40, flips 20/40, to unfavourable 12/(10+5+12), to favourable
    8/(5+8), mean change (12*-6000 + 8*2000)/40 = -1400 SEK.
    """
    t = compare_decisions(_frame(FEMALE + MALE), sensitive_features=["sex"], favourable=FAV, statistics=NO_BOOT)
    assert list(t.columns) == list(COLUMNS)
    assert list(dict.fromkeys(t["metric"])) == list(COMPARE_METRICS)
    expected = {
        "agreement": (0.7, 0.375, 50 / 90), "flip_rate": (0.2, 0.5, 30 / 90),
        "flip_to_unfavourable": (6 / 31, 12 / 27, 18 / 58), "flip_to_favourable": (4 / 19, 8 / 13, 12 / 32),
        "mean_amount_change": (-460.0, -1400.0, (-23000 - 56000) / 90),
    }
    for metric, (female, male, overall) in expected.items():
        assert _get(t, metric, "female").value == pytest.approx(female, rel=1e-12), metric
        assert _get(t, metric, "male").value == pytest.approx(male, rel=1e-12), metric
        assert _get(t, metric, "all").value == pytest.approx(overall, rel=1e-12), metric
    r = _get(t, "flip_to_unfavourable", "male")
    assert (r["count"], r.n) == (12, 27)
    # the reference is the group with the most compared cases
    assert _get(t, "agreement", "male").reference_group == "female"
    assert _get(t, "agreement", "male").difference == pytest.approx(0.375 - 0.7)
    assert np.isnan(_get(t, "mean_amount_change", "male").ratio)  # not meaningful for a signed amount


def test_intervals_and_tests_against_scipy() -> None:
    t = compare_decisions(_frame(FEMALE + MALE), sensitive_features=["sex"], favourable=FAV, statistics=NO_BOOT)
    for metric, group, k, n in (("agreement", "male", 15, 40), ("flip_to_favourable", "female", 4, 19)):
        r = _get(t, metric, group)
        ci = stats.binomtest(k, n).proportion_ci(method="wilson")
        assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    r = _get(t, "agreement", "male")
    assert r.p_value == pytest.approx(stats.chi2_contingency([[15, 25], [35, 15]], correction=False).pvalue)
    assert r.test == "two-proportion z-test"
    r = _get(t, "flip_to_favourable", "male")  # an expected count below 5: Fisher's exact test
    assert r.p_value == pytest.approx(stats.fisher_exact([[8, 5], [4, 15]]).pvalue)
    assert r.test == "Fisher's exact test"
    # mean amount change: Student's t interval per group, Welch's test and interval between groups
    female, male = _changes(FEMALE), _changes(MALE)
    r = _get(t, "mean_amount_change", "female")
    low, high = stats.t.interval(0.95, len(female) - 1, loc=female.mean(), scale=stats.sem(female))
    assert (r.ci_low, r.ci_high) == pytest.approx((low, high), rel=1e-9)
    r = _get(t, "mean_amount_change", "male")
    welch = stats.ttest_ind(male, female, equal_var=False)
    assert r.p_value == pytest.approx(welch.pvalue, rel=1e-9)
    ci = welch.confidence_interval(0.95)
    assert (r.diff_ci_low, r.diff_ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert r.test == "Welch's t-test"


def test_bootstrap_difference_interval_matches_a_row_bootstrap() -> None:
    frame = _frame(FEMALE + MALE)
    t = compare_decisions(frame, sensitive_features=["sex"], favourable=FAV,
                          statistics=StatisticsSpec(bootstrap=4000), seed=1)
    r = _get(t, "flip_to_unfavourable", "male")
    # independent: resample the 90 rows with replacement and recompute by the definition
    rng = np.random.default_rng(8)
    idx = rng.integers(0, len(frame), size=(4000, len(frame)))
    sex = frame["sex"].to_numpy()[idx]
    old_fav = frame["compare_outcome"].isin(FAV).to_numpy()[idx]
    new_fav = frame["outcome"].isin(FAV).to_numpy()[idx]
    rate = {g: ((sex == g) & old_fav & ~new_fav).sum(1) / ((sex == g) & old_fav).sum(1) for g in ("female", "male")}
    ref = np.quantile(rate["male"] - rate["female"], [0.025, 0.975])
    width = ref[1] - ref[0]
    assert abs(r.diff_ci_low - ref[0]) < 0.1 * width and abs(r.diff_ci_high - ref[1]) < 0.1 * width
    pd.testing.assert_frame_equal(
        t, compare_decisions(frame, sensitive_features=["sex"], favourable=FAV,
                             statistics=StatisticsSpec(bootstrap=4000), seed=1))


def test_cases_left_out_are_counted() -> None:
    frame = _frame(FEMALE + MALE)
    frame.loc[0, "status"] = "error"                     # engine error: left out
    frame.loc[1, "compare_outcome"] = np.nan             # no current decision: left out
    frame.loc[2, "outcome"] = "error"                    # no audited decision: left out
    frame.loc[3, "amount"] = np.nan                      # favourable, amount unknown: left out of the amount only
    t = compare_decisions(frame, sensitive_features=["sex"], favourable=FAV, statistics=NO_BOOT)
    r = _get(t, "agreement", "female")
    assert (r["count"], r.n) == (32, 47)  # three of the 20 agreeing grants are gone
    for text in ("1 case(s) with a status other than ok left out", "1 case(s) without an audited outcome left out",
                 "1 case(s) without a compare_outcome left out"):
        assert text in r.reason
    r = _get(t, "mean_amount_change", "female")
    assert r.n == 46 and "1 favourable decision(s) without an amount left out" in r.reason
    assert r.value == pytest.approx(-23000 / 46)
    assert _get(t, "agreement", "male").reason == ""


def test_small_groups_are_suppressed_and_missing_values_form_a_group() -> None:
    frame = _frame(FEMALE + MALE + [("x", "grant", 100.0, "deny", 0.0, 3)])
    frame.loc[frame.index[:2], "sex"] = None
    t = compare_decisions(frame, sensitive_features=["sex"], favourable=FAV, statistics=NO_BOOT)
    x = t[t["group"] == "x"]
    assert x["suppressed"].all() and x["value"].isna().all() and x["ci_low"].isna().all()
    # issue 19: the exact count of a suppressed group is disclosed nowhere (was "the group has 3 cases < ...")
    assert set(x["reason"]) == {"suppressed: the group has fewer than min_group_size 10 cases"}
    missing = t[t["group"] == "(missing)"]
    assert missing["suppressed"].all() and missing["n"].isna().all()  # issue 19: was (n == 2).any()
    # a rate with a zero denominator is NaN with a reason, never 0
    only_grants = _frame([("female", "grant", 10.0, "grant", 10.0, 12)])
    r = _get(compare_decisions(only_grants, sensitive_features=["sex"], favourable=FAV, statistics=NO_BOOT),
             "flip_to_favourable", "female")
    assert np.isnan(r.value) and not r.suppressed
    assert r.reason == "undefined: the denominator (cases with an unfavourable compare_outcome) is 0"


def test_intersections_and_reference_groups() -> None:
    frame = _frame(FEMALE + MALE + FEMALE + MALE)
    frame["region"] = np.where(np.arange(len(frame)) < 90, "sweden", "eu")
    t = compare_decisions(frame, sensitive_features=["sex", "region"], intersections=[["sex", "region"]],
                          favourable=FAV, reference_groups={"sex": "male", "region": "eu"}, statistics=NO_BOOT)
    inter = t[(t["metric"] == "agreement") & (t["attributes"].map(len) == 2)]
    assert inter["group"].tolist() == ["female & eu", "female & sweden", "male & eu", "male & sweden"]
    assert set(inter["reference_group"]) == {"male & eu"}  # the combination of the attributes' references
    assert inter["value"].tolist() == pytest.approx([0.7, 0.7, 0.375, 0.375])


def test_bad_input() -> None:
    frame = _frame(FEMALE + MALE)
    with pytest.raises(DataError, match=r"engine comparison: missing column\(s\) 'compare_outcome'"):
        compare_decisions(frame.drop(columns="compare_outcome"), sensitive_features=["sex"], favourable=FAV)
    bad = frame.astype({"amount": object})
    bad.loc[4, "amount"] = "fem tusen"
    with pytest.raises(DataError, match=r"column 'amount' must hold amounts in SEK \(numbers\). Got 'fem tusen' "
                                        r"for case_id 'c4'."):
        compare_decisions(bad, sensitive_features=["sex"], favourable=FAV)
    bad = frame.copy()
    bad.loc[7, "compare_amount"] = -5.0
    with pytest.raises(DataError, match=r"column 'compare_amount' must hold amounts >= 0 SEK. Got -5.0 for "
                                        r"case_id 'c7'."):
        compare_decisions(bad, sensitive_features=["sex"], favourable=FAV)
    with pytest.raises(DataError, match=r"none of the 90 case\(s\) can be compared.*90 case\(s\) do not have "
                                        r"status ok"):
        compare_decisions(frame.assign(status="error"), sensitive_features=["sex"], favourable=FAV)
    with pytest.raises(SpecError, match=r"favourable must name at least one outcome label. Got \[\]."):
        compare_decisions(frame, sensitive_features=["sex"], favourable=[])
    with pytest.raises(DataError, match=r"reference_groups: 'other' is not a group of sex. Groups in the data: "
                                        r"female, male."):
        compare_decisions(frame, sensitive_features=["sex"], favourable=FAV, reference_groups={"sex": "other"})
