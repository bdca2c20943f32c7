"""``insyn run`` decides by itself whether a run is held in memory or cut into chunks (``execution.mode: auto``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from audit.exceptions import SpecError
from audit.execution import AUTO_ABOVE, AUTO_CHUNK_SIZE, REASONS, plan_execution, population_rows
from audit.spec import AuditSpec, load_spec

ROOT = Path(__file__).resolve().parents[1]


def demo(tmp: Path, **changes) -> AuditSpec:
    """The demo spec with paths made absolute and top-level keys (or population keys) replaced."""
    d = yaml.safe_load((ROOT / "examples/demo.yaml").read_text())
    d["population"]["synthetic"] = str((ROOT / "examples" / d["population"]["synthetic"]).resolve())
    d["engine"]["path"] = str((ROOT / "examples" / d["engine"]["path"]).resolve())
    for cfg in d["checks"].values():
        cfg["suites"] = [str((ROOT / "examples" / s).resolve()) for s in cfg["suites"]]
    population = changes.pop("population", None)
    if population is not None:
        derive = d["population"].get("derive")
        d["population"] = {**population, **({"derive": derive} if derive else {})}
    d.update(changes)
    if not (tmp / "engines").exists():
        shutil.copytree(ROOT / "examples/engines", tmp / "engines")  # the review model is found next to the spec
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(d))
    return load_spec(path)


# --------------------------------------------------------------------------
# counting the cases before the run


def test_rows_of_a_synthetic_population_are_its_n(tmp_path: Path) -> None:
    assert population_rows(demo(tmp_path)) == 20_000  # examples/demo.yaml
    pop = yaml.safe_load((ROOT / "examples/demo.yaml").read_text())["population"]
    assert population_rows(demo(tmp_path, population={**pop, "synthetic": str(ROOT / "examples" / pop["synthetic"]),
                                                      "n": 1_234_567})) == 1_234_567


def test_rows_of_files_are_counted_without_reading_values(tmp_path: Path) -> None:
    frame = pd.DataFrame({"case_id": [f"c{i}" for i in range(37)], "x": range(37)})
    frame.to_parquet(tmp_path / "a.parquet", index=False, row_group_size=10)
    frame.to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "b.csv").write_text((tmp_path / "a.csv").read_text().rstrip("\n"))  # no break after the last line
    frame.to_csv(tmp_path / "a.tsv", index=False, sep="\t")
    frame.to_excel(tmp_path / "a.xlsx", index=False, sheet_name="first")
    with pd.ExcelWriter(tmp_path / "two.xlsx") as xw:
        frame.head(5).to_excel(xw, index=False, sheet_name="small")
        frame.to_excel(xw, index=False, sheet_name="big")
    (tmp_path / "header.csv").write_text("case_id,x\n")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    (tmp_path / "broken.xlsx").write_bytes(b"not a workbook")
    expected = {"a.parquet": 37, "a.csv": 37, "b.csv": 37, "a.tsv": 37, "a.xlsx": 37, "header.csv": 0,
                "broken.parquet": None, "broken.xlsx": None, "missing.csv": None}
    for name, rows in expected.items():
        assert population_rows(demo(tmp_path, population={"file": str(tmp_path / name)})) == rows, name
    assert population_rows(demo(tmp_path, population={"file": str(tmp_path / "two.xlsx"), "sheet": "big"})) == 37
    assert population_rows(demo(tmp_path, population={"file": str(tmp_path / "two.xlsx"), "sheet": 0})) == 5
    assert population_rows(demo(tmp_path, population={"file": str(tmp_path / "two.xlsx"), "sheet": "nope"})) is None


def test_rows_of_a_sql_query_are_not_known(tmp_path: Path) -> None:
    spec = demo(tmp_path, population={"sql": "SELECT * FROM cases", "url": f"duckdb:///{tmp_path / 'x.duckdb'}"})
    assert population_rows(spec) is None
    plan = plan_execution(spec)
    assert not plan.chunked and plan.reason == "size_unknown"
    assert "not known before reading" in plan.why and "--chunk-size" in plan.why


# --------------------------------------------------------------------------
# the decision


def synthetic(tmp: Path, n: int, **changes) -> AuditSpec:
    pop = yaml.safe_load((ROOT / "examples/demo.yaml").read_text())["population"]
    return demo(tmp, population={**pop, "synthetic": str(ROOT / "examples" / pop["synthetic"]), "n": n}, **changes)


def test_auto_holds_a_small_run_in_memory_and_chunks_a_large_one(tmp_path: Path) -> None:
    small = plan_execution(synthetic(tmp_path, AUTO_ABOVE))
    assert (small.chunked, small.reason, small.rows, small.above) == (False, "small", AUTO_ABOVE, AUTO_ABOVE)
    assert small.why == "in memory: 500,000 cases, not more than execution.auto_above (500,000)"
    large = plan_execution(synthetic(tmp_path, AUTO_ABOVE + 1))
    assert (large.chunked, large.reason, large.chunk_size, large.executor, large.workers, large.scheduler) == (
        True, "large", AUTO_CHUNK_SIZE, "processes", os.cpu_count(), None)
    assert large.why == "in chunks: 500,001 cases, more than execution.auto_above (500,000)"
    assert large.to_dict() == {"mode": "chunks", "chunk_size": 250_000, "executor": "processes",
                               "workers": os.cpu_count(),
                               "scheduler": None, "rows": 500_001, "reason": "large", "why": large.why}


def test_auto_above_and_the_spec_section_are_read(tmp_path: Path) -> None:
    plan = plan_execution(synthetic(tmp_path, 3_000, execution={"auto_above": 2_000, "workers": 3}))
    assert (plan.chunked, plan.above, plan.workers, plan.chunk_size) == (True, 2_000, 3, AUTO_CHUNK_SIZE)
    plan = plan_execution(synthetic(tmp_path, 3_000, execution={"auto_above": 3_000}))
    assert not plan.chunked and plan.reason == "small"
    plan = plan_execution(synthetic(tmp_path, 10, execution={"chunk_size": 4}))
    assert (plan.chunked, plan.reason, plan.chunk_size) == (True, "spec_chunks", 4)
    plan = plan_execution(synthetic(tmp_path, 10, execution={"scheduler": "tcp://127.0.0.1:8786"}))
    assert (plan.chunked, plan.executor, plan.scheduler) == (True, "dask", "tcp://127.0.0.1:8786")
    plan = plan_execution(synthetic(tmp_path, 10, execution={"mode": "chunks", "executor": "inprocess"}))
    assert (plan.chunked, plan.reason, plan.executor, plan.chunk_size) == (True, "mode_chunks", "inprocess", 250_000)
    plan = plan_execution(synthetic(tmp_path, 10_000_000, execution={"mode": "memory"}))
    assert (plan.chunked, plan.reason) == (False, "mode_memory")


def test_the_command_line_wins_over_the_spec(tmp_path: Path) -> None:
    spec = synthetic(tmp_path, 10, execution={"chunk_size": 4, "executor": "inprocess"})
    plan = plan_execution(spec, chunk_size=3, workers=2)
    assert (plan.chunk_size, plan.executor, plan.workers, plan.reason, plan.asked) == (
        3, "inprocess", 2, "chunk_options", ("--chunk-size",))
    assert plan.why == "in chunks, as --chunk-size asks"
    plan = plan_execution(synthetic(tmp_path, 600_000), in_memory=True)
    assert (plan.chunked, plan.reason) == (False, "in_memory_option")
    plan = plan_execution(synthetic(tmp_path, 10), executor="inprocess", scheduler="tcp://h:1")
    assert plan.executor == "dask" and plan.asked == ("--executor", "--scheduler")


def test_contradictions_are_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"--in-memory runs the audit in memory, but --chunk-size, --scheduler asks"):
        plan_execution(synthetic(tmp_path, 10), in_memory=True, chunk_size=5, scheduler="tcp://h:1")
    with pytest.raises(SpecError, match=r"execution.mode is memory, but --executor asks for chunks"):
        plan_execution(synthetic(tmp_path, 10, execution={"mode": "memory"}), executor="processes")
    with pytest.raises(SpecError, match=r"chunk_size belongs to a run in chunks, but mode is memory"):
        synthetic(tmp_path, 10, execution={"mode": "memory", "chunk_size": 5})
    with pytest.raises(SpecError, match=r"mode"):
        synthetic(tmp_path, 10, execution={"mode": "fast"})
    with pytest.raises(SpecError, match=r"auto_above"):
        synthetic(tmp_path, 10, execution={"auto_above": -1})


def test_a_large_spec_that_cannot_run_in_chunks_runs_in_memory_and_says_why(tmp_path: Path) -> None:
    spec = synthetic(tmp_path, 700_000, attribution={"attribute": "birth_region", "group": "outside_eu"})
    plan = plan_execution(spec)
    assert (plan.chunked, plan.reason, plan.rows) == (False, "not_chunkable", 700_000)
    assert "'attribution' is not supported by a chunked run" in plan.why


def test_every_reason_has_words_in_every_language() -> None:
    from audit.report import LANGUAGES, load_catalogue

    for lang in LANGUAGES:
        messages = load_catalogue(lang)
        for reason in REASONS:
            text = messages.format(f"console.execution.{reason}", rows="1", above="2", asked="--x", detail="d")
            assert text and "{" not in text, (lang, reason)


# --------------------------------------------------------------------------
# insyn run, end to end


def _insyn(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audit.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)


def test_insyn_run_chunks_a_population_above_auto_above_by_itself(tmp_path: Path) -> None:
    spec = synthetic(tmp_path, 3_000, execution={"auto_above": 2_000})
    proc = _insyn(["run", str(spec.source), "--out", str(tmp_path / "out")], tmp_path)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    first = proc.stdout.splitlines()[0]
    assert first == ("3,000 cases in 1 chunk(s) of at most 250,000, more than execution.auto_above (2,000); "
                     "--in-memory or execution.mode memory holds them in memory."), first
    (folder,) = (tmp_path / "out" / spec.name).iterdir()
    results = json.loads((folder / "results.json").read_text())
    assert results["execution"]["chunks"] == 1 and results["execution"]["why"].startswith("in chunks: 3,000 cases")
    assert (folder / "decisions" / "part-00000.parquet").is_file()
    assert "Findings:" in proc.stdout and str(folder / "report.html") in proc.stdout  # the summary, as in memory
    assert proc.returncode == (1 if any(f["status"] == "FAIL" for f in results["findings"]) else 0)

    sv = _insyn(["run", str(spec.source), "--out", str(tmp_path / "sv"), "--lang", "sv"], tmp_path)
    assert sv.stdout.splitlines()[0].startswith("3\u00a0000 ärenden i 1 del(ar) om högst 250\u00a0000, fler än "), sv.stdout

    as_json = _insyn(["run", str(spec.source), "--out", str(tmp_path / "json"), "--json"], tmp_path)
    summary = json.loads(as_json.stdout)
    assert summary["execution"]["mode"] == "chunks" and summary["execution"]["rows"] == 3_000
    (folder,) = (tmp_path / "json" / spec.name).iterdir()
    saved = json.loads((folder / "results.json").read_text())
    assert summary["findings"] == saved["findings"] and summary["exit_code"] == as_json.returncode


def test_insyn_run_in_memory_option_and_a_contradiction(tmp_path: Path) -> None:
    spec = synthetic(tmp_path, 3_000, execution={"auto_above": 2_000})
    proc = _insyn(["run", str(spec.source), "--out", str(tmp_path / "out"), "--in-memory", "--json"], tmp_path)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert json.loads(proc.stdout)["execution"]["reason"] == "in_memory_option"
    (folder,) = (tmp_path / "out" / spec.name).iterdir()
    assert (folder / "decisions.parquet").is_file() and not (folder / "decisions").exists()
    bad = _insyn(["run", str(spec.source), "--in-memory", "--chunk-size", "5"], tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--in-memory runs the audit in memory, but --chunk-size asks for chunks" in bad.stderr


def test_the_readme_line_is_what_insyn_run_prints_at_a_million_cases(tmp_path: Path) -> None:
    """README shows the first line of `insyn run` on a million synthetic cases; it is rendered here from the plan."""
    from audit.console import Speaker, chunked_run_line

    plan = plan_execution(synthetic(tmp_path, 1_000_000))
    line = chunked_run_line(Speaker("en"), plan, rows=1_000_000, chunks=4)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"```text\n{line}\n```" in readme, line


def test_chunk_options_are_the_given_then_the_spec_then_the_defaults(tmp_path: Path) -> None:
    from audit.execution import chunk_options

    assert chunk_options(synthetic(tmp_path, 10)) == (250_000, "processes", os.cpu_count(), None)
    assert chunk_options(synthetic(tmp_path, 10), executor="inprocess") == (250_000, "inprocess", 1, None)
    assert chunk_options(synthetic(tmp_path, 10), scheduler="tcp://h:1") == (250_000, "dask", None, "tcp://h:1")
    spec = synthetic(tmp_path, 10, execution={"chunk_size": 7, "executor": "inprocess", "workers": 3})
    assert chunk_options(spec) == (7, "inprocess", 3, None)
    assert chunk_options(spec, chunk_size=9, workers=1) == (9, "inprocess", 1, None)
    assert chunk_options(spec, scheduler="tcp://h:1") == (7, "dask", 3, "tcp://h:1")


def test_insyn_run_says_why_a_large_population_stays_in_memory(tmp_path: Path) -> None:
    spec = synthetic(tmp_path, 3_000, execution={"auto_above": 2_000},
                     attribution={"attribute": "birth_region", "group": "outside_eu"})
    proc = _insyn(["run", str(spec.source), "--out", str(tmp_path / "out")], tmp_path)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert ("3,000 cases held in memory, more than execution.auto_above (2,000), but "
            in proc.stderr), proc.stderr
    assert "'attribution' is not supported by a chunked run" in proc.stderr
    (folder,) = (tmp_path / "out" / spec.name).iterdir()
    assert (folder / "decisions.parquet").is_file()
