"""What the ``insyn`` command line prints: tables for people, CSV and JSON for programs, in English or Swedish.

An audit is run by people at a terminal and by scheduled jobs whose output
goes to a file, a pipe or a mail. Both must get everything: a terminal gets
tables sized to its width, while a pipe or a file gets the full lines, never
wrapped or cut at 80 columns (rich's default when it cannot ask a terminal),
and ``--format csv`` or ``--format json`` gives a program the same rows
without any layout. The words come from the report's message catalogues
(``audit/report/messages/``), so ``--lang sv`` prints Swedish
labels, statuses and numbers (``31,2 %``) wherever the report speaks
Swedish.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from audit._json import jsonable
from audit._privacy import MASK, PNR_PATTERN
from audit.metrics import METRICS
from audit.report._builder import metric_kind
from audit.report._format import Formatter
from audit.report._messages import Catalogue, load_catalogue

__all__ = [
    "FORMATS",
    "PIPE_WIDTH",
    "Speaker",
    "check_rows",
    "check_table",
    "chunked_run_line",
    "disparity_rows",
    "execution_why",
    "finding_lines",
    "make_console",
    "memory_run_note",
    "summary_table",
    "write_rows",
]

FORMATS: tuple[str, ...] = ("table", "csv", "json")
"""Output formats of the commands that print tables."""

PIPE_WIDTH = 10_000
"""Width of a console that writes to a pipe or a file: wide enough that no line is wrapped or cut."""

_CHECK_COLUMNS = (
    "suite", "index", "expectation", "column", "severity", "success", "element_count", "unexpected_count",
    "unexpected_percent", "observed_value", "sample_case_ids", "message",
)


def make_console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr): the terminal's width at a terminal, :data:`PIPE_WIDTH` elsewhere.

    The stream is looked up when this is called, so a console made inside a
    command writes where that command's output goes.
    """
    stream = sys.stderr if stderr else sys.stdout
    probe = Console(file=stream, highlight=False)
    if probe.is_terminal:
        return probe
    return Console(file=stream, highlight=False, width=PIPE_WIDTH, soft_wrap=False)


class Speaker:
    """The console's words and numbers in one language.

    Parameters
    ----------
    language : str
        ``"en"`` or ``"sv"`` (see :data:`audit.report.LANGUAGES`).
    """

    def __init__(self, language: str = "en") -> None:
        self.messages: Catalogue = load_catalogue(language)
        self.numbers = Formatter(self.messages)
        self.language = language

    def __call__(self, key: str, /, **values: Any) -> str:
        """The console message ``console.<key>`` with its placeholders filled in."""
        return self.messages.format(f"console.{key}", **values)

    def metric(self, name: str) -> str:
        """A metric's label (its name when the catalogue has none)."""
        return self.messages.get(f"metric.{name}.label") or name

    def attribute(self, attributes: Sequence[str]) -> str:
        """The label of a grouping: ``Kön × Födelseregion``."""
        if not attributes:
            return self.messages("common.everyone")
        return " × ".join(self.messages.get(f"attribute.{a}") or a for a in attributes)

    def group(self, attributes: Sequence[str], group: Any) -> str:
        """The label of a group, value by value (``kvinnor & födda i Sverige``)."""
        if group is None:
            return "–"
        text = str(group)
        if not attributes:
            return self.messages("common.everyone") if text == "all" else text
        parts = text.split(" & ")
        if len(parts) != len(attributes):
            return text
        return " & ".join(self.messages.get(f"value.{a}.{v}") or v for a, v in zip(attributes, parts, strict=True))

    def status(self, status: Any) -> str:
        """``PASS``, ``FAIL``, ``WARN``, ``ERROR`` in the language (``GODKÄND``, ...)."""
        return self.messages.get(f"status.{str(status).lower()}") or str(status)

    def severity(self, severity: Any) -> str:
        """An expectation's severity in the language."""
        return self.messages.get(f"console.severity.{severity}") or str(severity)

    def value(self, value: Any, metric: str) -> str:
        """A metric value in its unit (a rate as a percentage, an amount in kronor)."""
        return self.numbers.value(value, metric_kind(metric, METRICS.get(metric)))

    def interval(self, low: Any, high: Any, metric: str) -> str:
        """An interval of a metric value."""
        return self.numbers.interval(low, high, metric_kind(metric, METRICS.get(metric)))

    def difference(self, value: Any, metric: str) -> str:
        """A difference between two values of a metric (percentage points for a rate)."""
        return self.numbers.difference(value, metric_kind(metric, METRICS.get(metric)))


# --------------------------------------------------------------------------
# an audit run


def _level(result: Any) -> str:
    alpha = (result.spec.get("statistics") or {}).get("alpha", 0.05) if isinstance(result.spec, Mapping) else 0.05
    level = 100 * (1 - float(alpha))
    return f"{level:g}"


def disparity_rows(result: Any, k: int = 5) -> list[dict[str, Any]]:
    """The ``k`` largest disparities of a run as plain records (full precision), for CSV and JSON."""
    frame = result.largest_disparities(k)
    keep = [c for c in ("metric", "attributes", "group", "n", "value", "ci_low", "ci_high", "reference_group",
                        "reference_value", "difference", "ratio", "ratio_ci_low", "ratio_ci_high", "p_value",
                        "p_adjusted") if c in frame.columns]
    rows = jsonable(frame[keep].to_dict(orient="records"))
    for row in rows:
        if isinstance(row.get("attributes"), list):
            row["attributes"] = list(row["attributes"])
    return rows


def summary_table(result: Any, speaker: Speaker, k: int = 5) -> Table:
    """A table of the ``k`` largest disparities of a run, with intervals and adjusted p-values."""
    level = _level(result)
    table = Table(title=speaker("disparities_title"), show_lines=False)
    for col in (
        speaker.messages("findings.col_metric"),
        speaker.messages("findings.col_group"),
        speaker("col_value_ci", level=level),
        speaker("col_reference"),
        speaker("col_ratio_ci", level=level),
        speaker.messages("table.col_difference"),
        speaker.messages("common.p_adjusted"),
    ):
        table.add_column(col)
    f = speaker.numbers
    for r in result.largest_disparities(k).to_dict(orient="records"):
        metric = str(r["metric"])
        attrs = list(r.get("attributes") or [])
        table.add_row(
            speaker.metric(metric),
            speaker.group(attrs, r["group"]),
            f"{speaker.value(r['value'], metric)} ({speaker.interval(r['ci_low'], r['ci_high'], metric)})",
            f"{speaker.group(attrs, r['reference_group'])}: {speaker.value(r['reference_value'], metric)}",
            f"{f.ratio(r['ratio'])} ({f.ratio_interval(r.get('ratio_ci_low'), r.get('ratio_ci_high'))})",
            speaker.difference(r["difference"], metric),
            f"{f.p_value(r['p_adjusted'])}{' *' if r.get('significant') else ''}",
        )
    return table


def finding_lines(result: Any, speaker: Speaker, *, limit: int = 8) -> list[str]:
    """The counts of findings by status, then one line per FAIL, ERROR or WARN (at most ``limit``)."""
    counts: dict[str, int] = {}
    for f in result.findings:
        counts[f["status"]] = counts.get(f["status"], 0) + 1
    if not counts:
        return []
    lines = [speaker("findings_counts", counts=", ".join(f"{speaker.status(k)} {v}" for k, v in sorted(counts.items())))]
    flagged = [f for f in result.findings if f["status"] in ("FAIL", "ERROR", "WARN")]
    level = _level(result)
    for f in flagged[:limit]:
        lines.append(f"  {speaker.status(f['status'])}: {_finding_text(f, speaker, level)}")
    if len(flagged) > limit:
        lines.append("  " + speaker("more_findings", count=len(flagged) - limit))
    return lines


def _finding_text(f: Mapping[str, Any], speaker: Speaker, level: str) -> str:
    m, num = speaker.messages, speaker.numbers
    metric = str(f.get("metric") or "")
    attrs = list(f.get("attributes") or [])
    statistic = str(f.get("statistic") or "value")
    base = statistic.split("_")[0]
    kind = metric_kind(metric, METRICS.get(metric))

    def fmt(v: Any) -> str:
        if base == "ratio":
            return num.ratio(v)
        if base == "difference":
            return num.difference(v, kind)
        return num.value(v, kind)

    def fmt_ci(lo: Any, hi: Any) -> str:
        if base == "ratio":
            return num.ratio_interval(lo, hi)
        if base == "difference":
            return num.difference_interval(lo, hi, kind)
        return num.interval(lo, hi, kind)

    lo, hi = f.get("bound_min"), f.get("bound_max")
    if lo is not None and hi is not None:
        bound = m("findings.bound_between", low=fmt(lo), high=fmt(hi))
    elif lo is not None:
        bound = m("findings.bound_min", value=fmt(lo))
    elif hi is not None:
        bound = m("findings.bound_max", value=fmt(hi))
    else:
        bound = str(f.get("bound") or "–")
    group = speaker.group(attrs, f.get("group")) if f.get("group") is not None else m("common.everyone")
    who = group
    if f.get("reference_group") is not None:
        who = m("findings.who", group=group, reference=speaker.group(attrs, f.get("reference_group")))
    return m(
        "summary.finding_line",
        metric=speaker.metric(metric),
        who=who,
        statistic=m.get(f"findings.statistic_{base}") or statistic,
        observed=fmt(f.get("observed")),
        level=level,
        ci=fmt_ci(f.get("ci_low"), f.get("ci_high")),
        bound=bound,
    )


# --------------------------------------------------------------------------
# insyn check


def check_rows(report: Any) -> list[dict[str, Any]]:
    """Every expectation of a check report as a flat record (one per expectation), for CSV and JSON."""
    rows = []
    for r in report.results:
        row = {k: r.get(k) for k in _CHECK_COLUMNS}
        row["observed_value"] = None if r.get("observed_value") is None else json.dumps(r["observed_value"])
        row["sample_case_ids"] = ";".join(map(str, r.get("sample_case_ids") or []))
        rows.append(row)
    return rows


def _short(value: Any, limit: int = 60) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_table(report: Any, speaker: Speaker, *, max_rows: int = 50) -> tuple[str, Table | None, str | None]:
    """The head line, a table of the failed expectations and a closing line (or None) of a check report."""
    failed = report.failures
    critical = sum(r["severity"] == "critical" for r in failed)
    head = speaker(
        "check_head", step=report.step, n=len(report.results), suites=", ".join(report.suites), rows=report.n_rows,
        critical=critical, other=len(failed) - critical, cases=len(report.failed_rows),
    )
    if not failed:
        return head, None, None
    table = Table(title=speaker("check_title"), show_lines=False)
    for key in ("col_severity", "col_suite", "col_expectation", "col_column", "col_unexpected", "col_observed",
                "col_samples", "col_message"):
        table.add_column(speaker(key), overflow="fold")
    order = {"critical": 0, "warning": 1, "info": 2}
    for r in sorted(failed, key=lambda r: order.get(r["severity"], 3))[:max_rows]:
        unexpected = "" if r["unexpected_count"] is None else f"{r['unexpected_count']:,}"
        if r["unexpected_count"] is not None and r["element_count"] is not None:
            unexpected += f" / {r['element_count']:,}"
        style = "bold red" if r["severity"] == "critical" else None
        table.add_row(
            speaker.severity(r["severity"]),
            str(r["suite"]),
            f"{r['expectation']} [{r['index']}]",
            r["column"] or "",
            unexpected,
            _short(r["observed_value"]),
            PNR_PATTERN.sub(MASK, ", ".join(map(str, r["sample_case_ids"][:5]))),
            r["message"] or "",
            style=style,
        )
    more = speaker("check_more", count=len(failed) - max_rows) if len(failed) > max_rows else None
    return head, table, more


# --------------------------------------------------------------------------
# rows as CSV or JSON


def write_rows(rows: Iterable[Mapping[str, Any]], fmt: str, stream: TextIO | None = None) -> None:
    """Write records as CSV (a header, then one line per record) or as a JSON list.

    Parameters
    ----------
    rows : iterable of mappings
        The records; CSV columns are the keys of the first record, in order.
    fmt : {"csv", "json"}
    stream : text stream, optional
        Default, ``sys.stdout``.
    """
    out = stream if stream is not None else sys.stdout
    records = [dict(r) for r in rows]
    if fmt == "json":
        out.write(json.dumps(jsonable(records), indent=2, ensure_ascii=False) + "\n")
        return
    if fmt != "csv":
        raise ValueError(f"fmt must be csv or json. Got {fmt!r}.")
    buffer = io.StringIO()
    columns = list(records[0]) if records else []
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for r in records:
        writer.writerow({k: _csv_cell(v) for k, v in r.items()})
    out.write(buffer.getvalue())


def _csv_cell(value: Any) -> Any:
    value = jsonable(value)
    if isinstance(value, list):
        return ";".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "" if value is None else value


def execution_why(speaker: Speaker, plan: Any) -> str:
    """What decided whether a run is held in memory or chunked, in the console's language.

    Parameters
    ----------
    speaker : Speaker
    plan : audit.execution.ExecutionPlan
        Its ``reason`` names the message ``console.execution.<reason>``.

    Returns
    -------
    str
    """
    above = "" if plan.above is None else speaker.numbers.integer(plan.above)
    return speaker(f"execution.{plan.reason}", **{**plan.values, "above": above})


def chunked_run_line(speaker: Speaker, plan: Any, *, rows: int, chunks: int) -> str:
    """The first line ``insyn run`` prints of a chunked run: cases, chunks, their size, and why.

    Parameters
    ----------
    speaker : Speaker
    plan : audit.execution.ExecutionPlan
        A plan with ``chunked`` true.
    rows, chunks : int
        The cases run and the chunks they were cut into.

    Returns
    -------
    str
    """
    n = speaker.numbers.integer
    return speaker("run_chunks", rows=n(rows), chunks=n(chunks), size=n(plan.chunk_size),
                   why=execution_why(speaker, plan))


def memory_run_note(speaker: Speaker, plan: Any) -> str:
    """The note ``insyn run`` prints when a population above ``auto_above`` is held in memory, and why.

    Parameters
    ----------
    speaker : Speaker
    plan : audit.execution.ExecutionPlan
        A plan with ``rows`` counted.

    Returns
    -------
    str
    """
    return speaker("run_memory_note", rows=speaker.numbers.integer(plan.rows), why=execution_why(speaker, plan))
