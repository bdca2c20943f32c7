"""Evidence an inspectorate can check: verify, bundles, Ed25519 signatures, re-runs and log retention.

Every run folder and bundle here is real: made by running the demo audit
(a small population) or the shipped examples, signed with real Ed25519 keys
and packed in real zip files. Hashes are recomputed with hashlib, intervals
with scipy, and every tamper test changes one byte of one file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit import load_spec
from audit.audit import Audit
from audit.evidence import (
    BUNDLE_INDEX,
    BUNDLE_SIGNATURE,
    LOG_FILES,
    amend_manifest,
    compare_metrics,
    keygen,
    prune_logs,
    verify,
    write_bundle,
)
from audit.exceptions import DataError, SpecError
from audit.record import ARTIFACTS

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo.yaml"


def _sha(path: Path | bytes) -> str:
    data = path if isinstance(path, bytes) else Path(path).read_bytes()
    return hashlib.sha256(data).hexdigest()


def _small_demo(n: int = 1500) -> Audit:
    audit = load_spec(DEMO)
    return audit.with_options(population={**audit.to_dict()["population"], "n": n},
                              statistics={"min_group_size": 10, "bootstrap": 200})


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run folder of the demo audit (1,500 synthetic applications)."""
    result = _small_demo().run(out=tmp_path_factory.mktemp("reports"))
    assert result.run_dir is not None
    return Path(result.run_dir)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    return keygen(tmp_path_factory.mktemp("keys") / "auditor.key")


@pytest.fixture(scope="module")
def signed_bundle(demo_dir: Path, keys: tuple[Path, Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bundle(demo_dir, tmp_path_factory.mktemp("bundles") / "demo.zip", sign_with=keys[0]).path


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / run_dir.name
    shutil.copytree(run_dir, target)
    return target


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _rewrite_manifest_hash(run_dir: Path, name: str) -> None:
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    manifest["artifacts"][name] = _sha(run_dir / name)
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "audit.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


# --------------------------------------------------------------------------
# run folders


def test_an_intact_run_folder_verifies_and_its_hashes_are_right(demo_dir: Path) -> None:
    manifest = json.loads((demo_dir / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["artifacts"]) == set(ARTIFACTS) - {"manifest.json"}
    for name, digest in manifest["artifacts"].items():  # the manifest itself, checked with hashlib
        assert _sha(demo_dir / name) == digest, name
    assert manifest["base_dir"] == str(DEMO.parent) and manifest["spec_file"] == str(DEMO)
    outcome = verify(demo_dir)
    assert outcome.exit_code == 0, outcome.lines()
    assert outcome.files_checked == len(ARTIFACTS) - 1
    assert outcome.problems == () and outcome.kind == "run folder"
    assert outcome.lines()[0].startswith(f"VERIFIED: run folder {demo_dir}")


@pytest.mark.parametrize("name", [a for a in ARTIFACTS if a != "manifest.json"])
def test_one_byte_changed_in_any_artifact_is_caught(demo_dir: Path, tmp_path: Path, name: str) -> None:
    run = _copy(demo_dir, tmp_path)
    _flip_one_byte(run / name)
    outcome = verify(run)
    assert outcome.exit_code == 2
    assert [p.file for p in outcome.problems if "changed" in p.reason] == [str(run / name)]


def test_one_byte_changed_in_the_manifest_is_caught(demo_dir: Path, tmp_path: Path) -> None:
    run = _copy(demo_dir, tmp_path)
    text = (run / "manifest.json").read_text(encoding="utf-8")
    digest = json.loads(text)["artifacts"]["report.html"]
    changed = digest[:10] + ("0" if digest[10] != "0" else "1") + digest[11:]
    (run / "manifest.json").write_text(text.replace(digest, changed), encoding="utf-8")
    outcome = verify(run)
    assert outcome.exit_code == 2
    assert [p.file for p in outcome.problems] == [str(run / "report.html")]


def test_missing_added_and_unlisted_files_are_named(demo_dir: Path, tmp_path: Path) -> None:
    run = _copy(demo_dir, tmp_path)
    (run / "report.md").unlink()
    (run / "extra.txt").write_text("added later", encoding="utf-8")
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    del manifest["artifacts"]["dossier.md"]
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    outcome = verify(run)
    assert outcome.exit_code == 2
    reasons = {Path(p.file).name: p.reason for p in outcome.problems}
    assert reasons["report.md"].startswith("missing")
    assert reasons["extra.txt"].startswith("not listed in manifest.json: added after the run")
    assert reasons["dossier.md"].startswith("not listed in manifest.json")
    (run / "manifest.json").unlink()
    outcome = verify(run)
    assert [p.line() for p in outcome.problems] == [f"{run / 'manifest.json'}: missing: the run folder is "
                                                   "incomplete (no manifest)"]


def test_results_that_break_the_schema_are_caught_even_with_a_matching_hash(demo_dir: Path, tmp_path: Path) -> None:
    run = _copy(demo_dir, tmp_path)
    results = json.loads((run / "results.json").read_text(encoding="utf-8"))
    results["schema_version"] = "9.9"
    results["metrics"][0]["n"] = "many"
    (run / "results.json").write_text(json.dumps(results), encoding="utf-8")
    _rewrite_manifest_hash(run, "results.json")
    outcome = verify(run)
    assert outcome.exit_code == 2
    lines = [p.reason for p in outcome.problems]
    assert any(r.startswith("does not match the results schema at metrics/0/n:") for r in lines), lines
    assert any(r.startswith("does not match the results schema at schema_version:") for r in lines), lines


def test_a_path_that_is_neither_folder_nor_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothing: no such run folder or bundle\. Expected a folder"):
        verify(tmp_path / "nothing")
    not_zip = tmp_path / "x.zip"
    not_zip.write_text("not a zip", encoding="utf-8")
    outcome = verify(not_zip)
    assert outcome.exit_code == 2 and outcome.problems[0].reason.startswith("not a readable zip file")


# --------------------------------------------------------------------------
# keys and signatures


def test_keygen_writes_a_private_key_only_its_owner_can_read(keys: tuple[Path, Path, str]) -> None:
    private, public, kid = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    from cryptography.hazmat.primitives import serialization

    raw = serialization.load_pem_public_key(public.read_bytes()).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert len(raw) == 32 and kid == hashlib.sha256(raw).hexdigest()[:16]
    with pytest.raises(DataError, match=r"the file exists already"):
        keygen(private)


def test_a_private_key_others_can_read_is_refused(demo_dir: Path, tmp_path: Path) -> None:
    private, _, _ = keygen(tmp_path / "k")
    private.chmod(0o644)
    with pytest.raises(DataError, match=r"can be read by others \(mode 0644\)\. Expected mode 0600"):
        write_bundle(demo_dir, tmp_path / "b.zip", sign_with=private)
    assert not (tmp_path / "b.zip").exists()


# --------------------------------------------------------------------------
# bundles

DEMO_INPUTS = {
    "inputs/examples/demo.yaml": ("spec", ROOT / "examples" / "demo.yaml"),
    "inputs/datasets/sweden/population-2026.yaml": ("population_spec", ROOT / "datasets/sweden/population-2026.yaml"),
    "inputs/examples/engines/municipal-rpa.yaml": ("engine", ROOT / "examples/engines/municipal-rpa.yaml"),
    "inputs/datasets/sweden/guidelines/trelleborg-2019.yaml": (
        "guideline", ROOT / "datasets/sweden/guidelines/trelleborg-2019.yaml"),
    "inputs/checks/application.yaml": ("suite", ROOT / "checks/application.yaml"),
    "inputs/checks/engine_input.yaml": ("suite", ROOT / "checks/engine_input.yaml"),
    "inputs/checks/decisions.yaml": ("suite", ROOT / "checks/decisions.yaml"),
    # the demo's review step: its caseworker model's code, found beside the spec
    "inputs/examples/engines/caseworker_model.py": ("engine_code", ROOT / "examples/engines/caseworker_model.py"),
}
BUNDLE_MEMBERS = sorted([BUNDLE_INDEX, BUNDLE_SIGNATURE] + [f"run/{a}" for a in ARTIFACTS] + list(DEMO_INPUTS))


def test_a_signed_bundle_holds_the_run_spec_engine_and_suites(signed_bundle: Path, demo_dir: Path,
                                                              keys: tuple[Path, Path, str]) -> None:
    with zipfile.ZipFile(signed_bundle) as zf:
        assert sorted(zf.namelist()) == BUNDLE_MEMBERS
        index = json.loads(zf.read(BUNDLE_INDEX))
        for name, meta in index["files"].items():  # every hash recomputed from the zip
            assert _sha(zf.read(name)) == meta["sha256"], name
        for name, (role, original) in DEMO_INPUTS.items():
            assert index["files"][name]["role"] == role
            assert zf.read(name) == original.read_bytes(), name
        for artifact in ARTIFACTS:
            assert zf.read(f"run/{artifact}") == (demo_dir / artifact).read_bytes()
        signature = json.loads(zf.read(BUNDLE_SIGNATURE))
    assert index["withheld"] == {} and index["spec_file"] == "inputs/examples/demo.yaml"
    assert index["base_dir"] == "inputs/examples" and index["evidence"]["personal_data"] is False
    assert signature["algorithm"] == "Ed25519" and signature["key_id"] == keys[2]
    assert signature["signed_sha256"] == _sha(zipfile.ZipFile(signed_bundle).read(BUNDLE_INDEX))
    from cryptography.hazmat.primitives import serialization  # the signature, checked with cryptography directly
    import base64

    public = serialization.load_pem_public_key(keys[1].read_bytes())
    public.verify(base64.b64decode(signature["signature"]), zipfile.ZipFile(signed_bundle).read(BUNDLE_INDEX))
    outcome = verify(signed_bundle, key=keys[1])
    assert outcome.exit_code == 0, outcome.lines()
    assert outcome.signed_by == keys[2] and outcome.kind == "bundle"
    assert outcome.files_checked == len(BUNDLE_MEMBERS) - 2


def _rezip(bundle: Path, target: Path, change: str | None = None, drop: str | None = None,
           add: tuple[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            if name == drop:
                continue
            data = bytearray(src.read(name))
            if name == change:
                data[len(data) // 2] ^= 0x01
            dst.writestr(name, bytes(data))
        if add:
            dst.writestr(*add)
    return target


@pytest.mark.parametrize("member", BUNDLE_MEMBERS)
def test_one_byte_changed_in_any_member_of_a_bundle_is_caught(signed_bundle: Path, tmp_path: Path,
                                                             member: str) -> None:
    tampered = _rezip(signed_bundle, tmp_path / "t.zip", change=member)
    outcome = verify(tampered)
    assert outcome.exit_code == 2, outcome.lines()
    named = [p.file for p in outcome.problems]
    if member in (BUNDLE_INDEX, BUNDLE_SIGNATURE):
        assert f"{tampered}:{BUNDLE_SIGNATURE}" in named or f"{tampered}:{BUNDLE_INDEX}" in named, named
    else:
        assert f"{tampered}:{member}" in named, named


def test_a_bundle_missing_a_file_or_with_an_extra_one_is_caught(signed_bundle: Path, tmp_path: Path) -> None:
    dropped = _rezip(signed_bundle, tmp_path / "a.zip", drop="run/report.md")
    outcome = verify(dropped)
    assert outcome.exit_code == 2
    assert f"{dropped}:run/report.md: missing: the bundle index lists it" in [p.line() for p in outcome.problems]
    outcome = verify(_rezip(signed_bundle, tmp_path / "b.zip", add=("run/extra.txt", b"x")))
    assert any(p.file.endswith("b.zip:run/extra.txt") and "not listed in bundle.json" in p.reason
               for p in outcome.problems), outcome.lines()


def test_signatures_by_another_key_or_none_are_refused_when_a_key_is_trusted(
        signed_bundle: Path, demo_dir: Path, tmp_path: Path) -> None:
    _, other_public, other_id = keygen(tmp_path / "other.key")
    outcome = verify(signed_bundle, key=other_public)
    assert outcome.exit_code == 2
    assert outcome.problems[0].reason.endswith(f"not by the trusted key {other_id}")
    unsigned = write_bundle(demo_dir, tmp_path / "unsigned.zip").path
    assert verify(unsigned).exit_code == 0
    outcome = verify(unsigned, key=other_public)
    assert outcome.exit_code == 2
    assert outcome.problems[0].line() == (f"{unsigned}:{BUNDLE_SIGNATURE}: missing: a trusted key was given, "
                                          "but the bundle is not signed")


def test_a_tampered_run_folder_is_not_bundled(demo_dir: Path, tmp_path: Path) -> None:
    run = _copy(demo_dir, tmp_path)
    _flip_one_byte(run / "metrics.csv")
    with pytest.raises(DataError, match=r"fails verification, so it is not bundled: .*metrics\.csv: changed"):
        write_bundle(run, tmp_path / "b.zip")
    with pytest.raises(DataError, match=r"the file exists already"):
        write_bundle(demo_dir, DEMO)


# --------------------------------------------------------------------------
# re-runs


def test_compare_metrics_by_hand() -> None:
    a = [{"metric": "grant_rate", "attributes": ["sex"], "group": "female", "value": 0.5, "n": 10, "test": "z"},
         {"metric": "grant_rate", "attributes": ["sex"], "group": "male", "value": 0.25, "n": 8, "test": "z"}]
    same = [dict(r) for r in a]
    same[0]["value"] = 0.5 * (1 + 1e-12)  # floating-point noise
    assert compare_metrics(a, same).empty
    b = [dict(a[0], value=0.51, test="fisher"), {"metric": "deny_rate", "attributes": [], "group": "all"}]
    diff = compare_metrics(a, b)
    assert diff.to_dict(orient="records") == [
        {"metric": "grant_rate", "attributes": "sex", "group": "female", "field": "value", "recorded": 0.5,
         "rerun": 0.51},
        {"metric": "grant_rate", "attributes": "sex", "group": "female", "field": "test", "recorded": "z",
         "rerun": "fisher"},
        {"metric": "grant_rate", "attributes": "sex", "group": "male", "field": "(row)", "recorded": "present",
         "rerun": "missing"},
        {"metric": "deny_rate", "attributes": "", "group": "all", "field": "(row)", "recorded": "missing",
         "rerun": "present"},
    ]


def test_rerun_of_a_run_folder_and_of_its_bundle_is_identical(demo_dir: Path, signed_bundle: Path) -> None:
    outcome = verify(demo_dir, rerun=True)
    assert outcome.exit_code == 0, outcome.lines()
    assert outcome.rerun and outcome.differences.empty
    assert outcome.lines()[-1] == "IDENTICAL: the re-run gives the same metric rows."
    outcome = verify(signed_bundle, rerun=True)
    assert outcome.exit_code == 0, outcome.lines()
    assert outcome.rerun and outcome.differences.empty


def test_a_rerun_needs_the_spec_folder_and_a_folder_has_no_signature(demo_dir: Path, tmp_path: Path,
                                                                    keys: tuple[Path, Path, str]) -> None:
    run = _copy(demo_dir, tmp_path)
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    manifest["base_dir"] = str(tmp_path / "gone")
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert verify(run).exit_code == 0  # base_dir is not an artifact: the evidence itself is intact
    outcome = verify(run, rerun=True)
    assert outcome.exit_code == 2 and not outcome.rerun
    assert outcome.problems[0].line() == (f"{run / 'manifest.json'}: names the spec's folder {tmp_path / 'gone'}, "
                                          "which does not exist here, so the run cannot be repeated; verify a "
                                          "bundle of it (insyn bundle) instead")
    outcome = verify(demo_dir, key=keys[1])
    assert outcome.exit_code == 2 and "a run folder is not signed" in outcome.problems[0].reason


def test_rerun_finds_a_metric_row_that_was_changed_and_lists_it(demo_dir: Path, tmp_path: Path) -> None:
    run = _copy(demo_dir, tmp_path)
    results = json.loads((run / "results.json").read_text(encoding="utf-8"))
    row = next(r for r in results["metrics"] if r["metric"] == "refer_rate" and r["attributes"] == ["birth_region"]
               and r["group"] == "outside_eu")
    recorded = row["value"]
    row["value"] = recorded + 0.05
    (run / "results.json").write_text(json.dumps(results), encoding="utf-8")
    _rewrite_manifest_hash(run, "results.json")  # a consistent but false record: only the re-run can tell
    assert verify(run).exit_code == 0
    outcome = verify(run, rerun=True)
    assert outcome.exit_code == 1
    assert outcome.differences.to_dict(orient="records") == [
        {"metric": "refer_rate", "attributes": "birth_region", "group": "outside_eu", "field": "value",
         "recorded": recorded + 0.05, "rerun": recorded}]
    text = "\n".join(outcome.lines())
    assert "DIFFERS: the re-run gives different metric rows (1 field(s)):" in text and "outside_eu" in text


# --------------------------------------------------------------------------
# personal data and data the spec allows


def _decision_log_spec(tmp_path: Path, evidence: dict | None = None) -> Path:
    text = (ROOT / "examples" / "decision-log.yaml").read_text(encoding="utf-8")
    text = text.replace("../datasets/examples/decision-log.xlsx", str(ROOT / "datasets/examples/decision-log.xlsx"))
    if evidence is not None:
        text += "evidence: " + json.dumps(evidence) + "\n"
    path = tmp_path / "decision-log.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_personal_data_stays_out_of_a_bundle_with_its_hash_only(tmp_path: Path) -> None:
    run = Path(load_spec(_decision_log_spec(tmp_path)).run(out=tmp_path / "reports").run_dir)
    bundle = write_bundle(run, tmp_path / "b.zip")
    xlsx = ROOT / "datasets/examples/decision-log.xlsx"
    with zipfile.ZipFile(bundle.path) as zf:
        names = zf.namelist()
        index = json.loads(zf.read(BUNDLE_INDEX))
    assert not any(n.endswith(".xlsx") for n in names)
    assert "run/decisions.parquet" not in names and "run/journey.parquet" not in names
    data = next(e for e in index["inputs"] if e["role"] == "data")
    assert data["sha256"] == _sha(xlsx) and data["path"] is None
    assert data["withheld"].startswith("personal data")
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    for name in ("decisions.parquet", "journey.parquet"):
        assert index["withheld"][f"run/{name}"]["sha256"] == manifest["artifacts"][name] == _sha(run / name)
    outcome = verify(bundle.path)
    assert outcome.exit_code == 0, outcome.lines()
    assert any("run/decisions.parquet: withheld from the bundle (personal data" in n for n in outcome.notes)
    outcome = verify(bundle.path, rerun=True)
    assert outcome.exit_code == 2
    assert "is not in the bundle (personal data" in outcome.problems[0].reason


def test_personal_data_goes_in_when_the_spec_says_so_and_then_the_bundle_reruns(tmp_path: Path) -> None:
    spec = _decision_log_spec(tmp_path, {"include_data": True, "include_personal_data": True})
    run = Path(load_spec(spec).run(out=tmp_path / "reports").run_dir)
    bundle = write_bundle(run, tmp_path / "b.zip")
    assert bundle.withheld == ()
    with zipfile.ZipFile(bundle.path) as zf:
        xlsx = [n for n in zf.namelist() if n.endswith("decision-log.xlsx")]
        assert len(xlsx) == 1 and zf.read(xlsx[0]) == (ROOT / "datasets/examples/decision-log.xlsx").read_bytes()
        assert "run/decisions.parquet" in zf.namelist()
    outcome = verify(bundle.path, rerun=True)
    assert outcome.exit_code == 0, outcome.lines()


def test_aggregated_data_is_not_personal_and_goes_in_only_when_allowed(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "aggregated.yaml").read_text(encoding="utf-8").replace(
        "../datasets/examples/confusion.csv", str(ROOT / "datasets/examples/confusion.csv"))
    (tmp_path / "agg.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "agg-data.yaml").write_text(text + "evidence: {include_data: true}\n", encoding="utf-8")
    plain = write_bundle(load_spec(tmp_path / "agg.yaml").run(out=tmp_path / "r1").run_dir, tmp_path / "1.zip")
    assert [w.split(" (")[1] for w in plain.withheld] == ["input data: evidence.include_data is false; SHA-256 only)"]
    full = write_bundle(load_spec(tmp_path / "agg-data.yaml").run(out=tmp_path / "r2").run_dir, tmp_path / "2.zip")
    assert full.withheld == ()
    outcome = verify(full.path, rerun=True)
    assert outcome.exit_code == 0, outcome.lines()


def test_the_evidence_section_of_the_spec_is_checked() -> None:
    data = load_spec(DEMO).to_dict()
    with pytest.raises(SpecError, match=r"evidence\.include_personal_data needs include_data: true as well"):
        Audit.from_dict({**data, "evidence": {"include_personal_data": True}}, source="x.yaml")
    with pytest.raises(SpecError, match=r"x\.yaml: evidence\.colour is not a known key"):
        Audit.from_dict({**data, "evidence": {"colour": 1}}, source="x.yaml")


# --------------------------------------------------------------------------
# retention


def _make_old(run_dir: Path, days: float) -> datetime:
    """Move a run's generated_at back by ``days`` (and keep its manifest consistent)."""
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    made = datetime.fromisoformat(results["generated_at"]) - timedelta(days=days)
    results["generated_at"] = made.isoformat(timespec="seconds")
    (run_dir / "results.json").write_text(json.dumps(results), encoding="utf-8")
    _rewrite_manifest_hash(run_dir, "results.json")
    return made


def test_prune_logs_keeps_young_logs_prunes_old_ones_and_records_it(demo_dir: Path, tmp_path: Path) -> None:
    parent = tmp_path / "demo"
    parent.mkdir()
    old, young, other = (Path(shutil.copytree(demo_dir, parent / n)) for n in ("old", "young", "other"))
    manifest = json.loads((other / "manifest.json").read_text(encoding="utf-8"))
    manifest["audit"] = "another-audit"
    (other / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (parent / "not-a-run").mkdir()
    _make_old(old, 200)
    _make_old(other, 400)
    _make_old(young, 180)
    before = {n: _sha(old / n) for n in LOG_FILES}
    sizes = sum((old / n).stat().st_size for n in LOG_FILES)
    now = datetime.now(UTC)
    pruned = prune_logs(parent, audit="demo", retention_days=184, now=now)
    assert [p.run_dir for p in pruned] == [old]
    assert pruned[0].files == LOG_FILES and pruned[0].bytes == sizes
    assert not any((old / n).exists() for n in LOG_FILES)
    assert all((young / n).exists() and (other / n).exists() for n in LOG_FILES)
    amendment = json.loads((old / "manifest.json").read_text(encoding="utf-8"))["amendments"][-1]
    assert amendment["pruned"] == before and amendment["by"] == "insyn monitor"
    assert amendment["reason"] == "retention: the log is kept for 184 days (monitor.retention_days)"
    outcome = verify(old)
    assert outcome.exit_code == 0, outcome.lines()
    assert sum("pruned on" in n for n in outcome.notes) == 2
    assert prune_logs(parent, audit="demo", retention_days=184, now=now) == ()
    assert prune_logs(parent, audit="demo", retention_days=None, now=now + timedelta(days=9999)) == ()
    assert "PRUNED demo" in pruned[0].line("demo", 184) and "older than the retention of 184 days" in pruned[
        0].line("demo", 184)


def test_an_unrecorded_missing_log_is_still_a_problem(demo_dir: Path, tmp_path: Path) -> None:
    run = _copy(demo_dir, tmp_path)
    (run / "journey.parquet").unlink()
    outcome = verify(run)
    assert outcome.exit_code == 2 and outcome.problems[0].reason.startswith("missing")


def test_amend_manifest_refuses_what_it_cannot_record(demo_dir: Path, tmp_path: Path) -> None:
    run = _copy(demo_dir, tmp_path)
    with pytest.raises(DataError, match=r"no such file to add"):
        amend_manifest(run, by="t", reason="r", added=["nothing.json"])
    with pytest.raises(DataError, match=r"lists this file already"):
        amend_manifest(run, by="t", reason="r", added=["report.html"])
    with pytest.raises(DataError, match=r"does not list this file, so it cannot be pruned"):
        amend_manifest(run, by="t", reason="r", pruned=["nothing.json"])
    with pytest.raises(DataError, match=r"retention_days must be a whole number of days >= 1"):
        prune_logs(tmp_path, audit="demo", retention_days=0)


def test_monitor_retention_days_must_cover_six_months() -> None:
    data = load_spec(DEMO).to_dict()
    with pytest.raises(SpecError, match=r"x\.yaml: monitor\.retention_days must be an integer >= 184\. Got 30\."):
        Audit.from_dict({**data, "monitor": {"retention_days": 30}}, source="x.yaml")
    assert Audit.from_dict({**data, "monitor": {}}).monitor.retention_days == 184
    assert Audit.from_dict({**data, "monitor": {"retention_days": None}}).monitor.retention_days is None


def _monitor_spec(tmp_path: Path) -> Path:
    text = (ROOT / "examples" / "monitor.yaml").read_text(encoding="utf-8")
    text = text.replace("../datasets/", str(ROOT / "datasets") + "/").replace(
        "engines/municipal-rpa.yaml", str(ROOT / "examples/engines/municipal-rpa.yaml")).replace("n: 5000", "n: 600")
    path = tmp_path / "monitor.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_insyn_monitor_records_alerts_prunes_old_logs_and_says_so(tmp_path: Path) -> None:
    from audit.monitor import run_monitor

    spec = _monitor_spec(tmp_path)
    out, hist = tmp_path / "reports", tmp_path / "history"
    first = run_monitor(spec, history=hist, period="2026-01", out=out)
    first_dir = Path(first.run.run_dir)
    manifest = json.loads((first_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["artifacts"]["alerts.json"] == _sha(first_dir / "alerts.json")
    assert manifest["amendments"][0]["added"] == {"alerts.json": _sha(first_dir / "alerts.json")}
    assert verify(first_dir).exit_code == 0
    assert first.pruned == () and first.retention_days == 184
    _flip_one_byte(first_dir / "alerts.json")
    tampered = verify(first_dir)
    assert tampered.exit_code == 2 and tampered.problems[0].file == str(first_dir / "alerts.json")
    _flip_one_byte(first_dir / "alerts.json")  # flipped back
    _make_old(first_dir, 190)
    proc = _cli("monitor", str(spec), "--history", str(hist), "--period", "2026-02", "--out", str(out), "-q")
    assert proc.returncode in (0, 1), proc.stderr
    pruned_lines = [line for line in proc.stdout.splitlines() if line.startswith("PRUNED")]
    assert len(pruned_lines) == 1 and pruned_lines[0].startswith(f"PRUNED monitor-demo {first.run_id}: "
                                                                 "journey.parquet, lineage.jsonl (")
    assert not (first_dir / "journey.parquet").exists() and not (first_dir / "lineage.jsonl").exists()
    assert verify(first_dir).exit_code == 0
    later = sorted(p for p in (out / "monitor-demo").iterdir() if p != first_dir)
    assert len(later) == 1 and (later[0] / "journey.parquet").exists() and verify(later[0]).exit_code == 0


# --------------------------------------------------------------------------
# the command line


@pytest.mark.slow
def test_cli_keygen_bundle_verify_and_exit_codes(demo_dir: Path, tmp_path: Path) -> None:
    proc = _cli("keygen", str(tmp_path / "k"))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600
    assert proc.stdout.splitlines()[-1].startswith("Key id: ")
    proc = _cli("keygen", str(tmp_path / "k"))
    assert proc.returncode == 2 and "the file exists already" in proc.stderr
    proc = _cli("bundle", str(demo_dir), "-o", str(tmp_path / "b.zip"), "--sign", str(tmp_path / "k"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Wrote {tmp_path / 'b.zip'} (run {demo_dir.name}): 19 files, signed by key ")
    proc = _cli("verify", str(tmp_path / "b.zip"), "--key", str(tmp_path / "k.pub"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"VERIFIED: bundle {tmp_path / 'b.zip'}")
    run = _copy(demo_dir, tmp_path)
    _flip_one_byte(run / "dossier.html")
    proc = _cli("verify", str(run))
    assert proc.returncode == 2
    assert f"  {run / 'dossier.html'}: changed: its SHA-256 is " in proc.stdout
    proc = _cli("verify", str(run), "--json")
    assert json.loads(proc.stdout)["problems"][0]["file"] == str(run / "dossier.html")
    proc = _cli("verify", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and "no such run folder or bundle" in proc.stderr and "Traceback" not in proc.stderr
