"""Trends from the monitoring history: one tidy row per period, metric and group.

A monitoring job keeps every period's metrics in a history (see
:mod:`audit.monitor`); a *trend* is what a reader follows over the months:
the value of chosen metrics for each group, period by period, with the
monitor's baseline, scores and alerts next to it. When a period was run more
than once, the run that finished last counts.

This module computes the trend only. The self-contained HTML page of
``insyn history`` is rendered from it by :func:`audit.report.render_trend_html`
(in Swedish or English, from the report's message catalogues), and
:func:`audit.report.write_trend` writes that page and the trend as CSV.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from audit.exceptions import DataError
from audit.monitor._history import load_history
from audit.public_values import DIMENSIONS

__all__ = ["TREND_COLUMNS", "trend"]

TREND_COLUMNS: tuple[str, ...] = (
    "audit",
    "period",
    "run_id",
    "metric",
    "attributes",
    "group",
    "n",
    "value",
    "ci_low",
    "ci_high",
    "suppressed",
    "monitored",
    "baseline_value",
    "baseline_low",
    "baseline_high",
    "z",
    "cusum_upper",
    "cusum_lower",
    "alert",
    "public_value",
    "reason",
    "language",
)
"""Columns of :func:`trend`."""


def trend(
    history: str | Path | pd.DataFrame,
    *,
    metrics: Sequence[str] | None = None,
    attribute: str | None = None,
    audit: str | None = None,
    values: bool = False,
) -> pd.DataFrame:
    """The trend of chosen metrics by group: one row per period, metric and group.

    When a period was run more than once, the run that finished last counts.

    Parameters
    ----------
    history : str, Path or pandas.DataFrame
        A history folder, or the frame :func:`~audit.monitor.load_history` returned.
    metrics : sequence of str, optional
        Metrics to keep (default: the monitored metrics; every metric when
        none was monitored).
    attribute : str, optional
        Keep one grouping: a sensitive feature (``birth_region``), an
        intersection as recorded (``sex & birth_region``) or ``overall`` for
        all cases. Default: every grouping.
    audit : str, optional
        The audit to show; required when the history holds several.
    values : bool, default False
        Add the public values (rows whose ``public_value`` names the value,
        ``metric`` ``<value>:<indicator>``), of the same grouping; an
        indicator the data cannot measure keeps its one row, whose
        ``reason`` names the missing columns.

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`TREND_COLUMNS`, sorted by metric, attributes,
        group and period (public values last).

    Raises
    ------
    DataError
        When the history is empty, or a metric, attribute or audit is not in it.
    """
    where = str(history) if not isinstance(history, pd.DataFrame) else "the history"
    frame = load_history(history) if not isinstance(history, pd.DataFrame) else history
    if frame.empty:
        raise DataError(f"{where}: no monitor runs (run=*.parquet). Expected a folder written by insyn monitor.")
    for name in ("public_value", "reason", "language"):
        if name not in frame.columns:
            frame = frame.assign(**{name: ""})
    audits = sorted(set(frame["audit"]))
    if audit is not None:
        if audit not in audits:
            raise DataError(f"{where}: no runs of the audit {audit!r}. Audits in the history: {', '.join(audits)}.")
        frame = frame[frame["audit"] == audit]
    elif len(audits) > 1:
        raise DataError(f"{where}: the history holds runs of several audits ({', '.join(audits)}); choose one with "
                        "audit= (insyn history --audit NAME).")
    runs = frame[["period", "run_id", "generated_at"]].drop_duplicates()
    latest = runs.sort_values(["period", "generated_at", "run_id"]).groupby("period").tail(1)["run_id"]
    frame = frame[frame["run_id"].isin(set(latest))]
    is_value = frame["public_value"].astype("str") != ""
    value_rows, frame = frame[is_value], frame[~is_value]
    recorded = sorted(set(frame["metric"]))
    if metrics:
        unknown = [m for m in metrics if m not in recorded]
        if unknown:
            raise DataError(
                f"{where}: the metric {unknown[0]!r} is not in the history. Recorded: {', '.join(recorded)}."
            )
        chosen = list(dict.fromkeys(metrics))
    else:
        monitored = [m for m in dict.fromkeys(frame.loc[frame["monitored"], "metric"])]
        chosen = monitored or recorded
    frame = frame[frame["metric"].isin(chosen)]
    if attribute is not None:
        wanted = "" if attribute in ("overall", "") else attribute
        groupings = sorted(set(frame["attributes"]))
        if wanted not in groupings:
            shown = ", ".join(g or "overall" for g in groupings)
            raise DataError(f"{where}: no groups of {attribute!r} in the history. Recorded: {shown}.")
        frame = frame[frame["attributes"] == wanted]
        unmeasured = value_rows["value"].isna() & value_rows["reason"].astype("str").str.startswith("not measured")
        value_rows = value_rows[(value_rows["attributes"] == wanted) | unmeasured]
    order = {m: i for i, m in enumerate(chosen)}
    out = frame.assign(_order=frame["metric"].map(order)).sort_values(
        ["_order", "attributes", "group", "period"], kind="mergesort")
    if values and len(value_rows):
        rank = {d: i for i, d in enumerate(DIMENSIONS)}
        value_rows = value_rows.assign(_order=len(order) + value_rows["public_value"].map(rank).fillna(len(rank)))
        out = pd.concat([out, value_rows.sort_values(["_order", "metric", "attributes", "group", "period"],
                                                     kind="mergesort")])
    return out[list(TREND_COLUMNS)].reset_index(drop=True)
