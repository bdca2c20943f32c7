"""Tests of subgroup discovery (audit.metrics.discover, issue 24).

Expected values are computed independently of the discovery code: the found
group's cases by evaluating its conditions with pandas, the test half from
:func:`audit.metrics.split_halves`, intervals and tests with scipy or by the
textbook formula, Holm's correction by hand, each case's part in a rate from
:func:`audit.metrics.measure` (the report's own pipeline, which counts groups,
not cases).

Overlap with a planted group is the Jaccard index over all cases,
``|found ∩ planted| / |found ∪ planted|``: 1 when the found group is exactly
the planted one, and below 0.8 when a fifth of the union is in only one of
them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from audit.exceptions import DataError, SpecError
from audit.metrics import (
    COLUMNS,
    DISCOVERED_PREFIX,
    DiscoveryResult,
    adjust_pvalues,
    discover,
    discovery_frame,
    measure,
    split_halves,
)
from audit.metrics._casecells import case_rate_parts, case_rates
from audit.metrics._registry import WRONGFUL_DECISION_RATE
from audit.spec import AuditSpec, DiscoverSpec, StatisticsSpec
from audit.synth import generate, load_population_spec

ROOT = Path(__file__).resolve().parents[1]
POPULATION = ROOT / "datasets" / "sweden" / "population-2026.yaml"
SCHEMA = ROOT / "audit" / "schemas" / "results.schema.json"
SENSITIVE = ["sex", "birth_region"]
Z975 = 1.959963984540054


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    """20,000 synthetic applications (the shipped population spec, seed 11)."""
    return generate(POPULATION, n=20_000, seed=11)


def decided(cases: pd.DataFrame, planted: np.ndarray, *, base: float = 0.15, rate: float = 0.40,
            seed: int = 5) -> pd.DataFrame:
    """The cases with a seeded engine's refusals: ``rate`` in the planted group, ``base`` elsewhere."""
    rng = np.random.default_rng([seed, 24])
    deny = rng.random(len(cases)) < np.where(planted, rate, base)
    frame = cases.assign(status="ok", outcome=np.where(deny, "deny", "grant"))
    frame["final_outcome"] = frame["outcome"]
    return frame


def evaluate(frame: pd.DataFrame, conditions: list[dict]) -> np.ndarray:
    """Which cases satisfy every condition, evaluated from the conditions' dicts with pandas."""
    mask = np.ones(len(frame), dtype=bool)
    for c in conditions:
        col = frame[c["feature"]]
        op, value = c["op"], c["value"]
        if op == "missing":
            m = col.isna()
        elif op == "in":
            low, high = value
            m = pd.Series(True, index=frame.index)
            if low is not None:
                m &= col > low
            if high is not None:
                m &= col <= high
        elif op == "<=":
            m = col <= value
        elif op == ">":
            m = col > value
        elif pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            m = (col == value) if op == "=" else (col != value) & col.notna()
        else:
            text = col.astype(str)
            m = (text == str(value)) if op == "=" else (text != str(value)) & col.notna()
        mask &= m.to_numpy(dtype=bool)
    return mask


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# --------------------------------------------------------------------------
# the planted disparity is found


def test_finds_a_planted_combination_of_two_unnamed_features(cases: pd.DataFrame) -> None:
    planted = (cases["channel"] == "paper").to_numpy() & cases["interpreter"].to_numpy(dtype=bool)
    frame = decided(cases, planted)
    result = discover(frame, sensitive_features=SENSITIVE, seed=3)  # default features: every case column
    assert "channel" in result.features and "sex" in result.features
    first = result.groups[0]
    found = evaluate(frame, [c.to_dict() for c in first.conditions])
    assert jaccard(found, planted) >= 0.8
    assert {c.feature for c in first.conditions} == {"channel", "interpreter"}
    assert first.direction == "higher"
    assert first.confirmed(0.05)
    assert result.confirmed[0] is first
    assert first.n_cases == int(found.sum())


def test_finds_a_planted_combination_of_two_numeric_features(cases: pd.DataFrame) -> None:
    """Two numeric columns: no wages (a bin that holds one value) and two adults (a column with few values)."""
    planted = (cases["income_wages"] == 0).to_numpy() & (cases["adults"] == 2).to_numpy()
    frame = decided(cases, planted, base=0.15, rate=0.30, seed=8)
    result = discover(frame, sensitive_features=SENSITIVE, seed=4)
    found = evaluate(frame, [c.to_dict() for c in result.groups[0].conditions])
    assert jaccard(found, planted) >= 0.8
    assert result.groups[0].definition == "adults = 2 & income_wages = 0"


def test_test_half_statistics_agree_with_scipy_and_the_textbook(cases: pd.DataFrame) -> None:
    planted = (cases["channel"] == "paper").to_numpy() & cases["interpreter"].to_numpy(dtype=bool)
    frame = decided(cases, planted)
    result = discover(frame, sensitive_features=SENSITIVE, seed=3)
    _, test_rows = split_halves(len(frame), seed=3)
    deny = (frame["outcome"] == "deny").to_numpy()
    p_values = []
    for g in result.groups:
        inside = evaluate(frame, [c.to_dict() for c in g.conditions])[test_rows]
        d = deny[test_rows]
        n1, k1 = int(inside.sum()), int((inside & d).sum())
        n0, k0 = int((~inside).sum()), int((~inside & d).sum())
        t = g.test
        assert (t["n"], t["count"], t["rest_n"]) == (n1, k1, n0)
        assert t["value"] == pytest.approx(k1 / n1) and t["reference_value"] == pytest.approx(k0 / n0)
        assert t["ratio"] == pytest.approx((k1 / n1) / (k0 / n0))
        ci = stats.binomtest(k1, n1).proportion_ci(confidence_level=0.95, method="wilson")
        assert (t["ci_low"], t["ci_high"]) == pytest.approx((ci.low, ci.high), abs=1e-9)
        # Katz: exp(log r ± z sqrt((1-p1)/k1 + (1-p0)/k0))
        p1, p0 = k1 / n1, k0 / n0
        se = math.sqrt((1 - p1) / k1 + (1 - p0) / k0)
        assert t["ratio_ci_low"] == pytest.approx(p1 / p0 * math.exp(-Z975 * se))
        assert t["ratio_ci_high"] == pytest.approx(p1 / p0 * math.exp(Z975 * se))
        chi2 = stats.chi2_contingency([[k1, n1 - k1], [k0, n0 - k0]], correction=False)
        assert t["test"] == "two-proportion z-test"
        assert t["p_value"] == pytest.approx(chi2.pvalue, rel=1e-6, abs=1e-300)
        p_values.append(chi2.pvalue)
    # Holm by hand: sorted p_(i) times (m - i + 1), running maximum, capped at 1
    m = len(p_values)
    order = np.argsort(p_values)
    expected = np.empty(m)
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p_values[j]))
        expected[j] = running
    assert [g.test["p_adjusted"] for g in result.groups] == pytest.approx(list(expected), rel=1e-9, abs=1e-300)
    assert result.correction == {"method": "holm", "family": "discovery", "m": m}


def test_makeup_counts_the_named_groups_inside_the_found_group(cases: pd.DataFrame) -> None:
    planted = (cases["channel"] == "paper").to_numpy() & cases["interpreter"].to_numpy(dtype=bool)
    frame = decided(cases, planted)
    first = discover(frame, sensitive_features=SENSITIVE, seed=3).groups[0]
    inside = evaluate(frame, [c.to_dict() for c in first.conditions])
    for attribute in SENSITIVE:
        shares = frame.loc[inside, attribute].value_counts(normalize=True)
        population = frame[attribute].value_counts(normalize=True)
        rows = [r for r in first.makeup if r["attribute"] == attribute]
        assert {r["group"] for r in rows} == set(population.index)
        for r in rows:
            assert r["population_share"] == pytest.approx(population[r["group"]])
            if not r["suppressed"]:
                assert r["share"] == pytest.approx(shares.get(r["group"], 0.0))
    outside = next(r for r in first.makeup if r["group"] == "outside_eu")
    assert outside["share"] > 0.8 > outside["population_share"]  # the interpreter proxy: mostly born outside the EU


def test_the_same_seed_gives_the_same_groups_and_another_seed_another_split(cases: pd.DataFrame) -> None:
    planted = (cases["channel"] == "paper").to_numpy() & cases["interpreter"].to_numpy(dtype=bool)
    frame = decided(cases, planted)
    a = discover(frame, sensitive_features=SENSITIVE, seed=3)
    b = discover(frame, sensitive_features=SENSITIVE, seed=3)
    c = discover(frame, sensitive_features=SENSITIVE, seed=4)
    assert a.to_dict() == b.to_dict()
    assert a.groups[0].test["n"] != c.groups[0].test["n"]
    search, test = split_halves(11, seed=0)
    assert len(search) == 5 and len(test) == 6 and sorted([*search, *test]) == list(range(11))


# --------------------------------------------------------------------------
# nothing is found where nothing was planted


@pytest.mark.slow
def test_no_planted_disparity_confirms_nothing_in_at_least_95_of_100_seeds() -> None:
    """100 seeds of 3,000 cases each, refusals independent of everything; at most 5 seeds may confirm a group."""
    model = load_population_spec(POPULATION)
    confirmed = []
    for seed in range(100):
        population = generate(model, n=3000, seed=seed)
        frame = decided(population, np.zeros(len(population), dtype=bool), base=0.2, seed=seed)
        result = discover(frame, sensitive_features=SENSITIVE, seed=seed)
        assert len(result.groups) >= 1
        confirmed.append(bool(result.confirmed))
    assert sum(confirmed) <= 5, f"{sum(confirmed)} of 100 seeds confirmed a group where none was planted"


def test_no_variation_in_the_outcome_finds_nothing_and_says_why(cases: pd.DataFrame) -> None:
    frame = decided(cases, np.zeros(len(cases), dtype=bool), base=0.0)
    result = discover(frame, sensitive_features=SENSITIVE)
    assert result.groups == ()
    assert result.notes == ("deny_rate is the same for every case of the search half; no subgroup can deviate",)
    assert result.to_records() == []
    assert result.metrics_frame().empty and list(result.metrics_frame().columns) == list(COLUMNS)


# --------------------------------------------------------------------------
# each case's part in a rate means what it means in the report


def measurement_frame(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """A measurement frame with errors, quarantine, referrals, unresolved cases, missing truths and amounts."""
    rng = np.random.default_rng(seed)
    status = rng.choice(["ok", "error", "quarantined"], n, p=[0.9, 0.06, 0.04])
    outcome = rng.choice(["grant", "partial", "deny", "refer"], n, p=[0.4, 0.1, 0.25, 0.25]).astype(object)
    final = np.where(outcome == "refer", rng.choice(["grant", "deny", "refer"], n, p=[0.5, 0.4, 0.1]), outcome)
    outcome[status == "error"] = "error"
    final[status == "error"] = "error"
    truth = rng.choice(["grant", "partial", "deny", "refer", ""], n, p=[0.45, 0.1, 0.35, 0.05, 0.05])
    truth_amount = np.where(np.isin(truth, ["grant", "partial"]), np.round(rng.uniform(500, 12000, n), 2),
                            np.where(truth == "deny", 0.0, np.nan))
    fav = np.isin(final, ["grant", "partial"])
    base = np.where(np.isnan(truth_amount), 4000.0, truth_amount)
    final_amount = np.where(fav, np.round(base * rng.uniform(0.7, 1.1, n), 2), np.nan)
    return pd.DataFrame({
        "case_id": [f"c{i}" for i in range(n)],
        "sex": rng.choice(["female", "male"], n),
        "status": status,
        "outcome": outcome,
        "final_outcome": final,
        "final_amount": final_amount,
        "truth_outcome": truth,
        "truth_amount": truth_amount,
        "channel": rng.choice(["digital", "paper"], n),
    })


def test_each_case_part_in_a_rate_adds_up_to_the_reports_counts() -> None:
    frame = measurement_frame()
    table = measure(frame, sensitive_features=["sex"], statistics=StatisticsSpec(bootstrap=0))
    checked = 0
    for metric in case_rates():
        if metric == WRONGFUL_DECISION_RATE:
            continue
        eligible, positive = case_rate_parts(frame, metric)
        for sex in ("female", "male"):
            row = table[(table["metric"] == metric) & (table["group"] == sex)].iloc[0]
            inside = (frame["sex"] == sex).to_numpy()
            assert int(eligible[inside].sum()) == int(row["n"]), metric
            assert int(positive[inside].sum()) == int(row["count"]), metric
            checked += 1
    assert checked >= 2 * 15


def test_wrongful_decision_rate_counts_wrongful_refusals_and_grants_of_decided_cases() -> None:
    frame = measurement_frame()
    eligible, positive = case_rate_parts(frame, WRONGFUL_DECISION_RATE)
    table = measure(frame, sensitive_features=["sex"], statistics=StatisticsSpec(bootstrap=0))
    overall = table[table["attributes"].map(len) == 0].set_index("metric")
    ok = frame["status"] == "ok"
    usable = ok & ~frame["truth_outcome"].isin(["", "refer", "error"])
    unresolved_with_truth = int((usable & (frame["final_outcome"] == "refer")).sum())
    wrong = overall.at["wrongful_denial_rate", "count"] + overall.at["wrongful_grant_rate", "count"]
    denominator = overall.at["wrongful_denial_rate", "n"] + overall.at["wrongful_grant_rate", "n"]
    assert int(positive.sum()) == int(wrong)
    assert int(eligible.sum()) == int(denominator) - unresolved_with_truth
    # by hand: decided, usable truth, favourable truth but refused or unfavourable truth but granted
    fav = frame["final_outcome"].isin(["grant", "partial"])
    entitled = frame["truth_outcome"].isin(["grant", "partial"])
    refused = ok & ~fav & (frame["final_outcome"] != "refer")
    by_hand = usable & ((entitled & refused) | (~entitled & fav))
    assert (positive == by_hand.to_numpy()).all()


@pytest.mark.parametrize(
    ("outcome", "metric"),
    [("deny", "deny_rate"), ("refusal", "deny_rate"), ("refer", "refer_rate"), ("routing", "refer_rate"),
     ("wrongful", WRONGFUL_DECISION_RATE), ("shortfall", "underpayment_rate"),
     ("false_positive_rate", "false_positive_rate")],
)
def test_outcome_names_choose_the_rate(outcome: str, metric: str) -> None:
    frame = measurement_frame(2000)
    result = discover(frame, outcome=outcome, features=["channel"], sensitive_features=["sex"],
                      spec=DiscoverSpec(min_size=50, top=1))
    assert result.metric == metric
    assert all(r["metric"] == DISCOVERED_PREFIX + metric for r in result.metrics_frame().to_dict("records"))


# --------------------------------------------------------------------------
# rows for the run's correction, records for results.json


def test_rows_join_the_run_family_and_take_back_the_runs_correction(cases: pd.DataFrame) -> None:
    planted = (cases["channel"] == "paper").to_numpy() & cases["interpreter"].to_numpy(dtype=bool)
    frame = decided(cases, planted)
    result = discover(frame, sensitive_features=SENSITIVE, seed=3)
    rows = result.metrics_frame()
    assert list(rows.columns) == list(COLUMNS)
    assert (rows["metric"] == "discovered_deny_rate").all() and (rows["reference_group"] == "rest").all()
    assert rows["group"].tolist() == [g.definition for g in result.groups]
    assert rows["attributes"].tolist() == [g.attributes for g in result.groups]
    named = measure(frame, sensitive_features=SENSITIVE, statistics=StatisticsSpec(bootstrap=0))
    run = pd.concat([named, rows], ignore_index=True)
    run["p_adjusted"] = adjust_pvalues(run["p_value"].to_numpy(dtype=float), method="holm")
    joined = result.with_run_correction(run)
    m = int(run["p_value"].notna().sum())
    assert joined.correction == {"method": "holm", "family": "run", "m": m}
    assert [g.test["p_adjusted"] for g in joined.groups] == pytest.approx(run["p_adjusted"].tail(len(rows)).tolist())
    # the same from the raw p-values of the other tests
    again = result.joined_with(named["p_value"].to_numpy(dtype=float), method="holm")
    assert [g.test["p_adjusted"] for g in again.groups] == [g.test["p_adjusted"] for g in joined.groups]
    # a run-wide family is larger, so no adjusted p-value gets smaller
    assert all(j.test["p_adjusted"] >= g.test["p_adjusted"] for j, g in zip(joined.groups, result.groups))


def test_records_follow_the_results_schema(cases: pd.DataFrame) -> None:
    from jsonschema import Draft202012Validator

    planted = (cases["channel"] == "paper").to_numpy() & cases["interpreter"].to_numpy(dtype=bool)
    result = discover(decided(cases, planted), sensitive_features=SENSITIVE, seed=3)
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = Draft202012Validator({"$defs": schema["$defs"], **schema["properties"]["discovered"]})
    records = json.loads(json.dumps(result.to_records(), allow_nan=False))
    validator.validate(records)
    assert records[0]["conditions"][0] == {"feature": "channel", "op": "=", "value": "paper",
                                           "text": "channel = paper"}
    assert records[0]["confirmed"] is True and records[0]["direction"] == "higher"
    broken = [dict(records[0], makeup=[{"attribute": "sex"}])]
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


# --------------------------------------------------------------------------
# small groups, options and bad input


def test_small_groups_are_suppressed_without_counts() -> None:
    rng = np.random.default_rng(2)
    n = 400
    frame = pd.DataFrame({
        "case_id": [f"c{i}" for i in range(n)],
        "status": "ok",
        "outcome": rng.choice(["grant", "deny"], n, p=[0.7, 0.3]),
        "kind": rng.choice(["a", "b", "c", "rare"], n, p=[0.33, 0.33, 0.31, 0.03]),
        "sex": rng.choice(["female", "male", "x"], n, p=[0.49, 0.49, 0.02]),
    })
    frame["final_outcome"] = frame["outcome"]
    result = discover(frame, features=["kind"], sensitive_features=["sex"],
                      statistics=StatisticsSpec(min_group_size=30),
                      spec=DiscoverSpec(min_size=10, top=4, max_conditions=1))
    small = [g for g in result.groups if g.test["suppressed"]]
    assert small, "a group of about 6 cases on the test half must be suppressed"
    for g in small:
        assert all(g.test[k] is None for k in ("n", "count", "value", "ci_low", "p_value", "n_test_cases"))
        assert g.test["reason"].startswith("suppressed: the group has fewer than min_group_size 30")
    rows = result.metrics_frame()
    assert rows.loc[rows["suppressed"], ["n", "count", "value", "p_value"]].isna().all().all()
    for g in result.groups:  # the make-up never shows a share resting on fewer than 30 cases
        inside = evaluate(frame, [c.to_dict() for c in g.conditions])
        for r in g.makeup:
            count = int((frame.loc[inside, "sex"] == r["group"]).sum())
            assert r["suppressed"] == (0 < count < 30 or inside.sum() < 30)
            assert (r["share"] is None) == r["suppressed"]


def test_features_and_outcome_errors_name_the_key_and_the_value() -> None:
    frame = measurement_frame(500)
    with pytest.raises(DataError, match=r"discover.features names 'shoe_size', which is not a column"):
        discover(frame, features=["shoe_size"])
    with pytest.raises(SpecError, match=r"discover.features names 'final_outcome', a decision or identity column"):
        discover(frame, features=["final_outcome"])
    with pytest.raises(SpecError, match=r"discover.outcome must be one of deny, refusal, refer.* Got 'luck'"):
        discover(frame, outcome="luck", features=["channel"])
    with pytest.raises(SpecError, match=r"discover.outcome .* Got 'mean_amount'"):
        discover(frame, outcome="mean_amount", features=["channel"])
    with pytest.raises(DataError, match=r"the rate 'wrongful_decision_rate' needs the correct outcome"):
        discover(frame.drop(columns=["truth_outcome", "truth_amount"]), outcome="wrongful", features=["channel"])
    with pytest.raises(SpecError, match=r"seed must be an integer >= 0. Got -1"):
        discover(frame, features=["channel"], seed=-1)
    bad = frame.assign(status=np.where(np.arange(len(frame)) == 3, "maybe", frame["status"]))
    with pytest.raises(DataError, match=r"column 'status' must be one of ok, error, quarantined") as err:
        discover(bad, features=["channel"])
    assert err.value.failures["case_id"].tolist() == ["c3"]


def test_a_personnummer_never_becomes_a_condition() -> None:
    frame = measurement_frame(2000)
    pnr = "19811218-9876"
    frame["note"] = np.where(np.arange(len(frame)) % 2 == 0, pnr, "ordinary")  # half the cases share one
    frame.loc[frame["note"] == pnr, "outcome"] = "deny"
    frame.loc[frame["note"] == pnr, "final_outcome"] = "deny"
    result = discover(frame, features=["note", "channel"], sensitive_features=["sex"],
                      spec=DiscoverSpec(min_size=50, top=3))
    text = json.dumps(result.to_dict(), ensure_ascii=False)
    assert pnr not in text and "19811218" not in text
    assert any(c.feature == "note" for g in result.groups for c in g.conditions)  # "ordinary" is a condition


def test_spec_section_is_strict() -> None:
    base = {"name": "d", "population": {"synthetic": str(POPULATION), "n": 10}, "sensitive_features": ["sex"],
            "engine": {"kind": "reference"}}
    audit = AuditSpec.from_dict({**base, "discover": {"outcome": "shortfall", "max_conditions": 3, "top": 2}})
    assert audit.discover == DiscoverSpec(outcome="shortfall", max_conditions=3, top=2)
    assert AuditSpec.from_dict(base).discover is None
    aggregated = {**base, "population": {"aggregated": "t.csv", "attribute": "a", "group": "g",
                                         "cells": {"tp": "TP", "fp": "FP", "fn": "FN", "tn": "TN"}}}
    del aggregated["engine"]
    with pytest.raises(SpecError, match="aggregated population holds counts, not cases, so there are no subgroups"):
        AuditSpec.from_dict({**aggregated, "discover": {}}, source="s.yaml")
    for section, message in [
        ({"depth": 2}, "s.yaml: discover.depth is not a known key. Known keys of discover: bins, features, "
                       "max_conditions, min_size, outcome, top."),
        ({"top": 0}, "s.yaml: discover.top must be an integer >= 1. Got 0."),
        ({"outcome": "Refusal!"}, "s.yaml: discover.outcome must be deny, refusal, refer, routing, wrongful, "
                                  "shortfall or the snake_case name of a rate metric (e.g. wrongful_denial_rate). "
                                  "Got 'Refusal!'."),
        ({"features": []}, "s.yaml: discover.features must list at least 1 item. Got []."),
    ]:
        with pytest.raises(SpecError) as err:
            AuditSpec.from_dict({**base, "discover": section}, source="s.yaml")
        assert str(err.value) == message


def test_discovery_frame_adds_case_columns_by_case_id(cases: pd.DataFrame) -> None:
    final = cases[["case_id", "sex"]].iloc[::-1].assign(status="ok", outcome="grant", final_outcome="grant")
    out = discovery_frame(final, cases, ["channel", "sex"])
    expected = cases.set_index("case_id").loc[final["case_id"], "channel"].to_numpy()
    assert (out["channel"].to_numpy() == expected).all()
    with pytest.raises(DataError, match="discover.features names 'nope'"):
        discovery_frame(final, cases, ["nope"])
    with pytest.raises(DataError, match="the case frame holds no case 'zz'"):
        discovery_frame(final.assign(case_id="zz"), cases, ["channel"])


def test_result_is_frozen(cases: pd.DataFrame) -> None:
    result = discover(decided(cases, np.zeros(len(cases), dtype=bool)), features=["channel"],
                      sensitive_features=SENSITIVE)
    assert isinstance(result, DiscoveryResult)
    with pytest.raises(AttributeError):
        result.metric = "x"  # type: ignore[misc]
