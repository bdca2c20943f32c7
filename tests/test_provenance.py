"""Provenance of file and SQL sources (issue 22, point 3): who created each column.

A file or a query does not say who created its columns, so the spec says it
(``population.provenance``); what it does not declare is ``unknown``, never a
made-up creator. The declaration flows to results.json, the journey's field
map and the OpenLineage schema facets, and a wrong creator or column is a
spec error naming the spec, the key and the value.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from audit import Audit
from audit.exceptions import SpecError
from audit.journey import Journey, normalise_origin
from audit.population import load_population

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "audit" / "schemas" / "results.schema.json"
DECLARED = {"income": "applicant", "sickness_benefit": "forsakringskassan", "able_to_work": "caseworker",
            "tax_income": "registry:skatteverket", "housing_allowance": "registry"}


def _frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "case_id": [f"k{i}" for i in range(n)], "sex": rng.choice(["female", "male"], n),
        "income": rng.integers(0, 9000, n).astype(float), "sickness_benefit": rng.integers(0, 5000, n).astype(float),
        "able_to_work": rng.choice([True, False], n), "tax_income": rng.integers(0, 9000, n).astype(float),
        "housing_allowance": rng.integers(0, 3000, n).astype(float), "note": ["x"] * n,
        "decision": rng.choice(["grant", "deny"], n),
    })


def _audit(tmp_path: Path, population: dict) -> Audit:
    data = {"name": "prov", "population": population, "sensitive_features": ["sex"],
            "engine": {"kind": "recorded", "outcome": "decision"},
            "statistics": {"bootstrap": 0}, "report": {"formats": ["json"]}}
    return Audit.from_dict(data, base_dir=tmp_path, source="prov.yaml")


EXPECTED = {"case_id": "unknown", "sex": "unknown", "income": "applicant",
            "sickness_benefit": "registry:forsakringskassan", "able_to_work": "caseworker",
            "tax_income": "registry:skatteverket", "housing_allowance": "registry", "note": "unknown",
            "decision": "unknown", "high_income": "system"}
DERIVE = {"high_income": {"bins": {"column": "income", "edges": [0, 5000, 10000], "labels": ["low", "high"]}}}


def test_file_and_sql_sources_say_unknown_for_what_the_spec_does_not_declare(tmp_path: Path) -> None:
    _frame().to_parquet(tmp_path / "c.parquet", index=False)
    pop = load_population(_audit(tmp_path, {"file": "c.parquet", "provenance": DECLARED, "derive": DERIVE}))
    assert pop.provenance == EXPECTED
    con = sqlite3.connect(tmp_path / "c.sqlite")
    _frame().to_sql("cases", con, index=False)
    con.close()
    pop = load_population(_audit(tmp_path, {"sql": "SELECT * FROM cases", "url": f"sqlite:///{tmp_path / 'c.sqlite'}",
                                            "provenance": DECLARED, "derive": DERIVE}))
    assert pop.provenance == EXPECTED
    bare = load_population(_audit(tmp_path, {"file": "c.parquet"}))
    assert set(bare.provenance.values()) == {"unknown"}  # never "system" for data Insyn did not make


def test_wrong_creators_and_columns_are_spec_errors(tmp_path: Path) -> None:
    _frame().to_parquet(tmp_path / "c.parquet", index=False)
    with pytest.raises(SpecError, match=r"^prov\.yaml: population\.provenance\.income must be one of the creators applicant, "
                                        r".*Got 'landlord'\.$"):
        load_population(_audit(tmp_path, {"file": "c.parquet", "provenance": {"income": "landlord"}}))
    with pytest.raises(SpecError, match=r"^prov\.yaml: population\.provenance names the column 'rent', which is not "
                                        r"a column of the case frame\. Columns: case_id, sex, income"):
        load_population(_audit(tmp_path, {"file": "c.parquet", "provenance": {"rent": "applicant"}}))
    assert normalise_origin("Skatteverket") == "registry:skatteverket"
    assert normalise_origin("registry:csn") == "registry:csn"


def test_declared_and_unknown_creators_flow_to_results_journey_and_lineage(tmp_path: Path) -> None:
    _frame().to_parquet(tmp_path / "c.parquet", index=False)
    result = _audit(tmp_path, {"file": "c.parquet", "provenance": DECLARED, "derive": DERIVE}).run(out=tmp_path / "o")
    data = json.loads((result.run_dir / "results.json").read_text(encoding="utf-8"))
    errors = list(Draft202012Validator(json.loads(SCHEMA.read_text()), format_checker=FormatChecker())
                  .iter_errors(data))
    assert not errors, errors[0]
    assert data["population"]["provenance"] == EXPECTED
    fields = {f["column"]: f for f in data["journey"]["fields"]}
    assert fields["income"]["origin"] == "applicant" and fields["income"]["declared"] is True
    assert fields["sickness_benefit"]["origin"] == "registry:forsakringskassan"
    assert fields["able_to_work"]["discretion"] is True
    assert fields["note"]["origin"] == "unknown" and fields["note"]["declared"] is False
    assert fields["high_income"]["origin"] == "system"
    described: dict[str, str] = {}
    for line in (result.run_dir / "lineage.jsonl").read_text(encoding="utf-8").splitlines():
        for ds in json.loads(line).get("outputs", []):
            for f in ds.get("facets", {}).get("schema", {}).get("fields", []):
                if f.get("description"):
                    described[f["name"]] = f["description"]
    assert described["income"] == "origin: applicant (declared in provenance)"
    assert described["note"] == "origin: unknown (not declared in the spec)"
    assert described["sickness_benefit"].startswith("origin: registry:forsakringskassan")


def test_journey_accepts_unknown_and_registry_but_keeps_refusing_made_up_actors() -> None:
    j = Journey(run_id="r", audit_name="a", provenance={"x": "unknown", "y": "registry", "z": "csn"})
    with pytest.raises(SpecError, match=r"^provenance: rent must be .*Got 'landlord'\.$"):
        j.declare_provenance({"rent": "landlord"})
