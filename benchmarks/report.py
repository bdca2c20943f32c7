"""Benchmark: the size and rendering time of the report for 1,000,000 cases.

A report must stay small enough to mail, print and open on a phone however
many cases an audit covers: it shows aggregates only (metrics per group,
check summaries, the journey's row counts and at most three example case ids
per failed check), never per-case rows. This script builds a measurement
frame of ``--cases`` applications (default 1,000,000) with a known bias,
measures it with :func:`audit.metrics.measure` (the real metric pipeline,
2,000 bootstrap draws), wraps the metrics in an :class:`~audit.AuditResult`
with a journey, checks and findings of the same shape as a real run, and
renders ``report.html`` and ``report.md`` in English and Swedish.

It prints the size of each report and the time to render it, and exits with
status 1 when ``report.html`` reaches 2 MB (the goal of issue 10). Run::

    .venv/bin/python benchmarks/report.py [--cases 1000000]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from audit import AuditResult
from audit.metrics import evaluate_thresholds, measure
from audit.report import render_html, render_markdown, render_summary_html
from audit.spec import StatisticsSpec

LIMIT_BYTES = 2 * 1024 * 1024

SENSITIVE = ("sex", "birth_region", "age_band")
THRESHOLDS = [
    {"metric": "refer_rate", "ratio_min": 0.8, "ratio_max": 1.25},
    {"metric": "grant_rate", "ratio_min": 0.8},
    {"metric": "underpayment_rate", "difference_max": 0.05},
]


def measurement_frame(n: int, *, seed: int = 42) -> pd.DataFrame:
    """A measurement frame of ``n`` applications with a known, built-in bias.

    Applicants born outside the EU are routed to a caseworker and refused
    more often, and underpaid more often, than those born in Sweden.
    """
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["female", "male"]), size=n)
    region = rng.choice(np.array(["sweden", "nordic", "eu", "outside_eu"]), size=n, p=[0.62, 0.05, 0.08, 0.25])
    age = rng.choice(np.array(["18-29", "30-49", "50-64", "65+"]), size=n, p=[0.3, 0.45, 0.22, 0.03])
    outside = region == "outside_eu"
    truth_deny = rng.random(n) < 0.18
    p_refer = np.where(outside, 0.30, 0.20)
    p_wrong_deny = np.where(outside, 0.08, 0.03)
    u = rng.random(n)
    refer = u < p_refer
    deny = ~refer & (truth_deny | (rng.random(n) < p_wrong_deny))
    outcome = np.where(refer, "refer", np.where(deny, "deny", "grant"))
    final = np.where(refer, np.where(rng.random(n) < 0.7, "grant", "deny"), outcome)
    truth_amount = np.where(truth_deny, 0.0, rng.gamma(4.0, 2000.0, size=n).round())
    short = np.where(outside, 0.12, 0.05) > rng.random(n)
    shortfall = np.where(short, rng.gamma(2.0, 300.0, n), 0.0)
    final_amount = np.where(final == "grant", np.maximum(truth_amount - shortfall, 0.0), 0.0)
    status = np.where(rng.random(n) < 0.002, "error", "ok")
    outcome = np.where(status == "error", "error", outcome)
    final = np.where(status == "error", "error", final)
    return pd.DataFrame(
        {
            "case_id": pd.Series(np.char.add("c", np.arange(n).astype(str)), dtype="str"),
            "sex": pd.Series(sex, dtype="str"),
            "birth_region": pd.Series(region, dtype="str"),
            "age_band": pd.Series(age, dtype="str"),
            "status": pd.Series(status, dtype="str"),
            "outcome": pd.Series(outcome, dtype="str"),
            "final_outcome": pd.Series(final, dtype="str"),
            "amount": np.where(outcome == "grant", final_amount, np.nan),
            "final_amount": np.where(final == "grant", final_amount, np.nan),
            "truth_outcome": pd.Series(np.where(truth_deny, "deny", "grant"), dtype="str"),
            "truth_amount": truth_amount,
            "reasons": pd.Series(np.where(refer, "R12", np.where(deny, "N3;I2", "")), dtype="str"),
        }
    )


def build_result(n: int, *, seed: int = 42) -> tuple[AuditResult, float]:
    """Measure a frame of ``n`` cases and wrap it in an AuditResult; return it and the time to measure."""
    frame = measurement_frame(n, seed=seed)
    t0 = time.perf_counter()
    metrics = measure(
        frame,
        sensitive_features=list(SENSITIVE),
        intersections=[["sex", "birth_region"]],
        reference_groups={"birth_region": "sweden"},
        favourable=["grant", "partial"],
        review=["refer"],
        pred_positive=["deny"],
        truth_positive=["deny"],
        statistics=StatisticsSpec(),
        seed=seed,
    )
    findings = evaluate_thresholds(metrics, THRESHOLDS)
    measured = time.perf_counter() - t0
    counts = frame["status"].value_counts()
    steps = []
    rows = n
    for name, actor, rejected, errored in (
        ("source", "system", 0, 0),
        ("intake", "system", 0, 0),
        ("reference", "system", 0, 0),
        ("engine_input", "system", 0, 0),
        ("decision", "engine", 0, int(counts.get("error", 0))),
        ("review", "caseworker", 0, 0),
        ("final", "system", 0, 0),
        ("measurement", "system", 0, 0),
    ):
        out = rows - rejected - errored
        steps.append(
            {
                "name": name,
                "actor": actor,
                "rows_in": rows,
                "rows_out": out,
                "rows_rejected": rejected,
                "rows_errored": errored,
                "columns_added": [],
                "columns_changed": [],
                "columns_dropped": [],
                "duration_s": 0.1,
                "status": "ok",
            }
        )
        rows = out if name != "decision" else n
    checks = [
        {
            "step": "intake",
            "policy": "warn",
            "success": False,
            "n_failed_cases": 1234,
            "results": [
                {
                    "suite": "application",
                    "expectation": "expect_column_values_to_not_be_null",
                    "column": "rent",
                    "kwargs": {"column": "rent"},
                    "success": False,
                    "unexpected_count": 1234,
                    "unexpected_percent": 0.1234,
                    "observed_value": None,
                    "sample_case_ids": [f"c{i}" for i in range(20)],
                }
            ]
            + [
                {
                    "suite": "application",
                    "expectation": "expect_column_to_exist",
                    "column": f"col_{i}",
                    "kwargs": {"column": f"col_{i}"},
                    "success": True,
                    "unexpected_count": 0,
                    "unexpected_percent": 0.0,
                    "observed_value": None,
                    "sample_case_ids": [],
                }
                for i in range(40)
            ],
        }
    ]
    result = AuditResult.build(
        decisions=frame[["case_id", "status", "outcome", "reasons"]],
        run_id="benchmark",
        generated_at="2026-01-01T00:00:00+00:00",
        spec={
            "name": "benchmark",
            "seed": seed,
            "sensitive_features": list(SENSITIVE),
            "intersections": [["sex", "birth_region"]],
            "thresholds": THRESHOLDS,
            "statistics": StatisticsSpec().model_dump(),
            "report": {"language": "en"},
        },
        population={
            "kind": "synthetic",
            "path": "benchmark",
            "n_cases": n,
            "status_counts": {"ok": int(counts.get("ok", 0)), "error": int(counts.get("error", 0)), "quarantined": 0},
            "provenance": {},
        },
        engine={
            "kind": "rules",
            "name": "benchmark-engine",
            "version": "1",
            "n_cases": n,
            "n_errors": int(counts.get("error", 0)),
            "duration_s": 12.5,
            "cases_per_s": n / 12.5,
            "review": {
                "configured": True,
                "referred": int((frame["outcome"] == "refer").sum()),
                "resolved": int((frame["outcome"] == "refer").sum()),
                "overrides": 0,
                "by": "model",
            },
            "truth": {"kind": "reference"},
        },
        checks=checks,
        journey={
            "steps": steps,
            "fields": [
                {
                    "column": f"col_{i}",
                    "origin": "applicant",
                    "discretion": i % 5 == 0,
                    "used_by_engine": True,
                    "changed_by": [],
                }
                for i in range(45)
            ],
            "timings": {},
        },
        metrics=[dict(r) for r in metrics.to_dict(orient="records")],
        findings=findings,
    )
    return result, measured


def main(argv: list[str] | None = None) -> int:
    """Build, render and report sizes; exit 1 when report.html reaches 2 MB."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    result, measured = build_result(args.cases)
    print(
        f"cases: {args.cases:,}; metric rows: {len(result.metrics):,}; findings: {len(result.findings):,}; "
        f"measure: {measured:.2f} s"
    )
    worst = 0
    renders: list[tuple[str, Any]] = [
        ("report.html (en)", lambda: render_html(result, language="en")),
        ("report.html (sv)", lambda: render_html(result, language="sv")),
        ("report.md (en)", lambda: render_markdown(result, language="en")),
        ("report.md (sv)", lambda: render_markdown(result, language="sv")),
        ("summary fragment", lambda: render_summary_html(result)),
    ]
    for label, render in renders:
        t0 = time.perf_counter()
        text = render()
        took = time.perf_counter() - t0
        size = len(text.encode("utf-8"))
        if label.startswith("report.html"):
            worst = max(worst, size)
        print(f"{label:18s} {size / 1024:8.1f} KiB  rendered in {took:.2f} s  charts: {text.count('<svg')}")
    verdict = "OK" if worst < LIMIT_BYTES else "TOO LARGE"
    print(f"largest report.html: {worst / 1024 / 1024:.3f} MiB (limit 2 MiB): {verdict}")
    return 0 if worst < LIMIT_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
