"""The insyn command line: exit codes, output modes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from audit import __version__
from audit.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _spec(tmp_path: Path, thresholds: list[dict], **extra: object) -> Path:
    data = {
        "name": "cli-test",
        "seed": 3,
        "population": {"synthetic": str(ROOT / "datasets/sweden/population-2026.yaml"), "n": 600},
        "sensitive_features": ["sex"],
        "engine": {"kind": "reference"},
        "truth": {"reference": True},
        "statistics": {"bootstrap": 200},
        "thresholds": thresholds,
        **extra,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_version() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.stdout.strip() == f"insyn {__version__}"


def test_exit_0_when_no_finding_is_over_threshold(tmp_path: Path) -> None:
    spec = _spec(tmp_path, [{"metric": "grant_rate", "value_max": 1.0}])
    res = runner.invoke(app, ["run", str(spec), "--out", str(tmp_path / "out"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert res.stdout == ""  # --quiet prints nothing but errors
    runs = list((tmp_path / "out" / "cli-test").iterdir())
    assert len(runs) == 1 and (runs[0] / "report.html").is_file()


def test_exit_1_with_findings_and_json_summary(tmp_path: Path) -> None:
    # the reference engine grants most cases, so a grant rate of at most 0 must FAIL for both sexes
    spec = _spec(tmp_path, [{"metric": "grant_rate", "value_max": 0.0}])
    res = runner.invoke(app, ["run", str(spec), "--out", str(tmp_path / "out"), "--json"])
    assert res.exit_code == 1, res.output
    summary = json.loads(res.stdout)
    assert summary["exit_code"] == 1
    statuses = {f["group"]: f["status"] for f in summary["findings"]}
    assert statuses == {"all": "FAIL", "female": "FAIL", "male": "FAIL"}
    assert Path(summary["run_dir"]).is_dir()


def test_seed_option_overrides_spec(tmp_path: Path) -> None:
    spec = _spec(tmp_path, [])
    res = runner.invoke(app, ["run", str(spec), "--out", str(tmp_path / "o"), "--seed", "11", "--json"])
    assert res.exit_code == 0, res.output
    run_dir = Path(json.loads(res.stdout)["run_dir"])
    assert json.loads((run_dir / "manifest.json").read_text())["seed"] == 11


def test_exit_2_on_spec_error_without_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\npopulation: {synthetic: a.yaml, n: 5}\nsensitive_features: [sex]\n"
                    "engine: {kind: rpa}\n", encoding="utf-8")
    res = runner.invoke(app, ["run", str(spec)])
    assert res.exit_code == 2
    message = " ".join(res.stderr.split())  # rich wraps long lines
    assert message == (f"error: {spec}: engine.kind must be one of python, sklearn, rules, http, subprocess, "
                       "recorded, reference. Got 'rpa'.")
    assert "Traceback" not in res.output + res.stderr


def test_exit_2_on_data_error(tmp_path: Path) -> None:
    spec = _spec(tmp_path, [])
    data = yaml.safe_load(spec.read_text())
    data["sensitive_features"] = ["religion"]
    spec.write_text(yaml.safe_dump(data), encoding="utf-8")
    res = runner.invoke(app, ["run", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "sensitive_features names 'religion', which is not a column of the case frame" in " ".join(
        res.stderr.split())
    assert "Traceback" not in res.stderr


def test_exit_2_on_usage_error() -> None:
    res = runner.invoke(app, ["run"])
    assert res.exit_code == 2


def test_exit_3_on_internal_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import audit.runner

    def boom(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(audit.runner, "load_population", boom)
    spec = _spec(tmp_path, [])
    res = runner.invoke(app, ["run", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 3
    assert "internal error: ZeroDivisionError: simulated bug" in res.stderr
    assert "Traceback" not in res.stderr


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "insyn"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"insyn {__version__}"


def test_console_script_runs_console_and_keeps_exit_codes(tmp_path: Path) -> None:
    """The script calls audit.cli:console (main, then a quick exit); exit codes and written files are intact."""
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"insyn": "audit.cli:console"}
    missing = subprocess.run([sys.executable, "-m", "audit.cli", "run", str(tmp_path / "nope.yaml")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr
    out = tmp_path / "p.csv"
    made = subprocess.run([sys.executable, "-m", "audit.cli", "generate",
                           str(ROOT / "datasets/sweden/population-2026.yaml"), "--n", "2000", "--seed", "3",
                           "-o", str(out)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    import pandas as pd

    assert len(pd.read_csv(out)) == 2000  # the whole file reached the disk before the quick exit


def test_generate_command(tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    res = runner.invoke(app, ["generate", str(ROOT / "datasets/sweden/population-2026.yaml"), "--n", "50",
                              "--seed", "1", "-o", str(out)])
    assert res.exit_code == 0, res.output
    import pandas as pd

    assert len(pd.read_csv(out)) == 50


def test_trace_prints_a_case_timeline_and_rejects_unknown_cases(demo_run) -> None:
    import pandas as pd

    dec = pd.read_parquet(demo_run.run_dir / "decisions.parquet")
    case = dec[dec["outcome"] == "refer"].iloc[0]
    res = runner.invoke(app, ["trace", str(demo_run.run_dir), case["case_id"]])
    assert res.exit_code == 0, res.output
    text = res.stdout
    assert case["case_id"] in text
    for step in ("source", "intake", "decision", "final"):
        assert step in text
    for code in case["reasons"].split(";"):
        assert code in text  # the routing codes of the decision
    assert str(case["truth_outcome"]) in text  # what the law's baseline said
    bad = runner.invoke(app, ["trace", str(demo_run.run_dir), "no-such-case"])
    assert bad.exit_code == 2
    assert "no-such-case" in bad.stderr
