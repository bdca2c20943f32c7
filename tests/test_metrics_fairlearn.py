"""audit.metrics against fairlearn's MetricFrame: same values, same bootstrap.

fairlearn is the reference library: its ``by_group``, ``difference()`` and
``ratio()`` must equal Insyn's values to 1e-12 on the same random data, and
its row bootstrap must agree with Insyn's multinomial bootstrap over cell
counts within Monte Carlo error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    count,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_negative_rate,
    true_positive_rate,
)
from scipy import stats
from sklearn.metrics import accuracy_score, precision_score, roc_auc_score

from audit.metrics import measure, multinomial_bootstrap
from audit.spec import StatisticsSpec

FAV = ["grant", "partial"]


def make_frame(n: int, seed: int) -> pd.DataFrame:
    """All cases ok and with a usable truth, so that fairlearn sees the same rows."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], n, p=[0.4, 0.6])
    region = rng.choice(["sweden", "eu", "outside_eu"], n, p=[0.5, 0.2, 0.3])
    p_deny = np.where(region == "outside_eu", 0.35, 0.25) + np.where(sex == "female", 0.03, 0.0)
    truth = np.where(rng.random(n) < 0.3, "deny", rng.choice(["grant", "partial"], n))
    deny = rng.random(n) < p_deny
    outcome = np.where(rng.random(n) < 0.2, "refer", np.where(deny, "deny", rng.choice(["grant", "partial"], n)))
    final = np.where(outcome == "refer", np.where(rng.random(n) < 0.5, "deny", "grant"), outcome)
    return pd.DataFrame({
        "case_id": [f"r{i}" for i in range(n)],
        "sex": pd.Series(sex, dtype="str"),
        "birth_region": pd.Series(region, dtype="str"),
        "status": "ok",
        "outcome": pd.Series(outcome, dtype="str"),
        "final_outcome": pd.Series(final, dtype="str"),
        "truth_outcome": pd.Series(truth, dtype="str"),
        "score": (np.floor(rng.random(n) * 1000) + 0.5) / 1000,
    })


def negative_predictive_value(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    neg = y_pred == 0
    return float(((y_true == 0) & neg).sum() / neg.sum()) if neg.any() else float("nan")


def _label(key: object) -> str:
    return " & ".join(map(str, key)) if isinstance(key, tuple) else str(key)


def test_by_group_difference_ratio_equal_fairlearn() -> None:
    df = make_frame(5000, seed=21)
    y_true = df["truth_outcome"].eq("deny").astype(int).to_numpy()
    y_deny = df["final_outcome"].eq("deny").astype(int).to_numpy()
    frames = {
        # metric name in Insyn: (fairlearn callable, y_true, y_pred)
        "n": (count, y_true, y_deny),
        "selection_rate": (selection_rate, y_true, y_deny),
        "true_positive_rate": (true_positive_rate, y_true, y_deny),
        "false_positive_rate": (false_positive_rate, y_true, y_deny),
        "false_negative_rate": (false_negative_rate, y_true, y_deny),
        "true_negative_rate": (true_negative_rate, y_true, y_deny),
        "precision": (lambda t, p: precision_score(t, p, zero_division=np.nan), y_true, y_deny),
        "negative_predictive_value": (negative_predictive_value, y_true, y_deny),
        "accuracy": (accuracy_score, y_true, y_deny),
        "grant_rate": (selection_rate, y_true, df["final_outcome"].isin(FAV).astype(int).to_numpy()),
        "refer_rate": (selection_rate, y_true, df["outcome"].eq("refer").astype(int).to_numpy()),
        "automation_rate": (selection_rate, y_true, df["outcome"].ne("refer").astype(int).to_numpy()),
        "roc_auc": (roc_auc_score, y_true, df["score"].to_numpy()),
    }
    groupings = [["sex"], ["birth_region"], ["sex", "birth_region"]]
    table = measure(df, sensitive_features=["sex", "birth_region"], intersections=[["sex", "birth_region"]],
                    statistics=StatisticsSpec(min_group_size=1, bootstrap=0), metrics=list(frames))
    checked = 0
    for attrs in groupings:
        for name, (func, yt, yp) in frames.items():
            mf = MetricFrame(metrics={name: func}, y_true=yt, y_pred=yp, sensitive_features=df[attrs])
            ours = table[(table["metric"] == name) & table["attributes"].map(lambda a: list(a) == attrs)]
            ours = ours.set_index("group")
            by_group = mf.by_group[name]
            assert len(by_group) == len(ours)
            for key, value in by_group.items():
                assert ours.loc[_label(key), "value"] == pytest.approx(value, abs=1e-12, rel=1e-12), (name, key)
                checked += 1
            if name == "n":
                continue
            assert ours["max_min_gap"].iloc[0] == pytest.approx(mf.difference()[name], abs=1e-12)
            assert ours["min_max_ratio"].iloc[0] == pytest.approx(mf.ratio()[name], abs=1e-12)
            ref = ours["reference_group"].iloc[0]
            fl_ref = by_group[[k for k in by_group.index if _label(k) == ref][0]]
            for key, value in by_group.items():
                assert ours.loc[_label(key), "difference"] == pytest.approx(value - fl_ref, abs=1e-12)
                assert ours.loc[_label(key), "ratio"] == pytest.approx(value / fl_ref, rel=1e-12)
    overall = table[table["attributes"].map(len) == 0].set_index("metric")["value"]
    mf = MetricFrame(metrics={"acc": accuracy_score}, y_true=y_true, y_pred=y_deny, sensitive_features=df["sex"])
    assert overall["accuracy"] == pytest.approx(mf.overall["acc"], abs=1e-12)
    assert checked == 13 * (2 + 3 + 6)


@pytest.mark.slow
def test_bootstrap_agrees_with_fairlearn_row_bootstrap() -> None:
    """Row bootstrap (fairlearn, 250 resamples of 10,000 rows) vs multinomial cell draws (Insyn, 20,000).

    Two groups, female (40 %) with a lower selection rate than male (the
    reference): fairlearn's ``difference()`` is ``|female - male| = male -
    female`` and its ``ratio()`` is ``female / male`` in every draw, so its
    quantile q of the difference is minus Insyn's quantile 1 - q. The Monte
    Carlo standard error of a q-quantile from B draws is
    ``sqrt(q (1 - q) / B) / phi(z_q)`` bootstrap SDs; each endpoint must agree
    within 4 combined standard errors.
    """
    n, n_fl, n_ours = 10_000, 250, 20_000
    rng = np.random.default_rng(5)
    sex = rng.choice(["female", "male"], n, p=[0.4, 0.6])
    y_pred = np.where(sex == "female", rng.random(n) < 0.30, rng.random(n) < 0.36).astype(int)
    y_true = (rng.random(n) < 0.3).astype(int)
    df = pd.DataFrame({
        "case_id": [f"b{i}" for i in range(n)], "sex": pd.Series(sex, dtype="str"), "status": "ok",
        "outcome": np.where(y_pred == 1, "deny", "grant"), "truth_outcome": np.where(y_true == 1, "deny", "grant"),
    })
    df["final_outcome"] = df["outcome"]
    qs = [0.025, 0.16, 0.84, 0.975]
    mf = MetricFrame(metrics={"sr": selection_rate}, y_true=y_true, y_pred=y_pred, sensitive_features=df["sex"],
                     n_boot=n_fl, ci_quantiles=qs, random_state=0)
    fl_diff = [float(x["sr"]) for x in mf.difference_ci()]
    fl_ratio = [float(x["sr"]) for x in mf.ratio_ci()]

    ours = {}
    for alpha in (0.05, 0.32):
        table = measure(df, sensitive_features=["sex"], metrics=["selection_rate"], seed=9,
                        statistics=StatisticsSpec(bootstrap=n_ours, alpha=alpha))
        row = table[(table["metric"] == "selection_rate") & (table["group"] == "female")].iloc[0]
        assert row["reference_group"] == "male"
        ours[alpha] = row
    our_diff = {0.025: ours[0.05]["diff_ci_low"], 0.16: ours[0.32]["diff_ci_low"],
                0.84: ours[0.32]["diff_ci_high"], 0.975: ours[0.05]["diff_ci_high"]}
    our_ratio = {0.025: ours[0.05]["ratio_ci_low"], 0.16: ours[0.32]["ratio_ci_low"],
                 0.84: ours[0.32]["ratio_ci_high"], 0.975: ours[0.05]["ratio_ci_high"]}
    sd_diff = (our_diff[0.84] - our_diff[0.16]) / 2
    sd_ratio = (our_ratio[0.84] - our_ratio[0.16]) / 2

    def mc_se(q: float, b: int) -> float:
        return np.sqrt(q * (1 - q) / b) / stats.norm.pdf(stats.norm.ppf(q))

    for i, q in enumerate(qs):
        tol = 4 * np.hypot(mc_se(q, n_fl), mc_se(q, n_ours))
        assert abs(-fl_diff[len(qs) - 1 - i] - our_diff[q]) < tol * sd_diff, (q, fl_diff, our_diff)
        assert abs(fl_ratio[i] - our_ratio[q]) < tol * sd_ratio, (q, fl_ratio, our_ratio)
    # the row bootstrap's SD of a difference of proportions is the binomial one
    f, m = sex == "female", sex == "male"
    p1, p0 = y_pred[f].mean(), y_pred[m].mean()
    analytic = np.sqrt(p1 * (1 - p1) / f.sum() + p0 * (1 - p0) / m.sum())
    assert sd_diff == pytest.approx(analytic, rel=0.05)


def test_multinomial_bootstrap_moments() -> None:
    """Multinomial(N, p): mean N p, variance N p (1 - p), covariance -N p_i p_j."""
    counts = np.array([[30, 10], [50, 110]])
    draws = multinomial_bootstrap(counts, draws=40_000, seed=1)
    assert draws.shape == (40_000, 2, 2)
    assert (draws.sum(axis=(1, 2)) == 200).all()
    flat = draws.reshape(len(draws), -1).astype(float)
    p = counts.ravel() / 200
    np.testing.assert_allclose(flat.mean(axis=0), 200 * p, rtol=0.01)
    cov = np.cov(flat, rowvar=False)
    expected = 200 * (np.diag(p) - np.outer(p, p))
    np.testing.assert_allclose(cov, expected, rtol=0.05, atol=0.3)
    np.testing.assert_array_equal(multinomial_bootstrap(counts, draws=5, seed=3),
                                  multinomial_bootstrap(counts, draws=5, seed=3))
