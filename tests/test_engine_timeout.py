"""A hung Python engine cannot hang the audit: a default time limit per batch, and what happens to the hung call.

A Python engine runs in Insyn's own process. Without ``engine.batch_timeout_s`` it now gets
``PythonEngine.default_timeout_s`` (600 s) per batch, like the subprocess engine's default. A batch that
overruns ends as errors with reason ``timeout``; in this process the hung call is left on a daemon thread (Python
cannot stop a thread), whose prints still go to standard error; with ``workers >= 2`` the worker is terminated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from audit.engine import PythonEngine, build_engine, per_case, run_engine
from audit.spec import EngineSpec

ROOT = Path(__file__).resolve().parents[1]
LABELS = ("grant", "partial", "deny", "refer")


def make_cases(n: int) -> pd.DataFrame:
    return pd.DataFrame({"case_id": pd.Series([f"c{i}" for i in range(1, n + 1)], dtype="str"),
                         "x": np.arange(1, n + 1, dtype=np.int64)})


def hang_on_c3(cases: pd.DataFrame) -> pd.DataFrame:
    """Grant every case, except that a batch holding c3 never returns."""
    if "c3" in set(cases["case_id"]):
        print("looking up c3 ...")
        time.sleep(1e9)
    return pd.DataFrame({"case_id": cases["case_id"].to_numpy(), "outcome": "grant", "amount": 100.0,
                         "reasons": ""})


def test_a_python_engine_has_a_default_time_limit() -> None:
    assert PythonEngine.default_timeout_s == 600.0
    engine = build_engine(EngineSpec(kind="python", target="test_engine_timeout:hang_on_c3"), base_dir=ROOT / "tests")
    assert isinstance(engine, PythonEngine) and engine.default_timeout_s == 600.0


def test_run_engine_applies_the_engines_default_when_no_timeout_is_given() -> None:
    engine = PythonEngine(hang_on_c3, name="hang", version="1")
    engine.default_timeout_s = 0.3  # the 600 s default, shortened for the test
    before = {t.ident for t in threading.enumerate()}
    t0 = time.perf_counter()
    run = run_engine(engine, make_cases(10), labels=LABELS, batch_size=2, error_budget=0.5)
    took = time.perf_counter() - t0
    dec = run.decisions.set_index("case_id")
    assert dec.loc[["c3", "c4"], "status"].tolist() == ["error", "error"]
    assert set(dec.loc[["c3", "c4"], "error_reason"]) == {"timeout: no answer within 0.3 s"}
    assert (dec.drop(index=["c3", "c4"])["status"] == "ok").all()
    assert took < 60  # not a performance claim: the call came back instead of sleeping for 1e9 s
    # the hung call is abandoned on a daemon thread: it is still alive, and it cannot keep the process alive
    hung = [t for t in threading.enumerate() if t.ident not in before and t.name == "insyn-engine-call"]
    assert len(hung) == 1 and hung[0].daemon and hung[0].is_alive()


def test_an_explicit_timeout_overrides_the_default() -> None:
    @per_case
    def slowish(case: dict) -> dict:
        time.sleep(0.05)
        return {"outcome": "grant", "amount": 1.0}
    engine = PythonEngine(slowish, name="slowish", version="1")
    engine.default_timeout_s = 0.01  # would time every batch out
    run = run_engine(engine, make_cases(4), labels=LABELS, timeout_s=30)
    assert (run.decisions["status"] == "ok").all()


def test_a_hung_engine_does_not_hang_insyn_run_and_stdout_stays_json(tmp_path: Path) -> None:
    """A real process: ``insyn run --json`` with an engine that prints and then sleeps for 1e9 s in one batch."""
    (tmp_path / "hang_engine.py").write_text(textwrap.dedent("""
        import time
        import pandas as pd

        def decide(cases):
            if (cases["case_id"] == "c0000005").any():
                print("about to hang")
                time.sleep(1e9)
            return pd.DataFrame({"case_id": cases["case_id"], "outcome": "grant", "amount": 100.0, "reasons": ""})
        """), encoding="utf-8")
    spec = {"name": "hang", "seed": 1,
            "population": {"synthetic": str(ROOT / "datasets/sweden/population-2026.yaml"), "n": 40},
            "sensitive_features": ["sex"], "truth": {"reference": True},
            "engine": {"kind": "python", "target": "hang_engine:decide", "batch_size": 10, "batch_timeout_s": 1,
                       "error_budget": 0.5},
            "statistics": {"bootstrap": 0, "min_group_size": 5}, "report": {"formats": ["json"]}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "audit.cli", "run", str(tmp_path / "spec.yaml"), "--out",
                           str(tmp_path / "out"), "--json"], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    summary = json.loads(proc.stdout)  # the engine's print went to stderr, also after the timeout
    assert "about to hang" in proc.stderr and "Traceback" not in proc.stderr
    dec = pd.read_parquet(Path(summary["run_dir"]) / "decisions.parquet")
    errors = dec[dec["status"] == "error"]
    assert errors["case_id"].tolist() == [f"c{i:07d}" for i in range(1, 11)]
    assert set(errors["status_reason"]) == {"timeout: no answer within 1 s"}
    assert (dec.loc[dec["status"] != "error", "status"] == "ok").all() and len(dec) == 40
