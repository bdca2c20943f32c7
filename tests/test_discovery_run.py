"""Subgroup discovery in an audit run, its report section and ``insyn discover RUN_DIR`` (issue 24).

A decision log (synthetic cases with recorded decisions) refuses 45 % of the
paper applicants who need an interpreter and 15 % of everyone else; no
sensitive column names that group. The run must find it, correct its tests
with every other test of the run (checked against Holm's method by hand),
write it to results.json (checked against the schema), report it in both
languages, and ``insyn discover`` on the finished run must give the same
groups and the same corrected p-values.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from audit import load_spec
from audit.report import render_html, render_markdown
from audit.result import AuditResult
from audit.synth import generate

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "audit" / "schemas" / "results.schema.json"
PLANTED = "channel = paper & interpreter = True"


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment, written out: sorted p_(i) times (m - i + 1), running maximum, capped at 1."""
    valid = np.flatnonzero(~np.isnan(p))
    out = np.full(p.shape, np.nan)
    m = valid.size
    running = 0.0
    for rank, i in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def write_log(folder: Path, *, discover: str | None) -> Path:
    """A decision log with a planted disparity and its spec; returns the spec file."""
    cases = generate(ROOT / "datasets" / "sweden" / "population-2026.yaml", n=8000, seed=21)
    planted = (cases["channel"] == "paper").to_numpy() & cases["interpreter"].to_numpy(dtype=bool)
    rng = np.random.default_rng([21, 24])
    deny = rng.random(len(cases)) < np.where(planted, 0.45, 0.15)
    cases["decision"] = np.where(deny, "deny", "grant")
    cases.to_parquet(folder / "log.parquet", index=False)
    spec = folder / "log.yaml"
    spec.write_text(
        "name: discovery-log\n"
        "seed: 7\n"
        "population: {file: log.parquet}\n"
        "sensitive_features: [sex, birth_region]\n"
        "reference_groups: {birth_region: sweden}\n"
        "engine: {kind: recorded, outcome: decision}\n"
        "statistics: {bootstrap: 200}\n"
        + (f"discover: {discover}\n" if discover else ""),
        encoding="utf-8",
    )
    return spec


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    folder = tmp_path_factory.mktemp("log")
    spec = write_log(folder, discover="{outcome: refusal, top: 3}")
    return load_spec(spec).run(out=folder / "reports")


def test_the_run_finds_the_planted_group_and_writes_it_to_results_json(run: AuditResult) -> None:
    data = json.loads((run.run_dir / "results.json").read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(data)
    found = data["discovered"]
    assert 1 <= len(found) <= 3
    first = found[0]
    assert first["group"] == PLANTED and first["confirmed"] and first["direction"] == "higher"
    assert first["metric"] == "deny_rate" and first["row_metric"] == "discovered_deny_rate"
    birth = {r["group"]: r for r in first["makeup"] if r["attribute"] == "birth_region"}
    assert birth["outside_eu"]["share"] > 0.8 > birth["outside_eu"]["population_share"]
    assert first["search_half"] + first["test_half"] == 8000


def test_discovery_tests_are_corrected_with_every_test_of_the_run(run: AuditResult) -> None:
    metrics = run.metrics_frame()
    p = metrics["p_value"].to_numpy(dtype=float)
    funnel_p = np.array([r["p_value"] for r in (run.funnel or ())], dtype=float)  # the funnel's tests join too
    family = holm(np.concatenate([p, funnel_p]))[: len(p)]
    assert np.allclose(metrics["p_adjusted"].to_numpy(dtype=float), family, equal_nan=True, rtol=1e-12, atol=0)
    rows = metrics[metrics["metric"] == "discovered_deny_rate"]
    found = run.to_dict()["discovered"]
    assert rows["group"].tolist() == [g["group"] for g in found]
    assert rows["p_adjusted"].tolist() == pytest.approx([g["p_adjusted"] for g in found])
    m = int(np.isfinite(p).sum()) + int(np.isfinite(funnel_p).sum())
    assert all(g["correction"] == {"method": "holm", "family": "run", "m": m} for g in found)
    assert m > len(found)  # the family is the run's, not the discovery's own
    steps = {s["name"]: s for s in run.to_dict()["journey"]["steps"]}
    assert steps["measurement"]["notes"]["discovered"] == len(found)


def test_the_report_has_the_section_in_both_languages(run: AuditResult) -> None:
    md_en = render_markdown(run, language="en")
    md_sv = render_markdown(run, language="sv")
    html_sv = render_html(run, language="sv")
    section = md_en[md_en.index("## Groups nobody named"):]
    section = section[: section.index("\n## ")]
    assert "channel = paper & interpreter = True: Refusal rate" in section.replace("\\", "")
    assert "born outside the EU" in section and "Confirmed" in section
    assert "## Grupper som ingen namngav" in md_sv and "födda utanför EU" in md_sv
    assert '<section id="discovered"' in html_sv and "Bekräftad" in html_sv
    # the discovered rows stay in their section: not in "Further metrics", not in the summary's disparities
    assert "## Further metrics" not in md_en
    summary = md_en[: md_en.index("## All findings")]
    assert "interpreter" not in summary


def test_a_run_without_discover_says_so(tmp_path: Path) -> None:
    spec = write_log(tmp_path, discover=None)
    result = load_spec(spec).run(write=False)
    assert "discovered" not in result.to_dict()
    md = render_markdown(result, language="en")
    assert "Subgroup discovery was not run: the spec has no discover: section." in md


def test_a_recorded_decision_is_never_searched(tmp_path: Path) -> None:
    from audit.exceptions import SpecError

    spec = write_log(tmp_path, discover="{features: [channel, decision]}")
    with pytest.raises(SpecError, match=r"discover.features names 'decision', which holds a recorded decision"):
        load_spec(spec).run(write=False)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "audit.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}, timeout=300)


def test_insyn_discover_on_the_finished_run_gives_the_runs_groups(run: AuditResult, tmp_path: Path) -> None:
    done = _cli("discover", str(run.run_dir), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    again = json.loads(done.stdout)
    found = run.to_dict()["discovered"]
    assert [g["group"] for g in again["groups"]] == [g["group"] for g in found]
    assert [g["p_adjusted"] for g in again["groups"]] == pytest.approx([g["p_adjusted"] for g in found])
    assert again["correction"] == found[0]["correction"]
    table = _cli("discover", str(run.run_dir), "--top", "1", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert PLANTED in table.stdout and "confirmed" in table.stdout
    assert "outside_eu" in table.stdout  # the make-up names the over-represented group


def test_insyn_discover_refuses_a_run_whose_cases_changed(run: AuditResult, tmp_path: Path) -> None:
    log = run.run_dir.parents[2] / "log.parquet"
    original = log.read_bytes()
    try:
        frame = pd.read_parquet(log)
        frame.loc[0, "sex"] = "male" if frame.loc[0, "sex"] == "female" else "female"
        frame.to_parquet(log, index=False)
        done = _cli("discover", str(run.run_dir), cwd=tmp_path)
    finally:
        log.write_bytes(original)
    assert done.returncode == 2
    assert "log.parquet: the file changed since the run (its SHA-256 differs from manifest.json)" in done.stderr


def test_insyn_discover_names_a_bad_option_and_a_missing_folder(run: AuditResult, tmp_path: Path) -> None:
    done = _cli("discover", str(run.run_dir), "--outcome", "luck", cwd=tmp_path)
    assert done.returncode == 2
    assert "discover.outcome must be one of deny" in done.stderr and "Got 'luck'" in done.stderr
    done = _cli("discover", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert done.returncode == 2 and "no such run folder" in done.stderr
