"""Tests of audit.metrics: definitions, intervals, tests, suppression, invariance.

Every expected value is computed independently of the count pipeline: by hand
(arithmetic in the docstring), by a row-level pandas implementation of each
definition, or by a reference library (scipy, scikit-learn) on the same data.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import audit.metrics as M
from audit.exceptions import DataError, SpecError
from audit.metrics import (
    COLUMNS,
    METRICS,
    adjust_pvalues,
    binary_metrics_from_counts,
    clopper_pearson_interval,
    measure,
    two_proportion_test,
    wilson_interval,
)
from audit.spec import StatisticsSpec

FAV = ["grant", "partial"]
Z975 = 1.959963984540054


def make_frame(n: int = 3000, seed: int = 0, *, truth: bool = True, score: bool = True) -> pd.DataFrame:
    """A random measurement frame with errors, quarantine, referrals, missing truths and amounts."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], n, p=[0.45, 0.55]).astype(object)
    region = rng.choice(["sweden", "eu", "outside_eu"], n, p=[0.6, 0.15, 0.25]).astype(object)
    status = rng.choice(["ok", "error", "quarantined"], n, p=[0.94, 0.04, 0.02])
    outcome = rng.choice(["grant", "partial", "deny", "refer"], n, p=[0.4, 0.1, 0.25, 0.25]).astype(object)
    final = np.where(outcome == "refer", rng.choice(["grant", "deny", "refer"], n, p=[0.5, 0.4, 0.1]), outcome)
    outcome[status == "error"] = "error"
    final[status == "error"] = "error"
    truth_outcome = rng.choice(["grant", "partial", "deny", "refer", "missing"], n, p=[0.45, 0.1, 0.35, 0.05, 0.05])
    truth_amount = np.where(
        np.isin(truth_outcome, FAV), np.round(rng.uniform(500, 12000, n), 2),
        np.where(truth_outcome == "deny", 0.0, np.nan),
    )
    fav = np.isin(final, FAV)
    base = np.where(np.isnan(truth_amount), rng.uniform(500, 9000, n), truth_amount)
    final_amount = np.where(fav, np.round(base * rng.uniform(0.7, 1.1, n), 2), np.nan)
    final_amount[fav & (rng.random(n) < 0.03)] = np.nan  # granted without an amount
    frame = pd.DataFrame(
        {
            "case_id": [f"case-{i}" for i in range(n)],
            "sex": pd.Series(sex, dtype="str"),
            "birth_region": pd.Series(region, dtype="str"),
            "status": pd.Series(status, dtype="str"),
            "outcome": pd.Series(outcome, dtype="str"),
            "final_outcome": pd.Series(final, dtype="str"),
            "amount": final_amount,
            "final_amount": final_amount,
        }
    )
    if truth:
        frame["truth_outcome"] = pd.Series(np.where(truth_outcome == "missing", None, truth_outcome), dtype="str")
        frame["truth_amount"] = truth_amount
    if score:
        frame["score"] = (np.floor(rng.random(n) * 1000) + 0.5) / 1000  # bin centres: histogram AUC is exact
    return frame


def rows_of(table: pd.DataFrame, metric: str, attributes: list[str]) -> pd.DataFrame:
    """The rows of one metric and attribute set, indexed by group."""
    sel = table[(table["metric"] == metric) & table["attributes"].map(lambda a: list(a) == attributes)]
    return sel.set_index("group")


def reference_values(df: pd.DataFrame, attrs: list[str]) -> dict[str, pd.DataFrame]:
    """Row-level pandas implementation of each metric's documented definition.

    Returns ``{metric: DataFrame(index=group, columns=[count, n, value])}``.
    """
    ok = df["status"].eq("ok")
    final, out = df["final_outcome"], df["outcome"]
    fav = ok & final.isin(FAV)
    unresolved = ok & final.isin(["refer"])
    deny = ok & ~fav & ~unresolved
    refer = ok & out.isin(["refer"])
    t = df["truth_outcome"]
    truth = ok & t.notna() & ~t.isin(["refer", "error"])
    ent = truth & t.isin(FAV)
    noent = truth & ~t.isin(FAV)
    yt = truth & t.eq("deny")
    yp = ok & final.eq("deny")
    granted = df["final_amount"].fillna(0.0)
    owed = ok & ~unresolved & (df["truth_amount"] > 0)
    under = owed & ((granted * 100).round() < (df["truth_amount"] * 100).round() - 100)
    shortfall = (df["truth_amount"] - granted).clip(lower=0)
    paid = fav & df["final_amount"].notna()
    key = df[attrs].astype(object).fillna("(missing)").astype(str).agg(" & ".join, axis=1) if attrs else pd.Series(
        "all", index=df.index)
    tp, fp, fn, tn = truth & yt & yp, truth & ~yt & yp, truth & yt & ~yp, truth & ~yt & ~yp

    def rate(num: pd.Series, den: pd.Series) -> pd.DataFrame:
        g = pd.DataFrame({"count": num.astype(float), "n": den.astype(float)}).groupby(key).sum()
        g["value"] = np.where(g["n"] > 0, g["count"] / g["n"].where(g["n"] > 0), np.nan)
        return g

    def mean(values: pd.Series, mask: pd.Series) -> pd.DataFrame:
        g = pd.DataFrame({"s": values.where(mask, 0.0), "n": mask.astype(float)}).groupby(key).sum()
        return pd.DataFrame({"count": np.nan, "n": g["n"], "value": g["s"] / g["n"].where(g["n"] > 0)})

    ones = pd.Series(True, index=df.index)
    g_ratio = pd.DataFrame({"g": granted.where(owed, 0.0), "c": df["truth_amount"].where(owed, 0.0),
                            "n": owed.astype(float)}).groupby(key).sum()
    return {
        "error_rate": rate(df["status"].eq("error"), ones),
        "grant_rate": rate(fav, ok),
        "deny_rate": rate(deny, ok),
        "refer_rate": rate(refer, ok),
        "automation_rate": rate(ok & ~refer, ok),
        "mean_amount": mean(df["final_amount"].fillna(0.0), paid),
        "wrongful_denial_rate": rate(ent & deny, ent),
        "wrongful_grant_rate": rate(noent & fav, noent),
        "underpayment_rate": rate(under, owed),
        "mean_shortfall": mean(shortfall.fillna(0.0), owed),
        "amount_ratio": pd.DataFrame({"count": np.nan, "n": g_ratio["n"], "value": g_ratio["g"] / g_ratio["c"]}),
        "selection_rate": rate(yp, ok),
        "true_positive_rate": rate(tp, tp | fn),
        "false_positive_rate": rate(fp, fp | tn),
        "false_negative_rate": rate(fn, tp | fn),
        "true_negative_rate": rate(tn, fp | tn),
        "precision": rate(tp, tp | fp),
        "negative_predictive_value": rate(tn, tn | fn),
        "accuracy": rate(tp | tn, truth),
    }


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture(scope="module")
def table(frame: pd.DataFrame) -> pd.DataFrame:
    return measure(
        frame, sensitive_features=["sex", "birth_region"], intersections=[["sex", "birth_region"]],
        statistics=StatisticsSpec(bootstrap=400), seed=3,
    )


# --------------------------------------------------------------------------
# API


def test_public_api_is_sorted_and_importable() -> None:
    assert M.__all__ == sorted(M.__all__)
    for name in M.__all__:
        assert getattr(M, name) is not None
    assert set(COLUMNS[:14]) == {"metric", "attributes", "group", "n", "value", "ci_low", "ci_high",
                                 "reference_group", "reference_value", "difference", "ratio", "p_value",
                                 "p_adjusted", "suppressed"}


def test_registry_documents_every_metric() -> None:
    listed = {"n", "share", "grant_rate", "deny_rate", "refer_rate", "automation_rate", "wrongful_denial_rate",
              "wrongful_grant_rate", "underpayment_rate", "mean_shortfall", "amount_ratio", "selection_rate",
              "true_positive_rate", "false_positive_rate", "false_negative_rate", "true_negative_rate", "precision",
              "negative_predictive_value", "accuracy", "roc_auc", "calibration_gap", "error_rate"}
    assert listed <= set(METRICS)
    for name, info in METRICS.items():
        assert info.name == name
        # the registry's vocabulary (issue 17): kind is the estimate's shape, section the report's
        assert info.kind in {"count", "share", "rate", "mean", "ratio_of_sums", "auc", "share_ratio",
                             "estimated_rate", "share_difference"}  # share_difference: burden_gap (issue 25)
        assert info.section in {"affected", "routing", "amounts", "baseline", "selection", "comparison", "flips",
                                "discovered", "sample"}
        assert info.description and info.denominator
        if info.analyses == ("measure",):  # metrics of measure() are functions of group statistics
            doc = info.function.__doc__ or ""
            assert doc.strip(), name
        else:
            assert info.function is None and "measure" not in info.analyses, name


# --------------------------------------------------------------------------
# intervals and corrections against hand-computed values


def test_wilson_interval_hand_values() -> None:
    """k=5, n=20, alpha=0.05: p=0.25, z=1.959964, z²/n=0.192073.

    centre = (0.25 + 0.0960365) / 1.192073 = 0.2902813
    half   = 1.959964 / 1.192073 * sqrt(0.25*0.75/20 + 3.841459/1600)
           = 1.644164 * sqrt(0.009375 + 0.0024009) = 0.1784196
    -> (0.1118617, 0.4687009). k=0, n=10: low is exactly 0, high = 0.2775328;
    k=n=10: high is exactly 1, low = 0.7224672. n=0: undefined (NaN).
    """
    low, high = wilson_interval([5, 0, 10, 0], [20, 10, 10, 0], 0.05)
    assert low[0] == pytest.approx(0.1118617014, abs=1e-9)
    assert high[0] == pytest.approx(0.4687008776, abs=1e-9)
    assert low[1] == 0.0 and high[1] == pytest.approx(0.2775327999, abs=1e-9)
    assert high[2] == 1.0 and low[2] == pytest.approx(0.7224672001, abs=1e-9)
    assert math.isnan(low[3]) and math.isnan(high[3])
    # second method: scipy's binomtest
    for k, n in [(5, 20), (81, 263), (1, 7)]:
        ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        lo, hi = wilson_interval(k, n)
        assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12)


def test_clopper_pearson_matches_scipy_exact() -> None:
    for k, n in [(5, 20), (0, 10), (10, 10), (81, 263)]:
        ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
        lo, hi = clopper_pearson_interval(k, n, 0.05)
        assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12)


def test_adjust_pvalues_hand_values() -> None:
    """p = [0.01, 0.04, 0.03, 0.005, NaN]: m = 4 valid p-values.

    Holm (sorted 0.005, 0.01, 0.03, 0.04; factors 4, 3, 2, 1):
    0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    -> in input order [0.03, 0.06, 0.06, 0.02, NaN].
    BH (m p / rank): 0.02, 0.02, 0.04, 0.04 -> running min from the top
    0.02, 0.02, 0.04, 0.04 -> [0.02, 0.04, 0.04, 0.02, NaN].
    Bonferroni: [0.04, 0.16, 0.12, 0.02, NaN].
    """
    p = [0.01, 0.04, 0.03, 0.005, np.nan]
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.03, 0.06, 0.06, 0.02, np.nan], rtol=1e-12)
    np.testing.assert_allclose(adjust_pvalues(p, "bh"), [0.02, 0.04, 0.04, 0.02, np.nan], rtol=1e-12)
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni"), [0.04, 0.16, 0.12, 0.02, np.nan], rtol=1e-12)
    np.testing.assert_allclose(adjust_pvalues(p, "none"), p, rtol=0)
    """BH where the running minimum matters: p = [0.02, 0.03] -> 2*0.02/1 = 0.04, 2*0.03/2 = 0.03
    -> min from the top: [0.03, 0.03]."""
    np.testing.assert_allclose(adjust_pvalues([0.02, 0.03], "bh"), [0.03, 0.03], rtol=1e-12)
    with pytest.raises(ValueError, match="correction must be one of"):
        adjust_pvalues(p, "sidak")
    with pytest.raises(ValueError, match="between 0 and 1"):
        adjust_pvalues([1.5], "holm")


def test_two_proportion_test_z_and_fisher() -> None:
    # large counts: the pooled z-test equals the chi-square test without continuity correction
    p, test = two_proportion_test([120], [400], [90], [410])
    chi = stats.chi2_contingency([[120, 280], [90, 320]], correction=False)
    assert test[0] == "two-proportion z-test"
    assert p[0] == pytest.approx(chi.pvalue, rel=1e-10)
    # small expected counts: Fisher's exact test
    p, test = two_proportion_test([1], [12], [6], [14])
    assert test[0] == "Fisher's exact test"
    assert p[0] == pytest.approx(stats.fisher_exact([[1, 11], [6, 8]]).pvalue, rel=1e-12)
    p, test = two_proportion_test([1], [0], [3], [10])
    assert math.isnan(p[0]) and test[0] == ""


# --------------------------------------------------------------------------
# the table


def test_table_columns_and_json(table: pd.DataFrame) -> None:
    assert list(table.columns) == list(COLUMNS)
    assert table["suppressed"].dtype == bool
    overall = table[table["attributes"].map(len) == 0]
    assert set(overall["group"]) == {"all"}
    records = table.astype(object).where(table.notna(), None).to_dict(orient="records")
    text = json.dumps(records)
    assert json.loads(text)[0]["metric"] == "n"
    assert all(r["four_fifths"] in (True, False, None) for r in records)


def test_values_match_row_level_definitions(frame: pd.DataFrame, table: pd.DataFrame) -> None:
    for attrs in ([], ["sex"], ["birth_region"], ["sex", "birth_region"]):
        expected = reference_values(frame, attrs)
        for metric, exp in expected.items():
            got = rows_of(table, metric, attrs)
            assert set(got.index) == set(exp.index), (metric, attrs)
            for group, row in exp.iterrows():
                mine = got.loc[group]
                assert mine["n"] == row["n"], (metric, group)
                if math.isnan(row["value"]):
                    assert math.isnan(mine["value"])
                else:
                    assert mine["value"] == pytest.approx(row["value"], rel=1e-12, abs=1e-12), (metric, group)
                if not math.isnan(row["count"]):
                    assert mine["count"] == row["count"]


def test_rates_count_only_ok_cases_and_error_rate_counts_all(frame: pd.DataFrame, table: pd.DataFrame) -> None:
    overall = rows_of(table, "grant_rate", []).loc["all"]
    assert overall["n"] == (frame["status"] == "ok").sum()
    err = rows_of(table, "error_rate", []).loc["all"]
    assert err["n"] == len(frame) and err["count"] == (frame["status"] == "error").sum()
    n_rows = rows_of(table, "n", ["sex"])
    assert n_rows["value"].sum() == len(frame)
    share = rows_of(table, "share", ["birth_region"])
    assert share["value"].sum() == pytest.approx(1.0, abs=1e-12)


def test_truth_exclusions_are_counted_in_reason(frame: pd.DataFrame, table: pd.DataFrame) -> None:
    ok = frame["status"] == "ok"
    unusable = ok & (frame["truth_outcome"].isna() | frame["truth_outcome"].isin(["refer", "error"]))
    row = rows_of(table, "accuracy", []).loc["all"]
    assert row["n"] == ok.sum() - unusable.sum()
    assert f"{int(unusable.sum())} ok cases without a usable truth_outcome excluded" in row["reason"]
    unpriced = ok & ~frame["final_outcome"].eq("refer") & frame["truth_amount"].isna()
    row = rows_of(table, "underpayment_rate", []).loc["all"]
    assert f"{int(unpriced.sum())} decided ok cases without a truth_amount excluded" in row["reason"]
    assert unpriced.sum() > 0


def test_mean_shortfall_welch_test_matches_scipy(frame: pd.DataFrame, table: pd.DataFrame) -> None:
    ok = frame["status"] == "ok"
    owed = ok & ~frame["final_outcome"].eq("refer") & (frame["truth_amount"] > 0)
    short = (frame["truth_amount"] - frame["final_amount"].fillna(0)).clip(lower=0)
    female = short[owed & frame["sex"].eq("female")]
    male = short[owed & frame["sex"].eq("male")]
    row = rows_of(table, "mean_shortfall", ["sex"]).loc["female"]
    assert row["reference_group"] == "male"
    res = stats.ttest_ind(female, male, equal_var=False)
    assert row["p_value"] == pytest.approx(res.pvalue, rel=1e-9)
    assert row["value"] == pytest.approx(female.mean(), rel=1e-12)
    se = math.sqrt(female.var(ddof=1) / len(female))
    tq = stats.t.ppf(0.975, len(female) - 1)
    assert row["ci_low"] == pytest.approx(female.mean() - tq * se, rel=1e-9)
    ci = res.confidence_interval(0.95)
    assert row["diff_ci_low"] == pytest.approx(ci.low, rel=1e-9)
    assert row["diff_ci_high"] == pytest.approx(ci.high, rel=1e-9)
    assert row["test"] == "Welch's t-test"


def test_amount_ratio_delta_method_from_rows(frame: pd.DataFrame, table: pd.DataFrame) -> None:
    """Delta method on the rows: R = Σg/Σc, se² = Σ(g - R c)² / ((n - 1) n c̄²)."""
    ok = frame["status"] == "ok"
    owed = ok & ~frame["final_outcome"].eq("refer") & (frame["truth_amount"] > 0) & frame["sex"].eq("female")
    g = frame.loc[owed, "final_amount"].fillna(0).to_numpy()
    c = frame.loc[owed, "truth_amount"].to_numpy()
    r = g.sum() / c.sum()
    n = len(g)
    se = math.sqrt(((g - r * c) ** 2).sum() / ((n - 1) * n * c.mean() ** 2))
    row = rows_of(table, "amount_ratio", ["sex"]).loc["female"]
    assert row["value"] == pytest.approx(r, rel=1e-12)
    assert row["ci_high"] - row["value"] == pytest.approx(Z975 * se, rel=1e-9)


def test_roc_auc_matches_sklearn(frame: pd.DataFrame, table: pd.DataFrame) -> None:
    from sklearn.metrics import roc_auc_score

    ok = frame["status"] == "ok"
    t = frame["truth_outcome"]
    scored = ok & t.notna() & ~t.isin(["refer", "error"]) & frame["sex"].eq("male")
    y = t[scored].eq("deny").astype(int)
    s = frame.loc[scored, "score"]
    row = rows_of(table, "roc_auc", ["sex"]).loc["male"]
    assert row["value"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    """Hanley–McNeil: q1 = A/(2-A), q2 = 2A²/(1+A),
    se² = (A(1-A) + (P-1)(q1-A²) + (N-1)(q2-A²)) / (P N)."""
    a, p_, n_ = row["value"], y.sum(), (1 - y).sum()
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = math.sqrt((a * (1 - a) + (p_ - 1) * (q1 - a * a) + (n_ - 1) * (q2 - a * a)) / (p_ * n_))
    assert row["ci_high"] == pytest.approx(min(1.0, a + Z975 * se), rel=1e-9)


def test_calibration_gap_matches_rows(frame: pd.DataFrame, table: pd.DataFrame) -> None:
    ok = frame["status"] == "ok"
    t = frame["truth_outcome"]
    scored = ok & t.notna() & ~t.isin(["refer", "error"])
    d = frame.loc[scored, "score"] - t[scored].eq("deny").astype(float)
    row = rows_of(table, "calibration_gap", []).loc["all"]
    assert row["value"] == pytest.approx(d.mean(), rel=1e-12)
    tq = stats.t.ppf(0.975, len(d) - 1)
    assert row["ci_high"] == pytest.approx(d.mean() + tq * d.std(ddof=1) / math.sqrt(len(d)), rel=1e-9)


def test_reference_group_default_is_largest_and_comparisons(table: pd.DataFrame) -> None:
    refer = rows_of(table, "refer_rate", ["birth_region"])
    assert set(refer["reference_group"]) == {"sweden"}
    ref = refer.loc["sweden"]
    assert ref["difference"] == 0 and ref["ratio"] == 1 and math.isnan(ref["p_value"])
    eu = refer.loc["eu"]
    assert eu["difference"] == pytest.approx(eu["value"] - ref["value"], abs=1e-15)
    assert eu["ratio"] == pytest.approx(eu["value"] / ref["value"], rel=1e-15)
    p, _ = two_proportion_test(eu["count"], eu["n"], ref["count"], ref["n"])
    assert eu["p_value"] == pytest.approx(float(p), rel=1e-12)
    inter = rows_of(table, "refer_rate", ["sex", "birth_region"])
    assert set(inter["reference_group"]) == {"male & sweden"}


def test_holm_correction_spans_every_test_of_the_run(table: pd.DataFrame) -> None:
    p = table["p_value"].to_numpy()
    np.testing.assert_allclose(table["p_adjusted"].to_numpy(), adjust_pvalues(p, "holm"), rtol=0, atol=0)
    assert np.isfinite(p).sum() > 50


def test_mdd_hand_formula(table: pd.DataFrame) -> None:
    """mdd = (z_{1-α/(2m)} + z_{0.8}) * sqrt(p(1-p)(1/n1 + 1/n0)), p = (k0 + 1)/(n0 + 2), m tests."""
    m = int(table["p_value"].notna().sum())
    row = rows_of(table, "grant_rate", ["birth_region"]).loc["eu"]
    ref = rows_of(table, "grant_rate", ["birth_region"]).loc["sweden"]
    p = (ref["count"] + 1) / (ref["n"] + 2)
    z = stats.norm.ppf(1 - 0.05 / m / 2) + stats.norm.ppf(0.8)
    assert row["mdd"] == pytest.approx(z * math.sqrt(p * (1 - p) * (1 / row["n"] + 1 / ref["n"])), rel=1e-12)


def test_max_min_gap_and_four_fifths(table: pd.DataFrame) -> None:
    grant = rows_of(table, "grant_rate", ["sex", "birth_region"])
    vals = grant.loc[~grant["suppressed"], "value"]
    assert (grant["max_min_gap"] == vals.max() - vals.min()).all()
    assert (grant["min_max_ratio"] == vals.min() / vals.max()).all()
    assert all(ff == (r < 0.8) for ff, r in zip(grant["four_fifths"], grant["ratio"]))
    assert rows_of(table, "refer_rate", ["sex"])["four_fifths"].isna().all()


def test_four_fifths_flags_a_low_grant_rate() -> None:
    df = make_frame(2000, seed=5)
    low = df["sex"].eq("female") & df["status"].eq("ok") & df["final_outcome"].isin(FAV)
    flip = low & (np.random.default_rng(1).random(len(df)) < 0.5)
    df.loc[flip, "final_outcome"] = "deny"
    df.loc[flip, "final_amount"] = np.nan
    out = measure(df, sensitive_features=["sex"], statistics=StatisticsSpec(bootstrap=0))
    female = rows_of(out, "grant_rate", ["sex"]).loc["female"]
    assert female["ratio"] < 0.8 and female["four_fifths"] is True
    assert rows_of(out, "grant_rate", ["sex"]).loc["male"]["four_fifths"] is False


# --------------------------------------------------------------------------
# suppression and undefined values


def test_small_group_is_suppressed_never_zero() -> None:
    df = make_frame(1500, seed=2)
    df.loc[:4, "birth_region"] = "nordic"  # a group of 5 cases
    out = measure(df, sensitive_features=["birth_region"])
    nordic = out[out["group"] == "nordic"]
    assert nordic["suppressed"].all()
    for col in ("value", "count", "ci_low", "ci_high", "difference", "ratio", "p_value", "diff_ci_low"):
        assert nordic[col].isna().all(), col
    # issue 19: a suppressed group's exact count is disclosed nowhere (was: "the group has 5 cases", n <= 5)
    assert nordic["reason"].str.contains("the group has fewer than min_group_size 10 cases").all()
    assert not nordic["reason"].str.contains("5 cases").any()
    assert nordic["n"].isna().all()
    # the suppressed group does not enter the spread across groups
    grant = rows_of(out, "grant_rate", ["birth_region"])
    vals = grant.loc[["eu", "outside_eu", "sweden"], "value"]
    assert grant.loc["nordic", "max_min_gap"] == pytest.approx(vals.max() - vals.min(), abs=1e-15)


def test_small_denominator_is_suppressed_but_group_is_not() -> None:
    df = make_frame(1500, seed=4)
    female = df["sex"].eq("female")
    entitled = df["truth_outcome"].isin(FAV)
    drop = female & entitled
    keep = drop[drop].index[:6]  # 6 entitled women (some may be errors): denominator < 10
    df.loc[drop & ~df.index.isin(keep), "truth_outcome"] = "deny"
    df.loc[drop & ~df.index.isin(keep), "truth_amount"] = 0.0
    out = measure(df, sensitive_features=["sex"], metrics=["grant_rate", "wrongful_denial_rate"])
    row = rows_of(out, "wrongful_denial_rate", ["sex"]).loc["female"]
    assert row["suppressed"] and math.isnan(row["value"]) and math.isnan(row["n"])  # issue 19: was 0 < n < 10
    assert "min_group_size 10" in row["reason"]
    assert not rows_of(out, "grant_rate", ["sex"]).loc["female"]["suppressed"]


def test_zero_denominator_is_nan_with_reason() -> None:
    df = make_frame(1500, seed=6)
    male = df["sex"].eq("male")
    df.loc[male & df["truth_outcome"].isin(FAV), "truth_outcome"] = "deny"  # no entitled men
    out = measure(df, sensitive_features=["sex"], metrics=["wrongful_denial_rate"])
    row = rows_of(out, "wrongful_denial_rate", ["sex"]).loc["male"]
    assert row["n"] == 0 and math.isnan(row["value"]) and not row["suppressed"]
    assert "undefined: the denominator (entitled ok cases) is 0" in row["reason"]
    female = rows_of(out, "wrongful_denial_rate", ["sex"]).loc["female"]
    assert math.isnan(female["difference"]) and "reference group 'male' is undefined" in female["reason"]


def test_ratio_to_a_zero_reference_is_nan_with_reason() -> None:
    df = make_frame(1500, seed=7)
    df.loc[df["sex"].eq("male") & df["status"].eq("error"), "status"] = "quarantined"
    out = measure(df, sensitive_features=["sex"], metrics=["error_rate"])
    female = rows_of(out, "error_rate", ["sex"]).loc["female"]
    assert rows_of(out, "error_rate", ["sex"]).loc["male"]["value"] == 0.0  # a real zero: 0 of n
    assert female["difference"] == pytest.approx(female["value"])
    assert math.isnan(female["ratio"]) and "reference value is 0" in female["reason"]


def test_missing_sensitive_values_form_their_own_group() -> None:
    df = make_frame(1200, seed=8)
    df.loc[:39, "sex"] = None
    df.loc[40:44, "sex"] = "  "
    out = measure(df, sensitive_features=["sex"], metrics=["n", "grant_rate"])
    n = rows_of(out, "n", ["sex"])
    assert n.loc["(missing)", "value"] == 45
    assert n["value"].sum() == len(df)
    assert rows_of(out, "grant_rate", ["sex"]).loc["(missing)", "reference_group"] == "male"


def test_suppressed_reference_group_gives_no_comparison() -> None:
    df = make_frame(1200, seed=9)
    df.loc[:3, "birth_region"] = "nordic"
    out = measure(df, sensitive_features=["birth_region"], reference_groups={"birth_region": "nordic"},
                  metrics=["refer_rate"])
    eu = rows_of(out, "refer_rate", ["birth_region"]).loc["eu"]
    assert math.isnan(eu["difference"]) and math.isnan(eu["p_value"])
    assert "reference group 'nordic' is suppressed" in eu["reason"]


# --------------------------------------------------------------------------
# invariance and determinism


def test_invariant_to_row_order(frame: pd.DataFrame, table: pd.DataFrame) -> None:
    shuffled = frame.sample(frac=1.0, random_state=11).reset_index(drop=True)
    again = measure(shuffled, sensitive_features=["sex", "birth_region"], intersections=[["sex", "birth_region"]],
                    statistics=StatisticsSpec(bootstrap=400), seed=3)
    pd.testing.assert_frame_equal(again, table)


def test_invariant_to_renaming_labels(frame: pd.DataFrame, table: pd.DataFrame) -> None:
    sex_map = {"female": "z_kvinna", "male": "a_man"}  # reverses the sort order
    region_map = {"sweden": "sverige", "eu": "zz_eu", "outside_eu": "a_utanfor"}
    out_map = {"grant": "bifall", "partial": "delvis", "deny": "avslag", "refer": "utredning", "error": "error"}
    df = frame.copy()
    df["sex"] = df["sex"].map(sex_map)
    df["birth_region"] = df["birth_region"].map(region_map)
    for col in ("outcome", "final_outcome", "truth_outcome"):
        df[col] = df[col].map(out_map)
    renamed = measure(
        df, sensitive_features=["sex", "birth_region"], intersections=[["sex", "birth_region"]],
        favourable=("bifall", "delvis"), review=("utredning",), pred_positive=("avslag",),
        statistics=StatisticsSpec(bootstrap=400), seed=3,
    )
    back = {**{v: k for k, v in sex_map.items()}, **{v: k for k, v in region_map.items()}, "all": "all"}

    def unmap(label: str | None) -> str | None:
        if label is None:
            return None
        return " & ".join(back[p] for p in label.split(" & "))

    renamed["group"] = renamed["group"].map(unmap)
    renamed["reference_group"] = pd.Series([unmap(x) for x in renamed["reference_group"]], dtype=object)
    key = ["metric", "group"]
    a = renamed.assign(attrs=renamed["attributes"].map(tuple)).sort_values(["attrs", *key]).drop(columns="attrs")
    b = table.assign(attrs=table["attributes"].map(tuple)).sort_values(["attrs", *key]).drop(columns="attrs")
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)


def test_same_seed_same_table_other_seed_other_draws(frame: pd.DataFrame, table: pd.DataFrame) -> None:
    kwargs = dict(sensitive_features=["sex", "birth_region"], intersections=[["sex", "birth_region"]],
                  statistics=StatisticsSpec(bootstrap=400))
    pd.testing.assert_frame_equal(measure(frame, seed=3, **kwargs), table)
    other = measure(frame, seed=4, **kwargs)
    pd.testing.assert_series_equal(other["value"], table["value"])
    assert not np.allclose(other["diff_ci_low"].fillna(0), table["diff_ci_low"].fillna(0))


def test_without_bootstrap_uses_newcombe_interval(frame: pd.DataFrame) -> None:
    """Newcombe's hybrid score interval from the two Wilson intervals (l1, u1), (l0, u0):
    low = d - sqrt((p1 - l1)² + (u0 - p0)²), high = d + sqrt((u1 - p1)² + (p0 - l0)²)."""
    out = measure(frame, sensitive_features=["sex"], statistics=StatisticsSpec(bootstrap=0), metrics=["refer_rate"])
    f, m = rows_of(out, "refer_rate", ["sex"]).loc["female"], rows_of(out, "refer_rate", ["sex"]).loc["male"]
    d = f["value"] - m["value"]
    low = d - math.sqrt((f["value"] - f["ci_low"]) ** 2 + (m["ci_high"] - m["value"]) ** 2)
    high = d + math.sqrt((f["ci_high"] - f["value"]) ** 2 + (m["value"] - m["ci_low"]) ** 2)
    assert f["diff_ci_low"] == pytest.approx(low, rel=1e-12)
    assert f["diff_ci_high"] == pytest.approx(high, rel=1e-12)
    assert f["reason"] == ""


# --------------------------------------------------------------------------
# aggregated counts


def test_binary_metrics_from_counts_hand_values() -> None:
    """tp=30, fp=10, fn=20, tn=40: TPR 30/50 = 0.6, FPR 10/50 = 0.2, precision 30/40 = 0.75,
    NPV 40/60 = 0.6667, accuracy 70/100 = 0.7, selection rate 40/100 = 0.4."""
    table = pd.DataFrame({"group": ["a", "b"], "tp": [30.0, np.nan], "fp": [10, 5], "fn": [20, 7], "tn": [40, 9]})
    out = binary_metrics_from_counts(table).set_index(["group", "metric"])
    a = out.loc["a"]
    expected = {"true_positive_rate": 0.6, "false_positive_rate": 0.2, "false_negative_rate": 0.4,
                "true_negative_rate": 0.8, "precision": 0.75, "negative_predictive_value": 40 / 60,
                "accuracy": 0.7, "selection_rate": 0.4}
    for metric, value in expected.items():
        assert a.loc[metric, "value"] == pytest.approx(value, abs=1e-15)
    ci = stats.binomtest(30, 50).proportion_ci(0.95, method="exact")
    assert a.loc["true_positive_rate", "exact_low"] == pytest.approx(ci.low, abs=1e-12)
    ci = stats.binomtest(30, 40).proportion_ci(0.95, method="wilson")
    assert a.loc["precision", "wilson_high"] == pytest.approx(ci.high, abs=1e-12)
    b = out.loc["b"]
    assert math.isnan(b.loc["true_positive_rate", "value"])
    assert b.loc["true_positive_rate", "reason"] == "cell suppressed at source"
    assert b.loc["false_positive_rate", "value"] == pytest.approx(5 / 14)  # does not need tp
    with pytest.raises(DataError, match="'fp' .* must hold counts >= 0. Got -1.0 in row 1"):
        binary_metrics_from_counts(table.assign(fp=[-1, 5]))


def test_from_confusion_equals_row_data_and_suppresses_at_source() -> None:
    rng = np.random.default_rng(12)
    n = 900
    df = pd.DataFrame({
        "case_id": [f"k{i}" for i in range(n)],
        "sex": rng.choice(["female", "male"], n),
        "status": "ok",
        "final_outcome": rng.choice(["deny", "grant"], n, p=[0.3, 0.7]),
        "truth_outcome": rng.choice(["deny", "grant"], n, p=[0.25, 0.75]),
    })
    df["outcome"] = df["final_outcome"]
    yt, yp = df["truth_outcome"].eq("deny"), df["final_outcome"].eq("deny")
    counts = pd.DataFrame({"tp": yt & yp, "fp": ~yt & yp, "fn": yt & ~yp, "tn": ~yt & ~yp}).groupby(df["sex"]).sum()
    conf = counts.reset_index().rename(columns={"tp": "TP", "fp": "FP", "fn": "FN", "tn": "TN"})
    stats_c = M.GroupStatistics.from_confusion(conf, sensitive_features=["sex"],
                                               cells={"tp": "TP", "fp": "FP", "fn": "FN", "tn": "TN"})
    binary = [m for m, i in METRICS.items() if i.kind == "binary"]
    from_counts = M.measure_statistics(stats_c, metrics=binary, seed=1)
    from_rows = measure(df, sensitive_features=["sex"], metrics=binary, seed=1)
    for col in ("n", "value", "ci_low", "ci_high", "difference", "ratio", "p_value", "diff_ci_low", "ratio_ci_high"):
        np.testing.assert_allclose(from_counts[col], from_rows[col], rtol=1e-12, err_msg=col)
    conf.loc[conf["sex"] == "female", "TP"] = np.nan
    out = M.measure_statistics(M.GroupStatistics.from_confusion(
        conf, sensitive_features=["sex"], cells={"tp": "TP", "fp": "FP", "fn": "FN", "tn": "TN"}),
        metrics=["true_positive_rate", "false_positive_rate"])
    tpr = rows_of(out, "true_positive_rate", ["sex"]).loc["female"]
    assert math.isnan(tpr["value"]) and tpr["reason"] == "cell suppressed at source"
    assert not math.isnan(rows_of(out, "false_positive_rate", ["sex"]).loc["female", "value"])


def test_marginal_tables_per_attribute() -> None:
    sex = pd.DataFrame({"sex": ["f", "m"], "tp": [30, 40], "fp": [10, 12], "fn": [20, 15], "tn": [40, 50]})
    age = pd.DataFrame({"age": ["young", "old"], "tp": [35, 35], "fp": [12, 10], "fn": [15, 20], "tn": [48, 42]})
    st = {"sex": M.GroupStatistics.from_confusion(sex, sensitive_features=["sex"]),
          "age": M.GroupStatistics.from_confusion(age, sensitive_features=["age"])}
    out = M.measure_statistics(st, metrics=["true_positive_rate"])
    assert rows_of(out, "true_positive_rate", ["age"]).loc["old", "value"] == pytest.approx(35 / 55)
    assert rows_of(out, "true_positive_rate", []).loc["all", "value"] == pytest.approx(70 / 105)
    with pytest.raises(SpecError, match="intersections need joint statistics"):
        M.measure_statistics(st, intersections=[["sex", "age"]])


# --------------------------------------------------------------------------
# errors


def test_missing_column_is_a_clear_data_error(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"missing column\(s\) 'final_outcome'. Expected case_id"):
        measure(frame.drop(columns=["final_outcome"]), sensitive_features=["sex"])
    with pytest.raises(DataError, match=r"missing column\(s\) 'region'"):
        measure(frame, sensitive_features=["region"])


def test_invalid_values_are_collected_into_one_error(frame: pd.DataFrame) -> None:
    df = frame.copy()
    df.loc[3, "status"] = "done"
    df.loc[4, "final_amount"] = -5.0
    df.loc[5, "case_id"] = df.loc[6, "case_id"]
    ok_row = df.index[df["status"].eq("ok")][10]
    df.loc[ok_row, "final_outcome"] = None
    with pytest.raises(DataError) as info:
        measure(df, sensitive_features=["sex"])
    msg = str(info.value)
    assert "column 'status' must be one of ok, error, quarantined. Got 'done' for 1 case(s) (first case_id 'case-3')" in msg
    assert "column 'final_amount' must be a number of SEK between 0 and 10,000,000 (or missing). Got -5.0" in msg
    assert "column 'case_id' must be unique. Got 'case-6'" in msg
    assert "column 'final_outcome' must hold a decided outcome label where status is ok. Got missing" in msg
    failures = info.value.failures
    assert list(failures.columns) == ["check", "column", "value", "case_id", "reason"]
    # the check column speaks audit.exceptions.CheckCode (one vocabulary for every failure table, issue 17);
    # each failure is still told apart by its check and column
    assert set(zip(failures["check"], failures["column"], strict=True)) == {
        ("in_set", "status"), ("in_range", "final_amount"), ("unique", "case_id"), ("not_null", "final_outcome")}


def test_option_errors(frame: pd.DataFrame) -> None:
    with pytest.raises(SpecError, match="unknown metric 'approval_rate'. Known metrics: n, share"):
        measure(frame, sensitive_features=["sex"], metrics=["approval_rate"])
    with pytest.raises(DataError, match="metric 'accuracy' needs the truth_outcome column"):
        measure(frame.drop(columns=["truth_outcome", "truth_amount", "score"]), sensitive_features=["sex"],
                metrics=["accuracy"])
    with pytest.raises(DataError, match="'nordic' is not a group of birth_region. Groups in the data: eu, outside_eu, sweden"):
        measure(frame, sensitive_features=["birth_region"], reference_groups={"birth_region": "nordic"})
    with pytest.raises(SpecError, match=r"intersections\[0\] must name two or more different sensitive features"):
        measure(frame, sensitive_features=["sex"], intersections=[["sex", "birth_region"]])
    with pytest.raises(SpecError, match="favourable and review must not share labels. Got 'refer' in both"):
        measure(frame, sensitive_features=["sex"], favourable=("grant", "refer"))
    with pytest.raises(SpecError, match="seed must be an integer >= 0. Got -1"):
        measure(frame, sensitive_features=["sex"], seed=-1)
    with pytest.raises(SpecError, match="statistics.min_group_size"):
        measure(frame, sensitive_features=["sex"], statistics={"min_group_size": 0})


def test_metrics_without_truth_columns_are_not_reported() -> None:
    df = make_frame(800, seed=13, truth=False, score=False)
    out = measure(df, sensitive_features=["sex"])
    got = set(out["metric"])
    assert {"grant_rate", "refer_rate", "selection_rate", "mean_amount", "error_rate"} <= got
    assert not got & {m for m, i in METRICS.items() if i.needs_truth}


def test_empty_truth_and_score_columns_are_treated_as_absent() -> None:
    df = make_frame(800, seed=14)
    df["truth_outcome"] = pd.Series([None] * len(df), dtype="str")
    df["truth_amount"] = np.nan
    df["score"] = np.nan
    out = measure(df, sensitive_features=["sex"])
    assert not set(out["metric"]) & {m for m, i in METRICS.items() if i.needs_truth}
    asked = measure(df, sensitive_features=["sex"], metrics=["accuracy"])
    row = rows_of(asked, "accuracy", []).loc["all"]
    assert row["n"] == 0 and np.isnan(row["value"]) and "denominator" in row["reason"]


def test_text_amounts_are_converted_or_refused(frame: pd.DataFrame) -> None:
    as_text = frame.assign(final_amount=frame["final_amount"].map(lambda v: None if np.isnan(v) else f"{v:.2f}"))
    pd.testing.assert_frame_equal(
        measure(as_text, sensitive_features=["sex"], metrics=["mean_amount"]),
        measure(frame, sensitive_features=["sex"], metrics=["mean_amount"]),
    )
    bad = as_text.copy()
    bad.loc[7, "final_amount"] = "12 kr"
    with pytest.raises(DataError, match="column 'final_amount' must hold numbers. Got '12 kr' for 1 case"):
        measure(bad, sensitive_features=["sex"])
