"""How an audit scales with the number of cases: in memory against chunked, beside a numpy floor.

For each size (default 100k, 1M, 3M, 10M cases of the demo audit: synthetic
population, rules engine, law's baseline, every check on) and each mode, one
fresh Python process runs the audit; the parent measures its wall time, CPU
time (user + system, including worker processes it waited for) and peak RSS
(``os.wait4``; for the chunked modes the largest worker's peak RSS is
reported too). Runs are interleaved (rep 1 of every size and mode, then rep
2, ...) and the table shows medians, per-step times of the median run, and
the log-log exponent of wall time against n (1.0 = linear).

Modes
    ``memory``   ``Audit.run`` (the in-memory path, writing its run folder);
    ``chunked``  ``audit.chunked.run_chunked_audit`` on the in-process executor;
    ``chunked2`` the same on the local-processes executor with 2 workers;
    ``cli``      ``insyn run SPEC --quiet`` as a user types it: ``execution.mode``
                 ``auto`` runs more than 500,000 cases in chunks of 250,000 on
                 one worker process per core, fewer in memory;
    ``floor``    one numpy pass over as many float64 columns as the case frame
                 has (generate them, then sum each): no run can be faster.

Beside them, ``insyn run examples/demo.yaml`` (20,000 cases, every check,
the HTML, Markdown and JSON reports) end to end, ``--demo-reps`` times. The
in-memory path is not run above ``--memory-max`` cases (it holds about 2.5
GB per million cases; 10 million would not fit this machine's memory).

Usage::

    python benchmarks/scale.py                        # 100k 1M 3M 10M, 3 reps
    python benchmarks/scale.py --sizes 100000 1000000 --reps 3 --modes memory chunked chunked2 floor
    python benchmarks/scale.py --chunk-size 250000
    python benchmarks/scale.py --sizes 3000000 10000000 --reps 1 --demo-reps 0
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ("memory", "chunked", "chunked2", "cli", "floor")


def spec_for(n: int, tmp: Path) -> Path:
    """The demo spec with ``population.n = n``, written next to a copy that resolves paths from the repo."""
    import yaml

    d = yaml.safe_load((ROOT / "examples" / "demo.yaml").read_text())
    d["population"]["n"] = n
    d["population"]["synthetic"] = str((ROOT / "examples" / d["population"]["synthetic"]).resolve())
    d["engine"]["path"] = str((ROOT / "examples" / d["engine"]["path"]).resolve())
    for cfg in d["checks"].values():
        cfg["suites"] = [str((ROOT / "examples" / s).resolve()) for s in cfg["suites"]]
    # the review model (engines.caseworker_model) is found next to the spec: copied afresh, never a stale copy
    shutil.copytree(ROOT / "examples" / "engines", tmp / "engines", dirs_exist_ok=True)
    path = tmp / f"scale-{n}.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def one(mode: str, n: int, chunk_size: int, tmp: Path) -> dict:
    """Run one mode at one size in this process; return step times."""
    t0 = time.perf_counter()
    if mode == "floor":
        import numpy as np

        rng = np.random.default_rng(0)
        total = 0.0
        for _ in range(44):  # the case frame's columns
            total += float(rng.random(n).sum())
        return {"steps": {"numpy": time.perf_counter() - t0}, "checksum": total}
    from audit.audit import load_spec
    from audit.chunked import run_chunked_audit

    spec = load_spec(spec_for(n, tmp))
    if mode == "memory":
        result = spec.run(out=tmp / "reports")
        steps = dict(result.to_dict()["journey"].get("timings", {}))
        return {"steps": steps, "metrics": len(result.metrics)}
    run, _folder = run_chunked_audit(spec, out=tmp / "reports", chunk_size=chunk_size,
                                     executor="inprocess" if mode == "chunked" else "processes",
                                     workers=None if mode == "chunked" else 2)
    return {"steps": run.timings, "metrics": len(run.metrics), "worker_peak_rss_mb": run.peak_rss_mb}


def measure_demo(tmp: Path) -> dict:
    """``insyn run examples/demo.yaml`` (20,000 cases, every check, HTML/Markdown/JSON reports) in a fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "audit.cli", "run", str(ROOT / "examples" / "demo.yaml"),
                             "--out", str(tmp / "demo"), "--quiet"], stdout=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) not in (0, 1):  # 1: the demo's findings fail thresholds, as designed
        raise SystemExit(f"insyn run examples/demo.yaml failed (status {status})")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def measure_cli(n: int, tmp: Path) -> dict:
    """``insyn run SPEC --quiet`` on the demo spec at ``n`` cases (the mode ``insyn run`` chooses by itself)."""
    spec = spec_for(n, tmp)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "audit.cli", "run", str(spec), "--out", str(tmp / "cli"),
                             "--quiet"], stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"insyn run at n={n} failed (status {status})")
    return {"steps": {}, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def measure(mode: str, n: int, chunk_size: int, tmp: Path) -> dict:
    """Run ``one`` in a fresh process; add wall, CPU and peak RSS."""
    if mode == "cli":
        return measure_cli(n, tmp)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--one", mode, str(n), "--chunk-size", str(chunk_size),
                             "--tmp", str(tmp)], stdout=subprocess.PIPE, env={**os.environ,
                                                                             "PYTHONPATH": str(ROOT)})
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{mode} at n={n} failed (status {status})")
    info = json.loads(out.decode().strip().splitlines()[-1])
    info.update(wall=wall, cpu=usage.ru_utime + usage.ru_stime, peak_rss_mb=usage.ru_maxrss / 1024)
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 3_000_000, 10_000_000])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--chunk-size", type=int, default=250_000)
    ap.add_argument("--one", nargs=2, metavar=("MODE", "N"))
    ap.add_argument("--tmp")
    ap.add_argument("--memory-max", type=int, default=3_000_000,
                    help="largest n run in memory (about 2.5 GB per million cases; default 3,000,000)")
    ap.add_argument("--demo-reps", type=int, default=5, help="runs of `insyn run examples/demo.yaml` (0: none)")
    args = ap.parse_args()
    if args.one:
        info = one(args.one[0], int(args.one[1]), args.chunk_size, Path(args.tmp))
        print(json.dumps(info, default=float))
        return
    runs: dict[tuple[str, int], list[dict]] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        demo = []
        for rep in range(max(args.reps, args.demo_reps)):
            if rep < args.demo_reps:
                demo.append(measure_demo(tmp))
                print(f"# rep {rep + 1} demo: {demo[-1]['wall']:.2f} s wall", file=sys.stderr, flush=True)
            if rep >= args.reps:
                continue
            for n in args.sizes:
                for mode in args.modes:
                    if mode == "memory" and n > args.memory_max:
                        continue
                    info = measure(mode, n, args.chunk_size, tmp)
                    runs.setdefault((mode, n), []).append(info)
                    print(f"# rep {rep + 1} {mode:8s} n={n:>10,}: {info['wall']:.1f} s wall, "
                          f"{info['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    print(f"# {os.cpu_count()} cores; load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
          f"chunk size {args.chunk_size:,}; {args.reps} rep(s), medians")
    print(f"| mode | n | wall s (median) | CPU s | CPU/wall | peak RSS MB | worker peak MB | top steps (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    if demo:
        wall, cpu = statistics.median(r["wall"] for r in demo), statistics.median(r["cpu"] for r in demo)
        print(f"| demo (`insyn run examples/demo.yaml`) | 20,000 | {wall:.2f} | {cpu:.2f} | {cpu / wall:.2f} | "
              f"{statistics.median(r['peak_rss_mb'] for r in demo):.0f} | | runs: "
              + ", ".join(f"{r['wall']:.2f}" for r in demo) + " |")
    for mode in args.modes:
        sizes = [n for n in args.sizes if (mode, n) in runs]
        for n in args.sizes:
            if (mode, n) not in runs:
                print(f"| {mode} | {n:,} | not run | | | | | in memory it needs about {2.5 * n / 1e6:.1f} GB; "
                      "that is what chunks are for |")
                continue
            rs = sorted(runs[(mode, n)], key=lambda r: r["wall"])
            med = rs[len(rs) // 2]
            wall = statistics.median(r["wall"] for r in rs)
            cpu = statistics.median(r["cpu"] for r in rs)
            rss = statistics.median(r["peak_rss_mb"] for r in rs)
            steps = sorted(((k, v) for k, v in med["steps"].items() if k != "wall"), key=lambda kv: -kv[1])[:4]
            worker = med.get("worker_peak_rss_mb")
            print(f"| {mode} | {n:,} | {wall:.2f} | {cpu:.2f} | {cpu / wall:.2f} | {rss:.0f} | "
                  f"{'' if worker is None else f'{worker:.0f}'} | "
                  + ", ".join(f"{k} {v:.2f}" for k, v in steps) + " |")
        if len(sizes) > 1:
            xs = [math.log(n) for n in sizes]
            ys = [math.log(statistics.median(r["wall"] for r in runs[(mode, n)])) for n in sizes]
            mx, my = statistics.fmean(xs), statistics.fmean(ys)
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
            print(f"| {mode} | log-log exponent | {slope:.2f} | | | | | |")


if __name__ == "__main__":
    main()
