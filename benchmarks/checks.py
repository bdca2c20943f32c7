"""Benchmark: data-quality checks on 1,000,000 cases (goal: 25 expectations in < 3 s).

Every step of an audit validates its input with :func:`audit.checks.validate`,
so the checks must not dominate a run on a large population. This script
draws 1,000,000 synthetic applications with :func:`audit.synth.generate`, then
times ``validate`` with each engine (``native``: Insyn's vectorised
evaluation, the default; ``gx``: great-expectations, SUMMARY-sized results,
row positions mapped to ``case_id`` by Insyn) for:

1. 25 expectations: the mix of a real intake suite (table columns, types,
   nulls, a unique id, formats, allowed values, ranges, the two row-level
   assistance rules and the four fairness-aware expectations);
2. the same 25 on data where 1 % of the rows break three row-level rules, so
   that unexpected rows have to be collected and mapped to ids;
3. the same 25 when every row breaks three row-level rules (the worst case
   for collecting unexpected rows);
4. the whole shipped ``checks/application.yaml`` with groups
   ``[sex, birth_region]``, for information.

Run with ``.venv/bin/python benchmarks/checks.py [N] [native|gx ...]``; it prints wall-clock
seconds (best and median of three runs after one warm-up), the CPU seconds of
this process, and the machine's load, and asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit.checks import Suite, validate  # noqa: E402
from audit.synth import generate  # noqa: E402

GOAL_S = 3.0
REPEATS = 3


def _suite_25() -> Suite:
    """Twenty-five expectations, a realistic mix for the intake step."""
    e: list[dict] = [
        {"type": "expect_table_columns_to_match_set",
         "kwargs": {"column_set": ["case_id", "benefit_month", "sex", "birth_region", "child_ages"],
                    "exact_match": False}},
        {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "case_id", "type_": "str"}},
        {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "applicant_age", "type_": "int64"}},
        {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "rent", "type_": "float64"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "case_id"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "child_ages"}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "case_id"}},
        {"type": "expect_column_values_to_match_regex",
         "kwargs": {"column": "benefit_month", "regex": "^20[0-9]{2}-(?:0[1-9]|1[0-2])$"}},
        {"type": "expect_column_values_to_match_regex",
         "kwargs": {"column": "municipality_code", "regex": "^(?:0[1-9]|1[0-9]|2[0-5])[0-9]{2}$"}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "sex", "value_set": ["female", "male"]}},
        {"type": "expect_column_values_to_be_in_set",
         "kwargs": {"column": "birth_region", "value_set": ["sweden", "nordic", "eu", "outside_eu"]}},
        {"type": "expect_column_values_to_be_in_set",
         "kwargs": {"column": "application_type", "value_set": ["new", "renewal"]}},
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "applicant_age", "min_value": 18, "max_value": 110}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "adults", "min_value": 1, "max_value": 2}},
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "income_wages", "min_value": 0, "max_value": 500000}},
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "rent", "min_value": 0, "max_value": 500000}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "assets", "min_value": 0}},
        {"type": "expect_column_values_to_be_age_lists",
         "kwargs": {"column": "child_ages", "min_age": 0, "max_age": 20}},
        {"type": "expect_column_pair_values_a_to_be_at_most_count_of_ages_in_b",
         "kwargs": {"column_A": "children_preschool_lunch", "column_B": "child_ages", "min_age": 0, "max_age": 6}},
        {"type": "expect_column_pair_values_a_to_be_greater_than_b",
         "kwargs": {"column_A": "applicant_age", "column_B": "years_in_sweden", "or_equal": True}},
        {"type": "expect_column_group_representation_to_be_at_least",
         "kwargs": {"column": "birth_region", "min_count": 10}},
        {"type": "expect_column_missing_rate_gap_across_groups_to_be_at_most",
         "kwargs": {"column": "income_wages", "group_column": "birth_region", "max_gap": 0.05}},
        {"type": "expect_column_failure_rate_gap_across_groups_to_be_at_most",
         "kwargs": {"column": "registry_read_failed", "group_column": "birth_region", "max_gap": 0.05}},
        {"type": "expect_column_proxy_strength_to_be_at_most",
         "kwargs": {"column": "interpreter", "sensitive_column": "birth_region", "max_cramers_v": 0.4}},
        {"type": "expect_column_proxy_strength_to_be_at_most",
         "kwargs": {"column": "rent", "sensitive_column": "sex", "max_cramers_v": 0.4}},
    ]
    assert len(e) == 25
    return Suite.from_dict({"name": "bench25", "expectations": e}, source="benchmarks/checks.py")


def _timed(frame: pd.DataFrame, suites: list, **kwargs) -> tuple[list[float], list[float], object]:
    validate(frame, suites, step="bench", **kwargs)  # warm-up: GX metric registry, pyarrow kernels
    wall: list[float] = []
    cpu: list[float] = []
    report = None
    for _ in range(REPEATS):
        t0, c0 = time.perf_counter(), time.process_time()
        report = validate(frame, suites, step="bench", **kwargs)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu, report


def _line(label: str, wall: list[float], cpu: list[float], report, goal: float | None = None) -> str:
    best, median = min(wall), statistics.median(wall)
    verdict = "" if goal is None else ("  (goal < %.1f s: %s)" % (goal, "met" if median < goal else "NOT met"))
    return (
        f"{label:<46} wall best {best:5.2f} s median {median:5.2f} s  cpu median {statistics.median(cpu):5.2f} s  "
        f"results {len(report.results):3d} failed {len(report.failures):2d} "
        f"failed cases {len(report.failed_rows):5d}{verdict}"
    )


def main(n: int = 1_000_000, engines: tuple[str, ...] = ("native", "gx")) -> None:
    for engine in engines:
        print(f"--- engine {engine}")
        _main(n, engine)


def _main(n: int, engine: str) -> None:
    t0 = time.perf_counter()
    frame = generate(ROOT / "datasets/sweden/population-2026.yaml", n=n, seed=2026)
    print(f"cases: {len(frame):,} x {frame.shape[1]} columns (generated in {time.perf_counter() - t0:.1f} s)")
    suite = _suite_25()

    print(f"machine load (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (wall time grows with it)")
    print(_line("25 expectations, clean data", *_timed(frame, [suite], engine=engine), GOAL_S))

    broken = frame.copy()
    rng = np.random.default_rng(0)
    rows = rng.choice(n, size=n // 100, replace=False)
    broken.loc[rows[: len(rows) // 3], "applicant_age"] = 15
    broken.loc[rows[len(rows) // 3: 2 * len(rows) // 3], "child_ages"] = "4;x"
    broken.loc[rows[2 * len(rows) // 3:], "sex"] = "unknown"
    print(_line("25 expectations, 1 % of rows broken", *_timed(broken, [suite], engine=engine), GOAL_S))
    everything = frame.copy()
    everything["sex"] = "unknown"
    everything["child_ages"] = "x"
    print(_line("25 expectations, every row fails 3 row checks", *_timed(everything, [suite], engine=engine), GOAL_S))
    print(_line("checks/application.yaml, groups sex + birth_region",
                *_timed(frame, [ROOT / "checks/application.yaml"], groups=["sex", "birth_region"], engine=engine)))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000, tuple(sys.argv[2:]) or ("native", "gx"))
