"""``audit._background``: one file written by a forked child, and every way that can go wrong.

Each case runs in a fresh interpreter (pytest itself may hold threads, and a
fork must not copy the test runner into a child that outlives a test); the
script prints what happened and the test checks it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from audit._background import in_background

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="forking is used on Linux only")

SCRIPT = """
import json, os, sys, threading, time
from pathlib import Path
from audit._background import in_background
out = Path(sys.argv[1]); case = sys.argv[2]; parent = os.getpid()

def write():
    if case == "fails" and os.getpid() != parent:
        raise OSError("disk full (in the child)")
    if case == "fails everywhere":
        raise OSError("disk full")
    if case == "hangs" and os.getpid() != parent:
        time.sleep(60)
    out.write_text(json.dumps({"pid": os.getpid()}))

if case == "thread":
    stop = threading.Event(); t = threading.Thread(target=stop.wait); t.start()
started = time.monotonic()
pending = in_background(write, timeout_s=1.0)
try:
    pending.wait()
    error = None
except OSError as exc:
    error = str(exc)
if case == "thread":
    stop.set(); t.join()
print(json.dumps({"parent": parent, "forked": pending.forked, "failure": pending.failure, "error": error,
                  "written_by": json.loads(out.read_text())["pid"] if out.exists() else None,
                  "seconds": time.monotonic() - started}))
"""


def _run(tmp_path: Path, case: str, **env: str) -> dict:
    out = tmp_path / f"{case.replace(' ', '-')}.json"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out), case], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_file_is_written_by_a_child_process(tmp_path: Path) -> None:
    got = _run(tmp_path, "ok")
    assert got["forked"] is True and got["failure"] is None and got["error"] is None
    assert got["written_by"] not in (None, got["parent"])


def test_a_failing_child_is_redone_in_the_parent(tmp_path: Path) -> None:
    got = _run(tmp_path, "fails")
    assert got["forked"] is True and got["error"] is None
    assert got["failure"] == "OSError: disk full (in the child)"
    assert got["written_by"] == got["parent"]


def test_a_write_that_fails_in_the_parent_too_raises_the_real_error(tmp_path: Path) -> None:
    got = _run(tmp_path, "fails everywhere")
    assert got["failure"] == "OSError: disk full" and got["error"] == "disk full" and got["written_by"] is None


def test_a_hung_child_is_killed_after_the_timeout_and_the_parent_writes(tmp_path: Path) -> None:
    got = _run(tmp_path, "hangs")
    assert got["failure"] == "no answer within the timeout; killed"
    assert got["written_by"] == got["parent"] and 0.9 < got["seconds"] < 10


def test_no_fork_with_a_second_thread_or_when_turned_off(tmp_path: Path) -> None:
    for got in (_run(tmp_path, "thread"), _run(tmp_path, "ok", INSYN_BACKGROUND="0")):
        assert got["forked"] is False and got["written_by"] == got["parent"]


def test_in_this_process_with_threads_the_write_runs_in_place(tmp_path: Path) -> None:
    """pytest's own process (with a thread started here) never forks."""
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        seen: list[int] = []
        pending = in_background(lambda: seen.append(os.getpid()))
        assert pending.forked is False and seen == [os.getpid()]
        pending.wait()
        pending.abandon()
    finally:
        stop.set()
        t.join()


@pytest.mark.slow
def test_a_run_folder_written_with_and_without_the_child_is_the_same(tmp_path: Path, small_rules_spec) -> None:
    """lineage.jsonl from the child equals the one the run's own process writes (times and ids aside)."""
    spec = small_rules_spec("bg", n=400, seed=3, sensitive=("sex", "birth_region"), formats=("json", "md"))
    folders = {}
    for flag in ("1", "0"):
        out = tmp_path / f"out{flag}"
        proc = subprocess.run([sys.executable, "-m", "audit.cli", "run", str(spec), "--out", str(out), "--quiet"],
                              capture_output=True, text=True, env={**os.environ, "INSYN_BACKGROUND": flag}, cwd=ROOT)
        assert proc.returncode in (0, 1), proc.stderr
        (folders[flag],) = (out / "bg").iterdir()
        assert subprocess.run([sys.executable, "-m", "audit.cli", "verify", str(folders[flag])],
                              capture_output=True, text=True, cwd=ROOT).returncode == 0

    def without_ids(value: object) -> object:  # run ids and event times are new in every run
        if isinstance(value, dict):
            return {k: without_ids(v) for k, v in value.items() if k not in ("runId", "eventTime")}
        return [without_ids(v) for v in value] if isinstance(value, list) else value

    def events(folder: Path) -> list:
        text = (folder / "lineage.jsonl").read_text().replace(folder.name, "RUN")
        return [without_ids(json.loads(line)) for line in text.splitlines()]

    forked, in_place = events(folders["1"]), events(folders["0"])
    assert len(forked) == len(in_place) > 2
    assert forked == in_place

    def report(folder: Path) -> str:  # rendered by a second child: the same text, run ids and timings aside
        text = (folder / "report.md").read_text(encoding="utf-8").replace(folder.name, "RUN")
        return re.sub(r"[0-9.]+ s\b|[0-9,]+ applications per second|\d{4}-\d\d-\d\dT[0-9:+.Z]+", "X", text)

    assert report(folders["1"]) == report(folders["0"])
    assert "| Efficiency |" in report(folders["1"])


def test_on_every_core_keeps_each_result_in_its_items_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """Results come back in the items' order though later items finish first; threads only with 2 cores or more."""
    import time

    from audit._background import on_every_core

    def slow_first(k: int) -> tuple[int, str]:
        time.sleep(0.02 * (5 - k))  # the first item finishes last
        return k * k, threading.current_thread().name

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    got = on_every_core(slow_first, iter(range(5)))
    assert [v for v, _ in got] == [0, 1, 4, 9, 16]
    assert all(name != threading.main_thread().name for _, name in got)  # run on the pool's threads
    assert on_every_core(slow_first, []) == []
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert on_every_core(slow_first, [2, 3]) == [(4, threading.main_thread().name), (9, threading.main_thread().name)]
