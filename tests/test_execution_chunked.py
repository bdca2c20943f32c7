"""A chunked run gives the in-memory run's results: metrics from summed group statistics, decisions as parts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from audit import runner
from audit.exceptions import SpecError
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


@pytest.mark.parametrize("chunk_size", [1_000, 100_000, N])
def test_chunked_run_equals_the_in_memory_run(file_spec, chunk_size: int) -> None:
    spec, state, tmp = file_spec
    out = tmp / f"parts-{chunk_size}"
    chunked = run_chunked(spec, chunk_size=chunk_size, executor="inprocess", out_dir=out)
    assert chunked.chunks == -(-N // chunk_size)
    # the summed statistics are the whole frame's statistics
    assert chunked.statistics == statistics_of(spec, state.final)
    assert_same_run(state, chunked, out)
    # row-level checks: counts summed over chunks equal the whole-frame counts
    assert len(chunked.checks) == sum(len(e["results"]) for e in state.checks)
    by_key = {}
    for e in state.checks:
        for i, r in enumerate(e["results"]):
            by_key.setdefault(e["step"], []).append(r)
    merged_by_step = {}
    for m in chunked.checks:
        merged_by_step.setdefault(m["step"], []).append(m)
    for step, results in by_key.items():
        for r, m in zip(results, merged_by_step[step], strict=True):
            assert m["expectation"] == r["expectation"]
            if m["exact"]:
                assert m["unexpected_count"] == int(r["unexpected_count"])
                assert m["element_count"] == int(r["element_count"])
                assert m["success"] == bool(r["success"])


@pytest.mark.parametrize("kind", ["processes", "dask"])
def test_chunks_on_other_executors_give_the_same_results(file_spec, kind: str) -> None:
    if kind == "dask":
        pytest.importorskip("dask.distributed")
    spec, state, tmp = file_spec
    out = tmp / f"parts-{kind}"
    chunked = run_chunked(spec, chunk_size=1_000, executor=kind, workers=2, out_dir=out)
    assert_same_run(state, chunked, out)


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
