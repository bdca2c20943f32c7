"""audit.reference: the JSON Schema and Markdown reference of the spec, generated from the models.

The schema is checked against the loader itself: every shipped spec passes
both, and each mistake below is refused by both.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from audit.exceptions import SpecError
from audit.reference import SPECS, json_schema, key_docs, markdown_reference, schema_file, spec_models
from audit.spec import AuditSpec, load_spec
from audit.study_spec import StudySpec, load_study_spec

ROOT = Path(__file__).resolve().parents[1]
NOT_AUDITS = {"personas.yaml", "monitor-calibration.yaml"}  # personas, and the monitor's calibration settings
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.yaml")
                  if p.name not in NOT_AUDITS and not p.name.startswith("study-"))
STUDIES = sorted((ROOT / "examples").glob("study-*.yaml"))
BASE = {
    "name": "t",
    "population": {"synthetic": "datasets/sweden/population-2026.yaml", "n": 100},
    "sensitive_features": ["sex"],
    "engine": {"kind": "reference"},
}


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(schema_file("audit").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_every_key_of_every_model_is_described_and_nothing_else(kind: str) -> None:
    docs = key_docs(kind)
    models = spec_models(kind)
    assert {m.__name__ for m, _ in models} == set(docs), "the key file must have one entry per spec model"
    for model, _ in models:
        described = set(docs[model.__name__]["keys"])
        assert described == set(model.model_fields), (model.__name__, described ^ set(model.model_fields))
        assert all(isinstance(t, str) and len(t) > 10 for t in docs[model.__name__]["keys"].values())


@pytest.mark.parametrize("name", sorted(key_docs()))
def test_every_example_in_the_reference_loads(name: str) -> None:
    example = yaml.safe_load(key_docs()[name]["example"])
    data = {**copy.deepcopy(BASE), **example}
    data = {k: v for k, v in data.items() if v is not None}
    AuditSpec.from_dict(data, source=f"spec-keys.yaml:{name}")


STUDY_BASE = {"name": "s", "audit": copy.deepcopy(BASE), "replicates": 2}


@pytest.mark.parametrize("name", sorted(key_docs("study")))
def test_every_example_in_the_study_reference_loads(name: str) -> None:
    example = yaml.safe_load(key_docs("study")[name]["example"])
    StudySpec.from_dict({**copy.deepcopy(STUDY_BASE), **example}, base_dir=ROOT, source=f"study-keys.yaml:{name}")


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.name)
def test_every_shipped_study_passes_the_study_schema(path: Path) -> None:
    schema = json.loads(schema_file("study").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    load_study_spec(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [e.message for e in Draft202012Validator(schema).iter_errors(data)] == []
    bad = {**data, "replicate": 3}
    assert list(Draft202012Validator(schema).iter_errors(bad)), "the study schema accepts an unknown key"


def test_the_reference_shows_type_default_allowed_values_and_example() -> None:
    text = markdown_reference("audit")
    row = next(line for line in text.splitlines() if line.startswith("| `correction` |"))
    assert row == ("| `correction` | string | `holm` | `holm`, `bh`, `bonferroni`, `none` | Multiple-testing correction "
                   "over every p-value of the run (Holm, Benjamini-Hochberg, Bonferroni or none). |")
    row = next(line for line in text.splitlines() if line.startswith("| `min_group_size` |"))
    assert "| integer | `10` | ≥ 1 |" in row
    row = next(line for line in text.splitlines() if line.startswith("| `name` |"))
    assert "**required**" in row and "at most 80 characters" in row
    assert text.count("```yaml") == len(key_docs()) + 1  # one example per section, plus the schema line
    for model, _ in spec_models("audit"):
        assert f"## {key_docs()[model.__name__]['title']}" in text


def test_schema_carries_the_descriptions_for_editors() -> None:
    schema = json_schema("audit")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["seed"]["description"].startswith("Seed of every random draw")
    stats = schema["$defs"]["StatisticsSpec"]["properties"]["correction"]
    assert stats["enum"] == ["holm", "bh", "bonferroni", "none"] and stats["default"] == "holm"
    assert stats["markdownDescription"] == stats["description"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_shipped_spec_passes_the_schema(path: Path, validator: Draft202012Validator) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    load_spec(path)
    assert [e.message for e in validator.iter_errors(data)] == []


MISTAKES = [
    ("an unknown top-level key", {"enginee": {"kind": "reference"}}),
    ("an unknown engine kind", {"engine": {"kind": "rpa"}}),
    ("a key of another engine kind", {"engine": {"kind": "rules", "path": "x.yaml", "url": "http://x"}}),
    ("a required key of the kind", {"engine": {"kind": "http"}}),
    ("a wrong type", {"seed": "forty-two"}),
    ("a bound", {"statistics": {"min_group_size": 0}}),
    ("a name that is no folder name", {"name": "../x"}),
    ("a report language", {"report": {"language": "fi"}}),
    ("an unknown threshold key", {"thresholds": [{"metric": "refer_rate", "ratio_mn": 0.8}]}),
]


@pytest.mark.parametrize(("what", "change"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_the_schema_and_the_loader_refuse_the_same_mistakes(
    what: str, change: dict, validator: Draft202012Validator
) -> None:
    data = {**copy.deepcopy(BASE), **change}
    assert list(validator.iter_errors(data)), f"the schema accepts {what}"
    with pytest.raises(SpecError):
        AuditSpec.from_dict(data)
    assert not list(validator.iter_errors(BASE)) and AuditSpec.from_dict(BASE)


def test_insyn_schema_prints_the_shipped_file(capsys: pytest.CaptureFixture[str]) -> None:
    from typer.testing import CliRunner

    from audit.cli import app

    res = CliRunner().invoke(app, ["schema"])
    assert res.exit_code == 0 and res.stdout == schema_file("audit").read_text(encoding="utf-8")
    res = CliRunner().invoke(app, ["schema", "--format", "markdown"])
    assert res.stdout == (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    res = CliRunner().invoke(app, ["schema", "study"])
    assert res.exit_code == 0 and res.stdout == schema_file("study").read_text(encoding="utf-8")
    res = CliRunner().invoke(app, ["schema", "study", "--format", "markdown"])
    assert res.stdout == (ROOT / "docs" / "study-spec.md").read_text(encoding="utf-8")
    res = CliRunner().invoke(app, ["schema", "survey"])
    assert res.exit_code == 2 and "There is no schema of a 'survey' spec. Expected one of audit, study." in res.stderr
