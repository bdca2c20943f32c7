"""The trend page of a monitoring history: a metric per period and group, one self-contained file.

A monitoring job (``insyn monitor``) audits every month's decisions and keeps
each run's metrics in a history; ``insyn history`` shows how a group's
outcomes moved over the months, and where the monitor raised an alert. The
page is meant to be mailed, archived or put on an intranet without a web
server: one HTML file with inline CSS and one inline SVG line chart per
metric and grouping, no script, no font and no request to anywhere (a
Content-Security-Policy of ``default-src 'none'`` says so to the browser).
Every chart has a ``<title>`` and a ``<desc>`` that say in words what it
shows, each line is labelled with its group at its end (so nothing is told
by colour alone), and a table with every value follows each chart as its
text alternative. Every string from the data is escaped and
personnummer-shaped text is masked.

The data is the trend frame that :func:`audit.monitor.trend` computes (one
row per period, metric and group; see :data:`audit.monitor.TREND_COLUMNS`);
this module only lays it out. Every word on the page comes from the message
catalogues (``trend.*`` in ``messages/en.yaml`` and ``messages/sv.yaml``), so
the page can be written in Swedish or English; names from the data (metrics,
attributes, groups, periods, the monitor's alert codes) are shown as they
are recorded, so that the page matches the CSV next to it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from audit._privacy import mask, neutralise_csv_frame
from audit._version import __version__
from audit.exceptions import DataError, SpecError
from audit.report._charts import LinePoint, LineSeries, line_chart
from audit.report._format import DASH, Formatter, is_missing
from audit.report._messages import LANGUAGES, Catalogue, load_catalogue
from audit.report._render import render_template, stylesheet

__all__ = ["render_trend_html", "trend_context", "write_trend"]

_NEEDED = ("audit", "period", "metric", "attributes", "group", "value", "alert")
"""Columns of the trend frame that the page reads."""


def _value_text(f: Formatter, value: Any) -> str:
    """A trend value: whole numbers from 100 up, else three decimals; a dash when missing."""
    if is_missing(value):
        return DASH
    v = float(value)
    return f.integer(v) if abs(v) >= 100 else f.number(v, digits=3)


def _alert(value: Any) -> str:
    """The alert code(s) of a trend row; ``""`` for none (an empty string, None or NaN)."""
    return value if isinstance(value, str) else ""


def _check(frame: pd.DataFrame) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"the trend must be the DataFrame of audit.monitor.trend. Got {type(frame).__name__}.")
    missing = [c for c in _NEEDED if c not in frame.columns]
    if missing:
        raise DataError(
            f"the trend lacks the column(s) {', '.join(missing)}. Expected the frame of audit.monitor.trend "
            f"with at least {', '.join(_NEEDED)}; got columns {', '.join(map(str, frame.columns))}."
        )
    if frame.empty:
        raise DataError("the trend is empty: there is nothing to draw.")


def _section(
    panel: pd.DataFrame, *, index: int, metric: str, attributes: str, m: Catalogue, f: Formatter
) -> dict[str, Any]:
    """The view of one metric and grouping: heading, line chart and its table of values."""
    chart_id = f"chart{index}"
    everyone = m("trend.all_cases")
    attribute = attributes if attributes else everyone
    periods = sorted(set(panel["period"]))
    groups = list(dict.fromkeys(panel["group"]))
    series, sentences = [], []
    for g in groups:
        rows = panel[panel["group"] == g].sort_values("period")
        name = str(g) or everyone
        points = []
        for p, v, a in zip(rows["period"], rows["value"], rows["alert"], strict=True):
            value = None if is_missing(v) else float(v)
            alert = _alert(a)
            text = _value_text(f, value)
            title = (
                m("trend.point_alert", group=name, period=p, value=text, alert=alert)
                if alert
                else m("trend.point", group=name, period=p, value=text)
            )
            points.append(LinePoint(period=str(p), value=value, title=title, alert=bool(alert)))
        series.append(LineSeries(label=name, points=points))
        shown = [pt for pt in points if pt.value is not None and math.isfinite(pt.value)]
        if shown:
            sentences.append(
                m(
                    "trend.desc_series",
                    group=name,
                    first=_value_text(f, shown[0].value),
                    first_period=shown[0].period,
                    last=_value_text(f, shown[-1].value),
                    last_period=shown[-1].period,
                )
            )
    flagged = panel[panel["alert"].map(_alert) != ""]
    flags = [
        m("trend.desc_flag", group=str(g) or everyone, period=p)
        for g, p in zip(flagged["group"], flagged["period"], strict=True)
    ]
    alert_text = m("trend.desc_alerts", flags="; ".join(flags)) if flags else m("trend.desc_no_alerts")
    description = (
        m("trend.desc", metric=metric, count=f.integer(len(groups)), attribute=attribute)
        + " "
        + ". ".join(sentences)
        + ". "
        + alert_text
    )
    chart = line_chart(
        chart_id=chart_id,
        title=m("trend.chart_title", metric=metric, attribute=attribute, first=periods[0], last=periods[-1]),
        description=description,
        periods=[str(p) for p in periods],
        series=series,
        tick_label=lambda t: _value_text(f, t),
    )
    cells = {
        (p, g): (v, a)
        for p, g, v, a in zip(panel["period"], panel["group"], panel["value"], panel["alert"], strict=True)
    }
    rows_view = []
    for p in periods:
        row_cells = []
        for g in groups:
            v, a = cells.get((p, g), (None, ""))
            alert = _alert(a)
            row_cells.append(
                {"value": _value_text(f, v), "alert": m("trend.alert_mark", alert=alert) if alert else ""}
            )
        rows_view.append({"period": str(p), "cells": row_cells})
    return {
        "id": chart_id,
        "heading": m("trend.heading", metric=metric, attribute=attribute),
        "chart": chart,
        "caption": m("trend.caption", metric=metric, attribute=attribute),
        "groups": [str(g) or everyone for g in groups],
        "rows": rows_view,
    }


def trend_context(
    frame: pd.DataFrame, *, messages: Catalogue, title: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Build the view model of a trend page: title, introduction, one section per metric and grouping.

    Parameters
    ----------
    frame : pandas.DataFrame
        The trend (the frame of :func:`audit.monitor.trend`).
    messages : Catalogue
        The message catalogue of the page's language.
    title : str, optional
        The page title (default: ``trend.title`` of the catalogue).
    now : datetime, optional
        When the page is made (default: now, UTC); shown in the footer.

    Returns
    -------
    dict
        ``language``, ``title``, ``intro``, ``sections`` (``id``, ``heading``,
        ``chart``, ``caption``, ``groups``, ``rows``) and ``footer``.

    Raises
    ------
    audit.exceptions.DataError
        When the frame is empty or lacks a column the page needs.
    """
    _check(frame)
    m, f = messages, Formatter(messages)
    audit_name = str(frame["audit"].iloc[0])
    periods = sorted(set(frame["period"]))
    n_alerts = int((frame["alert"].map(_alert) != "").sum())
    sections = [
        _section(panel, index=i + 1, metric=str(metric), attributes=str(attributes), m=m, f=f)
        for i, ((metric, attributes), panel) in enumerate(frame.groupby(["metric", "attributes"], sort=False))
    ]
    made = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    return {
        "language": m.language,
        "title": title or m("trend.title", audit=audit_name),
        "intro": m(
            "trend.intro",
            periods=f.integer(len(periods)),
            first=periods[0],
            last=periods[-1],
            alerts=f.integer(n_alerts),
        ),
        "sections": sections,
        "footer": m("trend.footer", version=__version__, made=made),
    }


def render_trend_html(frame: pd.DataFrame, *, language: str = "en", title: str | None = None) -> str:
    """Render a trend (the frame of :func:`audit.monitor.trend`) as one self-contained HTML page.

    Parameters
    ----------
    frame : pandas.DataFrame
        The output of :func:`audit.monitor.trend`.
    language : {"en", "sv"}, default "en"
        The page's language (its words come from the message catalogue).
    title : str, optional
        Page title (default ``"Trend of <audit>"``, in Swedish
        ``"Utveckling för <audit>"``).

    Returns
    -------
    str
        The page: inline CSS and SVG, no script, no external resource.

    Raises
    ------
    audit.exceptions.DataError
        When the trend is empty or lacks a column the page needs.
    audit.exceptions.SpecError
        When the language is not one of :data:`audit.report.LANGUAGES`.
    """
    if language not in LANGUAGES:
        raise SpecError(f"The trend page's language must be one of {', '.join(LANGUAGES)}. Got {language!r}.")
    messages = load_catalogue(language)
    context = trend_context(frame, messages=messages, title=title)
    return render_template("html", "trend.html.j2", **context, t=messages, css=stylesheet("trend.css"))


def write_trend(
    frame: pd.DataFrame,
    *,
    html_path: str | Path | None = None,
    csv_path: str | Path | None = None,
    title: str | None = None,
    language: str = "en",
) -> list[Path]:
    """Write a trend as an HTML page and/or a CSV file; return the files written.

    The CSV holds every column of the frame (:data:`audit.monitor.TREND_COLUMNS`);
    numbers are written in full precision, missing values as empty cells.

    Parameters
    ----------
    frame : pandas.DataFrame
        The output of :func:`audit.monitor.trend`.
    html_path, csv_path : str or Path, optional
        Where to write the page and the table; either may be left out.
    title : str, optional
        Page title (see :func:`render_trend_html`).
    language : {"en", "sv"}, default "en"
        The page's language.

    Returns
    -------
    list of Path
        The files written, the page first.
    """
    written: list[Path] = []
    if html_path is not None:
        page = render_trend_html(frame, language=language, title=title)
        p = Path(html_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(mask(page), encoding="utf-8")
        written.append(p)
    if csv_path is not None:
        p = Path(csv_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        neutralise_csv_frame(frame).to_csv(p, index=False)  # OWASP CSV injection; the privacy gate
        written.append(p)
    return written
