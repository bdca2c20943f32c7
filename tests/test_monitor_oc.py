"""Operating characteristics of the monitor (audit.monitor._oc), and that the simulation is the monitor."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import special, stats

from audit.exceptions import SpecError
from audit.monitor import cusum_limit, load_history, operating_characteristics, run_monitor, simulate_monitor
from audit.monitor._sequential import moderate_dispersion, proportion_scores, trigamma_inverse

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------
# the pieces


def test_proportion_scores_agree_with_scipy_far_into_the_tails() -> None:
    rng = np.random.default_rng(11)
    cases = [(1000, 6000, 0.3, 0.3), (50, 300, 0.01, 0.02), (5000, 30000, 0.5, 0.45), (10, 10, 0.5, 0.5),
             (200, 1200, 0.001, 0.001), (1000, 6000, 0.42, 0.3)]
    for n, nb, p, q in cases:
        x, xb = rng.binomial(n, p, 500), rng.binomial(nb, q, 500)
        dist = stats.hypergeom(n + nb, x + xb, n)
        mass = dist.pmf(x)
        lower, upper = dist.cdf(x - 1) + mass / 2, dist.sf(x) + mass / 2
        expected = np.where(lower < upper, stats.norm.ppf(lower), stats.norm.isf(upper))
        got = proportion_scores(x, np.full(500, n), xb, np.full(500, nb))
        finite = np.isfinite(expected) & (np.abs(expected) < 37)
        assert np.max(np.abs(got[finite] - expected[finite])) < 1e-8, (n, p, q)
    # beyond double precision of 1 - cdf the log tail keeps going: 0 of 1000 against 500 of 1000
    z = proportion_scores(np.array([0.0]), np.array([1000.0]), np.array([500.0]), np.array([1000.0]))[0]
    # P(X = 0) = C(1000, 500) / C(2000, 500) (all 500 successes among the baseline's cases)
    log_p0 = (special.gammaln(1001) - special.gammaln(501) - special.gammaln(501)) - (
        special.gammaln(2001) - special.gammaln(501) - special.gammaln(1501))
    assert z == pytest.approx(float(special.ndtri_exp(log_p0 + math.log(0.5))), rel=1e-9)


def test_trigamma_inverse_and_moderation_by_hand() -> None:
    y = np.array([0.01, 0.5, 3.0, 50.0, 1e4])
    assert trigamma_inverse(special.polygamma(1, y)) == pytest.approx(y, rel=1e-8)
    # fewer than three streams with a factor: nothing is shared, each keeps its own (at least 1)
    phi, df = moderate_dispersion(np.array([2.0, 0.5, np.nan]), np.array([4.0, 4.0, 0.0]))
    assert phi.tolist() == [2.0, 1.0, 1.0] and df.tolist() == [4.0, 4.0, 0.0]
    # three streams: limma's moment estimates, computed here step by step
    raw, d = np.array([0.5, 2.0, 8.0]), np.array([5.0, 5.0, 5.0])
    e = np.log(raw) - special.digamma(2.5) + np.log(2.5)
    excess = e.var(ddof=1) - special.polygamma(1, 2.5)
    d0 = 2 * trigamma_inverse(np.array([excess]))[0]
    s0 = math.exp(e.mean() + special.digamma(d0 / 2) - math.log(d0 / 2))
    phi, df = moderate_dispersion(raw, d)
    assert excess > 0
    assert phi == pytest.approx(np.maximum(1.0, (d0 * s0 + d * raw) / (d0 + d)), rel=1e-12)
    assert df == pytest.approx(np.full(3, d0 + 5.0))
    # factors that vary no more than chi-square noise: the prior is exact (d0 = inf), every stream gets s0^2
    rng = np.random.default_rng(5)
    calm = 2.0 * rng.chisquare(11, 400) / 11
    phi, df = moderate_dispersion(calm, np.full(400, 11.0))
    assert np.all(np.isinf(df)) and np.ptp(phi) == 0 and phi[0] == pytest.approx(2.0, rel=0.05)
    # groups share their own prior
    phi, _ = moderate_dispersion(np.r_[calm[:200], 3 * calm[200:]], np.full(400, 11.0), np.repeat([0, 1], 200))
    assert phi[0] == pytest.approx(2.0, rel=0.06) and phi[-1] == pytest.approx(6.0, rel=0.06)


def test_simulate_monitor_refuses_bad_input() -> None:
    with pytest.raises(SpecError, match=r"same shape \(monitors, streams, periods\)"):
        simulate_monitor(np.zeros((2, 3)), np.ones((2, 3)), arl=200, k=1)
    with pytest.raises(SpecError, match="counts must lie between 0 and cases"):
        simulate_monitor(np.full((1, 1, 3), 5.0), np.full((1, 1, 3), 4.0), arl=200, k=1)
    with pytest.raises(SpecError, match=r"arl must be a number between 2 and 1e\+12\. Got 1"):
        simulate_monitor(np.zeros((1, 1, 3)), np.ones((1, 1, 3)), arl=1, k=1)


# --------------------------------------------------------------------------
# the simulation runs the monitor's own statistics


def _decision_log(path: Path, counts: dict[str, tuple[int, int]]) -> None:
    """A month's decision log: per group, `refer` for the first x cases, `grant` for the rest."""
    rows = []
    for group, (x, n) in counts.items():
        rows += [{"case_id": f"{group}{i}", "grp": group, "decision": "refer" if i < x else "grant"}
                 for i in range(n)]
    pd.DataFrame(rows).to_csv(path, index=False)


@pytest.mark.slow
def test_the_simulation_gives_the_scores_and_alerts_of_run_monitor(tmp_path: Path) -> None:
    """Counts of three streams (all cases, group a, group b) over 20 months, with month-to-month wander and a
    step in group a's referral rate, go through run_monitor (decision logs, one per month) and through
    simulate_monitor: the same change scores, CUSUM scores, CUSUM sums and alerts in every period."""
    rng = np.random.default_rng(21)
    months = [f"{y}-{m:02d}" for y in (2024, 2025) for m in range(1, 13)][:20]
    sizes = {"a": 300, "b": 500}
    rate_a = np.where(np.arange(20) >= 12, 0.45, 0.30)
    wobble = rng.normal(0, 0.25, (2, 20))
    p_a = 1 / (1 + np.exp(-(np.log(rate_a / (1 - rate_a)) + wobble[0])))
    p_b = 1 / (1 + np.exp(-(np.log(0.5 / 0.5) + wobble[1])))
    xa, xb = rng.binomial(sizes["a"], p_a), rng.binomial(sizes["b"], p_b)
    data = tmp_path / "data"
    data.mkdir()
    for i, month in enumerate(months):
        _decision_log(data / f"decisions-{month}.csv", {"a": (int(xa[i]), sizes["a"]), "b": (int(xb[i]), sizes["b"])})
    spec = tmp_path / "oc.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "oc-equivalence", "seed": 1,
        "population": {"file": "data/decisions-{period}.csv", "case_id": "case_id"},
        "sensitive_features": ["grp"],
        "engine": {"kind": "recorded", "outcome": "decision"},
        "outcomes": {"favourable": ["grant"], "review": ["refer"]},
        "statistics": {"bootstrap": 0},
        "monitor": {"baseline": "trailing", "periods": 6, "metrics": ["refer_rate"], "arl": 50, "k": 1.0},
    }, sort_keys=False), encoding="utf-8")
    hist = tmp_path / "history"
    for month in months:
        run_monitor(spec, history=hist, period=month, write=False)
    h = load_history(hist).query("metric == 'refer_rate'")
    order = ["all", "a", "b"]
    counts = np.stack([xa + xb, xa, xb])[None]
    cases = np.broadcast_to(np.array([800, 300, 500])[None, :, None], counts.shape)
    sim = simulate_monitor(counts, cases, arl=50, k=1.0, periods=6, min_periods=3)
    for s, group in enumerate(order):
        rows = h[h["group"] == group].set_index("period").loc[months]
        assert rows["count"].tolist() == counts[0, s].tolist()
        for column, ours in (("z", sim.z), ("reference_z", sim.reference_z), ("cusum_upper", sim.cusum_upper),
                             ("cusum_lower", sim.cusum_lower)):
            theirs = rows[column].to_numpy(dtype="float64")
            mine = ours[0, s]
            if column.startswith("cusum"):  # the history stores 0 before any score
                mine = np.where(np.isnan(mine), 0.0, mine)
            np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=column)
            assert np.isfinite(theirs).sum() >= 12, column  # scored from the fourth month on (and after a restart)
        alert = rows["alert"].to_numpy()
        assert np.array_equal(sim.change[0, s], np.array(["change" in a for a in alert])), group
        assert np.array_equal(sim.sequential_up[0, s], np.array(["sequential_up" in a for a in alert])), group
        assert np.array_equal(sim.sequential_down[0, s], np.array(["sequential_down" in a for a in alert])), group
    assert sim.alert[0, 1, 12:].any(), "the step in group a raised no alert; the comparison tested too little"
    assert np.nanmax(h["dispersion"]) > 1.0, "no overdispersion; the moderation was not compared"


# --------------------------------------------------------------------------
# the README's table, re-simulated at a smaller size


def _readme_table() -> tuple[dict[tuple[float, str, float], list[float]], float]:
    """The README's operating characteristics with binomial noise: detection shares and months between alarms."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    part = text[text.index("**How sensitive is it?**"):]
    part = part[:part.index("Months between false alarms")] + part[part.index("Months between false alarms"):][:400]
    cells = {}
    for rate, shape, shift, *shares in re.findall(
            r"^\| (0\.\d\d) \| (step|ramp 3), \+(\d+) pp \| (\d+)% \| (\d+)% \| (\d+)% \|$", part, flags=re.M):
        cells[(float(rate), shape, int(shift) / 100)] = [int(x) / 100 for x in shares]
    months = float(re.search(r"Months between false alarms of the whole monitor \(32 streams, no change\): "
                             r"(\d+)", part).group(1))
    return cells, months


@pytest.mark.slow
def test_the_readme_table_holds_within_monte_carlo_error() -> None:
    cells, months = _readme_table()
    assert len(cells) == 8, "the README's table must list both rates, both shifts and both shapes"
    # the goal of issue 21, as the README states it
    for (rate, shape, shift), shares in cells.items():
        if shift == 0.10:
            assert shares[2] >= 0.90, (rate, shape)
    assert months >= 100
    small, readme_reps = 300, 2000
    oc = operating_characteristics(replicates=small, null_replicates=80, null_months=120, seed=99)
    for r in oc.detection.itertuples():
        shown = cells[(r.rate, r.shape, r.shift)]
        for got, claim in zip((r.within_1, r.within_2, r.within_3), shown):
            pooled = (got * small + claim * readme_reps) / (small + readme_reps)
            pooled = min(max(pooled, 0.5 / small), 1 - 0.5 / small)
            se = math.sqrt(pooled * (1 - pooled) * (1 / small + 1 / readme_reps))
            # 3.5 standard errors: 24 comparisons at a family-wise level of about 1 %; 0.005 for the README's rounding
            assert abs(got - claim) <= 3.5 * se + 0.005, (r.rate, r.shape, r.shift, got, claim)
    fa = oc.false_alarms
    # alarm months are Poisson: the README's rate must lie in the small simulation's exact 99.9 % interval
    alarms, total = fa["alarm_months"], fa["monitor_months"]
    low = stats.chi2.ppf(0.0005, 2 * alarms) / 2 if alarms else 0.0
    high = stats.chi2.ppf(0.9995, 2 * alarms + 2) / 2
    assert low <= total / months <= high, (alarms, total, months)


@pytest.mark.slow
def test_the_planted_three_month_rise_of_issue_21_raises_an_alert(tmp_path: Path) -> None:
    """A group of 1,000 applications a month whose referral rate rises from 0.30 to 0.40 over three months (the
    case issue 21 planted) is flagged by the third month with the default settings, and the year before is quiet."""
    rng = np.random.default_rng(2021)
    months = [f"{y}-{m:02d}" for y in (2025, 2026) for m in range(1, 13)][:15]
    rate = np.r_[np.full(12, 0.30), 0.30 + 0.10 * np.arange(1, 4) / 3]
    data = tmp_path / "data"
    data.mkdir()
    for i, month in enumerate(months):
        _decision_log(data / f"decisions-{month}.csv", {"target": (int(rng.binomial(1000, rate[i])), 1000),
                                                         "other": (int(rng.binomial(4000, 0.45)), 4000)})
    spec = tmp_path / "planted.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "planted", "seed": 1, "population": {"file": "data/decisions-{period}.csv", "case_id": "case_id"},
        "sensitive_features": ["grp"], "engine": {"kind": "recorded", "outcome": "decision"},
        "outcomes": {"favourable": ["grant"], "review": ["refer"]}, "statistics": {"bootstrap": 0},
        "monitor": {"metrics": ["grant_rate", "refer_rate"]},  # the default baseline, arl and k
    }, sort_keys=False), encoding="utf-8")
    results = [run_monitor(spec, history=tmp_path / "history", period=m, write=False) for m in months]
    assert [r.alerts for r in results[:12]] == [()] * 12
    rise = [a for r in results[12:] for a in r.alerts if a.metric == "refer_rate" and a.group == "target"]
    assert rise and all(a.direction == "up" for a in rise)
    assert results[-1].cusum_limit == pytest.approx(cusum_limit(4 * results[-1].streams * 200, k=1.0))
