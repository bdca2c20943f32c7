"""Calibration studies shipped in examples/: the pipeline's false-alarm rate and its power against the MDD.

(a) ``examples/study-null.yaml``: no group differs in any outcome (every
    bias knob 0; the engine refers exactly the failed registry lookups, drawn
    for every group alike). Over its 200 replicates the share of runs with
    any Holm-adjusted p-value below alpha (the family-wise false-positive
    rate of the whole pipeline) must lie within the binomial interval of
    alpha or below it.
(b) ``examples/study-power.yaml``: one planted bias over n in {2 000, 5 000,
    20 000, 50 000}: the empirical power of the refer-rate test of
    birth_region outside_eu vs sweden agrees with the power that each run's
    reported MDD promises for the planted difference
    (:func:`audit.study.analytic_power`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from audit.metrics import wilson_interval
from audit.study import StudySpec, analytic_power, family_wise, run_study

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_null_study_family_wise_false_positive_rate(tmp_path: Path) -> None:
    spec = StudySpec.from_yaml(ROOT / "examples/study-null.yaml")
    assert spec.replicates >= 200 and not spec.factors
    result = run_study(spec, out=tmp_path / "null", workers=2)
    assert result.exit_code == 0 and result.finished == spec.replicates
    frame = pd.read_parquet(tmp_path / "null" / "study.parquet")
    metrics = frame[frame["row"] == "metric"]
    # every run's family: the tests of the run; a run is a false positive when any adjusted p < alpha
    per_run = metrics.groupby("run").apply(lambda r: bool((r["p_adjusted"] < r["alpha"]).any()), include_groups=False)
    k, n, alpha = int(per_run.sum()), len(per_run), 0.05
    fw = family_wise(frame)
    assert (int(fw["any_detected"].iloc[0]), int(fw["runs"].iloc[0])) == (k, n)
    # within the binomial interval of alpha, or below: the rate's upper Wilson bound is not below alpha and
    # the count is not above the 97.5 % quantile of Binomial(n, alpha)
    low, high = wilson_interval(k, n)
    assert float(low) <= alpha
    assert k <= stats.binom.ppf(0.975, n, alpha)
    # the correction matters: without it, far more runs would have a p-value below alpha
    raw = metrics.groupby("run")["p_value"].min() < alpha
    assert raw.sum() > k


@pytest.mark.slow
def test_power_study_agrees_with_the_reported_mdd(tmp_path: Path) -> None:
    spec = StudySpec.from_yaml(ROOT / "examples/study-power.yaml")
    assert spec.factors["population.n"] == [2000, 5000, 20000, 50000]
    small = StudySpec.from_dict({**spec.to_dict(), "replicates": 30}, base_dir=ROOT / "examples",
                                source=str(ROOT / "examples/study-power.yaml"))
    result = run_study(small, out=tmp_path / "power", workers=2)
    assert result.exit_code == 0
    frame = pd.read_parquet(tmp_path / "power" / "study.parquet")
    sel = frame[(frame["row"] == "metric") & (frame["metric"] == "refer_rate")
                & (frame["attributes"] == "birth_region") & (frame["group"] == "outside_eu")].copy()
    effect = sel["difference"].mean()  # the planted difference, estimated over every run
    assert effect > 0
    sel["predicted"] = analytic_power(effect, sel["mdd"], alpha=sel["alpha"], tests=sel["tests"])
    sel["hit"] = sel["p_adjusted"] < sel["alpha"]
    by_n = sel.groupby("population.n").agg(runs=("run", "nunique"), detected=("hit", "sum"),
                                           predicted=("predicted", "mean"), mdd=("mdd", "mean"))
    low, high = wilson_interval(by_n["detected"].to_numpy(float), by_n["runs"].to_numpy(float), alpha=0.01)
    # the MDD shrinks like 1/sqrt(n)
    ratio = by_n["mdd"].iloc[0] / by_n["mdd"].iloc[-1]
    assert ratio == pytest.approx(np.sqrt(50000 / 2000), rel=0.1)
    # the power the MDD promises lies within the 99 % Wilson interval of the empirical power at every n
    assert np.all((by_n["predicted"].to_numpy() >= low - 1e-9) & (by_n["predicted"].to_numpy() <= high + 1e-9)), by_n
    # and power.csv says the same detection counts
    power = pd.read_csv(tmp_path / "power" / "power.csv")
    row = power[(power["factor"] == "population.n") & (power["metric"] == "refer_rate")
                & (power["attributes"] == "birth_region") & (power["group"] == "outside_eu")]
    assert row.set_index("level")["detected"].sort_index().tolist() == by_n["detected"].sort_index().tolist()
