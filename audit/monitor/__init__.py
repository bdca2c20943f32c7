"""Periodic monitoring: a history of audits, baselines, drift in disparities, alerts.

Public values must be followed over time, and a decision robot's rules change
with each new municipal guideline, often without anyone outside noticing. A
*monitoring job* therefore audits every period's decisions (a month of
applications for *ekonomiskt bistånd*), keeps the metrics of every run in a
*history*, compares the period with a *baseline* and raises an *alert* when a
group's outcomes move: ``insyn monitor SPEC --history DIR [--period 2026-10]``
from cron or a systemd timer, exit code 1 and one line per alert for the
mail.

The period
----------
A period is a month, ``YYYY-MM``. A ``{period}`` placeholder in the
population's ``file``, ``sheet``, ``sql``, ``url`` or ``aggregated`` names
the month's data (``decisions-{period}.parquet``). A synthetic population is
drawn for that benefit month with a seed derived from the spec's seed and the
period (:func:`audit_for_period`, :func:`period_seed`).

The history
-----------
Every run writes one Parquet file, ``DIR/run=<run_id>.parquet``, atomically
(temporary name, then rename), so that concurrent jobs never block each
other and never lose a run; readers query all files with DuckDB's
``read_parquet(..., union_by_name=true)`` (:func:`load_history`). A row is a
metric row of the run plus the run's identity and what the monitor computed
(:data:`HISTORY_COLUMNS`), including the CUSUM state that the next period
continues from. When a period was run more than once, the run that finished
last counts.

Streams and scores
------------------
A *stream* is one monitored metric for one group (``refer_rate`` for
``family_size = 3+ children``), including all cases; the metrics are those of
``monitor.metrics``, else those the thresholds name, else
:data:`DEFAULT_METRICS`. Each period gives each stream a score ``z``, a
standard normal deviate under "no change":

* a rate ``x / n`` against the pooled ``X_b / N_b`` of earlier periods: given
  the total count, ``x`` is hypergeometric under no change, and ``z`` is the
  mid-p value of that exact conditional test turned into a normal deviate,
  ``z = Phi^{-1}(P(X < x) + P(X = x) / 2)``. For large counts it equals the
  pooled two-proportion z statistic; for rare events (errors, refusals) it
  does not explode;
* any other estimate ``v`` with standard error ``s`` (means and ratios of
  sums; ``s`` from the run's interval) against the inverse-variance pooled
  ``v_b`` with variance ``s_b^2``: ``z = (v - v_b) / sqrt(s^2 + s_b^2)``.

Month-to-month changes in the case mix add variation that the sampling
model does not see. Each stream's own *overdispersion factor* is
``Q / (D - 1)`` with ``Q`` Pearson's (rates) or Cochran's (estimates)
heterogeneity statistic over its last (at most) 24 usable periods ``D``.
A year of history gives such a factor 11 degrees of freedom: too few, for a
score divided by it has the heavy tails of a t distribution with 11 degrees
of freedom, and at the monitor's limits that costs most of its power (and
one outlying month inflates it). The factors of the streams scored in a run
are therefore *moderated* towards a common prior, as limma moderates the
variances of genes (Smyth 2004; :func:`moderate_dispersion`): the prior
``s0^2`` and its degrees of freedom ``d0`` are estimated from all the
streams' factors, and each stream gets ``phi = max(1, (d0 s0^2 + d raw) /
(d0 + d))`` with ``d0 + d`` degrees of freedom. The score becomes
``z / sqrt(phi)``, a quasi-likelihood correction that only ever makes
alerts rarer, and where ``phi > 1`` it is a t statistic with ``d0 + d``
degrees of freedom, mapped back to the normal deviate with the same tail
probability (infinite ``d0``: no change). When binomial noise is all there
is, ``d0`` is large and the scores stay nearly normal. A stream is scored
once it has ``min_periods`` (default 3) earlier periods.

Baselines
---------
``monitor.baseline: trailing`` (the default) compares a period with the
calendar window of ``monitor.periods`` (default 6) months before it. Of
that window, a month without a run (after the history's first period) is
*missing*, and a month that raised a change or sequential alert is *left
out* unless ``monitor.approved`` lists it (an alerted change that was
reviewed and accepted); both are named in the baseline's description, the
run's ``monitor`` block in ``results.json``, the report, and every alert
(``missing_periods``, ``excluded_periods``). When they leave fewer than
``min_periods`` usable months although the history is older, the run raises
a ``baseline`` alert (severity fail: the period was not compared); missing
months that still leave enough give a ``baseline`` warning. A history that
has just started is only a note. Level and baseline alerts never leave a
month out (a chronic threshold breach or a gap must not empty every later
baseline). ``monitor.baseline: <run_id>`` compares with one named run (e.g.
the month a rule set was approved) instead. The CUSUM below has its own
reference, as a *self-starting* CUSUM does (Hawkins, 1987): every earlier
period of the stream since its CUSUM last signalled (at most 24 months back,
left-out months excluded). Scores against all earlier periods are the
recursive residuals of that reference and are uncorrelated (nearly so once
the 24-period cap slides), so the CUSUM adds up independent evidence, and a
change does not enter the reference as fast as it enters a short trailing
window, so a lasting shift keeps adding up. A score against a fixed named
run would instead carry that run's sampling
error into every period, which a cumulative sum turns into false alarms.

Alerts
------
``level``
    A threshold of the spec is broken (status FAIL, or ERROR when it cannot
    be evaluated), exactly as in ``insyn run`` (:func:`audit.metrics.evaluate_thresholds`);
    a threshold with ``severity: warn`` gives a warning that does not change
    the exit code.
``change``
    This period is outside the baseline's interval: ``|z| > c``.
``sequential``
    A two-sided CUSUM of the scores against the CUSUM's reference passes its
    limit::

        U_t = max(0, U_{t-1} + z_t - k)      (a rise)
        L_t = max(0, L_{t-1} - z_t - k)      (a fall)
        alert when U_t > h or L_t > h; that side then restarts at 0, and
        the stream's reference restarts with the periods after this one.

    The reference value ``k`` (default 1.0) tunes the CUSUM to a shift of
    ``2k = 2`` standard errors per period: a change too small to show in one
    month adds up over a few. ``U``, ``L`` and the restart period are stored
    in the history, so the sum continues across runs.

False alarms over repeated monthly looks
----------------------------------------
Looking every month at ``m`` streams with a fixed 5 % test would raise a
false alarm in most years. The monitor is instead designed for an in-control
*average run length* ``A`` (``arl``, default 200 periods): on average at
most one false alarm of any stream and any kind per ``A`` periods. Half of
the budget of ``1 / A`` false alarms per period goes to each kind of alert
and is split evenly over the ``m`` streams scored this period (a Bonferroni
split):

* change: ``P(|Z| > c) = 1 / (2 m A)``, so ``c = Phi^{-1}(1 - 1 / (4 m A))``;
  with ``m = 32`` streams and ``A = 200``, ``c = 3.95``;
* sequential: each stream's two-sided CUSUM gets an in-control ARL of
  ``2 m A``, i.e. ``4 m A`` per side, and ``h`` solves ``ARL_k(h) = 4 m A``
  (:func:`cusum_limit`). The ARL of a one-sided CUSUM of independent
  standard normal scores is computed with the Markov-chain method of Brook
  and Evans (1972) (:func:`cusum_arl`; it reproduces the classical values
  336 for ``h = 4`` and 930 for ``h = 5`` at ``k = 0.5``); with
  ``m = 32``, ``A = 200`` and ``k = 1``, ``h = 4.3``.

Operating characteristics
-------------------------
The defaults ``arl = 200`` and ``k = 1`` were chosen from measured
operating characteristics (:func:`operating_characteristics`, which runs
these statistics on simulated months and is checked against
:func:`run_monitor` period by period; ``benchmarks/monitor_oc.py``; the
README's table). For a group of 1,000 applications a month among the 32
streams of ``examples/monitor.yaml`` and a year of history, a rise of its
referral rate from 0.30 by 10 percentage points is flagged within two
months in nearly every simulated series as a step and within three as a
three-month ramp, while the whole monitor goes about 330 months between
false alarms with binomial noise and about 180 when every rate wanders from
month to month (an overdispersion factor of about 2 for the group, up to 6
for the largest streams); with that wander the same step is found within
three months in 94 % of series and the ramp in 55 %. The
previous defaults (``arl = 1000``, ``k = 0.5``, each stream's own factor)
missed such a three-month rise from 0.30 to 0.40 (issue 21). Small, slow
drifts remain the business of a full audit, not of a monthly alarm.

Output
------
:func:`run_monitor` returns a frozen :class:`MonitorResult`; the CLI exits
with 1 on an alert (0 without, 2 on a spec or data error), prints one line
per alert (or the JSON list of alerts with ``--json``), and ``alerts.json``
is added to the run folder. The alerts, the baseline used and the limits
go into the run's result before its folder is written, so ``report.html``
and ``report.md`` open with them, their verdict counts them, and
``results.json`` carries them (``monitor``, ``alerts``). The run's public
values (:mod:`audit.public_values`) are kept in the history too.
``insyn history DIR`` prints the trend (:func:`trend`, computed here) and
writes a self-contained HTML page (baseline bands, alerts ringed, public
values by group, English or Swedish) and a CSV; the page is rendered by the
report layer (:func:`audit.report.render_trend_html`,
:func:`audit.report.write_trend`, re-exported here).
"""

from __future__ import annotations

from audit.monitor._calibration import (
    CalibrationSpec,
    MonitorCalibration,
    load_calibration,
    promised_delay,
    run_calibration,
)
from audit.monitor._history import HISTORY_COLUMNS, load_history
from audit.monitor._monitor import (
    DEFAULT_ARL,
    DEFAULT_METRICS,
    Alert,
    MonitorResult,
    audit_for_period,
    period_seed,
    run_monitor,
)
from audit.monitor._oc import (
    EXAMPLE_STREAMS,
    MonitorSimulation,
    OperatingCharacteristics,
    operating_characteristics,
    simulate_monitor,
)
from audit.monitor._sequential import cusum_arl, cusum_limit
from audit.monitor._trend import TREND_COLUMNS, trend
from audit.report import render_trend_html, write_trend
from audit.report._trend import trend_language

__all__ = [
    "Alert",
    "CalibrationSpec",
    "DEFAULT_ARL",
    "DEFAULT_METRICS",
    "EXAMPLE_STREAMS",
    "HISTORY_COLUMNS",
    "MonitorCalibration",
    "MonitorResult",
    "MonitorSimulation",
    "OperatingCharacteristics",
    "TREND_COLUMNS",
    "audit_for_period",
    "cusum_arl",
    "cusum_limit",
    "load_calibration",
    "load_history",
    "operating_characteristics",
    "period_seed",
    "promised_delay",
    "render_trend_html",
    "run_calibration",
    "run_monitor",
    "simulate_monitor",
    "trend",
    "trend_language",
    "write_trend",
]
