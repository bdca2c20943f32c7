"""The privacy gate, keyed pseudonyms, CSV injection, stale run folders and small-cell disclosure control.

Personnummer-shaped strings are built at run time; they are made-up numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from audit._privacy import (
    MASK,
    GatedStream,
    mask,
    mask_frame,
    mask_table,
    mask_value,
    neutralise_csv_cell,
    pseudonym_key,
    pseudonymise,
)
from audit.exceptions import DataError
from audit.metrics._table import secondary_suppression
from audit.record import clean_stale

ROOT = Path(__file__).resolve().parents[1]


def pnr(century: bool = True, sep: str = "-", day: int = 15) -> str:
    return f"{'19' if century else ''}8506{day:02d}{sep}2387"


@pytest.mark.parametrize("text", [pnr(), pnr(sep=""), pnr(False), pnr(False, ""), pnr(False, "+"), pnr(day=75),
                                  pnr(False, "-", 61)])
def test_every_written_form_is_masked(text: str) -> None:
    assert mask(f"see {text}.") == f"see {MASK}."
    assert mask(text) == MASK


@pytest.mark.parametrize("text", [
    "0.8506152387",                       # the fraction of a decimal number
    "8506152387123",                      # inside a longer number
    hashlib.sha256(b"x").hexdigest(),     # a file hash in the manifest
    "a3f8506152387c0de11aa2b3c4d5e6f7",   # a hex digest with a number-shaped run
    "20261207T003607746Z-03bb9bbc",       # a run id
    "198513152387",                       # month 13
    "198506322387",                       # day 32
])
def test_what_is_not_a_personnummer_passes(text: str) -> None:
    assert mask(text) == text


def test_mask_value_walks_keys_and_values() -> None:
    data = {"a": [pnr(), {pnr(False): 1.5}], "b": (pnr(sep=""),), "n": 3}
    assert mask_value(data) == {"a": [MASK, {MASK: 1.5}], "b": [MASK], "n": 3}


def test_mask_frame_and_table_mask_names_and_cells() -> None:
    frame = pd.DataFrame({f"note {pnr()}": [f"x {pnr(False)}", None], "n": [1, 2],
                          "cat": pd.Categorical([pnr(), "a"])})
    out = mask_frame(frame)
    assert list(out.columns) == [f"note {MASK}", "n", "cat"]
    assert out.iloc[0, 0] == f"x {MASK}" and pd.isna(out.iloc[1, 0]) and out["cat"].tolist() == [MASK, "a"]
    table = mask_table(pa.table({f"c{pnr()}": [pnr(), "b"], "d": pa.array([pnr(), "a"]).dictionary_encode()}))
    assert table.column_names == [f"c{MASK}", "d"]
    assert table.column(0).to_pylist() == [MASK, "b"] and table.column(1).to_pylist() == [MASK, "a"]
    assert pa.types.is_dictionary(table.column(1).type)
    view = mask_table(pa.table({"v": pa.array(["a", f"id {pnr()}", None] * 40, type=pa.string_view()),
                                "w": pa.array([f"{pnr()}"] * 119 + ["b"], type=pa.large_string())}))
    assert view.column(0).to_pylist() == ["a", f"id {MASK}", None] * 40
    assert pa.types.is_string_view(view.column(0).type)
    assert view.column(1).to_pylist() == [MASK] * 119 + ["b"]  # a repeated text, searched once


def test_insyn_errors_are_masked_when_built() -> None:
    err = DataError(f"bad value {pnr()}", failures=pd.DataFrame({"value": [pnr(False)], "case_id": [pnr()]}))
    assert pnr() not in str(err) and MASK in str(err)
    assert err.failures.to_dict("list") == {"value": [MASK], "case_id": [MASK]}


def test_gated_stream_masks_across_writes() -> None:
    target = io.StringIO()
    stream = GatedStream(target)
    number = pnr()
    stream.write("first " + number[:6])
    stream.write(number[6:] + " end\nnext")
    stream.flush()
    assert target.getvalue() == f"first {MASK} end\nnext"


# ---------------------------------------------------------------------------
# keyed pseudonyms


def test_pseudonyms_are_keyed_hmac_and_stable(monkeypatch: pytest.MonkeyPatch) -> None:
    values = pd.Series([pnr(), pnr(False)])
    key = b"k" * 32
    out = pseudonymise(values, key=key)
    again = pseudonymise(values, key=key)
    assert out.tolist() == again.tolist() and out.str.fullmatch(r"p-[a-z2-7]{20}").all()
    other = pseudonymise(values, key=b"q" * 32)
    assert not (out == other).any()
    import base64
    expected = "p-" + base64.b32encode(hmac.new(key, pnr().encode(), hashlib.sha256).digest()).decode()[:20].lower()
    assert out.iloc[0] == expected


def test_key_file_is_created_0600_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INSYN_PSEUDONYM_KEY", raising=False)
    file = tmp_path / "cfg" / "insyn" / "pseudonym.key"
    monkeypatch.setenv("INSYN_PSEUDONYM_KEY_FILE", str(file))
    first = pseudonym_key()
    assert file.is_file() and stat.S_IMODE(file.stat().st_mode) == 0o600
    assert pseudonym_key() == first and len(first) >= 32
    monkeypatch.setenv("INSYN_PSEUDONYM_KEY", "an environment secret of enough length")
    assert pseudonym_key() == b"an environment secret of enough length"
    monkeypatch.setenv("INSYN_PSEUDONYM_KEY", "short")
    with pytest.raises(ValueError, match="at least 16"):
        pseudonym_key()


def test_artifacts_do_not_let_a_pseudonym_be_reversed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run on personnummer case ids: the key is in no artifact; trying every number of the birth date fails."""
    from audit import load_spec
    from audit.synth import generate

    secret = "test secret that is long enough 0123456789"
    monkeypatch.setenv("INSYN_PSEUDONYM_KEY", secret)
    frame = generate(ROOT / "datasets/sweden/population-2026.yaml", n=30, seed=3)
    frame["case_id"] = [f"19850615-{1000 + i:04d}" for i in range(len(frame))]
    frame.to_csv(tmp_path / "log.csv", index=False)
    (tmp_path / "spec.yaml").write_text(
        "name: pseud\npopulation: {file: log.csv}\nsensitive_features: [sex]\nengine: {kind: reference}\n"
        "statistics: {bootstrap: 0}\n", encoding="utf-8")
    result = load_spec(tmp_path / "spec.yaml").run(out=tmp_path / "out")
    run = Path(result.run_dir)
    ids = pd.read_parquet(run / "decisions.parquet")["case_id"].tolist()
    assert all(i.startswith("p-") for i in ids)
    blob = b"".join(p.read_bytes() for p in run.iterdir())
    assert secret.encode() not in blob
    manifest = json.loads((run / "manifest.json").read_text())
    # an attacker with the artifacts: every key-like string in the manifest plus the old fixed-prefix scheme
    candidates = [f"19850615-{k:04d}" for k in range(10000)] + [f"850615-{k:04d}" for k in range(10000)]
    guesses = {"insyn|log.csv", str(tmp_path / "log.csv"), "log.csv", json.dumps(manifest["inputs"]), ""}
    recovered = 0
    targets = set(ids)
    for guess in guesses:
        for c in candidates:
            h = hashlib.sha256(f"{guess}|{c}".encode()).hexdigest()[:16]
            if "p-" + h in targets:
                recovered += 1
            b = b"p-" + __import__("base64").b32encode(
                hmac.new(guess.encode(), c.encode(), hashlib.sha256).digest())[:20].lower()
            if b.decode() in targets:
                recovered += 1
    assert recovered == 0
    # with the key, the owner can follow a case (the same pseudonym in every run)
    assert pseudonymise(pd.Series(["19850615-1000"]), key=secret.encode()).iloc[0] in targets


# ---------------------------------------------------------------------------
# CSV formula injection


@pytest.mark.parametrize(("cell", "expected"), [
    ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"),
    ("+cmd", "'+cmd"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("-0.25", "-0.25"), ("+3", "+3"), ("-1e-05", "-1e-05"), ("-inf", "-inf"), ("female", "female"), (0.5, 0.5),
])
def test_csv_cells_are_defused_but_numbers_kept(cell: object, expected: object) -> None:
    assert neutralise_csv_cell(cell) == expected


def test_trend_csv_is_defused(tmp_path: Path) -> None:
    from audit.report import write_trend

    frame = pd.DataFrame({"audit": ["a"], "period": ["2026-01"], "metric": ["grant_rate"], "attributes": ["team"],
                          "group": ["=cmd|' /C calc'!A0"], "value": [-0.5], "alert": [""]})
    write_trend(frame, csv_path=tmp_path / "t.csv")
    back = pd.read_csv(tmp_path / "t.csv", dtype=str)
    assert back.loc[0, "group"].startswith("'=") and back.loc[0, "value"] == "-0.5"


# ---------------------------------------------------------------------------
# stale temporary run folders


def test_stale_temporary_folders_of_killed_runs_are_removed(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a process id that no longer exists
    import socket
    dead = tmp_path / ".20260101T000000000Z-aaaa.x1"
    dead.mkdir()
    (dead / ".insyn-writing").write_text(f"{socket.gethostname()} {proc.pid}\n")
    alive = tmp_path / ".20260101T000000000Z-bbbb.x2"
    alive.mkdir()
    (alive / ".insyn-writing").write_text(f"{socket.gethostname()} {os.getpid()}\n")
    old = tmp_path / ".20250101T000000000Z-cccc.x3"
    old.mkdir()
    os.utime(old, (1, 1))
    finished = tmp_path / "20260101T000000000Z-dddd"
    finished.mkdir()
    removed = clean_stale(tmp_path)
    assert sorted(p.name for p in removed) == sorted([dead.name, old.name])
    assert alive.is_dir() and finished.is_dir() and not dead.exists() and not old.exists()


# ---------------------------------------------------------------------------
# small-cell disclosure control


@pytest.mark.parametrize(("sizes", "hidden", "expected"), [
    ([3, 200], [True, False], [True, True]),                     # two groups: the other is withheld too
    ([3, 200, 150], [True, False, False], [True, False, True]),  # the smallest other group
    ([4, 5, 300], [True, True, False], [True, True, True]),      # two hidden holding 9 < 10: one more
    ([6, 7, 300, 400], [True, True, False, False], [True, True, False, False]),  # 13 >= 10: enough
    ([50, 60], [False, False], [False, False]),                  # nothing hidden, nothing withheld
])
def test_secondary_suppression(sizes: list[int], hidden: list[bool], expected: list[bool]) -> None:
    assert secondary_suppression(np.array(sizes), np.array(hidden), 10).tolist() == expected


def test_a_suppressed_count_cannot_be_recovered_from_the_metrics() -> None:
    from audit.metrics import measure

    rng = np.random.default_rng(4)
    n = 400
    outcome = rng.choice(["grant", "deny", "refer"], n)
    df = pd.DataFrame({
        "case_id": [f"c{i}" for i in range(n)],
        "team": np.where(np.arange(n) < 7, "tiny", np.where(np.arange(n) < 150, "mid", "big")),
        "status": "ok", "outcome": outcome, "final_outcome": outcome,
        "amount": np.where(outcome == "grant", 100.0, np.nan),
    })
    df["final_amount"] = df["amount"]
    table = measure(df, sensitive_features=["team"], metrics=["n", "grant_rate"])
    team = table[table["attributes"].map(lambda a: list(a) == ["team"])]
    tiny = team[team["group"] == "tiny"]
    assert tiny["suppressed"].all() and tiny["n"].isna().all() and tiny["value"].isna().all()
    assert not tiny["reason"].str.contains("7").any()
    mid = team[team["group"] == "mid"]
    assert mid["n"].isna().all()  # the counts of the complementary group are withheld ...
    assert mid.loc[mid["metric"] == "n", "value"].isna().all()
    assert mid.loc[mid["metric"] == "grant_rate", "value"].notna().all()  # ... its rate stays shown
    assert mid["reason"].str.contains("secondary suppression").all()
    # what the table publishes: the overall count and the big group's; their difference is tiny + mid = 150
    overall = table[table["attributes"].map(len) == 0]
    shown = team.loc[team["metric"] == "n", "value"].dropna().sum()
    assert overall.loc[overall["metric"] == "n", "value"].iloc[0] - shown == 150


def test_a_random_uuid_that_starts_like_a_date_is_no_personnummer() -> None:
    """great-expectations' expectation ids are random UUIDs; one in a few thousand begins YYYYMMDD-NNNN."""
    import uuid

    from audit._privacy import MASK, mask

    ids = ["19850312-1234-4abc-9def-0123456789ab", "c7a1e2f0-aaaa-4bbb-8ccc-198503121234"]
    ids += [str(uuid.uuid4()) for _ in range(2000)]
    assert [mask(i) for i in ids] == ids
    assert mask("id 19850312-1234") == f"id {MASK}"  # a personnummer beside nothing UUID-like is masked
    assert MASK in mask("x 19850312-1234-0000-0000-000000000000")  # digits only: not a UUID with a letter


def _texts(rng: np.random.Generator, n: int) -> list[str | None]:
    """Texts of every kind the fast search must tell apart: short, long, repeated, non-ASCII digits, nulls."""
    pool = ["", "a", "c000123", "c0000001234", "grant", "reason: income above the norm", pnr(), f"x {pnr(False, '')} y",
            f"{pnr()}0", f"1{pnr(False)}", "850615-238", "ålder 85０615-2387", "850615-2387 åå", "١٩850615-2387",
            "19850615\u20132387", f"id {pnr(day=75)}", None]
    out: list[str | None] = []
    for _ in range(n):
        k = rng.integers(0, 4)
        if k == 0:  # a fresh random text of digits and separators, sometimes a personnummer by chance
            out.append("".join(rng.choice(list("0123456789-+ a"), size=int(rng.integers(0, 16)))))
        else:
            out.append(pool[int(rng.integers(0, len(pool)))])
    return out


@pytest.mark.parametrize("seed", range(6))
def test_arrow_search_finds_exactly_what_the_python_pattern_finds(seed: int) -> None:
    """``arrow_pnr_rows`` against ``PNR_PATTERN.search`` text by text, for every array layout it is given."""
    from audit._privacy import PNR_PATTERN, arrow_pnr_rows, pnr_rows

    rng = np.random.default_rng(seed)
    texts = _texts(rng, int(rng.integers(1, 3000)))
    expected = np.array([t is not None and PNR_PATTERN.search(t) is not None for t in texts])
    assert expected.any() and not expected.all()
    cut = len(texts) // 3
    layouts = {
        "string": pa.array(texts, type=pa.string()),
        "large_string": pa.array(texts, type=pa.large_string()),
        "chunked": pa.chunked_array([pa.array(texts[:cut]), pa.array(texts[cut:])], type=pa.string()),
        "sliced": pa.array(["x" * 12, *texts, pnr()], type=pa.large_string()).slice(1, len(texts)),
        "string_view": pa.array(texts, type=pa.string_view()),
    }
    whole = pa.array(texts, type=pa.string())
    copy = whole.take(pa.array(np.arange(len(texts))))  # the same texts in other buffers
    # the same array again (a journey's ids step after step), slices of it, a copy and an empty chunk
    # and two slices of one length that start at different texts (without nulls, which would tell them apart)
    known = [t for t in texts if t is not None]
    m = len(known) - 1
    full = pa.array(known, type=pa.string())
    repeated = pa.chunked_array([whole, whole.slice(cut), whole, copy, whole.slice(0, 0), whole.slice(cut),
                                 full.slice(0, m), full.slice(1, m)])
    twice = [*texts, *texts[cut:], *texts, *texts, *texts[cut:], *known[:m], *known[1:]]
    got = arrow_pnr_rows(repeated)
    assert got.tolist() == [t is not None and PNR_PATTERN.search(t) is not None for t in twice]
    for name, array in layouts.items():
        got = arrow_pnr_rows(array)
        assert got.tolist() == expected.tolist(), name
    assert pnr_rows(pd.Series(texts, dtype="str")).tolist() == expected.tolist()


def test_texts_searched_before_are_not_searched_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same texts in the same memory are searched once; other offsets over that memory are searched afresh."""
    import pyarrow.compute as pc

    from audit._privacy import PNR_PATTERN, arrow_pnr_rows

    searched: list[int] = []
    regex = pc.match_substring_regex

    def counting(values, *args, **kwargs):
        searched.append(len(values))
        return regex(values, *args, **kwargs)

    monkeypatch.setattr(pc, "match_substring_regex", counting)

    def expected(texts: list[str]) -> list[bool]:
        return [PNR_PATTERN.search(t) is not None for t in texts]

    rng = np.random.default_rng(11)
    texts = [f"case-{i:09d}" if i % 7 else pnr() for i in range(6000)]  # distinct, long: searched by regex
    rng.shuffle(texts)
    ids = pa.array(texts, type=pa.large_string())
    first = arrow_pnr_rows(ids)
    assert first.tolist() == expected(texts) and searched == [6000]
    first[:] = True  # what a caller does with its flags does not reach what is remembered
    assert arrow_pnr_rows(pa.chunked_array([ids, ids])).tolist() == expected(texts) * 2
    assert arrow_pnr_rows(ids.cast(pa.string())).tolist() == expected(texts)  # int32 offsets, the same data buffer
    assert searched == [6000]
    # the same data buffer and length, but other texts in it (offsets moved by one text): searched afresh
    m = len(texts) - 1
    head = ids.slice(0, m)
    assert arrow_pnr_rows(head).tolist() == expected(texts[:m])
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int64)[1:].copy()
    tail = pa.LargeStringArray.from_buffers(m, pa.py_buffer(offsets), ids.buffers()[2])
    assert tail.buffers()[2].address == head.buffers()[2].address
    assert arrow_pnr_rows(tail).tolist() == expected(texts[1:])
    assert searched == [6000, m, m]
    # a copy of the texts in other memory is searched again
    assert arrow_pnr_rows(pa.array(texts, type=pa.large_string())).tolist() == expected(texts)
    assert searched[-1] == 6000 and len(searched) == 4
    # what is remembered keeps at most 64 MiB alive: after more than that, the first texts are searched again
    width, k = 20, 600_000
    for j in range(8):  # 8 arrays of 12 MB of distinct 20-letter texts
        data = pa.py_buffer(np.frombuffer(f"{j:02d}".encode() * (width * k // 2), dtype=np.uint8).copy())
        flood = pa.LargeStringArray.from_buffers(k, pa.py_buffer(np.arange(0, width * k + 1, width)), data)
        assert not arrow_pnr_rows(flood).any()
    before = len(searched)
    assert arrow_pnr_rows(ids).tolist() == expected(texts)
    assert len(searched) == before + 1


def _json_like(rng: np.random.Generator, depth: int = 0) -> object:
    """A random JSON-like value whose strings, keys and numbers sometimes hold a personnummer, in many guises."""
    texts = ["", "grant", "case c00017", "0.8506152387", "x" * 12, "C:\\users\\8506152387", "ålder ٣ år",
             pnr(), f"see {pnr(False)}.", f"\x01{pnr(False, '')[1:]}", f"\x01{pnr(False, '')}", "\t" + pnr(sep=""),
             "١٩٨٥٠٦١٥-٢٣٨٧", "a3f8506152387c0de11aa2b3c4d5e6f7", "20261207T003607746Z-03bb9bbc", "\u2028" + pnr()]
    kind = rng.integers(0, 8 if depth < 3 else 4)
    if kind == 0:
        return str(rng.choice(texts))
    if kind == 1:
        return int(rng.choice([0, 17, 198506152387, 8506152387, -3]))
    if kind == 2:
        return float(rng.choice([0.5, 8506152387.0, float("nan")]))
    if kind == 3:
        return None if rng.random() < 0.5 else bool(rng.random() < 0.5)
    if kind in (4, 5):
        return {str(rng.choice(texts)) if rng.random() < 0.8 else int(rng.integers(0, 10**12)): _json_like(rng, depth + 1)
                for _ in range(rng.integers(0, 4))}
    items = [_json_like(rng, depth + 1) for _ in range(rng.integers(0, 4))]
    return tuple(items) if kind == 6 else items


@pytest.mark.parametrize("seed", range(40))
def test_masked_json_is_the_json_of_the_masked_value(seed: int) -> None:
    """masked_json skips the walk only where it changes nothing: the same text as dumping mask_value's copy."""
    from audit._privacy import masked_json, may_hold_personnummer

    rng = np.random.default_rng(seed)
    for _ in range(25):
        value = _json_like(rng)
        for options in ({}, {"indent": 2}, {"sort_keys": True}):
            try:
                expected = json.dumps(mask_value(value), ensure_ascii=False, **options)
            except TypeError:  # sort_keys over keys of two types: both refuse
                with pytest.raises(TypeError):
                    masked_json(value, **options)
                continue
            assert masked_json(value, **options) == expected
        if json.dumps(mask_value(value), ensure_ascii=False) != json.dumps(value, ensure_ascii=False):
            assert may_hold_personnummer(value)  # whatever the gate changes, the search sees


def test_a_personnummer_after_an_escaped_control_character_is_not_missed() -> None:
    """\\x01 is written as \\u0001 in JSON, whose last digit would join a number after it: such text is searched."""
    from audit._privacy import masked_json, may_hold_personnummer

    value = {"note": "\x01" + "8506152387"}
    assert may_hold_personnummer(value)
    assert masked_json(value) == json.dumps({"note": "\x01" + MASK}, ensure_ascii=False)
    assert not may_hold_personnummer({"note": "grant", "n": 17, "x": [0.5, None, True]})
    assert may_hold_personnummer({"n": 198506152387})  # a number that reads as one: searched (the tree masks it)
    assert may_hold_personnummer({198506152387: "key"})
    assert masked_json({"x": float("nan")}) == '{"x": NaN}'
    with pytest.raises(ValueError):
        masked_json({"x": float("nan")}, allow_nan=False)
