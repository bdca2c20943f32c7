"""Real HTTP decision services for the http adapter's tests.

Two servers, each a ``ThreadingHTTPServer`` on 127.0.0.1 with a free port,
served from a thread:

* :class:`InsynServer` speaks Insyn's default protocol: ``POST /decide`` with
  ``{"cases": [...]}``, answer ``{"decisions": [...]}``;
* :class:`DmnServer` speaks the Camunda 7 / Operaton REST call ``POST
  /engine-rest/decision-definition/key/{key}/evaluate`` with typed variables
  and a list of typed rule results, including Camunda's error bodies.

Both decide with :func:`screen_case`, a plain-Python copy of the screen in
``examples/engines/per_case_engine.py`` (the tests compute their expected
decisions with a vectorised pandas version, independently of this one), and
both record what happened: every request, how many cases it held, and the
largest number of requests in flight at once. Faults for the retry tests
(``fail_first``: answer ``fail_status``, 503 by default, with an optional
``Retry-After`` header, a string or a function of the request number;
``slow_first``: answer too late) and a hook to corrupt answers are set per
server.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ADULT_NORM = {1: 5220.0, 2: 8510.0}
OTHER_ADULT_NORM = 3940.0
CHILD_NORM = 3820.0
INCOME = (
    "income_wages", "income_sickness", "income_unemployment", "income_parental", "income_pension",
    "income_housing_allowance", "income_child_allowance", "income_maintenance", "income_student", "income_other",
)
COSTS = ("rent", "electricity", "home_insurance")
_DMN_PATH = re.compile(r"^/engine-rest/decision-definition/key/(?P<key>[^/]+)/evaluate$")
_DMN_TYPES = {"String": str, "Double": (int, float), "Integer": int, "Long": int, "Boolean": bool}


def screen_case(case: dict[str, Any]) -> dict[str, Any]:
    """Decide one case (the simplified screen of the per-case example engine)."""
    if case["registry_read_failed"]:
        return {"outcome": "refer", "amount": None, "reasons": "REGISTRY_READ_FAILED"}
    if case["application_type"] == "new":
        return {"outcome": "refer", "amount": None, "reasons": "NEW_APPLICATION"}
    children = len([a for a in str(case.get("child_ages") or "").split(";") if a.strip()])
    norm = ADULT_NORM[int(case["adults"])] + OTHER_ADULT_NORM * int(case["other_adults"]) + CHILD_NORM * children
    need = norm + sum(float(case[c]) for c in COSTS) - sum(float(case[c]) for c in INCOME)
    if need <= 0:
        return {"outcome": "deny", "amount": 0.0, "reasons": "NO_NEED_INCOME_SUFFICIENT"}
    return {"outcome": "grant", "amount": float(math.floor(need + 0.5)), "reasons": ""}


def expected_screen(cases: Any) -> Any:
    """The screen's decisions computed column-wise with pandas (a second, independent implementation).

    Returns a frame with ``case_id``, ``outcome``, ``amount``, ``reasons`` in the order of ``cases``.
    """
    import numpy as np
    import pandas as pd

    children = cases["child_ages"].fillna("").str.split(";").map(lambda parts: sum(1 for p in parts if p.strip()))
    norm = cases["adults"].map(ADULT_NORM) + OTHER_ADULT_NORM * cases["other_adults"] + CHILD_NORM * children
    need = norm + cases[list(COSTS)].sum(axis=1) - cases[list(INCOME)].sum(axis=1)
    failed, new = cases["registry_read_failed"].to_numpy(), (cases["application_type"] == "new").to_numpy()
    outcome = np.select([failed, new, need.to_numpy() <= 0], ["refer", "refer", "deny"], "grant")
    reasons = np.select([failed, new, need.to_numpy() <= 0],
                        ["REGISTRY_READ_FAILED", "NEW_APPLICATION", "NO_NEED_INCOME_SUFFICIENT"], "")
    amount = np.where(outcome == "grant", np.floor(need.to_numpy() + 0.5), np.where(outcome == "deny", 0.0, np.nan))
    return pd.DataFrame({"case_id": cases["case_id"].to_numpy(), "outcome": outcome, "amount": amount,
                         "reasons": reasons})


def assert_screened(decisions: Any, cases: Any, *, every_branch: bool = False, blank_reasons: bool = False) -> None:
    """The decisions equal the screen computed column-wise with pandas (:func:`expected_screen`).

    ``blank_reasons`` reads missing reasons as ``""``; ``every_branch``
    also requires the data to exercise grant, deny and refer.
    """
    import numpy as np

    exp = expected_screen(cases)
    assert decisions["case_id"].tolist() == exp["case_id"].tolist()
    assert decisions["outcome"].tolist() == exp["outcome"].tolist()
    np.testing.assert_array_equal(decisions["amount"].to_numpy(dtype=float), exp["amount"].to_numpy())
    reasons = decisions["reasons"].fillna("") if blank_reasons else decisions["reasons"]
    assert reasons.tolist() == exp["reasons"].tolist()
    if every_branch:
        assert set(exp["outcome"]) == {"grant", "deny", "refer"}  # the data exercise every branch


class _Server:
    """Common machinery: start/stop, request log, faults, concurrency counter."""

    def __init__(
        self,
        *,
        delay_s: float = 0.0,
        fail_first: int = 0,
        slow_first: int = 0,
        slow_s: float = 1.0,
        corrupt: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
        fail_status: int = 503,
        retry_after: str | Callable[[int], str] | None = None,
    ) -> None:
        self.delay_s = delay_s
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.retry_after = retry_after
        self.slow_first = slow_first
        self.slow_s = slow_s
        self.corrupt = corrupt
        self.requests: list[dict[str, Any]] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        self._count = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # answer small requests at once, not after a delayed ACK

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                outer._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="test-engine-server", daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> _Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def _reply(self, handler: BaseHTTPRequestHandler, status: int, payload: Any,
               headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode("utf-8")
        try:
            handler.send_response(status)
            for key, value in (headers or {}).items():
                handler.send_header(key, value)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            pass

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        with self._lock:
            self._count += 1
            number = self._count
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        start = time.monotonic()
        try:
            if number <= self.slow_first:
                time.sleep(self.slow_s)
            if self.delay_s:
                time.sleep(self.delay_s)
            headers: dict[str, str] = {}
            if number <= self.fail_first:
                status, payload, n_cases = self.fail_status, {"message": "service unavailable (test fault)"}, None
                if self.retry_after is not None:
                    headers["Retry-After"] = (self.retry_after(number) if callable(self.retry_after)
                                              else self.retry_after)
            else:
                status, payload, n_cases = self.answer(handler.path, raw)
            with self._lock:
                self.requests.append(
                    {"number": number, "path": handler.path, "status": status, "n_cases": n_cases,
                     "start": start, "end": time.monotonic()}
                )
            self._reply(handler, status, payload, headers)
        finally:
            with self._lock:
                self.active -= 1

    def answer(self, path: str, raw: bytes) -> tuple[int, Any, int | None]:  # pragma: no cover - overridden
        raise NotImplementedError


class InsynServer(_Server):
    """Insyn's default protocol at ``POST /decide``."""

    @property
    def url(self) -> str:
        return f"{self.base}/decide"

    def answer(self, path: str, raw: bytes) -> tuple[int, Any, int | None]:
        if path != "/decide":
            return 404, {"message": f"no such endpoint {path}"}, None
        try:
            body = json.loads(raw)
            cases = body["cases"]
        except (ValueError, KeyError, TypeError):
            return 400, {"message": "expected {\"cases\": [...]}"}, None
        decisions = [{"case_id": c["case_id"], **screen_case(c)} for c in cases]
        if self.corrupt is not None:
            decisions = self.corrupt(decisions)
        return 200, {"decisions": decisions}, len(cases)


class DmnServer(_Server):
    """The Camunda/Operaton DMN REST ``evaluate`` call, for decision key ``screening``."""

    key = "screening"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.variables_seen: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"{self.base}/engine-rest"

    def answer(self, path: str, raw: bytes) -> tuple[int, Any, int | None]:
        m = _DMN_PATH.match(path)
        if m is None:
            return 404, {"type": "NotFoundException", "message": f"no resource at {path}"}, None
        if m["key"] != self.key:
            return 404, {"type": "RestException",
                         "message": f"No matching decision definition with key: {m['key']} and no tenant-id"}, None
        try:
            variables = json.loads(raw)["variables"]
        except (ValueError, KeyError, TypeError):
            return 400, {"type": "InvalidRequestException", "message": "expected {\"variables\": {...}}"}, None
        values: dict[str, Any] = {}
        for name, typed in variables.items():
            kind, value = typed.get("type"), typed.get("value")
            if kind == "Null" and value is None:
                values[name] = None
                continue
            expected = _DMN_TYPES.get(kind)
            bool_as_number = kind != "Boolean" and isinstance(value, bool)
            ok = expected is not None and isinstance(value, expected) and not bool_as_number
            if not ok:
                return 400, {"type": "InvalidRequestException",
                             "message": f"Cannot evaluate decision {self.key}: Cannot convert value '{value}' of "
                                        f"type '{kind}' for variable '{name}'"}, None
            values[name] = value
        with self._lock:
            self.variables_seen.append(variables)
        decided = screen_case(values)
        amount = decided["amount"]
        result = {
            "outcome": {"value": decided["outcome"], "type": "String", "valueInfo": {}},
            "amount": {"value": amount, "type": "Null" if amount is None else "Double", "valueInfo": {}},
            "reasons": {"value": decided["reasons"], "type": "String", "valueInfo": {}},
        }
        results = [result]
        if self.corrupt is not None:
            results = self.corrupt(results)
        return 200, results, 1
