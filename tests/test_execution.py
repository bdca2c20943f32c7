"""The executor contract: the same results from in-process, local processes and a Dask LocalCluster."""

from __future__ import annotations

import math
import os

import pytest

from audit.exceptions import SpecError
from audit.execution import EXECUTOR_KINDS, Executor, TaskFailure, open_executor


def collatz_steps(n: int) -> int:
    """A small pure function: the number of Collatz steps from n to 1."""
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def fail_on_seven(n: int) -> int:
    """Raises for 7 (with a personnummer in the message, which must be masked); squares the rest."""
    if n == 7:
        raise ValueError("bad case 19121212-1212")
    return n * n


TASKS = {f"t{i}": i for i in range(1, 41)}
EXPECTED = {"t1": 0, "t2": 1, "t3": 7, "t6": 8, "t7": 16, "t27": 111}


@pytest.fixture(scope="module")
def dask_executor():
    pytest.importorskip("dask.distributed")
    with open_executor("dask", workers=2) as executor:
        yield executor


def run_all(executor: Executor, fn, tasks) -> dict:
    out = {}
    for key, value in executor.imap(fn, tasks):
        assert key not in out, f"task {key} answered twice"
        out[key] = value
    return out


def check_collatz(results: dict) -> None:
    assert set(results) == set(TASKS)
    for key, value in EXPECTED.items():  # known Collatz step counts
        assert results[key] == value
    assert all(results[k] == collatz_steps(v) for k, v in TASKS.items())


@pytest.mark.parametrize("kind", ["inprocess", "processes"])
def test_local_executors_give_the_same_results(kind: str) -> None:
    with open_executor(kind, workers=2) as executor:
        assert executor.kind == kind and isinstance(executor, Executor)
        check_collatz(run_all(executor, collatz_steps, TASKS))


def test_dask_localcluster_gives_the_same_results(dask_executor) -> None:
    assert dask_executor.kind == "dask" and dask_executor.workers == 2
    link = dask_executor._client.dashboard_link
    assert "127.0.0.1" in link and ":8787" not in link
    check_collatz(run_all(dask_executor, collatz_steps, TASKS))


@pytest.mark.parametrize("kind", ["inprocess", "processes", "dask"])
def test_a_failing_task_is_a_task_failure_with_the_personnummer_masked(kind: str, request) -> None:
    tasks = {i: i for i in range(1, 11)}
    if kind == "dask":
        results = run_all(request.getfixturevalue("dask_executor"), fail_on_seven, tasks)
    else:
        with open_executor(kind, workers=2) as executor:
            results = run_all(executor, fail_on_seven, tasks)
    failure = results.pop(7)
    assert isinstance(failure, TaskFailure) and failure.key == 7
    assert failure.error == "ValueError: bad case [personnummer removed]"
    assert "1212" not in failure.traceback and "fail_on_seven" in failure.traceback
    assert results == {i: i * i for i in tasks if i != 7}


def test_in_flight_tasks_are_bounded() -> None:
    executor = open_executor("processes", workers=1)
    assert executor.max_pending == 2 and executor.workers == 1
    with executor:
        results = run_all(executor, math.factorial, {i: i for i in range(30)})
    assert results == {i: math.factorial(i) for i in range(30)}


def test_processes_default_to_every_core() -> None:
    assert open_executor("processes").workers == (os.cpu_count() or 1)
    assert open_executor("inprocess", workers=4).workers == 1


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"kind": "threads"}, "must be one of inprocess, processes, dask. Got 'threads'"),
        ({"kind": "processes", "workers": 0}, "integer >= 1. Got 0"),
        ({"kind": "dask", "scheduler": "not an address"}, "'tcp://host:port'"),
    ],
)
def test_bad_options_name_what_was_expected(kwargs: dict, expected: str) -> None:
    with pytest.raises(SpecError, match=expected.replace(".", r"\.").replace("(", r"\(")):
        open_executor(**kwargs)


def test_an_unreachable_scheduler_is_a_spec_error() -> None:
    pytest.importorskip("dask.distributed")
    with pytest.raises(SpecError, match="No dask scheduler answered at 'tcp://127.0.0.1:9'"):
        with open_executor("dask", scheduler="tcp://127.0.0.1:9"):
            pass


def test_kinds() -> None:
    assert EXECUTOR_KINDS == ("inprocess", "processes", "dask")


_START = """
import json, os, sys, threading
sys.path.insert(0, {tests!r})
from test_execution import TASKS, collatz_steps
from audit.execution import open_executor
if {thread}:
    stop = threading.Event()
    threading.Thread(target=stop.wait, daemon=True).start()
with open_executor("processes", workers=2) as ex:
    out = dict(ex.imap(collatz_steps, TASKS))
    method = ex.start_method
print(json.dumps({{"method": method, "ok": out == {{k: collatz_steps(v) for k, v in TASKS.items()}}}}))
"""


@pytest.mark.parametrize(("env", "thread", "method"), [
    ({}, False, "fork"),  # Linux, one thread: the workers start as copies, with Insyn imported
    ({"INSYN_BACKGROUND": "0"}, False, "spawn"),  # forking turned off
    ({}, True, "spawn"),  # a second thread: forking is not safe
])
def test_local_workers_are_forked_only_where_that_is_safe(env: dict, thread: bool, method: str) -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    if sys.platform != "linux":
        pytest.skip("forked workers are used on Linux only")
    here = Path(__file__).resolve().parent
    code = _START.format(tests=str(here), thread=thread)
    base = {k: v for k, v in os.environ.items() if k != "INSYN_BACKGROUND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**base, "PYTHONPATH": str(here.parent), **env})
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"method": method, "ok": True}
