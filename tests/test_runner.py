"""The runner: the full demo, the run folder contract, accounting, determinism, atomicity."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml

from audit import Audit, AuditResult, load_spec
from audit.result import strip_run_metadata
from audit.record import ARTIFACTS

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "audit" / "schemas" / "results.schema.json"


def _small(tmp_path: Path, **changes: object) -> Audit:
    data = yaml.safe_load((ROOT / "examples" / "demo.yaml").read_text(encoding="utf-8"))
    data["population"]["n"] = 1500
    data["statistics"]["bootstrap"] = 300
    data.update(changes)
    return Audit.from_dict(data, base_dir=ROOT / "examples", source="demo-small.yaml")


def test_demo_writes_every_artifact(demo_run: AuditResult) -> None:
    run_dir = demo_run.run_dir
    assert run_dir is not None and run_dir.parent.name == "demo"
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(ARTIFACTS)
    # nothing temporary is left beside the run folder
    assert [p.name for p in run_dir.parent.iterdir()] == [run_dir.name]


def test_demo_results_json_follows_the_schema(demo_run: AuditResult) -> None:
    from jsonschema import Draft202012Validator, FormatChecker

    data = json.loads((demo_run.run_dir / "results.json").read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    assert set(data) >= {"insyn_version", "schema_version", "run_id", "generated_at", "spec", "population",
                         "engine", "checks", "journey", "metrics", "findings"}
    # a schema that cannot fail is no test: a broken row is refused
    broken = json.loads(json.dumps(data))
    broken["metrics"][0]["suppressed"] = "no"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


def test_demo_accounts_for_every_case(demo_run: AuditResult) -> None:
    dec = pd.read_parquet(demo_run.run_dir / "decisions.parquet")
    assert len(dec) == 20_000 and dec["case_id"].is_unique
    counts = demo_run.population["status_counts"]
    assert sum(counts.values()) == 20_000
    assert dec["status"].value_counts().to_dict() == {k: v for k, v in counts.items() if v}
    for col in ("case_id", "sex", "birth_region", "age_band", "outcome", "amount", "reasons", "truth_outcome",
                "truth_amount", "status"):
        assert col in dec.columns, col
    for step in demo_run.journey["steps"]:
        assert step["rows_in"] == step["rows_out"] + step["rows_rejected"] + step["rows_errored"], step["name"]
    # the sensitive features were withheld from the engine
    assert set(demo_run.engine["withheld"]) == {"sex", "birth_region", "age_band"}
    assert not set(demo_run.engine["features"]) & {"sex", "birth_region", "age_band", "truth_outcome"}


def test_manifest_hashes_every_artifact(demo_run: AuditResult) -> None:
    manifest = json.loads((demo_run.run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == 42 and manifest["spec"]["name"] == "demo"
    assert set(manifest["artifacts"]) == set(ARTIFACTS) - {"manifest.json"}
    for name, digest in manifest["artifacts"].items():
        assert hashlib.sha256((demo_run.run_dir / name).read_bytes()).hexdigest() == digest, name
    assert any(k.endswith("population-2026.yaml") for k in manifest["inputs"])
    assert any(k.endswith("municipal-rpa.yaml") for k in manifest["inputs"])


def test_same_seed_same_results(tmp_path: Path) -> None:
    a = _small(tmp_path).run(out=tmp_path / "a")
    b = _small(tmp_path).run(out=tmp_path / "b")
    ja = json.loads((a.run_dir / "results.json").read_text())
    jb = json.loads((b.run_dir / "results.json").read_text())
    assert a.run_id != b.run_id or a.run_dir != b.run_dir
    assert strip_run_metadata(ja) == strip_run_metadata(jb)
    pd.testing.assert_frame_equal(pd.read_parquet(a.run_dir / "decisions.parquet"),
                                  pd.read_parquet(b.run_dir / "decisions.parquet"))
    c = _small(tmp_path, seed=43).run(write=False)
    assert strip_run_metadata(c.to_dict())["metrics"] != strip_run_metadata(ja)["metrics"]


def test_failed_run_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import audit.report

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(audit.report, "render_reports", broken)  # what a run folder renders its reports with
    with pytest.raises(RuntimeError, match="renderer broke"):
        _small(tmp_path).run(out=tmp_path / "out")
    assert list((tmp_path / "out" / "demo").iterdir()) == []


def test_result_round_trips_through_the_run_folder(demo_run: AuditResult) -> None:
    again = AuditResult.load(demo_run.run_dir)
    assert again.to_dict() == demo_run.to_dict()
    assert again.exit_code == demo_run.exit_code
    assert len(again.decisions) == 20_000


def test_write_false_returns_result_without_folder(tmp_path: Path) -> None:
    res = _small(tmp_path).run(write=False, out=tmp_path / "never")
    assert res.run_dir is None and not (tmp_path / "never").exists()
    assert len(res.metrics) > 0


def test_load_spec_demo_is_the_demo() -> None:
    audit = load_spec(ROOT / "examples" / "demo.yaml")
    assert audit.population.n == 20_000 and audit.engine.kind == "rules"


def _broken_population(tmp_path: Path) -> tuple[Path, list[str]]:
    from audit.synth import generate

    frame = generate(ROOT / "datasets/sweden/population-2026.yaml", n=300, seed=5)
    broken = frame["case_id"].iloc[[3, 50, 299]].tolist()
    frame.loc[frame["case_id"].isin(broken), "rent"] = -5.0
    path = tmp_path / "cases.parquet"
    frame.to_parquet(path)
    return path, broken


def _checked_audit(tmp_path: Path, policy: str) -> Audit:
    path, _ = _broken_population(tmp_path)
    return Audit.from_dict(
        {
            "name": "quarantine",
            "population": {"file": str(path)},
            "sensitive_features": ["sex"],
            "engine": {"kind": "reference"},
            "checks": {"intake": {"suites": [str(ROOT / "checks/application.yaml")], "policy": policy}},
            "statistics": {"bootstrap": 100},
        },
        base_dir=tmp_path,
    )


def test_quarantine_keeps_offending_cases_out_and_accounts_for_them(tmp_path: Path) -> None:
    _, broken = _broken_population(tmp_path)
    res = _checked_audit(tmp_path, "quarantine").run(out=tmp_path / "out")
    dec = pd.read_parquet(res.run_dir / "decisions.parquet")
    assert len(dec) == 300
    q = dec[dec["status"] == "quarantined"]
    assert sorted(q["case_id"]) == sorted(broken)
    assert q["outcome"].isna().all()
    assert q["status_reason"].str.startswith("quarantined at intake: ").all()
    assert q["status_reason"].str.contains("rent").all()
    intake = next(s for s in res.journey["steps"] if s["name"] == "intake")
    assert (intake["rows_in"], intake["rows_out"], intake["rows_rejected"]) == (300, 297, 3)
    # the quarantined cases are not in any rate's denominator
    n_all = next(r for r in res.metrics if r["metric"] == "grant_rate" and r["group"] == "all")["n"]
    assert n_all == 297


def test_fail_policy_stops_with_a_clear_report(tmp_path: Path) -> None:
    from audit import CheckFailedError

    with pytest.raises(CheckFailedError) as info:
        _checked_audit(tmp_path, "fail").run(out=tmp_path / "out")
    assert str(info.value).startswith("checks.intake failed with policy fail:")
    assert "rent" in str(info.value)
    assert not (tmp_path / "out" / "quarantine").exists() or not list((tmp_path / "out" / "quarantine").iterdir())


def test_warn_policy_decides_every_case(tmp_path: Path) -> None:
    res = _checked_audit(tmp_path, "warn").run(write=False)
    # nothing is held back; the reference engine itself refuses the three negative rents as error rows
    assert res.population["status_counts"] == {"ok": 297, "error": 3, "quarantined": 0}
    errs = res.decisions.query("status == 'error'")
    assert errs["status_reason"].str.contains("rent: -5.0 is negative").all()
    intake = next(c for c in res.checks if c["step"] == "intake")
    assert intake["success"] is False and intake["policy"] == "warn"


def test_engine_sees_only_its_features(tmp_path: Path) -> None:
    """A python engine records the columns it was given: sensitive ones are withheld."""
    seen: list[list[str]] = []
    import sys
    import types

    mod = types.ModuleType("insyn_test_seen_engine")

    def decide(cases: pd.DataFrame) -> pd.DataFrame:
        seen.append(list(cases.columns))
        return pd.DataFrame({"case_id": cases["case_id"], "outcome": "grant", "amount": 100.0, "reasons": ""})

    mod.decide = decide
    sys.modules[mod.__name__] = mod
    try:
        data = yaml.safe_load((ROOT / "examples" / "demo.yaml").read_text(encoding="utf-8"))
        data["population"]["n"] = 200
        data["engine"] = {"kind": "python", "target": "insyn_test_seen_engine:decide"}
        data["checks"] = {}
        Audit.from_dict(data, base_dir=ROOT / "examples").run(write=False)
    finally:
        del sys.modules[mod.__name__]
    cols = set().union(*map(set, seen))
    assert "rent" in cols and "case_id" in cols
    assert not cols & {"sex", "birth_region", "age_band", "truth_outcome", "truth_amount"}


def test_lineage_events_reach_the_spec_endpoint_and_a_dead_one_never_fails(tmp_path: Path) -> None:
    import sys
    import time

    sys.path.insert(0, str(Path(__file__).parent))
    from lineage_receiver import LineageReceiver, closed_port

    with LineageReceiver() as receiver:
        res = _small(tmp_path, lineage={"url": receiver.url}).run(out=tmp_path / "a")
    written = [json.loads(line) for line in (res.run_dir / "lineage.jsonl").read_text().splitlines()]
    assert receiver.events == written
    assert {e["eventType"] for e in written} == {"START", "COMPLETE"}
    assert all(r.path == "/api/v1/lineage" for r in receiver.requests)

    t0 = time.perf_counter()
    with pytest.warns(Warning, match="lineage"):
        res = _small(tmp_path, lineage={"url": f"http://127.0.0.1:{closed_port()}", "timeout_s": 1}).run(
            out=tmp_path / "b")
    assert res.run_dir is not None and (res.run_dir / "lineage.jsonl").is_file()
    assert time.perf_counter() - t0 < 60


def test_progress_and_timings_follow_the_step_table(tmp_path: Path) -> None:
    """One start and one end per timed step, in table order; final is journaled but neither timed nor reported."""
    from audit.runner import ROW_STEPS, steps_for

    events: list[tuple[str, str]] = []
    audit = _small(tmp_path)
    res = audit.run(out=tmp_path / "o", progress=lambda step, state: events.append((step, state)))
    assert steps_for(audit) is ROW_STEPS
    journaled = [s["name"] for s in res.journey["steps"]]
    assert journaled == ["source", "intake", "reference", "engine_input", "decision", "review", "final", "measurement"]
    timed = [name for name in journaled if name != "final"]
    assert list(res.journey["timings"]) == timed
    assert all(v >= 0 for v in res.journey["timings"].values())
    assert events == [(name, state) for name in [*timed, "record"] for state in ("start", "end")]


def test_step_tables_are_chosen_by_the_spec() -> None:
    from audit.runner import AGGREGATED_STEPS, RECORDED_STEPS, ROW_STEPS, steps_for

    examples = ROOT / "examples"
    assert steps_for(load_spec(examples / "aggregated.yaml")) is AGGREGATED_STEPS
    assert [s.name for s in AGGREGATED_STEPS] == ["source", "measurement"]
    assert steps_for(load_spec(examples / "decision-log.yaml")) is RECORDED_STEPS
    assert steps_for(load_spec(examples / "demo.yaml")) is ROW_STEPS


def test_case_status_keeps_the_first_problem() -> None:
    from audit.runner import CaseStatus

    status = CaseStatus(pd.Series(["a", "b", "c", "d"]))
    status.mark("quarantined", pd.Series(["at intake"], index=["b"]))
    status.mark("error", pd.Series(["engine crashed", "engine crashed"], index=["b", "c"]))
    status.mark("quarantined", pd.Series(["at decisions", "unknown case"], index=["c", "zz"]))
    assert status.status.tolist() == ["ok", "quarantined", "error", "ok"]
    assert status.reason.tolist() == ["", "at intake", "engine crashed", ""]


def test_every_source_of_a_case_status_ends_in_the_final_frame(tmp_path: Path) -> None:
    """Intake and engine-input quarantine, engine errors and decision-suite quarantine: one status per case."""
    import sys
    import types

    from audit.synth import generate

    frame = generate(ROOT / "datasets/sweden/population-2026.yaml", n=400, seed=5)
    ids = frame["case_id"].tolist()
    frame.loc[[3, 50], "rent"] = -5.0
    frame.to_parquet(tmp_path / "cases.parquet")
    (tmp_path / "input.yaml").write_text(
        "name: input\nexpectations:\n  - type: expect_column_values_to_be_between\n"
        "    kwargs: {column: rent, max_value: 12000}\n", encoding="utf-8")
    live = [i for i in range(400) if i not in (3, 50)]
    too_high = {ids[i] for i in live if frame.loc[i, "rent"] > 12000}
    decided = [ids[i] for i in live if ids[i] not in too_high]
    errors, no_amount = set(decided[0:40:8]), set(decided[4:60:7]) | {decided[0]}  # decided[0] is both

    mod = types.ModuleType("insyn_test_status_engine")

    def decide(cases: pd.DataFrame) -> pd.DataFrame:
        cid = cases["case_id"]
        return pd.DataFrame({"case_id": cid, "outcome": "grant", "amount": cid.map(lambda c: float("nan") if c in
                             no_amount else 100.0), "reasons": "",
                             "error": cid.map(lambda c: "registry down" if c in errors else "")})

    mod.decide = decide
    sys.modules[mod.__name__] = mod
    try:
        res = Audit.from_dict({
            "name": "status", "population": {"file": "cases.parquet"}, "sensitive_features": ["sex"],
            "engine": {"kind": "python", "target": "insyn_test_status_engine:decide", "error_budget": 0.1},
            "checks": {"intake": {"suites": [str(ROOT / "checks/application.yaml")], "policy": "quarantine"},
                       "engine_input": {"suites": ["input.yaml"], "policy": "quarantine"},
                       "decisions": {"suites": [str(ROOT / "checks/decisions.yaml")], "policy": "quarantine"}},
            "statistics": {"bootstrap": 50},
        }, base_dir=tmp_path).run(write=False)
    finally:
        del sys.modules[mod.__name__]
    dec = res.decisions.set_index("case_id")
    expected = {cid: "ok" for cid in ids}
    expected.update({ids[3]: "quarantined", ids[50]: "quarantined"})
    expected.update({cid: "quarantined" for cid in too_high})
    expected.update({cid: "error" for cid in errors})
    expected.update({cid: "quarantined" for cid in no_amount - errors})
    assert dec["status"].to_dict() == expected
    prefix = dec["status_reason"].str.extract(r"^quarantined at (\w+): ")[0]
    assert prefix[[ids[3], ids[50]]].tolist() == ["intake", "intake"]
    assert set(prefix[list(too_high)]) == {"engine_input"}
    assert set(prefix[list(no_amount - errors)]) == {"decisions"}
    assert (dec.loc[list(errors), "status_reason"] == "the engine reported: registry down").all()
    assert (dec.loc[dec["status"] == "ok", "status_reason"] == "").all()
    final = next(s for s in res.journey["steps"] if s["name"] == "final")
    n_q = sum(v == "quarantined" for v in expected.values())
    assert (final["rows_in"], final["rows_out"], final["rows_rejected"], final["rows_errored"]) == (
        400, 400 - n_q - len(errors), n_q, len(errors))
    assert res.population["status_counts"] == {"ok": 400 - n_q - len(errors), "error": len(errors),
                                               "quarantined": n_q}


def test_a_damaged_run_folder_is_refused_by_file_and_key(tmp_path: Path) -> None:
    """A results.json or decisions.parquet that insyn run did not write is a DataError naming it, never a crash."""
    import json
    import shutil

    from audit.exceptions import DataError

    good = _small(tmp_path, report={"formats": ["json"]}).run(out=tmp_path / "out").run_dir
    assert AuditResult.load(good).decisions is not None
    cases = [
        ("results.json", "{not json", r"results\.json: is not valid JSON"),
        ("results.json", json.dumps([1]), r"results\.json: expected a JSON object\. Got list"),
        ("results.json", {"metrics": "oops"}, r"results\.json: 'metrics' must be a list of objects\. Got str 'oops'"),
        ("results.json", {"findings": [1]}, r"'findings' must be a list of objects\. Got a list holding int 1"),
        ("results.json", {"engine": "x"}, r"'engine' must be an object\. Got str 'x'"),
        ("decisions.parquet", "PAR1xxxxPAR1", r"decisions\.parquet: cannot be read as Parquet"),
    ]
    for i, (name, damage, message) in enumerate(cases):
        folder = tmp_path / f"bad{i}"
        shutil.copytree(good, folder)
        if isinstance(damage, dict):
            data = json.loads((folder / name).read_text(encoding="utf-8"))
            data.update(damage)
            damage = json.dumps(data)
        (folder / name).write_text(damage, encoding="utf-8")
        with pytest.raises(DataError, match=message):
            AuditResult.load(folder)


def test_quarantined_keeps_the_other_rows_and_shares_columns_when_none_is_named() -> None:
    from audit._steps import quarantined

    frame = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "x": [1.0, 2.0, 3.0, 4.0]},
                         index=[10, 11, 12, 13])
    kept, fields = quarantined(frame, pd.Series([], dtype="str"))
    assert fields == {} and list(kept.index) == [0, 1, 2, 3] and kept["x"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert np.shares_memory(kept["x"].to_numpy(), frame["x"].to_numpy())  # no copy of the frame
    reasons = pd.Series(["quarantined at intake: x > 2", "quarantined at intake: x > 3"], index=["c", "d"], dtype="str")
    kept, fields = quarantined(frame, reasons.iloc[::-1])  # reasons in another order than the rows
    assert kept["case_id"].tolist() == ["a", "b"] and list(kept.index) == [0, 1]
    assert fields["rejected"].to_dict() == {"c": "quarantined at intake: x > 2", "d": "quarantined at intake: x > 3"}
    assert fields["reason"].equals(fields["rejected"]) and set(fields["status"]) == {"quarantined"}
    kept, fields = quarantined(frame, pd.Series(["r"], index=["zz"], dtype="str"))  # an id the frame lacks
    assert kept["case_id"].tolist() == ["a", "b", "c", "d"] and fields == {}
    assert np.shares_memory(kept["x"].to_numpy(), frame["x"].to_numpy())  # nobody quarantined: no copy either
