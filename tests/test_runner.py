"""The runner: the full demo, the run folder contract, accounting, determinism, atomicity."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml

from audit import Audit, AuditResult, load_spec
from audit.result import strip_run_metadata
from audit.runner import ARTIFACTS

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

    monkeypatch.setattr(audit.report, "render_html", broken)
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
