"""Public values measured from decision logs (audit.public_values), in results.json and the scorecard."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import audit
from audit.exceptions import DataError
from audit.public_values import DIMENSIONS, INDICATORS, VALUE_COLUMNS, public_values
from audit.report import render_html, render_markdown

ROOT = Path(__file__).resolve().parents[1]


def _wilson(k: float, n: float, z: float = stats.norm.ppf(0.975)) -> tuple[float, float]:
    """Wilson's interval written out (Wilson 1927)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def _log() -> pd.DataFrame:
    """Twelve decided applications (6 women, 6 men) with every column an indicator reads."""
    return pd.DataFrame({
        "case_id": [f"c{i}" for i in range(12)],
        "sex": ["female"] * 6 + ["male"] * 6,
        "outcome": ["grant", "refer", "grant", "partial", "refer", "grant",
                    "refer", "refer", "grant", "refer", "deny", "grant"],
        "final_outcome": ["grant", "deny", "partial", "partial", "grant", "grant",
                          "deny", None, "grant", "grant", "deny", "deny"],
        "truth_outcome": ["grant", "deny", "grant", "partial", "grant", "deny",
                          "deny", "grant", "grant", "deny", "deny", "grant"],
        "decided_by": ["engine"] * 12,
        "override": [False, False, True, False, False, False, False, False, False, False, False, True],
        "status": ["ok"] * 12,
        "days_to_decision": [1, 9, 2, 3, 12, 1, 14, np.nan, 2, 20, 5, 1],
        "channel": ["digital", "paper", "digital", "digital", "Paper", "digital",
                    "paper", "paper", "digital", None, "digital", "digital"],
        "meeting_held": ["ja", "nej", "yes", "no", "1", "0", "true", "false", "ja", "ja", "nej", None],
        "appealed": [False, True, False, False, False, True, True, False, False, False, True, False],
        "documents_requested": [2, 3, 0, 1, 4, 0, 2, 2, 0, 3, 1, 0],
        "documents_completed": [2, 1, 0, 1, 4, 0, 0, 2, 0, 3, 1, 0],
    })


def _row(table: pd.DataFrame, indicator: str, group: str = "all") -> pd.Series:
    hit = table[(table["indicator"] == indicator) & (table["group"] == group)]
    assert len(hit) == 1, (indicator, group)
    return hit.iloc[0]


def test_every_indicator_by_hand() -> None:
    t = public_values(_log(), sensitive_features=["sex"], review=True, min_group_size=1)
    assert list(t.columns) == list(VALUE_COLUMNS)
    assert sorted(set(t["dimension"])) == sorted(DIMENSIONS) and len(set(t["indicator"])) == len(INDICATORS)
    expected = {
        # (indicator, group): (count, n)
        ("automation_rate", "all"): (7, 12), ("automation_rate", "female"): (4, 6),
        ("routed_to_person_rate", "male"): (3, 6),
        # final decisions (c7 has none), against the law: c0 c1 c3 c4 c6 c8 c10 agree; c2 c5 c9 c11 do not
        ("agreement_rate", "all"): (7, 11),
        ("override_rate", "all"): (2, 7),  # of the engine's own 7 decisions, c2 and c11 were changed
        ("digital_rate", "all"): (7, 11),  # c9 has no channel; "Paper" counts as paper
        ("meeting_rate", "all"): (6, 11),  # c11 unknown
        ("appeal_rate", "female"): (2, 6),
        ("documents_completed_rate", "all"): (14, 18),  # documents, not applications
    }
    for (indicator, group), (k, n) in expected.items():
        row = _row(t, indicator, group)
        assert (row["count"], row["n"]) == (k, n), (indicator, group)
        assert row["value"] == pytest.approx(k / n)
        low, high = _wilson(k, n)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), abs=1e-12)
        assert row["se"] == pytest.approx(math.sqrt(k / n * (1 - k / n) / n))
    days = np.array([1, 9, 2, 3, 12, 1, 14, 2, 20, 5, 1], dtype=float)
    row = _row(t, "days_to_decision")
    low, high = stats.t.interval(0.95, len(days) - 1, loc=days.mean(), scale=stats.sem(days))
    assert row["n"] == 11 and row["value"] == pytest.approx(days.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
    routed = np.array([9, 12, 14, 20], dtype=float)  # c7 was routed but has no days
    assert _row(t, "days_to_decision_routed")["value"] == pytest.approx(routed.mean())
    # dates instead of a days column give the same days
    log = _log().drop(columns="days_to_decision")
    log["applied_at"] = "2026-03-01"
    log["decided_at"] = (pd.Timestamp("2026-03-01") + pd.to_timedelta(_log()["days_to_decision"], unit="D")
                         ).dt.strftime("%Y-%m-%d")
    again = public_values(log, sensitive_features=["sex"], min_group_size=1)
    assert _row(again, "days_to_decision")["value"] == pytest.approx(days.mean())


def test_missing_columns_are_named_never_zero() -> None:
    log = _log()[["case_id", "sex", "outcome", "status"]]
    t = public_values(log, sensitive_features=["sex"], min_group_size=1)
    for name, columns in (("meeting_rate", ["meeting_held"]), ("appeal_rate", ["appealed"]),
                          ("documents_completed_rate", ["documents_requested", "documents_completed"]),
                          ("days_to_decision", ["days_to_decision"]), ("override_rate", ["override", "review"]),
                          ("agreement_rate", ["final_outcome", "truth_outcome"])):
        rows = t[t["indicator"] == name]
        assert len(rows) == 1 and np.isnan(rows["value"].iloc[0]), name
        assert rows["columns"].iloc[0] == columns, name
        assert rows["reason"].iloc[0].startswith("not measured: the data has no column "), name
    assert "review (recorded caseworker decisions)" in _row(t, "override_rate")["reason"]
    assert _row(t, "automation_rate")["value"] == pytest.approx(7 / 12)
    # columns of the case frame are joined on case_id
    cases = _log()[["case_id", "channel"]]
    t = public_values(log, cases, sensitive_features=["sex"], min_group_size=1)
    assert _row(t, "digital_rate")["count"] == 7
    # no case rows at all: every indicator says why
    t = public_values(None, sensitive_features=["sex"], absent="an aggregated table has no case rows")
    assert len(t) == len(INDICATORS) and t["value"].isna().all()
    assert set(t["reason"]) == {"not measured: an aggregated table has no case rows"}


def test_small_groups_are_suppressed_and_bad_values_refused() -> None:
    t = public_values(_log(), sensitive_features=["sex"], min_group_size=7)
    female = _row(t, "automation_rate", "female")
    assert female["suppressed"] and np.isnan(female["value"]) and "fewer than 7" in female["reason"]
    assert not _row(t, "automation_rate")["suppressed"]
    bad = _log().assign(meeting_held=["maybe"] + ["ja"] * 11)
    with pytest.raises(DataError, match=r"'meeting_held' must hold yes/no values .*Got 'maybe' in 1 row"):
        public_values(bad, sensitive_features=["sex"])
    bad = _log().assign(channel=["fax"] + ["digital"] * 11)
    with pytest.raises(DataError, match=r"'channel' must hold digital or paper\. Got 'fax'"):
        public_values(bad, sensitive_features=["sex"])
    bad = _log().assign(documents_completed=[5] + [0] * 11)
    with pytest.raises(DataError, match=r"'documents_completed' must lie between 0 and documents_requested\. "
                                         r"Got 5 of 2"):
        public_values(bad, sensitive_features=["sex"])
    early = _log().assign(days_to_decision=[-1] + [1] * 11)
    row = _row(public_values(early, sensitive_features=["sex"]), "days_to_decision")
    assert row["n"] == 11 and "1 negative days_to_decision left out" in row["reason"]


def test_a_run_carries_its_public_values_into_results_and_the_scorecard(tmp_path: Path) -> None:
    spec = audit.load_spec(ROOT / "examples" / "monitor.yaml").with_options(population={
        "synthetic": "../datasets/sweden/population-2026.yaml", "n": 600,
        "derive": {"children": {"count_items": "child_ages"}}})
    spec = spec.with_options(sensitive_features=["birth_region"], reference_groups={"birth_region": "sweden"},
                             thresholds=[], monitor=None)
    result = spec.run(out=tmp_path)
    data = json.loads((result.run_dir / "results.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(json.loads((ROOT / "audit" / "schemas" / "results.schema.json")
                                               .read_text(encoding="utf-8"))).validate(data)
    values = pd.DataFrame(data["values"])
    frame = pd.read_parquet(result.run_dir / "decisions.parquet")
    decided = frame[frame["status"] == "ok"]
    digital = values[(values["indicator"] == "digital_rate") & (values["group"] == "all")].iloc[0]
    assert digital["n"] == 600 and 0 < digital["value"] < 1  # the synthetic population has a channel column
    auto = values[(values["indicator"] == "automation_rate") & (values["group"] == "all")].iloc[0]
    assert auto["count"] == (decided["outcome"] != "refer").sum() and auto["n"] == len(decided)
    html = (result.run_dir / "report.html").read_text(encoding="utf-8")
    assert "Applications made digitally" in html and "Engagement" in html
    assert "not measured: the data has no column meeting_held" in html
    md = render_markdown(result)
    assert "Decisions appealed" in md
    sv = render_html(result, language="sv")
    assert "Delaktighet" in sv and "inte mätt: data saknar kolumnen appealed" in sv


@pytest.mark.parametrize("seed", range(4))
def test_intersection_groups_equal_the_joined_labels(seed: int) -> None:
    """An intersection's groups and their counts are those of the joined labels "a & b", by a pandas group-by.

    Labels that hold " & " themselves make two different pairs read alike; those are one group, as their label
    says. Missing values are a group of their own; a numeric feature is labelled by its text.
    """
    from audit.metrics import MISSING_LABEL

    rng = np.random.default_rng(seed)
    n = 600
    log = _log().sample(n=n, replace=True, random_state=seed).reset_index(drop=True)
    log["case_id"] = [f"c{i}" for i in range(n)]
    log["sex"] = rng.choice(np.array(["female", "male", "x & y", None], dtype=object), n)
    log["region"] = rng.choice(np.array(["sweden", "y", "x", "y & sweden", None], dtype=object), n)
    log["band"] = rng.integers(1, 4, n)
    t = public_values(log, sensitive_features=["sex", "region", "band"],
                      intersections=[["sex", "region"], ["region", "band", "sex"]], min_group_size=1)
    for attrs in (["sex", "region"], ["region", "band", "sex"]):
        label = log[attrs[0]].astype("string").fillna(MISSING_LABEL)
        for a in attrs[1:]:
            label = label + " & " + log[a].astype("string").fillna(MISSING_LABEL)
        expected = label.value_counts().sort_index()
        rows = t[(t["indicator"] == "automation_rate") & t["attributes"].map(lambda a: list(a) == attrs)]
        got = rows.set_index("group")["n"]
        assert list(got.index) == sorted(expected.index)  # in the labels' order, each label once
        assert got.astype(int).tolist() == expected.astype(int).tolist()
    assert (t["group"] == "x & y & y & sweden").any()  # two pairs, one label


@pytest.mark.parametrize("dense", [True, False])
def test_every_group_sums_equal_a_pandas_group_by_of_its_cases(monkeypatch: pytest.MonkeyPatch, dense: bool) -> None:
    """Each group's n, count and mean equal a pandas group-by over the cases, whichever way the cells are numbered.

    The sums are counted once per cell (a combination of every feature's values) and added up per group: by
    arithmetic when the combinations are few, by sorting when they are many (a feature of 300 values). Both
    give what a group-by of the indicator's own cells over the joined labels gives.
    """
    import audit.public_values as pv
    from audit.metrics import MISSING_LABEL

    if not dense:
        monkeypatch.setattr(pv, "_DENSE_CELLS", 0)
    rng = np.random.default_rng(7)
    n = 900
    log = _log().sample(n=n, replace=True, random_state=7).reset_index(drop=True)
    log["case_id"] = [f"c{i}" for i in range(n)]
    log["sex"] = rng.choice(np.array(["female", "male", None], dtype=object), n)
    log["municipality"] = [f"m{k:03d}" for k in rng.integers(0, 300, n)]
    log["band"] = rng.integers(1, 5, n)
    log["days_to_decision"] = rng.gamma(2.0, 3.7, n)
    features, crossed = ["sex", "municipality", "band"], [["sex", "band"], ["band", "municipality", "sex"]]
    t = public_values(log, sensitive_features=features, intersections=crossed, min_group_size=1, review=True)
    common = pv._Common(log, ["refer"])
    for ind in (i for i in INDICATORS if i.name in ("automation_rate", "days_to_decision", "override_rate")):
        num, den, _ = pv._cells(ind, log, common)
        for attrs in [[], *[[a] for a in features], *crossed]:
            if attrs:
                label = log[attrs[0]].astype("string").fillna(MISSING_LABEL)
                for a in attrs[1:]:
                    label = label + " & " + log[a].astype("string").fillna(MISSING_LABEL)
            else:
                label = pd.Series("all", index=log.index)
            counted = den > 0
            cells = pd.DataFrame({"g": label.to_numpy(), "num": np.where(counted, num, 0.0), "den": den,
                                  "cases": counted.astype(float)})
            expected = cells.groupby("g").sum().sort_index()
            rows = t[(t["indicator"] == ind.name) & t["attributes"].map(lambda a, at=attrs: list(a) == at)]
            got = rows.set_index("group").sort_index()
            assert list(got.index) == list(expected.index)
            if ind.kind == "rate":
                np.testing.assert_array_equal(got["n"].to_numpy(float), expected["den"].to_numpy())
                np.testing.assert_array_equal(got["count"].to_numpy(float), expected["num"].to_numpy())
            else:
                np.testing.assert_array_equal(got["n"].to_numpy(float), expected["cases"].to_numpy())
                mean = (expected["num"] / expected["cases"]).to_numpy()
                np.testing.assert_allclose(got["value"].to_numpy(float), mean, rtol=1e-12, equal_nan=True)


def test_case_columns_are_joined_by_case_id_whatever_the_order() -> None:
    """The case frame's columns reach each decision by its id: shuffled, repeated (first row wins) or absent."""
    full = _log()
    log = full.drop(columns=["channel", "meeting_held", "appealed"])
    cases = full[["case_id", "channel", "meeting_held", "appealed"]]
    expected = public_values(full, sensitive_features=["sex"], min_group_size=1)
    shuffled = cases.sample(frac=1, random_state=4)
    repeated = pd.concat([shuffled, shuffled.assign(channel="paper", appealed=True)], ignore_index=True)
    for given in (cases, shuffled, repeated):
        got = public_values(log, given, sensitive_features=["sex"], min_group_size=1)
        pd.testing.assert_frame_equal(got, expected)
    # a case the case frame lacks counts as a missing value: c9's channel is already missing, c0's becomes so
    got = public_values(log, cases[cases["case_id"] != "c0"], sensitive_features=["sex"], min_group_size=1)
    assert _row(got, "digital_rate")["count"] == 6 and _row(got, "digital_rate")["n"] == 10
    assert _row(got, "meeting_rate")["n"] == 10  # c11 has none either


def test_a_decision_without_a_case_id_gets_no_case_columns() -> None:
    """A missing id identifies no case: its case columns are missing (never those of another id-less row)."""
    full = _log()
    log = full.drop(columns=["channel"]).assign(case_id=pd.array([None] + [f"c{i}" for i in range(1, 12)], dtype="str"))
    cases = full[["case_id", "channel"]].assign(case_id=pd.array([None] + [f"c{i}" for i in range(1, 12)], dtype="str"))
    got = public_values(log, cases, sensitive_features=["sex"], min_group_size=1)
    expected = public_values(full.assign(channel=[None] + full["channel"].tolist()[1:]), sensitive_features=["sex"],
                             min_group_size=1)
    pd.testing.assert_frame_equal(got, expected)
