"""run_engine holds every engine to the decision contract; no case is ever dropped."""

from __future__ import annotations

import dataclasses
import os
import re
import time

import numpy as np
import pandas as pd
import pytest

from audit.engine import EngineRun, PythonEngine, per_case, run_engine
from audit.exceptions import DataError, EngineError, SpecError

LABELS = ("grant", "partial", "deny", "refer")


def make_cases(n: int) -> pd.DataFrame:
    """Cases c1..cn with x = 1..n."""
    return pd.DataFrame({"case_id": pd.Series([f"c{i}" for i in range(1, n + 1)], dtype="str"),
                         "x": np.arange(1, n + 1, dtype=np.int64)})


def rule(cases: pd.DataFrame) -> pd.DataFrame:
    """A well-behaved engine: grant 100 * x when x is even, else refer."""
    even = cases["x"].to_numpy() % 2 == 0
    return pd.DataFrame({
        "case_id": cases["case_id"].to_numpy(),
        "outcome": np.where(even, "grant", "refer"),
        "amount": np.where(even, 100.0 * cases["x"].to_numpy(), np.nan),
        "reasons": np.where(even, "", "NEW_APPLICATION"),
        "rule": np.where(even, "even", "odd"),
    })


class Recorder:
    """Wrap a decide function; record the size of every call."""

    name = "recorder"
    version = "1.0"

    def __init__(self, func) -> None:
        self.func = func
        self.calls: list[int] = []

    def decide(self, cases: pd.DataFrame) -> pd.DataFrame:
        self.calls.append(len(cases))
        return self.func(cases)


def one(run: EngineRun, case_id: str) -> pd.Series:
    row = run.decisions.loc[run.decisions["case_id"] == case_id]
    assert len(row) == 1
    return row.iloc[0]


# --------------------------------------------------------------------------- the happy path


def test_decisions_come_back_in_input_order_with_extras_and_types() -> None:
    cases = make_cases(6)
    engine = PythonEngine(lambda c: rule(c).iloc[::-1], name="reversed", version="1")  # answers in reverse order
    run = run_engine(engine, cases, labels=LABELS)
    d = run.decisions
    assert d["case_id"].tolist() == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert d["outcome"].tolist() == ["refer", "grant", "refer", "grant", "refer", "grant"]
    np.testing.assert_array_equal(d["amount"].to_numpy(), [np.nan, 200.0, np.nan, 400.0, np.nan, 600.0])
    assert d["rule"].tolist() == ["odd", "even"] * 3  # an extra column travels on
    assert (d["status"] == "ok").all() and (d["error_reason"] == "").all()
    assert d["score"].isna().all()  # optional score: NaN when the engine gives none
    assert list(d.columns[:7]) == ["case_id", "outcome", "amount", "score", "reasons", "status", "error_reason"]
    assert str(d["case_id"].dtype) == "str" and str(d["outcome"].dtype) == "str" and d["amount"].dtype == float
    assert (run.n_cases, run.n_errors, run.batches) == (6, 0, 1)
    assert run.engine_name == "reversed" and run.engine_version == "1"
    assert run.extra.empty and run.failures.empty
    assert run.error_rate == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.n_errors = 3  # type: ignore[misc]


def test_batches_are_cut_to_size_and_give_the_same_decisions() -> None:
    cases = make_cases(100)
    whole = run_engine(PythonEngine(rule, name="r", version="1"), cases, labels=LABELS)
    rec = Recorder(rule)
    cut = run_engine(rec, cases, labels=LABELS, batch_size=30)
    assert rec.calls == [30, 30, 30, 10]
    assert cut.batches == 4
    pd.testing.assert_frame_equal(whole.decisions, cut.decisions)


def test_integer_case_ids_are_matched_by_their_text() -> None:
    cases = pd.DataFrame({"case_id": [101, 102], "x": [2, 3]})
    run = run_engine(PythonEngine(rule, name="r", version="1"), cases, labels=LABELS)
    assert run.decisions["case_id"].tolist() == ["101", "102"]
    assert run.decisions["outcome"].tolist() == ["grant", "refer"]


def test_empty_input_gives_an_empty_run() -> None:
    run = run_engine(PythonEngine(rule, name="r", version="1"), make_cases(0), labels=LABELS)
    assert len(run.decisions) == 0 and run.n_errors == 0
    assert {"case_id", "outcome", "amount", "status", "error_reason"} <= set(run.decisions.columns)
    assert np.isnan(run.error_rate)  # no cases: the rate is undefined, not 0


def test_reserved_column_names_from_the_engine_are_renamed() -> None:
    engine = PythonEngine(lambda c: rule(c).assign(status="mine"), name="r", version="1")
    run = run_engine(engine, make_cases(2), labels=LABELS)
    assert run.decisions["status"].tolist() == ["ok", "ok"]
    assert run.decisions["engine_status"].tolist() == ["mine", "mine"]


# --------------------------------------------------------------------------- contract violations


def test_missing_extra_and_duplicated_case_ids() -> None:
    def sloppy(cases: pd.DataFrame) -> pd.DataFrame:
        d = rule(cases)
        d = d[d["case_id"] != "c3"]                              # forgets c3
        d = pd.concat([d, d[d["case_id"] == "c2"]])              # answers c2 twice
        stray = pd.DataFrame({"case_id": ["zz9"], "outcome": ["grant"], "amount": [1.0]})
        return pd.concat([d, stray], ignore_index=True)          # invents zz9
    run = run_engine(PythonEngine(sloppy, name="sloppy", version="1"), make_cases(5), labels=LABELS, error_budget=1.0)
    d = run.decisions
    assert d["case_id"].tolist() == ["c1", "c2", "c3", "c4", "c5"]        # every case, no stranger
    assert d["status"].tolist() == ["ok", "error", "error", "ok", "ok"]
    assert one(run, "c2")["error_reason"] == "the engine answered 2 times for this case; expected exactly one decision"
    assert one(run, "c3")["error_reason"] == "the engine gave no answer for this case"
    for cid in ("c2", "c3"):
        row = one(run, cid)
        assert row["outcome"] == "error" and np.isnan(row["amount"])
    assert run.extra.to_dict("records") == [{"case_id": "zz9", "reason": "not among the cases asked for in this batch"}]
    assert run.n_errors == 2
    assert sorted(run.failures["check"]) == ["duplicate_case_id", "missing_case_id"]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("outcome", "approve", "unknown outcome label 'approve'; expected one of grant, partial, deny, refer"),
        ("outcome", None, "outcome is missing"),
        ("amount", -5.0, "amount must be a number >= 0. Got -5"),
        ("amount", "abc", "amount must be a number >= 0. Got 'abc'"),
        ("amount", True, "amount must be a number >= 0. Got True"),
        ("amount", np.inf, "amount must be a finite number. Got inf"),
        ("score", "high", "score must be a number. Got 'high'"),
        ("error", "could not read the rent", "the engine reported: could not read the rent"),
    ],
)
def test_a_bad_value_makes_only_its_case_an_error(column: str, value: object, reason: str) -> None:
    def bad(cases: pd.DataFrame) -> pd.DataFrame:
        d = rule(cases).astype({"outcome": object, "amount": object})
        d["score"] = pd.Series([0.5] * len(d), dtype=object)
        d["error"] = ""
        d.loc[d["case_id"] == "c4", column] = value
        return d
    run = run_engine(PythonEngine(bad, name="bad", version="1"), make_cases(6), labels=LABELS, error_budget=0.5)
    assert run.n_errors == 1
    row = one(run, "c4")
    assert (row["status"], row["outcome"], row["error_reason"]) == ("error", "error", reason)
    assert np.isnan(row["amount"]) and np.isnan(row["score"])
    ok = run.decisions[run.decisions["case_id"] != "c4"]
    assert (ok["status"] == "ok").all()
    assert ok["amount"].tolist()[1] == 200.0 and ok["score"].tolist() == [0.5] * 5  # the others are untouched
    failure = run.failures.iloc[0]
    assert failure["case_id"] == "c4" and failure["column"] == column and failure["reason"] == reason


def test_an_answer_that_is_not_a_frame_or_lacks_outcome_fails_its_batch() -> None:
    run = run_engine(PythonEngine(lambda c: [1, 2], name="lst", version="1"), make_cases(3), labels=LABELS,
                     error_budget=1.0)
    assert (run.decisions["error_reason"] == "decide() returned a list; expected a pandas DataFrame").all()
    no_outcome = PythonEngine(lambda c: c[["case_id"]].assign(verdict="grant"), name="nv", version="1")
    run = run_engine(no_outcome, make_cases(2), labels=LABELS, error_budget=1.0)
    assert run.decisions["error_reason"].tolist() == [
        "the answer has no 'outcome' column (columns given: case_id, verdict)"] * 2


def test_an_exception_is_isolated_to_the_cases_that_cause_it() -> None:
    def fragile(cases: pd.DataFrame) -> pd.DataFrame:
        bad = cases.loc[cases["x"].isin([13, 42]), "case_id"].tolist()
        if bad:
            raise ValueError(f"cannot parse household of {bad[0]}")
        return rule(cases)
    rec = Recorder(fragile)
    run = run_engine(rec, make_cases(64), labels=LABELS, error_budget=0.05)
    errors = run.decisions[run.decisions["status"] == "error"]
    assert errors["case_id"].tolist() == ["c13", "c42"]
    assert errors["error_reason"].tolist() == ["the engine raised ValueError: cannot parse household of c13",
                                               "the engine raised ValueError: cannot parse household of c42"]
    expected = rule(make_cases(64))
    ok = run.decisions["status"] == "ok"
    assert run.decisions.loc[ok, "outcome"].tolist() == expected.loc[ok.to_numpy(), "outcome"].tolist()
    # halving finds two bad rows among 64 in at most 1 + 2 * 2 * log2(64) calls, far fewer than 64
    assert run.batches == len(rec.calls) <= 1 + 2 * 2 * 6
    assert sum(rec.calls) < 64 * 7


def test_a_per_case_engine_error_marks_only_that_case() -> None:
    @per_case
    def decide(case: dict) -> dict:
        if case["x"] == 2:
            raise KeyError("rent")
        return {"outcome": "grant", "amount": 10.0 * case["x"], "reasons": ["A", "B"]}
    run = run_engine(PythonEngine(decide, name="pc", version="1"), make_cases(3), labels=LABELS, error_budget=0.5)
    assert run.decisions["status"].tolist() == ["ok", "error", "ok"]
    assert one(run, "c2")["error_reason"] == "the engine reported: KeyError: 'rent'"
    assert run.decisions["reasons"].tolist() == ["A;B", "", "A;B"]
    assert run.decisions["amount"].tolist()[::2] == [10.0, 30.0]


def test_a_timeout_marks_the_batch_and_the_run_goes_on() -> None:
    def slow_on_c7(cases: pd.DataFrame) -> pd.DataFrame:
        if "c7" in set(cases["case_id"]):
            time.sleep(1.0)
        return rule(cases)
    run = run_engine(PythonEngine(slow_on_c7, name="slow", version="1"), make_cases(20), labels=LABELS,
                     batch_size=5, timeout_s=0.2, error_budget=0.5)
    errors = run.decisions.loc[run.decisions["status"] == "error", "case_id"].tolist()
    assert errors == ["c6", "c7", "c8", "c9", "c10"]  # the second batch of five
    assert set(run.decisions.loc[run.decisions["status"] == "error", "error_reason"]) == {
        "timeout: no answer within 0.2 s"}
    assert run.batches == 4  # a timeout is not split and retried


# --------------------------------------------------------------------------- the error budget


def _fails_on(ids: set[str]):
    def engine(cases: pd.DataFrame) -> pd.DataFrame:
        d = rule(cases)
        d.loc[d["case_id"].isin(ids), "outcome"] = "approve"
        return d
    return PythonEngine(engine, name="flaky", version="1.0")


def test_errors_within_the_budget_let_the_run_continue() -> None:
    run = run_engine(_fails_on({"c7"}), make_cases(100), labels=LABELS, error_budget=0.01)
    assert run.n_errors == 1 and len(run.decisions) == 100


def test_errors_beyond_the_budget_stop_the_run_with_a_precise_message() -> None:
    with pytest.raises(EngineError) as info:
        run_engine(_fails_on({"c7", "c9"}), make_cases(100), labels=LABELS, error_budget=0.01)
    reason = "unknown outcome label 'approve'; expected one of grant, partial, deny, refer"
    assert str(info.value) == (
        "Engine 'flaky' (version 1.0) could not decide 2 of 100 cases (2.0%), more than its error budget of "
        f"1.0% (1 cases). First reasons: c7: {reason}; c9: {reason}. Fix the engine, or raise "
        "engine.error_budget in the spec if these errors are expected."
    )
    assert info.value.failures["case_id"].tolist() == ["c7", "c9"]


def test_the_message_lists_the_first_five_reasons_only() -> None:
    with pytest.raises(EngineError) as info:
        run_engine(_fails_on({f"c{i}" for i in range(1, 11)}), make_cases(10), labels=LABELS, error_budget=0)
    first = str(info.value).split("First reasons: ")[1]
    assert re.findall(r"(c\d+): unknown outcome label", first) == ["c1", "c2", "c3", "c4", "c5"]
    assert "could not decide 10 of 10 cases (100.0%)" in str(info.value)


def test_a_broken_engine_is_not_isolated_row_by_row_once_the_budget_is_gone() -> None:
    rec = Recorder(lambda c: (_ for _ in ()).throw(RuntimeError("database down")))
    with pytest.raises(EngineError, match=r"could not decide 1000 of 1000 cases") as info:
        run_engine(rec, make_cases(1000), labels=LABELS)
    # the budget (10 cases) is exceeded after a few halvings; the rest is marked without more calls
    assert len(rec.calls) < 60
    assert "database down" in str(info.value)


# --------------------------------------------------------------------------- input and options


def test_configuration_errors_of_the_engine_propagate() -> None:
    def misconfigured(cases: pd.DataFrame) -> pd.DataFrame:
        raise SpecError("rules.yaml: rules[0] (x).when: unknown name 'rnet'")
    rec = Recorder(misconfigured)
    with pytest.raises(SpecError, match="unknown name 'rnet'"):
        run_engine(rec, make_cases(50), labels=LABELS)
    assert rec.calls == [50]  # not split: it would fail for every case


@pytest.mark.parametrize(
    ("cases", "message"),
    [
        (pd.DataFrame({"id": ["a"]}), "The cases have no 'case_id' column. Expected a unique string id per case; "
                                      "columns given: id."),
        (pd.DataFrame({"case_id": ["a", "b", "a", "b"]}),
         "Column 'case_id' must be unique. Got 2 duplicated value(s), the first 'a'."),
        (pd.DataFrame({"case_id": ["a", None]}),
         "Column 'case_id' must have a value in every row. Got a missing value in row 1."),
    ],
)
def test_bad_input_is_a_data_error(cases: pd.DataFrame, message: str) -> None:
    with pytest.raises(DataError) as info:
        run_engine(PythonEngine(rule, name="r", version="1"), cases, labels=LABELS)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("batch_size", 0, "The 'batch_size' option must be an integer >= 1. Got 0."),
        ("workers", 0, "The 'workers' option must be an integer >= 1. Got 0."),
        ("error_budget", 1.5, "The 'error_budget' option must be a number between 0 and 1. Got 1.5."),
        ("timeout_s", -1, "The 'timeout_s' option must be a number > 0. Got -1."),
        ("labels", ["grant", "error"],
         "The 'labels' option must not contain 'error': it marks cases the engine could not decide."),
        ("labels", "grant", "The 'labels' option must be a non-empty list of outcome labels. Got 'grant'."),
    ],
)
def test_bad_options_are_spec_errors(option: str, value: object, message: str) -> None:
    kwargs: dict = {"labels": LABELS, option: value}
    with pytest.raises(SpecError) as info:
        run_engine(PythonEngine(rule, name="r", version="1"), make_cases(2), **kwargs)
    assert str(info.value) == message


def test_something_that_is_not_an_engine_is_refused() -> None:
    with pytest.raises(SpecError, match="The engine must have name, version and decide"):
        run_engine(object(), make_cases(1), labels=LABELS)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- worker processes


@per_case
def _pid_case(case: dict) -> dict:
    return {"outcome": "grant" if case["x"] % 3 else "deny", "amount": float(case["x"]), "pid": os.getpid()}


def test_worker_processes_give_the_same_decisions() -> None:
    cases = make_cases(40)
    engine = PythonEngine(_pid_case, name="pc", version="1")
    serial = run_engine(engine, cases, labels=LABELS)
    parallel = run_engine(engine, cases, labels=LABELS, workers=2, batch_size=5)
    cols = ["case_id", "outcome", "amount", "status"]
    pd.testing.assert_frame_equal(serial.decisions[cols], parallel.decisions[cols])
    pids = set(parallel.decisions["pid"])
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert parallel.batches == 8
    assert serial.decisions["outcome"].tolist()[:3] == ["grant", "grant", "deny"]


def _stuck_on_c3(cases: pd.DataFrame) -> pd.DataFrame:
    if "c3" in set(cases["case_id"]):
        time.sleep(30)
    return rule(cases)


def test_a_stuck_worker_times_out_and_is_stopped() -> None:
    t0 = time.perf_counter()
    run = run_engine(PythonEngine(_stuck_on_c3, name="stuck", version="1"), make_cases(8), labels=LABELS,
                     workers=2, batch_size=2, timeout_s=0.5, error_budget=0.5)
    assert time.perf_counter() - t0 < 10  # the stuck worker was terminated, not waited for
    assert run.decisions.loc[run.decisions["status"] == "error", "case_id"].tolist() == ["c3", "c4"]
    assert run.decisions.loc[run.decisions["case_id"] == "c8", "amount"].item() == 800.0


# --------------------------------------------------------------------------- the public surface


def test_the_public_surface_is_small_sorted_and_complete() -> None:
    import audit.engine
    import audit.testing

    assert audit.engine.__all__ == [
        "Engine", "EngineRun", "HttpEngine", "PythonEngine", "RecordedEngine", "RulesEngine", "SklearnEngine",
        "SubprocessEngine", "UnsafeModelWarning", "build_engine", "per_case", "run_engine",
    ]
    assert audit.testing.__all__ == ["ConformanceCheck", "ConformanceReport", "check_engine"]
    public = {n for n in vars(audit.engine) if not n.startswith("_") and n != "annotations"}
    assert public <= set(audit.engine.__all__), sorted(public - set(audit.engine.__all__))
