"""Benchmark: what recording the data journey adds to a run of 1,000,000 cases.

Goal (issue 8): recording journeys for 1,000,000 cases adds under 20 % to a
run.

The run is six steps of plain, vectorised pandas work on an assistance case
frame shaped like DESIGN.md's (39 columns): ``source`` (read the population
from Parquet), ``intake`` (quarantine cases with impossible values),
``engine_input`` (withhold the sensitive columns), ``decision`` (a rule engine:
household norm plus costs minus income, routing of new applications and
household changes to a caseworker), ``review`` (recorded caseworker decisions
for referred cases, some overriding) and ``final`` (the decision frame,
written to ``decisions.parquet``). The same run is timed without and with a
:class:`audit.journey.Journey` that records every step (``account``,
``frames``, ``checks``, ``record_overrides``) and writes ``journey.parquet``
and ``lineage.jsonl``. Runs alternate (plain, journey, plain, ...) and the
best of ``--repeat`` is reported for each, to damp the noise of a shared
machine.

Run::

    .venv/bin/python benchmarks/journey.py            # 1,000,000 cases
    .venv/bin/python benchmarks/journey.py --n 200000 --repeat 3
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit import Audit, runner  # noqa: E402
from audit.journey import Journey  # noqa: E402

INCOME = ["income_wages", "income_sickness", "income_unemployment", "income_parental", "income_pension",
          "income_housing_allowance", "income_child_allowance", "income_maintenance", "income_student", "income_other"]
COSTS = ["rent", "electricity", "home_insurance", "work_travel", "union_fee", "akassa_fee", "medical", "childcare"]
SENSITIVE = ["sex", "birth_region"]


def make_population(n: int, seed: int = 0) -> pd.DataFrame:
    """A synthetic case frame with the columns of DESIGN.md (not a realistic population)."""
    rng = np.random.default_rng(seed)

    def pick(values: list[str], p: list[float] | None = None) -> pd.Series:
        return pd.Series(np.asarray(values, dtype=object)[rng.choice(len(values), n, p=p)], dtype="str")

    frame = pd.DataFrame(
        {
            "case_id": "c" + pd.Series(np.arange(n)).astype("str").str.zfill(7),
            "benefit_month": pick(["2026-01", "2026-02", "2026-03"]),
            "municipality_code": pick(["1287", "1280", "0180", "1480"]),
            "application_type": pick(["new", "renewal"], [0.15, 0.85]),
            "channel": pick(["digital", "paper"], [0.8, 0.2]),
            "applicant_age": rng.integers(18, 80, n),
            "sex": pick(["female", "male"]),
            "birth_region": pick(["sweden", "nordic", "eu", "outside_eu"], [0.6, 0.05, 0.1, 0.25]),
            "years_in_sweden": rng.integers(0, 60, n),
            "interpreter": rng.random(n) < 0.1,
            "adults": rng.integers(1, 3, n),
            "other_adults": rng.integers(0, 2, n),
            "child_ages": pick(["", "4", "4;9", "1;3;12"], [0.5, 0.2, 0.2, 0.1]),
            "children_preschool_lunch": rng.integers(0, 2, n),
            **{c: np.round(rng.exponential(800, n) * (rng.random(n) < 0.3), 0) for c in INCOME},
            "months_on_assistance": rng.integers(0, 40, n),
            **{c: np.round(rng.exponential(400, n), 0) for c in COSTS},
            "assets": np.round(rng.exponential(2000, n), 0),
            "able_to_work": rng.random(n) < 0.6,
            "registered_af": rng.random(n) < 0.5,
            "follows_plan": rng.random(n) < 0.8,
            "household_changed": rng.random(n) < 0.05,
            "registry_read_failed": rng.random(n) < 0.01,
        }
    )
    frame["rent"] = np.round(rng.normal(6500, 1500, n), 0)  # a few negative: the intake quarantines them
    frame["caseworker_outcome"] = pick(["grant", "partial", "deny"], [0.6, 0.2, 0.2])
    return frame


def _decide(cases: pd.DataFrame) -> pd.DataFrame:
    """A vectorised municipal rule engine (what the decision step does)."""
    n_children = cases["child_ages"].str.count(";").add(1).where(cases["child_ages"].str.len() > 0, 0)
    norm = np.where(cases["adults"] == 2, 7100.0, 3940.0) + 3500.0 * n_children + 1280.0
    costs = cases[["rent", "electricity", "home_insurance", "work_travel", "union_fee", "akassa_fee", "medical",
                   "childcare"]].sum(axis=1)
    income = cases[INCOME].sum(axis=1)
    need = norm + costs - income - cases["assets"].clip(upper=10_000)
    refer = (cases["application_type"] == "new") | cases["household_changed"] | (cases["channel"] == "paper")
    error = cases["registry_read_failed"].to_numpy() & (cases["applicant_age"].to_numpy() > 70)
    outcome = np.where(refer, "refer", np.where(need > 2000, "grant", np.where(need > 0, "partial", "deny")))
    outcome = np.where(error, "error", outcome)
    reasons = np.where(cases["application_type"] == "new", "NEW_APPLICATION",
                       np.where(cases["household_changed"], "HOUSEHOLD_CHANGE",
                                np.where(cases["channel"] == "paper", "PAPER_APPLICATION", "")))
    return pd.DataFrame(
        {
            "case_id": cases["case_id"],
            "outcome": pd.Series(outcome, dtype="str"),
            "amount": np.where(refer | error, np.nan, np.clip(need, 0, None)),
            "reasons": pd.Series(reasons, dtype="str"),
            "status": pd.Series(np.where(error, "error", "ok"), dtype="str"),
            "error_reason": pd.Series(np.where(error, "registry read failed for an applicant over 70", ""), dtype="str"),
        }
    )


def run(source: Path, out: Path, *, journey: Journey | None) -> dict[str, float]:
    """One run of the six steps; records the journey when one is given."""

    def step(name: str, **kw: object):  # noqa: ANN202
        return journey.step(name, **kw) if journey is not None else nullcontext(None)

    t: dict[str, float] = {}
    t0 = time.perf_counter()
    c0 = time.process_time()
    with step("source", actor="system", inputs=[str(source)], outputs=["cases"]) as st:
        cases = pd.read_parquet(source)
        if st:
            st.account(rows_in=len(cases), rows_out=len(cases))
            st.frames(None, cases)
    n = len(cases)
    with step("intake", actor="system", inputs=["cases"], outputs=["cases"]) as st:
        bad = (cases["rent"] < 0).to_numpy()
        live = cases.loc[~bad].reset_index(drop=True)
        if st:
            st.checks([{"assertion": "expect_column_values_to_be_between", "success": not bad.any(), "column": "rent",
                        "expected": ">= 0", "actual": f"{int(bad.sum())} below", "params": {"min_value": 0}}])
            st.account(rows_in=n, rows_out=len(live),
                       rejected=pd.Series("quarantined: rent < 0", index=cases.loc[bad, "case_id"]))
            st.frames(cases, live)
    features = [c for c in cases.columns if c not in (*SENSITIVE, "caseworker_outcome")]
    if journey is not None:
        journey.mark_engine_features([c for c in features if c != "case_id"])
    with step("engine_input", actor="system", inputs=["cases"], outputs=["engine_input"]) as st:
        engine_input = live[features]
        if st:
            st.account(rows_in=len(live), rows_out=len(engine_input))
            st.frames(live, engine_input)
    engine = {"name": "bench-rules", "version": "1", "definition_hash": "sha256:0"}
    with step("decision", actor="system", inputs=["engine_input"], outputs=["decisions"], engine=engine) as st:
        dec = _decide(engine_input)
        if st:
            err = dec["status"] == "error"
            st.account(rows_in=len(engine_input), rows_out=int((~err).sum()),
                       errored=pd.Series(dec.loc[err, "error_reason"].to_numpy(), index=dec.loc[err, "case_id"].to_numpy()))
            st.frames(engine_input, dec, status=dec["status"], reason=dec["error_reason"])
    with step("review", actor="caseworker", inputs=["decisions"], outputs=["final"]) as st:
        human = live["caseworker_outcome"]
        referred = (dec["outcome"] == "refer").to_numpy()
        final_outcome = dec["outcome"].where(~referred, human)
        if st:
            st.account(rows_in=len(dec), rows_out=len(dec))
            journey.record_overrides(
                pd.DataFrame({"case_id": dec.loc[referred, "case_id"], "outcome": dec.loc[referred, "outcome"],
                              "final_outcome": final_outcome[referred], "override": False,
                              "by": "recorded:caseworker_outcome", "why": dec.loc[referred, "reasons"]})
            )
    with step("final", actor="system", inputs=["decisions", "cases"], outputs=["final"]) as st:
        final = cases[["case_id", *SENSITIVE]].merge(
            dec.assign(final_outcome=final_outcome), on="case_id", how="left"
        )
        final["status"] = final["status"].fillna("quarantined")
        final["error_reason"] = final["error_reason"].where(final["status"] != "quarantined", "quarantined: rent < 0")
        final.to_parquet(out / "decisions.parquet", index=False)
        if st:
            q = final["status"] == "quarantined"
            e = final["status"] == "error"
            st.account(rows_in=n, rows_out=int((~q & ~e).sum()),
                       rejected=pd.Series(final.loc[q, "error_reason"].to_numpy(), index=final.loc[q, "case_id"].to_numpy()),
                       errored=pd.Series(final.loc[e, "error_reason"].to_numpy(), index=final.loc[e, "case_id"].to_numpy()))
            st.frames(None, final, status=final["status"], reason=final["error_reason"])
    t["steps"] = time.perf_counter() - t0
    if journey is not None:
        t1 = time.perf_counter()
        journey.write_cases(out / "journey.parquet")
        journey.write_lineage(out / "lineage.jsonl")
        t["write"] = time.perf_counter() - t1
    t["total"] = time.perf_counter() - t0
    t["cpu"] = time.process_time() - c0
    return t


class _NullStep:
    """A step recorder that records nothing (the run without a journey)."""

    def __enter__(self) -> _NullStep:
        return self

    def __exit__(self, *exc: object) -> bool:
        return False

    def __getattr__(self, name: str):  # noqa: ANN204 - account, frames, checks, note, derive, overrides
        return lambda *args, **kwargs: None


class _NullJourney:
    """Stands in for :class:`audit.journey.Journey` in ``insyn run`` to time the run without a journey."""

    steps: list = []  # noqa: RUF012

    def __init__(self, **kwargs: object) -> None:
        pass

    def step(self, *args: object, **kwargs: object) -> _NullStep:
        return _NullStep()

    def mark_engine_features(self, *args: object) -> None:
        return None

    def record_overrides(self, *args: object, **kwargs: object) -> None:
        return None

    def field_provenance(self) -> list:
        return []


def real_run(n: int, repeat: int) -> None:
    """Time ``insyn run`` of examples/demo.yaml on ``n`` cases with and without the journey.

    The runner's ``Journey`` is swapped for a stand-in that records nothing
    (``runner.Journey``: the name the runner builds its journey with).
    """
    root = Path(__file__).resolve().parents[1]
    spec = Audit.from_yaml(root / "examples" / "demo.yaml")
    def sized(cases: int) -> Audit:
        data = spec.to_dict()
        data["population"]["n"] = cases
        return Audit.from_dict(data, base_dir=spec.base_dir, source=spec.source)

    audit = sized(n)
    recorded: list[Journey] = []

    class _Kept(Journey):
        def __init__(self, **kwargs: object) -> None:
            super().__init__(**kwargs)  # type: ignore[arg-type]
            recorded.append(self)

    real = runner.Journey
    sized(2000).run(write=False)  # warm-up: one-time imports (great-expectations, openlineage)
    wall: dict[str, list[float]] = {"without": [], "with": []}
    cpu: dict[str, list[float]] = {"without": [], "with": []}
    write_wall: list[float] = []
    write_cpu: list[float] = []
    try:
        for _ in range(repeat):
            for kind, cls in (("without", _NullJourney), ("with", _Kept)):
                runner.Journey = cls  # type: ignore[misc]
                gc.collect()
                t0, c0 = time.perf_counter(), time.process_time()
                audit.run(write=False)
                wall[kind].append(time.perf_counter() - t0)
                cpu[kind].append(time.process_time() - c0)
            with tempfile.TemporaryDirectory() as tmp:
                t0, c0 = time.perf_counter(), time.process_time()
                recorded[-1].write(tmp)  # journey.parquet + lineage.jsonl, which write=False skips
                write_wall.append(time.perf_counter() - t0)
                write_cpu.append(time.process_time() - c0)
            recorded.clear()
    finally:
        runner.Journey = real
    print(f"insyn run of examples/demo.yaml on {n:,} cases (write=False, then the journey's two files; best of {repeat}):")
    worst = 0.0
    for label, runs, extra in (("wall", wall, write_wall), ("cpu", cpu, write_cpu)):
        without, with_ = min(runs["without"]), min(runs["with"]) + min(extra)
        added = (with_ - without) / without
        worst = max(worst, added)
        print(f"  {label}: without a journey {without:6.2f} s, with it {with_:6.2f} s "
              f"(run {min(runs['with']):.2f} + files {min(extra):.2f}); added {with_ - without:+.2f} s = {added:+.1%}"
              f"   [each without: {', '.join(f'{t:.2f}' for t in runs['without'])}; "
              f"with: {', '.join(f'{t:.2f}' for t in runs['with'])}]")
    print(f"  goal < 20 % added to a run: {'met' if worst < 0.20 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="cases (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind; the best is reported")
    parser.add_argument("--run-n", type=int, default=1_000_000,
                        help="cases for the full insyn run comparison (0 skips it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "population.parquet"
        make_population(args.n).to_parquet(source, index=False)
        Journey(run_id="warm-up", audit_name="bench").lineage_events()  # one-time work (openlineage) not timed
        plain: list[dict[str, float]] = []
        recorded: list[dict[str, float]] = []
        journeys: list[Journey] = []
        for i in range(args.repeat):
            gc.collect()
            plain.append(run(source, folder, journey=None))
            gc.collect()
            j = Journey(run_id=f"bench-{i}", audit_name="bench")
            recorded.append(run(source, folder, journey=j))
            journeys.append(j)
        best_plain = min(r["total"] for r in plain)
        best_plain_cpu = min(r["cpu"] for r in plain)
        best = min(recorded, key=lambda r: r["total"])
        best_cpu = min(r["cpu"] for r in recorded)
        j = journeys[recorded.index(best)]
        rows = j.cases_table().num_rows
        size = (folder / "journey.parquet").stat().st_size / 1e6
        print(f"cases: {args.n:,}; steps: 6; journey rows: {rows:,}; journey.parquet: {size:.1f} MB; "
              f"lineage events: {len(j.lineage_events())}")
        print(f"plain run, best of {args.repeat}:       wall {best_plain:6.2f} s  cpu {best_plain_cpu:6.2f} s   "
              "(wall of each: " + ", ".join(f"{r['total']:.2f}" for r in plain) + ")")
        print(f"journey recorded, best of {args.repeat}: wall {best['total']:6.2f} s  cpu {best_cpu:6.2f} s   "
              "(wall of each: " + ", ".join(f"{r['total']:.2f}" for r in recorded) + ")")
        print(f"  of which writing journey.parquet and lineage.jsonl: {best['write']:.2f} s")
        for s in j.steps:
            print(f"  step {s['name']:<13} {s['duration_s']:6.2f} s  rows in {s['rows_in']:>9,}  out {s['rows_out']:>9,}"
                  f"  rejected {s['rows_rejected']:>6,}  errored {s['rows_errored']:>6,}")
        added = (best["total"] - best_plain) / best_plain
        added_cpu = (best_cpu - best_plain_cpu) / best_plain_cpu
        print(f"added by the journey: wall {best['total'] - best_plain:+.2f} s = {added:+.1%}, "
              f"cpu {best_cpu - best_plain_cpu:+.2f} s = {added_cpu:+.1%} of the plain run "
              f"(goal < 20 %: {'met' if max(added, added_cpu) < 0.20 else 'NOT met'})")
    if args.run_n:
        print()
        try:
            real_run(args.run_n, args.repeat)
        except Exception as exc:  # noqa: BLE001 - report, do not hide, a failing run
            print(f"insyn run comparison skipped: the run failed with {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
