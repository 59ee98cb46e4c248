"""The report's files: the HTML page and its JSON always, the PDF and the PNG charts on request.

The PDF is the HTML page printed by headless Chromium (Debian's `chromium`, which `make setup`
installs; nothing is downloaded at run time), so the page and its print are one layout, the
charts drawn by the same Vega code. Chromium is driven over the DevTools protocol on a pipe
(`--remote-debugging-pipe`: fd 3 in, fd 4 out, each message JSON ended by a NUL byte;
https://chromedevtools.github.io/devtools-protocol/), which lets the report wait until every
chart has drawn before printing, and refuse every request the page makes: the page must need
nothing but itself. The PNG charts come from vl-convert, without a browser.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pipeline.report.charts import charts, png
from pipeline.report.data import ReportData
from pipeline.report.html import render_html

FORMATS = ("html", "pdf", "png")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless, as root, on a machine without a display bus or network: no sandbox (root), no
# GPU, none of the background services that phone home, a profile of its own, and a host
# resolver that resolves nothing (https://developer.chrome.com/docs/chromium/headless,
# https://peter.sh/experiments/chromium-command-line-switches/).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--remote-debugging-pipe",
)
PAGE_WIDTH = 1000
TIMEOUT = 60.0


class BrowserError(RuntimeError):
    """Chromium is missing, failed, or the page did not draw: the message says which."""


@dataclass
class PageLoad:
    """What opening the page showed: its errors, what it asked for (refused), its charts."""

    url: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    charts_drawn: int = 0
    loaded: bool = False


def find_chromium(executable: str | None = None) -> str:
    """The Chromium to run: `executable`, or the first of CHROMIUM_NAMES on PATH."""
    if executable:
        if shutil.which(executable) is None:
            raise BrowserError(f"no Chromium at {executable}")
        return executable
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    raise BrowserError(
        "the PDF is printed by headless Chromium, and none is installed (Debian: "
        "`apt-get install chromium`; `make setup` installs it); --format html,png needs none"
    )


class Chromium:
    """One headless Chromium, driven over the DevTools protocol on a pipe; one page at a time."""

    def __init__(self, executable: str, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="report-chromium-")
        self._stderr = Path(self._profile.name) / "stderr.log"
        to_browser, self._write_fd = os.pipe()
        self._read_fd, from_browser = os.pipe()
        # The child's ends go to fds 3 and 4 through bash's redirections (Python's
        # subprocess keeps fds, it does not renumber them); out of 3-9 first, so that no
        # redirection overwrites the other end.
        child_in = fcntl.fcntl(to_browser, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(from_browser, fcntl.F_DUPFD, 10)
        os.close(to_browser)
        os.close(from_browser)
        script = f'exec "$0" "$@" 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-'
        with self._stderr.open("wb") as stderr:
            try:
                self._process = subprocess.Popen(
                    [
                        "bash",
                        "-c",
                        script,
                        executable,
                        *CHROMIUM_FLAGS,
                        f"--user-data-dir={self._profile.name}",
                        "about:blank",
                    ],
                    pass_fds=(child_in, child_out),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            finally:
                os.close(child_in)
                os.close(child_out)
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None
        self._page: PageLoad | None = None

    # -- the protocol --------------------------------------------------------------------

    def _send(self, method: str, params: dict[str, Any] | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session is not None and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self._session
        data = json.dumps(message).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._write_fd, data) :]
        except BrokenPipeError:
            raise BrowserError(f"Chromium exited: {self._last_words()}") from None
        return self._next_id

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read_fd], [], [], left)[0]:
                raise BrowserError(f"Chromium did not answer within {self.timeout:.0f} s")
            chunk = os.read(self._read_fd, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium exited: {self._last_words()}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a command and wait for its answer, handling the events that come first."""
        sent = self._send(method, params)
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == sent:
                if "error" in message:
                    raise BrowserError(f"Chromium refused {method}: {message['error']}")
                return dict(message.get("result", {}))
            if "method" in message:
                self._on_event(message["method"], message.get("params", {}))

    def _wait_for(self, condition: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not getattr(self._page, condition):
            message = self._receive(deadline)
            if "method" in message:
                self._on_event(message["method"], message.get("params", {}))

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        page = self._page
        if page is None:
            return
        if method == "Fetch.requestPaused":
            url = params["request"]["url"]
            if url == page.url:
                self._send("Fetch.continueRequest", {"requestId": params["requestId"]})
            else:  # the page needs nothing but itself: refused, and remembered
                page.requests.append(url)
                self._send(
                    "Fetch.failRequest",
                    {"requestId": params["requestId"], "errorReason": "BlockedByClient"},
                )
        elif method == "Page.loadEventFired":
            page.loaded = True
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            page.errors.append(
                "console: "
                + " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            )
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            page.errors.append(
                "exception: " + str(details.get("exception", {}).get("description", details))
            )
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            page.errors.append("log: " + str(params["entry"].get("text")))

    # -- pages ---------------------------------------------------------------------------

    def open(self, path: Path) -> PageLoad:
        """Load a page from a file with every other request refused, and wait until its
        `window.reportRendered` promise (every chart drawn) settles."""
        if self._session is not None:
            self.call("Target.detachFromTarget", {"sessionId": self._session})
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = self._page = PageLoad(url=path.resolve().as_uri())
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(domain)
        self.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": PAGE_WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        navigated = self.call("Page.navigate", {"url": page.url})
        if "errorText" in navigated:
            raise BrowserError(f"Chromium could not open {path}: {navigated['errorText']}")
        self._wait_for("loaded")
        result = self.call(
            "Runtime.evaluate",
            {"expression": "window.reportRendered", "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            page.errors.append(
                "charts: "
                + str(result["result"].get("description", result["exceptionDetails"]["text"]))
            )
        else:
            page.charts_drawn = int(result["result"].get("value") or 0)
        return page

    def evaluate(self, expression: str) -> Any:
        """A JavaScript expression's value on the open page."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']['text']}")
        return result["result"].get("value")

    def pdf(self) -> bytes:
        """The open page printed (its CSS sets A4), backgrounds included."""
        printed = self.call(
            "Page.printToPDF",
            {"printBackground": True, "preferCSSPageSize": True, "displayHeaderFooter": False},
        )
        return base64.b64decode(printed["data"])

    def screenshot(self, width: int = PAGE_WIDTH, height: int | None = None) -> bytes:
        """The open page as PNG, `height` CSS pixels of it (the whole page by default)."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": width, "height": height or size["height"], "scale": 1}
        shot = self.call(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )
        return base64.b64decode(shot["data"])

    # -- the process ---------------------------------------------------------------------

    def _last_words(self) -> str:
        lines = self._stderr.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit code {self._process.poll()}"

    def close(self) -> None:
        try:
            if self._process.poll() is None:
                self._send("Browser.close")
                self._process.wait(timeout=10)
        except (BrowserError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait()
        finally:
            os.close(self._write_fd)
            os.close(self._read_fd)
            self._profile.cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def parse_formats(text: str) -> list[str]:
    """`html,pdf,png` as a list, each one known."""
    formats = [part.strip().lower() for part in text.split(",") if part.strip()]
    if unknown := [f for f in formats if f not in FORMATS]:
        raise ValueError(f"unknown format {', '.join(unknown)}; known: {', '.join(FORMATS)}")
    return formats or ["html"]


def write_report(
    data: ReportData, out: Path, formats: Sequence[str], chromium: str | None = None
) -> list[Path]:
    """Write report-<week>.html and report-<week>.json (every number shown), and with `pdf`
    report-<week>.pdf, with `png` report-<week>-<chart>.png; return the paths written."""
    specs = charts(data)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"report-{data.week}"
    page = stem.with_suffix(".html")
    numbers = stem.with_suffix(".json")
    page.write_text(render_html(data, specs), encoding="utf-8")
    numbers.write_text(
        json.dumps(data.to_json(), indent=1, ensure_ascii=False, allow_nan=False) + "\n",
        encoding="utf-8",
    )
    written = [page, numbers]
    if "pdf" in formats:
        with Chromium(find_chromium(chromium)) as browser:
            load = browser.open(page)
            if load.errors or load.requests or load.charts_drawn != len(specs):
                problems = [*load.errors, *(f"asked for {url}" for url in load.requests)]
                raise BrowserError(
                    f"the page drew {load.charts_drawn} of {len(specs)} charts"
                    + (f": {problems[0]}" if problems else "")
                )
            pdf = stem.with_suffix(".pdf")
            pdf.write_bytes(browser.pdf())
            written.append(pdf)
    if "png" in formats:
        for name, spec in specs.items():
            chart = out / f"report-{data.week}-{name}.png"
            chart.write_bytes(png(spec))
            written.append(chart)
    return written
