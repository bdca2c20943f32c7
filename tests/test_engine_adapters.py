"""The python, sklearn, subprocess, recorded and reference adapters, from Python and from a spec."""

from __future__ import annotations

import hashlib
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.engine import (
    Engine,
    PythonEngine,
    RecordedEngine,
    SklearnEngine,
    SubprocessEngine,
    UnsafeModelWarning,
    build_engine,
    run_engine,
)
from audit.exceptions import DataError, SpecError
from audit.spec import EngineSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_servers import assert_screened as _assert_screened  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
LABELS = ("grant", "partial", "deny", "refer")


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    from audit.synth import generate

    return generate(ROOT / "datasets" / "sweden" / "population-2026.yaml", n=400, seed=21).drop(
        columns=["sex", "birth_region"])


def assert_screened(decisions: pd.DataFrame, cases: pd.DataFrame) -> None:
    """The decisions equal the screen computed column-wise with pandas, on data that exercise every branch."""
    _assert_screened(decisions, cases, every_branch=True, blank_reasons=True)


# --------------------------------------------------------------------------- python


def test_python_per_case_function_from_a_spec(cases: pd.DataFrame) -> None:
    spec = EngineSpec(kind="python", target="examples.engines.per_case_engine:decide_case")
    engine = build_engine(spec, base_dir=ROOT)  # the module is found as a file under the spec's folder
    assert isinstance(engine, Engine) and isinstance(engine, PythonEngine) and engine.per_case
    assert engine.name == "examples.engines.per_case_engine:decide_case" and engine.version == "1.0"
    source = EXAMPLES / "engines" / "per_case_engine.py"
    assert engine.definition_hash == hashlib.sha256(source.read_bytes()).hexdigest()
    run = run_engine(engine, cases, labels=LABELS)
    assert_screened(run.decisions, cases)


def test_python_class_with_options_from_a_spec(cases: pd.DataFrame) -> None:
    spec = EngineSpec(kind="python", target="engines.per_case_engine:ScreeningEngine", options={"delay_s": 0.0},
                      name="screen")
    engine = build_engine(spec, base_dir=EXAMPLES)
    assert engine.name == "screen" and engine.version == "1.0"
    assert_screened(run_engine(engine, cases, labels=LABELS).decisions, cases)


def test_python_vectorised_function_and_object() -> None:
    def halve(frame: pd.DataFrame, *, factor: float) -> pd.DataFrame:
        return pd.DataFrame({"case_id": frame["case_id"], "outcome": "grant", "amount": frame["rent"] * factor})

    frame = pd.DataFrame({"case_id": ["a", "b"], "rent": [4000.0, 5000.0]})
    engine = PythonEngine(halve, options={"factor": 0.5}, name="halve", version="2")
    assert run_engine(engine, frame, labels=LABELS).decisions["amount"].tolist() == [2000.0, 2500.0]

    class Fixed:
        name, version = "fixed", "9"

        def decide(self, frame: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame({"case_id": frame["case_id"], "outcome": "refer"})

    wrapped = PythonEngine(Fixed())
    assert (wrapped.name, wrapped.version, wrapped.per_case) == ("fixed", "9", False)
    assert run_engine(wrapped, frame, labels=LABELS).decisions["outcome"].tolist() == ["refer", "refer"]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_xyz:decide", "engine.target 'no_such_module_xyz:decide': no module named "
                                      "'no_such_module_xyz'. Expected a module on the Python path or a file "
                                      "no_such_module_xyz.py next to the spec."),
        ("examples.engines.per_case_engine:nothing", "engine.target 'examples.engines.per_case_engine:nothing': "
                                                     "'examples.engines.per_case_engine' has no attribute 'nothing'."),
        ("examples.engines.per_case_engine:CHILD_NORM", "engine.target must be a function, a class or an object "
                                                        "with decide(cases) or decide_case(case). Got 3820.0."),
    ],
)
def test_python_target_errors(target: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        PythonEngine.from_target(target, base_dir=ROOT)
    assert str(info.value) == message


def test_python_options_errors() -> None:
    PythonEngine.from_target("examples.engines.per_case_engine:ScreeningEngine", base_dir=ROOT)
    cls = sys.modules["examples.engines.per_case_engine"].ScreeningEngine
    with pytest.raises(SpecError, match=r"^engine.options do not fit ScreeningEngine\(...\): "):
        PythonEngine(cls, options={"speed": 2})
    with pytest.raises(SpecError) as info:
        PythonEngine(cls(), options={"delay_s": 1})
    assert str(info.value) == "engine.options are given, but ScreeningEngine is an object that takes no options."


# --------------------------------------------------------------------------- sklearn


@pytest.fixture(scope="module")
def tree_model(cases: pd.DataFrame):
    from sklearn.tree import DecisionTreeClassifier

    X = cases[["rent", "income_wages"]]
    y = ((cases["rent"] > 5000) & (cases["income_wages"] == 0)).astype(int).to_numpy()
    return DecisionTreeClassifier(random_state=0).fit(X, y), y


def test_sklearn_predict_maps_classes_to_labels(cases: pd.DataFrame, tree_model) -> None:
    model, y = tree_model
    engine = SklearnEngine(model, labels={1: "deny", 0: "grant"}, method="predict")
    assert engine.sees == ("rent", "income_wages")
    run = run_engine(engine, cases, labels=LABELS)
    assert run.decisions["outcome"].tolist() == np.where(y == 1, "deny", "grant").tolist()
    assert run.decisions["amount"].isna().all()  # a classifier decides the outcome only
    np.testing.assert_array_equal(run.decisions["score"].to_numpy(), y.astype(float))


def test_sklearn_predict_proba_with_a_threshold(cases: pd.DataFrame) -> None:
    from sklearn.linear_model import LogisticRegression

    X = cases[["rent", "income_wages", "assets"]]
    y = (cases["rent"] - cases["income_wages"] > 3000).astype(int).to_numpy()
    model = LogisticRegression(max_iter=2000).fit(X, y)
    proba = model.predict_proba(X)[:, 1]
    for threshold in (0.2, 0.5, 0.8):
        engine = SklearnEngine(model, labels={"1": "refer", "0": "grant"}, threshold=threshold)
        assert engine.method == "predict_proba"
        d = run_engine(engine, cases, labels=LABELS).decisions
        assert d["outcome"].tolist() == np.where(proba >= threshold, "refer", "grant").tolist()
        np.testing.assert_allclose(d["score"].to_numpy(), proba)
    # the score class can be the other one
    d = run_engine(SklearnEngine(model, labels={1: "refer", 0: "grant"}, score="0", threshold=0.9), cases,
                   labels=LABELS).decisions
    assert d["outcome"].tolist() == np.where(1 - proba >= 0.9, "grant", "refer").tolist()


def test_sklearn_from_a_joblib_file_and_a_spec(tmp_path: Path, cases: pd.DataFrame, tree_model) -> None:
    import joblib

    model, y = tree_model
    path = tmp_path / "tree.joblib"
    joblib.dump(model, path)
    spec = EngineSpec(kind="sklearn", path="tree.joblib", labels={1: "deny", 0: "grant"}, threshold=0.5)
    with pytest.warns(UnsafeModelWarning, match="unpickles it, which runs code stored in the file"):
        engine = build_engine(spec, base_dir=tmp_path)
    assert engine.name == "tree"
    assert engine.definition_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert engine.version == "sha256:" + engine.definition_hash[:12]
    d = run_engine(engine, cases, labels=LABELS).decisions
    assert d["outcome"].tolist() == np.where(y == 1, "deny", "grant").tolist()


def test_sklearn_errors(tmp_path: Path, cases: pd.DataFrame, tree_model) -> None:
    model, _ = tree_model
    with pytest.raises(SpecError) as info:
        SklearnEngine(model, labels={1: "deny"})
    assert str(info.value) == ("engine.labels has no outcome for model class '0'. Model classes: 0, 1; labels "
                               "given for: 1.")
    with pytest.raises(SpecError, match=r"^engine.score must name a model class \(0, 1\). Got 'yes'.$"):
        SklearnEngine(model, score="yes")
    with pytest.raises(SpecError) as info:
        SklearnEngine.from_file(tmp_path / "none.joblib")
    assert str(info.value) == (f"{tmp_path / 'none.joblib'}: no such model file. Expected a fitted estimator saved "
                               "with joblib.dump.")
    engine = SklearnEngine(model, labels={1: "deny", 0: "grant"})
    with pytest.raises(DataError) as info:
        run_engine(engine, cases.drop(columns=["rent"]), labels=LABELS)
    assert str(info.value) == ("The model 'DecisionTreeClassifier' needs the column(s) rent, which the cases lack. "
                               "Add them to engine.features in the spec.")


def test_sklearn_unlabelled_class_is_caught_by_the_contract(cases: pd.DataFrame, tree_model) -> None:
    model, y = tree_model
    run = run_engine(SklearnEngine(model), cases, labels=LABELS, error_budget=1.0)
    assert run.n_errors == len(cases)  # classes 0/1 are not outcome labels
    assert run.decisions["error_reason"].iloc[0].startswith("unknown outcome label '")


# --------------------------------------------------------------------------- subprocess


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_subprocess_example_from_a_spec(cases: pd.DataFrame, fmt: str) -> None:
    spec = EngineSpec(kind="subprocess", command=["{python}", "engines/subprocess_engine.py", "--format", fmt],
                      format=fmt)
    engine = build_engine(spec, base_dir=EXAMPLES)  # the command runs in the spec's folder
    assert engine.command[0] == sys.executable and engine.name == "subprocess_engine.py"
    script = EXAMPLES / "engines" / "subprocess_engine.py"
    assert engine.definition_hash == hashlib.sha256(
        b"subprocess_engine.py\0" + hashlib.sha256(script.read_bytes()).hexdigest().encode() + b"\n").hexdigest()
    run = run_engine(engine, cases, labels=LABELS)
    assert_screened(run.decisions, cases)


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_subprocess_crash_is_isolated_to_the_cases_that_cause_it(tmp_path: Path, cases: pd.DataFrame) -> None:
    script = _script(tmp_path, "picky.py", """
        import json, sys
        rows = [json.loads(line) for line in sys.stdin if line.strip()]
        for r in rows:
            if r["case_id"] in {"c0000005", "c0000017"}:
                print("Exception in thread main: NullPointerException at Rules.java:42", file=sys.stderr)
                sys.exit(3)
        for r in rows:
            print(json.dumps({"case_id": r["case_id"], "outcome": "grant", "amount": 1.0}))
    """)
    engine = SubprocessEngine([sys.executable, str(script)])
    run = run_engine(engine, cases.iloc[:32], labels=LABELS, error_budget=0.1)
    errors = run.decisions[run.decisions["status"] == "error"]
    assert errors["case_id"].tolist() == ["c0000005", "c0000017"]
    assert set(errors["error_reason"]) == {
        "the engine raised RuntimeError: picky.py exited with code 3: Exception in thread main: "
        "NullPointerException at Rules.java:42"}
    assert (run.decisions.loc[run.decisions["status"] == "ok", "amount"] == 1.0).all()


def test_subprocess_timeout_and_unreadable_output(tmp_path: Path, cases: pd.DataFrame) -> None:
    slow = _script(tmp_path, "slow.py", "import time, sys\nsys.stdin.read()\ntime.sleep(20)\n")
    run = run_engine(SubprocessEngine([sys.executable, str(slow)], timeout_s=0.5), cases.iloc[:3], labels=LABELS,
                     error_budget=1.0)
    assert run.decisions["error_reason"].tolist() == [
        "timeout: slow.py did not finish within 0.5 s and was stopped"] * 3
    assert run.batches == 1
    noisy = _script(tmp_path, "noisy.py", "import sys\nsys.stdin.read()\nprint('Starting engine v2...')\n")
    run = run_engine(SubprocessEngine([sys.executable, str(noisy)]), cases.iloc[:1], labels=LABELS, error_budget=1.0)
    assert run.decisions["error_reason"].tolist() == [
        "the engine raised RuntimeError: noisy.py wrote a line that is not JSON (line 1): 'Starting engine v2...'"]


def test_subprocess_configuration_errors(cases: pd.DataFrame) -> None:
    with pytest.raises(SpecError, match=r"^engine.command cannot be started \(no-such-program-xyz\): "):
        run_engine(SubprocessEngine(["no-such-program-xyz"]), cases.iloc[:2], labels=LABELS)
    with pytest.raises(SpecError) as info:
        SubprocessEngine("java -jar engine.jar")  # type: ignore[arg-type]
    assert str(info.value) == ("engine.command must be a non-empty list such as [java, -jar, engine.jar]. "
                               "Got 'java -jar engine.jar'.")


# --------------------------------------------------------------------------- recorded


def test_recorded_from_columns_of_the_cases() -> None:
    frame = pd.DataFrame({
        "case_id": ["a", "b", "c"],
        "decision": pd.Series(["grant", None, "deny"], dtype="str"),
        "paid": [5000.0, np.nan, 0.0],
        "codes": pd.Series(["", "X", None], dtype="str"),
    })
    spec = EngineSpec(kind="recorded", outcome="decision", amount="paid", reasons="codes")
    engine = build_engine(spec, base_dir=ROOT)
    assert engine.required_columns == ("decision", "paid", "codes") and engine.name == "recorded:decision"
    run = run_engine(engine, frame, labels=LABELS, error_budget=0.5)
    d = run.decisions
    assert d["outcome"].tolist() == ["grant", "error", "deny"]
    assert d["error_reason"].tolist() == ["", "outcome is missing", ""]
    np.testing.assert_array_equal(d["amount"].to_numpy(), [5000.0, np.nan, 0.0])
    assert d["reasons"].tolist() == ["", "", ""]
    with pytest.raises(DataError, match="^The recorded engine reads the column 'paid', which the cases lack."):
        run_engine(engine, frame.drop(columns=["paid"]), labels=LABELS)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_recorded_from_a_decision_log(tmp_path: Path, suffix: str) -> None:
    log = pd.DataFrame({"case_id": ["c2", "c1", "c4"], "decision": ["deny", "grant", "refer"],
                        "paid": [0.0, 4100.5, np.nan], "codes": ["NO_NEED_INCOME_SUFFICIENT", "", "NEW_APPLICATION"]})
    path = tmp_path / f"history{suffix}"
    log.to_csv(path, index=False) if suffix == ".csv" else log.to_parquet(path)
    spec = EngineSpec(kind="recorded", path=path.name, outcome="decision", amount="paid", reasons="codes")
    engine = build_engine(spec, base_dir=tmp_path)
    assert engine.required_columns == () and engine.name == "history"
    assert engine.definition_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    frame = pd.DataFrame({"case_id": ["c1", "c2", "c3", "c4"]})
    run = run_engine(engine, frame, labels=LABELS, error_budget=0.5)
    d = run.decisions
    assert d["outcome"].tolist() == ["grant", "deny", "error", "refer"]
    np.testing.assert_array_equal(d["amount"].to_numpy(), [4100.5, 0.0, np.nan, np.nan])
    assert d["reasons"].tolist() == ["", "NO_NEED_INCOME_SUFFICIENT", "", "NEW_APPLICATION"]
    assert d["error_reason"].tolist()[2] == f"the engine reported: no recorded decision for this case in {path}"


def test_recorded_log_errors(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    pd.DataFrame({"case_id": ["a", "a", "b"], "decision": ["grant", "deny", "grant"]}).to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        RecordedEngine(outcome="decision", path=path)
    assert str(info.value) == (f"{path}: column 'case_id' must be unique in a decision log. Got 1 repeated "
                               "value(s), the first 'a'.")
    with pytest.raises(DataError) as info:
        RecordedEngine(outcome="verdict", path=path)
    assert str(info.value) == f"{path}: the decision log has no column 'verdict'. Columns given: case_id, decision."


# --------------------------------------------------------------------------- reference


def test_reference_engine_from_a_spec(cases: pd.DataFrame) -> None:
    from audit.norms import ReferenceEngine, compute_need

    engine = build_engine(EngineSpec(kind="reference", options={"asset_buffer": 20000}), base_dir=ROOT)
    assert isinstance(engine, ReferenceEngine) and engine.asset_buffer == 20000
    run = run_engine(engine, cases, labels=LABELS)
    need = compute_need(cases)["need_amount"].to_numpy()
    granted = run.decisions["outcome"].isin(["grant", "partial"]).to_numpy()
    np.testing.assert_array_equal(run.decisions["amount"].to_numpy()[granted], need[granted])
    with pytest.raises(SpecError):
        build_engine(EngineSpec(kind="reference", options={"no_such_option": 1}), base_dir=ROOT)
