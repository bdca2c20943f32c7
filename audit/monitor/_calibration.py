"""A calibration study of the monitor: does it keep what its settings promise?

A monitor's settings make two promises. ``monitor.arl`` promises the
*average run length* without a change: about ``arl`` months, for the whole
monitor, before a false alarm (the limits split that rate between the
change test and the two CUSUMs of every stream). ``monitor.k`` and the
decision limit ``h`` that follows from ``arl`` promise a *detection delay*
for a change of a given size: with monthly scores that are standard normal
before the change and normal with mean ``delta`` after it, the expected
number of months until the first alert (the CUSUM of :func:`cusum_arl`, with
the change test's limit ``c`` as a second way to signal) is a number one can
compute from ``c``, ``h``, ``k`` and ``delta`` alone (:func:`promised_delay`).

Real monitoring scores are not exactly that: a baseline of six months has
its own noise, overdispersion factors are estimated and moderated, a month
that is not flagged joins later baselines, and counts are discrete. A
calibration study therefore runs the monitor's own statistics
(:func:`audit.monitor.simulate_monitor`, checked against
:func:`audit.monitor.run_monitor` period by period) on simulated months and
compares what it measures with what was promised:

* the average run length without any change, estimated from the months to
  each simulated monitor's first false alarm (censored at the end of the
  series: the geometric maximum-likelihood estimate, total months watched
  divided by the alarms, with an exact Poisson interval), against ``arl``;
* the delay after a planted step in one group's rate, in months from the
  first changed month (1: seen in that month), against
  :func:`promised_delay` for the shift in standard errors that the planted
  step makes.

The study is written in YAML (``examples/monitor-calibration.yaml``) and run
with :func:`run_calibration`; ``tests/test_monitor_calibration.py`` runs the
shipped file and holds the monitor to its promises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy import special, stats

from audit._yaml import read_yaml
from audit.exceptions import SpecError
from audit.monitor._oc import EXAMPLE_STREAMS, simulate_monitor
from audit.monitor._sequential import change_limit, cusum_arl, cusum_limit

__all__ = ["CalibrationSpec", "MonitorCalibration", "load_calibration", "promised_delay", "run_calibration"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Settings(_Strict):
    arl: float = Field(default=200.0, ge=2.0, le=1e12)
    k: float = Field(default=1.0, ge=0.0, le=10.0)
    periods: int = Field(default=6, ge=1)
    min_periods: int = Field(default=3, ge=1)


class _Null(_Strict):
    monitors: int = Field(default=600, ge=1)
    months: int = Field(default=60, ge=1)


class _Change(_Strict):
    cases: int = Field(default=1000, ge=1)
    rate: float = Field(default=0.30, gt=0.0, lt=1.0)
    shift: float = Field(default=0.03)
    monitors: int = Field(default=2000, ge=1)
    months: int = Field(default=12, ge=1)

    @model_validator(mode="after")
    def _inside(self) -> _Change:
        if not 0.0 < self.rate + self.shift < 1.0 or self.shift == 0:
            raise ValueError(f"rate + shift must lie in (0, 1) and shift must not be 0. Got {self.rate} + "
                             f"{self.shift}.")
        return self


class CalibrationSpec(_Strict):
    """A monitor calibration study (the keys of ``examples/monitor-calibration.yaml``).

    ``settings`` are the monitor's (``monitor.arl``, ``k``, ``periods``,
    ``min_periods``); ``streams`` the monitored values as ``[cases a month,
    rate]`` pairs (``example``: the 32 of ``examples/monitor.yaml``;
    ``example_refer_rate``: its 8 referral-rate streams); the first stream is
    the group of the planted change. ``history`` months precede the
    counting; ``no_change`` simulates monitors without a change; ``change`` a step
    of ``shift`` in the first stream's ``rate`` (with ``cases`` a month).
    """

    name: str = "monitor-calibration"
    seed: int = 2026
    settings: _Settings = Field(default_factory=_Settings)
    streams: str | list[tuple[int, float]] = "example_refer_rate"
    history: int = Field(default=12, ge=1)
    no_change: _Null = Field(default_factory=_Null)
    change: _Change = Field(default_factory=_Change)

    @model_validator(mode="after")
    def _known(self) -> CalibrationSpec:
        if isinstance(self.streams, str) and self.streams not in _NAMED_STREAMS:
            raise ValueError(f"streams must be a list of [cases, rate] pairs or one of "
                             f"{', '.join(_NAMED_STREAMS)}. Got {self.streams!r}.")
        if isinstance(self.streams, list):
            if not self.streams:
                raise ValueError("streams must name at least one [cases, rate] pair. Got an empty list.")
            bad = [s for s in self.streams if s[0] < 1 or not 0 < s[1] < 1]
            if bad:
                raise ValueError(f"each stream needs cases >= 1 and a rate in (0, 1). Got {list(bad[0])}.")
        return self

    def stream_table(self) -> tuple[np.ndarray, np.ndarray]:
        """The streams' cases a month and rates, the first replaced by the group of the planted change."""
        pairs = _NAMED_STREAMS[self.streams] if isinstance(self.streams, str) else tuple(self.streams)
        sizes = np.array([s for s, _ in pairs], dtype="float64")
        rates = np.array([r for _, r in pairs], dtype="float64")
        sizes[0], rates[0] = self.change.cases, self.change.rate
        return sizes, rates


_NAMED_STREAMS: dict[str, tuple[tuple[int, float], ...]] = {
    "example": EXAMPLE_STREAMS,
    "example_refer_rate": EXAMPLE_STREAMS[8:16],
}


def load_calibration(path: str | Path) -> CalibrationSpec:
    """Read a calibration study from YAML; every problem is a SpecError naming the file and the key."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a calibration study must be a mapping of keys. Got {type(data).__name__}.")
    try:
        return CalibrationSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<top>"
        raise SpecError(f"{path}: {where}: {first['msg']}. Got {first.get('input')!r}.") from None


def promised_delay(*, c: float, h: float, k: float, shift: float, states: int = 200) -> float:
    """Expected months to the first alert for normal scores with mean ``shift``: the settings' promise.

    Each month's score ``z ~ N(shift, 1)`` signals when ``z > c`` (the change
    test, one direction) or when the CUSUM ``S_t = max(0, S_{t-1} + z - k)``
    passes ``h``. The expected time is computed with the Markov chain of
    Brook and Evans (1972) as in :func:`audit.monitor.cusum_arl`, whose
    transitions here also require ``z <= c`` (a larger score has signalled).
    With ``c`` infinite it is :func:`audit.monitor.cusum_arl`.

    Parameters
    ----------
    c, h, k : float
        The change limit, the CUSUM's decision limit and reference value.
    shift : float
        The mean of the scores after the change, in standard errors.
    states : int, default 200
        Cells of the approximation.

    Returns
    -------
    float
        Months, counting the first changed month as 1.
    """
    if not (h > 0 and k >= 0 and c > 0):
        raise SpecError(f"c and h must be > 0 and k >= 0. Got c={c}, h={h}, k={k}.")
    width = 2.0 * h / (2 * states - 1)
    centres = np.arange(states) * width
    upper = (np.arange(states) + 0.5) * width
    # P(S' <= upper_j and z <= c) for S' = max(0, s_i + z - k): z <= min(upper_j - s_i + k, c)
    cap = np.minimum(upper[None, :] - centres[:, None] + k, c)
    below = special.ndtr(cap - shift)
    r = np.clip(np.diff(below, axis=1, prepend=0.0), 0.0, None)
    arl = np.linalg.solve(np.eye(states) - r, np.ones(states))
    return float(arl[0])


@dataclass(frozen=True)
class MonitorCalibration:
    """What a calibration study measured against what the settings promise.

    Attributes
    ----------
    spec : CalibrationSpec
        The study.
    streams : int
        Monitored values of a simulated monitor.
    change_limit, cusum_limit : float
        The limits ``c`` and ``h`` that the settings give for ``streams`` values.
    arl_promised : float
        ``settings.arl``.
    arl_simulated, arl_low, arl_high : float
        Months to a false alarm without a change (geometric estimate from
        first alarms, censored at the end), with its 95 % interval.
    alarms, watched : int
        Monitors with a false alarm, and months watched in all.
    shift_se : float
        The planted step in standard errors of the group's change score
        (against a baseline of ``settings.periods`` months).
    delay_promised, delay_cusum : float
        :func:`promised_delay` at ``shift_se`` (the change test and the
        CUSUM), and the CUSUM's alone (:func:`audit.monitor.cusum_arl`).
    delay_mean, delay_se, delay_median : float
        Simulated months to the first alert of a rise on the group's value
        (1: in the first changed month), among the monitors that saw it.
    detected : float
        Share of monitors that saw the rise within ``change.months`` months.
    within : dict
        Share seen within 1, 3 and 6 months.
    """

    spec: CalibrationSpec
    streams: int
    change_limit: float
    cusum_limit: float
    arl_promised: float
    arl_simulated: float
    arl_low: float
    arl_high: float
    alarms: int
    watched: int
    shift_se: float
    delay_promised: float
    delay_cusum: float
    delay_mean: float
    delay_se: float
    delay_median: float
    detected: float
    within: dict[int, float]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-safe) of the study's result."""
        return {
            "name": self.spec.name, "streams": self.streams, "change_limit": self.change_limit,
            "cusum_limit": self.cusum_limit, "arl_promised": self.arl_promised,
            "arl_simulated": self.arl_simulated, "arl_low": self.arl_low, "arl_high": self.arl_high,
            "alarms": self.alarms, "watched": self.watched, "shift_se": self.shift_se,
            "delay_promised": self.delay_promised, "delay_cusum": self.delay_cusum,
            "delay_mean": self.delay_mean, "delay_se": self.delay_se, "delay_median": self.delay_median,
            "detected": self.detected, "within": {str(k): v for k, v in self.within.items()},
        }

    def to_markdown(self) -> str:
        """The README's table: promised and simulated run length and delay."""
        s, ch = self.spec.settings, self.spec.change
        return "\n".join([
            "| | promised by the settings | simulated |",
            "| --- | ---: | ---: |",
            f"| months to a false alarm, no change ({self.streams} values) | {self.arl_promised:.0f} | "
            f"{self.arl_simulated:.0f} (95 % {self.arl_low:.0f} to {self.arl_high:.0f}; {self.alarms} alarms in "
            f"{self.watched} months) |",
            f"| months to detect {ch.rate:.2f} to {ch.rate + ch.shift:.2f} in a group of {ch.cases:,} a month "
            f"({self.shift_se:.1f} SE) | {self.delay_promised:.1f} (CUSUM alone {self.delay_cusum:.1f}) | "
            f"{self.delay_mean:.1f} ± {self.delay_se:.1f} (median {self.delay_median:.0f}; "
            f"{self.detected:.0%} seen within {ch.months}) |",
            "",
            f"Settings: arl {s.arl:g}, k {s.k:g}, a trailing baseline of {s.periods} months "
            f"(limits c = {self.change_limit:.2f}, h = {self.cusum_limit:.2f}); seed {self.spec.seed}.",
        ])


def _draw(rng: np.random.Generator, sizes: np.ndarray, rates: np.ndarray, monitors: int) -> np.ndarray:
    """Binomial counts ``(monitors, streams, months)`` for per-stream, per-month rates ``(streams, months)``."""
    n = np.broadcast_to(sizes[:, None], rates.shape).astype(np.int64)
    return rng.binomial(np.broadcast_to(n, (monitors, *rates.shape)),
                        np.broadcast_to(rates, (monitors, *rates.shape))).astype("float64")


def run_calibration(spec: CalibrationSpec | str | Path) -> MonitorCalibration:
    """Run a monitor calibration study (see the module docstring).

    Parameters
    ----------
    spec : CalibrationSpec, str or Path
        The study, or the path of its YAML file.

    Returns
    -------
    MonitorCalibration
    """
    if not isinstance(spec, CalibrationSpec):
        spec = load_calibration(spec)
    s, ch = spec.settings, spec.change
    rng = np.random.default_rng(spec.seed)
    sizes, rates = spec.stream_table()
    m = len(sizes)
    c = change_limit(1.0 / (2.0 * m * s.arl))
    h = cusum_limit(4.0 * m * s.arl, k=s.k)

    # no change: months to each monitor's first alarm after the history, censored at the end
    horizon = spec.history + spec.no_change.months
    p = np.broadcast_to(rates[:, None], (m, horizon))
    x = _draw(rng, sizes, p, spec.no_change.monitors)
    sim = simulate_monitor(x, np.broadcast_to(sizes[None, :, None], x.shape), arl=s.arl, k=s.k,
                           periods=s.periods, min_periods=s.min_periods)
    alarm = sim.alert.any(axis=1)[:, spec.history:]  # (monitors, months)
    seen = alarm.any(axis=1)
    first = np.where(seen, alarm.argmax(axis=1) + 1, spec.no_change.months)
    alarms, watched = int(seen.sum()), int(first.sum())
    a = 0.025
    low = 0.0 if alarms == 0 else float(stats.chi2.ppf(a, 2 * alarms) / 2)
    high = float(stats.chi2.ppf(1 - a, 2 * alarms + 2) / 2)

    # a planted step in the first stream's rate after the history
    horizon = spec.history + ch.months
    p = np.broadcast_to(rates[:, None], (m, horizon)).copy()
    p[0, spec.history:] = ch.rate + ch.shift
    x = _draw(rng, sizes, p, ch.monitors)
    sim = simulate_monitor(x, np.broadcast_to(sizes[None, :, None], x.shape), arl=s.arl, k=s.k,
                           periods=s.periods, min_periods=s.min_periods)
    down = (sim.change & (sim.z < 0)) | sim.sequential_down
    rise = (sim.up if ch.shift > 0 else down)[:, 0, spec.history:]
    hit = rise.any(axis=1)
    delay = (rise.argmax(axis=1) + 1)[hit].astype("float64")
    # the shift in standard errors of the change score: the month against a pooled baseline of `periods` months
    n0, p0, p1 = float(ch.cases), ch.rate, ch.rate + ch.shift
    pooled = (p1 + s.periods * p0) / (1 + s.periods)
    shift_se = abs(p1 - p0) / math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / (s.periods * n0)))
    return MonitorCalibration(
        spec=spec, streams=m, change_limit=c, cusum_limit=h, arl_promised=s.arl,
        arl_simulated=watched / alarms if alarms else math.inf,
        arl_low=watched / high, arl_high=watched / low if low > 0 else math.inf,
        alarms=alarms, watched=watched, shift_se=shift_se,
        delay_promised=promised_delay(c=c, h=h, k=s.k, shift=shift_se),
        delay_cusum=cusum_arl(h, k=s.k, shift=shift_se),
        delay_mean=float(delay.mean()) if delay.size else math.nan,
        delay_se=float(delay.std(ddof=1) / math.sqrt(delay.size)) if delay.size > 1 else math.nan,
        delay_median=float(np.median(delay)) if delay.size else math.nan,
        detected=float(hit.mean()),
        within={j: float((rise[:, :j].any(axis=1)).mean()) for j in (1, 3, 6) if j <= ch.months},
    )
