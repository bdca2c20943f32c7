"""OpenLineage through openlineage-python's client: HTTP (Marquez's API), file and console transports,
configured by the spec, by OPENLINEAGE_URL or by an openlineage.yml.

The HTTP endpoint is the real local receiver of tests/lineage_receiver.py on
127.0.0.1, which answers ``POST /api/v1/lineage`` as Marquez does (201).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lineage_receiver import LineageReceiver  # noqa: E402
from test_journey import RUN_EVENT, _pipeline, _validator  # noqa: E402

from audit.journey import LineageWarning  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No OpenLineage configuration from this machine: an empty HOME and folder, no OPENLINEAGE* variables.

    openlineage-python writes OPENLINEAGE__TRANSPORT__* variables of its own
    when it sees OPENLINEAGE_URL, so the whole environment is restored after
    each test.
    """
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("OPENLINEAGE"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _no_warnings() -> warnings.catch_warnings:
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("error", LineageWarning)
    return ctx


def test_events_carry_the_client_tag_and_no_source_code_location_facet() -> None:
    # the worktree is a git repository: a sourceCodeLocation facet would carry its remote URL
    j, _ = _pipeline()
    events = j.lineage_events()
    assert len(events) == 12
    for e in events:
        assert "sourceCodeLocation" not in (e["job"].get("facets") or {})
        tags = {t["key"]: t for t in e["run"]["facets"]["tags"]["tags"]}
        assert tags["openlineage_client_version"]["source"] == "OPENLINEAGE_CLIENT"
    text = json.dumps(events)
    assert "non-serializable" not in text  # numpy scalars were cast
    intake_end = [e for e in events if e["job"]["name"] == "demo.intake"][-1]
    (assertion, _) = intake_end["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert assertion["success"] is False and assertion["actual"] == "1"


def test_events_validate_against_the_openlineage_schema(openlineage_spec: Path) -> None:
    j, _ = _pipeline()
    validator = _validator(openlineage_spec, RUN_EVENT)
    for event in j.lineage_events():
        assert [e.message for e in validator.iter_errors(event)] == []


def test_http_transport_from_the_spec_posts_to_marquez_api(tmp_path: Path) -> None:
    """A whole audit run: the receiver gets, in order, exactly the events of lineage.jsonl."""
    from audit import Audit

    with LineageReceiver() as receiver:
        audit = Audit.from_dict(
            {
                "name": "lineage-http",
                "seed": 1,
                "population": {"synthetic": str(ROOT / "datasets/sweden/population-2026.yaml"), "n": 300},
                "sensitive_features": ["sex"],
                "engine": {"kind": "reference"},
                "truth": {"reference": True},
                "statistics": {"bootstrap": 0},
                "lineage": {"url": receiver.url, "namespace": "kommun", "api_key": "k3y"},
            }
        )
        ctx = _no_warnings()
        try:
            result = audit.run(out=tmp_path / "reports")
        finally:
            ctx.__exit__(None, None, None)
    written = [json.loads(line) for line in (result.run_dir / "lineage.jsonl").read_text().splitlines()]
    assert receiver.events == written and len(written) >= 10
    assert {r.path for r in receiver.requests} == {"/api/v1/lineage"}
    assert {r.headers["authorization"] for r in receiver.requests} == {"Bearer k3y"}
    assert {e["job"]["namespace"] for e in written} == {"kommun"}
    assert [e["eventType"] for e in written][0] == "START" and written[-1]["eventType"] == "COMPLETE"


def test_openlineage_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    j, _ = _pipeline()
    with LineageReceiver() as receiver:
        monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
        monkeypatch.setenv("OPENLINEAGE_API_KEY", "envkey")
        ctx = _no_warnings()
        try:
            sent = j.emit()
        finally:
            ctx.__exit__(None, None, None)
    assert sent == 12
    assert receiver.events == j.lineage_events()
    assert {r.path for r in receiver.requests} == {"/api/v1/lineage"}
    assert {r.headers["authorization"] for r in receiver.requests} == {"Bearer envkey"}


def test_the_spec_comes_before_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    j, _ = _pipeline()
    with LineageReceiver() as from_env, LineageReceiver() as from_spec:
        monkeypatch.setenv("OPENLINEAGE_URL", from_env.url)
        assert j.emit(from_spec.url) == 12
    assert from_env.events == [] and len(from_spec.events) == 12


def test_an_openlineage_yml_in_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    j, _ = _pipeline()
    with LineageReceiver() as receiver, LineageReceiver() as from_env:
        Path("openlineage.yml").write_text(
            yaml.safe_dump({"transport": {"type": "http", "url": receiver.url, "endpoint": "api/v1/lineage"},
                            "tags": {"run": {"kommun": "Trelleborg"}}}),
            encoding="utf-8",
        )
        monkeypatch.setenv("OPENLINEAGE_URL", from_env.url)  # openlineage.yml comes first, as in the client
        assert j.emit() == 12
    assert from_env.events == []
    assert receiver.events == j.lineage_events()  # lineage.jsonl and the endpoint see the same events
    tags = {t["key"]: t for t in receiver.events[1]["run"]["facets"]["tags"]["tags"]}
    assert tags["kommun"] == {"key": "kommun", "value": "Trelleborg", "source": "USER"}


def test_an_openlineage_yml_with_a_file_transport() -> None:
    j, _ = _pipeline()
    Path("openlineage.yml").write_text(
        yaml.safe_dump({"transport": {"type": "file", "log_file_path": "ol.jsonl", "append": True}}), encoding="utf-8")
    assert j.emit() == 12
    lines = [json.loads(line) for line in Path("ol.jsonl").read_text(encoding="utf-8").splitlines()]
    assert lines == j.lineage_events()


def test_file_transport_from_the_spec_appends_json_lines(tmp_path: Path) -> None:
    j, _ = _pipeline()
    path = tmp_path / "events.jsonl"
    assert j.emit(transport="file", path=path) == 12
    assert j.emit(transport="file", path=path) == 12
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines == j.lineage_events() * 2


def test_console_transport_writes_each_event_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    j, _ = _pipeline()
    assert j.emit(transport="console") == 12
    out, err = capfd.readouterr()
    assert out == ""
    assert [json.loads(line) for line in err.splitlines()] == j.lineage_events()


def test_nothing_configured_sends_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    j, _ = _pipeline()
    ctx = _no_warnings()
    try:
        assert j.emit() == 0
    finally:
        ctx.__exit__(None, None, None)
    assert capfd.readouterr() == ("", "")  # the client's fallback would print to the console: not used


def test_openlineage_disabled_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    j, _ = _pipeline()
    with LineageReceiver() as receiver:
        monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
        assert j.emit(receiver.url) == 0
    assert receiver.events == []


def test_a_500_is_refused_at_once_and_a_503_after_two_retries() -> None:
    import time

    j, _ = _pipeline()
    with LineageReceiver(status=500) as receiver, pytest.warns(LineageWarning, match="refused 12 of 12"):
        t0 = time.perf_counter()
        assert j.emit(receiver.url) == 0
        assert time.perf_counter() - t0 < 2.0
    assert len(receiver.requests) == 12  # one request per event: a 500 is final
    with LineageReceiver(status=503) as receiver, pytest.warns(LineageWarning, match="with HTTP 503"):
        assert j.emit(receiver.url) == 0
    assert len(receiver.requests) == 36  # each event tried three times (two retries)


def test_a_broken_file_transport_is_a_warning(tmp_path: Path) -> None:
    j, _ = _pipeline()
    with pytest.warns(LineageWarning, match=r"could not be sent .* 12 of 12 event\(s\) not sent"):
        assert j.emit(transport="file", path=tmp_path / "no-such-folder" / "events.jsonl") == 0


def test_an_unreadable_openlineage_yml_never_fails_the_events() -> None:
    j, _ = _pipeline()
    Path("openlineage.yml").write_text("facets: {colour: red}\n", encoding="utf-8")  # no such facet setting
    with pytest.warns(LineageWarning, match="cannot read its configuration"):
        events = j.lineage_events()
    assert len(events) == 12 and all(e["eventType"] in ("START", "COMPLETE", "FAIL") for e in events)


def test_openlineage_python_loads_only_when_a_run_builds_its_events(tmp_path: Path, small_rules_spec) -> None:
    """Importing Insyn, and a run that writes no folder, do not load the client (0.3 s); a written run does."""
    import subprocess

    spec = small_rules_spec("lazy", n=300)
    code = ("import sys, audit, audit.cli, audit.runner, audit.record, audit.journey; "
            "loaded = lambda: any(m.split('.')[0] == 'openlineage' for m in sys.modules); before = loaded(); "
            f"a = audit.load_spec({str(spec)!r}); a.run(write=False); unwritten = loaded(); "
            f"r = a.run(out={str(tmp_path / 'out')!r}); "
            "print(before, unwritten, loaded(), len((r.run_dir / 'lineage.jsonl').read_text().splitlines()))")
    env = {k: v for k, v in os.environ.items() if k != "INSYN_BACKGROUND"}
    in_place = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**env, "INSYN_BACKGROUND": "0"}).stdout.split()
    assert in_place[:3] == ["False", "False", "True"] and int(in_place[3]) > 2
    # By default (Linux, one thread) a forked child builds and writes the events: the run's process never loads it.
    forked = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    if sys.platform == "linux":
        assert forked.split() == ["False", "False", "False", in_place[3]]
