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

A monitored value's chart shades the band each group was expected in (its
baseline plus and minus the change limit), so a point outside the band is
the change that raised an alert; alerted points are ringed, and the page
explains the ring only when there is one. The run's public values
(efficiency, service, professionalism, engagement; :mod:`audit.public_values`)
follow in their own section, by group, labelled in the page's language, with
the indicators the data cannot measure listed by their missing columns. The
page's language defaults to the spec's ``report.language`` recorded in the
history (the latest run's), else English.
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

__all__ = ["render_trend_html", "trend_context", "trend_language", "write_trend"]

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


def _float(value: Any) -> float | None:
    """A finite float, or None."""
    if is_missing(value):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _is_value(frame: pd.DataFrame) -> pd.Series:
    """Rows of public values (``public_value`` names the value) rather than monitored metrics."""
    if "public_value" not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame["public_value"].map(lambda x: isinstance(x, str) and x != "")


def _unmeasured(frame: pd.DataFrame) -> pd.Series:
    """Public-value rows of an indicator the data cannot measure (no value; the reason names the columns)."""
    if "reason" not in frame.columns:
        return pd.Series(False, index=frame.index)
    reason = frame["reason"].map(lambda x: x if isinstance(x, str) else "")
    return _is_value(frame) & frame["value"].map(is_missing) & reason.str.startswith("not measured")


def _metric_label(m: Catalogue, name: str) -> str:
    """A monitored metric by its recorded name; a public value (``<value>:<indicator>``) by its label, then name."""
    if ":" not in name:
        return name
    key = f"values.{name.split(':', 1)[1]}"
    label = m.get(key) or ""
    return f"{label} ({name})" if label else name


def trend_language(frame: pd.DataFrame) -> str:
    """The page language a history asks for: the spec's report language of its latest run, else ``"en"``."""
    if "language" not in frame.columns or frame.empty:
        return "en"
    ordered = frame.sort_values("period", kind="mergesort") if "period" in frame.columns else frame
    recorded = [str(x) for x in ordered["language"] if isinstance(x, str) and x in LANGUAGES]
    return recorded[-1] if recorded else "en"


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
    name_of_metric = metric
    metric = _metric_label(m, metric)
    lows = panel["baseline_low"] if "baseline_low" in panel.columns else pd.Series(None, index=panel.index)
    highs = panel["baseline_high"] if "baseline_high" in panel.columns else pd.Series(None, index=panel.index)
    band_of = {(p, g): (_float(lo), _float(hi))
               for p, g, lo, hi in zip(panel["period"], panel["group"], lows, highs, strict=True)}
    has_band = any(lo is not None and hi is not None for lo, hi in band_of.values())
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
            lo, hi = band_of.get((p, g), (None, None))
            if lo is not None and hi is not None:
                title += f" ({m('trend.point_expected', low=_value_text(f, lo), high=_value_text(f, hi))})"
            points.append(LinePoint(period=str(p), value=value, title=title, alert=bool(alert), low=lo, high=hi))
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
        + (m("trend.desc_band") + " " if has_band else "")
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
            lo, hi = band_of.get((p, g), (None, None))
            expected = (m("trend.point_expected", low=_value_text(f, lo), high=_value_text(f, hi))
                        if lo is not None and hi is not None else "")
            row_cells.append(
                {"value": _value_text(f, v), "alert": m("trend.alert_mark", alert=alert) if alert else "",
                 "expected": expected}
            )
        rows_view.append({"period": str(p), "cells": row_cells})
    return {
        "id": chart_id,
        "metric": name_of_metric,
        "band": has_band,
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
        ``language``, ``title``, ``intro``, ``sections`` (``id``, ``metric``,
        ``band``, ``heading``, ``chart``, ``caption``, ``groups``, ``rows``),
        ``values`` (the public values: ``title``, ``intro``, ``sections``,
        ``missing_title``, ``missing``; None when the trend has none) and
        ``footer``.

    Raises
    ------
    audit.exceptions.DataError
        When the frame is empty or lacks a column the page needs.
    """
    _check(frame)
    m, f = messages, Formatter(messages)
    audit_name = str(frame["audit"].iloc[0])
    periods = sorted(set(frame["period"]))
    is_value = _is_value(frame)
    metric_rows, value_rows = frame[~is_value], frame[is_value]
    n_alerts = int((metric_rows["alert"].map(_alert) != "").sum())
    sections = [
        _section(panel, index=i + 1, metric=str(metric), attributes=str(attributes), m=m, f=f)
        for i, ((metric, attributes), panel) in enumerate(metric_rows.groupby(["metric", "attributes"], sort=False))
    ]
    values = None
    if len(value_rows):
        unmeasured = _unmeasured(value_rows)
        drawn = value_rows[~value_rows["metric"].isin(set(value_rows.loc[unmeasured, "metric"]))]
        value_sections = [
            _section(panel, index=len(sections) + i + 1, metric=str(metric), attributes=str(attributes), m=m, f=f)
            for i, ((metric, attributes), panel) in enumerate(drawn.groupby(["metric", "attributes"], sort=False))
        ]
        missing = []
        for metric, reason in value_rows.loc[unmeasured, ["metric", "reason"]].drop_duplicates("metric").itertuples(
                index=False):
            label, reason = _metric_label(m, str(metric)), str(reason)
            columns = reason.split("has no column ", 1)[1] if "has no column " in reason else ""
            missing.append(m("trend.not_measured_item", indicator=label, columns=columns) if columns
                           else m("trend.not_measured_reason", indicator=label, reason=reason))
        values = {"title": m("trend.public_values"), "intro": m("trend.public_values_intro"),
                  "sections": value_sections, "missing_title": m("trend.not_measured"), "missing": missing}
    intro = [m("trend.intro", periods=f.integer(len(periods)), first=periods[0], last=periods[-1])]
    if any(sec["band"] for sec in sections):
        intro.append(m("trend.band"))
    if n_alerts:  # the ring is explained only when there is one
        intro.append(m("trend.alerts", count=f.integer(n_alerts)))
    made = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    return {
        "language": m.language,
        "title": title or m("trend.title", audit=audit_name),
        "intro": " ".join(intro),
        "sections": sections,
        "values": values,
        "footer": m("trend.footer", version=__version__, made=made),
    }


def render_trend_html(frame: pd.DataFrame, *, language: str | None = None, title: str | None = None) -> str:
    """Render a trend (the frame of :func:`audit.monitor.trend`) as one self-contained HTML page.

    Parameters
    ----------
    frame : pandas.DataFrame
        The output of :func:`audit.monitor.trend`.
    language : {"en", "sv"}, optional
        The page's language (its words come from the message catalogue);
        default: the spec's report language recorded in the history
        (:func:`trend_language`).
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
    if language is None:
        language = trend_language(frame) if isinstance(frame, pd.DataFrame) else "en"
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
    language: str | None = None,
) -> list[Path]:
    """Write a trend as an HTML page and/or a CSV file; return the files written.

    The CSV holds every column of the frame (:data:`audit.monitor.TREND_COLUMNS`);
    numbers are written in full precision, missing values as empty cells.
    Public values the data cannot measure have no rows in it (the page lists
    them, with the missing columns).

    Parameters
    ----------
    frame : pandas.DataFrame
        The output of :func:`audit.monitor.trend`.
    html_path, csv_path : str or Path, optional
        Where to write the page and the table; either may be left out.
    title : str, optional
        Page title (see :func:`render_trend_html`).
    language : {"en", "sv"}, optional
        The page's language (default: :func:`trend_language`).

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
        rows = frame[~_unmeasured(frame)]  # the page lists an unmeasured public value; the CSV holds values only
        neutralise_csv_frame(rows).to_csv(p, index=False)  # OWASP CSV injection; the privacy gate
        written.append(p)
    return written
