"""A SQL population streams in chunks (DuckDB record batches) and gives the in-memory run's results."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from audit import runner
from audit.execution import iter_chunks, run_chunked
from audit.spec import load_spec
from audit.synth import generate, load_population_spec

ROOT = Path(__file__).resolve().parents[1]
N = 2300


@pytest.fixture(scope="module")
def sql_spec(tmp_path_factory: pytest.TempPathFactory):
    duckdb = pytest.importorskip("duckdb")
    tmp = tmp_path_factory.mktemp("sql")
    frame = generate(load_population_spec(ROOT / "datasets/sweden/population-2026.yaml"), n=N, seed=5)
    frame.attrs = {}
    con = duckdb.connect(str(tmp / "cases.duckdb"))
    con.register("f", frame)
    con.execute("CREATE TABLE cases AS SELECT * FROM f")
    con.close()
    d = yaml.safe_load((ROOT / "examples/demo.yaml").read_text())
    d["population"] = {"sql": "SELECT * FROM cases ORDER BY case_id", "url": "duckdb:///cases.duckdb",
                       "derive": d["population"]["derive"]}
    d["engine"]["path"] = str(ROOT / "examples/engines/municipal-rpa.yaml")
    for cfg in d["checks"].values():
        cfg["suites"] = [str((ROOT / "examples" / s).resolve()) for s in cfg["suites"]]
    shutil.copytree(ROOT / "examples/engines", tmp / "engines")
    (tmp / "spec.yaml").write_text(yaml.safe_dump(d))
    spec = load_spec(tmp / "spec.yaml")
    return spec, runner.run(spec), tmp


def test_sql_chunks_have_the_asked_size(sql_spec) -> None:
    spec, _, _ = sql_spec
    sizes = [n for _, _, n, _ in iter_chunks(spec, 1000)]
    assert sizes == [1000, 1000, 300]


def test_a_chunked_sql_run_equals_the_in_memory_run(sql_spec) -> None:
    spec, state, tmp = sql_spec
    chunked = run_chunked(spec, chunk_size=1000, executor="inprocess", out_dir=tmp / "parts")
    pd.testing.assert_frame_equal(state.metrics.reset_index(drop=True), chunked.metrics.reset_index(drop=True))
    decisions = pd.concat([pd.read_parquet(p) for p in sorted((tmp / "parts").glob("part-*.parquet"))],
                          ignore_index=True)
    expected = state.final.reset_index(drop=True)
    pd.testing.assert_frame_equal(decisions[expected.columns], expected, check_dtype=False)
    assert all(m["exact"] for m in chunked.checks)
    by_step = [(e["step"], r) for e in state.checks for r in e["results"]]
    for (step, r), m in zip(by_step, chunked.checks, strict=True):
        assert (m["step"], m["success"], m["unexpected_count"], m["observed_value"]) == (
            step, r["success"], r["unexpected_count"], r["observed_value"])


def test_a_sql_run_on_forked_workers_equals_the_in_memory_run(sql_spec) -> None:
    """Local worker processes start while the parent streams from the DuckDB file (forked where safe)."""
    spec, state, tmp = sql_spec
    chunked = run_chunked(spec, chunk_size=700, executor="processes", workers=2, out_dir=tmp / "parts2")
    pd.testing.assert_frame_equal(state.metrics.reset_index(drop=True), chunked.metrics.reset_index(drop=True))
    decisions = pd.concat([pd.read_parquet(p) for p in sorted((tmp / "parts2").glob("part-*.parquet"))],
                          ignore_index=True)
    expected = state.final.reset_index(drop=True)
    pd.testing.assert_frame_equal(decisions[expected.columns], expected, check_dtype=False)
