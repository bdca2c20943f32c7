"""The demo's report.html in a real browser: headless Chromium, driven over the DevTools protocol.

The report promises to work offline, on a phone and on paper. This test
opens the demo run's ``report.html`` in Debian's Chromium and checks what a
reader would meet:

* no network request other than the file itself (``Network.requestWillBeSent``)
  and no console error, failed resource or exception (``Runtime`` and ``Log``
  events; the page's Content-Security-Policy turns any attempt to fetch
  something into such an error);
* every chart (``svg.chart``) laid out with a non-zero size and marks in it;
* on a 375-pixel phone screen nothing overflows the page sideways;
* in print, the header and summary fit on the first A4 page;
* a screenshot that is not blank (decoded with zlib and struct, no Pillow).

Chromium is driven with ``--remote-debugging-pipe`` (the DevTools protocol
over file descriptors 3 and 4, NUL-separated JSON), so no WebSocket client
and no browser download is needed. ``scripts/ensure-chromium.sh`` installs
Chromium when missing (``make test`` runs it). Without Chromium the test is
skipped with the reason, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
_A4_PRINTABLE_PX = (210 - 28) / 25.4 * 96, (297 - 28) / 25.4 * 96
"""A4 minus the print stylesheet's 14 mm margins, in CSS pixels (96 per inch)."""


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


@pytest.fixture(scope="module")
def chromium() -> str:
    """Path of the Chromium binary, or skip (fail under CI) with the reason."""
    path = _find_chromium()
    if path is None:
        reason = "Chromium not found: run scripts/ensure-chromium.sh (apt-get install chromium)."
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason + " CI is set, so the browser test may not be skipped.")
        pytest.skip(reason)
    return path


class _Browser:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        # move the child's ends above 4 so that dup2 onto 3 and 4 cannot clobber them
        self._child_in = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        self._child_out = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_child_r)
        os.close(from_child_w)
        child_in, child_out = self._child_in, self._child_out

        def _wire() -> None:  # runs in the child before exec
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.log = profile.parent / "chromium.log"
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            [binary, *_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
            preexec_fn=_wire,
            close_fds=False,
        )
        os.close(child_in)
        os.close(child_out)
        self._write, self._read = to_child_w, from_child_r
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    # -------------------------------------------------------------- wire
    def _receive(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._read], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed the debugging pipe; see {self.log}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = True, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Send a command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._write, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(max(0.0, deadline - time.monotonic()))
            if reply is None:
                raise TimeoutError(f"no answer to {method} within {timeout} s")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for an event (or return it if it already came)."""
        for e in self.events:
            if e.get("method") == event:
                return e
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self._receive(deadline - time.monotonic())
            if reply and "method" in reply:
                self.events.append(reply)
                if reply["method"] == event:
                    return reply
        raise TimeoutError(f"no {event} within {timeout} s")

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page and return its JSON value."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluation failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the browser may already be gone
            self.call("Browser.close", session=False, timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for fd in (self._write, self._read):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log_file.close()


@pytest.fixture(scope="module")
def browser(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Browser]:
    """A headless Chromium with one page attached."""
    profile = tmp_path_factory.mktemp("chromium") / "profile"
    b = _Browser(chromium, profile)
    try:
        target = b.call("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = b.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, session=False)
        b.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            b.call(f"{domain}.enable")
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def loaded(browser: _Browser, demo_run: Any) -> dict[str, Any]:
    """The demo's report.html loaded at a desktop size; what happened while loading."""
    report = Path(demo_run.run_dir) / "report.html"
    assert report.is_file(), f"the demo run wrote no report.html in {demo_run.run_dir}"
    browser.call(
        "Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    )
    browser.events.clear()
    browser.call("Page.navigate", {"url": report.as_uri()})
    browser.wait_for("Page.loadEventFired")
    # let late console messages or requests arrive
    browser.call("Runtime.evaluate", {"expression": "new Promise(r => setTimeout(r, 300))", "awaitPromise": True})
    return {
        "path": report,
        "url": report.as_uri(),
        "events": list(browser.events),
        "html": report.read_text(encoding="utf-8"),
    }


def _decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """Decode an 8-bit PNG (grey, RGB, grey+alpha or RGBA) to raw bytes: (width, height, channels, pixels)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    height = depth = colour = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0, f"unsupported PNG: depth {depth}, interlace {interlace}"
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw = zlib.decompress(idat)
    stride = width * channels
    out = bytearray(stride * height)
    prev = bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = prev[i]
                c = prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        out[row * stride : (row + 1) * stride] = line
        prev = line
    return width, height, channels, bytes(out)


def test_no_network_request_and_no_console_error(loaded: dict[str, Any]) -> None:
    events = loaded["events"]
    requests = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    assert requests == [loaded["url"]], f"the report made requests besides loading itself: {requests}"
    failed = [e["params"] for e in events if e["method"] == "Network.loadingFailed"]
    assert not failed, failed
    errors = [
        e["params"]["entry"]
        for e in events
        if e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] in ("error", "warning")
    ]
    errors += [
        e["params"]
        for e in events
        if e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert", "warning")
    ]
    errors += [e["params"] for e in events if e["method"] == "Runtime.exceptionThrown"]
    assert not errors, f"console errors: {errors}"


def test_every_chart_rendered(browser: _Browser, loaded: dict[str, Any]) -> None:
    expected = loaded["html"].count('<svg class="chart"')
    assert expected >= 2, "the demo report should have interval charts and the journey map"
    charts = browser.evaluate(
        "[...document.querySelectorAll('svg.chart')].map(s => { const r = s.getBoundingClientRect();"
        " return {id: s.id, kind: s.dataset.chart, w: r.width, h: r.height,"
        " marks: s.querySelectorAll('circle, rect, path, line').length,"
        " title: (s.querySelector('title') || {}).textContent || ''}; })"
    )
    assert len(charts) == expected
    for c in charts:
        assert c["w"] > 100 and c["h"] > 50, f"chart {c['id']} has no size: {c}"
        assert c["marks"] > 3, f"chart {c['id']} drew nothing: {c}"
        assert c["title"].strip(), f"chart {c['id']} has no title"
    kinds = {c["kind"] for c in charts}
    assert kinds == {"interval", "flow", "line"}, kinds  # line: the stage funnel


def test_narrow_screen_does_not_overflow(browser: _Browser, loaded: dict[str, Any]) -> None:
    browser.call(
        "Emulation.setDeviceMetricsOverride", {"width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": True}
    )
    try:
        sizes = browser.evaluate(
            "({page: document.documentElement.scrollWidth, view: window.innerWidth,"
            " widest: Math.max(...[...document.querySelectorAll('svg.chart, .figures, h1, p')]"
            ".map(e => e.getBoundingClientRect().right))})"
        )
    finally:
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
    assert sizes["page"] <= sizes["view"], f"the page scrolls sideways on a phone: {sizes}"
    assert sizes["widest"] <= sizes["view"] + 0.5, sizes


def test_print_summary_fits_the_first_page(browser: _Browser, loaded: dict[str, Any]) -> None:
    width, height = _A4_PRINTABLE_PX
    browser.call("Emulation.setEmulatedMedia", {"media": "print"})
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        {"width": int(width), "height": int(height), "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        layout = browser.evaluate(
            "(() => { const s = document.getElementById('summary'); const r = s.getBoundingClientRect();"
            " return {top: r.top + scrollY, bottom: r.bottom + scrollY,"
            " nav: getComputedStyle(document.querySelector('nav.toc')).display,"
            " breakAfter: getComputedStyle(s).breakAfter,"
            " first: document.querySelector('main section').id}; })()"
        )
    finally:
        browser.call("Emulation.setEmulatedMedia", {"media": ""})
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
    assert layout["first"] == "summary"
    assert layout["nav"] == "none"
    assert layout["breakAfter"] == "page"
    assert layout["bottom"] <= height, f"the summary runs past the first printed page: {layout}, page {height:.0f}px"


def test_screenshot_is_not_blank(browser: _Browser, loaded: dict[str, Any], tmp_path: Path) -> None:
    shot = browser.call("Page.captureScreenshot", {"format": "png"})
    import base64

    data = base64.b64decode(shot["data"])
    (tmp_path / "report.png").write_bytes(data)
    width, height, channels, pixels = _decode_png(data)
    assert (width, height) == (1280, 900)
    n = width * height
    # sample every 7th pixel: enough to tell a page from a blank one, fast in pure Python
    colours = set()
    dark = 0
    total = 0
    for i in range(0, n, 7):
        px = pixels[i * channels : (i + 1) * channels]
        colours.add(bytes(px[:3]))
        grey = sum(px[:3]) / 3 if channels >= 3 else px[0]
        dark += grey < 128
        total += 1
    mean = sum(sum(pixels[i * channels : i * channels + min(3, channels)]) for i in range(0, n, 7)) / (
        total * min(3, channels)
    )
    assert len(colours) > 20, f"the screenshot has only {len(colours)} colours: blank? ({tmp_path / 'report.png'})"
    assert 0.005 < dark / total < 0.6, f"dark share {dark / total:.3f}: blank or black? ({tmp_path / 'report.png'})"
    assert 150 < mean < 254, mean
