"""Power of a study: how often each comparison was detected, per level of each factor.

For every factor and each of its levels (the runs at that level, pooled over
the other factors), and for every comparison of the runs (a metric for one
group of one set of sensitive attributes, or one finding), *power* is the
share of runs in which it was detected: the test's Holm- (or otherwise)
adjusted p-value is below the run's ``statistics.alpha``, or the finding
failed. Each share has a Wilson score interval (95 %), so a study of 200
replicates says how precisely it knows the false-alarm rate or the power.

Without factors (a study of replicates only) there is one level, ``all``,
of the factor ``(none)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from audit.metrics import wilson_interval

__all__ = ["NO_FACTOR", "POWER_COLUMNS", "analytic_power", "comparison_label", "detected", "family_wise", "power_table"]

POWER_COLUMNS: tuple[str, ...] = ("factor", "level", "metric", "attributes", "group", "runs", "detected", "power",
                                  "power_low", "power_high")
"""The columns of ``power.csv``, in order."""

NO_FACTOR = "(none)"
"""The factor name of a study without factors."""


def comparison_label(frame: pd.DataFrame) -> pd.Series:
    """The ``metric`` column of power.csv: the metric, or ``finding: <metric> <statistic> <bound>``."""
    is_finding = frame["row"].eq("finding")
    label = frame["metric"].astype(str)
    if is_finding.any():
        stat = frame.get("statistic", pd.Series("", index=frame.index)).fillna("").astype(str)
        bound = frame.get("bound", pd.Series("", index=frame.index)).fillna("").astype(str)
        label = label.where(~is_finding, "finding: " + label + " " + stat + " " + bound)
    return label


def detected(frame: pd.DataFrame) -> pd.Series:
    """Whether each row was detected: p_adjusted < alpha (metric rows) or status FAIL (finding rows)."""
    p = pd.to_numeric(frame["p_adjusted"], errors="coerce").to_numpy(dtype=float)
    alpha = pd.to_numeric(frame["alpha"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        sig = np.isfinite(p) & (p < alpha)
    status = frame["status"] if "status" in frame else pd.Series(None, index=frame.index)
    failed = frame["row"].eq("finding").to_numpy() & status.eq("FAIL").to_numpy()
    is_metric = frame["row"].eq("metric").to_numpy()
    return pd.Series(np.where(is_metric, sig, failed), index=frame.index)


def _tested(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that are comparisons: metric rows with a test in some run, and every finding row.

    A metric row counts only where its group is compared with another group:
    in a run where the group is itself the reference (the default reference
    is the largest group, which may change from run to run) there is no
    comparison to detect. A suppressed group counts, as not detected.
    """
    p = pd.to_numeric(frame["p_value"], errors="coerce")
    keys = ["metric", "attributes", "group"]
    ref = frame["reference_group"]
    compared = ref.notna() & frame["group"].ne(ref)
    metric_rows = frame[frame["row"].eq("metric") & compared]
    has_test = p[metric_rows.index].notna().groupby([metric_rows[k] for k in keys]).transform("any")
    keep = frame["row"].eq("finding")
    keep.loc[has_test.index] = has_test.to_numpy()
    return frame[keep]


def power_table(frame: pd.DataFrame, factors: Sequence[str]) -> pd.DataFrame:
    """The rows of ``power.csv`` from the study's tidy table.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``study.parquet`` (every run's metric and finding rows).
    factors : sequence of str
        The study's factors (columns of ``frame``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`POWER_COLUMNS`; ``power_low``/``power_high`` are the
        95 % Wilson interval of ``detected / runs``.
    """
    if frame.empty:
        return pd.DataFrame({c: [] for c in POWER_COLUMNS})
    rows = _tested(frame).copy()
    rows["label"] = comparison_label(rows)
    rows["hit"] = detected(rows).astype(int)
    parts = []
    for factor in list(factors) or [NO_FACTOR]:
        level = rows[factor].map(_level_text) if factor in rows else pd.Series("all", index=rows.index)
        g = rows.assign(level=level).groupby(["level", "label", "attributes", "group"], sort=False, dropna=False)
        agg = g.agg(runs=("run", "nunique"), detected=("hit", "sum")).reset_index()
        agg.insert(0, "factor", factor)
        parts.append(agg)
    out = pd.concat(parts, ignore_index=True).rename(columns={"label": "metric"})
    out["power"] = out["detected"] / out["runs"]
    low, high = wilson_interval(out["detected"].to_numpy(dtype=float), out["runs"].to_numpy(dtype=float))
    out["power_low"], out["power_high"] = low, high
    # one canonical row order, whatever order the executor finished the runs in
    order = ["factor", "level", "metric", "attributes", "group"]
    return out.sort_values(order, kind="stable", key=lambda c: c.astype(str)).reset_index(drop=True)[list(POWER_COLUMNS)]


def family_wise(frame: pd.DataFrame, factors: Sequence[str] = ()) -> pd.DataFrame:
    """Per factor level: the share of runs with at least one significant test (the family-wise rate).

    Only metric rows count (a finding's FAIL is a threshold on the observed
    value, not a significance test). Columns: ``factor``, ``level``, ``runs``,
    ``any_detected``, ``rate``, ``rate_low``, ``rate_high`` (Wilson, 95 %).
    """
    rows = frame[frame["row"].eq("metric")].copy()
    rows["hit"] = detected(rows).astype(int)
    per_run = rows.groupby("run").agg(hit=("hit", "max")).reset_index()
    parts = []
    for factor in list(factors) or [NO_FACTOR]:
        if factor in frame:
            levels = frame.drop_duplicates("run").set_index("run")[factor].map(_level_text)
        else:
            levels = pd.Series("all", index=per_run["run"])
        r = per_run.assign(level=per_run["run"].map(levels))
        agg = r.groupby("level", sort=False).agg(runs=("run", "nunique"), any_detected=("hit", "sum")).reset_index()
        agg.insert(0, "factor", factor)
        parts.append(agg)
    out = pd.concat(parts, ignore_index=True)
    out["rate"] = out["any_detected"] / out["runs"]
    low, high = wilson_interval(out["any_detected"].to_numpy(dtype=float), out["runs"].to_numpy(dtype=float))
    out["rate_low"], out["rate_high"] = low, high
    return out


def _level_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def analytic_power(effect: Any, mdd: Any, *, alpha: Any, tests: Any) -> np.ndarray:
    """The power that a run's minimum detectable difference promises for a true difference ``effect``.

    A run sizes its MDD for 80 % power of a two-sided test at ``alpha / m``
    (``m`` = ``tests``, the run's family): ``mdd = (z_{1-alpha/(2m)} + z_{0.8}) * se``.
    So the test's standard error is ``se = mdd / (z_{1-alpha/(2m)} + z_{0.8})`` and the
    normal approximation of its power for a true difference ``d`` is
    ``Phi(|d| / se - z_{1-alpha/(2m)})`` (the far tail ignored). At ``|d| = mdd`` this is 0.8.

    Parameters
    ----------
    effect, mdd, alpha, tests : array_like
        The true difference, the run's MDD, its alpha and its number of tests.

    Returns
    -------
    numpy.ndarray
    """
    m = np.maximum(np.asarray(tests, dtype=float), 1.0)
    z_a = stats.norm.ppf(1 - np.asarray(alpha, dtype=float) / (2 * m))
    se = np.asarray(mdd, dtype=float) / (z_a + stats.norm.ppf(0.8))
    with np.errstate(divide="ignore", invalid="ignore"):
        return stats.norm.cdf(np.abs(np.asarray(effect, dtype=float)) / se - z_a)
