"""Bias studies: the strict study spec, the design, the study folder, resume, failures and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from audit.audit import Audit, run_audit
from audit.cli import app
from audit.exceptions import SpecError
from audit.report import StudyPanel, StudyView, render_study_html
from audit.study import (
    POWER_COLUMNS,
    RunTask,
    StudyFolder,
    StudySpec,
    derive_seed,
    expand_points,
    plan_study,
    run_frame,
    run_study,
    run_task,
)

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

AUDIT: dict[str, Any] = {
    "name": "study-test",
    "population": {"synthetic": str(ROOT / "datasets/sweden/population-2026.yaml"), "n": 400,
                   "bias": {"registry_failure_recent_arrivals": 0.2}},
    "sensitive_features": ["sex", "birth_region"],
    "reference_groups": {"birth_region": "sweden"},
    "engine": {"kind": "rules", "path": str(ROOT / "examples/engines/study-registry-router.yaml")},
    "statistics": {"bootstrap": 0, "min_group_size": 10},
    "thresholds": [{"metric": "refer_rate", "ratio_max": 1.25}],
    "report": {"formats": ["json"]},
}


def _study(tmp_path: Path, **changes: Any) -> Path:
    data: dict[str, Any] = {"name": "t", "seed": 11, "audit": AUDIT, "replicates": 2,
                            "factors": {"population.n": [300, 600]}, "executor": "inprocess", **changes}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the spec


@pytest.mark.parametrize(("changes", "expected"), [
    ({"replicate": 3}, "replicate is not a known key. Known keys of a study: audit, "),
    ({"replicates": "many"}, "replicates must be an integer. Got 'many'."),
    ({"replicates": 0}, "replicates must be an integer >= 1. Got 0."),
    ({"design": "sobol"}, "design must be one of grid, random, latin_hypercube. Got 'sobol'."),
    ({"factors": {"population.size": [1, 2]}},
     "factors.population.size is not a key path of the audit spec: 'size' is not a key of population"),
    ({"factors": {"statistics.alpha.x": [1]}}, "statistics.alpha takes a value, not keys"),
    ({"factors": {"population.n": []}}, "factors.population.n must list at least one level. Got []."),
    ({"factors": {"population.n": {"min": 100, "max": 50, "num": 3}}}, "max must be a number greater than min"),
    ({"factors": {"population.n": {"min": 100, "max": 500}}}, "factors.population.n.num (the number of levels) is "
                                                              "required for a range in a grid design."),
    ({"design": "random"}, "points (the number K of points to sample) is required for design random."),
    ({"points": 4}, "points belongs to a random or latin_hypercube design"),
    ({"audit": "missing-audit.yaml"}, "audit must name an audit spec file (YAML) or hold one inline. "
                                      "Got 'missing-audit.yaml', which does not exist."),
])
def test_spec_refuses_with_file_key_expected_and_given(tmp_path: Path, changes: dict[str, Any],
                                                       expected: str) -> None:
    path = _study(tmp_path, **changes)
    with pytest.raises(SpecError) as err:
        StudySpec.from_yaml(path)
    assert str(err.value).startswith(f"{path}: ")
    assert expected in str(err.value)


@pytest.mark.parametrize(("factors", "expected"), [
    ({"population.n": [300, 0]}, "the audit of point p0001 (population.n=0) is invalid:\n"),
    ({"statistics.correction": ["holm", "sidak"]}, "statistics.correction must be one of holm, bh, bonferroni, none. "
                                                   "Got 'sidak'."),
    ({"population.bias.no_such_knob": [0.1]}, "bias.no_such_knob is not a bias knob of this population."),
    ({"engine.path": ["nowhere.yaml"]}, "factors.engine.path must name an existing file. Got 'nowhere.yaml'"),
])
def test_bad_point_is_refused_before_any_run(tmp_path: Path, factors: dict[str, Any], expected: str) -> None:
    path = _study(tmp_path, factors=factors)
    with pytest.raises(SpecError, match=None) as err:
        plan_study(StudySpec.from_yaml(path))
    assert expected in str(err.value)
    res = runner.invoke(app, ["study", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert res.exit_code == 2, res.output
    assert "error:" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists()


def test_audit_given_as_a_file_resolves_against_the_study(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(AUDIT), encoding="utf-8")
    spec = StudySpec.from_yaml(_study(tmp_path, audit="base.yaml"))
    data, base, source = spec.base_audit()
    assert data == AUDIT and base == tmp_path.resolve() and source.endswith("base.yaml")


# --------------------------------------------------------------------------- the design


def test_grid_is_every_combination_in_order() -> None:
    spec = StudySpec.from_dict({"name": "g", "audit": AUDIT, "factors": {
        "population.n": [100, 200], "statistics.correction": ["holm", "bh", "none"]}})
    points = expand_points(spec)
    assert [p.levels for p in points] == [{"population.n": n, "statistics.correction": c}
                                          for n in (100, 200) for c in ("holm", "bh", "none")]
    assert [p.name for p in points][:2] == ["p0000", "p0001"]


def test_grid_range_levels_linear_and_log() -> None:
    spec = StudySpec.from_dict({"name": "g", "audit": AUDIT, "factors": {
        "population.bias.registry_failure_recent_arrivals": {"min": 0, "max": 0.1, "num": 3},
        "population.n": {"min": 1000, "max": 100000, "num": 3, "log": True, "integer": True}}})
    levels = {tuple(p.levels.values()) for p in expand_points(spec)}
    assert levels == {(b, n) for b in (0.0, 0.05, 0.1) for n in (1000, 10000, 100000)}


def test_latin_hypercube_covers_each_stratum_once() -> None:
    k = 8
    spec = StudySpec.from_dict({"name": "l", "seed": 3, "audit": AUDIT, "design": "latin_hypercube", "points": k,
                                "factors": {"population.bias.registry_failure_recent_arrivals": {"min": 0, "max": 0.8},
                                            "statistics.alpha": {"min": 0.01, "max": 0.09}}})
    points = expand_points(spec)
    assert len(points) == k
    strata_a = sorted(int(p.levels["population.bias.registry_failure_recent_arrivals"] / 0.1) for p in points)
    strata_b = sorted(int((p.levels["statistics.alpha"] - 0.01) / 0.01) for p in points)
    assert strata_a == list(range(k)) and strata_b == list(range(k))
    assert [p.levels for p in expand_points(spec)] == [p.levels for p in points]  # same seed, same points


def test_random_design_draws_from_levels_and_ranges() -> None:
    spec = StudySpec.from_dict({"name": "r", "seed": 5, "audit": AUDIT, "design": "random", "points": 50,
                                "factors": {"population.n": [100, 200, 300],
                                            "statistics.alpha": {"min": 0.01, "max": 0.1}}})
    points = expand_points(spec)
    assert {p.levels["population.n"] for p in points} == {100, 200, 300}
    assert all(0.01 <= p.levels["statistics.alpha"] <= 0.1 for p in points)


def test_seeds_are_derived_deterministically_and_distinct() -> None:
    expected = int(np.random.SeedSequence(42, spawn_key=(3, 7)).generate_state(1, dtype=np.uint32)[0] >> 1)
    assert derive_seed(42, 3, 7) == expected
    seeds = {derive_seed(42, p, r) for p in range(20) for r in range(50)}
    assert len(seeds) == 1000 and all(0 <= s < 2**31 for s in seeds)
    assert derive_seed(43, 3, 7) != expected


# --------------------------------------------------------------------------- the folder


def _power_by_hand(frame: pd.DataFrame) -> pd.DataFrame:
    """Detection rates from study.parquet, counted with DuckDB-free pandas and a Wilson interval by formula."""
    rows = frame[(frame["row"] == "metric") & frame["reference_group"].notna()
                 & (frame["group"] != frame["reference_group"])]
    tested = rows.groupby(["metric", "attributes", "group"])["p_value"].transform(lambda s: s.notna().any())
    rows = rows[tested]
    rows = rows.assign(hit=(rows["p_adjusted"] < rows["alpha"]).astype(int), level=rows["population.n"].astype(str))
    agg = rows.groupby(["level", "metric", "attributes", "group"]).agg(runs=("run", "nunique"), detected=("hit", "sum"))
    z = stats.norm.ppf(0.975)
    p, n = agg["detected"] / agg["runs"], agg["runs"]
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return agg.assign(power=p, power_low=(centre - half).clip(0, 1), power_high=(centre + half).clip(0, 1))


def test_study_folder_contract(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_study(_study(tmp_path), out=out)
    assert (result.total, result.finished, result.skipped, result.exit_code) == (4, 4, 0, 0)
    names = sorted(p.name for p in (out / "runs").iterdir())
    assert names == ["p0000-r0000.parquet", "p0000-r0001.parquet", "p0001-r0000.parquet", "p0001-r0001.parquet"]
    # study.parquet is one tidy table that DuckDB reads
    con = duckdb.connect()
    n_runs, n_rows = con.execute(f"SELECT count(DISTINCT run), count(*) FROM '{out / 'study.parquet'}'").fetchone()
    per_run = sum(len(pd.read_parquet(out / "runs" / n)) for n in names)
    assert (n_runs, n_rows) == (4, per_run)
    frame = pd.read_parquet(out / "study.parquet")
    assert list(frame.columns[:8]) == ["run", "point", "replicate", "seed", "population.n", "row", "alpha", "tests"]
    assert {"metric", "attributes", "group", "n", "value", "ci_low", "ci_high", "reference_group",
            "reference_value", "difference", "ratio", "p_value", "p_adjusted", "suppressed", "status"} <= set(frame)
    assert set(frame["row"]) == {"metric", "finding"}
    # one run's metric values equal an audit run directly with the derived seed (a second path)
    one = frame[(frame["run"] == "p0001-r0001") & (frame["row"] == "metric")].reset_index(drop=True)
    direct = run_audit(Audit.from_dict({**AUDIT, "population": {**AUDIT["population"], "n": 600},
                                        "seed": derive_seed(11, 1, 1)}), write=False)
    ref = pd.DataFrame(list(direct.metrics))
    ref["attributes"] = [" & ".join(a) for a in ref["attributes"]]
    key = ["metric", "attributes", "group"]  # row by row, in the order of results.json: no re-aligning
    assert one[key].astype(str).equals(ref[key].astype(str))
    np.testing.assert_allclose(one["value"].to_numpy(float), ref["value"].to_numpy(float), equal_nan=True)
    np.testing.assert_allclose(one["p_adjusted"].to_numpy(float), ref["p_adjusted"].to_numpy(float), equal_nan=True)
    assert one["n"].iloc[0] == 600
    # power.csv: the named columns, and rates counted independently
    power = pd.read_csv(out / "power.csv", keep_default_na=False, na_values=[""])
    assert tuple(power.columns) == POWER_COLUMNS
    mine = power[~power["metric"].str.startswith("finding:")].copy()
    mine["level"] = mine["level"].astype(str)
    mine = mine.set_index(["level", "metric", "attributes", "group"]).sort_index()
    hand = _power_by_hand(frame).sort_index()
    assert len(mine) == len(hand)
    for col in ("runs", "detected", "power", "power_low", "power_high"):
        np.testing.assert_allclose(mine[col].to_numpy(float), hand.loc[mine.index, col].to_numpy(float), atol=1e-12)
    # findings: detected = the finding failed
    fin = frame[frame["row"] == "finding"]
    fails = fin.assign(hit=fin["status"].eq("FAIL")).groupby("population.n")["hit"].sum().sum()
    assert power[power["metric"].str.startswith("finding:")]["detected"].sum() == fails
    # study.html: self-contained with charts
    page = (out / "study.html").read_text(encoding="utf-8")
    assert page.count("<svg") >= 2 and "Power against population.n" in page
    assert "Effect estimates against population.n" in page
    assert "<script" not in page and "src=" not in page and "href=" not in page


def test_study_parquet_keeps_each_runs_row_order(tmp_path: Path) -> None:
    """study.parquet holds every run's rows in the order of the run's own file, whatever DuckDB's parallel sort does.

    Before the combine ordered by the row number inside each file too, about one combine in four shuffled the rows
    of some run (DuckDB's ORDER BY is not stable); ten combines of the same folder must all keep the order.
    """
    out = tmp_path / "out"
    run_study(_study(tmp_path, replicates=3), out=out)
    folder = StudyFolder(out)
    key = ["row", "metric", "attributes", "group", "name"]
    runs = {p.stem: pd.read_parquet(p)[key].astype(str) for p in sorted((out / "runs").glob("*.parquet"))}
    assert len(runs) == 6
    for _ in range(10):
        frame = folder.combine()
        assert frame["run"].drop_duplicates().tolist() == sorted(runs)
        for run, rows in frame.groupby("run", sort=False):
            assert rows[key].astype(str).reset_index(drop=True).equals(runs[run].reset_index(drop=True)), run


def test_resume_skips_finished_runs_and_reruns_missing_ones(tmp_path: Path) -> None:
    out = tmp_path / "out"
    path = _study(tmp_path)
    run_study(path, out=out)
    files = sorted((out / "runs").glob("*.parquet"))
    stamps = {p.name: p.stat().st_mtime_ns for p in files}
    again = run_study(path, out=out)
    assert (again.skipped, again.finished) == (4, 4)
    assert {p.name: p.stat().st_mtime_ns for p in files} == stamps
    files[1].unlink()
    third = run_study(path, out=out)
    assert third.skipped == 3 and third.finished == 4
    assert {p.name: p.stat().st_mtime_ns for p in files if p != files[1]} == \
        {k: v for k, v in stamps.items() if k != files[1].name}


def test_other_design_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_study(_study(tmp_path, replicates=1), out=out)
    with pytest.raises(SpecError, match="holds runs of another study design"):
        run_study(_study(tmp_path, replicates=1, seed=12), out=out)


INTERRUPT_AT = "p0001-r0000"


def interrupting_task(task: RunTask) -> pd.DataFrame:
    """A study task that behaves like Ctrl-C at one run."""
    if task.key == INTERRUPT_AT:
        raise KeyboardInterrupt
    return run_task(task)


def test_interrupted_study_loses_no_finished_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    path = _study(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_study(path, out=out, task=interrupting_task)
    left = sorted(p.name for p in (out / "runs").iterdir())
    assert left == ["p0000-r0000.parquet", "p0000-r0001.parquet"]  # in-process order; no temporary file left
    for name in left:
        assert len(pd.read_parquet(out / "runs" / name)) > 0
    resumed = run_study(path, out=out)
    assert (resumed.skipped, resumed.finished, resumed.exit_code) == (2, 4, 0)


def test_failing_run_is_recorded_and_the_study_goes_on(tmp_path: Path) -> None:
    broken = tmp_path / "broken-rules.yaml"
    broken.write_text("name: broken\nrules:\n  - name: r\n    when: no_such_column > 1\n    outcome: grant\n",
                      encoding="utf-8")
    good = str(ROOT / "examples/engines/study-registry-router.yaml")
    path = _study(tmp_path, replicates=1, factors={"engine.path": [good, str(broken)]})
    out = tmp_path / "out"
    res = runner.invoke(app, ["study", str(path), "--out", str(out), "--quiet"])
    assert res.exit_code == 1, res.output
    assert "FAILED p0001-r0000:" in res.output and "1 run(s) failed" in res.output
    assert (out / "runs" / "p0000-r0000.parquet").is_file()
    error = json.loads((out / "runs" / "p0001-r0000.error.json").read_text(encoding="utf-8"))
    assert error["run"] == "p0001-r0000" and error["error"] and "Traceback" in error["traceback"]
    failures = pd.read_csv(out / "failures.csv")
    assert failures["run"].tolist() == ["p0001-r0000"]
    assert "p0001-r0000" in (out / "study.html").read_text(encoding="utf-8")
    # a rerun retries the failed run only, and it fails again
    again = run_study(path, out=out)
    assert again.skipped == 1 and [k for k, _ in again.failures] == ["p0001-r0000"]


def test_cli_progress_and_summary(tmp_path: Path) -> None:
    path = _study(tmp_path, replicates=1, factors={})
    res = runner.invoke(app, ["study", str(path), "--out", str(tmp_path / "o"), "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "1 of 1 runs finished (0 resumed)" in res.output
    assert "study runs" in res.output and "1/1" in res.output  # the rich progress bar: done/total
    quiet = runner.invoke(app, ["study", str(path), "--out", str(tmp_path / "o"), "--quiet"])
    assert quiet.exit_code == 0 and quiet.output == ""


def test_run_frame_has_no_personnummer(tmp_path: Path) -> None:
    spec = Audit.from_dict({**AUDIT, "seed": 1})
    result = run_audit(spec, write=False)
    task = RunTask(key="p0000-r0000", point=0, replicate=0, seed=1, levels={"x": "19121212-1212"}, audit=AUDIT,
                   base_dir=str(ROOT), source="<t>")
    frame = run_frame(result, task)
    assert not frame.astype(str).apply(lambda s: s.str.contains("19121212-1212")).any().any()


def test_study_page_is_rendered_by_the_report_layer_escaped_masked_and_in_swedish() -> None:
    """The page's words come from the catalogues; data strings are escaped and personnummer masked."""
    nan = float("nan")
    panel = StudyPanel(factor="population.n", levels=["300", "600"],
                       power={"refer_rate · birth_region = <script>x</script>": ([0.2, 0.8], [0.1, 0.6], [0.4, 0.9])},
                       effects={"refer_rate · birth_region = 19121212-1212": ([0.01, 0.02], [nan, 0.0], [nan, 0.04])})
    view = StudyView(name="s", description="d", design="grid", replicates=2, seed=1, runs=4, panels=[panel],
                     family_wise=pd.DataFrame({"level": ["300"], "runs": [2], "rate": [0.5]}),
                     top=pd.DataFrame({"metric": ["refer_rate"], "power": [0.8]}),
                     failures={"p0001-r0000": "boom 19121212-1212"})
    en, sv = render_study_html(view, language="en"), render_study_html(view, language="sv")
    assert "Power against population.n" in en and "Styrka mot population.n" in sv
    assert "Effektskattningar mot population.n" in sv and "Misslyckade körningar" in sv
    for page in (en, sv):
        assert "<script>x" not in page and "&lt;script&gt;x" in page
        assert "19121212-1212" not in page and "p0001-r0000" in page
        assert page.count("<svg") == 2 and "src=" not in page and "href=" not in page
    with pytest.raises(SpecError, match="language must be one of en, sv. Got 'fi'"):
        render_study_html(view, language="fi")
