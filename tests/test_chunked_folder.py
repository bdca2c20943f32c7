"""A chunked run folder is a complete run folder: the in-memory run's artifacts, numbers and evidence.

The same spec is run twice over the same 2,500 cases, once in memory and
once in three chunks; the chunked folder must hold every artifact of
:func:`audit.record.artifacts_for` (decisions and journey in parts), the same
metrics, the same report numbers, the same checks (field by field), a
manifest that ``insyn verify`` accepts and that catches a changed byte in a
part, a ``results.json`` that matches the results schema, and no
personnummer from the input anywhere.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker

from audit._privacy import mask
from audit.audit import run_audit
from audit.chunked import report_counts, report_frame, run_chunked_audit
from audit.evidence import prune_logs, verify, write_bundle
from audit.record import PART_FOLDERS, artifacts_for
from audit.result import AuditResult
from audit.runfolder import RunFolder
from audit.spec import load_spec
from audit.synth import generate, load_population_spec

ROOT = Path(__file__).resolve().parents[1]
N = 2500
CHUNK = 1000
PNR = "19850615-2387"
"""A made-up personnummer, planted in a free-text column of the input."""


def _spec_file(tmp: Path, *, report: dict | None = None, discover: dict | None = None) -> Path:
    """The demo audit over 2,500 synthetic cases stored as Parquet, as tests/test_execution_chunked.py builds it."""
    frame = generate(load_population_spec(ROOT / "datasets/sweden/population-2026.yaml"), n=N, seed=42)
    frame.attrs = {}
    frame["note"] = [f"ring {PNR} om hyran" if i % 7 == 0 else "" for i in range(len(frame))]
    frame.to_parquet(tmp / "cases.parquet", index=False, row_group_size=700)
    d = yaml.safe_load((ROOT / "examples/demo.yaml").read_text())
    d["population"] = {"file": str(tmp / "cases.parquet"), "derive": d["population"]["derive"]}
    d["engine"]["path"] = str(ROOT / "examples/engines/municipal-rpa.yaml")
    for cfg in d["checks"].values():
        cfg["suites"] = [str((ROOT / "examples" / s).resolve()) for s in cfg["suites"]]
    if report is not None:
        d["report"] = report
    if discover is not None:
        d["discover"] = discover
    shutil.copytree(ROOT / "examples/engines", tmp / "engines", dirs_exist_ok=True)
    (tmp / "spec.yaml").write_text(yaml.safe_dump(d))
    return tmp / "spec.yaml"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    """The same spec run in memory and in three chunks: (spec, in-memory folder, chunked run, chunked folder)."""
    tmp = tmp_path_factory.mktemp("chunked-folder")
    spec = load_spec(_spec_file(tmp))
    memory = run_audit(spec, out=tmp / "out", run_id="memory")
    run, folder = run_chunked_audit(spec, out=tmp / "out", chunk_size=CHUNK, executor="inprocess", run_id="chunked")
    return spec, Path(memory.run_dir), run, folder


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_every_artifact_is_written_and_hashed(runs) -> None:
    spec, memory, run, folder = runs
    assert run.chunks == -(-N // CHUNK) == 3
    expected = set()
    for name in artifacts_for(spec.report.formats):
        if name in PART_FOLDERS:
            expected |= {f"{PART_FOLDERS[name]}/part-{i:05d}.parquet" for i in range(run.chunks)}
        else:
            expected.add(name)
    assert _files(folder) == expected
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["artifacts"]) == expected - {"manifest.json"}
    # the in-memory run's manifest has the same keys; the chunked one adds how it ran
    in_memory = json.loads((memory / "manifest.json").read_text())
    assert set(manifest) - set(in_memory) == {"execution"}
    assert manifest["execution"]["chunks"] == 3 and manifest["inputs"] == in_memory["inputs"]
    # the parts hold every case once, and RunFolder reads them as the decisions
    decisions = RunFolder.open(folder).decisions()
    assert len(decisions) == N and decisions["case_id"].is_unique
    assert sorted(decisions["case_id"]) == sorted(pd.read_parquet(memory / "decisions.parquet")["case_id"])


def test_metrics_and_report_numbers_equal_the_in_memory_run(runs) -> None:
    _, memory, _, folder = runs
    assert (folder / "metrics.csv").read_text() == (memory / "metrics.csv").read_text()

    def sections(path: Path) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        title = "head"
        for line in path.read_text().splitlines():
            if line.startswith("## "):
                title = line
            out.setdefault(title, []).append(line)
        return out

    mem, chk = sections(memory / "report.md"), sections(folder / "report.md")
    assert list(mem) == list(chk)  # the same sections, in the same order
    volatile = ("## Data journey", "## Public-values scorecard", "## Reproducibility", "head")
    for title in mem:
        if title not in volatile:
            assert chk[title] == mem[title], title
    # the head: the same figures, another run id and time
    stamp = re.compile(r"generated \S+|Run `[^`]+`")
    assert [stamp.sub("", x) for x in chk["head"]] == [stamp.sub("", x) for x in mem["head"]]
    # the journey table: the same steps and rows in, out, rejected and errored (times differ)
    def step_rows(lines: list[str]) -> list[list[str]]:
        rows = [x.split("|")[1:-1] for x in lines if x.startswith("| ") and x.rstrip().endswith(" s |")]
        return [[c.strip() for c in r[:-1]] for r in rows]

    assert step_rows(chk["## Data journey"]) == step_rows(mem["## Data journey"]) != []
    # every number in the metric sections, read back from the text, equals the in-memory run's
    numbers = re.compile(r"\d[\d,]*(?:\.\d+)?%?")
    mem_numbers = [numbers.findall(x) for t in mem if t not in volatile for x in mem[t]]
    chk_numbers = [numbers.findall(x) for t in chk if t not in volatile for x in chk[t]]
    assert chk_numbers == mem_numbers and sum(map(len, mem_numbers)) > 500


def test_what_a_chunked_run_cannot_produce_is_said_in_words(runs) -> None:
    _, _, _, folder = runs
    text = (folder / "report.md").read_text()
    assert "not measured in a chunked run" not in text  # the public values are there (summed over chunks)
    assert "This run ran in 3 chunks" in text and "journey/part-\\*.parquet" in text


@pytest.mark.parametrize("language,words", [
    ("sv", ("den söker i hela ärendetabellen", "Körningen gjordes i 3 delar")),
    ("en", ("it searches the whole case frame", "This run ran in 3 chunks")),
])
def test_report_formats_and_language_are_honoured(tmp_path: Path, language: str, words: tuple[str, ...]) -> None:
    """report.formats without html, in either language; a spec with discover: hears why discovery did not run."""
    spec = load_spec(_spec_file(tmp_path, report={"formats": ["md", "json"], "language": language},
                                discover={"top": 3}))
    _, folder = run_chunked_audit(spec, out=tmp_path / "out", chunk_size=CHUNK, executor="inprocess", run_id="r")
    assert not (folder / "report.html").exists()
    text = (folder / "report.md").read_text()
    for w in words:
        assert w in text, w
    assert verify(folder).exit_code == 0


def test_checks_json_equals_the_in_memory_run_field_by_field(runs) -> None:
    _, memory, _, folder = runs
    mem = json.loads((memory / "checks.json").read_text())
    chk = json.loads((folder / "checks.json").read_text())
    assert [e["step"] for e in chk] == [e["step"] for e in mem] != []
    for m, c in zip(mem, chk, strict=True):
        for key in m:
            if key not in ("results", "gx_result"):
                assert c[key] == m[key], (m["step"], key)
        assert c["chunks"] == 3 and len(c["results"]) == len(m["results"])
        for rm, rc in zip(m["results"], c["results"], strict=True):
            for key in rm:
                if key != "sample_case_ids":  # ids of one chunk's failing cases
                    assert rc[key] == rm[key], (m["step"], rm["expectation"], key)
            assert rc["exact"] is True
        gx_m, gx_c = m["gx_result"], c["gx_result"]
        assert gx_c["statistics"] == gx_m["statistics"]
        assert [r["success"] for r in gx_c["results"]] == [r["success"] for r in gx_m["results"]]
        assert [r["expectation_config"]["type"] for r in gx_c["results"]] == [
            r["expectation_config"]["type"] for r in gx_m["results"]]


def test_manifest_verifies_and_catches_one_changed_byte_in_a_part(runs, tmp_path: Path) -> None:
    _, _, _, folder = runs
    verified = verify(folder)
    assert verified.exit_code == 0, verified.lines()
    assert verified.files_checked == len(_files(folder)) - 1  # every file but the manifest
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    part = copy / "journey" / "part-00001.parquet"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x01
    part.write_bytes(bytes(data))
    broken = verify(copy)
    assert broken.exit_code == 2
    assert [p.file for p in broken.problems] == [str(part)]
    assert "changed" in broken.problems[0].reason
    # a file slipped into a part folder is not evidence either
    part.write_bytes((folder / "journey" / "part-00001.parquet").read_bytes())  # restored
    (copy / "decisions" / "part-00009.parquet").write_bytes(b"x")
    added = verify(copy)
    assert [p.reason for p in added.problems] == ["not listed in manifest.json: added after the run"]


def test_results_json_has_the_in_memory_keys_and_passes_the_schema(runs) -> None:
    _, memory, run, folder = runs
    chk = json.loads((folder / "results.json").read_text())
    mem = json.loads((memory / "results.json").read_text())
    schema = json.loads((ROOT / "audit" / "schemas" / "results.schema.json").read_text(encoding="utf-8"))
    assert [e.message for e in Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(chk)] == []
    # the same keys, plus how the run was executed
    assert set(chk) == set(mem) | {"execution"}
    # the public values, from sums added over the chunks, equal the in-memory run's
    assert len(chk["values"]) == len(mem["values"]) > 50
    for c, m in zip(chk["values"], mem["values"], strict=True):
        assert {k: v for k, v in c.items() if not isinstance(v, float)} == \
            {k: v for k, v in m.items() if not isinstance(v, float)}
        for k, v in m.items():
            if isinstance(v, float):
                assert c[k] == pytest.approx(v, rel=1e-12, abs=1e-12), (m["indicator"], m["group"], k)
    assert chk["execution"]["chunks"] == 3 and chk["execution"]["executor"] == "inprocess"
    assert chk["population"]["n_cases"] == mem["population"]["n_cases"] == N
    assert chk["population"]["status_counts"] == mem["population"]["status_counts"]
    for key in ("n_cases", "n_errors", "features", "withheld", "name", "definition_hash"):
        assert chk["engine"][key] == mem["engine"][key], key
    assert chk["engine"]["review"] == mem["engine"]["review"]
    steps_m, steps_c = mem["journey"]["steps"], chk["journey"]["steps"]
    assert [s["name"] for s in steps_c] == [s["name"] for s in steps_m]
    for sm, sc in zip(steps_m, steps_c, strict=True):
        for key in ("rows_in", "rows_out", "rows_rejected", "rows_errored", "cases_changed", "checks", "caseworker"):
            assert sc[key] == sm[key], (sm["name"], key)
    assert chk["metrics"] == mem["metrics"] and chk["findings"] == mem["findings"]
    assert AuditResult.load(folder).execution["chunks"] == 3


def test_no_personnummer_from_the_input_reaches_any_artifact(runs) -> None:
    spec, _, _, folder = runs
    frame = pd.read_parquet(Path(spec.population.file))
    assert frame["note"].str.contains(PNR).sum() == -(-N // 7)  # it is in the input
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            text = " ".join(table.column_names) + "\n" + "\n".join(
                str(v) for col in table.columns for v in col.to_pylist())
        else:
            text = path.read_text(encoding="utf-8", errors="replace")
        assert PNR[:9] not in text and PNR.replace("-", "")[:8] + "2" not in text, path
        assert mask(text) == text, path  # nothing personnummer-shaped at all


def test_insyn_discover_runs_on_the_chunked_folder_as_on_the_in_memory_one(runs) -> None:
    """The report sends a reader to `insyn discover RUN_DIR` for subgroup discovery: it reads the parts."""
    _, memory, _, folder = runs
    text = (folder / "report.md").read_text()
    assert "Subgroup discovery was not run" in text
    chunked = RunFolder.open(folder).discover(top=3)
    in_memory = RunFolder.open(memory).discover(top=3)
    assert len(chunked.groups) == 3
    assert chunked.to_records() == in_memory.to_records()


def test_a_bundle_of_the_chunked_folder_withholds_the_parts_and_verifies(runs, tmp_path: Path) -> None:
    _, _, run, folder = runs
    info = write_bundle(folder, tmp_path / "run.zip")
    withheld = [w for w in info.withheld if w.startswith("run/")]
    assert len(withheld) == 2 * run.chunks and all("personal data" in w for w in withheld)
    assert not [n for n in zipfile.ZipFile(tmp_path / "run.zip").namelist() if "/part-" in n]
    assert verify(tmp_path / "run.zip").exit_code == 0


def test_retention_prunes_the_journey_parts_and_the_folder_still_verifies(runs, tmp_path: Path) -> None:
    spec, _, run, folder = runs
    parent = tmp_path / spec.name
    copy = Path(shutil.copytree(folder, parent / "chunked"))
    made = datetime.fromisoformat(json.loads((copy / "results.json").read_text())["generated_at"])
    (pruned,) = prune_logs(parent, audit=spec.name, retention_days=30, now=made + timedelta(days=31))
    parts = tuple(f"journey/part-{i:05d}.parquet" for i in range(run.chunks))
    assert pruned.files == (*parts, "lineage.jsonl")  # in LOG_FILES order: journey.parquet (its parts), lineage
    assert not any((copy / n).exists() for n in pruned.files)
    outcome = verify(copy)
    assert outcome.exit_code == 0, outcome.lines()
    assert sum("pruned on" in n for n in outcome.notes) == 1 + run.chunks


def test_personnummer_case_ids_get_the_same_pseudonyms_in_chunks(tmp_path: Path, monkeypatch) -> None:
    """Ids are pseudonymised id by id, so a chunk that holds none keeps its ids exactly as in memory."""
    monkeypatch.setenv("INSYN_PSEUDONYM_KEY", "a test secret of more than sixteen characters")
    spec_path = _spec_file(tmp_path)
    frame = pd.read_parquet(tmp_path / "cases.parquet")
    planted = [f"19850615-{2300 + i:04d}" for i in range(12)]  # made-up numbers, all in the first chunk
    frame.loc[:11, "case_id"] = planted
    frame.to_parquet(tmp_path / "cases.parquet", index=False, row_group_size=700)
    spec = load_spec(spec_path)
    memory = run_audit(spec, out=tmp_path / "out", run_id="memory")
    _run, folder = run_chunked_audit(spec, out=tmp_path / "out", chunk_size=CHUNK, executor="inprocess",
                                     run_id="chunked")
    mem = pd.read_parquet(Path(memory.run_dir) / "decisions.parquet")
    chunked = pd.concat([pd.read_parquet(p) for p in sorted((folder / "decisions").glob("part-*.parquet"))],
                        ignore_index=True)
    assert mem["case_id"].tolist() == chunked["case_id"].tolist()
    assert mem["case_id"].iloc[:12].str.fullmatch(r"p-[a-z2-7]{20}").all()
    assert mem["case_id"].iloc[12:].tolist() == frame["case_id"].iloc[12:].tolist()  # the others are kept
    assert not any(p in mem["case_id"].tolist() for p in planted)


def test_the_report_counts_cases_from_combinations_as_the_in_memory_run_counts_rows(runs) -> None:
    """The chunked report reads one row per combination of values with its cases counted; its counts are the rows'."""
    spec, memory, _, folder = runs
    md_memory, md_chunked = (memory / "report.md").read_text(), (folder / "report.md").read_text()
    counted = re.compile(r"[\d,]+ of [\d,]+ decided applications")
    assert counted.findall(md_chunked) == counted.findall(md_memory) != []  # the scorecard's transparency
    override = re.compile(r"\S+ [\d,]+ of [\d,]+ \(\d+(?:\.\d+)?%\)")
    assert override.findall(md_chunked) == override.findall(md_memory) != []  # overrides per group

    from audit.result import CASES_COLUMN

    result = AuditResult.load(folder)
    decisions = pd.read_parquet(memory / "decisions.parquet")
    compact = report_counts(spec, sorted(str(p) for p in (folder / "decisions").glob("part-*.parquet")))
    assert int(compact[CASES_COLUMN].sum()) == len(decisions) == result.population["rows"]
    # the workers' counts, added as the chunks came, are the counts read back from the parts
    keys = [c for c in compact.columns if c != CASES_COLUMN]
    from_workers = report_frame(runs[2].report_counts)
    pd.testing.assert_frame_equal(
        from_workers.astype({c: object for c in keys}).sort_values(keys).reset_index(drop=True),
        compact.astype({c: object for c in keys}).sort_values(keys).reset_index(drop=True))
    assert len(compact) < len(decisions) / 3  # combinations, not cases
    by_group = compact.groupby(["sex", "override"], observed=True)[CASES_COLUMN].sum()
    expected = decisions.groupby(["sex", "override"]).size()
    pd.testing.assert_series_equal(by_group.astype("int64"), expected.astype("int64"), check_names=False,
                                   check_index_type=False, check_categorical=False)


def test_a_result_loads_without_its_decisions_for_a_summary(runs) -> None:
    """`insyn run` prints a chunked run's summary from results.json alone: the parts are not read."""
    _, _, _, folder = runs
    full, summary = AuditResult.load(folder), AuditResult.load(folder, decisions=False)
    assert summary.decisions is None and full.decisions is not None and len(full.decisions) == N
    assert summary.findings == full.findings and summary.exit_code == full.exit_code
    pd.testing.assert_frame_equal(summary.largest_disparities(5), full.largest_disparities(5))
