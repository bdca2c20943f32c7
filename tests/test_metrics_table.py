"""One metrics-table path: correcting a run's family of tests once, and one metric vocabulary.

Every analysis (group metrics, selection audits, engine comparisons,
counterfactual flips) builds its table with audit.metrics' one table builder;
with ``correct=False`` it leaves the p-value correction and the sizing of the
minimum detectable differences to ``correct_family``, which does both once
for the whole run. The expected values here are computed by hand: Holm's and
Benjamini-Hochberg's adjustments by their textbook loops, the MDD from the
normal quantiles and the smoothed reference rate.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import audit.metrics as M
from audit import synth
from audit.counterfactual import run_counterfactual
from audit.engine import PythonEngine, run_engine
from audit.exceptions import SpecError
from audit.metrics import (
    COLUMNS,
    MDD_SE,
    METRICS,
    SECTIONS,
    compare_decisions,
    correct_family,
    measure,
    measure_selection,
)
from audit.spec import CounterfactualSpec, DiscoverSpec, SelectionSpec, StatisticsSpec

ROOT = Path(__file__).resolve().parents[1]
SENSITIVE = ["sex", "birth_region"]


def decisions(n: int, seed: int) -> pd.DataFrame:
    """A measurement frame with truth, amounts, scores and a second engine's decisions."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], n)
    region = rng.choice(["sweden", "eu", "outside_eu"], n, p=[0.6, 0.15, 0.25])
    status = rng.choice(["ok", "error"], n, p=[0.97, 0.03])
    outcome = rng.choice(["grant", "partial", "deny", "refer"], n, p=[0.5, 0.1, 0.25, 0.15])
    final = np.where(outcome == "refer", rng.choice(["grant", "deny"], n), outcome)
    outcome = np.where(status == "error", "error", outcome)
    final = np.where(status == "error", "error", final)
    amount = np.where(np.isin(final, ["grant", "partial"]), np.round(rng.uniform(500, 9000, n)), np.nan)
    truth = rng.choice(["grant", "partial", "deny"], n, p=[0.55, 0.1, 0.35])
    other = np.where(rng.uniform(size=n) < 0.25, rng.choice(["grant", "deny"], n), final)
    return pd.DataFrame({
        "case_id": [f"c{i}" for i in range(n)], "sex": sex, "birth_region": region, "status": status,
        "outcome": outcome, "final_outcome": final, "amount": amount, "final_amount": amount,
        "truth_outcome": truth, "truth_amount": np.where(truth != "deny", np.round(rng.uniform(500, 9000, n)), 0.0),
        "score": np.round(rng.uniform(0, 1, n), 3),
        "compare_outcome": other,
        "compare_amount": np.where(np.isin(other, ["grant", "partial"]), np.round(rng.uniform(500, 9000, n)), np.nan),
    })


def comparison_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(outcome=frame["final_outcome"])


def holm_by_hand(p: list[float]) -> list[float]:
    """Holm's step-down adjustment, written out (NaN p-values are not tests)."""
    tests = [(v, i) for i, v in enumerate(p) if not math.isnan(v)]
    tests.sort()
    m = len(tests)
    out = [math.nan] * len(p)
    running = 0.0
    for rank, (v, i) in enumerate(tests):
        running = max(running, min(1.0, (m - rank) * v))
        out[i] = running
    return out


def bh_by_hand(p: list[float]) -> list[float]:
    """Benjamini-Hochberg, written out: from the largest p-value down, the running minimum of m p / rank."""
    tests = sorted((v, i) for i, v in enumerate(p) if not math.isnan(v))
    m = len(tests)
    out = [math.nan] * len(p)
    running = 1.0
    for rank in range(m, 0, -1):
        v, i = tests[rank - 1]
        running = min(running, min(1.0, m * v / rank))
        out[i] = running
    return out


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return decisions(4000, 3)


@pytest.mark.parametrize(("correction", "by_hand"), [("holm", holm_by_hand), ("bh", bh_by_hand)])
def test_correct_family_corrects_every_test_of_the_run_once(frame: pd.DataFrame, correction: str,
                                                            by_hand) -> None:
    spec = StatisticsSpec(bootstrap=0, correction=correction)
    first = measure(frame, sensitive_features=SENSITIVE, statistics=spec, correct=False)
    second = compare_decisions(comparison_frame(frame), sensitive_features=SENSITIVE, statistics=spec, correct=False)
    for t in (first, second):
        assert list(t.columns) == [*COLUMNS, MDD_SE]
        assert t["p_adjusted"].isna().all() and t["mdd"].isna().all()
    family = correct_family([first, None, second], spec)
    assert list(family.columns) == list(COLUMNS)
    assert len(family) == len(first) + len(second)
    raw = [*first["p_value"].tolist(), *second["p_value"].tolist()]
    assert family["p_value"].tolist() == pytest.approx(raw, nan_ok=True, rel=0, abs=0)
    expected = by_hand(raw)
    m_total = sum(not math.isnan(v) for v in raw)
    assert m_total > 50  # both tables hold tests: the family is larger than either
    np.testing.assert_allclose(family["p_adjusted"].to_numpy(dtype=float), expected, rtol=1e-12, equal_nan=True)

    # the MDD of one refusal-rate comparison, by hand at alpha / m_total
    rows = family[(family["metric"] == "deny_rate") & family["attributes"].map(lambda a: a == ["birth_region"])]
    group = rows[rows["group"] == "outside_eu"].iloc[0]
    ref = rows[rows["group"] == group["reference_group"]].iloc[0]
    k0, n0, n1 = ref["count"], ref["n"], group["n"]
    p0 = (k0 + 1) / (n0 + 2)
    alpha = spec.alpha / m_total
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(0.8)
    assert group["mdd"] == pytest.approx(z * math.sqrt(p0 * (1 - p0) * (1 / n1 + 1 / n0)), rel=1e-12)
    # and the same comparison measured alone is sized for its own, smaller family
    alone = measure(frame, sensitive_features=SENSITIVE, statistics=spec)
    m_alone = int(alone["p_value"].notna().sum())
    hit = alone[(alone["metric"] == "deny_rate") & (alone["group"] == "outside_eu")].iloc[0]
    z_alone = stats.norm.ppf(1 - spec.alpha / m_alone / 2) + stats.norm.ppf(0.8)
    assert hit["mdd"] == pytest.approx(z_alone * math.sqrt(p0 * (1 - p0) * (1 / n1 + 1 / n0)), rel=1e-12)
    assert hit["mdd"] < group["mdd"]


def test_correct_family_accepts_corrected_tables_as_the_runner_rescaled_them(frame: pd.DataFrame) -> None:
    """Tables measured standalone (correct=True) are rescaled: z(alpha/m_run) / z(alpha/m_table), the old runner's rule."""
    spec = StatisticsSpec(bootstrap=200)
    kw = {"sensitive_features": SENSITIVE, "statistics": spec, "seed": 4}
    raw = [measure(frame, correct=False, **kw), compare_decisions(comparison_frame(frame), correct=False, **kw)]
    done = [measure(frame, **kw), compare_decisions(comparison_frame(frame), **kw)]
    a, b = correct_family(raw, spec), correct_family(done, spec)
    for col in ("p_adjusted", "mdd", "value", "diff_ci_low", "ratio_ci_high"):
        np.testing.assert_allclose(a[col].to_numpy(dtype=float), b[col].to_numpy(dtype=float), rtol=1e-9,
                                   equal_nan=True)
    assert a["reason"].tolist() == b["reason"].tolist()


def test_a_family_of_one_table_is_the_standalone_table(frame: pd.DataFrame) -> None:
    spec = StatisticsSpec(bootstrap=0)
    alone = compare_decisions(comparison_frame(frame), sensitive_features=SENSITIVE, statistics=spec)
    family = correct_family([compare_decisions(comparison_frame(frame), sensitive_features=SENSITIVE,
                                               statistics=spec, correct=False)], spec)
    pd.testing.assert_frame_equal(alone, family)
    assert correct_family([], spec).columns.tolist() == list(COLUMNS)


def test_without_correction_the_mdd_is_sized_at_alpha(frame: pd.DataFrame) -> None:
    spec = StatisticsSpec(bootstrap=0, correction="none")
    table = correct_family([measure(frame, sensitive_features=SENSITIVE, statistics=spec, correct=False)], spec)
    tested = table["p_value"].notna()
    assert (table.loc[tested, "p_adjusted"] == table.loc[tested, "p_value"]).all()
    row = table[(table["metric"] == "refer_rate") & (table["group"] == "male")].iloc[0]
    ref = table[(table["metric"] == "refer_rate") & (table["group"] == row["reference_group"])].iloc[0]
    p0 = (ref["count"] + 1) / (ref["n"] + 2)
    z = stats.norm.ppf(1 - 0.05 / 2) + stats.norm.ppf(0.8)
    assert row["mdd"] == pytest.approx(z * math.sqrt(p0 * (1 - p0) * (1 / row["n"] + 1 / ref["n"])), rel=1e-12)


# --------------------------------------------------------------------------
# one vocabulary


def _flip_engine(cases: pd.DataFrame) -> pd.DataFrame:
    """Refer applicants who need an interpreter; grant 6,000 SEK otherwise."""
    interp = cases["interpreter"].to_numpy(dtype=bool)
    return pd.DataFrame({"case_id": cases["case_id"].to_numpy(), "outcome": np.where(interp, "refer", "grant"),
                         "amount": np.where(interp, np.nan, 6000.0), "reasons": ""})


def emitted_by_every_analysis(frame: pd.DataFrame) -> dict[str, set[str]]:
    """The metric names each analysis emits on data that lets it compute every metric."""
    spec = StatisticsSpec(bootstrap=50)
    out = {"measure": set(measure(frame, sensitive_features=SENSITIVE, statistics=spec)["metric"])}
    rng = np.random.default_rng(1)
    picked = frame.assign(how=rng.choice(["random", "model"], len(frame), p=[0.4, 0.6]),
                          truth_outcome=rng.choice(["error", "ok"], len(frame), p=[0.2, 0.8]))
    out["measure_selection"] = set(measure_selection(
        picked, selection=SelectionSpec(column="how", population_size=50_000), sensitive_features=SENSITIVE,
        statistics=spec)["metric"])
    out["compare_decisions"] = set(compare_decisions(comparison_frame(frame), sensitive_features=SENSITIVE,
                                                     statistics=spec)["metric"])
    cases = synth.generate(ROOT / "datasets" / "sweden" / "population-2026.yaml", n=400, seed=2)
    engine = PythonEngine(_flip_engine)
    features = [c for c in cases.columns if c not in SENSITIVE]
    base = run_engine(engine, cases[features], labels=["grant", "deny", "refer"], error_budget=1.0).decisions
    result = run_counterfactual(
        cases, spec=CounterfactualSpec(attributes=["birth_region"]), engine=engine, features=features,
        labels=["grant", "deny", "refer"], favourable=["grant"], sensitive_features=SENSITIVE, statistics=spec,
        seed=3, base_decisions=base, base_dir=ROOT / "examples")
    out["run_counterfactual"] = set(result.metrics["metric"])
    out["discover"] = set()
    for outcome in ("deny", "refer", "wrongful", "shortfall"):
        found = M.discover(frame, sensitive_features=SENSITIVE, features=SENSITIVE, outcome=outcome,
                           spec=DiscoverSpec(min_size=100, top=2), statistics=spec)
        out["discover"] |= set(found.metrics_frame()["metric"])
    return out


def test_every_emitted_metric_is_registered_with_its_section(frame: pd.DataFrame) -> None:
    emitted = emitted_by_every_analysis(frame)
    assert emitted["measure"] >= {"grant_rate", "roc_auc", "amount_ratio", "calibration_gap"}
    assert emitted["measure_selection"] == set(M.SELECTION_METRICS)
    assert emitted["compare_decisions"] == set(M.COMPARE_METRICS)
    assert emitted["run_counterfactual"] == {"flip_rate", "flip_to_unfavourable", "flip_to_favourable",
                                             "mean_amount_change"}
    assert emitted["discover"] == {"discovered_deny_rate", "discovered_refer_rate",
                                   "discovered_wrongful_decision_rate", "discovered_underpayment_rate"}
    for analysis, names in emitted.items():
        for name in names:
            assert name in METRICS, (analysis, name)
            info = METRICS[name]
            assert info.section in SECTIONS, name
            assert analysis in info.analyses, (analysis, name)
    # and every registered metric is emitted by each analysis the registry names
    for name, info in METRICS.items():
        for analysis in info.analyses:
            assert name in emitted[analysis], (name, analysis)


def test_sections_follow_the_analyses() -> None:
    assert SECTIONS[:4] == ("affected", "routing", "amounts", "baseline")
    by_section = {s: [m for m, i in METRICS.items() if i.section == s] for s in SECTIONS}
    assert set(by_section["selection"]) == set(M.SELECTION_METRICS)
    assert by_section["comparison"] == ["agreement"]
    assert set(by_section["flips"]) == {"flip_rate", "flip_to_unfavourable", "flip_to_favourable",
                                        "mean_amount_change"}
    assert by_section["sample"] == ["n", "share"]
    assert all(by_section.values())
    # measure computes only the metrics that are functions of group statistics
    with pytest.raises(SpecError, match="'hit_rate' is a metric of measure_selection, not of measure"):
        measure(decisions(200, 1), sensitive_features=["sex"], metrics=["hit_rate"])
