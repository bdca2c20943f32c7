"""``study.html``: what the study page shows, computed from the study's runs, and written.

For each factor the page shows

* power curves: the share of runs that detected a comparison (with the
  Wilson interval as a band), one line per comparison, for the comparisons
  detected most often;
* effect estimates: the mean of the runs' differences from the reference
  group, with the 2.5 % to 97.5 % range of the runs' estimates;

then the family-wise rate (runs with at least one significant test) and
the failed runs. This module computes those figures into a
:class:`audit.report.StudyView`; the page itself (template, charts, words in
English or Swedish) is rendered by :func:`audit.report.render_study_html` in
the results layer. The page's language is the base audit's
``report.language``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from audit.report import StudyPanel, StudyView, render_study_html
from audit.study._folder import StudyFolder
from audit.study._power import NO_FACTOR, family_wise
from audit.study_spec import StudySpec

__all__ = ["study_view", "write_page"]

_SHOWN = 6


def _order(levels: Sequence[str]) -> tuple[list[str], list[float] | None]:
    """Levels in order, and their numeric positions when every level is a number."""
    try:
        nums = [float(v) for v in levels]
    except ValueError:
        return sorted(levels), None
    pairs = sorted(zip(nums, levels, strict=True))
    return [p[1] for p in pairs], [p[0] for p in pairs]


def _band(rows: pd.DataFrame, levels: list[str], mid: str, low: str, high: str) -> tuple[list[float], ...]:
    by = rows.set_index(rows["level"].astype(str))
    return tuple([float(by[c].get(lv, np.nan)) for lv in levels] for c in (mid, low, high))


def _label(metric: str, attributes: str, group: str) -> str:
    return f"{metric} · {attributes or 'all'} = {group}"


def _ranked(power: pd.DataFrame) -> list[tuple[str, str, str]]:
    """The comparisons of one factor, most often detected first (ties in canonical order)."""
    rank = power.groupby(["metric", "attributes", "group"], dropna=False)["power"].max()
    rank = rank.sort_index().sort_values(ascending=False, kind="stable")
    return list(rank.index)[:_SHOWN]


def _panel(frame: pd.DataFrame, power: pd.DataFrame, factor: str) -> StudyPanel:
    part = power[power["factor"] == factor]
    levels, _ = _order(list(dict.fromkeys(part["level"].astype(str))))
    series = {}
    for metric, attrs, group in _ranked(part):
        rows = part[(part["metric"] == metric) & (part["attributes"] == attrs) & (part["group"] == group)]
        series[_label(metric, attrs, group)] = _band(rows, levels, "power", "power_low", "power_high")
    effects: dict[str, tuple[list[float], ...]] = {}
    rows = frame[frame["row"].eq("metric") & frame["difference"].notna()] if len(frame) else frame
    if len(rows):
        level = rows[factor].astype(str) if factor in rows else pd.Series("all", index=rows.index)
        effect_levels = levels or _order(list(dict.fromkeys(level)))[0]
        tested = part[~part["metric"].str.startswith("finding:")]
        for metric, attrs, group in _ranked(tested):
            sel = rows[(rows["metric"] == metric) & (rows["attributes"] == attrs) & (rows["group"] == group)]
            if sel.empty:
                continue
            g = sel["difference"].groupby(level[sel.index])
            mid, lo, hi = g.mean(), g.quantile(0.025), g.quantile(0.975)
            effects[_label(metric, attrs, group)] = tuple(
                [float(s.get(lv, np.nan)) for lv in effect_levels] for s in (mid, lo, hi))
        levels = levels or effect_levels
    return StudyPanel(factor=factor, levels=levels, power=series, effects=effects)


def study_view(spec: StudySpec, frame: pd.DataFrame, power: pd.DataFrame, *,
               failures: Mapping[str, str]) -> StudyView:
    """Compute what ``study.html`` shows from the study's tidy table and its power table."""
    factors = list(spec.factors) or [NO_FACTOR]
    runs = int(frame["run"].nunique()) if len(frame) else 0
    fw = family_wise(frame, list(spec.factors)).round(4) if len(frame) else pd.DataFrame()
    top = power.sort_values("power", ascending=False, kind="stable").head(40) if len(power) else power
    return StudyView(name=spec.name, description=spec.description or "", design=spec.design,
                     replicates=spec.replicates, seed=spec.seed, runs=runs,
                     panels=[_panel(frame, power, f) for f in factors], family_wise=fw, top=top,
                     failures=dict(failures))


def write_page(path: Path, spec: StudySpec, frame: pd.DataFrame, power: pd.DataFrame,
               *, failures: Mapping[str, str]) -> Path:
    """Compute the page's figures, render ``study.html`` in the base audit's report language, write it atomically."""
    audit, _, _ = spec.base_audit()
    language = str((audit.get("report") or {}).get("language") or "en")
    page = render_study_html(study_view(spec, frame, power, failures=failures), language=language)
    return StudyFolder.write_text(path, page)
