"""The http adapter under load: 429 and 503 with Retry-After, backoff with jitter, a bounded total time.

Every test runs against a real local server (tests/engine_servers.py) and
reads the times at which the server saw each request, so the waits are
measured from outside the client.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.engine import HttpEngine, build_engine, run_engine
from audit.engine._http import parse_retry_after
from audit.spec import EngineSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_servers import InsynServer, assert_screened  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LABELS = ("grant", "partial", "deny", "refer")


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    from audit.synth import generate

    return generate(ROOT / "datasets" / "sweden" / "population-2026.yaml", n=60, seed=8).drop(
        columns=["sex", "birth_region"])


def _starts(server: InsynServer) -> list[float]:
    return [r["start"] for r in sorted(server.requests, key=lambda r: r["number"])]


def _statuses(server: InsynServer) -> list[int]:
    return [r["status"] for r in sorted(server.requests, key=lambda r: r["number"])]


# --------------------------------------------------------------------------
# the header


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    now = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("Mon, 02 Mar 2026 12:00:30 GMT", now=now) == 30.0  # 30 s after now
    assert parse_retry_after("Mon, 02 Mar 2026 11:59:00 GMT", now=now) == 0.0  # in the past: at once
    for bad in (None, "", "soon", "-5", "1.5e3", "Mon, 99 Foo 2026"):
        assert parse_retry_after(bad, now=now) is None, bad


# --------------------------------------------------------------------------
# 429 and 503


def test_429_with_retry_after_seconds_is_retried_after_the_time_asked(cases: pd.DataFrame) -> None:
    with InsynServer(fail_first=1, fail_status=429, retry_after="1") as server:
        engine = HttpEngine(server.url, batch_size=1000, retries=2, backoff_s=0.05, jitter_s=0.05, concurrency=1)
        run = run_engine(engine, cases, labels=LABELS)
    assert _statuses(server) == [429, 200]
    gap = float(np.diff(_starts(server))[0])
    assert 1.0 <= gap < 1.0 + 0.05 + 0.5  # Retry-After (1 s) plus at most the jitter and some latency
    assert run.n_errors == 0
    assert_screened(run.decisions, cases)


def test_503_with_retry_after_as_an_http_date(cases: pd.DataFrame) -> None:
    # an HTTP date has whole seconds: two seconds ahead is between one and two seconds away
    with InsynServer(fail_first=1, retry_after=lambda n: format_datetime(
            datetime.now(UTC) + timedelta(seconds=2), usegmt=True)) as server:
        engine = HttpEngine(server.url, batch_size=1000, retries=1, backoff_s=0.0, concurrency=1)
        run = run_engine(engine, cases, labels=LABELS)
    assert _statuses(server) == [503, 200]
    gap = float(np.diff(_starts(server))[0])
    assert 1.0 <= gap < 2.5
    assert run.n_errors == 0


def test_a_retry_after_beyond_the_time_bound_fails_at_once_with_the_reason(cases: pd.DataFrame) -> None:
    with InsynServer(fail_first=10, fail_status=429, retry_after="120") as server:
        engine = HttpEngine(server.url, batch_size=1000, retries=5, backoff_s=0.1, retry_max_s=5, concurrency=1)
        t0 = time.perf_counter()
        run = run_engine(engine, cases, labels=LABELS, error_budget=1.0)
        elapsed = time.perf_counter() - t0
    assert _statuses(server) == [429]  # no second attempt: it would start two minutes later
    assert elapsed < 2.0
    assert run.n_errors == len(cases)  # every case is accounted for, as an error with the reason
    assert set(run.decisions["error_reason"]) == {
        f"the engine reported: HTTP 429 from {server.url}: {{\"message\": \"service unavailable (test fault)\"}} "
        "(after 1 attempt; the service asked to retry after 120 s (Retry-After) would pass "
        "engine.retry_max_s = 5 s)"}


def test_an_unreadable_retry_after_falls_back_to_the_backoff(cases: pd.DataFrame) -> None:
    with InsynServer(fail_first=1, fail_status=429, retry_after="later, please") as server:
        engine = HttpEngine(server.url, batch_size=1000, retries=1, backoff_s=0.3, jitter_s=0.0, concurrency=1)
        run = run_engine(engine, cases, labels=LABELS)
    gap = float(np.diff(_starts(server))[0])
    assert 0.3 <= gap < 0.8
    assert run.n_errors == 0


# --------------------------------------------------------------------------
# backoff, jitter and the time bound


def test_the_total_time_is_bounded_and_the_bound_is_named(cases: pd.DataFrame) -> None:
    # waits 0.2, 0.4, 0.8 (sum 1.4 s); the next, 1.6 s, would end after the 1.5 s bound
    with InsynServer(fail_first=100) as server:
        engine = HttpEngine(server.url, batch_size=1000, retries=50, backoff_s=0.2, jitter_s=0.0, retry_max_s=1.5,
                            concurrency=1)
        t0 = time.perf_counter()
        run = run_engine(engine, cases, labels=LABELS, error_budget=1.0)
        elapsed = time.perf_counter() - t0
    assert _statuses(server) == [503, 503, 503, 503]
    waits = np.diff(_starts(server))
    np.testing.assert_allclose(waits, [0.2, 0.4, 0.8], atol=0.15)
    assert elapsed < 1.5 + 0.5
    reason = run.decisions["error_reason"].iloc[0]
    assert reason.endswith("(after 4 attempts; the next wait of 1.60 s would pass engine.retry_max_s = 1.5 s)")
    assert run.n_errors == len(cases)


def test_waits_are_exponential_with_jitter(cases: pd.DataFrame) -> None:
    with InsynServer(fail_first=5) as server:
        engine = HttpEngine(server.url, batch_size=1000, retries=5, backoff_s=0.05, jitter_s=0.1, concurrency=1)
        run = run_engine(engine, cases, labels=LABELS)
    waits = np.diff(_starts(server))
    base = 0.05 * 2.0 ** np.arange(5)  # 0.05, 0.1, 0.2, 0.4, 0.8
    extra = waits - base
    assert (extra >= -0.005).all() and (extra < 0.1 + 0.1).all()  # within [base, base + jitter] (+ latency)
    assert len(set(np.round(extra, 3))) > 1  # the jitter is random, not a constant
    assert run.n_errors == 0


def test_retry_max_s_from_a_spec(cases: pd.DataFrame) -> None:
    with InsynServer(fail_first=100, fail_status=429, retry_after="30") as server:
        spec = EngineSpec(kind="http", url=server.url, retries=3, retry_max_s=2)
        engine = build_engine(spec, base_dir=ROOT)
        assert engine.retry_max_s == 2.0
        run = run_engine(engine, cases, labels=LABELS, error_budget=1.0)
    assert run.n_errors == len(cases) and len(server.requests) == 1


def test_other_4xx_answers_are_not_retried(cases: pd.DataFrame) -> None:
    with InsynServer(fail_first=1, fail_status=409, retry_after="1") as server:
        engine = HttpEngine(server.url, batch_size=1000, retries=3, backoff_s=0.0, concurrency=1)
        run = run_engine(engine, cases, labels=LABELS, error_budget=1.0)
    assert _statuses(server) == [409]
    assert run.n_errors == len(cases)
    assert run.decisions["error_reason"].iloc[0].startswith(f"the engine reported: HTTP 409 from {server.url}")
