"""Charts of a report, drawn as inline SVG by hand.

A disparity is read off a chart before anyone reads a table, so the charts
carry the argument of the report: for each group, the estimate of a rate and
its confidence interval, next to the reference group's value. They must work
offline, on paper and on a phone, and for readers who cannot see colour or
cannot see at all. Each chart is therefore

* inline SVG, without JavaScript, fonts or external files;
* scalable (a ``viewBox`` and no fixed width) and drawn narrow (480 units)
  so that the text stays legible when a phone shrinks it;
* accessible: ``role="img"``, a ``<title>`` and a ``<desc>`` that says in
  words what the chart shows, referenced by ``aria-labelledby``; every value
  is also printed as text next to its mark, so that nothing is told by
  colour alone;
* drawn in the Okabe–Ito palette (Okabe & Ito, *Color Universal Design*,
  2008), which stays distinguishable under the common forms of colour
  blindness, plus greys. Marks also differ by shape: the reference group is
  a diamond, a group that differs from it (adjusted p below alpha) a square,
  any other group a circle.

Why by hand and not with matplotlib's SVG backend: matplotlib writes text as
glyph paths (20–60 kB per chart, not searchable, not translatable, invisible
to screen readers) or as ``<text>`` whose layout depends on font metrics of
the machine that made it, embeds a creation date (so two runs of the same
spec differ) and offers no ``<title>``/``<desc>``/ARIA. The two chart forms
here (an interval plot and a flow diagram) need a few dozen lines of SVG
each, come out at 2–6 kB and render identically everywhere.

The trend page of a monitoring history (:mod:`audit.report._trend`) adds a
third form, a line chart of a metric per period and group
(:func:`line_chart`): each line is labelled with its group at its end, every
point carries its value as a tooltip, and a period with an alert is ringed
and marked with "!", so that again nothing is told by colour alone.

Every string that reaches the SVG is escaped with :func:`markupsafe.escape`;
the functions return :class:`markupsafe.Markup`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from audit.report._render import mask

__all__ = [
    "ChartRow",
    "FlowStep",
    "IntervalPanel",
    "LinePoint",
    "LineSeries",
    "NEUTRALS",
    "PALETTE",
    "flow_chart",
    "interval_chart",
    "line_chart",
    "nice_ticks",
]

PALETTE: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
"""The Okabe–Ito colour-blind-safe palette (the only hues a report uses)."""

NEUTRALS: dict[str, str] = {
    "ink": "#1A1A1A",
    "muted": "#595959",
    "rule": "#BFBFBF",
    "grid": "#E6E6E6",
    "panel": "#F5F5F5",
    "paper": "#FFFFFF",
}
"""Greys for text, rules, grid lines and backgrounds."""

_W = 480
_PAD = 8
_ROW = 36
_HEAD = 28
_AXIS = 34
_FONT = 14
_MAX_LABEL = 38
_CHAR = 7.8
"""Width of an average character at the chart's font size, for fitting labels."""

_COLOURS = {
    "reference": PALETTE["black"],
    "significant": PALETTE["vermillion"],
    "ns": PALETTE["blue"],
}


def _txt(value: object) -> str:
    return str(escape(mask(str(value))))


def _clip(text: str, limit: int = _MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(x: float) -> str:
    """A coordinate with at most one decimal (keeps the SVG small)."""
    r = round(x, 1)
    return str(int(r)) if r == int(r) else f"{r:.1f}"


def nice_ticks(low: float, high: float, *, count: int = 5) -> list[float]:
    """Round tick values that cover ``[low, high]`` with about ``count`` ticks.

    The step is 1, 2, 2.5 or 5 times a power of ten; the first tick is at or
    below ``low`` and the last at or above ``high``.
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) if low else 1.0)
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step + 1e-9) * step
    last = math.ceil(high / step - 1e-9) * step
    n = round((last - first) / step)
    return [round(first + i * step, 12) for i in range(n + 1)]


@dataclass(frozen=True)
class ChartRow:
    """One group in an interval chart.

    Attributes
    ----------
    label : str
        The group as readers know it.
    status : str
        ``reference``, ``significant``, ``ns`` (no clear difference),
        ``suppressed`` or ``undefined``.
    value, low, high : float or None
        The estimate and its interval (``None`` for suppressed or undefined).
    text : str
        What is printed at the right: the formatted value and interval, or
        why there is none.
    """

    label: str
    status: str
    value: float | None
    low: float | None
    high: float | None
    text: str


@dataclass(frozen=True)
class IntervalPanel:
    """The groups of one attribute (or intersection) in an interval chart."""

    title: str
    rows: Sequence[ChartRow]
    reference_value: float | None = None


@dataclass(frozen=True)
class FlowStep:
    """One step of a data journey in a flow chart.

    Attributes
    ----------
    label, actor : str
        The step and who acts in it (already translated).
    colour : str
        The actor's colour (one of :data:`PALETTE`).
    main : str
        The row accounting, e.g. ``"20,000 in → 19,990 out"``.
    alert : str
        Rows rejected or errored, or ``""``.
    """

    label: str
    actor: str
    colour: str
    main: str
    alert: str = ""
    extra: str = ""


def _diamond(x: float, y: float, r: float = 6) -> str:
    return (
        f'<path d="M{_num(x)} {_num(y - r)}L{_num(x + r)} {_num(y)}L{_num(x)} {_num(y + r)}'
        f'L{_num(x - r)} {_num(y)}Z" fill="{PALETTE["black"]}"/>'
    )


def _mark(status: str, x: float, y: float) -> str:
    if status == "reference":
        return _diamond(x, y)
    if status == "significant":
        return f'<rect x="{_num(x - 5)}" y="{_num(y - 5)}" width="10" height="10" fill="{_COLOURS[status]}"/>'
    return f'<circle cx="{_num(x)}" cy="{_num(y)}" r="5" fill="{_COLOURS["ns"]}"/>'


def interval_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    panels: Sequence[IntervalPanel],
    tick_label: Callable[[float], str],
    legend: dict[str, str],
    zero_based: bool = True,
) -> Markup:
    """Draw estimates with their confidence intervals, grouped in panels.

    Parameters
    ----------
    chart_id : str
        Unique id in the page (for ``aria-labelledby``).
    title, description : str
        The chart's ``<title>`` and ``<desc>`` (its text alternative).
    panels : sequence of IntervalPanel
        One panel per attribute or intersection.
    tick_label : callable
        Formats an axis tick.
    legend : dict
        Legend texts for ``reference``, ``significant``, ``ns`` and
        ``reference_line``.
    zero_based : bool, default True
        Extend the axis to 0 when the data lie closer to 0 than their own
        spread (rates, amounts); otherwise fit the axis to the data. A dot
        plot with intervals needs no zero baseline: the reader compares
        positions and interval overlaps, not lengths.

    Returns
    -------
    markupsafe.Markup
        An ``<svg>`` element.
    """
    points = [
        v for p in panels for r in p.rows for v in (r.value, r.low, r.high) if v is not None and math.isfinite(v)
    ] + [p.reference_value for p in panels if p.reference_value is not None and math.isfinite(p.reference_value)]
    if points:
        lo, hi = min(points), max(points)
    else:
        lo, hi = 0.0, 1.0
    span = hi - lo if hi > lo else (abs(hi) or 1.0)
    lo, hi = lo - 0.05 * span, hi + 0.05 * span
    if zero_based and lo > 0 and lo < span:
        lo = 0.0
    ticks = nice_ticks(lo, hi)
    t0, t1 = ticks[0], ticks[-1]
    x0, x1 = _PAD + 4, _W - _PAD - 4

    def sx(v: float) -> float:
        return x0 + (v - t0) / (t1 - t0) * (x1 - x0) if t1 > t0 else x0

    backgrounds: list[str] = []
    body: list[str] = []
    y = 4
    for index, p in enumerate(panels):
        height = _HEAD + _ROW * len(p.rows)
        if index % 2 == 1:
            backgrounds.append(f'<rect x="0" y="{y}" width="{_W}" height="{height + 6}" fill="{NEUTRALS["panel"]}"/>')
        body.append(f'<text x="{_PAD}" y="{y + 18}" font-weight="bold">{_txt(_clip(p.title, 60))}</text>')
        y += _HEAD
        if p.reference_value is not None and math.isfinite(p.reference_value) and p.rows:
            rx = _num(sx(p.reference_value))
            body.append(
                f'<line x1="{rx}" x2="{rx}" y1="{y + 18}" y2="{y + _ROW * len(p.rows) - 2}" '
                f'stroke="{NEUTRALS["muted"]}" stroke-dasharray="4 3"/>'
            )
        for r in p.rows:
            quiet = r.status in ("suppressed", "undefined") or r.value is None
            style = f' fill="{NEUTRALS["muted"]}" font-style="italic"' if quiet else ""
            room = int((_W - 2 * _PAD - _CHAR * len(r.text) - 10) / _CHAR)
            body.append(f'<text x="{_PAD}" y="{y + 14}">{_txt(_clip(r.label, max(8, min(room, _MAX_LABEL))))}</text>')
            body.append(f'<text x="{_W - _PAD}" y="{y + 14}" text-anchor="end"{style}>{_txt(r.text)}</text>')
            cy = y + 27
            if quiet:
                body.append(
                    f'<line x1="{_num(x0)}" x2="{_num(x1)}" y1="{cy}" y2="{cy}" stroke="{NEUTRALS["rule"]}" '
                    'stroke-dasharray="2 4"/>'
                )
            else:
                colour = _COLOURS.get(r.status, _COLOURS["ns"])
                if r.low is not None and r.high is not None and math.isfinite(r.low) and math.isfinite(r.high):
                    a, b = _num(sx(r.low)), _num(sx(r.high))
                    body.append(
                        f'<path d="M{a} {cy}H{b}M{a} {cy - 4}V{cy + 4}M{b} {cy - 4}V{cy + 4}" '
                        f'stroke="{colour}" stroke-width="2" fill="none"/>'
                    )
                assert r.value is not None
                body.append(_mark(r.status, sx(r.value), cy))
            y += _ROW
        y += 6
    plot_bottom = y
    grid = [
        f'<line x1="{_num(sx(t))}" x2="{_num(sx(t))}" y1="4" y2="{plot_bottom}" stroke="{NEUTRALS["grid"]}"/>'
        for t in ticks
    ]
    axis = [
        f'<line x1="{_num(x0)}" x2="{_num(x1)}" y1="{plot_bottom}" y2="{plot_bottom}" stroke="{NEUTRALS["muted"]}"/>'
    ]
    for i, t in enumerate(ticks):
        anchor = "start" if i == 0 else ("end" if i == len(ticks) - 1 else "middle")
        axis.append(
            f'<text x="{_num(sx(t))}" y="{plot_bottom + 16}" text-anchor="{anchor}" fill="{NEUTRALS["muted"]}">'
            f"{_txt(tick_label(t))}</text>"
        )
    y = plot_bottom + _AXIS
    lx = _PAD + 6
    legend_marks = [
        _diamond(lx, y - 4),
        _mark("significant", lx, y + 16),
        _mark("ns", lx, y + 36),
        f'<line x1="{lx}" x2="{lx}" y1="{y + 49}" y2="{y + 63}" stroke="{NEUTRALS["muted"]}" stroke-dasharray="4 3"/>',
    ]
    leg: list[str] = []
    for mark, key in zip(legend_marks, ("reference", "significant", "ns", "reference_line"), strict=True):
        leg.append(mark)
        leg.append(f'<text x="{_PAD + 20}" y="{y}">{_txt(legend[key])}</text>')
        y += 20
    height = y - 6
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    return Markup(
        f'<svg class="chart" data-chart="interval" id="{_txt(chart_id)}" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" viewBox="0 0 {_W} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="{_FONT}" fill="{NEUTRALS["ink"]}">'
        f'<title id="{title_id}">{_txt(title)}</title><desc id="{desc_id}">{_txt(description)}</desc>'
        + "".join(backgrounds)
        + "".join(grid)
        + "".join(body)
        + "".join(axis)
        + "".join(leg)
        + "</svg>"
    )


def flow_chart(*, chart_id: str, title: str, description: str, steps: Sequence[FlowStep]) -> Markup:
    """Draw a data journey as a vertical flow of steps with their row accounting.

    Each step is a box (the step and its actor, with a stripe in the actor's
    colour) and, to its right, the rows in and out; rows rejected or errored
    are printed in a second line. Arrows join the steps.

    Returns
    -------
    markupsafe.Markup
        An ``<svg>`` element.
    """
    box_w, box_h, gap = 190, 44, 18
    parts: list[str] = [
        f'<defs><marker id="{_txt(chart_id)}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto"><path d="M0 0L10 5L0 10Z" fill="{NEUTRALS["muted"]}"/></marker></defs>'
    ]
    y = 4
    for i, s in enumerate(steps):
        parts.append(
            f'<rect x="{_PAD}" y="{y}" width="{box_w}" height="{box_h}" rx="4" fill="{NEUTRALS["panel"]}" '
            f'stroke="{NEUTRALS["rule"]}"/>'
            f'<rect x="{_PAD}" y="{y}" width="6" height="{box_h}" fill="{_txt(s.colour)}"/>'
            f'<text x="{_PAD + 14}" y="{y + 18}" font-weight="bold">{_txt(_clip(s.label, 24))}</text>'
            f'<text x="{_PAD + 14}" y="{y + 35}" fill="{NEUTRALS["muted"]}">{_txt(_clip(s.actor, 26))}</text>'
            f'<text x="{_PAD + box_w + 12}" y="{y + 18}">{_txt(_clip(s.main, 40))}</text>'
        )
        if s.alert:
            parts.append(
                f'<text x="{_PAD + box_w + 12}" y="{y + 35}" fill="{PALETTE["vermillion"]}" font-weight="bold">'
                f"{_txt(_clip(s.alert, 40))}</text>"
            )
        elif s.extra:
            parts.append(
                f'<text x="{_PAD + box_w + 12}" y="{y + 35}" fill="{NEUTRALS["muted"]}">'
                f"{_txt(_clip(s.extra, 40))}</text>"
            )
        if i < len(steps) - 1:
            cx = _PAD + box_w // 2
            parts.append(
                f'<line x1="{cx}" x2="{cx}" y1="{y + box_h}" y2="{y + box_h + gap - 1}" stroke="{NEUTRALS["muted"]}" '
                f'stroke-width="1.5" marker-end="url(#{_txt(chart_id)}-arrow)"/>'
            )
        y += box_h + gap
    height = max(y - gap + 8, 20)
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    return Markup(
        f'<svg class="chart" data-chart="flow" id="{_txt(chart_id)}" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" viewBox="0 0 {_W} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="{_FONT}" fill="{NEUTRALS["ink"]}">'
        f'<title id="{title_id}">{_txt(title)}</title><desc id="{desc_id}">{_txt(description)}</desc>'
        + "".join(parts)
        + "</svg>"
    )


# --------------------------------------------------------------------------
# line charts (the trend page)

_LINE_COLOURS = (
    PALETTE["blue"],
    PALETTE["orange"],
    PALETTE["bluish_green"],
    PALETTE["reddish_purple"],
    PALETTE["sky_blue"],
    PALETTE["vermillion"],
    PALETTE["black"],
    PALETTE["yellow"],
)
"""The order in which the lines of a line chart take their colours."""
_LW, _LH = 720, 320
_LLEFT, _LRIGHT, _LTOP, _LBOTTOM = 64, 150, 20, 56
_END_LABEL = 22


@dataclass(frozen=True)
class LinePoint:
    """One period of one line.

    Attributes
    ----------
    period : str
        The period (one of the chart's ``periods``).
    value : float or None
        The value; ``None`` or NaN leaves the point out.
    title : str
        The point's tooltip: group, period, value and any alert, in words.
    alert : bool
        Whether the period raised an alert (a ring and "!" mark it).
    low, high : float or None
        The range the value was expected in (a monitored value's baseline
        band); shaded under the line where both are finite.
    """

    period: str
    value: float | None
    title: str
    alert: bool = False
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class LineSeries:
    """One line: a group's values over the periods, labelled at its end."""

    label: str
    points: Sequence[LinePoint]


def _line_ticks(low: float, high: float) -> list[float]:
    """Ticks for a line chart: a flat series sits in the middle of a padded axis."""
    if math.isfinite(low) and math.isfinite(high) and high <= low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    return nice_ticks(low, high)


def _band(point: LinePoint) -> tuple[float, float] | tuple[()]:
    """A point's expected range (low, high) when both ends are finite, else ()."""
    lo, hi = point.low, point.high
    if lo is None or hi is None or not (math.isfinite(float(lo)) and math.isfinite(float(hi))):
        return ()
    return float(lo), float(hi)


def _band_polygons(
    line: LineSeries, colour: str, xpos: dict[str, float], ypos: Callable[[float], float]
) -> list[str]:
    """Shaded polygons of a line's expected band, one per run of periods that have one (a lone period: a bar)."""
    out: list[str] = []
    run: list[tuple[float, float, float]] = []
    for p in [*line.points, None]:
        band = _band(p) if p is not None and p.period in xpos else ()
        if band:
            run.append((xpos[p.period], ypos(band[1]), ypos(band[0])))  # type: ignore[union-attr]
            continue
        if run:
            if len(run) == 1:
                x, top, bottom = run[0]
                run = [(x - 6, top, bottom), (x + 6, top, bottom)]
            outline = [f"{x:.1f},{top:.1f}" for x, top, _ in run] + [
                f"{x:.1f},{bottom:.1f}" for x, _, bottom in reversed(run)
            ]
            out.append(f'<polygon points="{" ".join(outline)}" fill="{colour}" fill-opacity="0.13" stroke="none" '
                       'class="band"/>')
        run = []
    return out


def line_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    periods: Sequence[str],
    series: Sequence[LineSeries],
    tick_label: Callable[[float], str],
    include: Sequence[float] = (),
) -> Markup:
    """Draw values per period as one line per group (the trend of a monitoring history).

    Parameters
    ----------
    chart_id : str
        Unique id in the page; the title and description get the ids
        ``<chart_id>-t`` and ``<chart_id>-d`` (for ``aria-labelledby``).
    title, description : str
        The chart's ``<title>`` and ``<desc>`` (its text alternative).
    periods : sequence of str
        The periods along the x axis, in order; at most about eight are
        labelled, the last one always.
    series : sequence of LineSeries
        One line per group; colours follow the Okabe–Ito palette in order.
    tick_label : callable
        Formats a value on the y axis.
    include : sequence of float, optional
        Values the y axis always spans (e.g. 0.9 and 1.1 around a ratio of
        1, so that a shift of a ten-thousandth is not drawn as a cliff).

    Returns
    -------
    markupsafe.Markup
        An ``<svg>`` element.
    """
    finite = [
        float(v) for s in series for p in s.points for v in (p.value, *_band(p)) if v is not None
        and math.isfinite(float(v))
    ] + [float(v) for v in include]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    ticks = _line_ticks(low, high)
    y0, y1 = ticks[0], ticks[-1]
    plot_w, plot_h = _LW - _LLEFT - _LRIGHT, _LH - _LTOP - _LBOTTOM
    step = plot_w / max(len(periods) - 1, 1)
    xpos = {p: _LLEFT + (i * step if len(periods) > 1 else plot_w / 2) for i, p in enumerate(periods)}

    def ypos(v: float) -> float:
        return _LTOP + plot_h * (1 - (v - y0) / (y1 - y0 if y1 > y0 else 1.0))

    parts = [
        f'<svg class="chart" data-chart="line" viewBox="0 0 {_LW} {_LH}" role="img" '
        f'aria-labelledby="{_txt(chart_id)}-t {_txt(chart_id)}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{_txt(chart_id)}-t">{_txt(title)}</title>',
        f'<desc id="{_txt(chart_id)}-d">{_txt(description)}</desc>',
        f'<rect x="0" y="0" width="{_LW}" height="{_LH}" fill="{NEUTRALS["paper"]}"/>',
    ]
    for t in ticks:
        y = ypos(t)
        parts.append(
            f'<line x1="{_LLEFT}" x2="{_LLEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{NEUTRALS["grid"]}"/>'
        )
        parts.append(
            f'<text x="{_LLEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_txt(tick_label(t))}</text>'
        )
    if periods:
        every = max(1, math.ceil(len(periods) / 8))
        shown = [i for i in range(len(periods)) if i % every == 0]
        last = len(periods) - 1
        if shown[-1] != last:  # always label the last period; drop the label before it when they would touch
            shown = shown[:-1] + [last] if last - shown[-1] < every and len(shown) > 1 else shown + [last]
        # labels wider than their slot (about 6.5 px a character at the tick size) alternate between two rows
        slot = step * (shown[1] - shown[0]) if len(shown) > 1 else plot_w
        stagger = max(len(periods[i]) for i in shown) * 6.5 > slot - 4
        for n, i in enumerate(shown):
            parts.append(
                f'<text x="{xpos[periods[i]]:.1f}" y="{_LTOP + plot_h + 18 + (16 if stagger and n % 2 else 0)}" '
                f'text-anchor="middle" class="tick">{_txt(periods[i])}</text>'
            )
    base = _LTOP + plot_h
    parts.append(f'<line x1="{_LLEFT}" x2="{_LLEFT + plot_w}" y1="{base}" y2="{base}" stroke="{NEUTRALS["muted"]}"/>')
    for index, line in enumerate(series):  # each line's expected band, under every line
        colour = _LINE_COLOURS[index % len(_LINE_COLOURS)]
        parts.extend(_band_polygons(line, colour, xpos, ypos))
    ends: list[tuple[float, float, str, str]] = []
    for index, line in enumerate(series):
        colour = _LINE_COLOURS[index % len(_LINE_COLOURS)]
        pts = [
            (xpos[p.period], ypos(float(p.value)), p)
            for p in line.points
            if p.value is not None and math.isfinite(float(p.value)) and p.period in xpos
        ]
        if not pts:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y, p in pts:
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"><title>{_txt(p.title)}</title></circle>'
            )
            if p.alert:
                parts.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="8" fill="none" stroke="{PALETTE["vermillion"]}" '
                    'stroke-width="2"/>'
                )
                parts.append(f'<text x="{x:.1f}" y="{y - 11:.1f}" text-anchor="middle" class="alert">!</text>')
        ends.append((pts[-1][1], pts[-1][0], colour, line.label))
    # line labels at the right end, pushed apart so that they do not overlap
    ends.sort()
    placed: list[float] = []
    for y, x, colour, text in ends:
        y = max(y, placed[-1] + 14) if placed else y
        placed.append(y)
        parts.append(
            f'<text x="{x + 10:.1f}" y="{y + 4:.1f}" class="label" fill="{colour}">{_txt(text[:_END_LABEL])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
