"""Attribution along the data journey (issue 22, points 4-6).

Values are checked against independent computations: Shapley values by
averaging over every order of the players, cached replays against a full
replay of every case under every coalition, contributions against their
total, the bootstrap against a plain resample of case indices, and planted
bias (registry only, rules only) against the stage it was planted in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit import Audit
from audit.attribution import (
    RULES,
    attribution_rows,
    coalition_name,
    disparities,
    replay,
    shapley_by_permutations,
    shapley_matrix,
    shapley_values,
    split_true_columns,
    stage_columns,
)
from audit.engine import build_engine, run_engine
from audit.exceptions import DataError, SpecError
from audit.population import load_population
from audit.spec import EngineSpec

ROOT = Path(__file__).resolve().parents[1]
POP = str(ROOT / "datasets" / "sweden" / "population-2026.yaml")
ROUTER = str(ROOT / "examples" / "engines" / "study-registry-router.yaml")
STAGES = ["applicant", "registry", "caseworker"]


def _spec(tmp_path: Path | None = None, *, n: int = 20000, bias: dict | None = None, engine: str | dict = ROUTER,
          **changes: object) -> Audit:
    data: dict = {
        "name": "attribution-test", "seed": 7,
        "population": {"synthetic": POP, "n": n, **({"bias": bias} if bias else {})},
        "sensitive_features": ["birth_region"], "reference_groups": {"birth_region": "sweden"},
        "engine": engine if isinstance(engine, dict) else {"kind": "rules", "path": engine},
        "attribution": {"attribute": "birth_region", "group": "outside_eu", "stages": STAGES},
        "statistics": {"bootstrap": 300},
        "report": {"formats": ["json"], "language": "en"},
    }
    data.update(changes)
    return Audit.from_dict(data, base_dir=tmp_path or ROOT, source="attribution-test.yaml")


def _rows(result) -> dict[str, dict]:
    return {r["stage"]: r for r in result.to_dict()["attribution"]}


# --------------------------------------------------------------------------
# exact Shapley values


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_shapley_matrix_equals_averaging_over_every_order(k: int) -> None:
    rng = np.random.default_rng(k)
    v = rng.normal(size=2**k)
    phi = shapley_values(v)
    np.testing.assert_allclose(phi, shapley_by_permutations(v), atol=1e-12)
    assert phi.sum() == pytest.approx(v[-1] - v[0])  # efficiency
    assert shapley_matrix(k).shape == (k, 2**k)


def test_shapley_of_an_additive_game_is_each_players_own_effect() -> None:
    effects = np.array([0.5, -0.2, 1.5])
    v = np.array([sum(effects[j] for j in range(3) if c >> j & 1) for c in range(8)])
    np.testing.assert_allclose(shapley_values(v), effects, atol=1e-12)


def test_shapley_refuses_too_many_players() -> None:
    with pytest.raises(ValueError, match="between 1 and 6. Got 7"):
        shapley_matrix(7)


# --------------------------------------------------------------------------
# replays: cached decisions equal a full replay of every case


def test_cached_replays_equal_a_full_replay_of_every_coalition() -> None:
    audit = _spec(n=3000, bias={"registry_failure_recent_arrivals": 0.6, "under_reported_income_paper": 0.5,
                                "able_to_work_born_outside_eu": 0.4},
                  engine=str(ROOT / "examples" / "engines" / "municipal-rpa.yaml"))
    pop = load_population(audit)
    engine = build_engine(EngineSpec(kind="rules", path=str(ROOT / "examples" / "engines" / "municipal-rpa.yaml")),
                          base_dir=ROOT)
    features = ["case_id", *[c for c in pop.frame.columns if c not in ("case_id", "birth_region")]]
    recorded, truth = pop.frame[features], pop.circumstances[features]
    labels = ["grant", "partial", "deny", "refer"]
    decisions = run_engine(engine, recorded, labels=labels).decisions
    columns = stage_columns(STAGES, pop.provenance, features[1:])
    rep = replay(engine, recorded, truth, decisions, columns, labels=labels)
    assert rep.changed.any(axis=0).all()  # every stage changed some case
    assert rep.rows_replayed < 3000  # only the cases whose input differs were decided again
    for c in range(2**3):
        x = recorded.copy()
        for j, stage in enumerate(STAGES):
            if not c >> j & 1:
                x[columns[stage]] = truth[columns[stage]].to_numpy()
        full = run_engine(engine, x, labels=labels).decisions
        expected = np.where(full["status"] == "ok", full["outcome"].astype(object), "error")
        assert (rep.outcomes(c) == expected).all(), coalition_name(c, STAGES)


# --------------------------------------------------------------------------
# planted bias: the stage it was planted in gets it


def test_registry_bias_is_attributed_to_the_registry_stage() -> None:
    result = _spec(bias={"registry_failure_recent_arrivals": 0.5}).run(write=False)
    rows = _rows(result)
    total = rows[RULES]["total"]
    assert total > 1.0  # outside_eu is routed much more often than sweden
    assert sum(r["contribution"] for r in rows.values()) == pytest.approx(total, abs=1e-12)
    assert rows["registry"]["contribution"] >= 0.9 * total
    assert rows["registry"]["share"] >= 0.9
    assert rows["applicant"]["contribution"] == 0 and rows["caseworker"]["contribution"] == 0
    lo, hi = rows["registry"]["ci_low"], rows["registry"]["ci_high"]
    assert lo < rows["registry"]["contribution"] < hi
    # an independent recomputation of the total from the decisions: refer-rate ratio minus 1
    dec = result.decisions
    rate = dec[dec["status"] == "ok"].groupby("birth_region")["outcome"].apply(lambda s: (s == "refer").mean())
    assert total == pytest.approx(rate["outside_eu"] / rate["sweden"] - 1, rel=1e-12)
    # the report's table inside the journey section, in both languages
    from audit.report import render_html, render_markdown

    md = render_markdown(result, language="en")
    assert "### Attribution along the data journey" in md
    line = next(x for x in md.splitlines() if x.startswith("| Registry reads |"))
    assert f"{rows['registry']['contribution']:.3f}" in line
    assert "Attribuering längs dataresan" in render_html(result, language="sv")


def test_rules_bias_on_unbiased_data_is_attributed_to_the_rules(tmp_path: Path) -> None:
    rules = tmp_path / "arrival-router.yaml"
    rules.write_text(
        "name: arrival-router\nversion: '1'\ncodes:\n  RECENT: arrived within five years\n"
        "rules:\n  - name: recent\n    when: years_in_sweden < 5 or registry_read_failed\n    outcome: refer\n    reasons: [RECENT]\n"
        "  - name: grant\n    outcome: grant\n    amount: 1000\n", encoding="utf-8")
    result = _spec(tmp_path, engine=str(rules)).run(write=False)
    rows = _rows(result)
    total = rows[RULES]["total"]
    assert total > 1.0
    assert rows[RULES]["contribution"] >= 0.9 * total
    assert sum(r["contribution"] for r in rows.values()) == pytest.approx(total, abs=1e-12)
    assert all(rows[s]["contribution"] == 0 and rows[s]["cases_changed"] == 0 for s in STAGES)


def test_two_stages_and_the_rules_add_up(tmp_path: Path) -> None:
    result = _spec(tmp_path, n=8000, bias={"registry_failure_recent_arrivals": 0.4, "under_reported_income_paper": 0.6,
                                            "able_to_work_born_outside_eu": 0.5},
                   engine=str(ROOT / "examples" / "engines" / "municipal-rpa.yaml")).run(write=False)
    rows = _rows(result)
    total = rows[RULES]["total"]
    assert sum(r["contribution"] for r in rows.values()) == pytest.approx(total, abs=1e-12)
    assert {r["stage"] for r in rows.values()} == {*STAGES, RULES}
    assert all(r["ci_low"] <= r["contribution"] <= r["ci_high"] for r in rows.values())


# --------------------------------------------------------------------------
# the bootstrap: a pattern multinomial is a resample of cases


def test_bootstrap_interval_matches_a_plain_case_resample() -> None:
    rng = np.random.default_rng(0)
    n, k = 4000, 2
    groups = np.where(rng.random(n) < 0.5, "g", "r")
    # decisions under 4 coalitions: refer with a probability that grows with the coalition, more for g
    p = np.array([0.1, 0.15, 0.2, 0.3])[None, :] + np.where(groups == "g", 0.1, 0.0)[:, None]
    codes = np.where(rng.random((n, 4)) < p, 1, 0).astype(np.int16)

    class _Rep:  # the fields attribution_rows reads
        stages, labels, columns = ("a", "b"), ("grant", "refer"), {"a": [], "b": []}
        passes = rows_replayed = 0
        changed = np.zeros((n, 2), dtype=bool)
        case_id = np.arange(n).astype(str)

    rep = _Rep()
    rep.codes = codes
    att = attribution_rows(rep, groups, metric="refer_rate", attribute="x", group="g", reference="r", scale="ratio",
                           review=["refer"], min_group_size=10, bootstrap=3000, alpha=0.05, seed=1)
    draws = []
    for _ in range(1500):
        idx = rng.integers(0, n, n)
        g = groups[idx] == "g"
        y = codes[idx] == 1
        d = disparities(y[g].mean(axis=0), y[~g].mean(axis=0), "ratio")
        draws.append((d - d[0]) @ shapley_matrix(k).T)
    lo, hi = np.percentile(np.array(draws), [2.5, 97.5], axis=0)
    for j, stage in enumerate(("a", "b")):
        row = att.rows[j]
        width = hi[j] - lo[j]
        assert row["ci_low"] == pytest.approx(lo[j], abs=0.15 * width)
        assert row["ci_high"] == pytest.approx(hi[j], abs=0.15 * width)


def test_small_groups_are_suppressed_with_a_reason() -> None:
    n = 40
    groups = np.array(["g"] * 5 + ["r"] * 35)

    class _Rep:
        stages, labels, columns = ("a",), ("grant", "refer"), {"a": []}
        passes = rows_replayed = 0
        changed = np.zeros((n, 1), dtype=bool)
        case_id = np.arange(n).astype(str)
        codes = np.ones((n, 2), dtype=np.int16)

    att = attribution_rows(_Rep(), groups, metric="refer_rate", attribute="x", group="g", reference="r",
                           scale="difference", review=["refer"], min_group_size=10, bootstrap=100, alpha=0.05, seed=1)
    assert all(r["contribution"] is None and r["total"] is None for r in att.rows)
    assert att.rows[0]["reason"].startswith("suppressed: g has 5 cases, fewer than statistics.min_group_size (10)")


# --------------------------------------------------------------------------
# truth from the true circumstances (point 4)


def _wrongful(result) -> int:
    dec = result.decisions
    out = dec[(dec["status"] == "ok") & (dec["birth_region"] == "outside_eu")]
    return int((out["final_outcome"] != out["truth_outcome"]).sum())


@pytest.mark.parametrize("basis", ["recorded", "true_circumstances"])
def test_registry_bias_shows_as_wrongful_decisions_only_against_the_true_circumstances(basis: str) -> None:
    audit = Audit.from_dict({
        "name": "basis", "seed": 5,
        "population": {"synthetic": POP, "n": 6000, "bias": {"registry_lag_recent_arrivals": 1.0}},
        "sensitive_features": ["birth_region"], "reference_groups": {"birth_region": "sweden"},
        "engine": {"kind": "reference"}, "truth": {"reference": True, "basis": basis},
        "statistics": {"bootstrap": 0},
    }, base_dir=ROOT, source="basis.yaml")
    result = audit.run(write=False)
    wrongful = _wrongful(result)
    metrics = result.metrics_frame()
    grant = metrics[(metrics["metric"] == "wrongful_grant_rate") & (metrics["group"] == "outside_eu")]["value"]
    if basis == "recorded":
        assert wrongful == 0 and float(grant.iloc[0]) == 0
    else:
        assert wrongful > 0 and float(grant.iloc[0]) > 0
        sweden = result.decisions.query("birth_region == 'sweden' and status == 'ok'")
        assert (sweden["final_outcome"] == sweden["truth_outcome"]).all()  # the knob never touches them


def test_truth_basis_needs_the_reference() -> None:
    with pytest.raises(SpecError, match="basis true_circumstances computes the law's baseline; it needs reference"):
        Audit.from_dict({"name": "x", "population": {"synthetic": POP, "n": 10}, "sensitive_features": ["sex"],
                         "engine": {"kind": "reference"}, "truth": {"basis": "true_circumstances"}})


# --------------------------------------------------------------------------
# files: true_<column> columns, and what happens without true circumstances


def test_true_columns_of_a_file_are_split_off_and_attributed(tmp_path: Path) -> None:
    pop = load_population(_spec(n=4000, bias={"registry_failure_recent_arrivals": 0.8}))
    frame = pop.frame.copy()
    frame["true_registry_read_failed"] = pop.circumstances["registry_read_failed"].to_numpy()
    path = tmp_path / "cases.parquet"
    frame.to_parquet(path, index=False)
    recorded, truth = split_true_columns(frame, source="cases.parquet")
    assert "true_registry_read_failed" not in recorded.columns
    assert (truth["registry_read_failed"] == pop.circumstances["registry_read_failed"]).all()
    audit = _spec(tmp_path, population={"file": str(path), "provenance": {"registry_read_failed": "registry:ssbtek"}})
    rows = _rows(audit.run(write=False))
    assert rows["registry"]["share"] >= 0.9
    assert rows["registry"]["columns"] == ["registry_read_failed"]
    assert rows["applicant"]["columns"] == []  # no creator declared: the file's columns are "system"


def test_a_true_column_without_its_recorded_column_is_refused() -> None:
    with pytest.raises(DataError, match=r"cases.csv: the column 'true_rent2' holds true circumstances, but there is "
                                        r"no recorded column 'rent2' beside it"):
        split_true_columns(pd.DataFrame({"case_id": ["a"], "true_rent2": [1.0]}), source="cases.csv")


def test_attribution_without_true_circumstances_says_what_is_needed(tmp_path: Path) -> None:
    pop = load_population(_spec(n=300))
    path = tmp_path / "cases.parquet"
    pop.frame.to_parquet(path, index=False)
    with pytest.raises(DataError, match="needs the cases' true circumstances beside what was recorded"):
        _spec(tmp_path, population={"file": str(path)}).run(write=False)


def test_spec_errors_name_the_key() -> None:
    with pytest.raises(SpecError, match=r"attribution.attribute must be one of sensitive_features \(birth_region\)"):
        _spec(attribution={"attribute": "sex", "group": "female"})
    with pytest.raises(SpecError, match="stages"):
        _spec(attribution={"attribute": "birth_region", "group": "outside_eu", "stages": list("abcdef")})
    with pytest.raises(SpecError, match=r"attribution.group must be a value of birth_region .*Got 'mars'"):
        _spec(n=500, attribution={"attribute": "birth_region", "group": "mars"}).run(write=False)


# --------------------------------------------------------------------------
# the run folder: results.json, attribution.parquet and insyn trace


def test_run_folder_holds_the_attribution_and_trace_names_the_stage(tmp_path: Path) -> None:
    from jsonschema import Draft202012Validator

    result = _spec(tmp_path, n=3000, bias={"registry_failure_recent_arrivals": 0.8}).run(out=tmp_path / "reports")
    run_dir = result.run_dir
    data = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    schema = json.loads((ROOT / "audit" / "schemas" / "results.schema.json").read_text(encoding="utf-8"))
    errors = list(Draft202012Validator(schema).iter_errors(data))
    assert not errors, errors[:3]
    assert len(data["attribution"]) == 4
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert "attribution.parquet" in manifest["artifacts"]
    per_case = pd.read_parquet(run_dir / "attribution.parquet")
    flipped = per_case[(per_case["stages_changed"] == "registry")
                       & (per_case["outcome[applicant+registry+caseworker]"] == "refer")
                       & (per_case["outcome[none]"] == "grant")]
    assert len(flipped)
    case = str(flipped["case_id"].iloc[0])
    untouched = str(per_case.loc[per_case["stages_changed"] == "", "case_id"].iloc[0])
    cmd = [sys.executable, "-m", "audit.cli", "trace", str(run_dir)]
    out = subprocess.run([*cmd, case], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "decision as recorded: refer; on the true circumstances: grant" in out
    assert "registry: reverting its changes alone gives grant: this stage changed the decision." in out
    out = subprocess.run([*cmd, untouched], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "no stage changed a field the engine sees" in out


def test_recorded_decisions_and_chunked_runs_are_refused_with_the_reason(tmp_path: Path) -> None:
    pop = load_population(_spec(n=300))
    path = tmp_path / "log.parquet"
    pop.frame.assign(decision="grant").to_parquet(path, index=False)
    recorded = _spec(tmp_path, population={"synthetic": POP, "n": 300},
                     engine={"kind": "recorded", "path": str(path), "outcome": "decision"})
    with pytest.raises(SpecError, match="replays the engine on changed data, but engine.kind is recorded"):
        from audit.attribution import attribute

        attribute(recorded, engine=None, engine_input=pop.frame[["case_id"]], decisions=pd.DataFrame(),
                  cases=pop.frame, circumstances=pop.circumstances, provenance=pop.provenance)
    from audit.execution import check_chunkable

    with pytest.raises(SpecError, match="'attribution' is not supported by a chunked run yet"):
        check_chunkable(_spec(n=300))
    basis = _spec(n=300, attribution=None, truth={"reference": True, "basis": "true_circumstances"})
    with pytest.raises(SpecError, match="truth.basis true_circumstances is not supported by a chunked run yet"):
        check_chunkable(basis)


def test_every_shipped_knob_has_a_stage_and_the_scale_knob_over_reports_exactly() -> None:
    from audit.synth import generate_latent, load_population_spec

    model = load_population_spec(POP)
    assert {k: model.knob_stage(v) for k, v in model.bias_knobs.items()} == {
        "able_to_work_born_outside_eu": "caseworker", "follows_plan_young_men": "caseworker",
        "over_reported_costs_new_applicants": "applicant", "registry_failure_recent_arrivals": "registry",
        "registry_lag_recent_arrivals": "registry", "under_reported_income_paper": "applicant"}
    pop = generate_latent(model, n=5000, seed=3, bias={"over_reported_costs_new_applicants": 0.5})
    true, rec = pop.latent, pop.cases
    new = (true["application_type"] == "new").to_numpy()
    for col in ("rent", "electricity"):
        changed = (rec[col] != true[col]).to_numpy()
        assert not (changed & ~new).any()  # only new applications
        np.testing.assert_array_equal(rec.loc[changed, col], np.round(true.loc[changed, col] * 1.2))
        eligible = new & (true[col] > 0).to_numpy()
        assert abs(changed.sum() / eligible.sum() - 0.5) < 0.06  # strength 0.5 of the eligible amounts
    assert pop.bias["over_reported_costs_new_applicants"]["stage"] == "applicant"
    assert pop.bias["over_reported_costs_new_applicants"]["factor"] == 1.2


def test_a_scale_knob_needs_its_factor() -> None:
    from audit.synth import load_population_spec

    model = load_population_spec(POP)
    with pytest.raises(SpecError, match=r"bias.over_reported_costs_new_applicants.factor must be a number <= 10"):
        model.resolve_bias({"over_reported_costs_new_applicants": {"factor": 50}})
    with pytest.raises(SpecError, match="factor is required for kind scale"):
        model.resolve_bias({"under_reported_income_paper": {"kind": "scale"}})
