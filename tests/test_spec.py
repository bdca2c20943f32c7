"""The audit spec: strict loading, exact messages, round trips, path resolution."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from audit import Audit, SpecError, load_spec
from audit._paths import resolve_path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo.yaml"
SRC = "examples/demo.yaml"


def _base() -> dict:
    return yaml.safe_load(DEMO.read_text(encoding="utf-8"))


def _set(d: dict, path: str, value: object) -> dict:
    d = copy.deepcopy(d)
    *parents, last = path.split(".")
    cur = d
    for p in parents:
        cur = cur.setdefault(p, {})
    if value is _DELETE:
        cur.pop(last)
    else:
        cur[last] = value
    return d


_DELETE = object()

INVALID = [
    (
        "engine.kind",
        "rpa",
        "engine.kind must be one of python, sklearn, rules, http, subprocess, recorded, reference. Got 'rpa'.",
    ),
    (
        "colour",
        "red",
        "colour is not a known key. Known keys: attribution, checks, compare, counterfactual, description, discover, "
        "engine, evidence, execution, "
        "intersections, lineage, monitor, name, outcomes, population, reference_groups, report, review, seed, "
        "selection, sensitive_features, statistics, thresholds, truth.",
    ),
    (
        "engine.command",
        ["java", "-jar", "x.jar"],
        "engine.command is not a key of engine kind 'rules'. Keys for 'rules': batch_size, batch_timeout_s, "
        "error_budget, features, kind, name, options, path, sees_sensitive, workers.",
    ),
    ("statistics.min_group_size", 0, "statistics.min_group_size must be an integer >= 1. Got 0."),
    ("statistics.alpha", 2, "statistics.alpha must be a number < 1. Got 2."),
    (
        "statistics.correction",
        "sidak",
        "statistics.correction must be one of holm, bh, bonferroni, none. Got 'sidak'.",
    ),
    (
        "checks.intake",
        {"suites": ["a.yaml"], "policy": "ignore"},
        "checks.intake.policy must be one of fail, warn, quarantine. Got 'ignore'.",
    ),
    (
        "name",
        "my audit/1",
        "name must start with a letter or digit and hold only letters, digits, '_', '.' and '-' "
        "(it names a folder). Got 'my audit/1'.",
    ),
    ("seed", "abc", "seed must be an integer. Got 'abc'."),
    ("report.language", "de", "report.language must be one of en, sv. Got 'de'."),
    (
        "intersections",
        [["sex", "income"]],
        "intersections[0] must name sensitive features (sex, birth_region, age_band). Got 'income'.",
    ),
    (
        "reference_groups",
        {"region": "x"},
        "reference_groups must be keyed by sensitive features (sex, birth_region, age_band). Got 'region'.",
    ),
    (
        "outcomes.favourable",
        ["yes"],
        "outcomes.favourable must name outcome labels (grant, partial, deny, refer). Got 'yes'.",
    ),
    (
        "thresholds",
        [{"metric": "refer_rate", "ratio_mni": 0.8}],
        "thresholds[0].ratio_mni is not a known key. Known keys of thresholds[0]: attributes, difference_max, "
        "difference_min, metric, ratio_max, ratio_min, severity, value_max, value_min.",
    ),
    (
        "population.file",
        "x.csv",
        "population must name exactly one source of synthetic, file, sql, aggregated. Got synthetic, file.",
    ),
    ("sensitive_features", [], "sensitive_features must list at least 1 item. Got []."),
    ("engine.error_budget", 1.5, "engine.error_budget must be a number <= 1. Got 1.5."),
    (
        "population.n",
        _DELETE,
        "population.n (the number of cases to generate) is required for a synthetic source.",
    ),
    (
        "lineage",
        {"url": "marquez:5000"},
        "lineage.url must be an http:// or https:// URL of an OpenLineage endpoint. Got 'marquez:5000'.",
    ),
    (
        "engine.features",
        ["rent", "sex"],
        "engine.features names the sensitive feature 'sex'; set engine.sees_sensitive: true to pass sensitive "
        "features to the engine.",
    ),
]


@pytest.mark.parametrize(("path", "value", "message"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_spec_has_exact_message(path: str, value: object, message: str) -> None:
    data = _set(_base(), path, value)
    with pytest.raises(SpecError) as info:
        Audit.from_dict(data, source=SRC)
    assert str(info.value).splitlines()[0] == f"{SRC}: {message}"


def test_http_engine_needs_url() -> None:
    data = _base()
    data["engine"] = {"kind": "http"}
    with pytest.raises(SpecError) as info:
        Audit.from_dict(data, source=SRC)
    assert str(info.value) == f"{SRC}: engine.url is required when kind is 'http'."


def test_load_spec_names_the_file_for_yaml_errors(tmp_path: Path) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\npopulation: [unclosed\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(p)
    assert str(info.value).startswith(f"{p}: not valid YAML at line 3")


def test_load_spec_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"no such spec file"):
        load_spec(tmp_path / "nope.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(SpecError, match=r"empty.yaml: the spec is empty"):
        load_spec(empty)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"must be a mapping of keys to values. Got list"):
        load_spec(listy)


def test_load_spec_uses_safe_load(tmp_path: Path) -> None:
    p = tmp_path / "evil.yaml"
    p.write_text("name: !!python/object/apply:os.system ['echo hi']\n", encoding="utf-8")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(p)


def test_round_trip_to_dict_from_dict() -> None:
    audit = load_spec(DEMO)
    again = Audit.from_dict(audit.to_dict(), base_dir=DEMO.parent)
    assert again == audit
    assert again.to_dict() == audit.to_dict()
    yaml_again = Audit.from_dict(yaml.safe_load(audit.to_yaml()), base_dir=DEMO.parent)
    assert yaml_again == audit


def test_every_design_example_loads() -> None:
    """The spec example of DESIGN.md (every key it shows) loads as written."""
    text = """
name: demo
seed: 42
population:
  synthetic: datasets/sweden/population-2026.yaml
  n: 20000
  case_id: case_id
  rename: {Gender: sex}
  recode:
    sex: {K: female, M: male}
  derive:
    income_level: {quantile_bins: {column: income, q: [0, 0.5, 1], labels: [low, high]}}
sensitive_features: [sex, birth_region]
intersections: [[sex, birth_region]]
reference_groups: {birth_region: sweden}
engine:
  kind: rules
  path: examples/engines/municipal-rpa.yaml
  sees_sensitive: false
  features: [rent, income_wages]
  error_budget: 0.01
truth:
  reference: true
outcomes:
  favourable: [grant, partial]
  review: [refer]
  positive: [deny]
review:
  recorded: caseworker_outcome
compare:
  kind: recorded
  outcome: caseworker_outcome
counterfactual:
  attributes: [birth_region, sex, interpreter]
  personas: examples/personas.yaml
selection:
  column: selection_method
  random: random
  population_size: 977730
checks:
  intake: {suites: [checks/application.yaml], policy: fail}
  decisions: {suites: [checks/decisions.yaml], policy: warn}
statistics: {min_group_size: 10, alpha: 0.05, correction: holm, bootstrap: 2000}
thresholds:
  - {metric: refer_rate, ratio_min: 0.8, ratio_max: 1.25}
report: {formats: [html, md, json], language: en}
monitor: {baseline: trailing, periods: 6}
"""
    audit = Audit.from_dict(yaml.safe_load(text), source="DESIGN.md")
    assert audit.engine is not None and audit.engine.kind == "rules"
    assert audit.population.derive["income_level"].quantile_bins.q == [0, 0.5, 1]
    aggregated = """
name: agg
population:
  aggregated: datasets/examples/confusion.csv
  where: {Dataset: Prepilot, Model: BR}
  attribute: Feature_EN
  group: Feature_Value_EN
  cells: {tp: TP, fp: FP, fn: FN, tn: TN}
  units: percent
  group_size: group_size
sensitive_features: [Feature_EN]
"""
    agg = Audit.from_dict(yaml.safe_load(aggregated), source="DESIGN.md")
    assert agg.population.source_kind == "aggregated"


@pytest.mark.parametrize(
    ("engine", "ok"),
    [
        ({"kind": "python", "target": "pkg.mod:decide"}, True),
        ({"kind": "sklearn", "path": "model.joblib", "threshold": 0.5, "labels": {1: "deny", 0: "grant"}}, True),
        ({"kind": "http", "url": "http://127.0.0.1:8080/decide", "batch_size": 500, "timeout_s": 10,
          "retries": 3, "concurrency": 4}, True),
        ({"kind": "subprocess", "command": ["java", "-jar", "engine.jar"]}, True),
        ({"kind": "recorded", "outcome": "decision", "amount": "paid", "reasons": "codes"}, True),
        ({"kind": "reference"}, True),
        ({"kind": "python", "target": "not a target"}, False),
    ],
)
def test_engine_kinds_from_design(engine: dict, ok: bool) -> None:
    data = _base()
    data["engine"] = engine
    if ok:
        assert Audit.from_dict(data).engine.kind == engine["kind"]
    else:
        with pytest.raises(SpecError, match=r"engine.target must have the form 'package.module:attr'"):
            Audit.from_dict(data, source=SRC)


def test_relative_paths_resolve_against_spec_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "rules.yaml").write_text("x: 1\n", encoding="utf-8")
    assert resolve_path("sub/rules.yaml", tmp_path) == (tmp_path / "sub" / "rules.yaml").resolve()
    # a shipped default is found from anywhere
    found = resolve_path("checks/application.yaml", tmp_path)
    assert found.name == "application.yaml" and found.parent.name == "checks"
    # and a spec-local file shadows the default
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "application.yaml").write_text("x: 1\n", encoding="utf-8")
    assert resolve_path("checks/application.yaml", tmp_path) == (tmp_path / "checks" / "application.yaml").resolve()


def test_audit_is_frozen_and_with_options_validates() -> None:
    audit = load_spec(DEMO)
    with pytest.raises(Exception):
        audit.seed = 3  # type: ignore[misc]
    assert audit.with_options(seed=7).seed == 7
    with pytest.raises(SpecError, match="seed must be an integer >= 0. Got -1."):
        audit.with_options(seed=-1)
