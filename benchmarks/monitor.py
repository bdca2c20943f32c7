"""Monitoring: false alarms in control, time to detection, and the cost of the history.

Run with ``.venv/bin/python benchmarks/monitor.py``. It prints

1. the false-alarm rate of the monitor's change and CUSUM alerts on simulated
   in-control series (32 rate streams a period, trailing baseline of 6
   periods), next to the design rate ``1 / arl`` per period, for binomial
   data and for data whose true rates wander from month to month
   (overdispersion, which the ``phi`` factor absorbs);
2. the number of periods from a step change to the first alert, against the
   CUSUM's out-of-control ARL from :func:`audit.monitor.cusum_arl`;
3. the time to choose the limits and to read a history of many runs.

The streams are scored with the monitor's own functions (``score_streams``, the
limits and the CUSUM step), so the figures describe the code that runs. It
takes about eight minutes on two cores. Figures of one run (2 cores, 2026-11)
are quoted in the docstring of :mod:`audit.monitor`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from audit.monitor import cusum_arl, cusum_limit, load_history
from audit.monitor._history import conform, latest_runs, write_history
from audit.monitor._monitor import DISPERSION_PERIODS, rows_since, score_streams
from audit.monitor._sequential import change_limit, cusum_statistics

SIZES = np.array([5000, 3550, 1000, 450, 2300, 200, 400, 2100])
"""Group sizes of the example (all cases, family size, birth region), cases per period."""
RATES = np.array([0.48, 0.52, 0.45, 0.29, 0.55, 0.4, 0.45, 0.40, 0.70, 0.30, 0.85, 0.10])
"""Rates of the streams (cycled over 4 metrics x 8 groups)."""
PERIODS, WINDOW = 6, 6


def _streams() -> pd.DataFrame:
    rows = []
    for mi in range(4):
        for gi, n in enumerate(SIZES):
            rows.append({"metric": f"rate{mi}", "attributes": "g", "group": str(gi), "n": float(n),
                         "p": RATES[(mi * 8 + gi) % len(RATES)]})
    return pd.DataFrame(rows)


def _period_rows(streams: pd.DataFrame, p: np.ndarray, period: str, rng: np.random.Generator) -> pd.DataFrame:
    count = rng.binomial(streams["n"].to_numpy().astype(np.int64), p).astype("float64")
    value = count / streams["n"].to_numpy()
    return conform(streams.drop(columns="p").assign(count=count, value=value, period=period, suppressed=False,
                                                     se=np.sqrt(value * (1 - value) / streams["n"].to_numpy())))


def simulate(*, periods: int, arl: float, rng: np.random.Generator, wander: float = 0.0,
             shift_at: int | None = None, shift_se: float = 0.0) -> list[tuple[int, str]]:
    """One series, scored as run_monitor scores it; returns (period index, kind) of every alert.

    The change check compares a period with the trailing ``WINDOW`` periods; the CUSUM's reference is every
    earlier period (at most ``DISPERSION_PERIODS``) since the stream's last sequential alert. Stream 0 gets a step
    of ``shift_se`` standard errors from period ``shift_at`` on, if given.
    """
    streams = _streams()
    keys = (streams["metric"] + "\x1f" + streams["attributes"] + "\x1f" + streams["group"]).to_numpy()
    history: list[pd.DataFrame] = []
    up = np.zeros(len(streams))
    lo = np.zeros(len(streams))
    since = pd.Series("", index=keys, dtype=object)
    alerts = []
    for t in range(periods):
        p = streams["p"].to_numpy().copy()
        if wander:
            p = np.clip(p + rng.normal(0, wander, len(p)), 0.01, 0.99)
        if shift_at is not None and t >= shift_at:
            p[0] = p[0] + shift_se * np.sqrt(p[0] * (1 - p[0]) / streams["n"].iloc[0])
        period = f"p{t:04d}"
        cur = _period_rows(streams, p, period, rng)
        recent = pd.concat(history[-DISPERSION_PERIODS:]) if history else cur.iloc[0:0]
        trailing = pd.concat(history[-WINDOW:]) if history else cur.iloc[0:0]
        reference = rows_since(recent, since)
        ref = score_streams(cur, reference, reference, min_periods=3)
        base = score_streams(cur, trailing, recent, min_periods=3)
        m = int((np.isfinite(ref.z) | np.isfinite(base.z)).sum())
        if m:
            c, h = change_limit(1 / (2 * m * arl)), cusum_limit(4 * m * arl)
            u, d = cusum_statistics(up, lo, ref.z, k=0.5)
            change = np.isfinite(base.z) & (np.abs(base.z) > c)
            signal = (u > h) | (d > h)
            alerts += [(t, "change")] * int(change.sum()) + [(t, "sequential")] * int(signal.sum())
            up, lo = np.where(u > h, 0.0, u), np.where(d > h, 0.0, d)
            since[signal] = period
        history.append(cur)
    return alerts


def main() -> None:
    rng = np.random.default_rng(2026)
    print("1. In-control false alarms (32 streams, trailing 6 periods, scored from period 4)")
    print("   arl   data            looks  alarms  per look   design 1/arl")
    for arl, wander in ((50.0, 0.0), (50.0, 0.01), (1000.0, 0.0), (1000.0, 0.01)):
        series, periods = 25, 60
        t0 = time.perf_counter()
        alarms = looks = 0
        for _ in range(series):
            found = simulate(periods=periods, arl=arl, rng=rng, wander=wander)
            alarms += len({t for t, _ in found})  # periods with at least one alert
            looks += periods - 3
        kind = "binomial" if not wander else f"wandering {wander}"
        print(f"   {arl:6.0f} {kind:15s} {looks:6d} {alarms:6d}   {alarms / looks:.4f}    {1 / arl:.4f}"
              f"   ({time.perf_counter() - t0:.1f} s)")

    print("\n2. Periods from a step change (in standard errors of one period) to the first alert, arl = 1000")
    h32 = cusum_limit(4 * 32 * 1000)
    print(f"   limits for 32 streams: c = {change_limit(1 / (2 * 32 * 1000)):.2f}, h = {h32:.2f}")
    print("   shift  mean delay (20 series)  CUSUM ARL at this shift")
    for shift in (2.0, 3.0, 5.0, 8.0):
        delays = []
        for _ in range(20):
            found = simulate(periods=36, arl=1000.0, rng=rng, shift_at=12, shift_se=shift)
            after = [t for t, _ in found if t >= 12]
            delays.append(min(after) - 12 + 1 if after else np.nan)
        print(f"   {shift:5.1f}  {np.nanmean(delays):6.2f} (missed {int(np.isnan(delays).sum())})"
              f"            {cusum_arl(h32, k=0.5, shift=shift / np.sqrt(1 + 1 / 12)):6.2f}")

    print("\n3. Cost")
    for m in (8, 32, 128):
        t0 = time.perf_counter()
        cusum_limit(4 * m * 1000 + 0.5)  # an uncached value
        print(f"   cusum_limit for m = {m:3d} streams: {time.perf_counter() - t0:.3f} s")
    with tempfile.TemporaryDirectory() as tmp:
        rows = pd.DataFrame({"audit": "bench", "metric": [f"m{i % 23}" for i in range(184)],
                             "attributes": "g", "group": [str(i // 23) for i in range(184)], "value": 0.5})
        t0 = time.perf_counter()
        for i in range(240):
            write_history(tmp, rows.assign(period=f"{2006 + i // 12}-{i % 12 + 1:02d}"), run_id=f"r{i:04d}")
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        frame = load_history(tmp)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        runs = latest_runs(tmp, audit="bench")
        runs_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in Path(tmp).glob("*.parquet")) / 1e6
        print(f"   240 runs x 184 rows: write {write_s / 240 * 1000:.1f} ms/run, load_history {load_s:.2f} s "
              f"({len(frame)} rows), latest_runs {runs_s:.2f} s ({len(runs)} periods), {size:.1f} MB on disk")


if __name__ == "__main__":
    main()
