"""The http adapter against real HTTP servers: batching, retries, timeouts, concurrency, DMN."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.engine import HttpEngine, build_engine, run_engine
from audit.exceptions import SpecError
from audit.spec import EngineSpec
from audit.testing import check_engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_servers import DmnServer, InsynServer, assert_screened  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LABELS = ("grant", "partial", "deny", "refer")


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    from audit.synth import generate

    return generate(ROOT / "datasets" / "sweden" / "population-2026.yaml", n=230, seed=4).drop(
        columns=["sex", "birth_region"])




def test_batches_of_the_configured_size_from_a_spec(cases: pd.DataFrame) -> None:
    with InsynServer() as server:
        spec = EngineSpec(kind="http", url=server.url, batch_size=50, concurrency=2, timeout_s=5)
        engine = build_engine(spec, base_dir=ROOT)
        assert engine.batches_itself and engine.name == server.url.removeprefix("http://")
        run = run_engine(engine, cases, labels=LABELS, batch_size=spec.batch_size)
    assert sorted(r["n_cases"] for r in server.requests) == [30, 50, 50, 50, 50]
    assert run.batches == 1 and run.n_errors == 0
    assert_screened(run.decisions, cases)


def test_the_concurrency_limit_holds_on_the_server_side(cases: pd.DataFrame) -> None:
    with InsynServer(delay_s=0.15) as server:
        run = run_engine(HttpEngine(server.url, batch_size=20, concurrency=3), cases, labels=LABELS)
    assert len(server.requests) == 12  # ceil(230 / 20)
    assert server.max_active == 3      # requests overlap, but never more than three at once
    assert_screened(run.decisions, cases)


def test_5xx_answers_are_retried_with_backoff(cases: pd.DataFrame) -> None:
    with InsynServer(fail_first=2) as server:
        engine = HttpEngine(server.url, batch_size=1000, retries=3, backoff_s=0.2, concurrency=1)
        run = run_engine(engine, cases, labels=LABELS)
    statuses = [r["status"] for r in sorted(server.requests, key=lambda r: r["number"])]
    assert statuses == [503, 503, 200]
    starts = [r["start"] for r in sorted(server.requests, key=lambda r: r["number"])]
    gaps = np.diff(starts)
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # backoff 0.2 s, then doubled
    assert engine.requests_made == 3
    assert_screened(run.decisions, cases)


def test_timeouts_are_retried_then_reported(cases: pd.DataFrame) -> None:
    # the first attempt sleeps three times the timeout; the retry has the whole second to answer 230 cases, which
    # leaves room for a machine busy with other tests (0.3 s once proved too little there)
    with InsynServer(slow_first=1, slow_s=3.0) as server:
        engine = HttpEngine(server.url, batch_size=1000, timeout_s=1.0, retries=1, backoff_s=0.0, concurrency=1)
        run = run_engine(engine, cases, labels=LABELS)
    assert engine.requests_made == 2 and run.n_errors == 0  # the second attempt got through
    assert_screened(run.decisions, cases)
    with InsynServer(slow_first=10, slow_s=1.0) as server:
        engine = HttpEngine(server.url, batch_size=100, timeout_s=0.3, retries=1, backoff_s=0.0, concurrency=3)
        run = run_engine(engine, cases, labels=LABELS, error_budget=1.0)
    assert run.n_errors == len(cases)
    assert set(run.decisions["error_reason"]) == {
        f"the engine reported: timeout: no answer from {server.url} within 0.3 s (after 2 attempts)"}


def test_a_request_that_keeps_failing_marks_only_its_cases(cases: pd.DataFrame) -> None:
    with InsynServer(fail_first=3) as server:  # the first batch fails three times, the rest go through
        engine = HttpEngine(server.url, batch_size=100, retries=2, backoff_s=0.0, concurrency=1)
        run = run_engine(engine, cases, labels=LABELS, error_budget=0.5)
    d = run.decisions
    assert (d["status"].iloc[:100] == "error").all() and (d["status"].iloc[100:] == "ok").all()
    assert d["error_reason"].iloc[0] == (
        f"the engine reported: HTTP 503 from {server.url}: {{\"message\": \"service unavailable (test fault)\"}} "
        "(after 3 attempts)")
    assert_screened(d.iloc[100:].reset_index(drop=True), cases.iloc[100:].reset_index(drop=True))


def test_4xx_is_not_retried_and_a_dead_server_is_reported(cases: pd.DataFrame) -> None:
    with InsynServer() as server:
        engine = HttpEngine(server.base + "/wrong", retries=3, backoff_s=0.0)
        run = run_engine(engine, cases.iloc[:5], labels=LABELS, error_budget=1.0)
        assert engine.requests_made == 1
        port = server.httpd.server_address[1]
    assert run.decisions["error_reason"].iloc[0] == (
        f"the engine reported: HTTP 404 from {server.base}/wrong: {{\"message\": \"no such endpoint /wrong\"}}")
    dead = HttpEngine(f"http://127.0.0.1:{port}/decide", retries=1, backoff_s=0.0, timeout_s=1)
    run = run_engine(dead, cases.iloc[:5], labels=LABELS, error_budget=1.0)
    reason = run.decisions["error_reason"].iloc[0]
    assert reason.startswith(f"the engine reported: cannot reach http://127.0.0.1:{port}")
    assert reason.endswith("(after 2 attempts)")


def test_contract_violations_from_a_service_become_error_rows(cases: pd.DataFrame) -> None:
    def corrupt(decisions: list[dict]) -> list[dict]:
        out = []
        for d in decisions:
            if d["case_id"] == "c0000003":
                continue                                         # forgotten
            if d["case_id"] == "c0000004":
                d = {**d, "outcome": "approved"}                 # unknown label
            if d["case_id"] == "c0000005":
                d = {**d, "amount": "lots"}                      # not a number
            out.append(d)
        return out + [{"case_id": "x-999", "outcome": "grant", "amount": 1}]
    with InsynServer(corrupt=corrupt) as server:
        run = run_engine(HttpEngine(server.url), cases.iloc[:10], labels=LABELS, error_budget=0.5)
    d = run.decisions.set_index("case_id")
    assert d.loc["c0000003", "error_reason"] == "the engine gave no answer for this case"
    assert d.loc["c0000004", "error_reason"] == ("unknown outcome label 'approved'; expected one of grant, partial, "
                                                 "deny, refer")
    assert d.loc["c0000005", "error_reason"] == "amount must be a number >= 0. Got 'lots'"
    assert run.n_errors == 3 and run.extra["case_id"].tolist() == ["x-999"]


def test_a_configurable_mapping_of_field_names(cases: pd.DataFrame) -> None:
    def rename(decisions: list[dict]) -> list[dict]:
        return [{"id": d["case_id"], "verdict": d["outcome"], "paid": d["amount"], "codes": d["reasons"].split(";")}
                for d in decisions]
    with InsynServer(corrupt=rename) as server:
        spec = EngineSpec(kind="http", url=server.url, mapping={"case_id": "id", "outcome": "verdict",
                                                                "amount": "paid", "reasons": "codes"})
        run = run_engine(build_engine(spec, base_dir=ROOT), cases, labels=LABELS)
    assert_screened(run.decisions, cases)


def test_dmn_evaluate_with_typed_variables(cases: pd.DataFrame) -> None:
    with DmnServer() as server:
        spec = EngineSpec(kind="http", url=server.url, protocol="dmn", decision="screening", concurrency=4)
        engine = build_engine(spec, base_dir=ROOT)
        assert engine.endpoint == f"{server.url}/decision-definition/key/screening/evaluate"
        run = run_engine(engine, cases, labels=LABELS)
        seen = server.variables_seen[0]
    assert len(server.requests) == len(cases)  # one case per evaluate call
    assert 1 < server.max_active <= 4
    assert seen["rent"]["type"] == "Double" and seen["adults"]["type"] == "Integer"
    assert seen["interpreter"]["type"] == "Boolean" and seen["child_ages"]["type"] == "String"
    assert_screened(run.decisions, cases)


def test_dmn_errors_are_reported_per_case(cases: pd.DataFrame) -> None:
    with DmnServer() as server:
        unknown = HttpEngine(server.url, protocol="dmn", decision="rpa-2019")
        run = run_engine(unknown, cases.iloc[:2], labels=LABELS, error_budget=1.0)
        assert run.decisions["error_reason"].iloc[0] == (
            f"the engine reported: HTTP 404 from {server.url}/decision-definition/key/rpa-2019/evaluate: "
            '{"type": "RestException", "message": "No matching decision definition with key: rpa-2019 and no '
            'tenant-id"}')
    with DmnServer(corrupt=lambda results: []) as server:
        run = run_engine(HttpEngine(server.url, protocol="dmn", decision="screening"), cases.iloc[:1], labels=LABELS,
                         error_budget=1.0)
        assert run.decisions["error_reason"].iloc[0] == (
            "the engine reported: no rule of decision 'screening' matched this case")
    with DmnServer(corrupt=lambda results: results * 2) as server:
        run = run_engine(HttpEngine(server.url, protocol="dmn", decision="screening"), cases.iloc[:1], labels=LABELS,
                         error_budget=1.0)
        assert run.decisions["error_reason"].iloc[0] == (
            "the engine reported: decision 'screening' returned 2 results; expected one (use hit policy UNIQUE or "
            "FIRST)")


def test_http_options_are_checked() -> None:
    with pytest.raises(SpecError, match=r"^engine.url must be an http:// or https:// URL. Got 'ftp://x'.$"):
        HttpEngine("ftp://x")
    with pytest.raises(SpecError, match=r"^engine.decision \(the DMN decision key\) is required"):
        HttpEngine("http://127.0.0.1:1/engine-rest", protocol="dmn")
    with pytest.raises(SpecError, match=r"^engine.mapping.verdict is not a known key. Known keys: cases, decisions"):
        HttpEngine("http://127.0.0.1:1/decide", mapping={"verdict": "v"})


def test_check_engine_on_both_protocols() -> None:
    with InsynServer() as server:
        report = check_engine(HttpEngine(server.url, batch_size=64), n=150)
    report.raise_for_failures()
    with DmnServer() as server:
        report = check_engine(HttpEngine(server.url, protocol="dmn", decision="screening", concurrency=4), n=60)
    report.raise_for_failures()
    assert len(report) == 7
