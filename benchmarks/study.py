"""Studies: wall time of a study, speed-up from 1 to 2 workers, and the per-run overhead of a study.

Run with ``PYTHONPATH=$PWD .venv/bin/python benchmarks/study.py [--runs 200] [--n 20000]``.
The study is ``--runs`` replicates of the demo audit (examples/demo.yaml: the
municipal RPA rule set against the law's baseline, every check suite) at
``--n`` cases, with the HTML report off inside runs (runs write no run
folder at all; a study keeps each run's metric table). It prints

1. the wall time of the study on local processes with 1 and with 2 workers,
   and the speed-up;
2. the per-run overhead of a study over a bare ``Audit.run(write=False)``:
   the median time of bare runs and the time per run of the same audits
   run as a study on the in-process executor (run table, atomic Parquet
   write, and the study's share of study.parquet, power.csv and
   study.html), interleaved so that the machine's load hits both alike.
   Goal: at most 10 %.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from audit.audit import Audit
from audit.study import StudySpec, derive_seed, run_study

ROOT = Path(__file__).resolve().parents[1]


def _study(runs: int, n: int, seed: int) -> StudySpec:
    audit = yaml.safe_load((ROOT / "examples/demo.yaml").read_text(encoding="utf-8"))
    audit["population"]["n"] = n
    audit["report"] = {"formats": ["json"]}
    return StudySpec.from_dict({"name": "bench", "seed": seed, "replicates": runs, "audit": audit},
                               base_dir=ROOT / "examples", source="benchmarks/study.py")


def _timed_study(spec: StudySpec, executor: str, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = run_study(spec, out=Path(tmp) / "s", executor=executor, workers=workers)
        wall = time.perf_counter() - start
    assert result.exit_code == 0, result.failures
    return wall


def main() -> None:
    """Print the figures (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--overhead-rounds", type=int, default=3)
    parser.add_argument("--overhead-runs", type=int, default=5, help="runs per round (bare and in a study)")
    args = parser.parse_args()

    spec = _study(args.runs, args.n, seed=1)
    walls = {w: _timed_study(spec, "processes", w) for w in (1, 2)}
    print(f"study of {args.runs} runs x {args.n:,} cases: 1 worker {walls[1]:.1f} s, 2 workers {walls[2]:.1f} s, "
          f"speed-up {walls[1] / walls[2]:.2f}x ({walls[1] / args.runs:.2f} s/run on 1 worker)")

    base = Audit.from_yaml(ROOT / "examples/demo.yaml")
    base = base.with_options(population={**base.to_dict()["population"], "n": args.n},
                             report={"formats": ["json"]})
    Audit.run(base, write=False)  # warm caches (imports, population spec, rule set)
    bare, study = [], []
    k = args.overhead_runs
    for i in range(args.overhead_rounds):  # interleaved rounds: k bare runs, then a k-run study with the same seeds
        start = time.perf_counter()
        for r in range(k):
            base.with_options(seed=derive_seed(100 + i, 0, r)).run(write=False)
        bare.append((time.perf_counter() - start) / k)
        study.append(_timed_study(_study(k, args.n, seed=100 + i), "inprocess", 1) / k)
    b, s = statistics.median(bare), statistics.median(study)
    print(f"per run: bare Audit.run {b:.2f} s, in a study {s:.2f} s (median of {args.overhead_rounds} rounds of {k}); "
          f"overhead {100 * (s - b) / b:+.1f} % (goal <= 10 %)")


if __name__ == "__main__":
    main()
