"""Studies: wall time of a study, speed-up from 1 to 2 workers, and the per-run overhead of a study.

Run with ``PYTHONPATH=$PWD .venv/bin/python benchmarks/study.py [--runs 200] [--n 20000] [--repeats 3]``.
The study is ``--runs`` replicates of the demo audit (examples/demo.yaml: the
municipal RPA rule set against the law's baseline, every check suite) at
``--n`` cases, with the HTML report off inside runs (runs write no run
folder at all; a study keeps each run's metric table). It prints three figures:

1. wall time of the study on local processes, with 1 and with 2 workers:
   ``--repeats`` studies each, interleaved (1, 2, 2, 1, 1, 2, ...) so that the
   machine's load hits both alike; the medians. When ``--runs`` is below 200
   it also states the wall time that the medians extrapolate to for 200 runs
   (per-run time x 200; labelled as an extrapolation);
2. the speed-up from 1 to 2 workers: the ratio of the two medians;
3. the per-run overhead of a study over a bare ``Audit.run(write=False)``:
   rounds of ``--overhead-runs`` bare runs and a study of the same audits with
   the same seeds on the in-process executor (run table, atomic Parquet
   write, and the study's share of study.parquet, power.csv and study.html),
   interleaved, with the medians of the per-run times. Goal: at most 10 %.
   The study's time is also split into its runs (from the first progress
   call to the last) and a fixed cost per study (planning, and writing
   study.parquet, power.csv and study.html), which a 200-run study spreads
   over 200 runs; ``--skip-workers`` measures only this figure. Last, the
   same comparison paired run by run (``--overhead-pairs``: a bare run, then
   the same audit as a study's task with its run table and atomic write),
   which the machine's changing load affects least.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from audit.audit import Audit
from audit.study import StudyFolder, StudySpec, derive_seed, plan_study, run_study, run_task

ROOT = Path(__file__).resolve().parents[1]


def _study(runs: int, n: int, seed: int) -> StudySpec:
    audit = yaml.safe_load((ROOT / "examples/demo.yaml").read_text(encoding="utf-8"))
    audit["population"]["n"] = n
    audit["report"] = {"formats": ["json"]}
    return StudySpec.from_dict({"name": "bench", "seed": seed, "replicates": runs, "audit": audit},
                               base_dir=ROOT / "examples", source="benchmarks/study.py")


def _timed_study(spec: StudySpec, executor: str, workers: int) -> float:
    return _timed_phases(spec, executor, workers)[0]


def _timed_phases(spec: StudySpec, executor: str, workers: int) -> tuple[float, float]:
    """(wall time, time of the runs): the runs start at the first progress call (after the study is planned and
    every point checked) and end at the last run's; the rest (planning; study.parquet, power.csv, study.html) is a
    fixed cost per study."""
    marks: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = run_study(spec, out=Path(tmp) / "s", executor=executor, workers=workers,
                           progress=lambda done, total, key, failed: marks.append(time.perf_counter()))
        wall = time.perf_counter() - start
    assert result.exit_code == 0, result.failures
    return wall, (marks[-1] - marks[0]) if len(marks) > 1 else wall


def main() -> None:
    """Print the figures (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3, help="studies per worker count (interleaved; median)")
    parser.add_argument("--overhead-rounds", type=int, default=3)
    parser.add_argument("--overhead-runs", type=int, default=5, help="runs per round (bare and in a study)")
    parser.add_argument("--skip-workers", action="store_true", help="measure only the per-run overhead (3.)")
    parser.add_argument("--overhead-pairs", type=int, default=6, help="bare runs and study tasks, alternating")
    args = parser.parse_args()

    spec = _study(args.runs, args.n, seed=1)
    walls: dict[int, list[float]] = {1: [], 2: []}
    for r in range(args.repeats if not args.skip_workers else 0):  # interleaved: 1, 2, then 2, 1, ...
        for w in ((1, 2) if r % 2 == 0 else (2, 1)):
            walls[w].append(_timed_study(spec, "processes", w))
            print(f"  repeat {r + 1}: {w} worker(s) {walls[w][-1]:.1f} s", flush=True)
    if walls[1]:
        one, two = statistics.median(walls[1]), statistics.median(walls[2])
        print(f"1. wall time, study of {args.runs} runs x {args.n:,} cases (median of {args.repeats}, "
              f"interleaved): 1 worker {one:.1f} s ({one / args.runs:.2f} s/run), "
              f"2 workers {two:.1f} s ({two / args.runs:.2f} s/run)")
        if args.runs != 200:
            print(f"   extrapolated to 200 runs (per-run time x 200, not measured): "
                  f"1 worker {one / args.runs * 200:.0f} s, 2 workers {two / args.runs * 200:.0f} s")
        print(f"2. speed-up from 1 to 2 workers: {one / two:.2f}x")

    base = Audit.from_yaml(ROOT / "examples/demo.yaml")
    base = base.with_options(population={**base.to_dict()["population"], "n": args.n},
                             report={"formats": ["json"]})
    Audit.run(base, write=False)  # warm caches (imports, population spec, rule set)
    bare, study, runs_only, finish = [], [], [], []
    k = args.overhead_runs
    for i in range(args.overhead_rounds):  # interleaved rounds: k bare runs, then a k-run study with the same seeds
        start = time.perf_counter()
        for r in range(k):
            base.with_options(seed=derive_seed(100 + i, 0, r)).run(write=False)
        bare.append((time.perf_counter() - start) / k)
        wall, in_runs = _timed_phases(_study(k, args.n, seed=100 + i), "inprocess", 1)
        study.append(wall / k)
        runs_only.append(in_runs / k)
        finish.append(wall - in_runs)
    # run by run: a bare run, then the same audit as a study's task (its run table and atomic Parquet write)
    pair_bare, pair_task = [], []
    _, tasks, _ = plan_study(_study(args.overhead_pairs, args.n, seed=200))
    with tempfile.TemporaryDirectory() as tmp:
        folder = StudyFolder(Path(tmp))
        folder.runs.mkdir(parents=True)
        for t in tasks:
            start = time.perf_counter()
            base.with_options(seed=t.seed).run(write=False)
            mid = time.perf_counter()
            folder.write_run(t.key, run_task(t))
            pair_bare.append(mid - start)
            pair_task.append(time.perf_counter() - mid)
    pb, pt = statistics.median(pair_bare), statistics.median(pair_task)
    b, s = statistics.median(bare), statistics.median(study)
    r_, f_ = statistics.median(runs_only), statistics.median(finish)
    print(f"3. per run: bare Audit.run {b:.2f} s, in a study {s:.2f} s (median of {args.overhead_rounds} interleaved "
          f"rounds of {k}); overhead {100 * (s - b) / b:+.1f} % at {k} runs per study (goal <= 10 %)")
    print(f"   of which: each run in the study {r_:.2f} s ({100 * (r_ - b) / b:+.1f} % over bare), and a fixed finish "
          f"of {f_:.2f} s per study (planning; study.parquet, power.csv, study.html); for {args.runs} runs: "
          f"{100 * (r_ + f_ / args.runs - b) / b:+.1f} % per run")
    print(f"   paired run by run ({len(tasks)} pairs, medians): bare {pb:.2f} s, the study's task (run, run table, "
          f"atomic write) {pt:.2f} s: {100 * (pt - pb) / pb:+.1f} %; with the fixed cost over {args.runs} runs: "
          f"{100 * (pt + f_ / args.runs - pb) / pb:+.1f} % per run")


if __name__ == "__main__":
    main()
