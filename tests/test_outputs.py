"""Outputs that say exactly what was found (issue 25, points 5 and 6).

Full precision in machine-readable outputs, findings whose fields agree,
findings that print well, and ``report.formats`` honoured.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from audit import Audit
from audit.finding import Finding, Findings
from audit.record import ARTIFACTS, artifacts_for
from audit.console import Speaker
from audit.result import AuditResult

ROOT = Path(__file__).resolve().parents[1]


def _row(metric: str, group: str, value: float, ref: float, p: float) -> dict:
    return {"metric": metric, "attributes": ["birth_region"], "group": group, "n": 5000, "value": value,
            "ci_low": value - 0.01, "ci_high": value + 0.01, "reference_group": "sweden", "reference_value": ref,
            "difference": value - ref, "ratio": value / ref, "p_value": p, "p_adjusted": p, "suppressed": False}


def test_cli_json_keeps_a_p_value_of_1e_40(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from audit import cli

    result = AuditResult.build(run_id="r", generated_at="2026-01-01T00:00:00+00:00", spec={"name": "t"},
                               population={}, engine=None, checks=[], journey={"steps": []},
                               metrics=[_row("deny_rate", "eu", 0.3, 0.1, 1e-40)],
                               findings=[{"name": "x", "status": "FAIL", "severity": "fail", "on_breach": "fail",
                                          "p_adjusted": 3.5e-300, "observed": 3.0, "attributes": ["birth_region"]}])
    cli._print_result(result, quiet=False, fmt="json", speaker=Speaker("en"))
    out = json.loads(capsys.readouterr().out)
    assert out["largest_disparities"][0]["p_adjusted"] == 1e-40
    assert out["largest_disparities"][0]["p_value"] == 1e-40
    assert out["findings"][0]["p_adjusted"] == 3.5e-300
    assert out["largest_disparities"][0]["distance"] == pytest.approx(1.0986122886681098)  # log 3


def test_cli_table_never_shows_a_tiny_p_value_as_zero() -> None:
    numbers = Speaker("en").numbers
    assert numbers.p_value(1e-40) == "<\u00a00.001" and numbers.p_value(0.01234) == "0.012"
    assert numbers.p_value(float("nan")) == "–"


def test_findings_are_plain_dataclasses_that_print_well_and_agree() -> None:
    raw = [
        {"name": "refer_rate ratio >= 0.8 for birth_region=eu vs sweden", "status": "PASS", "severity": None,
         "on_breach": "fail", "metric": "refer_rate", "attributes": ["birth_region"], "group": "eu",
         "observed": 0.95, "p_adjusted": 0.5, "message": "observed 0.95, meets >= 0.8."},
        {"name": "refer_rate ratio >= 0.8 for birth_region=nordic vs sweden", "status": "FAIL", "severity": "fail",
         "on_breach": "fail", "metric": "refer_rate", "attributes": ["birth_region"], "group": "nordic",
         "observed": 0.5, "p_adjusted": 1e-9, "message": "observed 0.5, below the minimum 0.8.", "custom": 1},
    ]
    result = AuditResult.build(run_id="r", generated_at="x", spec={"name": "t"}, population={}, engine=None,
                               checks=[], journey={"steps": []}, metrics=[], findings=raw)
    assert isinstance(result.findings, Findings) and all(isinstance(f, Finding) for f in result.findings)
    f = result.findings[1]
    assert f.status == "FAIL" and f.attributes == ("birth_region",) and f["observed"] == 0.5
    assert f.extra == {"custom": 1} and f.to_dict()["custom"] == 1
    text = repr(result.findings)
    assert text.startswith("Findings (2):") and "refer_rate ratio >= 0.8 for birth_region=nordic" in text
    assert "mappingproxy" not in text
    frame = result.findings_frame()
    assert isinstance(frame, pd.DataFrame) and frame["status"].tolist() == ["PASS", "FAIL"]
    # round trip: results.json form unchanged
    assert result.to_dict()["findings"][1] == {**{k: None for k in Finding.__dataclass_fields__
                                                  if k not in ("extra", "message")},
                                               **raw[1], "message": raw[1]["message"]}
    assert AuditResult.from_dict(result.to_dict()).to_dict()["findings"] == result.to_dict()["findings"]


def test_artifacts_for_formats() -> None:
    assert artifacts_for(["html", "md", "json"]) == ARTIFACTS
    assert artifacts_for(["html"]) == tuple(a for a in ARTIFACTS if a not in ("report.md", "results.json"))


def test_report_formats_are_honoured_and_the_manifest_verifies(tmp_path: Path) -> None:
    from audit._paths import sha256_file

    audit = Audit.from_dict({
        "name": "f", "seed": 1,
        "population": {"synthetic": str(ROOT / "datasets/sweden/population-2026.yaml"), "n": 300},
        "sensitive_features": ["sex"], "engine": {"kind": "reference"}, "statistics": {"bootstrap": 0},
        "report": {"formats": ["md"]},
    }, base_dir=tmp_path)
    result = audit.run(out=tmp_path)
    written = sorted(p.name for p in result.run_dir.iterdir())
    assert written == sorted(artifacts_for(["md"]))
    assert "report.html" not in written and "results.json" not in written and "report.md" in written
    manifest = json.loads((result.run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["artifacts"]) == set(written) - {"manifest.json"}
    for name, digest in manifest["artifacts"].items():
        assert sha256_file(result.run_dir / name) == digest


def test_run_findings_severity_agrees_with_status(tmp_path: Path) -> None:
    audit = Audit.from_dict({
        "name": "s", "seed": 1,
        "population": {"synthetic": str(ROOT / "datasets/sweden/population-2026.yaml"), "n": 400},
        "sensitive_features": ["sex"], "engine": {"kind": "reference"}, "statistics": {"bootstrap": 0},
        "thresholds": [{"metric": "grant_rate", "value_min": 0}, {"metric": "grant_rate", "ratio_min": 50,
                                                                    "severity": "warn"}],
        "report": {"formats": ["json"]},
    }, base_dir=tmp_path)
    findings = audit.run(out=tmp_path).findings
    statuses = {f.status for f in findings}
    assert {"PASS", "WARN"} <= statuses
    for f in findings:
        assert f.severity == {"PASS": None, "WARN": "warn", "FAIL": "fail", "ERROR": "fail"}[f.status]
        assert f.on_breach in ("fail", "warn")


def test_sha256_each_hashes_every_file_in_order_as_hashlib_does(tmp_path: Path) -> None:
    """Files hashed several at a time (threads) give each file's own SHA-256, in the order given."""
    import hashlib

    from audit._paths import sha256_each

    blobs = [b"", b"a", bytes(range(256)) * 9000, b"x" * (3 << 20) + b"tail"]  # empty, small, 2.3 MB, over 1 MiB blocks
    paths = []
    for i, blob in enumerate(blobs):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(blob)
        paths.append(path)
    expected = [hashlib.sha256(b).hexdigest() for b in blobs]
    assert sha256_each(paths) == expected
    assert sha256_each(reversed(paths)) == expected[::-1]
    assert sha256_each(paths[:1]) == expected[:1] and sha256_each([]) == []
