"""audit.testing.check_engine: the conformance suite passes good engines of every kind and catches bad ones."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.engine import PythonEngine, RecordedEngine, RulesEngine, SklearnEngine, SubprocessEngine, per_case
from audit.testing import ConformanceReport, check_engine

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ["protocol", "contract", "deterministic", "empty_frame", "row_order", "batch_size", "withheld_columns"]


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    from audit.synth import generate

    return generate(ROOT / "datasets" / "sweden" / "population-2026.yaml", n=150, seed=8)


def _passes(report: ConformanceReport) -> None:
    assert [c.name for c in report] == CHECKS
    report.raise_for_failures()
    assert report.passed and not report.failures


def test_python_engines_pass(population: pd.DataFrame) -> None:
    for target in ("examples.engines.per_case_engine:decide_case", "examples.engines.per_case_engine:ScreeningEngine"):
        _passes(check_engine(PythonEngine.from_target(target, base_dir=ROOT), population))


def test_rules_engine_passes(population: pd.DataFrame) -> None:
    _passes(check_engine(RulesEngine(ROOT / "examples" / "engines" / "municipal-rpa.yaml"), population))


def test_sklearn_engine_passes(population: pd.DataFrame) -> None:
    from sklearn.linear_model import LogisticRegression

    X = population[["rent", "income_wages", "interpreter"]]
    model = LogisticRegression(max_iter=1000).fit(X, (population["rent"] > 5000).to_numpy())
    _passes(check_engine(SklearnEngine(model, labels={True: "refer", False: "grant"}), population))


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_subprocess_engine_passes(population: pd.DataFrame, fmt: str) -> None:
    script = str(ROOT / "examples" / "engines" / "subprocess_engine.py")
    _passes(check_engine(SubprocessEngine([sys.executable, script, "--format", fmt], format=fmt), population))


def test_recorded_engine_passes(tmp_path: Path, population: pd.DataFrame) -> None:
    log = tmp_path / "log.parquet"
    pd.DataFrame({"case_id": population["case_id"],
                  "decision": np.where(population["rent"] > 5000, "refer", "grant")}).to_parquet(log)
    _passes(check_engine(RecordedEngine(outcome="decision", path=log), population))


def test_reference_engine_passes(population: pd.DataFrame) -> None:
    from audit.norms import ReferenceEngine

    _passes(check_engine(ReferenceEngine(), population))


def test_default_cases_come_from_the_shipped_population() -> None:
    report = check_engine(PythonEngine.from_target("examples.engines.per_case_engine:decide_case", base_dir=ROOT),
                          n=40, seed=3)
    assert report.n_cases == 40 and report.passed


# --------------------------------------------------------------------------- what it catches


def _screen(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"case_id": frame["case_id"].to_numpy(), "outcome": "grant",
                         "amount": frame["rent"].to_numpy(dtype=float)})


def test_an_engine_that_reads_a_withheld_column_fails(population: pd.DataFrame) -> None:
    def biased(frame: pd.DataFrame) -> pd.DataFrame:
        out = _screen(frame)
        if "birth_region" in frame.columns:  # reads it when it can
            out.loc[(frame["birth_region"] == "outside_eu").to_numpy(), "outcome"] = "refer"
        return out
    report = check_engine(PythonEngine(biased, name="biased", version="1"), population)
    assert [c.name for c in report.failures] == ["withheld_columns"]
    message = report["withheld_columns"].message
    n_outside = int((population["birth_region"] == "outside_eu").sum())
    assert message.startswith(f"{n_outside} of 150 decisions change when sex, birth_region are present (e.g. case ")
    assert "are shuffled" in message


def test_an_engine_that_needs_a_withheld_column_fails_the_contract(population: pd.DataFrame) -> None:
    @per_case
    def needs_sex(case: dict) -> dict:
        return {"outcome": "grant" if case["sex"] == "female" else "refer"}
    report = check_engine(PythonEngine(needs_sex, name="needs-sex", version="1"), population)
    assert not report["contract"].passed
    assert report["contract"].message.startswith("150 of 150 cases broke the contract. First: ")
    assert "the engine reported: KeyError: 'sex'" in report["contract"].message


def test_declaring_a_withheld_column_in_sees_fails(population: pd.DataFrame) -> None:
    class Declares:
        name, version, sees = "declares", "1", ("rent", "sex")

        def decide(self, frame: pd.DataFrame) -> pd.DataFrame:
            return _screen(frame)
    report = check_engine(Declares(), population)
    assert report["withheld_columns"].message == "the engine declares that it reads sex (sees)"


def test_nondeterminism_order_and_batch_dependence_are_caught(population: pd.DataFrame) -> None:
    rng = np.random.default_rng(0)

    def noisy(frame: pd.DataFrame) -> pd.DataFrame:
        return _screen(frame).assign(amount=frame["rent"].to_numpy() + rng.integers(0, 100, len(frame)))

    def first_half(frame: pd.DataFrame) -> pd.DataFrame:
        out = _screen(frame)
        out.loc[out.index >= len(out) // 2, "outcome"] = "refer"
        return out

    def by_batch(frame: pd.DataFrame) -> pd.DataFrame:
        return _screen(frame).assign(amount=float(len(frame)))

    assert not check_engine(PythonEngine(noisy, name="noisy", version="1"), population)["deterministic"].passed
    report = check_engine(PythonEngine(first_half, name="half", version="1"), population)
    assert [c.name for c in report.failures] == ["row_order", "batch_size"]
    report = check_engine(PythonEngine(by_batch, name="batch", version="1"), population)
    assert [c.name for c in report.failures] == ["batch_size"]
    assert report["batch_size"].message.startswith("150 of 150 cases were decided differently in batches of 50 "
                                                   "(e.g. case c0000001: grant 150 -> grant 50)")


def test_an_engine_that_cannot_take_an_empty_frame_fails(population: pd.DataFrame) -> None:
    def fragile(frame: pd.DataFrame) -> pd.DataFrame:
        if frame.empty:
            raise ValueError("no rows")
        return _screen(frame)
    report = check_engine(PythonEngine(fragile, name="fragile", version="1"), population)
    assert [c.name for c in report.failures] == ["empty_frame"]
    assert report["empty_frame"].message == "decide() raised ValueError: no rows for an empty frame"


def test_raise_for_failures_lists_every_failure(population: pd.DataFrame) -> None:
    class NoVersion:
        name, version = "anon", ""

        def decide(self, frame: pd.DataFrame) -> pd.DataFrame:
            return _screen(frame)
    report = check_engine(NoVersion(), population)
    assert not report.passed and len(report.failures) == 7
    with pytest.raises(AssertionError) as info:
        report.raise_for_failures()
    text = str(info.value)
    assert text.startswith("Engine 'anon' failed 7 of 7 conformance checks:\n- protocol: version must be a "
                           "non-empty string. Got ''")
    assert "- withheld_columns: not run: the engine does not follow the protocol" in text
    frame = report.to_frame()
    assert frame["check"].tolist() == CHECKS and not frame["passed"].any()
