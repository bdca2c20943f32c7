"""Operating characteristics of the monitor: how soon it sees a change, how often it cries wolf.

A monitor is only as useful as two numbers about it: the chance that it
raises an alert within a month or three after a real change in a group's
referral or refusal rate, and the number of months that pass, on average,
between false alarms when nothing changes. Both depend on the group's size,
its rate, the month-to-month variation of the data, the number of streams
monitored and the monitor's settings (``arl``, ``k``, the trailing window),
so they are measured by simulation rather than assumed.

:func:`simulate_monitor` runs the monitor's statistics on simulated counts:
the same scores (:func:`~audit.monitor._sequential.proportion_scores`), the
same moderated overdispersion factors
(:func:`~audit.monitor._sequential.moderate_dispersion`), the same limits,
CUSUM and restarts, the same calendar window, and the same rule that a
month with a change or sequential alert is left out of later baselines. It
is vectorised over many simulated monitors at once; a test runs a series
through :func:`audit.monitor.run_monitor` and checks that both give the same
scores and alerts, period by period. :func:`operating_characteristics` uses
it for the table in the README: a group of 1,000 cases a month among the
streams of the example monitor, a step or a three-month ramp of +5 or +10
percentage points in its rate after a year of history, and the months
between false alarms of the whole monitor without a change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import stats

from audit.exceptions import SpecError
from audit.monitor._sequential import (
    change_limit,
    cusum_limit,
    cusum_statistics,
    moderate_dispersion,
    proportion_scores,
    t_to_normal,
)

__all__ = [
    "EXAMPLE_STREAMS",
    "MonitorSimulation",
    "OperatingCharacteristics",
    "operating_characteristics",
    "simulate_monitor",
]

DISPERSION_PERIODS = 24
"""Earlier periods (at most) from which a stream's overdispersion factor is estimated (as in run_monitor)."""

EXAMPLE_STREAMS: tuple[tuple[int, float], ...] = (
    # grant_rate for all cases, birth_region (eu, nordic, outside_eu, sweden), family_size (1-2, 3+, none)
    (5000, 0.46), (277, 0.43), (129, 0.50), (2626, 0.42), (1968, 0.52), (1043, 0.42), (469, 0.27), (3488, 0.50),
    # refer_rate for the same groups
    (5000, 0.54), (277, 0.57), (129, 0.50), (2626, 0.58), (1968, 0.48), (1043, 0.58), (469, 0.73), (3488, 0.50),
    # underpayment_rate among the decided cases of the same groups
    (2310, 0.80), (120, 0.74), (65, 0.82), (1094, 0.80), (1031, 0.80), (438, 0.75), (127, 0.90), (1745, 0.80),
    # a fourth metric of the same groups (mean_shortfall in the example), simulated as a rate
    (2310, 0.30), (120, 0.30), (65, 0.30), (1094, 0.30), (1031, 0.30), (438, 0.30), (127, 0.30), (1745, 0.30),
)
"""The 32 streams of ``examples/monitor.yaml`` (cases a month, rate), measured from a run of 5,000 cases."""


@dataclass(frozen=True)
class MonitorSimulation:
    """What the monitor computed for every simulated stream and period.

    Arrays have the shape ``(monitors, streams, periods)``; a period before
    any score is NaN (scores) or False (alerts).

    Attributes
    ----------
    z, reference_z : numpy.ndarray
        The change score against the trailing baseline and the CUSUM's score
        against its reference.
    cusum_upper, cusum_lower : numpy.ndarray
        The CUSUM after the period (0 for a side that signalled).
    change, sequential_up, sequential_down : numpy.ndarray
        The alerts.
    streams : numpy.ndarray
        ``(monitors, periods)``: the streams scored, ``m``.
    change_limit, cusum_limit : numpy.ndarray
        ``(monitors, periods)``: the limits (NaN before any score).
    """

    z: np.ndarray
    reference_z: np.ndarray
    cusum_upper: np.ndarray
    cusum_lower: np.ndarray
    change: np.ndarray
    sequential_up: np.ndarray
    sequential_down: np.ndarray
    streams: np.ndarray
    change_limit: np.ndarray
    cusum_limit: np.ndarray

    @property
    def alert(self) -> np.ndarray:
        """Any change or sequential alert, per monitor, stream and period."""
        return self.change | self.sequential_up | self.sequential_down

    @property
    def up(self) -> np.ndarray:
        """An alert of a rise: a change with ``z > 0`` or a rising CUSUM."""
        return (self.change & (self.z > 0)) | self.sequential_up


@lru_cache(maxsize=512)
def _limits(m: int, arl: float, k: float) -> tuple[float, float]:
    return change_limit(1.0 / (2.0 * m * arl)), cusum_limit(4.0 * m * arl, k=k)


def _check(name: str, value: float, low: float, high: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (low <= v <= high):
        raise SpecError(f"{name} must be a number between {low:g} and {high:g}. Got {value!r}.")
    return v


def _scores(x: np.ndarray, n: np.ndarray, t: int, pool: np.ndarray, spread: np.ndarray, monitor: np.ndarray, *,
            min_periods: int) -> np.ndarray:
    """Scores of period ``t`` against the pooled counts of ``pool``, dispersion from ``spread`` (both masks)."""
    periods = pool.sum(axis=1)
    xb = np.where(pool, x[:, :t], 0.0).sum(axis=1)
    nb = np.where(pool, n[:, :t], 0.0).sum(axis=1)
    enough = periods >= min_periods
    d_periods = spread.sum(axis=1).astype("float64")
    xs = np.where(spread, x[:, :t], 0.0)
    ns = np.where(spread, n[:, :t], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = xs.sum(axis=1) / ns.sum(axis=1)
        var = ns * p[:, None] * (1 - p[:, None])
        q = np.where(spread & (var > 0), (xs - ns * p[:, None]) ** 2 / var, 0.0).sum(axis=1)
        raw = np.where(d_periods >= 2, q / (d_periods - 1), np.nan)
    z = np.full(len(x), np.nan)
    if not enough.any():
        return z
    phi, df = moderate_dispersion(raw[enough], np.maximum(d_periods[enough] - 1, 0.0), monitor[enough])
    score = proportion_scores(x[enough, t], n[enough, t], xb[enough], nb[enough]) / np.sqrt(phi)
    z[enough] = np.where(phi > 1, t_to_normal(score, df), score)
    return z


def simulate_monitor(counts: np.ndarray, cases: np.ndarray, *, arl: float, k: float, periods: int = 6,
                     min_periods: int = 3) -> MonitorSimulation:
    """Run the monitor's statistics over simulated monthly counts of rate streams.

    Every period ``t`` of every simulated monitor is scored as
    :func:`audit.monitor.run_monitor` scores it with a trailing baseline:
    the change score against the pooled counts of the usable months of the
    calendar window ``t - periods .. t - 1``, the CUSUM's score against the
    usable months since the stream's CUSUM last restarted (within the last
    24), overdispersion factors from the usable months of the last 24
    (the CUSUM's: since its restart), moderated across the monitor's streams
    scored in that period; limits from the number of streams scored; a
    month with any change or sequential alert is left out of the monitor's
    later baselines (nothing is approved). Every month is present.

    Parameters
    ----------
    counts, cases : numpy.ndarray
        ``(monitors, streams, periods)``: the count (e.g. referred cases) and
        the denominator (cases) of each stream and month.
    arl, k, periods, min_periods
        The monitor's settings (``monitor.arl``, ``monitor.k``,
        ``monitor.periods``, ``monitor.min_periods``).

    Returns
    -------
    MonitorSimulation
    """
    x = np.asarray(counts, dtype="float64")
    n = np.asarray(cases, dtype="float64")
    if x.ndim != 3 or n.shape != x.shape:
        raise SpecError(f"counts and cases must be arrays of the same shape (monitors, streams, periods). "
                        f"Got {x.shape} and {n.shape}.")
    if np.any((n <= 0) | (x < 0) | (x > n)) or not np.all(np.isfinite(x) & np.isfinite(n)):
        raise SpecError("counts must lie between 0 and cases, and cases must be positive, in every period.")
    arl = _check("arl", arl, 2, 1e12)
    k = _check("k", k, 0, 10)
    monitors, streams, horizon = x.shape
    flat_x, flat_n = x.reshape(-1, horizon), n.reshape(-1, horizon)
    monitor = np.repeat(np.arange(monitors), streams)
    usable = np.ones((monitors, horizon), dtype=bool)
    since = np.full(monitors * streams, -1)
    upper = np.zeros(monitors * streams)
    lower = np.zeros(monitors * streams)
    shape = (monitors * streams, horizon)
    out = {name: np.full(shape, np.nan) for name in ("z", "reference_z", "cusum_upper", "cusum_lower")}
    flags = {name: np.zeros(shape, dtype=bool) for name in ("change", "sequential_up", "sequential_down")}
    scored = np.zeros((monitors, horizon), dtype=np.int64)
    c_all = np.full((monitors, horizon), np.nan)
    h_all = np.full((monitors, horizon), np.nan)
    span = max(DISPERSION_PERIODS, periods)
    for t in range(1, horizon):
        months = np.arange(t)
        usable_rows = usable[monitor, :t]
        recent = usable_rows & (months >= t - span)[None, :]
        window = usable_rows & (months >= t - periods)[None, :]
        reference = recent & (months[None, :] > since[:, None])
        z_base = _scores(flat_x, flat_n, t, window, recent, monitor, min_periods=min_periods)
        z_ref = _scores(flat_x, flat_n, t, reference, reference, monitor, min_periods=min_periods)
        m = np.bincount(monitor, weights=(np.isfinite(z_base) | np.isfinite(z_ref)).astype("float64"),
                        minlength=monitors).astype(np.int64)
        c = np.full(monitors, np.nan)
        h = np.full(monitors, np.nan)
        for value in np.unique(m[m > 0]):
            c[m == value], h[m == value] = _limits(int(value), arl, k)
        upper, lower = cusum_statistics(upper, lower, z_ref, k=k)
        hs, cs = h[monitor], c[monitor]
        sig_up = upper > hs  # NaN limits compare False: no stream scored
        sig_down = lower > hs
        change = np.isfinite(z_base) & (np.abs(z_base) > cs)
        out["z"][:, t], out["reference_z"][:, t] = z_base, z_ref
        upper = np.where(sig_up, 0.0, upper)
        lower = np.where(sig_down, 0.0, lower)
        out["cusum_upper"][:, t], out["cusum_lower"][:, t] = upper, lower
        since = np.where(sig_up | sig_down, t, since)
        flags["change"][:, t], flags["sequential_up"][:, t], flags["sequential_down"][:, t] = change, sig_up, sig_down
        alerted = np.bincount(monitor, weights=(change | sig_up | sig_down).astype("float64"), minlength=monitors)
        usable[:, t] = alerted == 0
        scored[:, t], c_all[:, t], h_all[:, t] = m, c, h
    shape3 = (monitors, streams, horizon)
    return MonitorSimulation(
        **{name: a.reshape(shape3) for name, a in out.items()},
        **{name: a.reshape(shape3) for name, a in flags.items()},
        streams=scored, change_limit=c_all, cusum_limit=h_all,
    )


def _draw(rng: np.random.Generator, sizes: np.ndarray, rates: np.ndarray, *, monitors: int, horizon: int,
          wander: float) -> np.ndarray:
    """Binomial counts ``(monitors, streams, horizon)``; with ``wander`` a month effect on the log-odds."""
    p = np.broadcast_to(rates, (monitors, *rates.shape)).copy()
    if wander > 0:
        logit = np.log(p / (1 - p)) + rng.normal(0.0, wander, p.shape)
        p = 1.0 / (1.0 + np.exp(-logit))
    return rng.binomial(np.broadcast_to(sizes, p.shape).astype(np.int64), np.clip(p, 0.0, 1.0)).astype("float64")


@dataclass(frozen=True)
class OperatingCharacteristics:
    """Measured operating characteristics of the monitor.

    Attributes
    ----------
    detection : pandas.DataFrame
        One row per rate, shift and shape: ``rate`` (before the change),
        ``shift`` (in proportion points), ``shape`` (``step`` or
        ``ramp 3``), ``within_1``, ``within_2``, ``within_3`` (share of
        simulated series with an alert of a rise on the group's stream
        within 1, 2 and 3 months of the change's start) and ``se`` (the
        largest Monte Carlo standard error of the three).
    false_alarms : dict
        ``monitor_months`` simulated without a change, ``alarm_months``
        (months with at least one alert), ``months_between`` (their ratio)
        and its 95 % interval ``low``, ``high`` (exact Poisson).
    settings : dict
        What was simulated.
    """

    detection: pd.DataFrame
    false_alarms: dict[str, float]
    settings: dict[str, object]

    def to_markdown(self) -> str:
        """The README's table: detection within 1, 2 and 3 months, and the months between false alarms."""
        s = self.settings
        lines = [
            "| rate before | change | within 1 month | within 2 months | within 3 months |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for r in self.detection.itertuples():
            lines.append(f"| {r.rate:.2f} | {r.shape}, {r.shift * 100:+.0f} pp | {r.within_1:.0%} | "
                         f"{r.within_2:.0%} | {r.within_3:.0%} |")
        fa = self.false_alarms
        lines.append("")
        lines.append(
            f"Months between false alarms of the whole monitor ({s['streams']} streams, no change): "
            f"{fa['months_between']:.0f} (95 % interval {fa['low']:.0f} to {fa['high']:.0f}; "
            f"{fa['alarm_months']:.0f} alarm months in {fa['monitor_months']:.0f})."
        )
        return "\n".join(lines)


def operating_characteristics(
    *,
    n: int = 1000,
    rates: Sequence[float] = (0.30, 0.10),
    shifts: Sequence[float] = (0.05, 0.10),
    ramps: Sequence[int] = (1, 3),
    history: int = 12,
    streams: Sequence[tuple[int, float]] = EXAMPLE_STREAMS,
    replicates: int = 2000,
    null_replicates: int = 500,
    null_months: int = 120,
    arl: float = 200.0,
    k: float = 1.0,
    periods: int = 6,
    min_periods: int = 3,
    wander: float = 0.0,
    seed: int = 2026,
) -> OperatingCharacteristics:
    """Measure the monitor's operating characteristics by simulation.

    A simulated monitor has the streams of ``streams`` (default: the 32 of
    ``examples/monitor.yaml``), the first replaced by the group of interest:
    ``n`` cases a month at a rate from ``rates``. After ``history`` months
    without change the group's rate rises by ``shift``: at once (a step,
    ``ramp`` 1) or in equal monthly steps over ``ramp`` months. The
    detection probability within ``j`` months is the share of
    ``replicates`` monitors with an alert of a rise on that stream in
    months ``history + 1 .. history + j``. False alarms: ``null_replicates``
    monitors without any change, counted over ``null_months`` months after
    the same ``history`` months.

    Parameters
    ----------
    n : int, default 1000
        The group's cases a month.
    rates, shifts, ramps : sequences
        Rates before the change, shifts (proportion points) and ramp lengths.
    history : int, default 12
        Months of history before the change (and before counting false
        alarms).
    streams : sequence of (cases, rate)
        The monitor's streams.
    replicates, null_replicates, null_months : int
        Simulation sizes.
    arl, k, periods, min_periods : float or int
        The monitor's settings.
    wander : float, default 0.0
        Standard deviation of a month effect on the log-odds of every rate
        (0: binomial noise only). 0.07 gives an overdispersion factor of
        about 2 for a group of 1,000 at a rate of 0.30.
    seed : int, default 2026
        Seed of the random numbers.

    Returns
    -------
    OperatingCharacteristics
    """
    rng = np.random.default_rng(seed)
    if not streams:
        raise SpecError("streams must name at least one (cases, rate) pair.")
    sizes = np.array([s for s, _ in streams], dtype="float64")
    base_rates = np.array([r for _, r in streams], dtype="float64")
    sizes[0] = n
    rows = []
    for rate in rates:
        for shift in shifts:
            if not 0 < rate + shift < 1:
                raise SpecError(f"rate + shift must lie in (0, 1). Got {rate} + {shift}.")
            for ramp in ramps:
                horizon = history + 3
                months = np.arange(horizon)
                step = np.clip((months - history + 1) / ramp, 0.0, 1.0)
                p = np.broadcast_to(base_rates[:, None], (len(streams), horizon)).copy()
                p[0] = rate + shift * step
                x = _draw(rng, np.broadcast_to(sizes[:, None], p.shape), p, monitors=replicates,
                          horizon=horizon, wander=wander)
                sim = simulate_monitor(x, np.broadcast_to(sizes[:, None], x.shape), arl=arl, k=k,
                                       periods=periods, min_periods=min_periods)
                hit = np.cumsum(sim.up[:, 0, history:history + 3], axis=1) > 0
                share = hit.mean(axis=0)
                rows.append({"rate": rate, "shift": shift, "shape": "step" if ramp == 1 else f"ramp {ramp}",
                             "within_1": share[0], "within_2": share[1], "within_3": share[2],
                             "se": float(np.max(np.sqrt(share * (1 - share) / replicates)))})
    horizon = history + null_months
    p = np.broadcast_to(base_rates[:, None], (len(streams), horizon)).copy()
    p[0] = rates[0]
    x = _draw(rng, np.broadcast_to(sizes[:, None], p.shape), p, monitors=null_replicates, horizon=horizon,
              wander=wander)
    sim = simulate_monitor(x, np.broadcast_to(sizes[:, None], x.shape), arl=arl, k=k, periods=periods,
                           min_periods=min_periods)
    alarms = int(sim.alert[:, :, history:].any(axis=1).sum())
    total = null_replicates * null_months
    low, high = _poisson_interval(alarms)
    false_alarms = {
        "monitor_months": float(total),
        "alarm_months": float(alarms),
        "months_between": total / alarms if alarms else math.inf,
        "low": total / high if high > 0 else math.inf,
        "high": total / low if low > 0 else math.inf,
    }
    settings = {"n": n, "history": history, "streams": len(streams), "replicates": replicates,
                "null_replicates": null_replicates, "null_months": null_months, "arl": arl, "k": k,
                "periods": periods, "min_periods": min_periods, "wander": wander, "seed": seed}
    return OperatingCharacteristics(detection=pd.DataFrame(rows), false_alarms=false_alarms, settings=settings)


def _poisson_interval(count: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval of a Poisson mean from one count."""
    a = (1 - level) / 2
    low = 0.0 if count == 0 else float(stats.chi2.ppf(a, 2 * count) / 2)
    high = float(stats.chi2.ppf(1 - a, 2 * count + 2) / 2)
    return low, high
