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
model does not see. Each stream's *overdispersion factor* is estimated from
its last (at most) 24 periods, ``phi = max(1, Q / (D - 1))`` with ``Q``
Pearson's (rates) or Cochran's (estimates) heterogeneity statistic over those
``D`` periods, and the score becomes ``z / sqrt(phi)``, a quasi-likelihood
correction that only ever makes alerts rarer. Where ``phi > 1`` was
estimated, ``z / sqrt(phi)`` is a t statistic with ``D - 1`` degrees of
freedom, whose tails are much heavier than the normal's far out where the
limits below lie, so it is mapped back to the normal deviate with the same
tail probability. A stream is scored once it has ``min_periods`` (default 3)
earlier periods.

Baselines
---------
``monitor.baseline: trailing`` (the default) compares a period with the
``monitor.periods`` (default 6) periods before it that are in the history;
``monitor.baseline: <run_id>`` with one named run (e.g. the month a rule set
was approved). The CUSUM below has its own reference, as a *self-starting*
CUSUM does (Hawkins, 1987): every earlier period of the stream since its
CUSUM last signalled (at most 24). Scores against all earlier periods are
the recursive residuals of that reference and are uncorrelated (nearly so
once the 24-period cap slides), so the CUSUM adds up independent evidence, and a change does not enter the reference as fast as
it enters a short trailing window, so a lasting shift keeps adding up. A
score against a fixed named run would instead carry that run's sampling
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

    The reference value ``k`` (default 0.5) tunes the CUSUM to a shift of
    ``2k = 1`` standard error per period: a change too small to show in one
    month adds up over a few. ``U``, ``L`` and the restart period are stored
    in the history, so the sum continues across runs.

False alarms over repeated monthly looks
----------------------------------------
Looking every month at ``m`` streams with a fixed 5 % test would raise a
false alarm in most years. The monitor is instead designed for an in-control
*average run length* ``A`` (``arl``, default 1000 periods): on average at
most one false alarm of any stream and any kind per ``A`` periods. Half of
the budget of ``1 / A`` false alarms per period goes to each kind of alert
and is split evenly over the ``m`` streams scored this period (a Bonferroni
split):

* change: ``P(|Z| > c) = 1 / (2 m A)``, so ``c = Phi^{-1}(1 - 1 / (4 m A))``;
  with ``m = 32`` streams and ``A = 1000``, ``c = 4.32``;
* sequential: each stream's two-sided CUSUM gets an in-control ARL of
  ``2 m A``, i.e. ``4 m A`` per side, and ``h`` solves ``ARL_k(h) = 4 m A``
  (:func:`cusum_limit`). The ARL of a one-sided CUSUM of independent
  standard normal scores is computed with the Markov-chain method of Brook
  and Evans (1972) (:func:`cusum_arl`; it reproduces the classical values
  336 for ``h = 4`` and 930 for ``h = 5`` at ``k = 0.5``); with
  ``m = 32`` and ``A = 1000``, ``h = 9.9``.

The run length of an in-control CUSUM is close to geometric, so the chance
of any false alarm within ``T`` periods is about ``T / A`` or less (2.4 % for
two years of monthly runs at ``A = 1000``). ``benchmarks/monitor.py``
checks the design on simulated series of 32 rate streams: with binomial
noise 0.0056 false alarms per period at ``A = 50`` (design 0.02) and 0.0014
at ``A = 1000`` (2 in 1,425 periods; design 0.001); with true rates that
wander from month to month (``phi`` about 3 in the largest groups) 0.017 at
``A = 50`` and 0.0035 at ``A = 1000`` (5 in 1,425). The price is that a
change must be clear to be seen at once: a step of ``delta`` standard errors
is flagged in its first period when ``delta / sqrt(phi)`` is beyond ``c``,
and otherwise after about ``h / (delta - k)`` periods while the history is
long enough to estimate ``phi`` well; with 12 months of history the
benchmark found a step of 8 standard errors after 2.4 months on average, of
5 after 5.6, of 3 after 11 (3 of 20 missed within two years). Small
disparities are the business of a full audit, not of a monthly alarm.

Output
------
:func:`run_monitor` returns a frozen :class:`MonitorResult`; the CLI exits
with 1 on an alert (0 without, 2 on a spec or data error), prints one line
per alert (or the JSON list of alerts with ``--json``), and ``alerts.json``
is added to the run folder. ``insyn history DIR`` prints the trend
(:func:`trend`, computed here) and writes a self-contained HTML page, in
English or Swedish, and a CSV; the page is rendered by the report layer
(:func:`audit.report.render_trend_html`, :func:`audit.report.write_trend`,
re-exported here).
"""

from __future__ import annotations

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
from audit.monitor._sequential import cusum_arl, cusum_limit
from audit.monitor._trend import TREND_COLUMNS, trend
from audit.report import render_trend_html, write_trend

__all__ = [
    "Alert",
    "DEFAULT_ARL",
    "DEFAULT_METRICS",
    "HISTORY_COLUMNS",
    "MonitorResult",
    "TREND_COLUMNS",
    "audit_for_period",
    "cusum_arl",
    "cusum_limit",
    "load_history",
    "period_seed",
    "render_trend_html",
    "run_monitor",
    "trend",
    "write_trend",
]
