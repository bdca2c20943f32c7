"""One monitoring run: audit a period, compare it with the history, raise alerts.

See the package docstring (:mod:`audit.monitor`) for the method.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from audit.audit import run_audit
from audit.chunked import run_chunked_audit
from audit.evidence import PrunedRun, amend_manifest, prune_logs
from audit._paths import display_path
from audit.exceptions import SpecError
from audit.execution import plan_execution
from audit.metrics import METRICS
from audit.monitor._history import HISTORY_COLUMNS, check_dir, conform, latest_runs, read_runs, write_history
from audit.monitor._sequential import (
    change_limit,
    cusum_limit,
    cusum_statistics,
    dispersion_mean,
    dispersion_proportion,
    mean_scores,
    moderate_dispersion,
    proportion_scores,
    t_to_normal,
)
from audit._json import jsonable
from audit._privacy import mask, masked_json
from audit.result import AuditResult
from audit.runner import make_run_id
from audit.spec import AuditSpec, MonitorSpec, load_spec
from audit.synth import BenefitMonths, load_population_spec

__all__ = [
    "Alert",
    "DEFAULT_ARL",
    "DEFAULT_METRICS",
    "MonitorResult",
    "audit_for_period",
    "monitor_run_id",
    "period_seed",
    "run_monitor",
]

DEFAULT_ARL: float = MonitorSpec.model_fields["arl"].default
"""In-control average run length of the whole monitor, in periods (see the package docstring)."""

DEFAULT_METRICS: tuple[str, ...] = ("grant_rate", "refer_rate", "deny_rate")
"""Metrics monitored when neither ``monitor.metrics`` nor a threshold names any."""

DEFAULT_K: float = MonitorSpec.model_fields["k"].default
"""CUSUM reference value: tuned to a shift of one standard error per period."""

DEFAULT_MIN_PERIODS: int = MonitorSpec.model_fields["min_periods"].default
"""Earlier periods a stream needs before it is scored."""

DISPERSION_PERIODS = 24
"""Earlier periods (at most) from which a stream's overdispersion factor is estimated."""

_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")
_SUBSTITUTED = ("synthetic", "file", "sheet", "sql", "url", "aggregated")
_T_INTERVAL = frozenset({"mean_amount", "mean_shortfall", "calibration_gap"})
"""Metrics whose group interval is a t interval (see audit.metrics._measure); others are normal."""
_SEP = "\x1f"


# --------------------------------------------------------------------------
# results


def _num(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) or math.isinf(v) else v


def _fmt(x: float | None, metric: str = "") -> str:
    """A value for a message: whole SEK for amounts, three decimals for rates and ratios."""
    if x is None or math.isnan(x):
        return "NaN"
    info = METRICS.get(metric)
    if (info is not None and info.unit == "SEK") or (info is None and abs(x) >= 100):
        return f"{x:,.0f}".replace(",", " ")
    return f"{x:.3f}"


def _who(attributes: Sequence[str], group: str) -> str:
    if not attributes:
        return "all cases"
    values = group.split(" & ")
    if len(values) != len(attributes):
        return f"{' & '.join(attributes)}={group}"
    return " & ".join(f"{a}={v}" for a, v in zip(attributes, values))


@dataclass(frozen=True)
class Alert:
    """One alert of a monitoring run.

    Attributes
    ----------
    kind : {"level", "change", "sequential", "baseline"}
        ``level``: a threshold of the spec is broken (or cannot be evaluated);
        ``change``: this period differs from the baseline beyond its interval;
        ``sequential``: the CUSUM of recent periods passed its limit;
        ``baseline``: the baseline lacks periods (``warn``), or holds too few
        to score this period although the history is older (``fail``).
    severity : {"fail", "warn"}
        ``warn`` for thresholds with ``severity: warn`` and for a baseline
        with missing periods; warnings do not change the exit code.
    audit, period, run_id : str
        Which audit, period and run.
    metric : str
        The metric.
    attributes : tuple of str
        The sensitive features that form the group (empty for all cases).
    group : str
        The group (values joined with ``" & "``; ``""`` for all cases).
    direction : {"up", "down", ""}
        Direction of a change; empty for a level alert.
    observed : float or None
        This period's value (for a level alert: the bounded statistic).
    baseline : float or None
        The baseline's (or the CUSUM reference's) value.
    low, high : float or None
        The interval the value was expected in (change alerts), or the bounds
        of the threshold (level alerts).
    score : float or None
        ``z`` (change), the CUSUM statistic (sequential), None (level).
    limit : float or None
        The limit the score passed.
    message : str
        One sentence for people.
    baseline_periods : tuple of str
        The periods the comparison used: the baseline's for a change, the
        CUSUM reference's for a sequential alert, the trailing baseline's
        otherwise.
    missing_periods : tuple of str
        Months of the trailing window with no run in the history (after the
        history's first period).
    excluded_periods : tuple of str
        Months of the trailing window left out because they raised a change
        or sequential alert that is not in ``monitor.approved``.
    """

    kind: str
    severity: str
    audit: str
    period: str
    run_id: str
    metric: str
    attributes: tuple[str, ...]
    group: str
    direction: str
    observed: float | None
    baseline: float | None
    low: float | None
    high: float | None
    score: float | None
    limit: float | None
    message: str
    baseline_periods: tuple[str, ...] = ()
    missing_periods: tuple[str, ...] = ()
    excluded_periods: tuple[str, ...] = ()

    def line(self) -> str:
        """One line for cron mail: ``ALERT <audit> <period> <kind>: <message>`` (``WARN`` for warnings)."""
        tag = "ALERT" if self.severity == "fail" else "WARN"
        return f"{tag} {self.audit} {self.period} {self.kind}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """The alert as JSON-safe data (NaN as None)."""
        return jsonable(
            {
                "kind": self.kind,
                "severity": self.severity,
                "audit": self.audit,
                "period": self.period,
                "run_id": self.run_id,
                "metric": self.metric,
                "attributes": list(self.attributes),
                "group": self.group,
                "direction": self.direction,
                "observed": self.observed,
                "baseline": self.baseline,
                "low": self.low,
                "high": self.high,
                "score": self.score,
                "limit": self.limit,
                "message": self.message,
                "baseline_periods": list(self.baseline_periods),
                "missing_periods": list(self.missing_periods),
                "excluded_periods": list(self.excluded_periods),
            }
        )


@dataclass(frozen=True)
class MonitorResult:
    """The frozen result of one monitoring run.

    Attributes
    ----------
    audit : str
        The audit's name.
    period : str
        The period audited, ``YYYY-MM``.
    run : AuditResult
        The audit run of this period.
    alerts : tuple of Alert
        Level, change and sequential alerts, in that order.
    baseline : str
        What the period was compared with, in words.
    baseline_runs : tuple of str
        Run ids of the baseline.
    reference_runs : tuple of str
        Run ids of the recent periods (at most 24) from which each stream's
        CUSUM reference (the periods since its last restart) and
        overdispersion factor are drawn.
    streams : int
        Streams (metric x group) scored this period.
    change_limit, cusum_limit : float or None
        The limits on ``|z|`` and on the CUSUM this period (None when no
        stream was scored).
    history_file : Path
        The history file written for this run.
    alerts_file : Path or None
        ``alerts.json`` in the run folder, when the run was written.
    notes : tuple of str
        What an operator should know (first periods, engine changes, ...).
    pruned : tuple of PrunedRun
        Logs of earlier runs of this audit pruned after ``monitor.retention_days``.
    retention_days : int or None
        Days a run's log is kept (None: for ever).
    baseline_periods, missing_periods, excluded_periods : tuple of str
        The periods the baseline used; the months of its trailing window
        with no run in the history; those left out because they raised an
        alert that is not approved (see :class:`Alert`).
    """

    audit: str
    period: str
    run: AuditResult
    alerts: tuple[Alert, ...]
    baseline: str
    baseline_runs: tuple[str, ...]
    reference_runs: tuple[str, ...]
    streams: int
    change_limit: float | None
    cusum_limit: float | None
    history_file: Path
    alerts_file: Path | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    pruned: tuple[PrunedRun, ...] = field(default_factory=tuple)
    retention_days: int | None = None
    baseline_periods: tuple[str, ...] = ()
    missing_periods: tuple[str, ...] = ()
    excluded_periods: tuple[str, ...] = ()

    @property
    def run_id(self) -> str:
        """The run id of this period's audit run."""
        return self.run.run_id

    @property
    def exit_code(self) -> int:
        """1 when an alert has severity ``fail``, else 0 (the CLI's exit status)."""
        return 1 if any(a.severity == "fail" for a in self.alerts) else 0

    def lines(self) -> list[str]:
        """One line per alert, for cron mail."""
        return [a.line() for a in self.alerts]

    def alerts_json(self) -> str:
        """The alerts as a JSON list (the content of ``alerts.json``)."""
        return json.dumps([a.to_dict() for a in self.alerts], indent=2, ensure_ascii=False, allow_nan=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary of the monitoring run."""
        return jsonable(
            {
                "audit": self.audit,
                "period": self.period,
                "run_id": self.run_id,
                "run_dir": self.run.run_dir,
                "baseline": self.baseline,
                "baseline_runs": list(self.baseline_runs),
                "reference_runs": list(self.reference_runs),
                "streams": self.streams,
                "change_limit": self.change_limit,
                "cusum_limit": self.cusum_limit,
                "history_file": self.history_file,
                "alerts_file": self.alerts_file,
                "notes": list(self.notes),
                "retention_days": self.retention_days,
                "pruned": [r.to_dict() for r in self.pruned],
                "baseline_periods": list(self.baseline_periods),
                "missing_periods": list(self.missing_periods),
                "excluded_periods": list(self.excluded_periods),
                "exit_code": self.exit_code,
                "alerts": [a.to_dict() for a in self.alerts],
            }
        )


# --------------------------------------------------------------------------
# the period


def _check_period(period: Any, *, where: str = "period") -> str:
    if not isinstance(period, str) or not _PERIOD.match(period):
        raise SpecError(f"{where} must be a month in the form YYYY-MM (e.g. 2026-10). Got {period!r}.")
    return period


def previous_month(now: datetime | None = None) -> str:
    """The calendar month before ``now`` (default: the current UTC time), as ``YYYY-MM``."""
    now = now or datetime.now(UTC)
    year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def period_seed(seed: int, period: str) -> int:
    """The seed of a synthetic population for one period.

    ``int(sha256("insyn-monitor|<seed>|<period>")[:4]) mod 2^31``: distinct for
    every period, the same on every machine and in every run.

    Parameters
    ----------
    seed : int
        The audit spec's seed.
    period : str
        ``YYYY-MM``.
    """
    _check_period(period)
    digest = hashlib.sha256(f"insyn-monitor|{int(seed)}|{period}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31)


def _write_once(path: Path, text: str) -> None:
    """Write a file atomically unless it already exists (same name, same content)."""
    if path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(mask(text), encoding="utf-8")  # the privacy gate
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def audit_for_period(audit: AuditSpec, period: str, *, workdir: str | Path) -> tuple[AuditSpec, list[str]]:
    """The audit of one period.

    * Every ``{period}`` in ``population.file``, ``sheet``, ``sql``, ``url``,
      ``aggregated`` and ``synthetic`` is replaced by the period (e.g.
      ``decisions-{period}.parquet`` -> ``decisions-2026-10.parquet``).
    * A synthetic population is drawn for that benefit month: the population
      spec is written again with ``benefit_months: {first: <period>, last:
      <period>}`` to ``<workdir>/populations/<name>.<period>.<hash>.yaml``
      (kept, so the run can be repeated; the manifest hashes it) and the
      seed becomes :func:`period_seed` of the spec's seed and the period.
      Nothing else of the population changes.

    Parameters
    ----------
    audit : AuditSpec
        The monitoring spec.
    period : str
        ``YYYY-MM``.
    workdir : str or Path
        Folder for the per-period population specs (the history folder).

    Returns
    -------
    (AuditSpec, notes)
        The audit to run, and notes for the operator.

    Raises
    ------
    SpecError
        For a placeholder other than ``{period}``.
    """
    _check_period(period)
    source = audit.source or "<spec>"
    pop = audit.population.model_dump(mode="json", exclude_unset=True)
    notes: list[str] = []
    found = False
    for key in _SUBSTITUTED:
        value = pop.get(key)
        if not isinstance(value, str):
            continue
        for name in _PLACEHOLDER.findall(value):
            if name != "period":
                raise SpecError(
                    f"{source}: population.{key} has the placeholder {{{name}}}; the only placeholder is "
                    f"{{period}} (the month, YYYY-MM). Got {value!r}."
                )
        if "{period}" in value:
            found = True
            pop[key] = value.replace("{period}", period)
    kind = audit.population.source_kind
    changes: dict[str, Any] = {"population": pop}
    if kind == "synthetic":
        path = audit.resolve(pop["synthetic"])
        if not path.is_file():
            raise SpecError(
                f"{source}: population.synthetic names {pop['synthetic']!r}, which does not exist ({path})."
            )
        model = load_population_spec(path)
        derived = model.model_copy(update={"benefit_months": BenefitMonths(first=period, last=period)})
        body = yaml.safe_dump(derived.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
        digest = hashlib.sha256(body.encode()).hexdigest()[:12]
        header = (f"# {model.name} for the benefit month {period}, written by insyn monitor from\n"
                  f"# {path}. Only benefit_months differs from that file.\n")
        target = Path(workdir) / "populations" / f"{path.stem}.{period}.{digest}.yaml"
        _write_once(target, header + body)
        pop["synthetic"] = str(target.resolve())
        changes["seed"] = period_seed(audit.seed, period)
    elif not found:
        notes.append(f"population.{kind} has no {{period}} placeholder, so every period reads the same data.")
    return audit.with_options(**changes), notes


# --------------------------------------------------------------------------
# rows and scores


def _spec_hash(audit: AuditSpec) -> str:
    return hashlib.sha256(json.dumps(audit.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def _standard_errors(frame: pd.DataFrame, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Standard error of each row's value and whether the row is a proportion ``count / n``."""
    n = frame["n"].to_numpy(dtype="float64")
    value = frame["value"].to_numpy(dtype="float64")
    count = frame["count"].to_numpy(dtype="float64")
    kinds = frame["metric"].map(lambda m: METRICS[m].kind if m in METRICS else "").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        is_prop = (kinds != "count") & np.isfinite(count) & (n > 0) & np.isfinite(value) & (
            np.abs(count / n - value) <= 1e-9 * np.maximum(1.0, np.abs(value)))
        se_prop = np.sqrt(value * (1 - value) / n)
        t_rows = frame["metric"].isin(_T_INTERVAL).to_numpy()
        q = np.where(t_rows, stats.t.ppf(1 - alpha / 2, np.maximum(n - 1, 1)), stats.norm.ppf(1 - alpha / 2))
        se_ci = (frame["ci_high"].to_numpy(dtype="float64") - frame["ci_low"].to_numpy(dtype="float64")) / (2 * q)
    se = np.where(is_prop, se_prop, np.where(kinds == "count", np.nan, se_ci))
    return se, is_prop


def monitor_run_id(spec: AuditSpec) -> str:
    """A monitoring run's id: the audit's run id (:func:`audit.runner.make_run_id`) and a random suffix.

    The suffix starts with a letter (``-m`` and four hex digits): a digit-only ``-1234`` after a spec hash
    ending in six digits that read as a date would be masked as a personnummer by the privacy gate, and the
    history would lose the run's id.
    """
    return f"{make_run_id(spec)}-m{secrets.token_hex(2)}"


def _run_rows(result: AuditResult, *, audit_name: str, period: str, spec_hash: str, alpha: float) -> pd.DataFrame:
    """The run's metric rows in history form, with each value's standard error (monitor columns empty)."""
    m = result.metrics_frame()
    if "attributes" in m.columns:
        m = m.assign(attributes=m["attributes"].map(
            lambda a: " & ".join(map(str, a)) if isinstance(a, (list, tuple)) else ""))
    engine = dict(result.engine) if result.engine else {}
    rows = conform(m.assign(
        audit=audit_name, period=period, run_id=result.run_id, spec_hash=spec_hash,
        generated_at=datetime.now(UTC).isoformat(timespec="microseconds"),
        engine_hash=str(engine.get("definition_hash") or ""),
    ))
    rows["se"] = _standard_errors(rows, alpha)[0]
    return rows


def _key(frame: pd.DataFrame) -> pd.Series:
    """One string per stream: metric, attributes and group joined by the ASCII unit separator."""
    others = [frame["attributes"].astype("str"), frame["group"].astype("str")]
    return frame["metric"].astype("str").str.cat(others, sep=_SEP)


@dataclass
class StreamScores:
    """Scores of the current streams against one set of baseline runs."""

    z: np.ndarray
    value: np.ndarray
    sd: np.ndarray  # standard deviation of (current - baseline) under "no change"
    n: np.ndarray
    periods: np.ndarray
    phi: np.ndarray
    note: list[str]


def _usable(rows: pd.DataFrame, keys: set[str]) -> pd.DataFrame:
    """Rows of earlier runs that can serve a baseline: not suppressed, defined, of the given streams."""
    ok = rows[~rows["suppressed"] & np.isfinite(rows["value"].to_numpy(dtype="float64"))]
    ok = ok.assign(_key=_key(ok).to_numpy())
    return ok[ok["_key"].isin(keys)]


def score_streams(
    current: pd.DataFrame, base: pd.DataFrame, spread: pd.DataFrame, *, min_periods: int
) -> StreamScores:
    """Score each current stream (rows of ``current``) against the baseline rows.

    ``base`` gives the baseline value (pooled counts or the inverse-variance
    pooled estimate); ``spread`` (the longer run of earlier periods) gives
    each stream's own overdispersion factor ``Q / (D - 1)``, which is then
    moderated across the streams scored here (:func:`moderate_dispersion`).
    """
    size = len(current)
    out = StreamScores(z=np.full(size, np.nan), value=np.full(size, np.nan), sd=np.full(size, np.nan),
                  n=np.full(size, np.nan), periods=np.zeros(size, dtype=np.int64), phi=np.full(size, np.nan),
                  note=[""] * size)
    if size == 0:
        return out
    keys = _key(current).to_numpy()
    usable = _usable(base, set(keys))
    spread = _usable(spread, set(keys))
    out.periods = usable.groupby("_key")["period"].nunique().reindex(keys, fill_value=0).to_numpy(dtype=np.int64)
    _, cur_prop = _standard_errors(current, 0.05)
    base_prop = pd.Series(_standard_errors(usable, 0.05)[1], index=usable["_key"].to_numpy(), dtype=bool)
    prop = cur_prop & base_prop.groupby(level=0).all().reindex(keys, fill_value=False).to_numpy(dtype=bool)
    suppressed = current["suppressed"].to_numpy(dtype=bool)
    defined = np.isfinite(current["value"].to_numpy(dtype="float64"))
    enough = (out.periods >= min_periods) & ~suppressed & defined
    for i in np.flatnonzero(~enough):
        if suppressed[i]:
            out.note[i] = "suppressed this period (small group); CUSUM state carried over"
        elif not defined[i]:
            out.note[i] = "undefined this period; CUSUM state carried over"
        else:
            out.note[i] = f"baseline has {out.periods[i]} period(s); {min_periods} needed"
    p_rows, e_rows = enough & prop, enough & ~prop
    # each stream's own overdispersion factor Q / (D - 1), from the spread periods
    raw, dof = np.full(size, np.nan), np.zeros(size)
    if p_rows.any():
        k = keys[p_rows]
        wide = spread[spread["_key"].isin(set(k))]
        disp = dispersion_proportion(wide["count"].to_numpy(), wide["n"].to_numpy(), wide["_key"].to_numpy())
        raw[p_rows], dof[p_rows] = _own_factor(disp, k)
    if e_rows.any():
        k = keys[e_rows]
        wide = spread[spread["_key"].isin(set(k))]
        disp = dispersion_mean(wide["value"].to_numpy(), wide["se"].to_numpy(), wide["_key"].to_numpy())
        raw[e_rows], dof[e_rows] = _own_factor(disp, k)
    # shared across the streams scored here (empirical Bayes), at least 1
    phi_all, df_all = np.ones(size), np.zeros(size)
    if enough.any():
        phi_all[enough], df_all[enough] = moderate_dispersion(raw[enough], dof[enough])
    # rates: conditional (hypergeometric) mid-p scores against the pooled counts
    if p_rows.any():
        k = keys[p_rows]
        sub = usable[usable["_key"].isin(set(k))]
        pooled = sub.groupby("_key").agg(x=("count", "sum"), n=("n", "sum"))
        xb = pooled["x"].reindex(k).to_numpy(dtype="float64")
        nb = pooled["n"].reindex(k).to_numpy(dtype="float64")
        phi, df = phi_all[p_rows], df_all[p_rows]
        x = current["count"].to_numpy(dtype="float64")[p_rows]
        n = current["n"].to_numpy(dtype="float64")[p_rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            pbar = (xb + x) / (nb + n)
            out.sd[p_rows] = np.sqrt(phi * pbar * (1 - pbar) * (1 / n + 1 / nb))
            out.value[p_rows] = xb / nb
        z = proportion_scores(x, n, xb, nb) / np.sqrt(phi)
        out.z[p_rows] = np.where(phi > 1, t_to_normal(z, df), z)
        out.n[p_rows], out.phi[p_rows] = nb, phi
    # everything else: estimates with standard errors against the inverse-variance pooled baseline
    if e_rows.any():
        k = keys[e_rows]
        sub = usable[usable["_key"].isin(set(k))]
        pooled = dispersion_mean(sub["value"].to_numpy(), sub["se"].to_numpy(), sub["_key"].to_numpy())
        bv = pooled["value"].reindex(k).to_numpy(dtype="float64")
        bvar = pooled["var"].reindex(k).to_numpy(dtype="float64")
        phi, df = phi_all[e_rows], df_all[e_rows]
        se = current["se"].to_numpy(dtype="float64")[e_rows]
        z = mean_scores(current["value"].to_numpy(dtype="float64")[e_rows], se, bv, bvar, phi)
        with np.errstate(invalid="ignore"):
            out.sd[e_rows] = np.sqrt(phi * (se**2 + bvar))
        out.z[e_rows] = np.where(phi > 1, t_to_normal(z, df), z)
        out.value[e_rows], out.phi[e_rows] = bv, phi
        out.n[e_rows] = sub.groupby("_key")["n"].sum().reindex(k).to_numpy(dtype="float64")
        for i, no_base, no_score in zip(np.flatnonzero(e_rows), np.isnan(bv), ~np.isfinite(z)):
            if no_base:
                out.note[i] = "no standard error in a baseline period"
            elif no_score:
                out.note[i] = "no standard error this period"
    return out


def _own_factor(disp: pd.DataFrame, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A stream's own overdispersion factor ``Q / (D - 1)`` (NaN for one period) and its ``D - 1``."""
    periods = disp["periods"].reindex(keys).fillna(0).to_numpy(dtype="float64")
    q = disp["q"].reindex(keys).to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(periods >= 2, q / (periods - 1), np.nan)
    return raw, np.maximum(periods - 1, 0.0)


def _monitored_metrics(audit: AuditSpec, spec: MonitorSpec) -> list[str]:
    names = list(spec.metrics) if spec.metrics else [t.metric for t in audit.thresholds]
    names = list(dict.fromkeys(names)) or list(DEFAULT_METRICS)
    return names


# --------------------------------------------------------------------------
# the monitoring run


def _as_audit(spec: str | Path | AuditSpec) -> AuditSpec:
    if isinstance(spec, AuditSpec):
        return spec
    if isinstance(spec, (str, Path)):
        return load_spec(spec)
    raise SpecError(f"spec must be a path to an audit spec or an Audit. Got {type(spec).__name__}.")


def _check_options(arl: Any, k: Any, min_periods: Any) -> tuple[float, float, int]:
    try:
        a = float(arl)
    except (TypeError, ValueError):
        a = float("nan")
    if not (2 <= a <= 1e12):
        raise SpecError(
            f"arl (the in-control average run length, in periods) must be a number between 2 and 1e12. Got {arl!r}."
        )
    try:
        kk = float(k)
    except (TypeError, ValueError):
        kk = float("nan")
    if not (0 <= kk <= 10):
        raise SpecError(f"k (the CUSUM reference value) must be a number between 0 and 10. Got {k!r}.")
    if isinstance(min_periods, bool) or not isinstance(min_periods, (int, np.integer)) or min_periods < 1:
        raise SpecError(f"min_periods must be an integer >= 1. Got {min_periods!r}.")
    return a, kk, int(min_periods)


def run_monitor(
    spec: str | Path | AuditSpec,
    *,
    history: str | Path,
    period: str | None = None,
    out: str | Path | None = None,
    write: bool = True,
    arl: float | None = None,
    k: float | None = None,
    min_periods: int | None = None,
    run_id: str | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> MonitorResult:
    """Audit one period, add it to the history, compare it with the baseline and raise alerts.

    Parameters
    ----------
    spec : str, Path or AuditSpec
        The monitoring spec (an audit spec; its ``monitor:`` section chooses
        the baseline and the metrics, default ``trailing`` over 6 periods).
    history : str or Path
        The history folder (created when missing).
    period : str, optional
        The month audited, ``YYYY-MM``; default the previous calendar month
        (UTC), so that a job on the 1st audits the month just ended.
    out : str or Path, optional
        Folder for the run folder (default ``reports/``).
    write : bool, default True
        Write the run folder (and ``alerts.json`` in it). The history file is
        always written. A written period runs as ``insyn run`` runs it
        (:func:`audit.execution.plan_execution`): a population of more than
        ``execution.auto_above`` cases (500,000) in chunks on every core,
        with the run folder's ``results.json`` saying why; the spec's
        ``execution`` section pins the mode. Without a folder the period is
        held in memory.
    arl : float, optional
        In-control average run length of the whole monitor in periods: on
        average one false alarm in ``arl`` periods over all streams together.
        Default: the spec's ``monitor.arl`` (1000).
    k : float, optional
        CUSUM reference value in standard errors (default: ``monitor.k``, 0.5).
    min_periods : int, optional
        Earlier periods a stream needs before it is scored (default:
        ``monitor.min_periods``, 3).
    run_id : str, optional
        Run id (default: time, spec hash and a random suffix, unique even for
        two jobs started in the same millisecond).
    progress : callable, optional
        Passed to :meth:`audit.Audit.run`.

    Returns
    -------
    MonitorResult

    Raises
    ------
    SpecError
        For an invalid period, option or spec, or a baseline run id that is
        not in the history.
    DataError
        When the data or the history cannot be read.
    """
    audit = _as_audit(spec)
    mon = audit.monitor or MonitorSpec()
    arl_, k_, min_periods_ = _check_options(
        mon.arl if arl is None else arl,
        mon.k if k is None else k,
        mon.min_periods if min_periods is None else min_periods,
    )
    period = _check_period(period, where="period") if period is not None else previous_month()
    hist_dir = check_dir(history, create=True)
    names = _monitored_metrics(audit, mon)

    period_audit, notes = audit_for_period(audit, period, workdir=hist_dir)
    base = _baselines(audit, mon, hist_dir, period, min_periods=min_periods_, notes=notes)
    run_id = run_id or monitor_run_id(period_audit)
    done: dict[str, Any] = {}

    def annotate(result: AuditResult) -> AuditResult:
        """Compare the measured period with the history and put the alerts into the result."""
        rows = _run_rows(result, audit_name=audit.name, period=period, spec_hash=_spec_hash(audit),
                         alpha=audit.statistics.alpha)
        notes.extend(_check_measured(audit, names, set(rows["metric"])))
        notes.extend(_engine_note(rows, base))
        done.update(_compare(rows, base, names=names, baseline_kind=mon.baseline, arl=arl_, k=k_,
                             min_periods=min_periods_, audit=audit.name, period=period, run_id=result.run_id,
                             findings=result.findings))
        values = _value_rows(result, rows, audit=audit.name, period=period)
        done["history"] = pd.concat([done["history"], values], ignore_index=True).assign(
            language=audit.report.language)
        info = _monitor_info(base, period=period, history=hist_dir, streams=done["streams"], c=done["c"],
                             h=done["h"], arl=arl_, k=k_, min_periods=min_periods_, notes=notes)
        return result.with_monitor(alerts=[a.to_dict() for a in done["alerts"]], monitor=info)

    plan = plan_execution(period_audit) if write else None  # chunks need a run folder to write their parts to
    if plan is not None and plan.chunked:  # a large period runs as `insyn run` would run it: in chunks
        _, folder = run_chunked_audit(period_audit, out=out, run_id=run_id, chunk_size=plan.chunk_size,
                                      executor=plan.executor, workers=plan.workers, scheduler=plan.scheduler,
                                      why=plan.why, annotate=annotate)
        result = AuditResult.load(folder, decisions=False)
    else:
        result = run_audit(period_audit, out=out, run_id=run_id, progress=progress, write=write, annotate=annotate)
    history_file = write_history(hist_dir, done["history"], run_id=result.run_id)
    alerts = done["alerts"]
    alerts_file = _write_alerts(result.run_dir, alerts) if result.run_dir is not None else None
    if alerts_file is not None:  # the manifest covers alerts.json too, so insyn verify checks it
        amend_manifest(result.run_dir, by="insyn monitor", reason="alerts of this period", added=["alerts.json"])
    runs_dir = Path(result.run_dir).parent if result.run_dir is not None else (
        Path(out) if out is not None else Path.cwd() / "reports") / audit.name
    pruned = prune_logs(runs_dir, audit=audit.name, retention_days=mon.retention_days, keep=(result.run_id,))
    return MonitorResult(
        audit=audit.name,
        period=period,
        run=result,
        alerts=tuple(alerts),
        baseline=base.description,
        baseline_runs=base.baseline_ids,
        reference_runs=base.recent_ids,
        streams=done["streams"],
        change_limit=done["c"],
        cusum_limit=done["h"],
        history_file=history_file,
        alerts_file=alerts_file,
        notes=tuple(notes),
        baseline_periods=base.used,
        missing_periods=base.missing,
        excluded_periods=base.excluded,
        pruned=pruned,
        retention_days=mon.retention_days,
    )


def _compare(rows: pd.DataFrame, base: _Baselines, *, names: list[str], baseline_kind: str, arl: float, k: float,
             min_periods: int, audit: str, period: str, run_id: str, findings: Sequence[Any]) -> dict[str, Any]:
    """Scores, limits and alerts of one period against its baselines, and the rows for the history."""
    # scores of every stream of a monitored metric (suppressed groups carry their CUSUM state)
    monitored = rows["metric"].isin(names).to_numpy()
    cur = rows[monitored].reset_index(drop=True)
    keys = _key(cur).to_numpy()
    state = base.state.reindex(keys)
    since = state["cusum_since"].fillna("").astype("str")
    reference = rows_since(base.recent, since)
    ref_scores = score_streams(cur, reference, reference, min_periods=min_periods)
    base_scores = score_streams(cur, base.baseline, base.recent,
                         min_periods=min_periods if baseline_kind == "trailing" else 1)
    m = int((np.isfinite(ref_scores.z) | np.isfinite(base_scores.z)).sum())
    c = change_limit(1.0 / (2.0 * m * arl)) if m else None
    h = cusum_limit(4.0 * m * arl, k=k) if m else None
    up0 = state["cusum_upper"].fillna(0.0).to_numpy(dtype="float64")
    lo0 = state["cusum_lower"].fillna(0.0).to_numpy(dtype="float64")
    up, lo = cusum_statistics(up0, lo0, ref_scores.z, k=k)
    sig_up = up > h if h is not None else np.zeros(len(cur), dtype=bool)
    sig_lo = lo > h if h is not None else np.zeros(len(cur), dtype=bool)
    change = np.isfinite(base_scores.z) & (np.abs(base_scores.z) > c) if c is not None else np.zeros(len(cur), bool)

    ident = {"audit": audit, "period": period, "run_id": run_id}
    periods = {"baseline_periods": base.used, "missing_periods": base.missing, "excluded_periods": base.excluded}
    alerts = _baseline_alerts(base, **ident) + _level_alerts(findings, **ident)
    stream_alerts, alert_text = _stream_alerts(
        cur, base_scores, ref_scores, change=change, signals={"up": (sig_up, up), "down": (sig_lo, lo)},
        c=c, h=h, baseline=base.short, reference_periods=_periods_by_stream(reference),
        baseline_periods=base.used, **ident,
    )
    alerts = [replace(a, **periods) for a in alerts] + [
        replace(a, missing_periods=base.missing, excluded_periods=base.excluded) for a in stream_alerts]

    half = base_scores.sd * (np.nan if c is None else c)
    extra = {
        "monitored": True,
        "baseline_value": base_scores.value,
        "baseline_low": base_scores.value - half,
        "baseline_high": base_scores.value + half,
        "baseline_n": base_scores.n,
        "baseline_periods": base_scores.periods,
        "dispersion": base_scores.phi,
        "z": base_scores.z,
        "change_limit": np.nan if c is None else c,
        "reference_z": ref_scores.z,
        "cusum_upper": np.where(sig_up, 0.0, up),
        "cusum_lower": np.where(sig_lo, 0.0, lo),
        "cusum_h": np.nan if h is None else h,
        "cusum_since": np.where(sig_up | sig_lo, period, since.to_numpy(dtype=object)),
        "alert": alert_text,
        "note": [a or b for a, b in zip(base_scores.note, ref_scores.note)],
    }
    return {"alerts": alerts, "streams": m, "c": c, "h": h,
            "history": _history_frame(rows, monitored, extra, base.description)}


def _value_rows(result: AuditResult, rows: pd.DataFrame, *, audit: str, period: str) -> pd.DataFrame:
    """The run's public values as history rows: metric ``<value>:<indicator>``, ``public_value`` the value."""
    values = [dict(v) for v in result.to_dict().get("values") or []]
    if not values:
        return rows.iloc[0:0]
    frame = pd.DataFrame(values)
    ident: dict[str, Any] = {"audit": audit, "period": period, "run_id": result.run_id}
    if len(rows):
        ident.update(rows.iloc[0][["generated_at", "spec_hash", "engine_hash"]].to_dict())
    return conform(frame.assign(
        metric=frame["dimension"].astype("str") + ":" + frame["indicator"].astype("str"),
        attributes=frame["attributes"].map(lambda a: " & ".join(map(str, a)) if isinstance(a, (list, tuple)) else ""),
        public_value=frame["dimension"].astype("str"), monitored=False, **ident,
    ))


def _monitor_info(base: _Baselines, *, period: str, history: Path, streams: int, c: float | None, h: float | None,
                  arl: float, k: float, min_periods: int, notes: Sequence[str]) -> dict[str, Any]:
    """The ``monitor`` part of results.json: the period, the baseline used, the limits and the notes."""
    return {
        "period": period,
        "history": display_path(history),
        "baseline": {
            "kind": base.kind,
            "description": base.description,
            "window": list(base.window),
            "periods": list(base.used),
            "runs": list(base.baseline_ids),
            "missing": list(base.missing),
            "excluded": list(base.excluded),
            "approved": list(base.approved),
            "history_starts": base.first or None,
        },
        "reference_runs": list(base.recent_ids),
        "streams": streams,
        "change_limit": c,
        "cusum_limit": h,
        "k": k,
        "arl": arl,
        "min_periods": min_periods,
        "notes": list(notes),
    }


# --------------------------------------------------------------------------
# steps of a monitoring run


def _check_measured(audit: AuditSpec, names: list[str], measured: set[str]) -> list[str]:
    """Refuse a monitored metric that does not exist; note one that this run could not measure."""
    notes = []
    for name in names:
        if name in measured:
            continue
        if name not in METRICS:
            raise SpecError(
                f"{audit.source or '<spec>'}: monitor.metrics names {name!r}, which is not a metric of this audit. "
                f"Measured: {', '.join(sorted(measured))}."
            )
        notes.append(f"{name} was not measured in this run (the data lacks what it needs), so it is not monitored.")
    return notes


def _month_number(period: str) -> int:
    return int(period[:4]) * 12 + int(period[5:7]) - 1


def _month(number: int) -> str:
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


def months_before(period: str, count: int) -> tuple[str, ...]:
    """The ``count`` calendar months before ``period``, oldest first."""
    last = _month_number(period)
    return tuple(_month(last - i) for i in range(count, 0, -1))


def _list(periods: Sequence[str], most: int = 8) -> str:
    shown = ", ".join(periods[:most])
    return shown + (f" and {len(periods) - most} more" if len(periods) > most else "")


@dataclass
class _Baselines:
    """What a period is compared with: the baseline, the recent periods and the CUSUM state.

    ``window`` is the calendar window of a trailing baseline; of its months,
    ``used`` are in the baseline, ``missing`` have no run in the history
    although the history had started, ``excluded`` raised a change or
    sequential alert that is not approved, ``approved`` raised one and are
    used because ``monitor.approved`` names them. ``first`` is the first
    period of the audit in the history ('' when there is none).
    """

    kind: str
    baseline: pd.DataFrame
    baseline_ids: tuple[str, ...]
    description: str
    short: str
    recent: pd.DataFrame
    recent_ids: tuple[str, ...]
    state: pd.DataFrame
    window: tuple[str, ...]
    used: tuple[str, ...]
    missing: tuple[str, ...]
    excluded: tuple[str, ...]
    approved: tuple[str, ...]
    first: str
    engine_hash: str
    engine_period: str
    min_periods: int


def _baselines(audit: AuditSpec, mon: MonitorSpec, hist_dir: Path, period: str, *, min_periods: int,
               notes: list[str]) -> _Baselines:
    """Choose the baseline and the recent periods of ``period`` from the history (see the package docstring).

    The trailing baseline is the calendar window of ``monitor.periods``
    months before the period: a month without a run is *missing* (named,
    never silently replaced by an older month), a month that raised a change
    or sequential alert is *left out* unless ``monitor.approved`` names it.
    The recent periods (each stream's overdispersion and CUSUM reference)
    are the usable months of the 24 before the period.
    """
    runs = latest_runs(hist_dir, audit=audit.name)
    earlier = runs[runs["period"] < period]
    approved_set = set(mon.approved or ())
    drift = dict(zip(earlier["period"], earlier["drift"]))
    run_of = dict(zip(earlier["period"], earlier["run_id"]))
    first = str(earlier["period"].iloc[0]) if len(earlier) else ""

    def usable(p: str) -> bool:
        return p in run_of and (not drift[p] or p in approved_set)

    span = max(DISPERSION_PERIODS, mon.periods)
    recent_periods = [p for p in months_before(period, span) if usable(p)]
    recent_ids = tuple(run_of[p] for p in recent_periods)
    window = months_before(period, mon.periods)
    used = tuple(p for p in window if usable(p))
    missing = tuple(p for p in window if first and p >= first and p not in run_of)
    excluded = tuple(p for p in window if p in run_of and not usable(p))
    approved = tuple(p for p in window if p in run_of and drift[p] and p in approved_set)
    prev_id = str(earlier["run_id"].iloc[-1]) if len(earlier) else ""
    read = read_runs(hist_dir, list(dict.fromkeys([*recent_ids, *([prev_id] if prev_id else [])])))
    recent = read[read["run_id"].isin(set(recent_ids))]
    if mon.baseline == "trailing":
        kind = "trailing"
        baseline_ids = tuple(run_of[p] for p in used)
        baseline = recent[recent["run_id"].isin(set(baseline_ids))]
        got = f"{len(used)} of {mon.periods}" if len(used) < mon.periods else f"{mon.periods}"
        noun = "period" if mon.periods == 1 else "periods"
        span_text = "" if not used else f" {used[0]}" if used[0] == used[-1] else f" {used[0]} to {used[-1]}"
        extra = []
        if not first:
            extra.append("no earlier period in the history")
        if missing:
            extra.append(f"missing {_list(missing)}")
        if excluded:
            extra.append(f"left out after an alert that is not approved: {_list(excluded)}")
        short = f"trailing {got} {noun}{span_text}"
        description = short + (f" ({'; '.join(extra)})" if extra else "")
    else:
        kind = "run"
        baseline = read_runs(hist_dir, [mon.baseline])
        if baseline.empty:
            known = ", ".join(list(runs["run_id"])[-5:]) or "none"
            raise SpecError(
                f"{audit.source or '<spec>'}: monitor.baseline names the run {mon.baseline!r}, which is not in the "
                f"history {hist_dir}. Expected 'trailing' or the id of an earlier monitor run (latest: {known})."
            )
        baseline_ids = (mon.baseline,)
        b_audit, b_period = str(baseline["audit"].iloc[0]), str(baseline["period"].iloc[0])
        description = short = f"baseline run {mon.baseline} ({b_period})"
        used, missing, excluded, approved, window = (b_period,), (), (), (), ()
        if b_audit != audit.name:
            notes.append(f"the baseline run {mon.baseline} belongs to the audit {b_audit!r}, not {audit.name!r}.")
    if not first:
        notes.append(f"the history holds no earlier period of {audit.name}; changes are scored from "
                     f"{min_periods} earlier period(s) on.")
    elif kind == "trailing" and len(used) < min_periods and not (missing or excluded):
        notes.append(f"the history holds {len(used)} earlier period(s) of {audit.name} (it starts in {first}); "
                     f"changes are scored from {min_periods} on.")
    unapproved = sorted(approved_set - set(drift))
    if unapproved:
        notes.append(f"monitor.approved names {_list(unapproved)}, which the history holds no alerted run of "
                     "before this period; nothing to approve there.")
    prev = read[read["run_id"] == prev_id] if prev_id else read.iloc[0:0]
    state = prev.assign(_key=_key(prev).to_numpy()).drop_duplicates("_key").set_index("_key")
    return _Baselines(
        kind=kind, baseline=baseline, baseline_ids=baseline_ids, description=description, short=short,
        recent=recent,
        recent_ids=recent_ids, state=state[["cusum_upper", "cusum_lower", "cusum_since"]], window=window,
        used=used, missing=missing, excluded=excluded, approved=approved, first=first,
        engine_hash=str(earlier["engine_hash"].iloc[-1]) if len(earlier) else "",
        engine_period=str(earlier["period"].iloc[-1]) if len(earlier) else "", min_periods=min_periods,
    )


def _engine_note(rows: pd.DataFrame, base: _Baselines) -> list[str]:
    """A note when the engine's definition differs from the last earlier run's."""
    now = str(rows["engine_hash"].iloc[0]) if len(rows) else ""
    if now and base.engine_hash and base.engine_hash != now:
        return [f"the engine's definition changed since {base.engine_period} "
                f"(hash {base.engine_hash[:12]} -> {now[:12]})."]
    return []


def _baseline_alerts(base: _Baselines, *, audit: str, period: str, run_id: str) -> list[Alert]:
    """Alerts about the baseline itself: too short although the history is older (fail), or months missing (warn).

    A history that has just started (its first months) is not an alert: the
    notes say when scoring begins. A baseline that is short because months
    are missing or left out after alerts means this period could not be
    compared although it should have been: that is an alert, so that a gap in
    the job's runs never passes silently.
    """
    if base.kind != "trailing" or not base.first:
        return []
    window = f"the trailing {len(base.window)} months {base.window[0]} to {base.window[-1]}"
    parts = []
    if base.missing:
        parts.append(f"missing (no run in the history): {_list(base.missing)}")
    if base.excluded:
        parts.append(f"left out after a change or sequential alert that is not in monitor.approved: "
                     f"{_list(base.excluded)}")
    common = {"audit": audit, "period": period, "run_id": run_id, "kind": "baseline", "metric": "",
              "attributes": (), "group": "", "direction": "", "observed": None, "baseline": None, "low": None,
              "high": None, "score": None, "limit": None}
    if len(base.used) < base.min_periods and parts:
        state = "is empty" if not base.used else f"holds {len(base.used)} usable period(s)"
        return [Alert(severity="fail", **common, message=(
            f"the baseline {state}, {base.min_periods} needed, so this period was not compared with it: {window} - "
            + "; ".join(parts) + ". Run the missing months (insyn monitor --period YYYY-MM) or approve alerted "
            "months in the spec's monitor.approved."))]
    if base.missing:
        return [Alert(severity="warn", **common, message=(
            f"the baseline uses {len(base.used)} of {window}: {parts[0]}."))]
    return []


def _periods_by_stream(rows: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    """The periods of each stream in the rows, sorted."""
    if rows.empty:
        return {}
    frame = pd.DataFrame({"key": _key(rows).to_numpy(), "period": rows["period"].astype("str").to_numpy()})
    return {k: tuple(sorted(set(g))) for k, g in frame.groupby("key")["period"]}


def rows_since(rows: pd.DataFrame, since: pd.Series) -> pd.DataFrame:
    """Rows of each stream from the periods after its CUSUM last restarted (``since``, '' for never)."""
    start = since.reindex(_key(rows).to_numpy()).fillna("").to_numpy(dtype=object)
    return rows[rows["period"].to_numpy(dtype=object) > start]


def _level_alerts(findings: Sequence[Any], *, audit: str, period: str, run_id: str) -> list[Alert]:
    """Alerts from the thresholds' findings: FAIL and ERROR (severity fail), WARN (severity warn)."""
    out = []
    for f in findings:
        if f["status"] == "PASS":
            continue
        out.append(Alert(
            kind="level", severity="warn" if f["status"] == "WARN" else "fail", audit=audit, period=period,
            run_id=run_id, metric=str(f["metric"]), attributes=tuple(f["attributes"] or ()),
            group=str(f["group"] or ""), direction="", observed=_num(f["observed"]), baseline=None,
            low=_num(f["bound_min"]), high=_num(f["bound_max"]), score=None, limit=None,
            message=f"{f['name']}: {f['message']}",
        ))
    return out


def _stream_alerts(cur: pd.DataFrame, base: StreamScores, ref: StreamScores, *, change: np.ndarray,
                   signals: dict[str, tuple[np.ndarray, np.ndarray]], c: float | None, h: float | None,
                   baseline: str, reference_periods: dict[str, tuple[str, ...]] | None = None, audit: str,
                   period: str, run_id: str, baseline_periods: tuple[str, ...] = ()
                   ) -> tuple[list[Alert], list[str]]:
    """Change and sequential alerts of the streams, and the alert text stored per stream."""
    alerts: list[Alert] = []
    text = [""] * len(cur)
    metrics = cur["metric"].astype("str").to_numpy()
    groups = cur["group"].astype("str").to_numpy()
    values = cur["value"].to_numpy(dtype="float64")
    attrs = [tuple(a.split(" & ")) if a else () for a in cur["attributes"]]
    keys = _key(cur).to_numpy()
    reference_periods = reference_periods or {}
    common = {"audit": audit, "period": period, "run_id": run_id, "severity": "fail"}
    for i in np.flatnonzero(change):
        assert c is not None
        z, metric, bv = float(base.z[i]), str(metrics[i]), float(base.value[i])
        low, high = bv - c * float(base.sd[i]), bv + c * float(base.sd[i])
        alerts.append(Alert(
            kind="change", metric=metric, attributes=attrs[i], group=groups[i], direction="up" if z > 0 else "down",
            observed=float(values[i]), baseline=bv, low=low, high=high, score=z, limit=c,
            message=(f"{metric} for {_who(attrs[i], groups[i])} {'rose' if z > 0 else 'fell'} to "
                     f"{_fmt(values[i], metric)}, outside the expected {_fmt(low, metric)} to {_fmt(high, metric)} "
                     f"(baseline {_fmt(bv, metric)} over the {baseline}; z = {z:+.1f}, limit {c:.1f})."),
            baseline_periods=baseline_periods, **common,
        ))
        text[i] = "change"
    for side, (signal, stat) in signals.items():
        for i in np.flatnonzero(signal):
            assert h is not None
            metric, rv = str(metrics[i]), float(ref.value[i])
            alerts.append(Alert(
                kind="sequential", metric=metric, attributes=attrs[i], group=groups[i], direction=side,
                observed=float(values[i]), baseline=rv, low=None, high=None, score=float(stat[i]), limit=h,
                message=(f"{metric} for {_who(attrs[i], groups[i])} has {'risen' if side == 'up' else 'fallen'} "
                         f"over recent periods: CUSUM {float(stat[i]):.1f} > h = {h:.1f} (this period "
                         f"{_fmt(values[i], metric)}, reference {_fmt(rv, metric)}, z = {float(ref.z[i]):+.1f})."),
                baseline_periods=reference_periods.get(str(keys[i]), ()), **common,
            ))
            text[i] = ",".join(x for x in (text[i], f"sequential_{side}") if x)
    return alerts, text


def _history_frame(rows: pd.DataFrame, monitored: np.ndarray, extra: dict[str, Any], baseline: str) -> pd.DataFrame:
    """The run's history rows: the metric rows plus the monitor's columns on the monitored ones."""
    full = rows.copy()
    where = np.flatnonzero(monitored)
    for name, column in extra.items():
        fill = {"str": "", "float": np.nan, "int": 0, "bool": False}[HISTORY_COLUMNS[name]]
        values = np.full(len(full), fill, dtype=object)
        values[where] = np.broadcast_to(np.asarray(column, dtype=object), (len(where),))
        full[name] = values
    full["baseline"] = baseline
    return full


def _write_alerts(run_dir: Path | str, alerts: Sequence[Alert]) -> Path:
    """Write ``alerts.json`` into a run folder atomically."""
    path = Path(run_dir) / "alerts.json"
    body = masked_json([a.to_dict() for a in alerts], indent=2, allow_nan=False)
    tmp = path.with_name(f".alerts.json.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(body + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
