"""Benchmark: attribution of 100,000 cases over 5 stages against one engine pass.

Goal (issue 22, point 7): attributing a disparity among 5 data stages and
the rules takes at most 10 times one engine pass. Enumerating the 2**5 = 32
coalitions naively would be 32 passes; Insyn replays, per coalition, only
the cases whose input differs from a coalition already decided (a case
that no stage changed keeps its cached decision), and the rules engine
evaluates each replay vectorised. The bootstrap reuses the cached
decisions of every coalition (no engine call per draw).

Setup: 100,000 synthetic applications (``datasets/sweden/population-2026.yaml``,
seed 7) with five bias knobs on (paper applicants under-report income; SSBTEK
reads fail and Försäkringskassan/unemployment-fund reads lag for recent
arrivals; caseworkers misjudge work capacity and plan-following), the
municipal RPA rule set (``examples/engines/municipal-rpa.yaml``), and the stages
``applicant``, ``registry:ssbtek``, ``registry:forsakringskassan``,
``registry:akassa`` and ``caseworker``. Timed, alternately, ``--repeat`` times:

* one engine pass: :func:`audit.engine.run_engine` on every case;
* the attribution: :func:`audit.attribution.attribute` (changed cells,
  replays, exact Shapley values, ``--bootstrap`` draws).

The medians and their ratio are printed; population drawing is not timed.

Run::

    .venv/bin/python benchmarks/attribution.py               # 100,000 cases, 3 rounds
    .venv/bin/python benchmarks/attribution.py --n 20000 --repeat 5

Figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit.attribution import attribute  # noqa: E402
from audit.engine import build_engine, run_engine  # noqa: E402
from audit.population import load_population  # noqa: E402
from audit.spec import AuditSpec  # noqa: E402

STAGES = ["applicant", "registry:ssbtek", "registry:forsakringskassan", "registry:akassa", "caseworker"]
BIAS = {"under_reported_income_paper": 0.3, "registry_failure_recent_arrivals": 0.3,
        "registry_lag_recent_arrivals": 0.5, "able_to_work_born_outside_eu": 0.3, "follows_plan_young_men": 0.2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bootstrap", type=int, default=2000)
    args = parser.parse_args()
    spec = AuditSpec.from_dict({
        "name": "bench-attribution", "seed": 7,
        "population": {"synthetic": "datasets/sweden/population-2026.yaml", "n": args.n, "bias": BIAS},
        "sensitive_features": ["birth_region", "sex"], "reference_groups": {"birth_region": "sweden"},
        "engine": {"kind": "rules", "path": "examples/engines/municipal-rpa.yaml"},
        "attribution": {"attribute": "birth_region", "group": "outside_eu", "stages": STAGES,
                        "bootstrap": args.bootstrap},
    }, base_dir=ROOT)
    pop = load_population(spec)
    engine = build_engine(spec.engine, base_dir=ROOT)
    features = ["case_id", *[c for c in pop.frame.columns if c not in ("case_id", "birth_region", "sex")]]
    cases = pop.frame[features]
    labels = spec.outcomes.labels
    decisions = run_engine(engine, cases, labels=labels).decisions  # warm-up, and the run's decisions
    one, att = [], []
    result = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        run_engine(engine, cases, labels=labels)
        one.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = attribute(spec, engine=engine, engine_input=cases, decisions=decisions, cases=pop.frame,
                           circumstances=pop.circumstances, provenance=pop.provenance)
        att.append(time.perf_counter() - t0)
    assert result is not None
    pass_s, att_s = statistics.median(one), statistics.median(att)
    info = result.info
    changed = int(result.replays.changed.any(axis=1).sum())
    print(f"cases: {args.n:,}; stages: {', '.join(STAGES)}; coalitions: {2 ** len(STAGES)}; "
          f"bootstrap draws: {args.bootstrap}; rounds: {args.repeat} (interleaved, medians)")
    print(f"cases changed by some stage: {changed:,}; engine calls: {info['engine_passes']}; "
          f"cases replayed: {info['rows_replayed']:,} ({info['rows_replayed'] / args.n:.2f} passes' worth)")
    print(f"one engine pass:  {pass_s:8.3f} s")
    print(f"attribution:      {att_s:8.3f} s")
    print(f"ratio:            {att_s / pass_s:8.2f} x one engine pass (goal: <= 10)")
    for row in result.rows:
        print(f"  {row['stage']:<28} {row['contribution']: .4f}  [{row['ci_low']: .4f}, {row['ci_high']: .4f}]")
    print(f"  {'total':<28} {result.rows[0]['total']: .4f}")


if __name__ == "__main__":
    main()
