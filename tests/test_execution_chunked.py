"""A chunked run gives the in-memory run's results: metrics from summed group statistics, decisions as parts."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from audit import runner
from audit.audit import run_audit
from audit.chunked import run_chunked_audit
from audit.exceptions import SpecError
from audit.report import render_metrics_csv
from audit.execution import iter_chunks, run_chunked, statistics_of
from audit.spec import load_spec
from audit.synth import generate, load_population_spec

ROOT = Path(__file__).resolve().parents[1]
N = 2500


@pytest.fixture(scope="module")
def file_spec(tmp_path_factory: pytest.TempPathFactory):
    """The demo audit over 2,500 synthetic cases stored as a Parquet file, and its in-memory run."""
    tmp = tmp_path_factory.mktemp("chunked")
    frame = generate(load_population_spec(ROOT / "datasets/sweden/population-2026.yaml"), n=N, seed=42)
    frame.attrs = {}
    frame.to_parquet(tmp / "cases.parquet", index=False, row_group_size=700)
    d = yaml.safe_load((ROOT / "examples/demo.yaml").read_text())
    d["population"] = {"file": str(tmp / "cases.parquet"), "derive": d["population"]["derive"]}
    d["engine"]["path"] = str(ROOT / "examples/engines/municipal-rpa.yaml")
    for cfg in d["checks"].values():
        cfg["suites"] = [str((ROOT / "examples" / s).resolve()) for s in cfg["suites"]]
    shutil.copytree(ROOT / "examples/engines", tmp / "engines")  # the review model is found next to the spec
    (tmp / "spec.yaml").write_text(yaml.safe_dump(d))
    spec = load_spec(tmp / "spec.yaml")
    return spec, runner.run(spec), tmp


def assert_same_run(state, chunked, parts_dir: Path) -> None:
    pd.testing.assert_frame_equal(state.metrics.reset_index(drop=True), chunked.metrics.reset_index(drop=True))
    assert chunked.findings == state.findings
    assert chunked.rows == N and chunked.status_counts["ok"] == int((state.final["status"] == "ok").sum())
    parts = sorted(parts_dir.glob("part-*.parquet"))
    assert len(parts) == chunked.chunks
    decisions = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    expected = state.final.reset_index(drop=True)
    pd.testing.assert_frame_equal(decisions[expected.columns], expected, check_dtype=False)


@pytest.mark.parametrize("chunk_size", [1_000, 100_000, N, 200])  # 200: 13 chunks, pair counts added in batches
def test_chunked_run_equals_the_in_memory_run(file_spec, chunk_size: int) -> None:
    spec, state, tmp = file_spec
    out = tmp / f"parts-{chunk_size}"
    chunked = run_chunked(spec, chunk_size=chunk_size, executor="inprocess", out_dir=out)
    assert chunked.chunks == -(-N // chunk_size)
    # the summed statistics are the whole frame's statistics
    assert chunked.statistics == statistics_of(spec, state.final)
    assert_same_run(state, chunked, out)
    # every check, whole-column ones included, merges to the whole frame's result
    assert_same_checks(state.checks, chunked.checks)


COMPARED = ("success", "element_count", "unexpected_count", "missing_count", "unexpected_percent", "observed_value",
            "details", "message", "severity", "kwargs")


def assert_same_checks(entries, merged) -> None:
    """The merged results equal the in-memory run's, field by field (floats bit for bit)."""
    expected = [(e["step"], r) for e in entries for r in e["results"]]
    assert len(merged) == len(expected)
    kinds = set()
    for (step, r), m in zip(expected, merged, strict=True):
        assert (m["step"], m["expectation"], m["column"]) == (step, r["expectation"], r["column"])
        assert m["exact"] is True, m
        for k in COMPARED:
            assert m[k] == r[k], (step, r["expectation"], r["column"], k, m[k], r[k])
        kinds.add(r["expectation"])
    # the whole-column types are among those compared
    assert {"expect_column_values_to_be_unique", "expect_column_proxy_strength_to_be_at_most",
            "expect_column_group_representation_to_be_at_least",
            "expect_column_missing_rate_gap_across_groups_to_be_at_most",
            "expect_column_failure_rate_gap_across_groups_to_be_at_most"} <= kinds


@pytest.mark.parametrize("kind", ["processes", "dask"])
def test_chunks_on_other_executors_give_the_same_results(file_spec, kind: str) -> None:
    if kind == "dask":
        pytest.importorskip("dask.distributed")
    spec, state, tmp = file_spec
    out = tmp / f"parts-{kind}"
    chunked = run_chunked(spec, chunk_size=1_000, executor=kind, workers=2, out_dir=out)
    assert_same_run(state, chunked, out)
    assert chunked.workers == 2


def test_synthetic_chunks_have_derived_seeds_and_unique_ids() -> None:
    spec = load_spec(ROOT / "examples/demo.yaml")
    chunks = list(iter_chunks(spec, 7_000))
    assert [c[2] for c in chunks] == [7_000, 7_000, 6_000]
    seeds = [c[3] for c in chunks]
    assert len(set(seeds)) == 3 and all(isinstance(s, int) for s in seeds)
    assert seeds == [c[3] for c in iter_chunks(spec, 7_000)]  # reproducible


def test_bad_chunk_size_and_unsupported_options_are_spec_errors(file_spec) -> None:
    spec, _, _ = file_spec
    with pytest.raises(SpecError, match="chunk_size must be an integer >= 1. Got 0"):
        list(iter_chunks(spec, 0))
    with pytest.raises(SpecError, match="'counterfactual' is not supported by a chunked run"):
        run_chunked(load_spec(ROOT / "examples/counterfactual.yaml"), chunk_size=10)


def test_insyn_run_with_a_scheduler_address_writes_the_same_metrics(file_spec, tmp_path: Path) -> None:
    """`insyn run SPEC --scheduler ADDRESS` on a running LocalCluster: metrics.csv equals the in-memory metrics."""
    distributed = pytest.importorskip("dask.distributed")
    spec, state, tmp = file_spec
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0", worker_dashboard_address=None) as cluster:
        proc = subprocess.run([sys.executable, "-m", "audit.cli", "run", str(tmp / "spec.yaml"), "--out",
                               str(tmp_path), "--chunk-size", "1000", "--scheduler", cluster.scheduler_address],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=900)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    (folder,) = (tmp_path / spec.name).iterdir()
    assert "2,500 cases in 3 chunk(s) of at most 1,000, as --chunk-size, --scheduler asks." in proc.stdout
    metrics = pd.read_csv(folder / "metrics.csv")
    # metrics.csv as an in-memory run writes it (attributes joined with " & ", CSV injection defused)
    expected = pd.read_csv(io.StringIO(render_metrics_csv(run_audit(spec, write=False))))
    pd.testing.assert_frame_equal(metrics, expected)
    assert len(expected) == len(state.metrics)
    results = json.loads((folder / "results.json").read_text())
    assert results["execution"]["executor"] == "dask" and results["population"]["rows"] == N
    assert results["execution"]["workers"] == 1  # the cluster's, as its scheduler counts them (one thread)
    assert len(list((folder / "decisions").glob("part-*.parquet"))) == 3


def test_the_spec_execution_section_is_read(file_spec, tmp_path: Path) -> None:
    spec, state, _ = file_spec
    spec2 = spec.with_options(execution={"chunk_size": 1200, "executor": "inprocess"})
    run, folder = run_chunked_audit(spec2, out=tmp_path)
    assert run.chunks == 3 and folder.is_dir()
    assert run.workers == 1 and json.loads((folder / "results.json").read_text())["execution"]["workers"] == 1
    pd.testing.assert_frame_equal(state.metrics.reset_index(drop=True), run.metrics.reset_index(drop=True))
    with pytest.raises(Exception, match="chunk_size"):
        spec.with_options(execution={"chunk_size": 0})


def test_the_chunked_run_folder_has_journey_parts_and_lineage(file_spec, tmp_path: Path) -> None:
    spec, state, _ = file_spec
    spec2 = spec.with_options(execution={"chunk_size": 1000, "executor": "inprocess"})
    run, folder = run_chunked_audit(spec2, out=tmp_path)
    parts = sorted((folder / "journey").glob("part-*.parquet"))
    assert len(parts) == run.chunks == 3
    journey = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    expected = state.journey.cases_frame()
    assert len(journey) == len(expected) and list(journey.columns) == list(expected.columns)
    key = [c for c in ("case_id", "step") if c in expected.columns]
    assert sorted(map(tuple, journey[key].astype(str).to_numpy().tolist())) == sorted(
        map(tuple, expected[key].astype(str).to_numpy().tolist()))
    events = [json.loads(line) for line in (folder / "lineage.jsonl").read_text().splitlines()]
    assert events and all("eventType" in e for e in events)
    assert len({e["run"]["runId"] for e in events}) >= run.chunks  # one OpenLineage run per chunk at least
    assert not list((folder / "journey").glob("lineage-*.jsonl"))
