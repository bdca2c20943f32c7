"""Monitoring: the operating characteristics behind the monitor's defaults (issue 21).

Run with ``.venv/bin/python benchmarks/monitor_oc.py`` (about an hour on two
cores; ``--quick`` for a rough look in a few minutes). It prints

1. a comparison of candidate settings (``arl`` and ``k``): for a group of
   1,000 cases a month with a referral rate of 0.30 among the 32 streams of
   ``examples/monitor.yaml``, the share of simulated series with an alert
   within 1, 2 and 3 months of a +5 or +10 percentage-point step or
   three-month ramp after a year of history, and the months between false
   alarms of the whole monitor without a change, for binomial noise and for
   rates that wander from month to month (a month effect with standard
   deviation 0.07 on the log-odds: an overdispersion factor of about 2 for
   the group, up to 6 for the largest streams);
2. the README's table for the chosen defaults (``arl`` 200, ``k`` 1.0),
   for a referral rate of 0.30 and a refusal rate of 0.10, with binomial
   noise and with wandering rates.

Every figure comes from :func:`audit.monitor.operating_characteristics`,
which runs the monitor's own statistics (``tests/test_monitor_oc.py``
checks them against ``run_monitor`` period by period, and re-simulates a
smaller version of the README's claims).

The goal of issue 21: +10 pp detected within 3 months in at least 90 % of
simulated series, with at least 100 months between false alarms. Figures of
one run (2 cores, 2026-12) are in the README's "Monitoring" section.
"""

from __future__ import annotations

import argparse
import time

from audit.monitor import DEFAULT_ARL, operating_characteristics
from audit.spec import MonitorSpec

CANDIDATES = ((100, 1.0), (200, 0.5), (200, 1.0), (200, 1.5), (300, 1.0), (1000, 0.5))
"""(arl, k) pairs compared; (1000, 0.5) were the defaults before issue 21."""
WANDER = 0.07
"""Month-to-month wander of the rates (standard deviation of a month effect on the log-odds)."""


def _line(oc: object, label: str) -> str:
    d = oc.detection  # type: ignore[attr-defined]
    fa = oc.false_alarms  # type: ignore[attr-defined]
    cells = " | ".join(f"{r.shape} {r.shift * 100:+.0f}pp: {r.within_1:.2f} {r.within_2:.2f} {r.within_3:.2f}"
                       for r in d.itertuples())
    return (f"{label}: {cells} | months between false alarms {fa['months_between']:.0f} "
            f"({fa['low']:.0f}-{fa['high']:.0f}; {fa['alarm_months']:.0f} alarms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small simulations (rough figures, a few minutes)")
    args = parser.parse_args()
    reps, null_reps = (200, 60) if args.quick else (500, 200)
    final_reps, final_null = (400, 100) if args.quick else (2000, 500)
    defaults = MonitorSpec()
    print(f"1. candidate settings (referral rate 0.30, {reps} series per cell; {null_reps} monitors x 120 months "
          "without change)")
    for wander in (0.0, WANDER):
        for arl, k in CANDIDATES:
            t0 = time.perf_counter()
            oc = operating_characteristics(rates=(0.30,), replicates=reps, null_replicates=null_reps,
                                           null_months=120, arl=arl, k=k, wander=wander, seed=7)
            print(_line(oc, f"  wander {wander:.2f}, arl {arl:>4}, k {k:.1f}") +
                  f"  [{time.perf_counter() - t0:.0f} s]", flush=True)
    print(f"\n2. the defaults (arl {defaults.arl:g}, k {defaults.k:g}; DEFAULT_ARL = {DEFAULT_ARL:g}), "
          f"{final_reps} series per cell, {final_null} monitors x 120 months without change")
    for wander, title in ((0.0, "binomial noise"), (WANDER, f"rates wandering from month to month ({WANDER})")):
        t0 = time.perf_counter()
        oc = operating_characteristics(replicates=final_reps, null_replicates=final_null, null_months=120,
                                       arl=defaults.arl, k=defaults.k, wander=wander, seed=2026)
        print(f"\n{title} [{time.perf_counter() - t0:.0f} s]\n")
        print(oc.to_markdown(), flush=True)


if __name__ == "__main__":
    main()
