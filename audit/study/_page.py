"""``study.html``: one self-contained page with power curves and effect estimates against each factor.

The page has no scripts, styles or fonts from elsewhere: charts are inline
SVG drawn here. For each factor it shows

* power curves: the share of runs that detected a comparison (with the
  Wilson interval as a band), one line per comparison, for the comparisons
  detected most often;
* effect estimates: the mean of the runs' differences from the reference
  group, with the 2.5 % to 97.5 % range of the runs' estimates;

then the family-wise rate (runs with at least one significant test) and
the failed runs. Every string from a spec or from data is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from audit.study._folder import StudyFolder
from audit.study._power import NO_FACTOR, family_wise
from audit.study_spec import StudySpec

__all__ = ["write_page"]

_W, _H, _PAD = 560, 260, 48
_COLOURS = ("#1b6ca8", "#d1495b", "#00798c", "#edae49", "#66a182", "#8d5a97", "#2e4057", "#f17105")
_SHOWN = 6


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _order(levels: Sequence[str]) -> tuple[list[str], list[float] | None]:
    """Levels in order, and their numeric positions when every level is a number."""
    try:
        nums = [float(v) for v in levels]
    except ValueError:
        return sorted(levels), None
    pairs = sorted(zip(nums, levels, strict=True))
    return [p[1] for p in pairs], [p[0] for p in pairs]


def _chart(title: str, levels: list[str], series: Mapping[str, tuple[list[float], list[float], list[float]]],
           *, y_label: str, y_range: tuple[float, float] | None = None) -> str:
    ordered, nums = _order(levels)
    if nums is not None and len(set(nums)) > 1:
        lo_x, hi_x = min(nums), max(nums)
        xs = {lv: _PAD + (x - lo_x) / (hi_x - lo_x) * (_W - 2 * _PAD) for lv, x in zip(ordered, nums, strict=True)}
    else:
        step = (_W - 2 * _PAD) / max(len(ordered) - 1, 1)
        xs = {lv: _PAD + i * step for i, lv in enumerate(ordered)}
    values = [v for mid, low, high in series.values() for v in (*mid, *low, *high) if np.isfinite(v)]
    if y_range is None:
        lo_y, hi_y = (min(values), max(values)) if values else (0.0, 1.0)
        if hi_y == lo_y:
            lo_y, hi_y = lo_y - 0.5, hi_y + 0.5
    else:
        lo_y, hi_y = y_range

    def y(v: float) -> float:
        return _H - _PAD + (v - lo_y) / (hi_y - lo_y) * (2 * _PAD - _H)

    parts = [f'<svg role="img" aria-label="{_e(title)}" width="{_W}" height="{_H + 20 * len(series)}" '
             f'viewBox="0 0 {_W} {_H + 20 * len(series)}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="{_W / 2}" y="16" text-anchor="middle" font-weight="bold">{_e(title)}</text>',
             f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#333"/>',
             f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}" stroke="#333"/>',
             f'<text x="12" y="{_H / 2}" transform="rotate(-90 12 {_H / 2})" text-anchor="middle">{_e(y_label)}</text>']
    for t in np.linspace(lo_y, hi_y, 5):
        parts.append(f'<text x="{_PAD - 4}" y="{y(t) + 4:.1f}" text-anchor="end" font-size="10">{t:.3g}</text>')
    for lv, x in xs.items():
        parts.append(f'<text x="{x:.1f}" y="{_H - _PAD + 14}" text-anchor="middle" font-size="10">{_e(lv)}</text>')
    for i, (name, (mid, low, high)) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        pts = [(xs[lv], m, lo, hi) for lv, m, lo, hi in zip(levels, mid, low, high, strict=True)
               if np.isfinite(m)]
        pts.sort()
        for x, _m, lo, hi in pts:
            if np.isfinite(lo) and np.isfinite(hi):
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
    return "".join(parts)


def _label(metric: str, attributes: str, group: str) -> str:
    return f"{metric} · {attributes or 'all'} = {group}"


def _power_charts(power: pd.DataFrame, factor: str) -> str:
    part = power[power["factor"] == factor]
    if part.empty:
        return "<p>No comparisons.</p>"
    rank = part.groupby(["metric", "attributes", "group"], dropna=False)["power"].max().sort_values(ascending=False)
    levels = list(dict.fromkeys(part["level"].astype(str)))
    series = {}
    for metric, attrs, group in list(rank.index)[:_SHOWN]:
        rows = part[(part["metric"] == metric) & (part["attributes"] == attrs) & (part["group"] == group)]
        by = rows.set_index(rows["level"].astype(str))
        series[_label(metric, attrs, group)] = ([float(by["power"].get(lv, np.nan)) for lv in levels],
                                                [float(by["power_low"].get(lv, np.nan)) for lv in levels],
                                                [float(by["power_high"].get(lv, np.nan)) for lv in levels])
    return _chart(f"Power against {factor}", levels, series, y_label="power (detected share)", y_range=(0.0, 1.0))


def _effect_charts(frame: pd.DataFrame, power: pd.DataFrame, factor: str) -> str:
    rows = frame[frame["row"].eq("metric") & frame["difference"].notna()]
    if rows.empty:
        return ""
    level = rows[factor].astype(str) if factor in rows else pd.Series("all", index=rows.index)
    part = power[(power["factor"] == factor) & ~power["metric"].str.startswith("finding:")]
    rank = part.groupby(["metric", "attributes", "group"], dropna=False)["power"].max().sort_values(ascending=False)
    levels = list(dict.fromkeys(level))
    series = {}
    for metric, attrs, group in list(rank.index)[:_SHOWN]:
        sel = rows[(rows["metric"] == metric) & (rows["attributes"] == attrs) & (rows["group"] == group)]
        g = sel["difference"].groupby(level[sel.index])
        mid, lo, hi = g.mean(), g.quantile(0.025), g.quantile(0.975)
        series[_label(metric, attrs, group)] = ([float(mid.get(lv, np.nan)) for lv in levels],
                                                [float(lo.get(lv, np.nan)) for lv in levels],
                                                [float(hi.get(lv, np.nan)) for lv in levels])
    if not series:
        return ""
    return _chart(f"Effect estimates against {factor}", levels, series,
                  y_label="difference from reference (mean, 95 % of runs)")


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(_fmt(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "–" if not np.isfinite(v) else f"{v:.4g}"
    return str(v)


def write_page(path: Path, spec: StudySpec, frame: pd.DataFrame, power: pd.DataFrame,
               *, failures: Mapping[str, str]) -> Path:
    """Write ``study.html`` (atomically) and return its path."""
    factors = list(spec.factors) or [NO_FACTOR]
    runs = int(frame["run"].nunique()) if len(frame) else 0
    sections = []
    for factor in factors:
        sections.append(f"<h2>{_e(factor)}</h2>" + _power_charts(power, factor) + _effect_charts(frame, power, factor))
    fw = _table(family_wise(frame, list(spec.factors)).round(4)) if len(frame) else "<p>No finished run.</p>"
    fail = ("<h2>Failed runs</h2>" + _table(pd.DataFrame(sorted(failures.items()), columns=["run", "error"]))
            if failures else "")
    top = power.sort_values("power", ascending=False).head(40) if len(power) else power
    text = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Study {_e(spec.name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;font-size:12px;margin:1em 0}}td,th{{border:1px solid #ccc;padding:2px 6px}}
svg{{display:block;margin:1em 0}}</style></head><body>
<h1>Study {_e(spec.name)}</h1>
<p>{_e(spec.description or "")}</p>
<p>{runs} finished run(s) of {len(failures) + runs} attempted; design {_e(spec.design)}, {spec.replicates}
replicate(s) per point, study seed {spec.seed}. A comparison is <em>detected</em> in a run when its adjusted
p-value is below the run's alpha, or its finding failed; bands are 95 % Wilson intervals.</p>
{''.join(sections)}
<h2>Family-wise rate (runs with at least one significant test)</h2>{fw}
<h2>Most often detected comparisons</h2>{_table(top)}
{fail}
</body></html>
"""
    return StudyFolder.write_text(path, text)
