"""CSV and Excel sources in chunks: every chunk typed as the whole file is typed in memory, and the same metrics.

A file's columns are read as text and typed by what all their cells look
like. A chunk that sees only numbers in a column that turns out to be text
further down would type it otherwise; :func:`audit.population.iter_table`
sums the evidence of every part before typing any. Checked here against the
in-memory reader (:func:`audit.population.read_table`) for chunk sizes that
cut the file in many places, for a Swedish CSV export (``;``, decimal comma,
cp1252) and an Excel workbook, and end to end: a chunked run of each source
gives the in-memory run's metric table.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from audit.audit import run_audit
from audit.chunked import run_chunked_audit
from audit.exceptions import DataError
from audit.population import iter_table, read_table
from audit.spec import load_spec
from audit.synth import generate, load_population_spec

ROOT = Path(__file__).resolve().parents[1]


def _frame(n: int = 1500) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    f = pd.DataFrame({
        "id": [f"{i:05d}" for i in range(n)],                                   # leading zeros: stays text
        "amount": [f"{x:.2f}".replace(".", ",") for x in rng.normal(1000, 300, n)],  # decimal comma
        "kids": [str(int(x)) for x in rng.integers(0, 4, n)],
        "flag": rng.choice(["true", "false", "TRUE"], n),
        "note": rng.choice(["åter", "ökad hyra", ""], n),
        "late": [str(i) for i in range(n)],
    })
    f.loc[n - 3, "late"] = "okänt"   # only the last rows show that 'late' is text
    f.loc[17, "amount"] = ""          # a blank: a float column, not an integer one
    return f


@pytest.mark.parametrize("chunk", [1, 7, 250, 1499, 5000])
def test_csv_parts_are_typed_as_the_whole_file(tmp_path: Path, chunk: int) -> None:
    path = tmp_path / "export.csv"
    n = 60 if chunk == 1 else 1500  # a part per row: a short file keeps the test quick
    _frame(n).to_csv(path, sep=";", index=False, encoding="cp1252")
    whole, info = read_table(path)
    assert info == {"encoding": "cp1252", "delimiter": ";", "decimal": ","}
    assert str(whole["late"].dtype) == "str" and whole["amount"].dtype == "float64" and whole["flag"].dtype == bool
    parts = list(iter_table(path, chunk))
    assert len(parts) == -(-n // chunk)
    pd.testing.assert_frame_equal(pd.concat(parts), whole)


@pytest.mark.parametrize("chunk", [400, 1500])
def test_excel_parts_are_typed_as_the_whole_sheet(tmp_path: Path, chunk: int) -> None:
    path = tmp_path / "export.xlsx"
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"x": [1]}).to_excel(xl, sheet_name="Info", index=False)
        _frame().to_excel(xl, sheet_name="Beslut", index=False)
    whole, info = read_table(path, sheet="Beslut")
    parts = list(iter_table(path, chunk, sheet="Beslut"))
    pd.testing.assert_frame_equal(pd.concat(parts), whole)
    with pytest.raises(DataError, match="no sheet named 'Nope'. Sheets: 'Info', 'Beslut'"):
        next(iter_table(path, chunk, sheet="Nope"))


def test_a_repeated_header_and_an_unknown_suffix_are_refused(tmp_path: Path) -> None:
    (tmp_path / "dup.csv").write_text("a,b,a\n1,2,3\n", encoding="utf-8")
    with pytest.raises(DataError, match="'a' appears twice"):
        next(iter_table(tmp_path / "dup.csv", 10))
    (tmp_path / "x.json").write_text("{}", encoding="utf-8")
    with pytest.raises(DataError, match=r"x.json: unknown file type '.json' for reading in parts"):
        next(iter_table(tmp_path / "x.json", 10))


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_chunked_run_of_a_file_gives_the_in_memory_metrics(tmp_path: Path, suffix: str) -> None:
    frame = generate(load_population_spec(ROOT / "datasets/sweden/population-2026.yaml"), n=1200, seed=5)
    frame.attrs = {}
    source = tmp_path / f"cases{suffix}"
    if suffix == ".csv":
        frame.to_csv(source, sep=";", decimal=",", index=False)
    else:
        frame.to_excel(source, index=False)
    d = yaml.safe_load((ROOT / "examples/demo.yaml").read_text())
    d["population"] = {"file": str(source), "derive": d["population"]["derive"]}
    d["engine"]["path"] = str(ROOT / "examples/engines/municipal-rpa.yaml")
    for cfg in d["checks"].values():
        cfg["suites"] = [str((ROOT / "examples" / s).resolve()) for s in cfg["suites"]]
    d["report"] = {"formats": ["json"]}
    shutil.copytree(ROOT / "examples/engines", tmp_path / "engines", dirs_exist_ok=True)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(d))
    spec = load_spec(tmp_path / "spec.yaml")
    memory = Path(run_audit(spec, out=tmp_path / "out", run_id="memory").run_dir)
    run, folder = run_chunked_audit(spec, out=tmp_path / "out", chunk_size=500, executor="inprocess",
                                    run_id="chunked")
    assert run.chunks == 3
    assert (folder / "metrics.csv").read_bytes() == (memory / "metrics.csv").read_bytes()
    parts = pd.concat([pd.read_parquet(p) for p in sorted((folder / "decisions").glob("part-*.parquet"))],
                      ignore_index=True)
    pd.testing.assert_frame_equal(parts, pd.read_parquet(memory / "decisions.parquet"))


def _csv_spec(tmp_path: Path, frame: pd.DataFrame) -> object:
    source = tmp_path / "cases.csv"
    frame.to_csv(source, index=False)
    d = yaml.safe_load((ROOT / "examples/demo.yaml").read_text())
    d["population"] = {"file": str(source), "derive": d["population"]["derive"]}
    d["engine"]["path"] = str(ROOT / "examples/engines/municipal-rpa.yaml")
    d["checks"] = {}
    d["review"] = None
    d["report"] = {"formats": ["json"]}
    d["statistics"]["bootstrap"] = 0
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({k: v for k, v in d.items() if v is not None}))
    return load_spec(tmp_path / "spec.yaml")


def test_a_case_id_in_two_chunks_is_refused_by_name(tmp_path: Path) -> None:
    frame = generate(load_population_spec(ROOT / "datasets/sweden/population-2026.yaml"), n=900, seed=5)
    frame.attrs = {}
    frame.loc[850, "case_id"] = frame.loc[10, "case_id"]  # chunk 2 repeats a case of chunk 0
    spec = _csv_spec(tmp_path, frame)
    with pytest.raises(DataError) as err:
        run_chunked_audit(spec, out=tmp_path / "out", chunk_size=400, executor="inprocess")
    text = str(err.value)
    assert "case_id must be unique over the whole run" in text
    assert f"{frame.loc[10, 'case_id']!r} in chunks 0, 2" in text and "1 case id(s)" in text
    from audit.execution import run_chunked

    with pytest.raises(DataError, match="this run wrote no parts to compare the ids"):  # hashes alone: still refused
        run_chunked(spec, chunk_size=400, executor="inprocess")


def test_different_case_ids_that_share_a_hash_are_not_a_duplicate(tmp_path: Path, monkeypatch) -> None:
    """The whole-run check compares 64-bit hashes; ids whose hashes collide are compared as text."""
    from audit.execution import _chunked

    frame = generate(load_population_spec(ROOT / "datasets/sweden/population-2026.yaml"), n=900, seed=5)
    frame.attrs = {}
    spec = _csv_spec(tmp_path, frame)
    weak = lambda ids: (ids.astype("str").str.len().to_numpy() % 3).astype(np.uint64)  # noqa: E731 - few values
    monkeypatch.setattr(_chunked, "_hashes", weak)
    run, _folder = run_chunked_audit(spec, out=tmp_path / "out", chunk_size=400, executor="inprocess")
    assert run.chunks == 3 and sum(run.status_counts.values()) == 900


def test_a_repeated_hash_whose_ids_cannot_be_read_back_is_still_refused(tmp_path: Path, monkeypatch) -> None:
    """Parts hold ids after the privacy gate; an id the gate changed cannot clear a repeated hash."""
    from audit.execution import _chunked

    frame = generate(load_population_spec(ROOT / "datasets/sweden/population-2026.yaml"), n=900, seed=5)
    frame.attrs = {}
    frame.loc[850, "case_id"] = frame.loc[10, "case_id"]
    spec = _csv_spec(tmp_path, frame)
    gate = _chunked.mask_frame

    def rewriting_gate(final: pd.DataFrame) -> pd.DataFrame:  # as if every id had been masked, each differently
        out = gate(final)
        return out.assign(case_id=out["case_id"] + "-" + pd.Series(range(len(out)), index=out.index).astype("str"))

    monkeypatch.setattr(_chunked, "mask_frame", rewriting_gate)
    with pytest.raises(DataError, match="the ids could not be compared in the parts"):
        run_chunked_audit(spec, out=tmp_path / "out", chunk_size=400, executor="inprocess")


def test_an_empty_file_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    """A Parquet file with a header and no rows yields no chunk: a DataError says so (it was an IndexError)."""
    frame = generate(load_population_spec(ROOT / "datasets/sweden/population-2026.yaml"), n=10, seed=5)
    frame.attrs = {}
    spec = _csv_spec(tmp_path, frame)
    frame.head(0).to_parquet(tmp_path / "empty.parquet", index=False)
    spec = spec.with_options(population={"file": str(tmp_path / "empty.parquet"),
                                         "derive": spec.to_dict()["population"]["derive"]})
    with pytest.raises(DataError, match="the population has no cases to run in chunks. Expected at least one row"):
        run_chunked_audit(spec, out=tmp_path / "out", chunk_size=400, executor="inprocess")
    assert not any((tmp_path / "out").rglob("results.json"))  # no half-written folder
