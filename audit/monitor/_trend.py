"""Trends from the monitoring history: a tidy table, a self-contained HTML page, a CSV.

The page is meant to be mailed, archived or put on an intranet without a web
server: one HTML file with inline CSS and one inline SVG line chart per
metric and attribute, no script, no font and no request to anywhere (a
Content-Security-Policy of ``default-src 'none'`` says so to the browser).
Every chart has a ``<title>`` and a ``<desc>`` that say in words what it
shows, each line is labelled with its group at its end (so nothing is told by
colour alone), and a table with every value follows each chart as its text
alternative. Every string from the data is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit._privacy import MASK, PNR_PATTERN
from audit._version import __version__
from audit.exceptions import DataError
from audit.monitor._history import load_history

__all__ = ["TREND_COLUMNS", "render_trend_html", "trend", "write_trend"]

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
)
"""Columns of :func:`trend`."""

_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
"""The Okabe-Ito palette (colour-blind safe), in the order lines use it."""
_ALERT = "#D55E00"
_W, _H = 720, 320
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 150, 20, 56


def _esc(value: object) -> str:
    return html.escape(PNR_PATTERN.sub(MASK, str(value)), quote=True)


def _attr_label(attributes: str) -> str:
    return attributes if attributes else "all cases"


def trend(
    history: str | Path | pd.DataFrame,
    *,
    metrics: Sequence[str] | None = None,
    attribute: str | None = None,
    audit: str | None = None,
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

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`TREND_COLUMNS`, sorted by metric, attributes,
        group and period.

    Raises
    ------
    DataError
        When the history is empty, or a metric, attribute or audit is not in it.
    """
    where = str(history) if not isinstance(history, pd.DataFrame) else "the history"
    frame = load_history(history) if not isinstance(history, pd.DataFrame) else history
    if frame.empty:
        raise DataError(f"{where}: no monitor runs (run=*.parquet). Expected a folder written by insyn monitor.")
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
    order = {m: i for i, m in enumerate(chosen)}
    out = frame.assign(_order=frame["metric"].map(order)).sort_values(
        ["_order", "attributes", "group", "period"], kind="mergesort")
    return out[list(TREND_COLUMNS)].reset_index(drop=True)


# --------------------------------------------------------------------------
# HTML


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    first = math.floor(low / step) * step
    ticks = []
    t = first
    while t <= high + step * 0.5:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _value_text(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    v = float(x)
    return f"{v:,.0f}".replace(",", " ") if abs(v) >= 100 else f"{v:.3f}"


def _chart(panel: pd.DataFrame, *, chart_id: str, metric: str, attributes: str) -> str:
    periods = sorted(set(panel["period"]))
    groups = list(dict.fromkeys(panel["group"]))
    values = panel["value"].to_numpy(dtype="float64")
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    ticks = _ticks(low, high)
    y0, y1 = ticks[0], ticks[-1]
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    step = plot_w / max(len(periods) - 1, 1)
    xpos = {p: _LEFT + (i * step if len(periods) > 1 else plot_w / 2) for i, p in enumerate(periods)}

    def ypos(v: float) -> float:
        return _TOP + plot_h * (1 - (v - y0) / (y1 - y0 if y1 > y0 else 1.0))

    title = f"{metric} by {_attr_label(attributes)}, {periods[0]} to {periods[-1]}"
    sentences = []
    for g in groups:
        rows = panel[panel["group"] == g].sort_values("period")
        vals = rows["value"].to_numpy(dtype="float64")
        ok = np.isfinite(vals)
        if ok.any():
            first, last = vals[ok][0], vals[ok][-1]
            sentences.append(f"{g or 'all cases'}: {_value_text(first)} in {rows['period'][ok].iloc[0]}, "
                             f"{_value_text(last)} in {rows['period'][ok].iloc[-1]}")
    flagged = panel[panel["alert"].astype("str") != ""]
    flags = [f"{g or 'all cases'} in {p}" for g, p in zip(flagged["group"], flagged["period"])]
    alert_text = f"Alerts: {'; '.join(flags)}." if flags else "No alerts."
    desc = (f"Line chart of {metric} per period for {len(groups)} group(s) of {_attr_label(attributes)}. "
            + ". ".join(sentences) + ". " + alert_text)
    parts = [
        f'<svg viewBox="0 0 {_W} {_H}" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-t">{_esc(title)}</title>',
        f'<desc id="{chart_id}-d">{_esc(desc)}</desc>',
        f'<rect x="0" y="0" width="{_W}" height="{_H}" fill="#FFFFFF"/>',
    ]
    for t in ticks:
        y = ypos(t)
        parts.append(f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#E6E6E6"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
                     f'{_esc(_value_text(t))}</text>')
    every = max(1, math.ceil(len(periods) / 8))
    shown = [i for i in range(len(periods)) if i % every == 0]
    last = len(periods) - 1
    if shown[-1] != last:  # always label the last period; drop the label before it when they would touch
        shown = shown[:-1] + [last] if last - shown[-1] < every and len(shown) > 1 else shown + [last]
    for i in shown:
        x = xpos[periods[i]]
        parts.append(f'<text x="{x:.1f}" y="{_TOP + plot_h + 18}" text-anchor="middle" class="tick">'
                     f'{_esc(periods[i])}</text>')
    base = _TOP + plot_h
    parts.append(f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{base}" y2="{base}" stroke="#595959"/>')
    ends: list[tuple[float, float, str, str]] = []
    for gi, g in enumerate(groups):
        colour = _COLOURS[gi % len(_COLOURS)]
        rows = panel[panel["group"] == g].sort_values("period")
        pts = [(xpos[p], ypos(v), p, v, a) for p, v, a in zip(rows["period"], rows["value"], rows["alert"])
               if isinstance(v, (int, float)) and math.isfinite(v)]
        if not pts:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, *_ in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y, p, v, a in pts:
            label = f"{g or 'all cases'}, {p}: {_value_text(v)}" + (f" (alert: {a})" if a else "")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
                         f'<title>{_esc(label)}</title></circle>')
            if a:
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="8" fill="none" stroke="{_ALERT}" '
                             'stroke-width="2"/>')
                parts.append(f'<text x="{x:.1f}" y="{y - 11:.1f}" text-anchor="middle" class="alert">!</text>')
        ends.append((pts[-1][1], pts[-1][0], colour, g or "all cases"))
    # line labels at the right end, pushed apart so that they do not overlap
    ends.sort()
    placed: list[float] = []
    for y, x, colour, text in ends:
        y = max(y, placed[-1] + 14) if placed else y
        placed.append(y)
        parts.append(f'<text x="{x + 10:.1f}" y="{y + 4:.1f}" class="label" fill="{colour}">{_esc(text[:22])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(panel: pd.DataFrame, *, metric: str, attributes: str) -> str:
    periods = sorted(set(panel["period"]))
    groups = list(dict.fromkeys(panel["group"]))
    cells = {(p, g): (v, a) for p, g, v, a in zip(panel["period"], panel["group"], panel["value"], panel["alert"])}
    head = "".join(f'<th scope="col">{_esc(g or "all cases")}</th>' for g in groups)
    rows = []
    for p in periods:
        tds = []
        for g in groups:
            v, a = cells.get((p, g), (None, ""))
            mark = f' <strong class="flag">alert: {_esc(a)}</strong>' if a else ""
            tds.append(f"<td>{_esc(_value_text(v))}{mark}</td>")
        rows.append(f'<tr><th scope="row">{_esc(p)}</th>{"".join(tds)}</tr>')
    caption = f"{metric} by {_attr_label(attributes)}: values per period (text alternative of the chart)"
    return (f'<table><caption>{_esc(caption)}</caption><thead><tr><th scope="col">period</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#1A1A1A;margin:2rem auto;max-width:60rem;
padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2.5rem}
svg{width:100%;height:auto;max-width:720px;display:block}
svg .tick{font-size:12px;fill:#595959}svg .label{font-size:12px}svg .alert{font-size:14px;font-weight:bold;fill:#D55E00}
table{border-collapse:collapse;margin:0.75rem 0;font-size:0.9rem}
th,td{border:1px solid #BFBFBF;padding:0.2rem 0.5rem;text-align:right}
caption{text-align:left;font-weight:600;margin-bottom:0.3rem}.flag{color:#D55E00}
details{margin-top:0.5rem}
"""


def render_trend_html(frame: pd.DataFrame, *, title: str | None = None) -> str:
    """Render a trend (the frame of :func:`trend`) as one self-contained HTML page.

    Parameters
    ----------
    frame : pandas.DataFrame
        The output of :func:`trend`.
    title : str, optional
        Page title (default ``"Trend of <audit>"``).

    Returns
    -------
    str
        The page: inline CSS and SVG, no script, no external resource.
    """
    if frame.empty:
        raise DataError("the trend is empty: there is nothing to draw.")
    audit_name = str(frame["audit"].iloc[0])
    page_title = title or f"Trend of {audit_name}"
    periods = sorted(set(frame["period"]))
    n_alerts = int((frame["alert"].astype("str") != "").sum())
    sections = []
    for i, ((metric, attributes), panel) in enumerate(frame.groupby(["metric", "attributes"], sort=False)):
        chart_id = f"chart{i + 1}"
        chart = _chart(panel, chart_id=chart_id, metric=metric, attributes=attributes)
        values = _table(panel, metric=metric, attributes=attributes)
        sections.append(
            f'<section aria-labelledby="{chart_id}-h"><h2 id="{chart_id}-h">{_esc(metric)} by '
            f"{_esc(_attr_label(attributes))}</h2>{chart}<details><summary>Values</summary>{values}</details></section>"
        )
    made = datetime.now(UTC).isoformat(timespec="seconds")
    intro = (f"{len(periods)} period(s) from {_esc(periods[0])} to {_esc(periods[-1])}; "
             f"{n_alerts} point(s) with an alert, marked with a ring and \"!\". When a period was run more than "
             "once, the last run counts.")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_esc(page_title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_esc(page_title)}</h1><p>{intro}</p>{''.join(sections)}"
        f"<footer><p>Made by insyn {_esc(__version__)} on {_esc(made)} from the monitoring history.</p></footer>"
        "</body></html>\n"
    )


def write_trend(frame: pd.DataFrame, *, html_path: str | Path | None = None, csv_path: str | Path | None = None,
                title: str | None = None) -> list[Path]:
    """Write a trend as an HTML page and/or a CSV file; return the files written.

    The CSV holds every column of :data:`TREND_COLUMNS`; numbers are written
    in full precision, missing values as empty cells.
    """
    written: list[Path] = []
    if html_path is not None:
        p = Path(html_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(render_trend_html(frame, title=title), encoding="utf-8")
        written.append(p)
    if csv_path is not None:
        p = Path(csv_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(p, index=False)
        written.append(p)
    return written
