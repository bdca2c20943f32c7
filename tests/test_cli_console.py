"""The command line as people and programs meet it: help, pipes, formats, Swedish, insyn check, init, --example.

Commands that must see a real pipe run as ``python -m audit.cli`` in a
subprocess; the others use typer's test runner.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from audit._paths import shipped_examples
from audit.checks import check_file
from audit.cli import app
from audit.reference import schema_text
from audit.scaffold import SCHEMA_COMMENT
from audit.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _cli(*args: str, cwd: Path, ok: tuple[int, ...] = (0, 1)) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": ""}
    env.pop("COLUMNS")
    out = subprocess.run([sys.executable, "-m", "audit.cli", *args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode in ok, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def aggregated_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """The shipped aggregated example, run once by name from a folder that is not a clone, output to a pipe."""
    where = tmp_path_factory.mktemp("elsewhere")
    return where, _cli("run", "--example", "aggregated", "--out", "r", cwd=where)


# --------------------------------------------------------------------------
# help


def test_help_has_readable_metavars_and_is_not_cut() -> None:
    res = runner.invoke(app, ["run", "--help"])
    text = res.stdout
    for part in ("--out DIR", "--seed N", "--example NAME", "-q, --quiet", "--format <table|csv|json>",
                 "--lang <en|sv>", "[SPEC]"):
        assert part in text, part
    assert "<bool>" not in text and "<path>  The" not in text.split("Options:")[1]
    top = runner.invoke(app, ["--help"]).stdout
    commands = top.split("Commands:")[1]
    assert "..." not in commands and "…" not in commands
    for name in ("run", "demo", "init", "schema", "suite", "generate", "check", "trace", "monitor", "history"):
        assert f"\n  {name} " in commands, name


# --------------------------------------------------------------------------
# output to a pipe


def test_piped_output_is_never_wrapped_or_cut(aggregated_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    where, out = aggregated_run
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) > 100  # wider than rich's 80 columns for a non-terminal
    findings = [line for line in lines if line.startswith("  FAIL: ")]
    assert findings and all(line.endswith(".") for line in findings)  # each finding whole, on one line
    report = [line for line in lines if line.startswith("Report: ")]
    assert len(report) == 1 and (where / report[0].removeprefix("Report: ")).is_file()
    table = [line for line in lines if line.startswith("│")]
    assert len({len(line) for line in table}) == 1  # one width for every row: nothing wrapped


def test_format_csv_and_json_give_the_same_rows(aggregated_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    where, _ = aggregated_run
    as_csv = _cli("run", "--example", "aggregated", "--out", "r", "--format", "csv", cwd=where)
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    as_json = json.loads(_cli("run", "--example", "aggregated", "--out", "r", "--format", "json", cwd=where).stdout)
    legacy = json.loads(_cli("run", "--example", "aggregated", "--out", "r", "--json", cwd=where).stdout)
    assert legacy["largest_disparities"] == as_json["largest_disparities"]
    assert len(rows) == len(as_json["largest_disparities"]) == 5
    for row, record in zip(rows, as_json["largest_disparities"], strict=True):
        assert row["metric"] == record["metric"] and row["group"] == record["group"]
        assert float(row["value"]) == record["value"] and float(row["p_adjusted"]) == record["p_adjusted"]
    # the CSV numbers are the run's own, to full precision
    metrics = pd.read_csv(where / as_json["run_dir"] / "metrics.csv")
    first = rows[0]
    match = metrics[(metrics["metric"] == first["metric"]) & (metrics["group"] == first["group"])]
    assert float(first["ratio"]) == pytest.approx(float(match["ratio"].iloc[0]), rel=1e-12)


def test_the_console_speaks_swedish(tmp_path: Path) -> None:
    out = _cli("run", "--example", "aggregated", "--out", "r", "--lang", "sv", cwd=tmp_path).stdout
    assert "Största skillnaderna (längst från paritet; p justerat för multipla jämförelser" in out
    assert "Bedömningar: UNDERKÄND 3, GODKÄND 4" in out
    assert "UNDERKÄND: Andel falskt positiva, födda utanför EU mot födda i Sverige: kvot mot referensen 2,11" in out
    assert "Rapport: " in out and "Report: " not in out and "FAIL" not in out
    en = _cli("run", "--example", "aggregated", "--out", "r", "--lang", "en", cwd=tmp_path).stdout
    assert "Findings: FAIL 3, PASS 4" in en and "ratio to the reference 2.11" in en


# --------------------------------------------------------------------------
# insyn check


@pytest.fixture(scope="module")
def broken_cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from audit.synth import generate, write_population

    frame = generate(ROOT / "datasets/sweden/population-2026.yaml", n=400, seed=9)
    frame.loc[frame.index[:30], "applicant_age"] = 7
    frame.loc[frame.index[100], "channel"] = "fax"
    path = tmp_path_factory.mktemp("check") / "cases.parquet"
    write_population(frame, path)
    return path


def test_check_prints_a_readable_table(broken_cases: Path) -> None:
    out = _cli("check", str(broken_cases), "--suite", "checks/application.yaml", "--groups", "birth_region",
               cwd=ROOT, ok=(1,)).stdout
    report = check_file(broken_cases, [ROOT / "checks/application.yaml"], groups=["birth_region"])
    lines = out.splitlines()
    assert lines[0].startswith(f"check: {len(report.results)} expectations (application) on 400 rows:")
    header = next(line for line in lines if "Severity" in line)
    for word in ("Suite", "Expectation", "Column", "Unexpected", "Observed", "Sample cases", "Why"):
        assert word in header
    age = next(line for line in lines if "expect_column_values_to_be_between" in line and "applicant_age" in line)
    assert "30 / 400" in age and "critical" in age
    assert "30 of 400 rows unexpected" in age
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == len(report.failures)


def test_check_formats_csv_and_json(broken_cases: Path) -> None:
    report = check_file(broken_cases, [ROOT / "checks/application.yaml"], groups=["birth_region"])
    as_json = json.loads(_cli("check", str(broken_cases), "--suite", "checks/application.yaml", "--groups",
                              "birth_region", "--format", "json", cwd=ROOT, ok=(1,)).stdout)
    assert as_json["n_expectations"] == len(report.results)
    assert as_json["n_failed_cases"] == len(report.failed_rows) == 31
    as_csv = list(csv.DictReader(io.StringIO(_cli("check", str(broken_cases), "--suite", "checks/application.yaml",
                                                  "--groups", "birth_region", "--format", "csv", cwd=ROOT,
                                                  ok=(1,)).stdout)))
    assert len(as_csv) == len(report.results)
    assert [r["success"] for r in as_csv] == [str(r["success"]) for r in report.results]


def test_check_in_swedish(broken_cases: Path) -> None:
    out = _cli("check", str(broken_cases), "--suite", "checks/application.yaml", "--lang", "sv", cwd=ROOT,
               ok=(1,)).stdout
    assert "Förväntningar som inte uppfylldes" in out and "kritisk" in out and "Allvarlighet" in out


# --------------------------------------------------------------------------
# insyn init, run --example, the shipped-spec fallback


def test_init_writes_a_project_that_loads_from_its_own_files(tmp_path: Path) -> None:
    res = runner.invoke(app, ["init", str(tmp_path / "proj")])
    assert res.exit_code == 0, res.output
    proj = tmp_path / "proj"
    for name in ("README.md", "audit.yaml", "decision-log.yaml", "schemas/audit-spec.schema.json", "docs/spec.md",
                 "engines/municipal-rpa.yaml", "checks/application.yaml", "datasets/sweden/population-2026.yaml",
                 "datasets/sweden/README.md", "data/decision-log.xlsx"):
        assert (proj / name).is_file(), name
    assert (proj / "schemas/audit-spec.schema.json").read_text(encoding="utf-8") == schema_text("audit")
    readme = (proj / "README.md").read_text(encoding="utf-8")
    assert "## What to edit" in readme and "insyn run audit.yaml" in readme
    for spec_name in ("audit.yaml", "decision-log.yaml"):
        text = (proj / spec_name).read_text(encoding="utf-8")
        assert text.splitlines()[0] == SCHEMA_COMMENT
        audit = load_spec(proj / spec_name)
        # every file the spec names is the project's own copy, not a shipped default
        named = [audit.population.synthetic or audit.population.file]
        named += [s for step in ("intake", "engine_input", "decisions") if getattr(audit.checks, step)
                  for s in getattr(audit.checks, step).suites]
        if audit.engine is not None and audit.engine.path:
            named.append(audit.engine.path)
        for rel in named:
            assert audit.resolve(rel).is_relative_to(proj.resolve()), rel
    rules = yaml.safe_load((proj / "engines/municipal-rpa.yaml").read_text(encoding="utf-8"))
    guideline = (proj / "engines" / rules["norms"]["guideline"]).resolve()
    assert guideline == (proj / "datasets/sweden/guidelines/trelleborg-2019.yaml").resolve()
    again = runner.invoke(app, ["init", str(proj)])
    assert again.exit_code == 2 and "the folder exists and is not empty" in again.stderr


def test_run_by_example_name_and_its_errors(tmp_path: Path) -> None:
    unknown = runner.invoke(app, ["run", "--example", "demoo"])
    assert unknown.exit_code == 2
    assert f"--example must name an example shipped with Insyn: {', '.join(shipped_examples())}. Got 'demoo'." in (
        " ".join(unknown.stderr.split()))
    both = runner.invoke(app, ["run", "x.yaml", "--example", "demo"])
    assert both.exit_code == 2 and "not both" in both.stderr
    neither = runner.invoke(app, ["run"])
    assert neither.exit_code == 2 and "not neither" in neither.stderr


def test_a_clone_path_outside_a_clone_runs_the_shipped_spec_and_says_so(tmp_path: Path) -> None:
    out = _cli("run", "examples/aggregated.yaml", "--out", "r", "--quiet", cwd=tmp_path)
    note = " ".join(out.stderr.split())
    shipped = shipped_examples()["aggregated"]
    assert note == (f"note: examples/aggregated.yaml is not in examples; running the example shipped with Insyn: "
                    f"{shipped}")
    assert out.stdout == ""
    assert len(list((tmp_path / "r" / "aggregated").iterdir())) == 1


def test_suite_command_converts_both_ways(tmp_path: Path) -> None:
    res = runner.invoke(app, ["suite", str(ROOT / "checks/decisions.yaml"), str(tmp_path / "d.json")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "d.json").read_text(encoding="utf-8"))
    assert data["name"] == "decisions" and "great_expectations_version" in data["meta"]
    res = runner.invoke(app, ["suite", str(tmp_path / "d.json"), str(tmp_path / "d.txt")])
    assert res.exit_code == 2 and "Expected .json (great-expectations) or .yaml (Insyn)." in res.stderr


def test_history_in_swedish_and_as_csv(tmp_path: Path) -> None:
    spec = tmp_path / "mon.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "mon-sv", "seed": 5,
        "population": {"synthetic": str(ROOT / "datasets/sweden/population-2026.yaml"), "n": 400},
        "sensitive_features": ["sex"], "engine": {"kind": "reference"}, "truth": {"reference": True},
        "statistics": {"bootstrap": 0}, "monitor": {"baseline": "trailing", "periods": 3, "metrics": ["grant_rate"]},
    }), encoding="utf-8")
    hist = tmp_path / "history"
    for period in ("2025-01", "2025-02"):
        res = runner.invoke(app, ["monitor", str(spec), "--history", str(hist), "--period", period, "--out",
                                  str(tmp_path / "r"), "--quiet"])
        assert res.exit_code == 0, res.output
    sv = runner.invoke(app, ["history", str(hist), "--attribute", "sex", "--lang", "sv"])
    assert sv.exit_code == 0, sv.output
    assert "grant_rate per sex (mon-sv)" in sv.stdout and "Period" in sv.stdout
    assert "! markerar en period med larm." in sv.stdout
    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, ["history", str(hist), "--attribute", "sex",
                                                                "--format", "csv"]).stdout)))
    assert {(r["period"], r["group"]) for r in rows} == {(p, g) for p in ("2025-01", "2025-02")
                                                       for g in ("female", "male")}
    values = {(r["period"], r["group"]): float(r["value"]) for r in rows}
    shown = [line for line in sv.stdout.splitlines() if line.startswith("│ 2025-01")][0]
    female = values[("2025-01", "female")]
    assert f"{100 * female:.1f}".replace(".", ",") + "\u00a0%" in shown  # Swedish percent: 71,6 %
