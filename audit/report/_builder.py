"""Metrics as a reader meets them: labels, group rows, charts and sentences.

A metrics row of a run (``{metric, attributes, group, n, value, ci_low, ...}``)
is a number for a machine. For a reader it is "the refusal rate of applicants
born outside the EU, 30.0% (95% CI 23.2–37.8%), twice that of those born in
Sweden". :class:`Builder` turns rows into such views, once per rendering: the
label of each metric, attribute and group from the message catalogue, the
status of a group (the reference, a clear difference, no clear difference,
suppressed, undefined), formatted values and intervals, the interval charts,
and the plain-language sentences of the summary.

What a metric is comes from one place, the metric registry
(:data:`audit.metrics.METRICS`): its report section (one of
:data:`audit.metrics.SECTIONS`, in that order), whether it is a headline
figure of its section (charted for every group, listed first), whether it is
one of the run's key figures (a card in the summary), its unit (which decides
how its values read) and its definition. A metric the registry does not know
goes to the generic section *other*, drawn the same way, so that a metric
added later appears without a change here. Group-size metrics (the
registry's ``sample`` section) are shown with the method.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from audit._columns import DISCOVERED_PREFIX
from audit.exceptions import DataError
from audit.metrics import METRICS, SECTIONS, MetricInfo
from audit.report._charts import ChartRow, IntervalPanel, interval_chart
from audit.report._format import DASH, Formatter, is_missing
from audit.report._messages import Catalogue
from audit.result import largest_disparity_rows

if TYPE_CHECKING:  # pragma: no cover
    from audit.result import AuditResult

__all__ = [
    "Builder",
    "DISCOVERED_SECTION",
    "METRIC_SECTION_IDS",
    "SAMPLE_SECTION",
    "SECTION_IDS",
    "as_float",
    "attributes_of",
    "check_findings",
    "check_metric_rows",
    "meta_field",
    "metric_kind",
    "section_of",
    "slug",
    "verbatim",
]

SAMPLE_SECTION = "sample"
"""The registry section of group-size metrics (``n``, ``share``), which the method section shows."""

DISCOVERED_SECTION = "discovered"
"""The registry section of subgroup discovery's rows (``discovered_<rate>``), which has a section of its own."""

METRIC_SECTION_IDS: tuple[str, ...] = (
    *(s for s in SECTIONS if s not in (SAMPLE_SECTION, DISCOVERED_SECTION)),
    "other",
)
"""The sections that show metrics by group: the registry's sections in order, then ``other``.

The ``discovered`` section (:mod:`audit.report._discovery`) follows them: its
groups are found, not named, and read differently."""

SECTION_IDS: tuple[str, ...] = (
    "summary",
    "findings",
    *METRIC_SECTION_IDS,
    DISCOVERED_SECTION,
    "funnel",
    "quality",
    "journey",
    "method",
    "scorecard",
    "reproducibility",
)
"""Every section a report can have, in order (``other`` only when needed)."""

_UNIT_KINDS = {"share": "rate", "SEK": "amount", "cases": "count", "ratio": "ratio", "AUC": "number", "pp": "pp"}
"""How the values of a registered metric read, by the registry's ``unit``."""
_KEY_PART = re.compile(r"^[A-Za-z0-9_]+$")
_MAX_FAILING_IN_SUMMARY = 4
_AMOUNT_FIGURES = frozenset({"underpayment_rate"})
"""Key figures that need amounts: shown as "not available" when a run with a correct decision has none."""
_DECIDED_FIGURES = frozenset({"grant_rate", "deny_rate", "underpayment_rate"})
"""Key figures over decided applications: their sentence says how many still await a caseworker."""


# --------------------------------------------------------------------------
# small helpers


def meta_field(meta: Any, name: str) -> Any:
    """A field of a registry entry (a mapping or an object such as ``MetricInfo``), or None."""
    if meta is None:
        return None
    if isinstance(meta, Mapping):
        return meta.get(name)
    return getattr(meta, name, None)


def metric_kind(name: str, meta: Any = None) -> str:
    """How a metric's values read: ``rate``, ``amount``, ``count``, ``ratio`` or ``number``.

    The registry's ``unit`` decides (:data:`audit.metrics.METRICS`: a
    ``share`` reads as a percentage, ``SEK`` as an amount, ``cases`` as a
    count, ``ratio`` as a ratio, ``AUC`` as a plain number); for a metric the
    registry does not know, the name: ``*_rate`` and ``*_share`` are rates,
    anything else a plain number.
    """
    unit = meta_field(meta, "unit")
    if unit in _UNIT_KINDS:
        return _UNIT_KINDS[unit]
    if name.endswith("_rate") or name.endswith("_share"):
        return "rate"
    return "number"


def slug(text: str) -> str:
    """A catalogue key for a name from data: ``"Welch's t-test"`` -> ``"welch_s_t_test"``."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def as_float(value: Any) -> float | None:
    """A number as float; None for null, NaN, infinities and non-numbers."""
    return None if is_missing(value) else float(value)


def attributes_of(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The attributes of a metrics or findings row as a tuple (empty for overall rows)."""
    a = row.get("attributes") or []
    if isinstance(a, str):
        return (a,)
    return tuple(str(x) for x in a)


def section_of(name: str) -> str:
    """The report section of a metric: the registry's ``section``, ``other`` for a metric it does not know.

    An unregistered ``discovered_<rate>`` row still belongs to the ``discovered`` section.
    """
    info = METRICS.get(name)
    if info is None:
        return DISCOVERED_SECTION if name.startswith(DISCOVERED_PREFIX) else "other"
    return info.section


_NUMERIC_FIELDS = (
    "n",
    "value",
    "ci_low",
    "ci_high",
    "reference_value",
    "difference",
    "ratio",
    "p_value",
    "p_adjusted",
    "count",
    "diff_ci_low",
    "diff_ci_high",
    "ratio_ci_low",
    "ratio_ci_high",
    "mdd",
    "max_min_gap",
    "min_max_ratio",
)
_FINDING_NUMBERS = ("observed", "bound_min", "bound_max", "ci_low", "ci_high", "p_adjusted")
_STATUSES = ("PASS", "FAIL", "WARN", "ERROR")


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _where(row: Mapping[str, Any]) -> str:
    return f" (metric {row.get('metric')!r}, group {row.get('group')!r})" if row.get("metric") else ""


def check_metric_rows(rows: Any) -> list[Mapping[str, Any]]:
    """Check the metrics table of a result before it is shown; return its rows.

    Raises
    ------
    audit.exceptions.DataError
        Naming the row, the key and the value, when a row is not a mapping,
        has no metric name, has attributes that are not a list of names, or
        a number field that holds something else than a number or null.
    """
    if rows is None:
        return []
    if not isinstance(rows, list | tuple):
        raise DataError(f"results: metrics must be a list of rows. Got {type(rows).__name__}.")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise DataError(f"results: metrics[{i}] must be a mapping. Got {row!r}.")
        if not isinstance(row.get("metric"), str) or not row["metric"]:
            raise DataError(f"results: metrics[{i}].metric must be a metric name. Got {row.get('metric')!r}.")
        attributes = row.get("attributes", [])
        if not isinstance(attributes, list | tuple) or not all(isinstance(a, str) for a in attributes):
            raise DataError(
                f"results: metrics[{i}].attributes must be a list of attribute names{_where(row)}. Got {attributes!r}."
            )
        for key in _NUMERIC_FIELDS:
            if not _is_number(row.get(key)):
                raise DataError(f"results: metrics[{i}].{key} must be a number or null{_where(row)}. Got {row[key]!r}.")
        out.append(row)
    return out


def check_findings(findings: Any) -> list[Mapping[str, Any]]:
    """Check the findings of a result before they are shown; return them.

    Raises
    ------
    audit.exceptions.DataError
        When a finding is not a mapping, its status is not one of PASS, FAIL,
        WARN, ERROR, or a number field holds something else than a number.
    """
    if findings is None:
        return []
    if not isinstance(findings, list | tuple):
        raise DataError(f"results: findings must be a list. Got {type(findings).__name__}.")
    for i, f in enumerate(findings):
        if not isinstance(f, Mapping):
            raise DataError(f"results: findings[{i}] must be a mapping. Got {f!r}.")
        status = f.get("status")
        if not isinstance(status, str) or status.upper() not in _STATUSES:
            raise DataError(f"results: findings[{i}].status must be one of {', '.join(_STATUSES)}. Got {status!r}.")
        for key in _FINDING_NUMBERS:
            if not _is_number(f.get(key)):
                raise DataError(f"results: findings[{i}].{key} must be a number or null. Got {f[key]!r}.")
    return list(findings)


def verbatim(text: Any) -> Markup:
    """Mark machine text (hashes, ids) as safe after escaping it, so no filter touches it."""
    return escape(str(text))


class Builder:
    """Builds the views of one report from one result; one instance per rendering."""

    def __init__(self, result: AuditResult, messages: Catalogue, *, charts: bool = True) -> None:
        self.result = result
        self.draw_charts = charts
        self.m = messages
        self.f = Formatter(messages)
        self.d = result.plain
        self.spec: Mapping[str, Any] = self.d.get("spec") or {}
        stats = self.spec.get("statistics") or {}
        self.alpha = float(stats.get("alpha", 0.05)) if not is_missing(stats.get("alpha", 0.05)) else 0.05
        self.min_group_size = stats.get("min_group_size", 10)
        self.level = self.f.number((1 - self.alpha) * 100, digits=0 if ((1 - self.alpha) * 100).is_integer() else 1)
        self.registry: Mapping[str, MetricInfo] = METRICS
        self.sensitive = [str(s) for s in (self.spec.get("sensitive_features") or [])]
        self.metric_rows = check_metric_rows(self.d.get("metrics"))
        self.by_metric: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for r in self.metric_rows:
            self.by_metric[str(r["metric"])].append(r)
        self.findings = check_findings(self.d.get("findings"))
        self.thresholded = {str(f.get("metric")) for f in self.findings} | {
            str(t.get("metric")) for t in (self.spec.get("thresholds") or []) if isinstance(t, Mapping)
        }
        self._chart_no = 0
        self.charts: list[str] = []
        self.truth_kind = ((self.d.get("engine") or {}).get("truth") or {}).get("kind") or (
            "reference"
            if (self.spec.get("truth") or {}).get("reference")
            else "column"
            if (self.spec.get("truth") or {}).get("column")
            else "none"
        )

    # ------------------------------------------------------------ labels
    def chart_id(self) -> str:
        self._chart_no += 1
        cid = f"chart-{self._chart_no}"
        self.charts.append(cid)
        return cid

    def metric_label(self, name: str) -> str:
        return self.m.get(f"metric.{name}.label") or name

    def metric_description(self, name: str) -> str | None:
        own = self.m.get(f"metric.{name}.description")
        if own:
            return own
        meta = self.registry.get(name)
        text = meta_field(meta, "description")
        return str(text) if text else None

    def kind(self, name: str) -> str:
        return metric_kind(name, self.registry.get(name))

    def attribute_label(self, attributes: Sequence[str]) -> str:
        if not attributes:
            return self.m("common.everyone")
        return " × ".join(self.m.get(f"attribute.{a}") or a for a in attributes)

    def group_label(self, attributes: Sequence[str], group: Any) -> str:
        if group is None:
            return DASH
        text = str(group)
        if not attributes:
            return self.m("common.everyone") if text == "all" else text
        parts = text.split(" & ")
        if len(parts) != len(attributes):
            return text
        return " & ".join(self.m.get(f"value.{a}.{v}") or v for a, v in zip(attributes, parts, strict=True))

    def step_label(self, name: Any) -> str:
        return self.m.get(f"step.{name}") or str(name)

    def actor_label(self, actor: Any) -> str:
        """An actor or origin; ``registry:folkbokforing`` reads ``Registry (folkbokforing)``."""
        text = str(actor or "")
        if not text:
            return DASH
        kind, _, detail = text.partition(":")
        label = self.m.get(f"actor.{kind}") if _KEY_PART.match(kind) else None
        if label is None:
            return text
        return f"{label} ({detail})" if detail else label

    def status_label(self, status: Any) -> str:
        return self.m.get(f"status.{str(status).lower()}") or str(status)

    # ------------------------------------------------------------ rows
    def row_status(self, row: Mapping[str, Any]) -> str:
        if row.get("suppressed"):
            return "suppressed"
        if is_missing(row.get("value")):
            return "undefined"
        if row.get("reference_group") is not None and str(row.get("group")) == str(row.get("reference_group")):
            return "reference"
        p = as_float(row.get("p_adjusted"))
        if p is not None and p < self.alpha:
            return "significant"
        return "ns"

    def n_text(self, row: Mapping[str, Any]) -> str:
        if row.get("suppressed"):
            return f"<{self.f.integer(self.min_group_size)}"
        return self.f.integer(row.get("n"))

    def row_view(self, row: Mapping[str, Any], kind: str) -> dict[str, Any]:
        attributes = attributes_of(row)
        status = self.row_status(row)
        note = ""
        if status == "suppressed":
            note = self.m("common.suppressed_note", min=self.f.integer(self.min_group_size))
        elif status == "undefined":
            reason = row.get("reason")
            note = self.m("common.undefined_note", reason=reason) if reason else self.m("common.undefined")
        elif status == "reference":
            note = self.m("common.reference_group")
        elif status == "significant":
            note = self.m("common.differs")
        hidden = status == "suppressed"
        return {
            "group": str(row.get("group")),
            "label": self.group_label(attributes, row.get("group")),
            "status": status,
            "n": self.n_text(row),
            "value": DASH if hidden else self.f.value(row.get("value"), kind),
            "ci": DASH if hidden else self.f.interval(row.get("ci_low"), row.get("ci_high"), kind),
            "ratio": DASH if hidden or status == "reference" else self.f.ratio(row.get("ratio")),
            "ratio_ci": DASH
            if hidden or status == "reference"
            else self.f.ratio_interval(row.get("ratio_ci_low"), row.get("ratio_ci_high")),
            "difference": DASH if hidden or status == "reference" else self.f.difference(row.get("difference"), kind),
            "difference_ci": DASH
            if hidden or status == "reference"
            else self.f.difference_interval(row.get("diff_ci_low"), row.get("diff_ci_high"), kind),
            "p": DASH if hidden or status == "reference" else self.f.p_value(row.get("p_adjusted")),
            "mdd": DASH if hidden else self.f.difference(row.get("mdd"), kind).lstrip("+"),
            "note": note,
        }

    def overall(self, name: str) -> Mapping[str, Any] | None:
        for r in self.by_metric.get(name, []):
            if not attributes_of(r):
                return r
        return None

    def panels(self, name: str) -> list[tuple[tuple[str, ...], list[Mapping[str, Any]]]]:
        """Group rows of a metric by attribute set: single attributes in spec order, then intersections."""
        by: dict[tuple[str, ...], list[Mapping[str, Any]]] = defaultdict(list)
        for r in self.by_metric.get(name, []):
            a = attributes_of(r)
            if a:
                by[a].append(r)
        order = {a: i for i, a in enumerate(self.sensitive)}

        def key(a: tuple[str, ...]) -> tuple[int, int, tuple[str, ...]]:
            return (len(a), order.get(a[0], len(order)) if len(a) == 1 else 0, a)

        return [(a, by[a]) for a in sorted(by, key=key)]

    # ------------------------------------------------------------ metrics
    def disparity_sentence(self, row: Mapping[str, Any]) -> str:
        name = str(row.get("metric"))
        kind = self.kind(name)
        attributes = attributes_of(row)
        values = {
            "metric": self.metric_label(name),
            "group": self.group_label(attributes, row.get("group")),
            "attribute": self.attribute_label(attributes),
            "value": self.f.value(row.get("value"), kind),
            "ci": self.f.interval(row.get("ci_low"), row.get("ci_high"), kind),
            "reference": self.group_label(attributes, row.get("reference_group")),
            "reference_value": self.f.value(row.get("reference_value"), kind),
            "ratio": self.f.ratio(row.get("ratio")),
            "ratio_ci": self.f.ratio_interval(row.get("ratio_ci_low"), row.get("ratio_ci_high")),
            "difference": self.f.difference(row.get("difference"), kind),
            "p": self.f.p_value(row.get("p_adjusted")),
            "level": self.level,
        }
        if is_missing(row.get("ratio")):
            return self.m("summary.disparity_difference", **values)
        if is_missing(row.get("ratio_ci_low")):
            return self.m("summary.disparity_ratio", **values)
        return self.m("summary.disparity_ratio_ci", **values)

    def metric_view(self, name: str, *, chart: bool) -> dict[str, Any]:
        kind = self.kind(name)
        label = self.metric_label(name)
        panels = []
        chart_panels = []
        for attributes, rows in self.panels(name):
            views = [self.row_view(r, kind) for r in rows]
            ref_rows = [r for r in rows if self.row_status(r) == "reference"]
            reference = ref_rows[0] if ref_rows else None
            ref_name = next((r.get("reference_group") for r in rows if r.get("reference_group") is not None), None)
            title = self.attribute_label(attributes)
            panels.append(
                {
                    "title": title,
                    "reference": self.group_label(attributes, ref_name) if ref_name is not None else DASH,
                    "rows": views,
                }
            )
            chart_rows = []
            for r, v in zip(rows, views, strict=True):
                status = v["status"]
                if status == "suppressed":
                    text = v["note"]
                elif status == "undefined":
                    text = self.m("common.undefined")
                else:
                    text = f"{v['value']} ({v['ci']})" if v["ci"] != DASH else v["value"]
                hidden = status in ("suppressed", "undefined")
                chart_rows.append(
                    ChartRow(
                        label=v["label"],
                        status=status,
                        value=None if hidden else as_float(r.get("value")),
                        low=None if hidden else as_float(r.get("ci_low")),
                        high=None if hidden else as_float(r.get("ci_high")),
                        text=text,
                    )
                )
            ref_value = as_float(reference.get("value")) if reference is not None else None
            if ref_value is None:
                ref_value = next(
                    (
                        as_float(r.get("reference_value"))
                        for r in rows
                        if as_float(r.get("reference_value")) is not None
                    ),
                    None,
                )
            chart_panels.append(
                IntervalPanel(
                    title=self.m("chart.panel_title", attribute=title, reference=panels[-1]["reference"]),
                    rows=chart_rows,
                    reference_value=ref_value,
                )
            )
        svg = None
        if chart and chart_panels and self.draw_charts:
            svg = interval_chart(
                chart_id=self.chart_id(),
                title=self.m("chart.interval_title", metric=label),
                description=self.chart_description(name, kind),
                panels=chart_panels,
                tick_label=lambda t: (
                    self.f.percent(t, digits=0)
                    if kind == "rate"
                    else (self.f.integer(t) if kind in ("amount", "count") else self.f.significant(t, digits=2))
                ),
                legend={
                    "reference": self.m("chart.legend_reference"),
                    "significant": self.m("chart.legend_significant", alpha=self.f.number(self.alpha, digits=2)),
                    "ns": self.m("chart.legend_ns"),
                    "reference_line": self.m("chart.legend_reference_line"),
                },
                zero_based=kind in ("rate", "amount", "count"),
            )
        overall = self.overall(name)
        return {
            "name": name,
            "label": label,
            "description": self.metric_description(name),
            "kind": kind,
            "anchor": f"metric-{name}",
            "overall": self.row_view(overall, kind) if overall is not None else None,
            "panels": panels,
            "chart": svg,
        }

    def chart_description(self, name: str, kind: str) -> str:
        parts = []
        for attributes, rows in self.panels(name):
            visible = [r for r in rows if self.row_status(r) in ("reference", "significant", "ns")]
            suppressed = sum(1 for r in rows if r.get("suppressed"))
            ref = next((r for r in rows if self.row_status(r) == "reference"), None)
            bits = [self.attribute_label(attributes) + ":"]
            if ref is not None:
                bits.append(
                    self.m(
                        "chart.desc_reference",
                        group=self.group_label(attributes, ref.get("group")),
                        value=self.f.value(ref.get("value"), kind),
                    )
                )
            if visible:
                hi = max(visible, key=lambda r: float(r["value"]))
                lo = min(visible, key=lambda r: float(r["value"]))
                bits.append(
                    self.m(
                        "chart.desc_range",
                        high_group=self.group_label(attributes, hi.get("group")),
                        high=self.f.value(hi.get("value"), kind),
                        low_group=self.group_label(attributes, lo.get("group")),
                        low=self.f.value(lo.get("value"), kind),
                    )
                )
            significant = [
                self.group_label(attributes, r.get("group")) for r in rows if self.row_status(r) == "significant"
            ]
            if significant:
                bits.append(self.m("chart.desc_significant", groups=", ".join(significant)))
            if suppressed:
                bits.append(self.m("chart.desc_suppressed", count=self.f.integer(suppressed)))
            parts.append(" ".join(bits))
        return self.m("chart.desc_intro", metric=self.metric_label(name), level=self.level) + " " + " ".join(parts)

    def spread(self, name: str) -> str:
        """The group furthest from its reference, as text.

        Groups that differ clearly from their reference (adjusted p below
        alpha) come first; among them, the largest ``|log ratio|`` wins.
        """
        kind = self.kind(name)
        best: tuple[tuple[bool, float], Mapping[str, Any]] | None = None
        for r in self.by_metric.get(name, []):
            status = self.row_status(r)
            if not attributes_of(r) or status not in ("significant", "ns"):
                continue
            ratio = as_float(r.get("ratio"))
            if ratio is None or ratio <= 0:
                continue
            key = (status == "significant", abs(math.log(ratio)))
            if best is None or key > best[0]:
                best = (key, r)
        if best is None:
            return DASH
        r = best[1]
        return self.m(
            "common.furthest",
            group=self.group_label(attributes_of(r), r.get("group")),
            ratio=self.f.ratio(r.get("ratio")),
            value=self.f.value(r.get("value"), kind),
            p=self.f.p_value(r.get("p_adjusted")),
        )

    def headline(self, name: str) -> bool:
        """Whether the registry marks a metric as a headline figure of its section."""
        return bool(meta_field(self.registry.get(name), "headline"))

    def section_metrics(self, section: str) -> list[str]:
        """The measured metrics of a section: headline figures first, each in registry order.

        ``other`` holds the measured metrics the registry does not know, by name.
        """
        if section == "other":
            return sorted(n for n in self.by_metric if section_of(n) == "other")
        order = {name: i for i, name in enumerate(self.registry)}
        names = [n for n in self.by_metric if section_of(n) == section]
        return sorted(names, key=lambda n: (not self.headline(n), order[n]))

    def key_figures(self) -> list[str]:
        """The registry's key figures (summary cards): headline figures first, then in section and registry order."""
        sections = {sid: i for i, sid in enumerate(SECTIONS)}
        order = {name: i for i, name in enumerate(self.registry)}
        names = [n for n, info in self.registry.items() if meta_field(info, "key_figure")]
        return sorted(names, key=lambda n: (not self.headline(n), sections.get(section_of(n), len(sections)), order[n]))

    def metric_section(self, section: str, intro: str, absent: str) -> dict[str, Any]:
        names = self.section_metrics(section)
        if not names:
            return {
                "id": section,
                "title": self.m(f"{section}.title"),
                "available": False,
                "reason": absent,
                "intro": intro,
                "overview": [],
                "metrics": [],
                "secondary": [],
                "notes": [],
            }
        overview = []
        primary, secondary = [], []
        for n in names:
            kind = self.kind(n)
            ov = self.overall(n)
            overview.append(
                {
                    "name": n,
                    "label": self.metric_label(n),
                    "description": self.metric_description(n) or "",
                    "value": self.f.value(ov.get("value"), kind) if ov else DASH,
                    "ci": self.f.interval(ov.get("ci_low"), ov.get("ci_high"), kind) if ov else DASH,
                    "n": self.f.integer(ov.get("n")) if ov else DASH,
                    "spread": self.spread(n),
                    "note": (ov.get("reason") or "") if ov and is_missing(ov.get("value")) else "",
                }
            )
            has_groups = any(attributes_of(r) for r in self.by_metric[n])
            if not has_groups:
                continue
            is_primary = section == "other" or self.headline(n) or n in self.thresholded
            (primary if is_primary else secondary).append(self.metric_view(n, chart=is_primary))
        return {
            "id": section,
            "title": self.m(f"{section}.title"),
            "available": True,
            "reason": None,
            "intro": intro,
            "overview": overview,
            "metrics": primary,
            "secondary": secondary,
            "notes": [],
        }

    # ------------------------------------------------------------ sections
    def meta(self) -> dict[str, Any]:
        engine = self.d.get("engine") or {}
        population = self.d.get("population") or {}
        name = str(self.spec.get("name") or "audit")
        return {
            "name": name,
            "title": self.m("report.title", name=name),
            "description": str(self.spec.get("description") or ""),
            "run_id": verbatim(self.d.get("run_id") or DASH),
            "generated_at": str(self.d.get("generated_at") or DASH),
            "engine": self.engine_name(),
            "engine_version": str(engine.get("version") or DASH),
            "population_kind": self.m.get(f"population.kind_{population.get('kind')}")
            or str(population.get("kind") or DASH),
            "n_cases": self.f.integer(population.get("n_cases")),
            "language": self.m.language,
            "level": self.level,
        }

    def engine_name(self) -> str:
        engine = self.d.get("engine")
        if not engine:
            return self.m("common.no_engine")
        return str(engine.get("name") or engine.get("kind") or DASH)

    def finding_view(self, f: Mapping[str, Any]) -> dict[str, Any]:
        name = str(f.get("metric") or "")
        kind = self.kind(name)
        attributes = [str(a) for a in (f.get("attributes") or [])]
        statistic = str(f.get("statistic") or "")
        base = statistic.split("_")[0] if statistic else ""

        def fmt(v: Any) -> str:
            if base == "ratio":
                return self.f.ratio(v)
            if base == "difference":
                return self.f.difference(v, kind)
            return self.f.value(v, kind)

        def fmt_ci(lo: Any, hi: Any) -> str:
            if base == "ratio":
                return self.f.ratio_interval(lo, hi)
            if base == "difference":
                return self.f.difference_interval(lo, hi, kind)
            return self.f.interval(lo, hi, kind)

        lo, hi = f.get("bound_min"), f.get("bound_max")
        if not is_missing(lo) and not is_missing(hi):
            bound = self.m("findings.bound_between", low=fmt(lo), high=fmt(hi))
        elif not is_missing(lo):
            bound = self.m("findings.bound_min", value=fmt(lo))
        elif not is_missing(hi):
            bound = self.m("findings.bound_max", value=fmt(hi))
        else:
            bound = str(f.get("bound") or DASH)
        status = str(f.get("status") or "ERROR").upper()
        group = self.group_label(attributes, f.get("group")) if f.get("group") is not None else DASH
        reference = (
            self.group_label(attributes, f.get("reference_group")) if f.get("reference_group") is not None else DASH
        )
        who = self.m("findings.who", group=group, reference=reference) if reference != DASH else group
        return {
            "status": status,
            "status_label": self.status_label(status),
            "name": str(f.get("name") or ""),
            "metric": self.metric_label(name) if name else DASH,
            "attribute": self.attribute_label(attributes) if attributes else self.m("common.everyone"),
            "group": group,
            "reference": reference,
            "who": who,
            "statistic": self.m.get(f"findings.statistic_{base}") or statistic or DASH,
            "observed": fmt(f.get("observed")),
            "ci": fmt_ci(f.get("ci_low"), f.get("ci_high")),
            "bound": bound,
            "p": self.f.p_value(f.get("p_adjusted")),
            "message": str(f.get("message") or ""),
            "severity": str(f.get("severity") or ""),
        }

    def findings_section(self) -> dict[str, Any]:
        order = {"ERROR": 0, "FAIL": 1, "WARN": 2, "PASS": 3}

        def evidence(f: Mapping[str, Any]) -> tuple[int, float, float]:
            """Worst status first; then the strongest evidence; then the furthest from 1 (ratios)."""
            p = as_float(f.get("p_adjusted"))
            observed = as_float(f.get("observed"))
            distance = (
                abs(math.log(observed))
                if f.get("statistic") == "ratio" and observed and observed > 0
                else (abs(observed) if observed is not None else 0.0)
            )
            return (order.get(str(f.get("status")).upper(), 4), p if p is not None else 2.0, -distance)

        views = [self.finding_view(f) for f in sorted(self.findings, key=evidence)]
        return {
            "id": "findings",
            "title": self.m("findings.title"),
            "available": bool(views),
            "reason": self.m("findings.absent"),
            "rows": views,
        }

    def summary(self, findings: dict[str, Any]) -> dict[str, Any]:
        population = self.d.get("population") or {}
        counts = population.get("status_counts") or {}
        engine = self.d.get("engine")
        lead = []
        if engine:
            lead.append(self.m("summary.lead", n=self.f.integer(population.get("n_cases")), engine=self.engine_name()))
        else:
            lead.append(self.m("summary.lead_aggregated", n=self.f.integer(population.get("n_cases"))))
        errors, quarantined = counts.get("error") or 0, counts.get("quarantined") or 0
        if errors or quarantined:
            lead.append(
                self.m("summary.status", errors=self.f.integer(errors), quarantined=self.f.integer(quarantined))
            )
        tally: dict[str, int] = defaultdict(int)
        for v in findings["rows"]:
            tally[v["status"]] += 1
        if findings["rows"]:
            counts_text = self.m(
                "summary.findings_counts",
                total=self.f.integer(len(findings["rows"])),
                fail=self.f.integer(tally["FAIL"] + tally["ERROR"]),
                warn=self.f.integer(tally["WARN"]),
                passed=self.f.integer(tally["PASS"]),
            )
        else:
            counts_text = self.m("summary.no_thresholds")
        verdict = self.m("summary.verdict_fail") if self.result.exit_code else self.m("summary.verdict_pass")
        failing = [v for v in findings["rows"] if v["status"] in ("FAIL", "ERROR", "WARN")]
        figures = []
        for name in self.key_figures():
            ov = self.overall(name)
            if ov is None:
                if name in _AMOUNT_FIGURES and engine and self.has_truth_metrics():
                    figures.append({"label": self.metric_label(name), "value": self.m("figure_explain.na_value"),
                                    "ci": DASH, "note": "", "explain": self.m("figure_explain.not_available")})
                continue
            kind = self.kind(name)
            figures.append(
                {
                    "label": self.metric_label(name),
                    "value": self.f.value(ov.get("value"), kind),
                    "ci": self.f.interval(ov.get("ci_low"), ov.get("ci_high"), kind),
                    "note": ov.get("reason") or "" if is_missing(ov.get("value")) else "",
                    "explain": self.figure_explanation(name, ov),
                }
            )
        disparities = [self.disparity_sentence(r) for r in self.top_disparities(3)]
        return {
            "id": "summary",
            "title": self.m("summary.title"),
            "lead": " ".join(lead),
            "verdict": verdict,
            "failed": bool(self.result.exit_code),
            "counts": counts_text,
            "failing": failing[:_MAX_FAILING_IN_SUMMARY],
            "failing_more": max(0, len(failing) - _MAX_FAILING_IN_SUMMARY),
            "figures": figures,
            "disparities": disparities,
        }

    def review_labels(self) -> list[str]:
        """The spec's review labels (outcomes routed to a caseworker)."""
        return [str(v) for v in ((self.spec.get("outcomes") or {}).get("review") or ["refer"])]

    def has_truth_metrics(self) -> bool:
        """Whether the run compared decisions with a correct decision (so amounts were expected)."""
        return any(n in self.by_metric for n in ("wrongful_denial_rate", "wrongful_grant_rate"))

    def awaiting_caseworker(self) -> int:
        """Applications still waiting for a caseworker at the end of the run (referred, not resolved)."""
        review = (self.d.get("engine") or {}).get("review") or {}
        if not review:
            return 0
        return int(review.get("unresolved") or 0) if review.get("configured") else int(review.get("referred") or 0)

    def figure_explanation(self, name: str, row: Mapping[str, Any]) -> str:
        """One sentence that says what a key figure counts (``figure_explain.<metric>`` in the catalogue)."""
        kind = self.kind(name)
        if f"figure_explain.{name}" not in self.m:
            return self.m("figure_explain.fallback", label=self.metric_label(name),
                          value=self.f.value(row.get("value"), kind), n=self.f.integer(row.get("n")))
        shortfall = self.overall("mean_shortfall")
        text = self.m(f"figure_explain.{name}", value=self.f.value(row.get("value"), kind),
                      n=self.f.integer(row.get("n")),
                      shortfall=self.f.value(shortfall.get("value"), "amount") if shortfall else DASH)
        awaiting = self.awaiting_caseworker()
        if awaiting and name in _DECIDED_FIGURES:
            text += " " + self.m("figure_explain.awaiting", awaiting=self.f.integer(awaiting))
        return text

    def top_disparities(self, k: int) -> list[Mapping[str, Any]]:
        """The ``k`` comparisons furthest from parity, adjusted p-value beside each.

        The same choice as :meth:`AuditResult.largest_disparities` and the
        command line (:func:`audit.metrics.rank_disparities`).
        """
        return largest_disparity_rows(list(self.metric_rows), k, alpha=self.alpha)

    def routing_notes(self) -> list[str]:
        review = (self.d.get("engine") or {}).get("review") or {}
        notes = []
        if review:
            notes.append(self.m("routing.referred", referred=self.f.integer(review.get("referred"))))
            if review.get("configured"):
                notes.append(
                    self.m(
                        "routing.resolved",
                        resolved=self.f.integer(review.get("resolved")),
                        by=str(review.get("by") or DASH),
                        overrides=self.f.integer(review.get("overrides")),
                    )
                )
            else:
                notes.append(self.m("routing.no_review"))
        return notes
