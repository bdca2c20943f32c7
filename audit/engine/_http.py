"""HTTP engines: a decision service that the municipality runs.

Modern municipal case systems call their rules as a service: Sundsvall's
open-source case management evaluates its "regelverk" as DMN decision tables
on an Operaton (Camunda 7) engine; vendors expose REST endpoints. The
``http`` adapter audits such a service as it runs, over HTTP, without access
to its code.

Two protocols are built in:

``insyn`` (default)
    ``POST url`` with ``{"cases": [{...}, ...]}`` (``batch_size`` cases per
    request) and an answer ``{"decisions": [{"case_id", "outcome",
    "amount", "reasons"}, ...]}``.
``dmn``
    The Camunda/Operaton REST call ``POST
    {url}/decision-definition/key/{decision}/evaluate`` with one case per
    request as typed variables (``{"variables": {"rent": {"value": 5000,
    "type": "Double"}}}``) and a result list (``[{"outcome": {"value":
    "grant", "type": "String"}, ...}]``, one entry per matched rule).

``mapping`` renames the fields of either protocol: keys are the contract's
names (``cases``, ``decisions``, ``case_id``, ``outcome``, ``amount``,
``score``, ``reasons``, ``error``), values the service's. At most
``concurrency`` requests are in flight.

Retries
-------
A municipal service under load answers ``429 Too Many Requests`` or ``503
Service Unavailable``, often with a ``Retry-After`` header (seconds, or an
HTTP date). Every outcome of a request is accounted for, with tenacity:

* 2xx with a JSON body: the decisions;
* a timeout, a connection error, any 5xx or a 429: retried, at most
  ``retries`` more times. The wait before retry *n* is ``backoff_s * 2**(n-1)``
  plus a random jitter in ``[0, jitter_s]`` (so that concurrent requests do
  not come back in step); after a 429 or 503 with ``Retry-After``, at least
  the time the service asked for (plus the jitter);
* any other 4xx, or a 2xx that is not JSON: not retried;
* ``retry_max_s`` bounds the time one request spends: a retry whose wait
  would end later than ``retry_max_s`` after the first attempt is not made
  (a ``Retry-After`` of two minutes against a bound of one minute fails at
  once). One request therefore ends within ``retry_max_s`` plus one
  ``timeout_s``.

A request that fails for good marks its cases, and only its cases, as
errors with the reason (the last answer, the number of attempts and, when
the bound stopped it, the wait that would have passed it); the other
requests go on.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import numpy as np
import pandas as pd

from audit.engine._protocol import short_repr
from audit.exceptions import SpecError

__all__ = ["HttpEngine", "parse_retry_after"]

_MAPPING_KEYS = ("cases", "decisions", "case_id", "outcome", "amount", "score", "reasons", "error")
_DECISION_FIELDS = ("case_id", "outcome", "amount", "score", "reasons", "error")
_INT32 = 2**31 - 1


_RETRY_AFTER_STATUSES = frozenset({429, 503})
"""Answers whose ``Retry-After`` header is honoured."""


class _RequestFailed(Exception):
    """A request failed for good (after retries, or with a 4xx answer)."""


class _Retryable(Exception):
    """One attempt failed in a way that a later attempt may not (timeout, connection, 5xx, 429)."""

    def __init__(self, reason: str, *, retry_after: float | None = None, header: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.header = header


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110, 10.2.3).

    Parameters
    ----------
    value : str or None
        The header: delay seconds (``"120"``) or an HTTP date
        (``"Wed, 21 Oct 2026 07:28:00 GMT"``).
    now : datetime, optional
        The current time (aware), for an HTTP date; default, now in UTC.

    Returns
    -------
    float or None
        Seconds from ``now`` (0 for a date in the past), or None when the
        header is missing or is neither form (then the backoff applies).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:  # pragma: no cover - older Pythons return None instead of raising
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpEngine:
    """A decision service reached over HTTP.

    Parameters
    ----------
    url : str
        ``insyn``: the endpoint that takes the POST. ``dmn``: the REST base
        (``http://host:8080/engine-rest``) or the full ``.../evaluate`` URL.
    batch_size : int, default 500
        Cases per request (``insyn``; a DMN request holds one case).
    timeout_s : float, default 10
        Seconds allowed per request (connect, write, read).
    retries : int, default 3
        Further attempts after a timeout, a connection error, a 5xx or a 429 answer.
    concurrency : int, default 4
        Requests in flight at the same time.
    protocol : {"insyn", "dmn"}, default "insyn"
    mapping : mapping, optional
        Contract name -> field name of the service (see module docstring).
    headers : mapping, optional
        Extra request headers (e.g. an API key).
    decision : str, optional
        The DMN decision key (required for ``dmn`` unless ``url`` ends in
        ``/evaluate``).
    backoff_s : float, default 0.5
        Wait before the first retry; doubled before each further one.
    jitter_s : float, optional
        Upper bound of the random time added to each wait (default:
        ``backoff_s``).
    retry_max_s : float, default 60
        Bound on the time one request may take from its first attempt to the
        start of its last (see the module docstring).
    name, version : str, optional
        Shown in reports (default name: the service's host and path).
    """

    batches_itself = True

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 500,
        timeout_s: float = 10.0,
        retries: int = 3,
        concurrency: int = 4,
        protocol: str = "insyn",
        mapping: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        decision: str | None = None,
        backoff_s: float = 0.5,
        jitter_s: float | None = None,
        retry_max_s: float = 60.0,
        name: str | None = None,
        version: str | None = None,
    ) -> None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in {"http", "https"} or not parts.netloc:
            raise SpecError(f"engine.url must be an http:// or https:// URL. Got {short_repr(url)}.")
        for key, value, lo in (("batch_size", batch_size, 1), ("retries", retries, 0), ("concurrency", concurrency, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise SpecError(f"engine.{key} must be an integer >= {lo}. Got {short_repr(value)}.")
        jitter_s = backoff_s if jitter_s is None else jitter_s
        for key, value, strict in (("timeout_s", timeout_s, True), ("backoff_s", backoff_s, False),
                                   ("jitter_s", jitter_s, False), ("retry_max_s", retry_max_s, True)):
            number = not isinstance(value, bool) and isinstance(value, (int, float))
            if not number or value < 0 or (strict and value == 0):
                raise SpecError(f"engine.{key} must be a number {'>' if strict else '>='} 0. Got {short_repr(value)}.")
        if protocol not in {"insyn", "dmn"}:
            raise SpecError(f"engine.protocol must be one of insyn, dmn. Got {short_repr(protocol)}.")
        mapping = dict(mapping or {})
        for key in mapping:
            if key not in _MAPPING_KEYS:
                raise SpecError(f"engine.mapping.{key} is not a known key. Known keys: {', '.join(_MAPPING_KEYS)}.")
        if protocol == "dmn":
            if url.rstrip("/").endswith("/evaluate"):
                self.endpoint = url
            elif decision:
                self.endpoint = f"{url.rstrip('/')}/decision-definition/key/{quote(decision, safe='')}/evaluate"
            else:
                raise SpecError("engine.decision (the DMN decision key) is required when engine.protocol is dmn.")
        else:
            self.endpoint = url
        self.url = url
        self.batch_size = batch_size
        self.timeout_s = float(timeout_s)
        self.retries = retries
        self.concurrency = concurrency
        self.protocol = protocol
        self.decision = decision
        self.backoff_s = float(backoff_s)
        self.jitter_s = float(jitter_s)
        self.retry_max_s = float(retry_max_s)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", **dict(headers or {})}
        self._map = {k: mapping.get(k, k) for k in _MAPPING_KEYS}
        self.name: str = name or f"{parts.netloc}{parts.path}"
        self.version: str = version or "unversioned"
        self.definition_hash: str | None = None
        self.requests_made = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpEngine(url={self.url!r}, protocol={self.protocol!r}, batch_size={self.batch_size})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_lock"]  # locks do not pickle; a worker process gets its own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ calls
    def decide(self, cases: pd.DataFrame) -> pd.DataFrame:
        """Send the cases to the service and collect its decisions.

        Cases whose request failed for good get an ``error`` with the reason
        (e.g. ``HTTP 503 ... after 4 attempts``).
        """
        import httpx

        n = len(cases)
        if n == 0:
            return _frame([])
        ids = cases["case_id"].astype("str").to_numpy(dtype=object)
        if self.protocol == "dmn":
            records = cases.to_dict("records")
            types = {c: _dmn_type(cases[c]) for c in cases.columns}
            jobs = [(i, i + 1, _dmn_body(rec, types)) for i, rec in enumerate(records)]
        else:
            jobs = []
            for a in range(0, n, self.batch_size):
                b = min(a + self.batch_size, n)
                records_json = cases.iloc[a:b].to_json(orient="records", double_precision=15, date_format="iso")
                jobs.append((a, b, f'{{{json.dumps(self._map["cases"])}: {records_json}}}'))
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        with httpx.Client(timeout=httpx.Timeout(self.timeout_s), limits=limits, headers=self.headers) as client:
            workers = min(self.concurrency, len(jobs))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="insyn-http") as pool:
                parts = list(pool.map(lambda job: self._run_job(client, ids, job), jobs))
        return _frame([row for part in parts for row in part])

    def _run_job(self, client: Any, ids: np.ndarray, job: tuple[int, int, str]) -> list[dict[str, Any]]:
        a, b, body = job
        try:
            payload = self._post(client, body)
            if self.protocol == "dmn":
                return self._read_dmn(payload, ids[a])
            return self._read_insyn(payload)
        except _RequestFailed as exc:
            reason = str(exc)
            return [
                {"case_id": cid, "outcome": None, "amount": None, "reasons": "", "error": reason} for cid in ids[a:b]
            ]

    def _post(self, client: Any, body: str) -> Any:
        """POST one request with retries (see the module docstring); return the parsed JSON answer."""
        from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, stop_before_delay

        attempts = self.retries + 1
        retrying = Retrying(
            stop=stop_after_attempt(attempts) | stop_before_delay(self.retry_max_s),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=time.sleep,
        )
        try:
            return retrying(self._attempt, client, body)
        except RetryError as exc:
            state = exc.last_attempt
            last = state.exception()
            assert isinstance(last, _Retryable)
            made = state.attempt_number
            done = f"after {made} attempt{'s' if made > 1 else ''}"
            if made < attempts:  # the time bound stopped it, not the number of retries
                upcoming = self._wait_after(last, made)
                asked = (f"the service asked to retry after {last.retry_after:g} s (Retry-After)"
                         if last.retry_after is not None else f"the next wait of {upcoming:.2f} s")
                done += f"; {asked} would pass engine.retry_max_s = {self.retry_max_s:g} s"
            raise _RequestFailed(f"{last.reason} ({done})") from None

    def _attempt(self, client: Any, body: str) -> Any:
        """One POST: the answer's JSON, or :class:`_Retryable`, or :class:`_RequestFailed`."""
        import httpx

        with self._lock:
            self.requests_made += 1
        try:
            resp = client.post(self.endpoint, content=body.encode("utf-8"))
        except httpx.TimeoutException:
            raise _Retryable(f"timeout: no answer from {self.endpoint} within {self.timeout_s:g} s") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"cannot reach {self.endpoint}: {type(exc).__name__}: {exc}") from None
        code = resp.status_code
        if code >= 500 or code == 429:
            header = resp.headers.get("Retry-After") if code in _RETRY_AFTER_STATUSES else None
            raise _Retryable(f"HTTP {code} from {self.endpoint}: {_excerpt(resp.text)}",
                             retry_after=parse_retry_after(header), header=header)
        if code >= 400:
            raise _RequestFailed(f"HTTP {code} from {self.endpoint}: {_excerpt(resp.text)}")
        try:
            return resp.json()
        except ValueError:
            raise _RequestFailed(f"the answer from {self.endpoint} is not JSON: {_excerpt(resp.text)}") from None

    def _wait(self, state: Any) -> float:
        """tenacity's wait: exponential backoff plus jitter, at least a Retry-After."""
        exc = state.outcome.exception() if state.outcome is not None else None
        base = self._wait_after(exc, state.attempt_number)
        return base + (random.uniform(0.0, self.jitter_s) if self.jitter_s > 0 else 0.0)

    def _wait_after(self, exc: Any, attempt: int) -> float:
        """The wait before the next attempt, without jitter."""
        backoff = self.backoff_s * 2 ** (attempt - 1)
        retry_after = getattr(exc, "retry_after", None)
        return max(backoff, retry_after) if retry_after is not None else backoff

    # ------------------------------------------------------------------ answers
    def _read_insyn(self, payload: Any) -> list[dict[str, Any]]:
        key = self._map["decisions"]
        if not isinstance(payload, Mapping) or not isinstance(payload.get(key), list):
            got = f"keys {', '.join(map(str, payload))}" if isinstance(payload, Mapping) else type(payload).__name__
            raise _RequestFailed(f"the answer has no {key!r} list (got {got})")
        rows = []
        back = {v: k for k, v in self._map.items() if k in _DECISION_FIELDS}
        for item in payload[key]:
            if not isinstance(item, Mapping):
                continue  # no case_id to attach it to: the case shows up as unanswered
            rows.append({back.get(k, k): v for k, v in item.items()})
        return rows

    def _read_dmn(self, payload: Any, case_id: str) -> list[dict[str, Any]]:
        if not isinstance(payload, list):
            raise _RequestFailed(f"the DMN answer must be a list of rule results. Got {type(payload).__name__}")
        if not payload:
            raise _RequestFailed(f"no rule of decision {self.decision or self.endpoint!r} matched this case")
        if len(payload) > 1:
            raise _RequestFailed(
                f"decision {self.decision or self.endpoint!r} returned {len(payload)} results; expected one "
                "(use hit policy UNIQUE or FIRST)"
            )
        back = {v: k for k, v in self._map.items() if k in _DECISION_FIELDS}
        row: dict[str, Any] = {}
        result = payload[0]
        if not isinstance(result, Mapping):
            raise _RequestFailed(f"a DMN result must be a mapping of outputs. Got {type(result).__name__}")
        for out, typed in result.items():
            value = typed.get("value") if isinstance(typed, Mapping) else typed
            row[back.get(out, out)] = value
        row["case_id"] = case_id
        return [row]


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Build a decision frame from answer rows; lists of reason codes are joined with ';'."""
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame({"case_id": pd.Series([], dtype="str")})
    for col in ("outcome", "reasons", "error"):
        if col not in frame.columns:
            frame[col] = pd.Series([None] * len(frame), dtype="str") if col != "reasons" else ""
    if "amount" not in frame.columns:
        frame["amount"] = np.nan
    if len(frame) and frame["reasons"].dtype == object:
        frame["reasons"] = frame["reasons"].map(
            lambda r: ";".join(map(str, r)) if isinstance(r, (list, tuple)) else ("" if r is None else r)
        )
    if "case_id" in frame.columns and len(frame) and frame["case_id"].dtype == object:
        frame["case_id"] = frame["case_id"].map(lambda v: v if v is None else str(v))
    return frame


def _dmn_type(col: pd.Series) -> str:
    dtype = col.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "Boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "Long" if len(col) and col.abs().max() > _INT32 else "Integer"
    if pd.api.types.is_float_dtype(dtype):
        return "Double"
    return "String"


def _dmn_body(record: Mapping[str, Any], types: Mapping[str, str]) -> str:
    variables: dict[str, Any] = {}
    for key, value in record.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            variables[str(key)] = {"value": None, "type": "Null"}
            continue
        kind = types[key]
        if isinstance(value, np.generic):
            value = value.item()
        if kind in {"Integer", "Long"}:
            value = int(value)
        elif kind == "Double":
            value = float(value)
        elif kind == "Boolean":
            value = bool(value)
        else:
            value = str(value)
        variables[str(key)] = {"value": value, "type": kind}
    return json.dumps({"variables": variables})
