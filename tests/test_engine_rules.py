"""Declarative rule sets: the safe expression language, rule-file errors, and the municipal RPA example."""

from __future__ import annotations

import builtins
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from audit.engine import RulesEngine, build_engine, run_engine
from audit.engine._expr import ExprError, column_value, evaluate, parse
from audit.exceptions import SpecError
from audit.spec import EngineSpec

ROOT = Path(__file__).resolve().parents[1]
RPA = ROOT / "examples" / "engines" / "municipal-rpa.yaml"
GUIDELINE = ROOT / "datasets" / "sweden" / "guidelines" / "trelleborg-2019.yaml"
LABELS = ("grant", "partial", "deny", "refer")


def ev(text: str, frame: pd.DataFrame | None = None) -> tuple[list, list]:
    """Evaluate an expression on a frame; return (values, known)."""
    frame = frame if frame is not None else pd.DataFrame({"_": [0]})
    val = evaluate(parse(text), lambda name, pos: column_value(frame[name], name), len(frame))
    return val.data.tolist(), val.known.tolist()


# --------------------------------------------------------------------------- the expression language


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1 + 2 * 3 - 4 / 2", 5.0),        # * and / before + and -
        ("-(2 + 3) * 2", -10.0),
        ("15_000 + 0.5", 15000.5),
        ("min(3, 1, 2) + max(4, 9)", 10.0),
        ("abs(-2.5) + floor(1.7) + ceil(1.2)", 5.5),
        ("round(2.5) + round(-2.5) + round(1.49)", 1.0),   # half away from zero: 3 - 3 + 1
        ("10 / 0", np.nan),                                 # undefined, not infinite
    ],
)
def test_arithmetic(text: str, value: float) -> None:
    data, known = ev(text)
    np.testing.assert_equal(data[0], value)
    assert known == [not np.isnan(value)]


def test_comparisons_membership_and_functions_on_columns() -> None:
    f = pd.DataFrame({
        "rent": [5000.0, np.nan, 3000.0],
        "kind": pd.Series(["new", "renewal", None], dtype="str"),
        "ages": pd.Series(["4;9", "", "1; 2 ;3"], dtype="str"),
        "flag": [True, False, True],
    })
    assert ev("rent > 4000", f) == ([True, False, False], [True, False, True])
    assert ev("kind == 'new'", f) == ([True, False, False], [True, True, False])
    assert ev('kind in ["new", "other"]', f) == ([True, False, False], [True, True, False])
    assert ev("kind not in ['new']", f) == ([False, True, False], [True, True, False])
    assert ev("count_items(ages)", f)[0] == [2.0, 0.0, 3.0]
    assert ev("is_missing(rent)", f) == ([False, True, False], [True, True, True])
    assert ev("coalesce(rent, 0) + 1", f)[0] == [5001.0, 1.0, 3001.0]
    assert ev("not flag", f) == ([False, True, False], [True, True, True])


def test_missing_values_follow_three_valued_logic() -> None:
    f = pd.DataFrame({"a": [1.0, 1.0, 1.0, np.nan, np.nan, np.nan], "b": [1.0, -1.0, np.nan, 1.0, -1.0, np.nan]})
    # p = a > 0 is (T, T, T, ?, ?, ?); q = b > 0 is (T, F, ?, T, F, ?)
    assert ev("a > 0 and b > 0", f) == ([True, False, False, False, False, False],
                                        [True, True, False, False, True, False])
    assert ev("a > 0 or b > 0", f) == ([True, True, True, True, False, False], [True, True, True, True, False, False])


@pytest.mark.parametrize(
    ("text", "message", "pos"),
    [
        ("__import__('os').system('ls')", "names may not start with '_'. Got '__import__'", 0),
        ("os.system('ls')", "unexpected character '.' (attribute access is not part of the rule language)", 2),
        ("open('/etc/passwd')", "unknown function 'open'; the rule language knows abs, ceil, coalesce, count_items, "
                                "floor, is_missing, max, min, round", 0),
        ("rent; x", "unexpected character ';'", 4),
        ("lambda: 1", "unexpected character ':'", 6),
        ("[1, 2]", "unexpected '['; expected a value", 0),
        ("rent > 1 > 0", "comparisons cannot be chained; join them with 'and'", 9),
        ("rent >", "the expression ends too early; expected a value", 6),
        ("'open", "a text value is not closed with a matching quote", 0),
        ("", "the expression is empty", 0),
        ("min(1)", "min() takes at least 2 argument(s). Got 1", 0),
    ],
)
def test_the_parser_refuses_what_is_not_in_the_grammar(text: str, message: str, pos: int) -> None:
    with pytest.raises(ExprError) as info:
        parse(text)
    assert (info.value.message, info.value.pos) == (message, pos)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rent > 'abc'", "'>' compares a number with a text"),
        ("kind + 1", "'+' needs number values. Got a text"),
        ("rent and flag", "'and' needs truth value values. Got a number"),
        ("count_items(rent)", "count_items() needs text values. Got a number"),
    ],
)
def test_kinds_are_checked_not_coerced(text: str, message: str) -> None:
    f = pd.DataFrame({"rent": [1.0], "kind": pd.Series(["new"], dtype="str"), "flag": [True]})
    with pytest.raises(ExprError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        ev(text, f)


def test_rules_never_call_eval_exec_or_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("eval/exec/compile must not be used by the rule engine")
    engine = RulesEngine(RPA)
    cases = _population(300)
    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, forbidden)
    decided = engine.decide(cases)  # parse and evaluate everything with the builtins poisoned
    assert (decided["error"] == "").all() and len(decided) == 300


# --------------------------------------------------------------------------- rule files and their errors


def write(tmp_path: Path, data: object, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


GOOD = {
    "name": "tiny",
    "version": "3",
    "parameters": {"limit": 100},
    "codes": {"BIG": "over the limit", "SMALL": "small", "ODD": "odd"},
    "derive": {"double": "x * 2"},
    "rules": [
        {"name": "odd", "when": "x - floor(x / 2) * 2 == 1", "reasons": ["ODD"]},
        {"name": "big", "when": "double > limit", "outcome": "refer", "reasons": ["BIG"]},
        {"name": "small", "when": "x < 10", "outcome": "grant", "amount": "double + 1", "reasons": "SMALL",
         "score": "x / 10"},
        {"name": "rest", "outcome": "partial", "amount": "x"},
    ],
}


def test_rules_run_in_order_and_stop_at_the_first_decision(tmp_path: Path) -> None:
    engine = RulesEngine(write(tmp_path, GOOD))
    cases = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "x": [3.0, 60.0, 20.0, 8.0]})
    d = engine.decide(cases)
    assert d["outcome"].tolist() == ["grant", "refer", "partial", "grant"]
    np.testing.assert_array_equal(d["amount"].to_numpy(), [7.0, np.nan, 20.0, 17.0])
    np.testing.assert_array_equal(d["score"].to_numpy(), [0.3, np.nan, np.nan, 0.8])
    assert d["reasons"].tolist() == ["ODD;SMALL", "BIG", "", "SMALL"]
    assert d["rule"].tolist() == ["small", "big", "rest", "small"]
    assert (d["error"] == "").all()
    assert engine.name == "tiny" and engine.version == "3" and engine.sees == ("x",)
    assert engine.definition_hash == hashlib.sha256((tmp_path / "rules.yaml").read_bytes()).hexdigest()
    assert engine.rules == ("odd", "big", "small", "rest")


def test_options_override_parameters(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    cases = pd.DataFrame({"case_id": ["b"], "x": [60.0]})
    assert RulesEngine(path, options={"limit": 1000}).decide(cases)["outcome"].tolist() == ["partial"]
    with pytest.raises(SpecError) as info:
        RulesEngine(path, options={"limt": 5})
    assert str(info.value) == f"{path}: options.limt: is not a parameter of this rule set. Parameters: limit."
    with pytest.raises(SpecError) as info:
        RulesEngine(path, options={"limit": "high"})
    assert str(info.value) == (f"{path}: options.limit: must be a number like the parameter it overrides (100). "
                               "Got 'high'.")


def test_undecided_and_unknown_cases_become_errors_with_reasons(tmp_path: Path) -> None:
    data = {"rules": [{"name": "high", "when": "rent > 5000 and able", "outcome": "refer"},
                      {"name": "low", "when": "rent < 1000", "outcome": "grant", "amount": "rent * factor"}]}
    engine = RulesEngine(write(tmp_path, data))
    cases = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "rent": [6000.0, np.nan, 3000.0, 500.0],
                          "able": pd.array([True, True, True, True], dtype="boolean"),
                          "factor": [1.0, 1.0, 1.0, np.nan]})
    d = engine.decide(cases)
    assert d["error"].tolist() == [
        "",
        "rules[0] (high): the condition `rent > 5000 and able` is unknown because rent is missing",
        "no rule decided this case (add a last rule without 'when' to catch every case)",
        "rules[1] (low): the amount `rent * factor` is unknown because factor is missing",
    ]
    assert d["outcome"].isna().tolist() == [False, True, True, True]
    run = run_engine(engine, cases, labels=LABELS, error_budget=1.0)
    assert run.decisions["error_reason"].tolist()[1] == (
        "the engine reported: rules[0] (high): the condition `rent > 5000 and able` is unknown because rent is missing")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rules": [{"name": "r1", "whn": "x > 1", "outcome": "grant"}]},
         "rules[0] (r1).whn: is not a known key. Known keys of rules[0] (r1): name, description, when, outcome, "
         "amount, score, reasons, stop."),
        ({"rules": [{"name": "ok", "outcome": "grant"},
                    {"name": "new_application", "when": "application_type == 'new')", "outcome": "refer"}]},
         "rules[1] (new_application).when: unexpected ')'; expected an operator or the end of the expression at "
         "position 26 in `application_type == 'new')`."),
        ({"rules": [{"name": "evil", "when": "__import__('os').system('rm -rf /')", "outcome": "grant"}]},
         "rules[0] (evil).when: names may not start with '_'. Got '__import__' at position 1 in "
         "`__import__('os').system('rm -rf /')`."),
        ({"rules": [{"name": "r", "amount": "sqrt(rent)", "outcome": "grant"}]},
         "rules[0] (r).amount: unknown function 'sqrt'; the rule language knows abs, ceil, coalesce, count_items, "
         "floor, is_missing, max, min, round at position 1 in `sqrt(rent)`."),
        ({"rules": [{"name": "r", "outcome": "grant"}, {"name": "r", "outcome": "deny"}]},
         "rules[1] (r).name: the name 'r' is used by an earlier rule; names must be unique."),
        ({"codes": {"A": "a"}, "rules": [{"name": "r", "outcome": "grant", "reasons": ["B"]}]},
         "rules[0] (r).reasons: 'B' is not declared under codes. Declared: A."),
        ({"rules": [{"name": "r", "outcome": "error"}]},
         "rules[0] (r).outcome: must be an outcome label such as grant or refer. Got 'error'."),
        ({"rules": [{"name": "r", "when": "x > 1", "stop": "yes"}]},
         "rules[0] (r).stop: must be true or false. Got 'yes'."),
        ({"rules": [{"outcome": "grant"}]},
         "rules[0].name: every rule needs a name of letters, digits and '_'. Got None."),
        ({"rules": []}, "rules: must be a non-empty list of rules. Got []."),
        ({"rule": []}, "rule: is not a known key. Known keys: name, version, description, norms, parameters, codes, "
                       "derive, rules."),
        ({"parameters": {"rent": 5}, "rules": [{"name": "r", "outcome": "grant"}]},
         "parameters.rent: 'rent' is already the name of a case column, a norm column or the case state."),
        ({"norms": {"guideline": "nowhere.yaml"}, "rules": [{"name": "r", "outcome": "grant"}]},
         "norms.guideline: no such guideline file 'nowhere.yaml'"),
    ],
)
def test_bad_rule_files_name_file_rule_and_expression(tmp_path: Path, data: dict, message: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(SpecError) as info:
        RulesEngine(path)
    assert str(info.value).startswith(f"{path}: {message}")


def test_problems_found_on_the_data_name_file_rule_and_expression(tmp_path: Path) -> None:
    path = write(tmp_path, {"rules": [{"name": "r", "when": "rnet > 5000", "outcome": "refer"},
                                      {"name": "s", "outcome": "grant"}]})
    with pytest.raises(SpecError) as info:
        RulesEngine(path).decide(pd.DataFrame({"case_id": ["a"], "rent": [1.0]}))
    assert str(info.value) == (f"{path}: rules[0] (r).when: unknown name 'rnet': not a column of the cases, a "
                               "parameter, a derived value or a norm column at position 1 in `rnet > 5000`.")
    path = write(tmp_path, {"rules": [{"name": "r", "when": "rent + 1", "outcome": "refer"}]}, "num.yaml")
    with pytest.raises(SpecError) as info:
        RulesEngine(path).decide(pd.DataFrame({"case_id": ["a"], "rent": [1.0]}))
    assert str(info.value) == (f"{path}: rules[0] (r).when: a condition must be true or false. "
                               "Got a number from `rent + 1`.")
    # run_engine does not split a batch for a configuration error: it concerns every case
    with pytest.raises(SpecError):
        run_engine(RulesEngine(path), pd.DataFrame({"case_id": ["a", "b"], "rent": [1.0, 2.0]}), labels=LABELS)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        RulesEngine(tmp_path / "missing.yaml")
    assert str(info.value) == f"{tmp_path / 'missing.yaml'}: no such rule file. Expected a YAML rule set."
    path = write(tmp_path, "rules: [\n  - {name: r\n")
    with pytest.raises(SpecError) as info:
        RulesEngine(path)
    assert str(info.value) == f"{path}: not valid YAML at line 2, column 3: expected the node content, but found '-'."


# --------------------------------------------------------------------------- the municipal RPA example


def _population(n: int, seed: int = 11) -> pd.DataFrame:
    from audit.synth import generate

    return generate(ROOT / "datasets" / "sweden" / "population-2026.yaml", n=n, seed=seed)


TEMPLATE = {
    "case_id": "h1", "benefit_month": "2026-03", "municipality_code": "1287", "application_type": "renewal",
    "channel": "digital", "applicant_age": 40, "sex": "female", "birth_region": "sweden", "years_in_sweden": 40,
    "interpreter": False, "adults": 1, "other_adults": 0, "child_ages": "", "children_preschool_lunch": 0,
    "income_wages": 0.0, "income_sickness": 0.0, "income_unemployment": 2000.0, "income_parental": 0.0,
    "income_pension": 0.0, "income_housing_allowance": 0.0, "income_child_allowance": 0.0,
    "income_maintenance": 0.0, "income_student": 0.0, "income_other": 0.0, "months_on_assistance": 2,
    "rent": 3500.0, "electricity": 300.0, "home_insurance": 100.0, "work_travel": 0.0, "union_fee": 0.0,
    "akassa_fee": 0.0, "medical": 0.0, "childcare": 0.0, "assets": 0.0, "able_to_work": False,
    "registered_af": False, "follows_plan": True, "household_changed": False, "registry_read_failed": False,
}


def test_rpa_decides_hand_computed_cases() -> None:
    rows = [
        {"case_id": "grant"},                                    # 5 220 + 3 500 + 300 + 100 - 2 000 = 7 120
        {"case_id": "capped", "rent": 5000.0},                   # rent capped at 3 901: 5 220 + 3 901 + 400 - 2 000
        {"case_id": "new", "application_type": "new", "channel": "paper", "interpreter": True},
        {"case_id": "rich", "income_wages": 20000.0},            # need < 0: a refusal is for a person
        {"case_id": "family", "adults": 2, "child_ages": "8;9;10", "rent": 9000.0},
        {"case_id": "changed", "registry_read_failed": True, "household_changed": True},
        {"case_id": "jobless", "able_to_work": True, "registered_af": False},
        {"case_id": "saver", "assets": 25000.0, "income_student": 500.0},
    ]
    cases = pd.DataFrame([{**TEMPLATE, **r} for r in rows])
    cases = cases.astype({"child_ages": "str", "case_id": "str"})
    run = run_engine(RulesEngine(RPA), cases.drop(columns=["sex", "birth_region"]), labels=LABELS)
    d = run.decisions.set_index("case_id")
    assert d.loc["grant", ["outcome", "amount", "reasons"]].tolist() == ["grant", 7120.0, ""]
    assert d.loc["capped", ["outcome", "amount", "reasons"]].tolist() == ["partial", 5220 + 3901 + 400 - 2000.0,
                                                                         "EXPENSE_CAPPED"]
    expected_refer = {
        "new": "NEW_APPLICATION;PAPER_APPLICATION;INTERPRETER_NEEDED",
        "rich": "NO_NEED_INCOME_SUFFICIENT",
        "family": "AMOUNT_OVER_THRESHOLD",   # 7 100 + 3 x 3 820 + 2 310 + 8 778 + 400 - 2 000 = 28 948 > 20 000
        "changed": "REGISTRY_READ_FAILED;HOUSEHOLD_CHANGE",
        "jobless": "PLANNING_REVIEW",
        "saver": "NEW_INCOME;NEW_ASSETS",
    }
    for cid, reasons in expected_refer.items():
        assert d.loc[cid, "outcome"] == "refer" and d.loc[cid, "reasons"] == reasons, cid
        assert np.isnan(d.loc[cid, "amount"])


def test_rpa_agrees_with_an_independent_reading_of_its_rules() -> None:
    from audit.norms import MunicipalGuideline, compute_need

    cases = _population(3000)
    run = run_engine(RulesEngine(RPA), cases.drop(columns=["sex", "birth_region"]), labels=LABELS)
    d = run.decisions
    assert run.n_errors == 0
    need = compute_need(cases, guideline=MunicipalGuideline.from_yaml(GUIDELINE))
    flags = {
        "REGISTRY_READ_FAILED": cases["registry_read_failed"],
        "NEW_APPLICATION": cases["application_type"] == "new",
        "HOUSEHOLD_CHANGE": cases["household_changed"],
        "NEW_INCOME": (cases["income_other"] > 0) | (cases["income_student"] > 0),
        "PAPER_APPLICATION": cases["channel"] == "paper",
        "INTERPRETER_NEEDED": cases["interpreter"],
        "PLANNING_REVIEW": cases["able_to_work"] & ~(cases["registered_af"] & cases["follows_plan"]),
        "NEW_ASSETS": cases["assets"] > 10000,
        "NO_NEED_INCOME_SUFFICIENT": need["need_amount"] <= 0,
        "AMOUNT_OVER_THRESHOLD": need["need_amount"] > 20000,
    }
    routed = pd.concat(flags, axis=1).any(axis=1).to_numpy()
    assert (d["outcome"].to_numpy()[routed] == "refer").all()
    expected_codes = [";".join(code for code, f in flags.items() if f.iloc[i]) for i in range(len(cases))]
    assert d.loc[routed, "reasons"].tolist() == [c for c, r in zip(expected_codes, routed, strict=True) if r]
    auto = ~routed
    capped = need["costs_capped"].to_numpy()
    assert (d["outcome"].to_numpy()[auto & capped] == "partial").all()
    assert (d["outcome"].to_numpy()[auto & ~capped] == "grant").all()
    np.testing.assert_array_equal(d["amount"].to_numpy()[auto], np.floor(need["need_amount"].to_numpy()[auto] + 0.5))
    assert 0.2 < auto.mean() < 0.7  # a share of standard cases, as in the Trelleborg accounts


def test_rpa_routing_proxies_fall_on_applicants_born_outside_the_eu() -> None:
    cases = _population(4000, seed=5)
    d = RulesEngine(RPA).decide(cases.drop(columns=["sex", "birth_region"]))
    proxy = d["reasons"].str.contains("PAPER_APPLICATION|INTERPRETER_NEEDED", regex=True).to_numpy()
    region = cases["birth_region"].to_numpy()
    share_outside, share_sweden = proxy[region == "outside_eu"].mean(), proxy[region == "sweden"].mean()
    assert share_outside > 2 * share_sweden  # the robot never sees birth region, yet routes by its proxies


def test_rpa_definition_hash_covers_rule_file_and_guideline() -> None:
    engine = RulesEngine(RPA)
    digest = hashlib.sha256()
    for p in (RPA, GUIDELINE):
        digest.update(p.name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).hexdigest().encode() + b"\n")
    assert engine.definition_hash == digest.hexdigest()
    assert engine.version == "2026.1" and engine.uses_norms
    assert "sex" not in engine.sees and "birth_region" not in engine.sees and "channel" in engine.sees
    assert set(engine.codes) >= {"NEW_APPLICATION", "HOUSEHOLD_CHANGE", "NEW_INCOME", "REGISTRY_READ_FAILED",
                                 "EXPENSE_CAPPED"}


def test_rpa_from_a_spec_with_options() -> None:
    spec = EngineSpec(kind="rules", path="examples/engines/municipal-rpa.yaml", options={"max_auto_amount": 5000},
                      name="strict-rpa")
    engine = build_engine(spec, base_dir=ROOT)
    assert engine.name == "strict-rpa" and engine.parameters["max_auto_amount"] == 5000
    cases = _population(500).drop(columns=["sex", "birth_region"])
    strict = engine.decide(cases)["reasons"].str.contains("AMOUNT_OVER_THRESHOLD").sum()
    default = RulesEngine(RPA).decide(cases)["reasons"].str.contains("AMOUNT_OVER_THRESHOLD").sum()
    assert strict > default
