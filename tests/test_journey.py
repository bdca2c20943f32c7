"""Data journeys (audit.journey): steps, row accounting, per-case lineage, provenance, OpenLineage, trace.

Every expected value here is worked out by hand in the test (the frames are
small) or computed by an independent reference: ``pd.util.hash_pandas_object``
for row hashes, the OpenLineage JSON schemas for events and facets, a real
HTTP server for delivery.
"""

from __future__ import annotations

import json
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import audit.journey as journey_module
from audit.exceptions import DataError, SpecError
from audit.journey import (
    ACTORS,
    CASE_STATUSES,
    CASES_COLUMNS,
    Journey,
    LineageWarning,
    trace,
    validate_actor,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lineage_receiver import LineageReceiver, SilentServer, closed_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


# --------------------------------------------------------------------------
# helpers


def _hash(frame: pd.DataFrame) -> pd.Series:
    """Reference row hashes by case_id: pandas' own function on the whole frame."""
    return pd.Series(
        pd.util.hash_pandas_object(frame, index=False).to_numpy(),
        index=frame["case_id"].astype("str").to_numpy(),
    )


def _rows(j: Journey, step: str) -> pd.DataFrame:
    f = j.cases_frame()
    return f[f["step"] == step].set_index("case_id")


def _cases() -> pd.DataFrame:
    """Four hand-made applications."""
    return pd.DataFrame(
        {
            "case_id": pd.Series(["a", "b", "c", "d"], dtype="str"),
            "sex": pd.Series(["female", "male", "female", "male"], dtype="str"),
            "rent": [5000.0, 6200.0, np.nan, 4100.0],
            "adults": [1, 2, 1, 1],
            "able_to_work": [True, False, True, True],
            "channel": pd.Series(["digital", "paper", "digital", "digital"], dtype="str"),
        }
    )


def _validator(spec: Path, ref: str) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource

    resources = []
    for f in [spec / "OpenLineage.json", *sorted((spec / "facets").glob("*.json"))]:
        doc = json.loads(f.read_text(encoding="utf-8"))
        resources.append((doc["$id"], Resource.from_contents(doc)))
    registry = Registry().with_resources(resources)
    return Draft202012Validator({"$ref": ref}, registry=registry, format_checker=FormatChecker())


def _facets(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = [(f"run.{k}", f) for k, f in (event["run"].get("facets") or {}).items()]
    out += [(f"job.{k}", f) for k, f in (event["job"].get("facets") or {}).items()]
    for side in ("inputs", "outputs"):
        for d in event.get(side) or []:
            for kind in ("facets", "inputFacets", "outputFacets"):
                out += [(f"{side}.{d['name']}.{kind}.{k}", f) for k, f in (d.get(kind) or {}).items()]
    return out


def _pipeline() -> tuple[Journey, dict[str, pd.DataFrame]]:
    """A small run through the usual steps, with a rejection, an engine error and caseworker decisions."""
    cases = _cases()
    j = Journey(
        run_id="20260101T000000000Z-test",
        audit_name="demo",
        provenance={"rent": "applicant", "able_to_work": "caseworker", "sex": "registry:folkbokforing"},
    )
    with j.step("source", actor="system", inputs=["datasets/cases.csv"], outputs=["cases"]) as st:
        st.account(rows_in=4, rows_out=4)
        st.frames(None, cases)
    kept = cases.iloc[[0, 1, 3]].reset_index(drop=True).assign(rent=[5000.0, 6000.0, 4100.0])
    with j.step("intake", actor="system", inputs=["cases"], outputs=["cases"]) as st:
        st.checks(
            [
                {"assertion": "expect_column_values_to_not_be_null", "success": np.bool_(False), "column": "rent",
                 "expected": "0 missing", "actual": np.int64(1), "params": {"mostly": np.float64(1.0)}},
                {"assertion": "expect_column_values_to_be_in_set", "success": True, "column": "channel",
                 "params": {"value_set": ["digital", "paper"]}, "unexpected_count": 0},
            ]
        )
        st.account(rows_in=4, rows_out=3, rejected=pd.Series({"c": "quarantined: rent missing"}))
        st.frames(cases, kept)
    features = ["rent", "adults", "able_to_work", "channel"]
    j.mark_engine_features(features)
    engine_input = kept[["case_id", *features]]
    with j.step("engine_input", actor="system", inputs=["cases"], outputs=["engine_input"]) as st:
        st.account(rows_in=3, rows_out=3)
        st.frames(kept, engine_input)
    decisions = pd.DataFrame(
        {
            "case_id": pd.Series(["b", "a", "d"], dtype="str"),
            "outcome": pd.Series(["refer", "grant", "error"], dtype="str"),
            "amount": [np.nan, 4321.0, np.nan],
            "reasons": pd.Series(["HOUSEHOLD_CHANGE", "", ""], dtype="str"),
            "status": pd.Series(["ok", "ok", "error"], dtype="str"),
            "error_reason": pd.Series(["", "", "registry timeout"], dtype="str"),
        }
    )
    engine = {"name": "municipal-rpa", "version": "2026.1", "definition_hash": "sha256:abc123"}
    with j.step("decision", actor="system", inputs=["engine_input"], outputs=["decisions"], engine=engine) as st:
        st.account(rows_in=3, rows_out=2, errored=pd.Series({"d": "registry timeout"}))
        st.frames(engine_input, decisions, status=decisions["status"], reason=decisions["error_reason"])
        st.note(errors=np.int64(1))
    with j.step("review", actor="caseworker", inputs=["decisions"], outputs=["final"]) as st:
        st.account(rows_in=3, rows_out=3)
        j.record_overrides(
            pd.DataFrame(
                {"case_id": ["b", "a"], "outcome": ["refer", "grant"], "final_outcome": ["deny", "deny"],
                 "override": [False, True], "by": "recorded:caseworker_outcome",
                 "why": ["NO_NEED", "ASSETS_FOUND"]}
            )
        )
    return j, {"cases": cases, "kept": kept, "engine_input": engine_input, "decisions": decisions}


# --------------------------------------------------------------------------
# actors and the public surface


def test_public_api_is_sorted_and_complete() -> None:
    assert journey_module.__all__ == sorted(journey_module.__all__)
    for name in journey_module.__all__:
        assert hasattr(journey_module, name), name
    public = {n for n in dir(journey_module) if not n.startswith("_")} - {"annotations"}
    assert public <= set(journey_module.__all__)


@pytest.mark.parametrize("actor", ["applicant", "caseworker", "system", "registry:skatteverket", "registry:a-kassa.se"])
def test_valid_actors(actor: str) -> None:
    assert validate_actor(actor) == actor


@pytest.mark.parametrize("actor", ["robot", "Registry:csn", "registry:", "registry:CSN", "", None, 3])
def test_invalid_actor_is_a_spec_error_naming_the_value(actor: object) -> None:
    with pytest.raises(SpecError) as err:
        validate_actor(actor, where="provenance.rent")
    assert str(err.value).startswith("provenance.rent must be one of applicant, caseworker, system or registry:<name>")
    assert str(err.value).endswith(f"Got {actor!r}.")
    assert isinstance(err.value, ValueError)


def test_actors_documents_the_four_kinds() -> None:
    assert ACTORS == ("applicant", "caseworker", "registry:<name>", "system")
    assert "ok" in CASE_STATUSES and CASE_STATUSES == tuple(sorted(CASE_STATUSES))


def test_bad_provenance_and_step_actor_are_refused() -> None:
    with pytest.raises(SpecError, match=r"^datasets/x.yaml: rent must be one of .* Got 'landlord'\.$"):
        Journey(run_id="r", audit_name="a").declare_provenance({"rent": "landlord"}, source="datasets/x.yaml")
    with pytest.raises(SpecError, match=r"^provenance: rent must be .*Got 'landlord'\.$"):
        Journey(run_id="r", audit_name="a", provenance={"rent": "landlord"})
    j = Journey(run_id="r", audit_name="a")
    with pytest.raises(SpecError, match=r"step intake: actor must be .*Got 'robot'\."):
        j.step("intake", actor="robot")
    with pytest.raises(ValueError, match=r"step name must be lower-case snake_case.*Got 'Intake Step'"):
        j.step("Intake Step", actor="system")


# --------------------------------------------------------------------------
# steps and row accounting


def test_step_summary_records_actor_rows_columns_checks_engine_and_duration() -> None:
    j, _ = _pipeline()
    steps = {s["name"]: s for s in j.steps}
    assert [s["name"] for s in j.steps] == ["source", "intake", "engine_input", "decision", "review"]
    intake = steps["intake"]
    assert intake["actor"] == "system" and intake["status"] == "ok"
    assert (intake["rows_in"], intake["rows_out"], intake["rows_rejected"], intake["rows_errored"]) == (4, 3, 1, 0)
    assert intake["columns_changed"] == ["rent"] and intake["cases_changed"] == {"rent": 1}
    assert intake["columns_added"] == [] and intake["columns_dropped"] == []
    assert intake["checks"] == {
        "total": 2, "passed": 1, "failed": 1,
        "failed_assertions": [{"assertion": "expect_column_values_to_not_be_null", "column": "rent"}],
    }
    assert steps["engine_input"]["columns_dropped"] == ["sex"]
    decision = steps["decision"]
    assert decision["engine"] == {"name": "municipal-rpa", "version": "2026.1", "definition_hash": "sha256:abc123"}
    assert decision["columns_added"] == ["outcome", "amount", "reasons", "status", "error_reason"]
    assert decision["columns_dropped"] == ["rent", "adults", "able_to_work", "channel"]
    assert (decision["rows_in"], decision["rows_out"], decision["rows_errored"]) == (3, 2, 1)
    assert decision["notes"] == {"errors": 1}
    assert steps["review"]["caseworker"] == {
        "decisions": 2, "overrides": 1, "changed_outcome": 2, "by": {"recorded:caseworker_outcome": 2},
    }
    for s in j.steps:
        assert s["duration_s"] >= 0 and s["ended_at"] >= s["started_at"]
    json.dumps(j.steps)  # JSON-safe: numpy scalars were cast


def test_account_that_does_not_balance_is_a_data_error() -> None:
    j = Journey(run_id="r", audit_name="a")
    with pytest.raises(DataError) as err, j.step("intake", actor="system") as st:
        st.account(rows_in=10, rows_out=8, rejected=pd.Series({"x": "quarantined: rent"}))
    assert str(err.value) == "step intake: cannot account for rows: 10 in != 8 out + 1 rejected + 0 errored"
    assert j.steps[0]["status"] == "failed" and "cannot account" in j.steps[0]["error"]


@pytest.mark.parametrize(
    ("rejected", "errored", "message"),
    [
        (pd.Series({"x": ""}), None, r"every rejected case needs a non-empty reason\. Got none for 1 case\(s\), e\.g\. 'x'"),
        (pd.Series({"x": np.nan}), None, r"every rejected case needs a non-empty reason"),
        (None, pd.Series({"x": "   "}), r"every errored case needs a non-empty reason"),
        (pd.Series(["r1", "r2"], index=["x", "x"]), None, r"rejected lists case id 'x' more than once"),
        (pd.Series({"x": "r"}), pd.Series({"x": "e"}), r"case id 'x' is both rejected and errored"),
        (["x"], None, r"rejected must be a pandas Series indexed by case_id"),
    ],
)
def test_account_checks_reasons(rejected: Any, errored: Any, message: str) -> None:
    j = Journey(run_id="r", audit_name="a")
    n_removed = (0 if rejected is None else len(rejected)) + (0 if errored is None else len(errored))
    with pytest.raises(DataError, match=message), j.step("intake", actor="system") as st:
        st.account(rows_in=5, rows_out=5 - n_removed, rejected=rejected, errored=errored)


def test_account_refuses_non_integer_counts() -> None:
    j = Journey(run_id="r", audit_name="a")
    with pytest.raises(DataError, match=r"step s: rows_in must be an integer >= 0\. Got -1\."), j.step("s", actor="system") as st:
        st.account(rows_in=-1, rows_out=0)
    with pytest.raises(DataError, match=r"rows_out must be an integer >= 0\. Got True\."), j.step("t", actor="system") as st:
        st.account(rows_in=1, rows_out=True)


def test_a_case_that_vanishes_without_a_reason_fails_the_step() -> None:
    cases = _cases()
    j = Journey(run_id="r", audit_name="a")
    with pytest.raises(DataError, match=r"step intake: cannot account for rows: 1 case\(s\) left the frame without being "
                                        r"rejected or errored, e\.g\. 'c'\."):
        with j.step("intake", actor="system") as st:
            st.frames(cases, cases[cases["case_id"] != "c"])
    assert j.steps[0]["status"] == "failed"
    events = j.lineage_events()
    assert [e["eventType"] for e in events] == ["START", "START", "FAIL", "FAIL"]
    assert "cannot account for rows" in events[2]["run"]["facets"]["errorMessage"]["message"]


def test_frames_must_agree_with_the_account() -> None:
    cases = _cases()
    j = Journey(run_id="r", audit_name="a")
    with pytest.raises(DataError, match=r"rows_out is 4 but the after frame has 3 rows, 0 of them rejected or errored "
                                        r"\(expected rows_out 3\)"):
        with j.step("s1", actor="system") as st:
            st.account(rows_in=4, rows_out=4)
            st.frames(cases, cases.iloc[:3])
    with pytest.raises(DataError, match=r"rows_in is 5 but the before frame has 4 rows"):
        with j.step("s2", actor="system") as st:
            st.account(rows_in=5, rows_out=5)
            st.frames(cases, cases)
    with pytest.raises(DataError, match=r"1 case\(s\) in the after frame were not in the before frame, e\.g\. 'z'"):
        with j.step("s3", actor="system") as st:
            st.frames(cases, pd.concat([cases, cases.iloc[[0]].assign(case_id="z")], ignore_index=True))
    with pytest.raises(DataError, match=r"1 case\(s\) left the frame without being rejected or errored, e\.g\. 'd'"):
        with j.step("s4", actor="system") as st:
            st.account(rows_in=4, rows_out=3, rejected=pd.Series({"zz": "gone"}))
            st.frames(cases, cases.iloc[:3])


@pytest.mark.parametrize(
    ("after", "message"),
    [
        (pd.DataFrame({"case_id": ["a", "a"], "x": [1, 2]}), r"after\['case_id'\] holds case id 'a' more than once"),
        (pd.DataFrame({"case_id": ["a", None], "x": [1, 2]}), r"after\['case_id'\] has 1 missing or empty case id\(s\), first at row 1"),
        (pd.DataFrame({"case_id": ["a", ""], "x": [1, 2]}), r"has 1 missing or empty case id\(s\), first at row 1"),
        (pd.DataFrame({"id": ["a"], "x": [1]}), r"the after frame has no id column 'case_id'\. Columns: id, x\."),
    ],
)
def test_bad_case_ids_are_data_errors(after: pd.DataFrame, message: str) -> None:
    j = Journey(run_id="r", audit_name="a")
    with pytest.raises(DataError, match=message), j.step("source", actor="system") as st:
        st.frames(None, after)


def test_integer_column_labels_and_duplicate_columns() -> None:
    frame = pd.DataFrame({"case_id": ["a", "b"], 0: [1.5, 2.5], 1: ["x", "y"]})
    j = Journey(run_id="r", audit_name="a")
    with j.step("s0", actor="system") as st:
        st.frames(None, frame)
    changed = frame.assign(**{"case_id": ["a", "b"]})
    changed[0] = [1.5, 3.5]
    with j.step("s1", actor="system") as st:
        st.frames(frame, changed)
    assert _rows(j, "s1")["row_hash"].astype("uint64").tolist() == _hash(changed).tolist()
    assert _rows(j, "s1")["changed_fields"].to_dict() == {"a": "", "b": "0"}
    with j.step("s1b", actor="system") as st:
        st.frames(changed, changed.drop(columns=[1]).assign(**{"2": 7}))
    assert (j.steps[2]["columns_added"], j.steps[2]["columns_dropped"]) == (["2"], ["1"])
    assert [f["column"] for f in j.field_provenance()] == ["case_id", "0", "1", "2"]
    dup = pd.DataFrame([["a", 1, 2]], columns=["case_id", "x", "x"])
    with pytest.raises(DataError, match=r"the after frame has the column 'x' more than once"):
        with j.step("s2", actor="system") as st:
            st.frames(None, dup)


def test_an_exception_in_a_step_is_recorded_as_fail_and_re_raised() -> None:
    j = Journey(run_id="r", audit_name="a")
    with pytest.raises(ZeroDivisionError), j.step("decision", actor="system", inputs=["engine_input"]):
        _ = 1 / 0
    (step,) = j.steps
    assert step["status"] == "failed" and step["error"] == "division by zero"
    fail = [e for e in j.lineage_events() if e["job"]["name"] == "a.decision"][-1]
    assert fail["eventType"] == "FAIL"
    facet = fail["run"]["facets"]["errorMessage"]
    assert facet["message"] == "ZeroDivisionError: division by zero" and facet["programmingLanguage"] == "PYTHON"
    assert "ZeroDivisionError" in facet["stackTrace"]


def test_steps_do_not_nest_and_names_are_unique() -> None:
    j = Journey(run_id="r", audit_name="a")
    with j.step("one", actor="system"), pytest.raises(RuntimeError, match="Steps do not nest"):
        with j.step("two", actor="system"):
            pass
    with pytest.raises(ValueError, match="step 'one' was already recorded"):
        j.step("one", actor="system")
    st = j.step("three", actor="system")
    with pytest.raises(RuntimeError, match=r"account\(\) must be called inside the step's with block"):
        st.account(rows_in=0, rows_out=0)


# --------------------------------------------------------------------------
# per-case lineage


def test_row_hashes_equal_pandas_hash_of_each_after_frame() -> None:
    j, f = _pipeline()
    for step, frame in (("source", f["cases"]), ("intake", f["kept"]), ("engine_input", f["engine_input"]),
                        ("decision", f["decisions"])):
        rows = _rows(j, step)
        expected = _hash(frame)
        got = rows["row_hash"].reindex(expected.index)
        assert got.astype("uint64").tolist() == expected.tolist(), step
    # a case that left the step keeps the hash of its row before the step
    assert _rows(j, "intake").loc["c", "row_hash"] == _hash(f["cases"])["c"]


@pytest.mark.parametrize("dtype", ["str", "string", pd.StringDtype("python")])
@pytest.mark.parametrize("kind", ["ids", "labels", "ids with gaps", "labels after ids", "short", "labels with gaps",
                                  "all missing", "empty"])
def test_column_hash_equals_pandas_hash_for_ids_and_labels(kind: str, dtype) -> None:
    """A text column is hashed value by value when its first values are ids, by distinct value otherwise:
    the hashes are pandas' in every case (ids, labels, missing values, a column whose ids come late)."""
    from audit._arrays import PROBE as _PROBE
    from audit.journey._frames import column_hash

    n = 3 * _PROBE
    ids = [f"c00001-{i}" for i in range(n)]
    labels = ["female", "male", "x"] * _PROBE
    values = {"ids": ids, "labels": labels, "ids with gaps": [None if i % 7 == 0 else v for i, v in enumerate(ids)],
              "labels after ids": labels[:_PROBE] + ids[_PROBE:], "short": ids[:10],
              "labels with gaps": [None if i % 5 == 0 else v for i, v in enumerate(labels)],
              "all missing": [None] * 20, "empty": []}[kind]
    col = pd.Series(values, dtype=dtype)
    expected = pd.util.hash_pandas_object(col.astype(object), index=False).to_numpy()
    assert column_hash(col).tolist() == expected.tolist()
    assert column_hash(col).tolist() == expected.tolist()  # again, with the column's codes remembered


def test_row_hashes_survive_copy_on_write_reuse_reordering_and_in_place_edits() -> None:
    """Hashes come partly from a cache keyed by column buffers: check every path against pandas."""
    rng = np.random.default_rng(7)
    n = 500
    base = pd.DataFrame(
        {
            "case_id": pd.Series([f"k{i:04d}" for i in range(n)], dtype="str"),
            "x": rng.normal(size=n),
            "y": rng.integers(0, 5, n),
            "s": pd.Series(rng.choice(["p", "q", "r"], n), dtype="str"),
            "b": rng.random(n) < 0.5,
        }
    )
    j = Journey(run_id="r", audit_name="a")
    frames = {}
    with j.step("s0", actor="system") as st:
        st.frames(None, base)
        frames["s0"] = base.copy()
    same = base.assign(z=1.5)  # shares buffers with base
    with j.step("s1", actor="system") as st:
        st.frames(base, same)
        frames["s1"] = same.copy()
    shuffled = same.sample(frac=1.0, random_state=3).reset_index(drop=True)
    with j.step("s2", actor="system") as st:
        st.frames(same, shuffled)
        frames["s2"] = shuffled.copy()
    edited = shuffled.copy(deep=False)
    edited.loc[edited.index[:10], "x"] = -0.0  # an in-place write after the snapshot: copy-on-write
    edited.loc[edited.index[10:20], "s"] = "changed"
    with j.step("s3", actor="system") as st:
        st.frames(shuffled, edited)
        frames["s3"] = edited.copy()
    removed = edited["case_id"].iloc[[5, 50, 400]]
    subset = edited[~edited["case_id"].isin(removed)].reset_index(drop=True)
    with j.step("s4", actor="system") as st:
        st.account(rows_in=n, rows_out=n - 3, rejected=pd.Series("dropped", index=removed.to_numpy()))
        st.frames(edited, subset)
        frames["s4"] = subset.copy()
    rebuilt = pd.DataFrame({c: subset[c].to_numpy().copy() for c in subset.columns}).astype({"case_id": "str", "s": "str"})
    with j.step("s5", actor="system") as st:
        st.frames(None, rebuilt)
        frames["s5"] = rebuilt.copy()
    for step, frame in frames.items():
        got = _rows(j, step)["row_hash"].reindex(frame["case_id"].to_numpy()).astype("uint64").to_numpy()
        assert (got == _hash(frame).to_numpy()).all(), step
    s3 = _rows(j, "s3")
    assert (s3["changed_fields"] != "").sum() == 20
    assert j.steps[3]["cases_changed"] == {"x": 10, "s": 10}


def test_changed_fields_and_values_against_a_hand_built_before_and_after() -> None:
    before = pd.DataFrame(
        {
            "case_id": pd.Series(["a", "b", "c", "d"], dtype="str"),
            "rent": [5000.0, np.nan, np.nan, 4100.0],
            "adults": [1, 2, 1, 1],
            "able_to_work": [True, False, True, True],
            "note": pd.Series(['say "hi"', "x", "y", "z"], dtype="str"),
            "old": [1, 2, 3, 4],
        }
    )
    # rows reordered, c rejected; rent: a changed, b NaN -> NaN (no change), d NaN? no: d changed to NaN
    after = pd.DataFrame(
        {
            "case_id": pd.Series(["d", "b", "a"], dtype="str"),
            "rent": [np.nan, np.nan, 5100.0],
            "adults": [1.0, 2.0, 2.0],  # int -> float: retyped; a changed 1 -> 2
            "able_to_work": [True, True, True],  # b changed False -> True
            "note": pd.Series(["z", "x", 'say "bye"\n'], dtype="str"),  # a changed, needs JSON escaping
            "new": [1, 2, 3],
        }
    )
    j = Journey(run_id="r", audit_name="a")
    with j.step("s0", actor="system") as st:
        st.frames(None, before)
    with j.step("intake", actor="caseworker") as st:
        st.account(rows_in=4, rows_out=3, rejected=pd.Series({"c": "moved away"}))
        st.frames(before, after)
    rows = _rows(j, "intake")
    assert rows.loc["a", "changed_fields"] == "rent;adults;note"
    assert rows.loc["b", "changed_fields"] == "able_to_work"
    assert rows.loc["d", "changed_fields"] == "rent"
    assert rows.loc["c", "changed_fields"] == "" and rows.loc["c", "status"] == "rejected"
    assert rows.loc["c", "reason"] == "moved away"
    assert json.loads(rows.loc["a", "values"]) == {"rent": [5000, 5100], "adults": [1, 2], "note": ['say "hi"', 'say "bye"\n']}
    assert json.loads(rows.loc["b", "values"]) == {"able_to_work": [False, True]}
    assert json.loads(rows.loc["d", "values"]) == {"rent": [4100, None]}
    assert pd.isna(rows.loc["c", "values"])
    assert set(rows["actor"]) == {"caseworker"}
    step = j.steps[1]
    assert step["columns_added"] == ["new"] and step["columns_dropped"] == ["old"]
    assert step["columns_changed"] == ["rent", "adults", "able_to_work", "note"]
    assert step["columns_retyped"] == ["adults"]
    assert step["cases_changed"] == {"rent": 2, "adults": 1, "able_to_work": 1, "note": 1}


def test_status_and_reason_by_row_or_by_case_id() -> None:
    cases = _cases()
    j = Journey(run_id="r", audit_name="a")
    with j.step("s0", actor="system") as st:
        st.frames(None, cases, status=pd.Series({"b": "flagged"}), reason=pd.Series({"b": "paper application"}))
    with j.step("s1", actor="system") as st:
        st.frames(cases, cases, status=pd.Series(["ok", "ok", "referred", "ok"]),
                  reason=pd.Series(["", None, "NEW_APPLICATION", ""]))
    s0, s1 = _rows(j, "s0"), _rows(j, "s1")
    assert s0["status"].to_dict() == {"a": "ok", "b": "flagged", "c": "ok", "d": "ok"}
    assert s0["reason"].to_dict() == {"a": "", "b": "paper application", "c": "", "d": ""}
    assert s1["status"].to_dict() == {"a": "ok", "b": "ok", "c": "referred", "d": "ok"}
    assert s1["reason"].to_dict() == {"a": "", "b": "", "c": "NEW_APPLICATION", "d": ""}
    with pytest.raises(DataError, match=r"status must be one of .*Got 'maybe' for case id 'c'\."), j.step("s2", actor="system") as st:
        st.frames(cases, cases, status=pd.Series({"c": "maybe"}))
    with pytest.raises(DataError, match=r"'zz' is not a case of the after frame, nor rejected or errored"):
        with j.step("s3", actor="system") as st:
            st.frames(cases, cases, status=pd.Series({"zz": "ok"}))
    with j.step("s4", actor="system") as st:
        st.account(rows_in=4, rows_out=2, rejected=pd.Series({"a": "failed intake checks", "c": "moved"}))
        st.frames(cases, cases.iloc[[1, 3]], status=pd.Series({"a": "quarantined", "d": "flagged"}),
                  reason=pd.Series({"a": "quarantined: expect_column_values_to_not_be_null on rent"}))
    s4 = _rows(j, "s4")
    assert s4["status"].to_dict() == {"b": "ok", "d": "flagged", "a": "quarantined", "c": "rejected"}
    assert s4["reason"].to_dict() == {"b": "", "d": "", "c": "moved",
                                      "a": "quarantined: expect_column_values_to_not_be_null on rent"}


def test_cases_frame_columns_dtypes_and_parquet_round_trip(tmp_path: Path) -> None:
    j, _ = _pipeline()
    frame = j.cases_frame()
    assert tuple(frame.columns) == CASES_COLUMNS
    assert str(frame["case_id"].dtype) == "str" and str(frame["row_hash"].dtype) == "UInt64"
    assert frame["step_index"].dtype == "int64"
    # 4 source + 4 intake (3 kept, 1 rejected) + 3 engine_input + 3 decision + 2 review
    assert frame.groupby("step", sort=False).size().to_dict() == {
        "source": 4, "intake": 4, "engine_input": 3, "decision": 3, "review": 2,
    }
    decision = frame[frame["step"] == "decision"].set_index("case_id")
    assert decision.loc["d", "status"] == "error" and decision.loc["d", "reason"] == "registry timeout"
    path = j.write_cases(tmp_path / "journey.parquet")
    back = pq.read_table(path)
    assert back.equals(j.cases_table())
    pd.testing.assert_frame_equal(
        back.to_pandas(types_mapper={pa.uint64(): pd.UInt64Dtype()}.get).astype({"step_index": "int64"}), frame
    )
    (tmp_path / "run").mkdir()
    written = j.write(tmp_path / "run")
    assert set(written) == {"journey.parquet", "lineage.jsonl"} and all(p.is_file() for p in written.values())


# --------------------------------------------------------------------------
# human in the loop and provenance


def test_caseworker_decisions_are_recorded_with_who_and_why() -> None:
    j, _ = _pipeline()
    review = _rows(j, "review")
    assert review.loc["a", "status"] == "overridden" and review.loc["b", "status"] == "reviewed"
    assert review.loc["a", "reason"] == "ASSETS_FOUND" and review.loc["b", "reason"] == "NO_NEED"
    assert set(review["by"]) == {"recorded:caseworker_outcome"} and set(review["actor"]) == {"caseworker"}
    assert json.loads(review.loc["a", "values"]) == {"final_outcome": ["grant", "deny"]}
    assert review.loc["b", "changed_fields"] == "final_outcome"
    ov = j.overrides_frame()
    assert ov[["case_id", "step", "outcome", "final_outcome", "override", "by", "why"]].to_dict("records") == [
        {"case_id": "b", "step": "review", "outcome": "refer", "final_outcome": "deny", "override": False,
         "by": "recorded:caseworker_outcome", "why": "NO_NEED"},
        {"case_id": "a", "step": "review", "outcome": "grant", "final_outcome": "deny", "override": True,
         "by": "recorded:caseworker_outcome", "why": "ASSETS_FOUND"},
    ]


def test_overrides_merge_with_frames_of_the_same_step() -> None:
    dec = pd.DataFrame({"case_id": ["a", "b"], "outcome": ["refer", "grant"]}).astype("str")
    final = dec.assign(final_outcome=["deny", "grant"])
    j = Journey(run_id="r", audit_name="a")
    with j.step("decision", actor="system") as st:
        st.frames(None, dec)
    with j.step("review", actor="caseworker") as st:
        st.frames(dec, final)
        st.overrides(pd.DataFrame({"case_id": ["a"], "outcome": ["refer"], "final_outcome": ["deny"],
                                   "by": ["model:studies.caseworker:decide"], "why": ["HOUSING_COST"]}))
    review = _rows(j, "review")
    assert len(review) == 2
    assert review.loc["a", ["status", "by", "reason", "actor"]].tolist() == [
        "reviewed", "model:studies.caseworker:decide", "HOUSING_COST", "caseworker"]
    assert review.loc["b", ["status", "by"]].tolist() == ["ok", ""]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"case_id": ["a"], "outcome": ["refer"], "final_outcome": ["deny"]}), r"has no column 'by'"),
        (pd.DataFrame({"case_id": ["a"], "outcome": ["refer"], "final_outcome": ["deny"], "by": [""]}),
         r"every caseworker decision must say who decided \(column by\)\. Got none for case id 'a'"),
        (pd.DataFrame({"case_id": ["a"], "outcome": ["refer"], "final_outcome": [None], "by": ["x"]}),
         r"final_outcome is missing for case id 'a'"),
        (pd.DataFrame({"case_id": ["a", "a"], "outcome": ["refer"] * 2, "final_outcome": ["deny"] * 2, "by": ["x"] * 2}),
         r"lists case id 'a' more than once"),
        (pd.DataFrame({"case_id": ["a"], "outcome": ["refer"], "final_outcome": ["deny"], "by": ["x"], "actor": ["boss"]}),
         r"overrides actor must be one of .*Got 'boss'"),
    ],
)
def test_bad_override_frames_are_refused(frame: pd.DataFrame, message: str) -> None:
    j = Journey(run_id="r", audit_name="a")
    with pytest.raises((DataError, SpecError), match=message), j.step("review", actor="caseworker"):
        j.record_overrides(frame)


def test_record_overrides_needs_an_open_step() -> None:
    j = Journey(run_id="r", audit_name="a")
    with pytest.raises(RuntimeError, match=r"record_overrides\(\) must be called inside a step"):
        j.record_overrides(pd.DataFrame({"case_id": ["a"], "outcome": ["x"], "final_outcome": ["y"], "by": ["z"]}))


def test_field_provenance_is_the_data_journey_map() -> None:
    j, _ = _pipeline()
    fields = {f["column"]: f for f in j.field_provenance()}
    assert fields["rent"]["origin"] == "applicant" and fields["rent"]["declared"] is True
    assert fields["rent"]["source"] == "provenance"
    assert fields["rent"]["used_by_engine"] is True and fields["rent"]["discretion"] is False
    assert fields["rent"]["changed_by"] == [{"step": "intake", "actor": "system", "cases": 1}]
    assert fields["able_to_work"]["discretion"] is True and fields["able_to_work"]["used_by_engine"] is True
    assert fields["sex"]["origin"] == "registry:folkbokforing" and fields["sex"]["used_by_engine"] is False
    assert fields["sex"]["dropped_by"] == ["engine_input"]
    assert fields["channel"]["origin"] == "undeclared" and fields["channel"]["declared"] is False
    assert fields["outcome"]["origin"] == "system" and fields["outcome"]["produced_by_engine"] is True
    assert fields["outcome"]["added_by"] == "decision"
    assert fields["final_outcome"]["discretion"] is True and fields["final_outcome"]["seen"] is False
    assert fields["final_outcome"]["changed_by"] == [{"step": "review", "actor": "caseworker", "cases": 2}]
    json.dumps(j.field_provenance())


# --------------------------------------------------------------------------
# OpenLineage


def test_every_event_and_every_facet_validates_against_the_openlineage_schemas(openlineage_spec: Path) -> None:
    j, _ = _pipeline()
    failing = Journey(run_id="r", audit_name="demo")
    with pytest.raises(KeyError), failing.step("decision", actor="system", inputs=["engine_input"], outputs=["d"]):
        raise KeyError("rent")
    events = j.lineage_events() + failing.lineage_events()
    assert [e["eventType"] for e in failing.lineage_events()] == ["START", "START", "FAIL", "FAIL"]
    event_validator = _validator(openlineage_spec, RUN_EVENT)
    seen_schemas = set()
    for i, event in enumerate(events):
        errors = [e.message for e in event_validator.iter_errors(event)]
        assert not errors, (i, errors)
        for where, facet in _facets(event):
            seen_schemas.add(re.search(r"/(\w+\.json)#", facet["_schemaURL"]).group(1))
            errors = [e.message for e in _validator(openlineage_spec, facet["_schemaURL"]).iter_errors(facet)]
            assert not errors, (i, where, errors)
    assert {
        "ParentRunFacet.json", "SchemaDatasetFacet.json", "ColumnLineageDatasetFacet.json",
        "DataQualityAssertionsDatasetFacet.json", "OutputStatisticsOutputDatasetFacet.json",
        "InputStatisticsInputDatasetFacet.json", "ProcessingEngineRunFacet.json", "TagsRunFacet.json",
        "JobTypeJobFacet.json", "OwnershipJobFacet.json", "ErrorMessageRunFacet.json",
    } <= seen_schemas


def test_schema_validation_catches_a_broken_event(openlineage_spec: Path) -> None:
    """The validator used above is not vacuous: it rejects a bad date and a numpy leak."""
    j, _ = _pipeline()
    event = j.lineage_events()[1]
    bad = json.loads(json.dumps(event))
    bad["eventTime"] = "yesterday"
    assert list(_validator(openlineage_spec, RUN_EVENT).iter_errors(bad))
    facet = json.loads(json.dumps(event["run"]["facets"]["tags"]))
    facet["tags"][0]["value"] = 3
    assert list(_validator(openlineage_spec, facet["_schemaURL"]).iter_errors(facet))


def test_events_are_start_and_complete_per_step_under_a_parent_run() -> None:
    j, _ = _pipeline()
    events = j.lineage_events()
    names = [(e["job"]["name"], e["eventType"]) for e in events]
    steps = ["source", "intake", "engine_input", "decision", "review"]
    assert names == [("demo", "START"), *[(f"demo.{s}", t) for s in steps for t in ("START", "COMPLETE")],
                     ("demo", "COMPLETE")]
    parent_id = j.run_uuid
    assert events[0]["run"]["runId"] == parent_id == events[-1]["run"]["runId"]
    for e in events[1:-1]:
        parent = e["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == parent_id and parent["job"] == {"namespace": "insyn", "name": "demo", "facets": {}}
        assert e["job"]["facets"]["ownership"]["owners"][0]["type"] == "ACTOR"
    # the same run always gets the same ids
    again, _ = _pipeline()
    assert [e["run"]["runId"] for e in again.lineage_events()] == [e["run"]["runId"] for e in events]


def _complete(events: list[dict[str, Any]], job: str) -> dict[str, Any]:
    return next(e for e in events if e["job"]["name"] == job and e["eventType"] == "COMPLETE")


def test_facet_contents_schema_column_lineage_assertions_statistics() -> None:
    j, f = _pipeline()
    events = j.lineage_events()
    intake = _complete(events, "demo.intake")
    (inp,) = intake["inputs"]
    assert (inp["namespace"], inp["name"]) == ("insyn", "demo.cases")
    assert inp["inputFacets"]["inputStatistics"]["rowCount"] == 4
    assertions = inp["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert assertions[0] == {"assertion": "expect_column_values_to_not_be_null", "success": False, "column": "rent",
                             "expected": "0 missing", "actual": "1", "params": {"mostly": 1.0}}
    assert assertions[1]["params"] == {"value_set": ["digital", "paper"], "unexpected_count": 0}
    (out,) = intake["outputs"]
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 3
    fields = out["facets"]["schema"]["fields"]
    assert [(x["name"], x["type"]) for x in fields] == [(c, str(t)) for c, t in f["kept"].dtypes.items()]
    assert fields[2]["description"] == "origin: applicant (declared in provenance)"
    lineage = out["facets"]["columnLineage"]
    rent = lineage["fields"]["rent"]["inputFields"][0]
    assert (rent["name"], rent["field"], rent["transformations"][0]["subtype"]) == ("demo.cases", "rent", "TRANSFORMATION")
    sex = lineage["fields"]["sex"]["inputFields"][0]
    assert (sex["field"], sex["transformations"][0]["subtype"]) == ("sex", "IDENTITY")
    (flt,) = lineage["dataset"]
    assert (flt["field"], flt["transformations"][0]["type"], flt["transformations"][0]["subtype"]) == (
        "case_id", "INDIRECT", "FILTER")

    decision = _complete(events, "demo.decision")
    cl = decision["outputs"][0]["facets"]["columnLineage"]["fields"]
    assert [x["field"] for x in cl["outcome"]["inputFields"]] == ["rent", "adults", "able_to_work", "channel"]
    assert {x["name"] for x in cl["outcome"]["inputFields"]} == {"demo.engine_input"}
    tags = {t["key"]: t["value"] for t in decision["run"]["facets"]["tags"]["tags"]}
    assert tags["engine.name"] == "municipal-rpa" and tags["engine.definition_hash"] == "sha256:abc123"
    assert (tags["rows_in"], tags["rows_out"], tags["rows_errored"]) == ("3", "2", "1")
    assert tags["note.errors"] == "1"
    source = _complete(events, "demo.source")
    assert (source["inputs"][0]["namespace"], source["inputs"][0]["name"]) == ("file", "datasets/cases.csv")
    start = next(e for e in events if e["job"]["name"] == "demo.engine_input" and e["eventType"] == "START")
    assert [x["name"] for x in start["inputs"][0]["facets"]["schema"]["fields"]] == list(f["kept"].columns)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cases", ("insyn", "demo.cases")),
        ("datasets/sweden/population-2026.yaml", ("file", "datasets/sweden/population-2026.yaml")),
        ("population.csv", ("file", "population.csv")),
        ("file:///data/x.parquet", ("file", "/data/x.parquet")),
        ("duckdb://user:secret@db.example:5432/decisions", ("duckdb://db.example:5432", "/decisions")),
    ],
)
def test_dataset_names_map_to_openlineage_datasets(name: str, expected: tuple[str, str]) -> None:
    j = Journey(run_id="r", audit_name="demo")
    with j.step("source", actor="system", inputs=[name], outputs=["cases"]):
        pass
    start = j.lineage_events()[1]
    assert (start["inputs"][0]["namespace"], start["inputs"][0]["name"]) == expected
    assert (start["outputs"][0]["namespace"], start["outputs"][0]["name"]) == ("insyn", "demo.cases")


def test_write_lineage_writes_one_event_per_line(tmp_path: Path) -> None:
    j, _ = _pipeline()
    path = j.write_lineage(tmp_path / "lineage.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == j.lineage_events()


def test_emit_sends_every_event_intact_to_an_http_endpoint() -> None:
    j, _ = _pipeline()
    with LineageReceiver() as receiver, warnings.catch_warnings():
        warnings.simplefilter("error")
        sent = j.emit(receiver.url, api_key="s3cret")
    events = j.lineage_events()
    assert sent == len(events) == 12
    assert receiver.events == events
    assert {r.path for r in receiver.requests} == {"/api/v1/lineage"}
    assert {r.headers["authorization"] for r in receiver.requests} == {"Bearer s3cret"}
    assert {r.headers["content-type"] for r in receiver.requests} == {"application/json"}
    with LineageReceiver() as receiver:
        assert j.emit(receiver.url + "/custom/lineage") == 12
    assert {r.path for r in receiver.requests} == {"/custom/lineage"}
    assert all("authorization" not in r.headers for r in receiver.requests)


def test_an_endpoint_that_refuses_events_is_a_warning() -> None:
    j, _ = _pipeline()
    with LineageReceiver(status=500) as receiver, pytest.warns(LineageWarning) as record:
        assert j.emit(receiver.url, api_key="s3cret") == 0
    message = str(record[0].message)
    assert f"{receiver.url}/api/v1/lineage refused 12 of 12 event(s)" in message and "HTTP 500" in message
    assert "s3cret" not in message


def test_an_unreachable_endpoint_is_a_fast_warning_never_an_error() -> None:
    j, _ = _pipeline()
    port = closed_port()
    t0 = time.perf_counter()
    with pytest.warns(LineageWarning, match=rf"127\.0\.0\.1:{port}/api/v1/lineage is unreachable .* 12 of 12 event"):
        assert j.emit(f"http://user:pw@127.0.0.1:{port}", timeout_s=2.0) == 0
    assert time.perf_counter() - t0 < 2.0
    with pytest.warns(LineageWarning) as record:
        assert j.emit(f"http://user:pw@127.0.0.1:{port}", timeout_s=2.0) == 0
    assert "pw" not in str(record[0].message)


def test_a_hung_endpoint_costs_about_one_timeout() -> None:
    j, _ = _pipeline()
    with SilentServer() as server:
        t0 = time.perf_counter()
        with pytest.warns(LineageWarning, match="unreachable"):
            assert j.emit(server.url, timeout_s=0.5) == 0
        elapsed = time.perf_counter() - t0
    assert 0.4 < elapsed < 1.5


def test_a_malformed_lineage_url_is_a_warning() -> None:
    j, _ = _pipeline()
    with pytest.warns(LineageWarning, match=r"lineage\.url must be an http:// or https:// URL\. Got 'marquez:5000'"):
        assert j.emit("marquez:5000") == 0


def test_only_audit_journey_imports_openlineage() -> None:
    offenders = []
    for path in (ROOT / "audit").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if re.search(r"^\s*(from|import)\s+openlineage", text, flags=re.M) and path.name != "_openlineage.py":
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


# --------------------------------------------------------------------------
# trace


def _run_folder(tmp_path: Path) -> Path:
    """A hand-built run folder: journey written by a Journey, the other files by hand."""
    j, f = _pipeline()
    run = tmp_path / "reports" / "demo" / "20260101T000000000Z-test"
    run.mkdir(parents=True)
    j.write_cases(run / "journey.parquet")
    j.write_lineage(run / "lineage.jsonl")
    decisions = pd.DataFrame(
        {
            "case_id": pd.Series(["a", "b", "c", "d"], dtype="str"),
            "sex": pd.Series(["female", "male", "female", "male"], dtype="str"),
            "outcome": pd.Series(["grant", "refer", None, "error"], dtype="str"),
            "amount": [4321.0, np.nan, np.nan, np.nan],
            "reasons": pd.Series(["", "HOUSEHOLD_CHANGE", "", ""], dtype="str"),
            "final_outcome": pd.Series(["deny", "deny", None, "error"], dtype="str"),
            "final_amount": [0.0, 0.0, np.nan, np.nan],
            "decided_by": pd.Series(["caseworker", "caseworker", "none", "none"], dtype="str"),
            "override": [True, False, False, False],
            "truth_outcome": pd.Series(["grant", "partial", "grant", "deny"], dtype="str"),
            "truth_amount": [4100.0, 1200.5, 900.0, 0.0],
            "truth_reasons": pd.Series(["", "EXPENSE_CAPPED;NEW_INCOME", "", ""], dtype="str"),
            "status": pd.Series(["ok", "ok", "quarantined", "error"], dtype="str"),
            "status_reason": pd.Series(["", "", "quarantined: rent missing", "registry timeout"], dtype="str"),
        }
    )
    decisions.to_parquet(run / "decisions.parquet", index=False)
    checks = [
        {"step": "intake", "policy": "quarantine", "success": False, "results": [
            {"expectation": "expect_column_values_to_not_be_null", "column": "rent", "success": False,
             "unexpected_count": 1, "sample_case_ids": ["c"]},
            {"expectation": "expect_column_missing_rate_gap_across_groups_to_be_at_most", "column": "rent",
             "success": False, "unexpected_count": None, "sample_case_ids": []},
            {"expectation": "expect_column_values_to_be_between", "column": "adults", "success": False,
             "unexpected_count": 40, "sample_case_ids": ["x1", "x2"]},
            {"expectation": "expect_column_values_to_be_in_set", "column": "channel", "success": True,
             "unexpected_count": 0, "sample_case_ids": []},
        ]},
    ]
    (run / "checks.json").write_text(json.dumps(checks), encoding="utf-8")
    results = {"run_id": run.name, "spec": {"name": "demo", "sensitive_features": ["sex"]},
               "journey": {"steps": j.steps, "fields": j.field_provenance()}, "checks": checks}
    (run / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return run


def test_trace_tells_one_case_journey(tmp_path: Path) -> None:
    run = _run_folder(tmp_path)
    text = trace(run, "a")
    lines = text.splitlines()
    assert lines[0] == "Data journey of case a"
    assert lines[1] == f"run 20260101T000000000Z-test (audit demo), folder {run}"
    assert re.search(r"^\s+2\. intake\s+system\s+ok$", text, flags=re.M)
    assert not any(" -> " in line for line in lines if "rent" in line)  # a's rent never changed
    assert re.search(r"^\s+5\. review\s+caseworker\s+overridden by recorded:caseworker_outcome: ASSETS_FOUND$", text, flags=re.M)
    assert '        final_outcome: "grant" -> "deny" (changed by caseworker)' in lines
    assert "        engine municipal-rpa 2026.1 (definition sha256:abc123)" in lines
    assert "        dropped: sex" in lines
    expected_hash = f"        row hash {int(_hash(_cases())['a']):016x}"
    assert expected_hash in lines
    assert "  engine outcome  grant" in lines
    assert "  engine amount   4,321.00 SEK" in lines
    assert "  final outcome   deny (decided by caseworker; override of the engine)" in lines
    assert "  groups          sex: female" in lines
    assert "  outcome         grant" in lines and "  amount          4,100.00 SEK" in lines
    assert "  the final outcome (deny) differs from the reference (grant)" in lines
    assert "  the final amount is 4,100.00 SEK below the reference" in lines
    assert "  failed (data set)     intake: expect_column_missing_rate_gap_across_groups_to_be_at_most on rent (policy quarantine)" in lines
    assert any(line.startswith("  failed (not sampled)  intake: expect_column_values_to_be_between on adults") for line in lines)
    assert not any(line.startswith("  FAILED for this case") for line in lines)


def test_trace_of_a_changed_quarantined_and_referred_case(tmp_path: Path) -> None:
    run = _run_folder(tmp_path)
    b = trace(run, "b")
    assert "        rent: 6200 -> 6000 (changed by system)" in b.splitlines()
    assert "  engine reasons  HOUSEHOLD_CHANGE" in b.splitlines()
    assert "  reasons         EXPENSE_CAPPED, NEW_INCOME" in b.splitlines()
    c = trace(run, "c")
    assert re.search(r"^\s+2\. intake\s+system\s+rejected: quarantined: rent missing$", c, flags=re.M)
    assert "  FAILED for this case  intake: expect_column_values_to_not_be_null on rent (policy quarantine): failed for 1 case(s), this one among them" in c.splitlines()
    assert "  status          quarantined: quarantined: rent missing" in c.splitlines()
    assert re.search(r"^\s+3\. engine_input .*\(no record for this case", c, flags=re.M)


def test_trace_errors_name_the_case_and_the_folder(tmp_path: Path) -> None:
    run = _run_folder(tmp_path)
    with pytest.raises(DataError) as err:
        trace(run, "nobody")
    assert str(err.value).startswith(f"{run}: case id 'nobody' is not in this run")
    assert "Case ids look like 'a', 'b', 'c'." in str(err.value)
    with pytest.raises(DataError, match="no such run folder"):
        trace(tmp_path / "missing", "a")
    (run / "journey.parquet").unlink()
    with pytest.raises(DataError, match=r"journey\.parquet is missing"):
        trace(run, "a")


def test_trace_escapes_control_characters(tmp_path: Path) -> None:
    cases = pd.DataFrame({"case_id": ["x"], "note": ["ok"]})
    j = Journey(run_id="r", audit_name="a")
    with j.step("s0", actor="system") as st:
        st.frames(None, cases)
    with j.step("s1", actor="system") as st:
        st.frames(cases, cases.assign(note=["\x1b[31mred"]), reason=pd.Series({"x": "bad\nline"}))
    run = tmp_path / "run"
    run.mkdir()
    j.write_cases(run / "journey.parquet")
    text = trace(run, "x")
    assert "\x1b" not in text
    assert '        note: "ok" -> "\\u001b[31mred" (changed by system)' in text.splitlines()
    assert re.search(r"^\s+2\. s1\s+system\s+ok: bad\\x0aline$", text, flags=re.M)


def test_duplicate_ids_are_refused_whether_or_not_unique_ids_were_seen_before() -> None:
    """A step's frame with a duplicated case id is refused, and a frame whose ids were found unique before
    (``audit._ids.is_unique``) passes without being hashed again."""
    from audit._ids import is_unique

    ids = pd.Series([f"c{i}" for i in range(50)], dtype="str")
    assert is_unique(ids)
    j = Journey(run_id="r", audit_name="a")
    with j.step("load", actor="system") as st:
        st.frames(None, pd.DataFrame({"case_id": ids, "x": np.arange(50)}))
    twice = pd.Series([f"c{i % 49}" for i in range(50)], dtype="str")
    j2 = Journey(run_id="r", audit_name="a")
    with pytest.raises(DataError, match="holds case id 'c0' more than once"):
        with j2.step("load", actor="system") as st:
            st.frames(None, pd.DataFrame({"case_id": twice, "x": np.arange(50)}))
