"""Benchmark: seconds for the reference engine to decide 1,000,000 applications.

Builds a seeded case frame with plain numpy (no dependency on the synthetic
generator, so the figure measures audit.norms alone): months across
2023-2026 (both rule versions of 2026), 1-2 adults, other adults, 0-8
children aged 0-20 with preschool lunch, every income and cost column, assets
and the labour-market flags; about 1 % of the rows carry a deliberate error
(a negative rent or an unparsable ``child_ages``) so that the error path is
timed too. Then it times ``ReferenceEngine().decide`` and ``compute_need``
(best of a few repeats, after one warm-up) and prints the rate and the
outcome mix. Run from the repository root::

    .venv/bin/python benchmarks/norms.py [--n 1000000] [--repeat 3]

The goal (issue 3) is 1M cases in under 10 s; the figures are printed, never
asserted, because timing depends on the machine and its load.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from audit._columns import COST_COLUMNS, INCOME_COLUMNS
from audit.norms import ReferenceEngine, compute_need


def build_cases(n: int, *, seed: int = 0) -> pd.DataFrame:
    """Return ``n`` seeded assistance cases, built column by column with numpy."""
    rng = np.random.default_rng(seed)
    months = np.array([f"{y}-{m:02d}" for y in (2023, 2024, 2025, 2026) for m in range(1, 13)])
    n_children = rng.choice(9, size=n, p=[0.55, 0.15, 0.12, 0.08, 0.04, 0.03, 0.015, 0.01, 0.005])
    ages = rng.integers(0, 21, size=(n, 8))
    # child_ages strings: format each distinct (count, ages) row once, as real data repeats them
    keys = np.where(np.arange(8) < n_children[:, None], ages, -1)
    code = ((keys + 1) * 22 ** np.arange(8)).sum(axis=1)  # one integer per (count, ages) row
    uniq, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    text = np.array([";".join(str(a) for a in keys[i] if a >= 0) for i in first], dtype=object)
    child_ages = text[inverse]
    young = ((keys >= 0) & (keys <= 6)).sum(axis=1)
    frame: dict[str, object] = {
        "case_id": ("case-" + pd.Series(np.arange(n)).astype(str)).to_numpy(),
        "benefit_month": months[rng.integers(0, len(months), size=n)],
        "adults": rng.integers(1, 3, size=n),
        "other_adults": rng.choice(3, size=n, p=[0.9, 0.08, 0.02]),
        "child_ages": child_ages,
        "children_preschool_lunch": np.minimum(young, rng.integers(0, 3, size=n)),
        "months_on_assistance": rng.integers(0, 40, size=n),
    }
    for col in INCOME_COLUMNS:
        frame[col] = np.where(rng.random(n) < 0.25, np.round(rng.gamma(2.0, 2500.0, size=n), 0), 0.0)
    for col in COST_COLUMNS:
        scale = 6500.0 if col == "rent" else 300.0
        share = 0.95 if col == "rent" else 0.3
        frame[col] = np.where(rng.random(n) < share, np.round(rng.gamma(4.0, scale / 4, size=n)), 0.0)
    frame["assets"] = np.where(rng.random(n) < 0.05, rng.uniform(0, 60000, size=n), 0.0)
    frame["able_to_work"] = rng.random(n) < 0.6
    frame["registered_af"] = rng.random(n) < 0.9
    frame["follows_plan"] = rng.random(n) < 0.9
    df = pd.DataFrame(frame)
    df = df.astype({"case_id": "str", "benefit_month": "str", "child_ages": "str"})
    bad = rng.random(n) < 0.01
    df.loc[bad & (rng.random(n) < 0.5), "rent"] = -100.0
    df.loc[bad & (df["rent"] >= 0), "child_ages"] = "4;x"
    return df


def _best(fn, repeat: int) -> tuple[float, object]:
    fn()  # warm-up
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    start = time.perf_counter()
    cases = build_cases(args.n)
    print(f"built {len(cases):,} cases in {time.perf_counter() - start:.2f} s "
          f"({cases.memory_usage(deep=True).sum() / 1e6:.0f} MB)")

    engine = ReferenceEngine()
    seconds, decisions = _best(lambda: engine.decide(cases), args.repeat)
    print(f"ReferenceEngine.decide: {seconds:.2f} s for {args.n:,} cases "
          f"({args.n / seconds:,.0f} cases/s; goal < 10 s: {'met' if seconds < 10 else 'NOT met'})")
    seconds, _ = _best(lambda: compute_need(cases), args.repeat)
    print(f"compute_need:           {seconds:.2f} s")
    assert isinstance(decisions, pd.DataFrame)
    mix = decisions["outcome"].value_counts(normalize=True).round(4).to_dict()
    print(f"outcomes: {mix}")
    print(f"rows in {len(cases):,}, rows out {len(decisions):,}, error rows {int((decisions['error'] != '').sum()):,}")


if __name__ == "__main__":
    main()
