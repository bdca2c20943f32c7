"""The page of a bias study (``study.html``): power curves and effect estimates against each factor.

A bias study (``insyn study``) runs one audit many times over a grid or
sample of scenarios; its researcher asks how often each comparison was
detected at each level of a factor (power, with a Wilson interval) and how
large the estimated effect was (the mean of the runs' differences from the
reference group, with the range that 95 % of the runs' estimates fall in).
:mod:`audit.study` computes those figures and hands them here as plain data
(:class:`StudyView`); this module only lays them out, like the trend page of
a monitoring history.

The page is one self-contained file: inline CSS (``study.css``) and inline
SVG charts drawn here, no script, no font and no request to anywhere (a
Content-Security-Policy of ``default-src 'none'`` says so to the browser).
Every chart has a ``<title>`` and ``<desc>``; every word comes from the
message catalogues (``study.*`` in ``messages/en.yaml`` and ``sv.yaml``);
names from the data (factors, metrics, groups, run keys, errors) are shown as
recorded, escaped, with personnummer-shaped text masked.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from markupsafe import Markup

from audit._privacy import mask
from audit._version import __version__
from audit.exceptions import SpecError
from audit.report._format import DASH, Formatter, is_missing
from audit.report._messages import LANGUAGES, Catalogue, load_catalogue
from audit.report._render import render_template, stylesheet

__all__ = ["Band", "StudyPanel", "StudyView", "band_chart", "render_study_html", "study_context"]

_W, _H, _PAD = 560, 260, 48
_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999")
"""The Okabe–Ito palette, as on the other pages of Insyn."""

Band = tuple[Sequence[float], Sequence[float], Sequence[float]]
"""One line of a chart: the middle values, lower and upper ends per level (NaN where there is none)."""


@dataclass(frozen=True)
class StudyPanel:
    """The charts of one factor.

    Attributes
    ----------
    factor : str
        The factor's key path (or the no-factor label of a study without factors).
    levels : sequence of str
        The factor's levels as text, in the order their values take.
    power : mapping of str to Band
        One line per comparison (its label): detection share with its Wilson interval per level.
    effects : mapping of str to Band
        One line per comparison: mean difference from the reference group and the 2.5 % to 97.5 % range of the
        runs' estimates per level (may be empty).
    """

    factor: str
    levels: Sequence[str]
    power: Mapping[str, Band]
    effects: Mapping[str, Band] = field(default_factory=dict)


@dataclass(frozen=True)
class StudyView:
    """Everything ``study.html`` shows, as plain data computed by :mod:`audit.study`.

    Attributes
    ----------
    name, description, design : str
        From the study spec.
    replicates, seed : int
        From the study spec.
    runs : int
        The number of finished runs.
    panels : sequence of StudyPanel
        One per factor.
    family_wise : pandas.DataFrame
        Runs with at least one significant test, per factor level.
    top : pandas.DataFrame
        The comparisons detected most often (rows of ``power.csv``).
    failures : mapping of str to str
        Failed run key to its error line.
    """

    name: str
    description: str
    design: str
    replicates: int
    seed: int
    runs: int
    panels: Sequence[StudyPanel]
    family_wise: pd.DataFrame
    top: pd.DataFrame
    failures: Mapping[str, str] = field(default_factory=dict)


def _e(text: object) -> str:
    return html.escape(mask(str(text)), quote=True)


def _positions(levels: Sequence[str]) -> dict[str, float]:
    """x positions: proportional when every level is a distinct number, else evenly spaced in sorted order."""
    try:
        nums = [float(v) for v in levels]
    except ValueError:
        nums = []
    if nums and len(set(nums)) > 1:
        lo, hi = min(nums), max(nums)
        return {lv: _PAD + (x - lo) / (hi - lo) * (_W - 2 * _PAD) for lv, x in zip(levels, nums, strict=True)}
    ordered = sorted(levels) if not nums else [lv for _, lv in sorted(zip(nums, levels, strict=True))]
    step = (_W - 2 * _PAD) / max(len(ordered) - 1, 1)
    return {lv: _PAD + i * step for i, lv in enumerate(ordered)}


def band_chart(*, title: str, description: str, y_label: str, levels: Sequence[str], series: Mapping[str, Band],
               y_range: tuple[float, float] | None = None) -> Markup:
    """Draw one line per series over the levels of a factor, with its interval as a band at each level.

    Parameters
    ----------
    title, description : str
        The chart's title (drawn and as ``<title>``) and its text alternative (``<desc>``).
    y_label : str
        The y axis label.
    levels : sequence of str
        The factor's levels; numeric levels are placed proportionally.
    series : mapping of str to Band
        Label to (middle, low, high) per level; NaN where a level has no value.
    y_range : (float, float), optional
        Fixed y range (power: 0 to 1); otherwise the data's.

    Returns
    -------
    markupsafe.Markup
        An ``<svg>`` element; every text is escaped and masked.
    """
    xs = _positions(levels)
    values = [v for mid, low, high in series.values() for v in (*mid, *low, *high) if math.isfinite(v)]
    if y_range is None:
        lo_y, hi_y = (min(values), max(values)) if values else (0.0, 1.0)
        if hi_y == lo_y:
            lo_y, hi_y = lo_y - 0.5, hi_y + 0.5
    else:
        lo_y, hi_y = y_range

    def y(v: float) -> float:
        return _H - _PAD + (v - lo_y) / (hi_y - lo_y) * (2 * _PAD - _H)

    height = _H + 20 * len(series)
    parts = [f'<svg role="img" width="{_W}" height="{height}" viewBox="0 0 {_W} {height}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title><desc>{_e(description)}</desc>',
             f'<text x="{_W / 2}" y="16" text-anchor="middle" font-weight="bold">{_e(title)}</text>',
             f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#333"/>',
             f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}" stroke="#333"/>',
             f'<text x="12" y="{_H / 2}" transform="rotate(-90 12 {_H / 2})" text-anchor="middle">{_e(y_label)}</text>']
    for i in range(5):
        t = lo_y + (hi_y - lo_y) * i / 4
        parts.append(f'<text x="{_PAD - 4}" y="{y(t) + 4:.1f}" text-anchor="end" font-size="10">{t:.3g}</text>')
    for lv, x in xs.items():
        parts.append(f'<text x="{x:.1f}" y="{_H - _PAD + 14}" text-anchor="middle" font-size="10">{_e(lv)}</text>')
    for i, (name, (mid, low, high)) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        pts = sorted((xs[lv], m, lo, hi) for lv, m, lo, hi in zip(levels, mid, low, high, strict=True)
                     if math.isfinite(m))
        for x, _m, lo, hi in pts:
            if math.isfinite(lo) and math.isfinite(hi):
                parts.append(f'<line x1="{x:.1f}" y1="{y(lo):.1f}" x2="{x:.1f}" y2="{y(hi):.1f}" '
                             f'stroke="{colour}" stroke-width="6" stroke-opacity="0.25"/>')
        if pts:
            path = " ".join(f"{x:.1f},{y(m):.1f}" for x, m, _lo, _hi in pts)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
            parts.extend(f'<circle cx="{x:.1f}" cy="{y(m):.1f}" r="3" fill="{colour}"/>' for x, m, _l, _h in pts)
        ly = _H + 4 + 20 * i
        parts.append(f'<rect x="{_PAD}" y="{ly}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{_PAD + 18}" y="{ly + 10}" font-size="11">{_e(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _cell(f: Formatter, value: Any) -> str:
    if isinstance(value, float):
        return DASH if is_missing(value) else f.significant(value, digits=4)
    return str(value)


def _table(frame: pd.DataFrame, f: Formatter) -> dict[str, Any]:
    return {"columns": [str(c) for c in frame.columns],
            "rows": [[_cell(f, v) for v in row] for row in frame.itertuples(index=False)]}


def study_context(view: StudyView, *, messages: Catalogue, now: datetime | None = None) -> dict[str, Any]:
    """The view model of ``study.html``: title, introduction, one section per factor, tables and footer."""
    m, f = messages, Formatter(messages)
    sections = []
    for i, panel in enumerate(view.panels):
        power = (band_chart(title=m("study.power_title", factor=panel.factor),
                            description=m("study.power_desc", factor=panel.factor, count=len(panel.power)),
                            y_label=m("study.power_axis"), levels=panel.levels, series=panel.power,
                            y_range=(0.0, 1.0)) if panel.power else None)
        effects = (band_chart(title=m("study.effect_title", factor=panel.factor),
                              description=m("study.effect_desc", factor=panel.factor, count=len(panel.effects)),
                              y_label=m("study.effect_axis"), levels=panel.levels, series=panel.effects)
                   if panel.effects else None)
        sections.append({"id": f"factor{i + 1}", "heading": panel.factor, "power": power, "effects": effects})
    made = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    return {
        "language": m.language,
        "title": m("study.title", name=view.name),
        "description": view.description,
        "intro": m("study.intro", runs=f.integer(view.runs), attempted=f.integer(view.runs + len(view.failures)),
                   design=view.design, replicates=f.integer(view.replicates), seed=view.seed),
        "sections": sections,
        "family_wise": _table(view.family_wise, f) if len(view.family_wise) else None,
        "top": _table(view.top, f),
        "failures": [{"run": k, "error": v} for k, v in sorted(view.failures.items())],
        "footer": m("study.footer", version=__version__, made=made),
    }


def render_study_html(view: StudyView, *, language: str = "en", now: datetime | None = None) -> str:
    """Render a study's page as one self-contained HTML file.

    Parameters
    ----------
    view : StudyView
        What the page shows (computed by :mod:`audit.study`).
    language : {"en", "sv"}, default "en"
        The page's language.
    now : datetime, optional
        When the page is made (default now, UTC), shown in the footer.

    Returns
    -------
    str
        The page: inline CSS and SVG, no script, no external resource.

    Raises
    ------
    audit.exceptions.SpecError
        When the language is not one of :data:`audit.report.LANGUAGES`.
    """
    if language not in LANGUAGES:
        raise SpecError(f"The study page's language must be one of {', '.join(LANGUAGES)}. Got {language!r}.")
    messages = load_catalogue(language)
    context = study_context(view, messages=messages, now=now)
    return render_template("html", "study.html.j2", **context, t=messages, css=stylesheet("study.css"))
