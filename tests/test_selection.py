"""Selection audits: every figure checked by hand arithmetic or a second method."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from audit import DataError, SpecError
from audit.metrics import COLUMNS, SELECTION_METRICS, measure_selection, population_confusion
from audit.spec import SelectionSpec, StatisticsSpec

SEL = SelectionSpec(column="how", random="random", selected="model", population_size=1000)
NO_BOOT = StatisticsSpec(min_group_size=10, bootstrap=0)


def _rows(spec: list[tuple[str, str, str | None, int]], **extra: list) -> pd.DataFrame:
    """Cases from (sex, how, result, count) tuples; result None is a blank (unfinished) result."""
    sex, how, result = [], [], []
    for s, h, r, k in spec:
        sex += [s] * k
        how += [h] * k
        result += [r] * k
    frame = pd.DataFrame({
        "case_id": pd.Series([f"k{i}" for i in range(len(sex))], dtype="str"),
        "sex": pd.Series(sex, dtype="str"),
        "how": pd.Series(how, dtype="str"),
        "truth_outcome": pd.Series(result, dtype="str"),
    })
    for name, values in extra.items():
        frame[name] = values
    return frame


# female: 40 selected (10 errors), 60 random (6 errors); male: 60 selected (30 errors), 40 random (8 errors)
BASIC = [
    ("female", "model", "error", 10), ("female", "model", "no_error", 30),
    ("female", "random", "error", 6), ("female", "random", "no_error", 54),
    ("male", "model", "error", 30), ("male", "model", "no_error", 30),
    ("male", "random", "error", 8), ("male", "random", "no_error", 32),
]


def _get(table: pd.DataFrame, metric: str, group: str) -> pd.Series:
    rows = table[(table["metric"] == metric) & (table["group"] == group)]
    assert len(rows) == 1, (metric, group, rows)
    return rows.iloc[0]


def _wilson(k: int, n: int) -> tuple[float, float]:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low, ci.high


def _katz(k1: float, n1: float, k0: float, n0: float) -> tuple[float, float]:
    p1, p0 = k1 / n1, k0 / n0
    se = np.sqrt((1 - p1) / k1 + (1 - p0) / k0)
    z = stats.norm.ppf(0.975)
    r = p1 / p0
    return r * np.exp(-z * se), r * np.exp(z * se)


def test_values_by_hand() -> None:
    """S = 100, R = 100, E = 14 (errors found at random), N = 1000.

    female: shares 40/100 and 60/100, ratio 0.4/0.6; base 6/60, hit 10/40;
    error share 6/14, equal burden 0.4/(6/14) = 0.9333; N_g = 1000*0.6 = 600,
    selection rate 40/600; TP 10, FP 30, P = 600*0.1 = 60, FN 50,
    TN 600-40-50 = 510, FPR 30/540, FNR 50/60.
    male: ratio 0.6/0.4; base 8/40, hit 30/60; equal burden 0.6/(8/14) = 1.05;
    N_g = 400, selection rate 60/400; TP 30, FP 30, P 80, FN 50, TN 290,
    FPR 30/320, FNR 50/80.
    overall: base 14/100, hit 40/100, selection rate 100/1000; TP 40, FP 60,
    P 140, FN 100, TN 800, FPR 60/860, FNR 100/140.
    """
    t = measure_selection(_rows(BASIC), selection=SEL, sensitive_features=["sex"], statistics=NO_BOOT)
    assert list(t.columns) == list(COLUMNS)
    expected = {
        ("selected_share", "female"): 0.4, ("selected_share", "male"): 0.6,
        ("random_share", "female"): 0.6, ("random_share", "male"): 0.4,
        ("selection_ratio", "female"): 0.4 / 0.6, ("selection_ratio", "male"): 1.5,
        ("base_rate", "female"): 0.1, ("base_rate", "male"): 0.2, ("base_rate", "all"): 0.14,
        ("hit_rate", "female"): 0.25, ("hit_rate", "male"): 0.5, ("hit_rate", "all"): 0.4,
        ("error_share", "female"): 6 / 14, ("error_share", "male"): 8 / 14,
        ("equal_burden", "female"): 0.4 / (6 / 14), ("equal_burden", "male"): 0.6 / (8 / 14),
        # issue 25: the same comparison in percentage points (share of selections - share of errors)
        ("burden_gap", "female"): 0.4 - 6 / 14, ("burden_gap", "male"): 0.6 - 8 / 14,
        ("population_selection_rate", "female"): 40 / 600, ("population_selection_rate", "male"): 60 / 400,
        ("population_selection_rate", "all"): 0.1,
        ("population_false_positive_rate", "female"): 30 / 540, ("population_false_positive_rate", "male"): 30 / 320,
        ("population_false_positive_rate", "all"): 60 / 860,
        ("population_false_negative_rate", "female"): 50 / 60, ("population_false_negative_rate", "male"): 50 / 80,
        ("population_false_negative_rate", "all"): 100 / 140,
    }
    got = {(r.metric, r.group): r.value for r in t.itertuples()}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    # the metric order of the table, overall rows first within a metric
    assert list(dict.fromkeys(t["metric"])) == list(SELECTION_METRICS)
    assert t.loc[t["metric"] == "hit_rate", "group"].tolist() == ["all", "female", "male"]
    # n and count as the module docstring says
    r = _get(t, "hit_rate", "male")
    assert (r.n, r["count"]) == (60, 30)
    r = _get(t, "selected_share", "female")
    assert (r.n, r["count"]) == (100, 40)
    r = _get(t, "equal_burden", "male")
    assert (r.n, r["count"]) == (100, 60)
    assert not t["suppressed"].any()
    assert (t["reason"] == "").all() or set(t["reason"]) == {"", "no interval: statistics.bootstrap is 0"}


def test_intervals_and_tests_against_scipy() -> None:
    t = measure_selection(_rows(BASIC), selection=SEL, sensitive_features=["sex"], statistics=NO_BOOT)
    for metric, group, k, n in (("base_rate", "female", 6, 60), ("hit_rate", "male", 30, 60),
                                ("selected_share", "male", 60, 100), ("error_share", "female", 6, 14)):
        r = _get(t, metric, group)
        assert (r.ci_low, r.ci_high) == pytest.approx(_wilson(k, n), rel=1e-9), metric
    # ratios of two independent proportions: Katz's log interval
    r = _get(t, "selection_ratio", "male")
    assert (r.ci_low, r.ci_high) == pytest.approx(_katz(60, 100, 40, 100), rel=1e-9)
    r = _get(t, "equal_burden", "female")
    assert (r.ci_low, r.ci_high) == pytest.approx(_katz(40, 100, 6, 14), rel=1e-9)
    # the selection rate is the selection ratio times S / N
    r = _get(t, "population_selection_rate", "male")
    lo, hi = _katz(60, 100, 40, 100)
    assert (r.ci_low, r.ci_high) == pytest.approx((lo * 100 / 1000, hi * 100 / 1000), rel=1e-9)
    # reference: the largest group at random (female, 60 random cases)
    r = _get(t, "hit_rate", "male")
    assert r.reference_group == "female"
    assert r.difference == pytest.approx(0.25) and r.ratio == pytest.approx(2.0)
    chi2 = stats.chi2_contingency([[30, 30], [10, 30]], correction=False)
    assert r.p_value == pytest.approx(chi2.pvalue, rel=1e-9)
    assert r.test == "two-proportion z-test"
    # selection ratio: a 2x2 test of selected vs random counts between the groups
    r = _get(t, "selection_ratio", "male")
    assert r.ratio == pytest.approx(1.5 / (0.4 / 0.6))
    assert r.p_value == pytest.approx(stats.chi2_contingency([[60, 40], [40, 60]], correction=False).pvalue)
    assert r.test == "two-proportion z-test (conditional)"
    r = _get(t, "equal_burden", "male")
    assert r.p_value == pytest.approx(stats.chi2_contingency([[60, 8], [40, 6]], correction=False).pvalue)
    # the reference row compares with itself; overall rows and shares are not compared
    ref = _get(t, "hit_rate", "female")
    assert (ref.difference, ref.ratio) == (0.0, 1.0) and np.isnan(ref.p_value)
    assert _get(t, "hit_rate", "all").reference_group is None
    assert np.isnan(_get(t, "selected_share", "male").p_value)
    # without the bootstrap: analytic intervals of rates, none for reconstructed rates
    r = _get(t, "population_false_positive_rate", "male")
    assert np.isnan(r.ci_low) and "statistics.bootstrap is 0" in r.reason
    # Holm over the five tests of the table
    p = t["p_value"].dropna().sort_values().to_numpy()
    holm = np.maximum.accumulate(np.minimum(1, (len(p) - np.arange(len(p))) * p))
    assert np.sort(t["p_adjusted"].dropna().to_numpy()) == pytest.approx(holm)


def _row_bootstrap_fpr_difference(frame: pd.DataFrame, draws: int, seed: int) -> np.ndarray:
    """Independent check: resample rows within the selected and within the random cases, recompute FPR."""
    rng = np.random.default_rng(seed)
    fpr = {}
    picks = {}
    for how in ("model", "random"):
        part = frame[frame["how"] == how]
        idx = rng.integers(0, len(part), size=(draws, len(part)))
        picks[how] = (part["sex"].to_numpy()[idx], part["truth_outcome"].to_numpy()[idx] == "error")
    (s_sex, s_err), (r_sex, r_err) = picks["model"], picks["random"]
    for g in ("female", "male"):
        size = 1000 * (r_sex == g).sum(axis=1) / r_sex.shape[1]
        base = ((r_sex == g) & r_err).sum(axis=1) / (r_sex == g).sum(axis=1)
        selected = (s_sex == g).sum(axis=1)
        tp = ((s_sex == g) & s_err).sum(axis=1)
        fp = selected - tp
        fn = np.maximum(size * base - tp, 0)
        tn = np.maximum(size - selected - fn, 0)
        fpr[g] = fp / (fp + tn)
    return fpr["male"] - fpr["female"]


def test_bootstrap_interval_matches_a_row_bootstrap() -> None:
    frame = _rows(BASIC)
    t = measure_selection(frame, selection=SEL, sensitive_features=["sex"],
                          statistics=StatisticsSpec(bootstrap=2000), seed=3)
    r = _get(t, "population_false_positive_rate", "male")
    ref = np.quantile(_row_bootstrap_fpr_difference(frame, 4000, seed=11), [0.025, 0.975])
    width = ref[1] - ref[0]
    assert abs(r.diff_ci_low - ref[0]) < 0.15 * width
    assert abs(r.diff_ci_high - ref[1]) < 0.15 * width
    assert r.test == "z-test (bootstrap SE)" and 0 < r.p_value < 1
    assert r.ci_low < r.value < r.ci_high
    # seeded: the same seed gives the same table, another seed other draws
    again = measure_selection(frame, selection=SEL, sensitive_features=["sex"],
                              statistics=StatisticsSpec(bootstrap=2000), seed=3)
    pd.testing.assert_frame_equal(t, again)
    other = measure_selection(frame, selection=SEL, sensitive_features=["sex"],
                              statistics=StatisticsSpec(bootstrap=2000), seed=4)
    assert _get(other, "population_false_positive_rate", "male").diff_ci_low != r.diff_ci_low


def test_population_confusion_by_hand() -> None:
    t = population_confusion(_rows(BASIC), selection=SEL, sensitive_features=["sex"])
    got = t.set_index("group")[["group_size", "tp", "fp", "fn", "tn"]]
    assert got.loc["female"].tolist() == pytest.approx([600, 10, 30, 50, 510])
    assert got.loc["male"].tolist() == pytest.approx([400, 30, 30, 50, 290])
    assert got.loc["all"].tolist() == pytest.approx([1000, 40, 60, 100, 800])
    assert not t["clipped"].any()


def test_clipping_small_groups_undefined_rates_and_missing_values() -> None:
    """b: random 50 (1 error), selected 30 (25 errors), N = 200, R = 100.

    N_b = 200 * 50/100 = 100, P_b = 100 * 1/50 = 2 < TP_b = 25: FN clipped to
    0, so FNR = 0 with a reason; TN = 100 - 30 - 0 = 70, FPR = 5/75.
    c: 15 selected, no random case: its size and base rate are unknown.
    d: 3 selected + 4 random < 10 cases: suppressed.
    """
    spec = [
        ("a", "model", "error", 5), ("a", "model", "no_error", 10), ("a", "random", "error", 5),
        ("a", "random", "no_error", 45),
        ("b", "model", "error", 25), ("b", "model", "no_error", 5), ("b", "random", "error", 1),
        ("b", "random", "no_error", 49),
        ("c", "model", "no_error", 15),
        ("d", "model", "error", 3), ("d", "random", "no_error", 4),
    ]
    frame = _rows(spec)
    selection = SelectionSpec(column="how", random="random", population_size=200)
    # d's 4 random cases are part of R: R = 50 + 50 + 4 = 104
    t = measure_selection(frame, selection=selection, sensitive_features=["sex"], statistics=NO_BOOT)
    r = _get(t, "population_false_negative_rate", "b")
    assert r.value == 0.0 and "FN clipped to 0" in r.reason
    size_b = 200 * 50 / 104
    assert _get(t, "population_false_positive_rate", "b").value == pytest.approx(5 / (5 + size_b - 30))
    for metric, why in (("selection_ratio", "undefined: no random cases in this group"),
                        ("base_rate", "undefined: no random cases with a known result"),
                        ("population_selection_rate", "undefined: no random cases in this group"),
                        ("population_false_positive_rate", "undefined: no random cases in this group")):
        r = _get(t, metric, "c")
        assert np.isnan(r.value) and not r.suppressed and why in r.reason, metric
    d = t[t["group"] == "d"]
    assert d["suppressed"].all() and d["value"].isna().all() and d["count"].isna().all()
    assert (d["reason"] == "suppressed: the group has fewer than min_group_size 10 cases").all()  # issue 19
    # the reference (largest random group: a and b tie at 50, the first wins) is a
    assert set(t["reference_group"].dropna()) == {"a"}
    confusion = population_confusion(frame, selection=selection, sensitive_features=["sex"]).set_index("group")
    assert bool(confusion.loc["b", "clipped"]) and confusion.loc["b", "fn"] == 0.0


def test_unfinished_investigations_status_and_missing_groups() -> None:
    frame = _rows(BASIC + [("female", "model", None, 5), ("male", "random", None, 2)])
    frame.loc[0, "sex"] = None  # one case without a recorded sex forms its own group
    frame["status"] = "ok"
    frame.loc[frame.index[-1], "status"] = "quarantined"
    t = measure_selection(frame, selection=SEL, sensitive_features=["sex"],
                          statistics=StatisticsSpec(min_group_size=1, bootstrap=0))
    assert "(missing)" in set(t["group"])
    r = _get(t, "hit_rate", "female")  # 10 errors of 40, one error moved to (missing); 5 blank results left out
    assert (r["count"], r.n) == (9, 39)
    assert "5 selected case(s) without a result left out" in r.reason
    assert "1 case(s) with a status other than ok left out" in r.reason
    assert _get(t, "selected_share", "female").n == 105  # S = 45 + 60: blank results still count as selected
    r = _get(t, "base_rate", "male")
    assert (r["count"], r.n) == (8, 40) and "1 random case(s) without a result left out" in r.reason
    # the reference is never the (missing) group
    assert "(missing)" not in set(t["reference_group"].dropna())


def test_without_truth_only_shares_and_ratios() -> None:
    t = measure_selection(_rows(BASIC).drop(columns="truth_outcome"), selection=SEL, sensitive_features=["sex"],
                          truth_column=None, statistics=NO_BOOT)
    assert set(t["metric"]) == {"selected_share", "random_share", "selection_ratio", "population_selection_rate"}


def test_intersections_and_reference_groups() -> None:
    frame = _rows(BASIC + BASIC)
    frame["region"] = np.where(np.arange(len(frame)) < len(frame) // 2, "sweden", "outside_eu")
    t = measure_selection(frame, selection=SEL.model_copy(update={"population_size": 2000}),
                          sensitive_features=["sex", "region"], intersections=[["sex", "region"]],
                          reference_groups={"sex": "male", "sex & region": "male & outside_eu"},
                          statistics=NO_BOOT)
    inter = t[(t["metric"] == "hit_rate") & (t["attributes"].map(len) == 2)]
    assert inter["group"].tolist() == ["female & outside_eu", "female & sweden", "male & outside_eu",
                                       "male & sweden"]
    assert set(inter["reference_group"]) == {"male & outside_eu"}
    assert inter["value"].tolist() == pytest.approx([0.25, 0.25, 0.5, 0.5])
    assert set(t.loc[t["attributes"].map(lambda a: a == ["sex"]) & (t["metric"] == "hit_rate"),
                     "reference_group"]) == {"male"}
    with pytest.raises(DataError, match=r"reference_groups: 'nordic' is not a group of region. Groups in the "
                                        r"data: outside_eu, sweden."):
        measure_selection(frame, selection=SEL.model_copy(update={"population_size": 2000}),
                          sensitive_features=["sex", "region"], reference_groups={"region": "nordic"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="how"),
         r"selection audit: selection.column names the column 'how', which is not in the case frame. Columns: "),
        (lambda f: f.drop(columns="sex"), r"sensitive_features\[0\] names the column 'sex'"),
        (lambda f: f.assign(how=f["how"].where(f.index != 3)),
         r"column 'how' \(selection.column\) is empty for 1 case\(s\), e.g. case_id 'k3'. Expected 'random'"),
        (lambda f: f.assign(how=f["how"].where(f.index != 5, "manual")),
         r"column 'how' \(selection.column\) has the value 'manual' for 1 case\(s\), e.g. case_id 'k5'. "
         r"Expected 'random' \(selection.random\) or 'model' \(selection.selected\)."),
        (lambda f: f[f["how"] == "model"],
         r"no case has the value 'random' \(selection.random\) in column 'how'. A selection audit needs a random "
         r"control sample. Values found: 'model'."),
        (lambda f: f[f["how"] == "random"], r"every case in column 'how' is 'random'"),
    ],
)
def test_bad_input(change, message) -> None:
    with pytest.raises(DataError, match=message):
        measure_selection(change(_rows(BASIC)), selection=SEL, sensitive_features=["sex"], statistics=NO_BOOT)


def test_bad_population_size_and_options() -> None:
    small = SEL.model_copy(update={"population_size": 150})
    with pytest.raises(DataError, match=r"selection.population_size is 150, but the data hold 100 selected and 100 "
                                        r"random cases. Expected the size of the whole population"):
        measure_selection(_rows(BASIC), selection=small, sensitive_features=["sex"])
    with pytest.raises(DataError, match=r"intersections\[0\] must name two or more different sensitive features"):
        measure_selection(_rows(BASIC), selection=SEL, sensitive_features=["sex"], intersections=[["sex", "x"]])
    with pytest.raises(SpecError, match=r"statistics.min_group_size"):
        measure_selection(_rows(BASIC), selection=SEL, sensitive_features=["sex"], statistics={"min_group_size": 0})


def test_burden_gap_in_percentage_points_with_newcombe_interval() -> None:
    """Issue 25: equal burden both ways; the gap's interval is Newcombe's, built here from scipy's Wilson."""
    t = measure_selection(_rows(BASIC), selection=SEL, sensitive_features=["sex"], statistics=NO_BOOT)
    r = _get(t, "burden_gap", "male")
    p1, p0 = 60 / 100, 8 / 14
    l1, u1 = _wilson(60, 100)
    l0, u0 = _wilson(8, 14)
    d = p1 - p0
    assert r.value == pytest.approx(d, rel=1e-12) and r.value * 100 == pytest.approx(2.857142857, rel=1e-9)
    assert r.ci_low == pytest.approx(d - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), rel=1e-9)
    assert r.ci_high == pytest.approx(d + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2), rel=1e-9)
    # both ways agree on the direction: gap > 0 exactly where the ratio > 1
    for g in ("female", "male"):
        assert (_get(t, "burden_gap", g).value > 0) == (_get(t, "equal_burden", g).value > 1)
    # a share difference: not compared with a reference group, so no extra test in the family
    assert np.isnan(r.p_value) and r.reference_group is None or pd.isna(r.reference_group)
