"""Benchmark: seconds to generate 1,000,000 synthetic applications with audit.synth.

Generates the shipped population spec (``datasets/sweden/population-2026.yaml``)
at 100 000 and 1 000 000 cases, with every bias knob off and with every
knob on, and prints the best of a few repeats (after one warm-up), the rate
in cases per second and the memory of the frame. Run from the repository
root::

    .venv/bin/python benchmarks/synth.py [--repeat 3]

The goal (issue 4) is 1M cases "in seconds"; the figures are printed, never
asserted, because timing depends on the machine and its load.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from audit.synth import generate, load_population_spec

SPEC = Path(__file__).resolve().parents[1] / "datasets" / "sweden" / "population-2026.yaml"


def _best(n: int, bias: dict[str, float] | None, repeat: int) -> tuple[float, float]:
    """Return (best seconds, frame size in MB) over ``repeat`` runs."""
    model = load_population_spec(SPEC)
    times = []
    size = 0.0
    for i in range(repeat):
        start = time.perf_counter()
        frame = generate(model, n=n, seed=i, bias=bias)
        times.append(time.perf_counter() - start)
        size = frame.memory_usage(deep=True).sum() / 1e6
        del frame
    return min(times), size


def main() -> None:
    """Print the timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the best is shown (default 3)")
    args = parser.parse_args()
    model = load_population_spec(SPEC)
    all_on = {name: 0.3 for name in model.bias_knobs}
    generate(model, n=10_000, seed=0)  # warm-up: imports, pyarrow kernels
    print(f"{'cases':>10}  {'bias knobs':<10}  {'best s':>7}  {'cases/s':>11}  {'frame MB':>8}")
    for n in (100_000, 1_000_000):
        for label, bias in (("off", None), ("all 0.3", all_on)):
            seconds, size = _best(n, bias, args.repeat)
            print(f"{n:>10,}  {label:<10}  {seconds:>7.2f}  {n / seconds:>11,.0f}  {size:>8.0f}")


if __name__ == "__main__":
    main()
