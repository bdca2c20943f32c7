"""Stage funnels (issue 22, points 1 and 2): where along the journey a group's share shifts.

Every figure is checked against a second computation: shares and rates with
pandas group-bys, Wilson intervals from the textbook formula, the shift test
with scipy's Pearson chi-square (no continuity correction) on the group/rest
by reached/not-reached table, Holm's adjustment written out by hand. The same
counts fed as cases and as a published stage table (wide, long with a count,
long with entering and leaving) give identical funnels; suppressed cells stay
suppressed; a run writes its funnel to results.json (schema-valid, equal to a
recount from decisions.parquet) and ``insyn funnel`` prints it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from scipy import stats

from audit import Audit, load_spec
from audit.exceptions import DataError
from audit.metrics import (
    FUNNEL_COLUMNS,
    FunnelStage,
    funnel,
    funnel_from_cases,
    read_stage_table,
    stage_counts,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "audit" / "schemas" / "results.schema.json"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def wilson(k: float, n: float, z: float = stats.norm.ppf(0.975)) -> tuple[float, float]:
    """Wilson's score interval, from the formula (Wilson 1927)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment, written out."""
    valid = np.flatnonzero(~np.isnan(p))
    out = np.full(p.shape, np.nan)
    running = 0.0
    for rank, i in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (valid.size - rank) * p[i]))
        out[i] = running
    return out


@pytest.fixture(scope="module")
def cases() -> tuple[pd.DataFrame, list[FunnelStage]]:
    """4,000 cases: region c is refused twice as often; intake drops 5 % of everyone."""
    rng = np.random.default_rng(22)
    n = 4000
    frame = pd.DataFrame({"case_id": [f"c{i}" for i in range(n)],
                          "region": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
                          "sex": rng.choice(["f", "m"], n)})
    passed = rng.random(n) < 0.95
    refused = passed & (rng.random(n) < np.where(frame["region"] == "c", 0.4, 0.2))
    every = np.ones(n, dtype=bool)
    stages = [FunnelStage("population", every, every), FunnelStage("intake", every, passed),
              FunnelStage("decision", passed, refused)]
    frame["passed"], frame["refused"] = passed, refused
    return frame, stages


def test_funnel_measures_match_pandas_wilson_and_scipy(cases: tuple[pd.DataFrame, list[FunnelStage]]) -> None:
    frame, stages = cases
    table = funnel_from_cases(frame, stages, ["region", "sex"])
    assert list(table.columns) == list(FUNNEL_COLUMNS)
    assert len(table) == 3 * (3 + 2)
    pop_share = frame["region"].value_counts(normalize=True)
    refused = frame.loc[frame["refused"]]
    passed = frame.loc[frame["passed"]]
    rows = table.loc[table["attributes"].map(tuple) == ("region",)].set_index(["stage", "group"])
    for g in ("a", "b", "c"):
        dec = rows.loc[("decision", g)]
        assert dec["entering"] == (passed["region"] == g).sum()
        assert dec["leaving"] == (refused["region"] == g).sum()
        assert dec["share_in"] == pytest.approx((passed["region"] == g).mean(), abs=1e-12)
        assert dec["share_out"] == pytest.approx((refused["region"] == g).mean(), abs=1e-12)
        assert dec["rate"] == pytest.approx(passed.loc[passed["region"] == g, "refused"].mean(), abs=1e-12)
        lo, hi = wilson(dec["leaving"], dec["entering"])
        assert (dec["rate_ci_low"], dec["rate_ci_high"]) == pytest.approx((lo, hi), abs=1e-12)
        assert dec["population_share"] == pytest.approx(pop_share[g], abs=1e-12)
        assert dec["shift"] == pytest.approx((refused["region"] == g).mean() - pop_share[g], abs=1e-12)
        assert dec["shift_ratio"] == pytest.approx((refused["region"] == g).mean() / pop_share[g], abs=1e-12)
        slo, shi = wilson(dec["leaving"], len(refused))
        assert dec["shift_ci_low"] == pytest.approx(slo - pop_share[g], abs=1e-12)
        assert dec["shift_ratio_ci_high"] == pytest.approx(shi / pop_share[g], abs=1e-12)
        # the shift test: reached the decision's outcome or not, group against rest, Pearson without correction
        in_g = frame["region"] == g
        obs = [[(in_g & frame["refused"]).sum(), (in_g & ~frame["refused"]).sum()],
               [(~in_g & frame["refused"]).sum(), (~in_g & ~frame["refused"]).sum()]]
        p = stats.chi2_contingency(obs, correction=False)[1]
        assert dec["p_value"] == pytest.approx(p, rel=1e-9)
        assert dec["test"] == "two-proportion z-test"
    # the planted shift is found, the population row is not tested, and every test is corrected together
    assert rows.loc[("decision", "c"), "shift_ratio"] > 1.5 and rows.loc[("decision", "c"), "p_adjusted"] < 1e-6
    assert rows.loc[("population", "a"), "shift"] == 0 and np.isnan(rows.loc[("population", "a"), "p_value"])
    np.testing.assert_allclose(table["p_adjusted"].to_numpy(float), holm(table["p_value"].to_numpy(float)),
                               rtol=1e-12, equal_nan=True)


def test_the_same_counts_as_cases_and_as_a_stage_table_give_the_same_funnel(
    cases: tuple[pd.DataFrame, list[FunnelStage]], tmp_path: Path,
) -> None:
    frame, stages = cases
    from_cases = funnel_from_cases(frame, stages, ["region"])
    # wide: one row per group, one count column per stage (each stage's cases enter the next)
    wide = frame.groupby("region").agg(population=("case_id", "size"), intake=("passed", "sum"),
                                       decision=("refused", "sum")).reset_index()
    wide.to_csv(tmp_path / "wide.csv", index=False)
    counts = read_stage_table(tmp_path / "wide.csv", stages=["population", "intake", "decision"], group="region")
    pd.testing.assert_frame_equal(funnel(counts), from_cases)
    # long with one count per stage
    long = wide.melt(id_vars="region", var_name="stage", value_name="count")
    long.to_csv(tmp_path / "long.csv", index=False)
    counts = read_stage_table(tmp_path / "long.csv", group="region")
    pd.testing.assert_frame_equal(funnel(counts), from_cases)
    # long with entering and leaving (what stage_counts writes)
    direct = stage_counts(frame, stages, ["region"])
    direct.rename(columns={"group": "region"}).to_csv(tmp_path / "el.csv", index=False)
    counts = read_stage_table(tmp_path / "el.csv", group="region")
    pd.testing.assert_frame_equal(funnel(counts), from_cases)


def test_cells_suppressed_at_source_stay_suppressed(tmp_path: Path) -> None:
    table = pd.DataFrame({"region": ["a", "b", "c", "Totalt"],
                          "population": ["600", "300", "100", "1000"],
                          "selected": ["120", "..", "<5", "160"]})
    table.to_csv(tmp_path / "t.csv", index=False)
    no_total = funnel(read_stage_table(tmp_path / "t.csv", stages=["population", "selected"], group="region",
                                       total=None).query("group != 'Totalt'"))
    sel = no_total.loc[no_total["stage"] == "selected"].set_index("group")
    assert sel.loc["b", "reason"] == "cell suppressed at source" and np.isnan(sel.loc["b", "leaving"])
    assert np.isnan(sel.loc["c", "share_out"]) and np.isnan(sel.loc["c", "p_value"])
    assert np.isnan(sel.loc["a", "share_out"]) and "stage total is unknown" in sel.loc["a", "reason"]
    assert sel.loc["a", "rate"] == pytest.approx(0.2)
    # with the published total, group a's share and shift are defined: 120 of 160 selected, 600 of 1000 in all
    with_total = funnel(read_stage_table(tmp_path / "t.csv", stages=["population", "selected"], group="region",
                                         total="Totalt"))
    a = with_total.loc[(with_total["stage"] == "selected") & (with_total["group"] == "a")].iloc[0]
    assert a["share_out"] == pytest.approx(120 / 160) and a["shift"] == pytest.approx(120 / 160 - 0.6)
    obs = [[120, 480], [40, 360]]
    assert a["p_value"] == pytest.approx(stats.chi2_contingency(obs, correction=False)[1], rel=1e-9)
    assert "(total)" not in set(with_total["group"])


def test_small_groups_are_suppressed_at_every_stage_with_a_second_group() -> None:
    rng = np.random.default_rng(5)
    region = np.array(["a"] * 500 + ["b"] * 300 + ["c"] * 40 + ["d"] * 6)
    refused = rng.random(region.size) < 0.3
    refused[region == "c"] = np.arange(40) < 3  # 3 refused: a small cell at the decision
    frame = pd.DataFrame({"case_id": np.arange(region.size).astype(str), "region": region})
    every = np.ones(region.size, dtype=bool)
    table = funnel_from_cases(frame, [FunnelStage("population", every, every),
                                      FunnelStage("decision", every, refused)], ["region"],
                              statistics={"min_group_size": 10})
    by = table.set_index(["stage", "group"])
    for g in ("c", "d"):  # d has 6 cases; c has a cell of 3: both hidden everywhere, counts and all
        for stage in ("population", "decision"):
            row = by.loc[(stage, g)]
            assert row["suppressed"] and np.isnan(row["entering"]) and np.isnan(row["share_in"])
            assert row["reason"].startswith("suppressed")
    assert "fewer than min_group_size 10 cases" in by.loc[("population", "d"), "reason"]
    assert not by.loc[("decision", "a"), "suppressed"]
    text = json.dumps(table.to_dict(orient="records"), default=str)
    assert '"entering": 6.0' not in text and '"leaving": 3.0' not in text


def test_bad_stage_tables_are_refused_with_the_file_column_and_value(tmp_path: Path) -> None:
    pd.DataFrame({"region": ["a"], "population": ["ten"], "decision": ["3"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"bad\.csv: column 'population', row 2 \(group 'a'\): 'ten' is not a count"):
        read_stage_table(tmp_path / "bad.csv", stages=["population", "decision"], group="region")
    pd.DataFrame({"region": ["a"], "population": ["10"], "decision": ["30"]}).to_csv(tmp_path / "o.csv", index=False)
    with pytest.raises(DataError, match=r"at stage 'decision', 30 cases of group 'a' leave but 10 enter"):
        funnel(read_stage_table(tmp_path / "o.csv", stages=["population", "decision"], group="region"))
    with pytest.raises(DataError, match=r"no stage column 'final'"):
        read_stage_table(tmp_path / "o.csv", stages=["population", "final"], group="region")
    with pytest.raises(DataError, match=r"leave the stage without entering it"):
        stage_counts(pd.DataFrame({"r": ["a", "b"]}), [FunnelStage("x", np.array([False, True]), np.array([True, True]))],
                     ["r"])


@pytest.mark.parametrize(("text", "message"), [
    ("", r"empty\.csv: cannot read the stage table \(.*\)\. Expected a CSV file with a header row"),
    ("region,population,decision\n", r"empty\.csv: the stage table has no rows"),
    ("region,population,decision\na,1e400,3\n", r"column 'population', row 2 \(group 'a'\): '1e400' is not a count"),
    ("region,population,decision\na,10,3\n,12,3\n", r"column 'region', row 3: the group is empty"),
])
def test_empty_and_unreadable_stage_tables_are_refused_by_name(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "empty.csv").write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_stage_table(tmp_path / "empty.csv", stages=["population", "decision"], group="region")


def test_inconsistent_stage_counts_are_refused_with_the_stage_group_and_counts() -> None:
    """Counts that cannot describe one journey are a DataError naming what is wrong, never a crash in a test."""
    def counts(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
        return pd.DataFrame(rows, columns=["stage", "group", "entering", "leaving"]).assign(attributes="region")

    fine = [("population", "a", 40, 40), ("population", "b", 50, 50), ("decision", "a", 40, 12),
            ("decision", "b", 50, 20)]
    assert len(funnel(counts(fine))) == 4
    with pytest.raises(DataError, match=r"at stage 'decision', 45 cases of group 'a' leave, more than its 40 at the "
                                        r"first stage 'population'"):
        funnel(counts([*fine[:2], ("decision", "a", 60, 45), fine[3]]))
    with pytest.raises(DataError, match=r"group 'b' of 'region' has two rows at stage 'decision'"):
        funnel(counts([*fine, ("decision", "b", 50, 21)]))
    with pytest.raises(DataError, match=r"at stage 'decision', group 'b' has leaving 20 but the stage's total row "
                                        r"\('\(total\)'\) has leaving 19"):
        funnel(counts([*fine, ("decision", "(total)", 90, 19)]))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    """A 3,000-case run of the demo's rules with a caseworker review."""
    folder = tmp_path_factory.mktemp("funnel")
    spec = folder / "small.yaml"
    spec.write_text(
        "name: funnel-small\nseed: 42\n"
        f"population: {{synthetic: {ROOT / 'datasets/sweden/population-2026.yaml'}, n: 3000}}\n"
        "sensitive_features: [sex, birth_region]\nreference_groups: {birth_region: sweden}\n"
        f"engine: {{kind: rules, path: {ROOT / 'examples/engines/municipal-rpa.yaml'}}}\n"
        "truth: {reference: true}\n"
        "review: {model: {target: 'engines.caseworker_model:review_referred'}}\n"
        "outcomes: {positive: [deny]}\n"
        "statistics: {min_group_size: 10, bootstrap: 0}\nreport: {formats: [json, md]}\n",
        encoding="utf-8",
    )
    (folder / "engines").symlink_to(ROOT / "examples" / "engines")
    return load_spec(spec).run(out=folder / "out")


def test_a_run_writes_its_funnel_to_results_json(run) -> None:
    data = json.loads((run.run_dir / "results.json").read_text(encoding="utf-8"))
    errors = sorted(Draft202012Validator(json.loads(SCHEMA.read_text()), format_checker=FormatChecker())
                    .iter_errors(data), key=str)
    assert not errors, errors[0]
    rows = pd.DataFrame(data["funnel"])
    assert list(dict.fromkeys(rows["stage"])) == ["population", "intake", "engine_input", "decision", "review", "final"]
    metric_p = np.array([r["p_value"] for r in data["metrics"]], dtype=float)
    m = int(rows["p_value"].notna().sum()) + int(np.isfinite(metric_p).sum())
    assert rows["correction"].iloc[0] == {"method": "holm", "family": "run", "m": m}
    dec = pd.read_parquet(run.run_dir / "decisions.parquet")
    ok = dec["status"] == "ok"
    final = rows.loc[(rows["stage"] == "final") & (rows["attributes"].map(tuple) == ("birth_region",))]
    for _, r in final.iterrows():
        g = dec["birth_region"] == r["group"]
        assert r["entering"] == (g & ok).sum()
        assert r["leaving"] == (g & ok & (dec["final_outcome"] == "deny")).sum()
    review = rows.loc[(rows["stage"] == "review") & (rows["attributes"].map(tuple) == ("sex",))]
    for _, r in review.iterrows():
        referred = (dec["sex"] == r["group"]) & ok & (dec["outcome"] == "refer")
        assert r["entering"] == referred.sum()
        assert r["leaving"] == (referred & (dec["final_outcome"] == "deny")).sum()
    # one family for the run: Holm over every metric's test and every funnel test, written out by hand
    metric_adj = np.array([r["p_adjusted"] for r in data["metrics"]], dtype=float)
    family = holm(np.concatenate([metric_p, rows["p_value"].to_numpy(float)]))
    np.testing.assert_allclose(metric_adj, family[: len(metric_p)], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(rows["p_adjusted"].to_numpy(float), family[len(metric_p):], rtol=1e-12,
                               equal_nan=True)
    assert np.nanmax(family[len(metric_p):] - holm(rows["p_value"].to_numpy(float))) > 0  # larger than its own
    assert run.funnel is not None and len(run.funnel) == len(rows)


def test_insyn_funnel_prints_a_run_and_a_stage_table(run, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "audit.cli", "funnel", str(run.run_dir), "--format", "json"],
                         capture_output=True, text=True, env=ENV, check=True).stdout
    data = json.loads((run.run_dir / "results.json").read_text(encoding="utf-8"))
    assert json.loads(out) == data["funnel"]
    table = subprocess.run([sys.executable, "-m", "audit.cli", "funnel", str(run.run_dir)],
                           capture_output=True, text=True, env=ENV, check=True).stdout
    assert "Funnel by birth_region" in table and "engine_input" in table
    pd.DataFrame({"g": ["x", "y"], "all": [400, 600], "picked": [100, 60]}).to_csv(tmp_path / "s.csv", index=False)
    res = subprocess.run([sys.executable, "-m", "audit.cli", "funnel", str(tmp_path / "s.csv"), "--stages",
                          "all,picked", "--group", "g", "--format", "csv"], capture_output=True, text=True, env=ENV,
                         check=True).stdout
    csv = pd.read_csv(__import__("io").StringIO(res))
    x = csv.loc[(csv["stage"] == "picked") & (csv["group"] == "x")].iloc[0]
    assert x["share_out"] == pytest.approx(100 / 160) and x["rate"] == pytest.approx(0.25)
    bad = subprocess.run([sys.executable, "-m", "audit.cli", "funnel", str(run.run_dir), "--stages", "a"],
                         capture_output=True, text=True, env=ENV)
    assert bad.returncode != 0 and "--stages applies to a stage table" in bad.stderr


@pytest.mark.parametrize("language", ["en", "sv"])
def test_the_report_shows_the_funnel_with_a_chart_and_names_the_planted_shift(
    cases: tuple[pd.DataFrame, list[FunnelStage]], language: str,
) -> None:
    from audit.report import render_html, render_markdown
    from audit.report._messages import load_catalogue
    from audit.result import AuditResult

    frame, stages = cases
    table = funnel_from_cases(frame, stages, ["region"])
    rows = [{**r, "outcomes": ["deny"], "correction": {"method": "holm", "family": "run", "m": 4}}
            for r in json.loads(table.to_json(orient="records"))]
    result = AuditResult.build(run_id="r", generated_at="2026-01-01T00:00:00+00:00",
                               spec={"name": "t", "sensitive_features": ["region"]},
                               population={"kind": "file", "n_cases": len(frame)}, engine=None, checks=[],
                               journey={"steps": []}, metrics=[], findings=[], funnel=rows)
    m = load_catalogue(language)
    html, md = render_html(result, language=language), render_markdown(result, language=language)
    assert f'<section id="funnel"' in html and f"## {m('funnel.title')}" in md
    svg = html[html.index('<section id="funnel"'):].split("</section>")[0]
    assert svg.count('<svg') == 1 and 'role="img"' in svg
    c = table.loc[(table["stage"] == "decision") & (table["group"] == "c")].iloc[0]
    ratio = f"{c['shift_ratio']:.2f}".replace(".", "," if language == "sv" else ".")
    assert ratio in md  # the planted shift of region c is named with its representation ratio
    headline = md[md.index(f"## {m('funnel.title')}"):].split("\n### ")[0]
    first = [line for line in headline.splitlines() if line.startswith("- ")][0]
    assert first.startswith("- c ") and ratio in first  # the largest significant shift comes first
    bare = AuditResult.build(run_id="r", generated_at="2026-01-01T00:00:00+00:00", spec={"name": "t"},
                             population={"kind": "aggregated", "n_cases": 0}, engine=None, checks=[],
                             journey={"steps": []}, metrics=[], findings=[])
    assert m("funnel.absent") in render_markdown(bare, language=language)


def test_intersections_and_missing_values_are_counted_as_pandas_counts_them() -> None:
    rng = np.random.default_rng(9)
    n = 3000
    frame = pd.DataFrame({"sex": rng.choice(["f", "m", None], n, p=[0.49, 0.49, 0.02]),
                          "region": rng.choice(["a b", "a", "c"], n)})
    leaving = rng.random(n) < 0.3
    every = np.ones(n, dtype=bool)
    counts = stage_counts(frame, [FunnelStage("s", every, leaving)], ["sex", "region"], [["sex", "region"]])
    got = counts.loc[counts["attributes"] == "sex & region"].set_index("group")
    label = frame["sex"].fillna("(missing)") + " & " + frame["region"]
    expected = pd.DataFrame({"entering": label.value_counts(), "leaving": label[leaving].value_counts()}).fillna(0)
    assert sorted(got.index) == sorted(expected.index) and list(got.index) == sorted(got.index)
    assert (got["entering"] == expected["entering"].reindex(got.index)).all()
    assert (got["leaving"] == expected["leaving"].reindex(got.index)).all()


def test_secondary_suppression_hides_a_second_group_so_no_hidden_count_can_be_recovered() -> None:
    counts = pd.DataFrame({"stage": ["population"] * 3 + ["selected"] * 3, "attributes": "r",
                           "group": ["a", "b", "c"] * 2,
                           "entering": [500.0, 80.0, 200.0, 500.0, 80.0, 200.0],
                           "leaving": [500.0, 80.0, 200.0, 100.0, 3.0, 60.0]})
    table = funnel(counts, {"min_group_size": 10}).set_index(["stage", "group"])
    assert table.loc[("selected", "b"), "reason"].startswith("suppressed: a count of the group")
    # c (the smallest group left) is hidden too, so b's 3 cannot be recovered as total - a - c
    assert table.loc[("selected", "c"), "suppressed"] and "secondary suppression" in table.loc[("selected", "c"), "reason"]
    assert not table.loc[("selected", "a"), "suppressed"] and table.loc[("selected", "a"), "leaving"] == 100


def test_a_quarantine_at_intake_shows_where_a_group_is_lost(tmp_path: Path) -> None:
    rng = np.random.default_rng(22)
    n = 2000
    region = rng.choice(["a", "b"], n, p=[0.7, 0.3])
    income = np.where(rng.random(n) < np.where(region == "b", 0.3, 0.05), -1.0, 100.0)  # b lost at intake
    frame = pd.DataFrame({"case_id": [f"q{i}" for i in range(n)], "region": region, "income": income,
                          "decision": rng.choice(["grant", "deny"], n)})
    frame.to_parquet(tmp_path / "c.parquet", index=False)
    (tmp_path / "suite.yaml").write_text(
        "name: intake\nexpectations:\n"
        "  - {type: expect_column_values_to_be_between, kwargs: {column: income, min_value: 0}}\n", encoding="utf-8")
    spec = Audit.from_dict({"name": "q", "population": {"file": "c.parquet"}, "sensitive_features": ["region"],
                            "engine": {"kind": "recorded", "outcome": "decision"},
                            "checks": {"intake": {"suites": ["suite.yaml"], "policy": "quarantine"}},
                            "statistics": {"bootstrap": 0}, "report": {"formats": ["json"]}},
                           base_dir=tmp_path, source="q.yaml")
    result = spec.run(out=tmp_path / "out")
    rows = pd.DataFrame(result.to_dict()["funnel"]).set_index(["stage", "group"])
    kept = frame.loc[frame["income"] >= 0]
    for g in ("a", "b"):
        assert rows.loc[("intake", g), "entering"] == (frame["region"] == g).sum()
        assert rows.loc[("intake", g), "leaving"] == (kept["region"] == g).sum()
        assert rows.loc[("final", g), "entering"] == (kept["region"] == g).sum()
        assert rows.loc[("final", g), "leaving"] == ((kept["region"] == g) & (kept["decision"] == "deny")).sum()
    b = rows.loc[("intake", "b")]
    assert b["share_out"] == pytest.approx((kept["region"] == "b").mean(), abs=1e-12)
    assert b["shift"] < -0.05 and b["p_adjusted"] < 1e-6  # the shift arises at intake


def test_a_chunked_run_has_the_same_funnel_as_the_run_in_memory(tmp_path: Path) -> None:
    from audit.execution import run_chunked

    rng = np.random.default_rng(23)
    n = 3000
    frame = pd.DataFrame({"case_id": [f"z{i}" for i in range(n)], "region": rng.choice(["a", "b", "c"], n),
                          "sex": rng.choice(["f", "m"], n), "income": np.where(rng.random(n) < 0.1, -1.0, 5.0),
                          "decision": rng.choice(["grant", "deny", "refer"], n),
                          "caseworker": rng.choice(["grant", "deny"], n)})
    frame.to_parquet(tmp_path / "c.parquet", index=False)
    (tmp_path / "suite.yaml").write_text(
        "name: intake\nexpectations:\n"
        "  - {type: expect_column_values_to_be_between, kwargs: {column: income, min_value: 0}}\n", encoding="utf-8")
    spec = Audit.from_dict({"name": "z", "population": {"file": "c.parquet"}, "sensitive_features": ["region", "sex"],
                            "intersections": [["region", "sex"]],
                            "engine": {"kind": "recorded", "outcome": "decision"}, "review": {"recorded": "caseworker"},
                            "checks": {"intake": {"suites": ["suite.yaml"], "policy": "quarantine"}},
                            "statistics": {"bootstrap": 0}, "report": {"formats": ["json"]}},
                           base_dir=tmp_path, source="z.yaml")
    memory = spec.run(out=tmp_path / "out").to_dict()["funnel"]
    chunked = run_chunked(spec, chunk_size=700, executor="inprocess")
    assert chunked.funnel == memory
    assert list(dict.fromkeys(r["stage"] for r in memory)) == ["population", "intake", "engine_input", "decision",
                                                               "review", "final"]
    assert {tuple(r["attributes"]) for r in memory} == {("region",), ("sex",), ("region", "sex")}
