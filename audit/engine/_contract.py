"""The decision contract, enforced: every case asked for gets exactly one decision.

An engine under audit is not trusted. It may forget cases, answer twice,
invent case ids, use a label nobody agreed on, pay a negative amount, crash on
one unusual household or hang. If the audit silently dropped those cases, the
rates it reports would be computed on a population the engine chose, which is
exactly the kind of hidden selection an audit exists to expose.

:func:`run_engine` therefore calls the engine in batches and checks each answer
against the decision contract of DESIGN.md. Every case asked for ends up as
exactly one row of :attr:`EngineRun.decisions`, in input order: an ``ok`` row
with the engine's decision, or an ``error`` row (outcome ``"error"``, amount
NaN) with the reason. Rows for cases that were never asked for are kept apart
in :attr:`EngineRun.extra`. When a batch raises, it is split in halves and
retried until the failing cases are isolated, so one bad household does not
take 99,999 good ones down with it. A run whose errors exceed the error
budget stops with an :class:`audit.exceptions.EngineError` that names the
engine, the count, the budget and the first reasons.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from audit._columns import ERROR_LABEL, STATUS_ERROR, STATUS_OK
from audit._ids import is_unique
from audit.engine._parallel import Caller
from audit.engine._protocol import Engine, short_repr
from audit.exceptions import CheckCode, DataError, EngineError, FailureCollector, SpecError

__all__ = ["EngineRun", "run_engine"]

_CONTRACT_COLUMNS = ("case_id", "outcome", "amount", "score", "reasons", "error")
_OUTPUT_COLUMNS = ("case_id", "outcome", "amount", "score", "reasons", "status", "error_reason")
_RESERVED = ("status", "error_reason")
_MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class EngineRun:
    """The outcome of calling an engine on a set of cases.

    Attributes
    ----------
    decisions : pandas.DataFrame
        One row per input case, in input order: ``case_id``, ``outcome``
        (``"error"`` for errored cases), ``amount`` (NaN for errors),
        ``score``, ``reasons``, ``status`` (``"ok"`` or ``"error"``),
        ``error_reason`` (``""`` when ok), then any extra columns the engine
        returned (a column named ``status`` or ``error_reason`` is renamed
        ``engine_status`` / ``engine_error_reason``).
    extra : pandas.DataFrame
        Rows the engine returned for case ids it was not asked for
        (``case_id``, ``reason``). They are reported, never merged.
    failures : pandas.DataFrame
        One tidy row per problem found (``check``, ``column``, ``value``,
        ``case_id``, ``reason``), in the manner of pandera's lazy validation:
        the table of an :class:`audit.exceptions.FailureCollector`, its
        ``check`` a :class:`audit.exceptions.CheckCode`.
    n_cases : int
        Number of cases asked for (equals ``len(decisions)``).
    n_errors : int
        Number of cases that ended as errors.
    duration_s : float
        Wall time of the whole run, in seconds.
    batches : int
        Number of ``decide`` calls made, including those that isolated
        failing cases.
    engine_name, engine_version : str
        The engine's ``name`` and ``version``.
    definition_hash : str or None
        The engine's ``definition_hash`` when it has one.
    error_budget : float
        The share of cases that was allowed to end as errors.
    """

    decisions: pd.DataFrame
    extra: pd.DataFrame
    failures: pd.DataFrame
    n_cases: int
    n_errors: int
    duration_s: float
    batches: int
    engine_name: str
    engine_version: str
    definition_hash: str | None
    error_budget: float

    @property
    def error_rate(self) -> float:
        """Share of cases that ended as errors (NaN for an empty run: no cases, no rate)."""
        return self.n_errors / self.n_cases if self.n_cases else math.nan

    @property
    def cases_per_second(self) -> float:
        """Cases decided per second of wall time (NaN when nothing was timed)."""
        return self.n_cases / self.duration_s if self.duration_s > 0 else math.nan


# ---------------------------------------------------------------------------
# options and input


def _check_options(
    labels: Sequence[str],
    batch_size: int | None,
    workers: int,
    error_budget: float,
    timeout_s: float | None,
) -> tuple[str, ...]:
    if isinstance(labels, str) or not isinstance(labels, Sequence) or not labels:
        raise SpecError(f"The 'labels' option must be a non-empty list of outcome labels. Got {short_repr(labels)}.")
    bad = [lab for lab in labels if not isinstance(lab, str) or not lab]
    if bad:
        raise SpecError(f"The 'labels' option must hold non-empty strings. Got {short_repr(bad[0])}.")
    if ERROR_LABEL in labels:
        raise SpecError("The 'labels' option must not contain 'error': it marks cases the engine could not decide.")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise SpecError(f"The 'batch_size' option must be an integer >= 1. Got {short_repr(batch_size)}.")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SpecError(f"The 'workers' option must be an integer >= 1. Got {short_repr(workers)}.")
    if (
        isinstance(error_budget, bool)
        or not isinstance(error_budget, (int, float))
        or not 0 <= error_budget <= 1
    ):
        raise SpecError(f"The 'error_budget' option must be a number between 0 and 1. Got {short_repr(error_budget)}.")
    if timeout_s is not None and (
        isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0
    ):
        raise SpecError(f"The 'timeout_s' option must be a number > 0. Got {short_repr(timeout_s)}.")
    return tuple(labels)


def _case_ids(cases: Any) -> pd.Series:
    """Return the input case ids as a str Series indexed 0..n-1, or raise DataError."""
    if not isinstance(cases, pd.DataFrame):
        raise DataError(f"The cases must be a pandas DataFrame. Got {type(cases).__name__}.")
    if "case_id" not in cases.columns:
        raise DataError(
            "The cases have no 'case_id' column. Expected a unique string id per case; "
            f"columns given: {', '.join(map(str, cases.columns[:12]))}{' ...' if len(cases.columns) > 12 else ''}."
        )
    raw = cases["case_id"]
    if raw.isna().any():
        pos = int(np.flatnonzero(raw.isna().to_numpy())[0])
        raise DataError(f"Column 'case_id' must have a value in every row. Got a missing value in row {pos}.")
    ids = raw if pd.api.types.is_string_dtype(raw.dtype) and raw.dtype != object else raw.astype("str")
    if not is_unique(ids):
        dup = ids.duplicated()
        first = ids[dup].iloc[0]
        raise DataError(
            f"Column 'case_id' must be unique. Got {int(dup.sum())} duplicated value(s), the first {first!r}."
        )
    return ids.reset_index(drop=True)


def _engine_identity(engine: Any) -> tuple[str, str, str | None]:
    if not isinstance(engine, Engine):
        missing = [a for a in ("name", "version", "decide") if not hasattr(engine, a)]
        raise SpecError(
            f"The engine must have name, version and decide(cases). "
            f"Got a {type(engine).__name__} without {', '.join(missing)}."
        )
    dhash = getattr(engine, "definition_hash", None)
    return str(engine.name), str(engine.version), (str(dhash) if dhash else None)


def _spans(n: int, batch_size: int | None, workers: int, engine: Any) -> list[tuple[int, int]]:
    if n == 0:
        return [(0, 0)]
    if getattr(engine, "batches_itself", False) and workers == 1:
        size = n
    elif batch_size is not None:
        size = batch_size
    elif workers > 1:
        size = max(1, math.ceil(n / (workers * 4)))
    else:
        size = n
    return [(a, min(a + size, n)) for a in range(0, n, size)]


# ---------------------------------------------------------------------------
# checking one answer


class _BatchResult:
    """A checked answer for the cases ``asked`` (positions ``start`` onwards)."""

    __slots__ = ("extra", "failures", "frame", "start")

    def __init__(
        self,
        start: int,
        frame: pd.DataFrame,
        failures: FailureCollector,
        extra: list[tuple[str, str]],
    ) -> None:
        self.start = start
        self.frame = frame
        self.failures = failures
        self.extra = extra


def _const_str(value: str, m: int) -> pd.Series:
    """A str Series of ``m`` copies of ``value`` (built by repetition, which is fast for Arrow strings)."""
    return pd.Series([value], dtype="str").repeat(m).reset_index(drop=True)


def _str_from_codes(codes: np.ndarray, categories: list[str]) -> pd.Series:
    """A str Series whose row i is ``categories[codes[i]]``."""
    return pd.Series(pd.Categorical.from_codes(codes, categories=categories)).astype("str")


def _answer_failures() -> FailureCollector:
    """A collector for the problems of one answer (every row kept: each stands for a case)."""
    return FailureCollector("the engine's answer", what="the engine's answer", error=EngineError, cap=None)


def _all_errors(
    start: int, asked: pd.Series, check: CheckCode, column: str, value: Any, reason: str
) -> _BatchResult:
    m = len(asked)
    frame = pd.DataFrame(
        {
            "case_id": asked,
            "outcome": _const_str(ERROR_LABEL, m),
            "amount": np.full(m, np.nan),
            "score": np.full(m, np.nan),
            "reasons": _const_str("", m),
            "status": _const_str(STATUS_ERROR, m),
            "error_reason": _const_str(reason, m),
        }
    )
    failures = _answer_failures()
    failures.add_mask(
        check, column=column, mask=np.ones(m, dtype=bool), values=np.full(m, value, dtype=object),
        case_ids=asked, reason=reason,
    )
    return _BatchResult(start, frame, failures, [])


def _id_strings(col: pd.Series) -> pd.Series:
    if pd.api.types.is_string_dtype(col.dtype) and col.dtype != object:
        return col
    return col.astype("str")


def _numeric(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return (float values, mask of values that are given but not numbers)."""
    if pd.api.types.is_bool_dtype(col.dtype):
        return np.full(len(col), np.nan), col.notna().to_numpy()
    if pd.api.types.is_numeric_dtype(col.dtype):
        return col.to_numpy(dtype=float, na_value=np.nan), np.zeros(len(col), dtype=bool)
    num = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan).copy()
    given = col.notna().to_numpy()
    bad = given & np.isnan(num)
    if col.dtype == object:  # True/False coerce to 1/0; an amount is never a truth value
        is_bool = col.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
        bad |= is_bool
        num[is_bool] = np.nan
    return num, bad


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _check_answer(start: int, asked: pd.Series, answer: Any, labels: tuple[str, ...]) -> _BatchResult:
    """Hold one answer to the contract; see the module docstring.

    ``asked`` holds the batch's case ids (str, index 0..m-1). Checks are
    vectorised; messages are built only for the rows that fail.
    """
    m = len(asked)
    if not isinstance(answer, pd.DataFrame):
        return _all_errors(
            start, asked, CheckCode.CONTRACT, "", type(answer).__name__,
            f"decide() returned a {type(answer).__name__}; expected a pandas DataFrame",
        )
    if answer.columns.duplicated().any():
        dup = answer.columns[answer.columns.duplicated()][0]
        return _all_errors(
            start, asked, CheckCode.UNIQUE, str(dup), str(dup), f"the answer has the column {dup!r} twice"
        )
    for col in ("case_id", "outcome"):
        if col not in answer.columns:
            shown = ", ".join(map(str, answer.columns[:10])) or "none"
            return _all_errors(
                start, asked, CheckCode.MISSING_COLUMN, col, None,
                f"the answer has no {col!r} column (columns given: {shown})",
            )
    ans = answer.reset_index(drop=True)
    aid = _id_strings(ans["case_id"])
    failures = _answer_failures()
    extra: list[tuple[str, str]] = []
    reasons_by_pos: dict[int, list[str]] = {}

    if len(ans) == m and aid.equals(asked):
        aligned = ans
    else:
        asked_np = asked.to_numpy(dtype=object)
        aid_np = aid.to_numpy(dtype=object)
        asked_index = pd.Index(asked_np)
        known = aid.isin(asked_index).to_numpy()
        counts = aid.value_counts(dropna=False)
        dup = aid.map(counts).to_numpy() > 1
        for pos in np.flatnonzero(~known):
            value = aid_np[pos]
            if _missing(value):
                extra.append(("", "a row without a case_id"))
            else:
                extra.append((str(value), "not among the cases asked for in this batch"))
        good = known & ~dup
        aligned = ans[good].set_axis(pd.Index(aid_np[good]), axis=0).reindex(asked_index).reset_index(drop=True)
        answered = np.zeros(m, dtype=bool)
        answered[asked_index.get_indexer(aid_np[good])] = True
        dup_counts = counts[counts > 1]
        for pos in np.flatnonzero(~answered):
            cid = asked_np[pos]
            if cid in dup_counts.index:
                msg = f"the engine answered {int(dup_counts[cid])} times for this case; expected exactly one decision"
                failures.add(CheckCode.DUPLICATE_CASE_ID, column="case_id", value=cid, case_id=cid, reason=msg)
            else:
                msg = "the engine gave no answer for this case"
                failures.add(CheckCode.MISSING_CASE_ID, column="case_id", value=cid, case_id=cid, reason=msg)
            reasons_by_pos[int(pos)] = [msg]

    present = np.ones(m, dtype=bool)
    if reasons_by_pos:
        present[list(reasons_by_pos)] = False

    def flag(mask: np.ndarray, check: CheckCode, column: str, values: Any, make: Any) -> None:
        rows = np.flatnonzero(mask & present)
        if not rows.size:
            return
        picked = np.asarray(values)[rows]
        messages = [make(value) for value in picked]
        failures.add_mask(
            check, column=column, mask=np.ones(rows.size, dtype=bool), values=picked,
            case_ids=asked.iloc[rows], reason=messages,
        )
        for pos, msg in zip(rows.tolist(), messages, strict=True):
            reasons_by_pos.setdefault(pos, []).append(msg)

    if "error" in aligned.columns:
        err = aligned["error"]
        if err.dtype == bool:
            err_mask = err.to_numpy()
        else:
            err_text = _id_strings(err)
            err_mask = (err_text.notna() & (err_text != "")).to_numpy()
            if err_mask.any():  # look closer only at the rows that say something
                err_values = err_text.to_numpy(dtype=object)
                for pos in np.flatnonzero(err_mask):
                    v = err_values[pos]
                    if not str(v).strip() or v is False or v == "False":
                        err_mask[pos] = False
                    else:
                        err_values[pos] = str(v).strip()
                flag(err_mask, CheckCode.ENGINE_ERROR, "error", err_values,
                     lambda v: f"the engine reported: {str(v)[:_MESSAGE_LIMIT]}")
        present &= ~err_mask  # the engine's own reason says it all; its other fields are moot

    outcome = aligned["outcome"]
    ok_label = outcome.isin(labels).to_numpy()
    if not ok_label.all():
        shown_labels = ", ".join(labels)
        flag(
            ~ok_label, CheckCode.IN_SET, "outcome", outcome.to_numpy(dtype=object),
            lambda v: "outcome is missing" if _missing(v)
            else f"unknown outcome label {short_repr(v)}; expected one of {shown_labels}",
        )

    if "amount" in aligned.columns:
        amount, not_num = _numeric(aligned["amount"])
        if not_num.any():
            raw = aligned["amount"].to_numpy(dtype=object)
            flag(not_num, CheckCode.DTYPE, "amount", raw,
                 lambda v: f"amount must be a number >= 0. Got {short_repr(v)}")
        with np.errstate(invalid="ignore"):
            neg = amount < 0
            inf = np.isinf(amount)
        if neg.any() or inf.any():
            flag(neg & ~not_num, CheckCode.IN_RANGE, "amount", amount, lambda v: f"amount must be a number >= 0. Got {v:g}")
            flag(inf & ~neg, CheckCode.IN_RANGE, "amount", amount, lambda v: f"amount must be a finite number. Got {v:g}")
    else:
        amount = np.full(m, np.nan)

    if "score" in aligned.columns:
        score, not_num = _numeric(aligned["score"])
        if not_num.any():
            raw = aligned["score"].to_numpy(dtype=object)
            flag(not_num, CheckCode.DTYPE, "score", raw, lambda v: f"score must be a number. Got {short_repr(v)}")
    else:
        score = np.full(m, np.nan)

    if "reasons" in aligned.columns:
        reasons = _id_strings(aligned["reasons"]).fillna("")
    else:
        reasons = _const_str("", m)

    if reasons_by_pos:
        bad_pos = np.fromiter(sorted(reasons_by_pos), dtype=np.int64, count=len(reasons_by_pos))
        bad = np.zeros(m, dtype=bool)
        bad[bad_pos] = True
        status = _str_from_codes(bad.astype(np.int8), [STATUS_OK, STATUS_ERROR])
        texts = [""] + ["; ".join(reasons_by_pos[int(p)]) for p in bad_pos]
        codes = np.zeros(m, dtype=np.int64)
        codes[bad_pos] = np.arange(1, len(bad_pos) + 1)
        error_reason = pd.Series(np.asarray(texts, dtype=object)[codes], dtype="str")
        out = _id_strings(outcome).where(~bad, ERROR_LABEL) if not bad.all() else _const_str(ERROR_LABEL, m)
        amount = np.where(bad, np.nan, amount)
        score = np.where(bad, np.nan, score)
        reasons = reasons.where(~bad, "")
    else:
        status = _const_str(STATUS_OK, m)
        error_reason = _const_str("", m)
        out = _id_strings(outcome)

    columns: dict[str, Any] = {
        "case_id": asked,
        "outcome": out,
        "amount": amount,
        "score": score,
        "reasons": reasons,
        "status": status,
        "error_reason": error_reason,
    }
    for col in aligned.columns:
        if col in _CONTRACT_COLUMNS:
            continue
        columns[f"engine_{col}" if col in _RESERVED else str(col)] = aligned[col]
    return _BatchResult(start, pd.DataFrame(columns), failures, extra)


# ---------------------------------------------------------------------------
# the run


class _Run:
    """State of one :func:`run_engine` call."""

    def __init__(
        self, caller: Caller, cases: pd.DataFrame, ids: pd.Series, labels: tuple[str, ...], allowed: int
    ) -> None:
        self.caller = caller
        self.cases = cases
        self.ids = ids
        self.labels = labels
        self.allowed = allowed
        self.results: list[_BatchResult] = []
        self.calls = 0
        self.n_errors = 0

    def _add(self, result: _BatchResult) -> None:
        self.results.append(result)
        self.n_errors += int((result.frame["status"] == STATUS_ERROR).sum())

    def handle(self, a: int, b: int, get_answer: Any) -> None:
        asked = self.ids.iloc[a:b].reset_index(drop=True)
        self.calls += 1
        try:
            answer = get_answer()
        except (SpecError, DataError):
            raise  # the engine is misconfigured for every case: no point in isolating rows
        except TimeoutError as exc:
            detail = str(exc) or "no answer in time"
            self._add(_all_errors(a, asked, CheckCode.TIMEOUT, "", None, f"timeout: {detail}"))
            return
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"[:_MESSAGE_LIMIT]
            if b - a == 1:
                self._add(_all_errors(a, asked, CheckCode.EXCEPTION, "", None, f"the engine raised {text}"))
            elif self.n_errors > self.allowed:
                self._add(
                    _all_errors(
                        a, asked, CheckCode.EXCEPTION, "", None,
                        f"the engine raised {text} for a batch of {b - a} cases holding this case "
                        "(not isolated further: the error budget was already exceeded)",
                    )
                )
            else:
                mid = (a + b) // 2
                for lo, hi in ((a, mid), (mid, b)):
                    batch = self.cases.iloc[lo:hi]
                    self.handle(lo, hi, lambda batch=batch: self.caller.call(batch))
            return
        self._add(_check_answer(a, asked, answer, self.labels))


def run_engine(
    engine: Engine,
    cases: pd.DataFrame,
    *,
    labels: Sequence[str],
    batch_size: int | None = None,
    workers: int = 1,
    error_budget: float = 0.01,
    timeout_s: float | None = None,
) -> EngineRun:
    """Call an engine on every case and hold each answer to the decision contract.

    Parameters
    ----------
    engine : Engine
        The engine under audit (anything with ``name``, ``version`` and
        ``decide(cases)``).
    cases : pandas.DataFrame
        The engine's input: one row per case with a unique ``case_id``.
    labels : sequence of str
        The outcome labels the engine may use (the spec's
        ``outcomes.labels``).
    batch_size : int, optional
        Cases per ``decide`` call. Default: all cases in one call, or, with
        ``workers > 1``, four batches per worker. Engines that batch
        themselves (``batches_itself``, the http adapter) get all cases at once.
    workers : int, default 1
        Number of local worker processes. Use more than one for slow
        per-case engines; a vectorised engine gains nothing.
    error_budget : float, default 0.01
        Share of cases allowed to end as errors before the run stops.
    timeout_s : float, optional
        Seconds allowed per ``decide`` call. The cases of a batch that
        overruns become errors with reason ``timeout``. Default: the
        engine's ``default_timeout_s`` attribute when it has one (a Python
        engine: 600 s), else no limit.

    Returns
    -------
    EngineRun
        Decisions for every case in input order, plus counts and timing.

    Raises
    ------
    DataError
        When ``cases`` has no ``case_id`` column or its ids are missing or
        not unique.
    SpecError
        When an option is invalid, or the engine raises ``SpecError`` /
        ``DataError`` (a configuration problem that concerns every case).
    EngineError
        When more than ``error_budget * len(cases)`` cases end as errors. The
        message names the engine, the count, the budget and the first five
        reasons; ``failures`` holds every problem found.

    Notes
    -----
    An engine that raises for a batch is called again on each half of it,
    recursively, so that only the cases that really fail become errors
    (once the budget is exceeded the remaining halves are not isolated
    further, since the run stops anyway). An engine that raises
    ``TimeoutError`` marks its batch as timed out without isolation.
    """
    labels = _check_options(labels, batch_size, workers, error_budget, timeout_s)
    if timeout_s is None:  # an engine may bring its own default (a Python engine: 600 s per batch)
        timeout_s = getattr(engine, "default_timeout_s", None)
    name, version, dhash = _engine_identity(engine)
    ids = _case_ids(cases)
    n = len(ids)
    allowed = math.floor(error_budget * n + 1e-9)
    t0 = time.perf_counter()
    spans = _spans(n, batch_size, workers, engine)
    with Caller(engine, workers=workers if n else 1, timeout_s=timeout_s) as caller:
        run = _Run(caller, cases, ids, labels, allowed)
        pending = [(a, b, caller.submit(cases.iloc[a:b])) for a, b in spans]
        for a, b, p in pending:
            run.handle(a, b, lambda p=p: caller.result(p))
    results = sorted(run.results, key=lambda r: r.start)
    decisions = pd.concat([r.frame for r in results], ignore_index=True) if len(results) > 1 else results[0].frame
    duration = time.perf_counter() - t0
    if len(decisions) != n or not decisions["case_id"].equals(ids):
        raise AssertionError("run_engine lost track of a case; this is a bug in Insyn")  # pragma: no cover
    collected = FailureCollector(f"engine {name!r}", what="the engine's answers", error=EngineError, cap=None)
    for r in results:
        collected.extend(r.failures)
    failures = collected.table()
    extra = pd.DataFrame([e for r in results for e in r.extra], columns=["case_id", "reason"]).astype("str")
    n_errors = int((decisions["status"] == STATUS_ERROR).sum())
    if n_errors > allowed:
        message = _budget_message(name, version, decisions, n, n_errors, error_budget, allowed)
        raise EngineError(message, failures=failures)
    return EngineRun(
        decisions=decisions,
        extra=extra,
        failures=failures,
        n_cases=n,
        n_errors=n_errors,
        duration_s=duration,
        batches=run.calls,
        engine_name=name,
        engine_version=version,
        definition_hash=dhash,
        error_budget=float(error_budget),
    )


def _budget_message(
    name: str, version: str, decisions: pd.DataFrame, n: int, n_errors: int, budget: float, allowed: int
) -> str:
    errs = decisions.loc[decisions["status"] == STATUS_ERROR, ["case_id", "error_reason"]].head(5)
    first = "; ".join(f"{cid}: {reason}" for cid, reason in errs.itertuples(index=False))
    return (
        f"Engine {name!r} (version {version}) could not decide {n_errors} of {n} cases "
        f"({n_errors / n:.1%}), more than its error budget of {budget:.1%} ({allowed} cases). "
        f"First reasons: {first}. Fix the engine, or raise engine.error_budget in the spec "
        "if these errors are expected."
    )
