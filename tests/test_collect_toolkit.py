"""The collectors' shared toolkit: the HTTP client's retries, back-off, `Retry-After` and
rate-limit headers, token renewal and one-line failures (against a real local HTTP server
answering as scripted), pacing, paging's raw records, the cursor topic (real broker), the
time slices, the settings' secrets and the status line."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from pydantic import SecretStr

from pipeline.collect.cursor import CursorStore
from pipeline.collect.http import AccessDenied, GaveUp, Stopped, VendorClient, VendorRefused
from pipeline.collect.pacing import Pacer, reset_in, retry_after
from pipeline.collect.paging import (
    Body,
    Call,
    OffsetParam,
    PageShapeError,
    TokenParam,
    pages,
    restarting,
)
from pipeline.collect.progress import Progress, duration
from pipeline.collect.runner import Page, Span, user_key
from pipeline.collect.settings import OktaSettings
from pipeline.collect.watermark import Slicing, sliced
from pipeline.model import Source
from pipeline.runtime.broker import BufferedProducer
from pipeline.settings import Kafka


class Script:
    """What the local server answers, in order: (status, headers, body); the last repeats."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str], bytes]] = []
        self.seen: list[tuple[str, dict[str, str]]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            script.seen.append((self.path, dict(self.headers)))
            index = min(len(script.seen), len(script.answers)) - 1
            status, headers, body = script.answers[index]
            if status == 0:  # a server that does not answer in time
                time.sleep(1.0)
                status = 200
            self.send_response(status)
            headers = {"Content-Type": "application/json", **headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()


def client(base: str, stop: threading.Event | None = None, **options: object) -> VendorClient:
    stop = stop or threading.Event()
    return VendorClient(
        "acme",
        progress=Progress("acme"),
        pacer=Pacer(lambda seconds: time.sleep(seconds)),
        stop=stop,
        permission="grant acme.read",
        base_url=base,
        backoff_max=0.05,
        **options,  # type: ignore[arg-type]
    )


OK = (200, {}, b'{"items": [1]}')


def test_a_429_waits_its_retry_after_then_succeeds(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers = [(429, {"Retry-After": "0.4"}, b"{}"), OK]
    vendor = client(base)
    started = time.monotonic()
    assert vendor.get("/logs").json() == {"items": [1]}
    assert 0.4 <= time.monotonic() - started < 2.0
    assert (vendor.progress.rate_limited, vendor.progress.retries) == (1, 1)


def test_a_429_without_retry_after_waits_for_the_reset_header(server: tuple[str, Script]) -> None:
    base, script = server
    reset = datetime.now(UTC) + timedelta(seconds=1)
    script.answers = [(429, {"X-RateLimit-Reset": reset.isoformat()}, b"{}"), OK]
    started = time.monotonic()
    client(base).get("/logs")
    assert time.monotonic() - started >= 0.5


def test_a_spent_budget_holds_the_next_call_until_the_reset(server: tuple[str, Script]) -> None:
    base, script = server
    reset = int(time.time()) + 2
    script.answers = [
        (200, {"X-Rate-Limit-Limit": "20", "X-Rate-Limit-Remaining": "0",
               "X-Rate-Limit-Reset": str(reset)}, b"{}"),
        OK,
    ]  # fmt: skip
    vendor = client(base)
    vendor.get("/logs", pace="logs")
    vendor.get("/logs", pace="logs")
    assert time.time() >= reset - 0.05
    assert vendor.progress.rate_limited == 0


def test_failing_every_attempt_gives_up_in_one_line(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers = [(503, {}, b"{}"), (500, {}, b'{"error": "x"}')]
    vendor = client(base, attempts=4)
    with pytest.raises(GaveUp) as failure:
        vendor.get("/logs?secret-free=1")
    message = str(failure.value)
    assert message.startswith("acme: GET /logs: 4 attempts over")
    assert "503 Service Unavailable, 500 Internal Server Error" in message
    assert "\n" not in message and len(script.seen) == 4


def test_timeouts_and_html_answers_are_retried(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers = [(0, {}, b"{}"), (200, {"Content-Type": "text/html"}, b"<html>"), OK]
    vendor = client(base, timeout=0.3)
    assert vendor.get("/logs").json() == {"items": [1]}
    assert vendor.progress.retries == 2


def test_refusals_are_not_retried_and_name_the_permission(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers = [(403, {}, b'{"errorSummary": "You do not have permission"}')]
    with pytest.raises(AccessDenied, match=r"403 Forbidden \(You do not have permission\): grant"):
        client(base).get("/logs")
    script.answers = [(404, {}, b"<html>" + b"x" * 500)]
    with pytest.raises(VendorRefused) as refused:
        client(base).get("/nothing")
    assert "404 Not Found" in str(refused.value) and len(str(refused.value)) < 300
    script.answers = [(400, {}, b'{"error": "invalid_client", "error_description": "bad key"}')]
    with pytest.raises(AccessDenied, match=r"bad key.*grant acme\.read"):
        client(base).request("POST", "/token", data={"grant_type": "client_credentials"})


class Tokens(httpx.Auth):
    """A renewable auth whose token the test can see."""

    def __init__(self) -> None:
        self.number = 1
        self.renewals = 0

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers["Authorization"] = f"Bearer t{self.number}"
        yield request

    def renew(self) -> None:
        self.number += 1
        self.renewals += 1


def test_a_401_renews_the_token_once_and_retries(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers = [(401, {}, b'{"error": {"message": "expired"}}'), OK]
    auth = Tokens()
    vendor = client(base, auth=auth)
    vendor.get("/logs")
    assert auth.renewals == 1 and vendor.progress.token_renewals == 1
    assert [headers["Authorization"] for _, headers in script.seen] == ["Bearer t1", "Bearer t2"]
    script.seen.clear()
    script.answers = [(401, {}, b'{"error": {"message": "revoked"}}')]
    with pytest.raises(AccessDenied, match="revoked"):
        vendor.get("/logs")
    assert len(script.seen) == 2  # one renewal, then the 401 stands


def test_a_stop_during_a_wait_ends_it_at_once(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers = [(429, {"Retry-After": "30"}, b"{}")]
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        client(base, stop=stop).get("/logs")
    assert time.monotonic() - started < 5


def test_pacing_keeps_intervals_and_windows() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(sleep, clock=lambda: now[0], wall=lambda: now[0])
    pacer.limit("duo", min_interval=60)
    pacer.limit("graph", window=(5, 10))
    for _ in range(3):
        pacer.wait("duo")
    assert now[0] == 120
    start = now[0]
    times = []
    for _ in range(11):
        pacer.wait("graph")
        times.append(now[0] - start)
    assert times == [0] * 5 + [10] * 5 + [20]
    pacer.observe("okta", {"X-Rate-Limit-Limit": "0", "X-Rate-Limit-Remaining": "0"})
    assert pacer.wait("okta") == 0  # a concurrent-limit answer is no spent budget
    assert pacer.wait(None) == 0


def test_retry_after_and_reset_headers() -> None:
    now = time.time()
    assert retry_after({"Retry-After": "2.128"}, now) == 2.128
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 28 <= retry_after({"Retry-After": format_datetime(later)}, now) <= 31  # type: ignore[operator]
    assert retry_after({"Retry-After": "soon"}, now) is None
    assert reset_in({"X-Rate-Limit-Reset": str(int(now) + 5)}, now) == pytest.approx(5, abs=1)
    assert reset_in({"X-RateLimit-Reset": "3"}, now) == 3
    assert reset_in({}, now) is None


def test_records_are_cut_from_the_page_as_sent() -> None:
    page = b'{"response": {"authlogs": [ {"a" : 1.0,"b":"\\u00e9"} ,{"c":[]}], "metadata": {}}}'
    body = Body("duo", page)
    assert body.records(("response", "authlogs")) == [b'{"a" : 1.0,"b":"\\u00e9"}', b'{"c":[]}']
    assert body.records(("response", "items")) == []
    assert body.value(("response", "metadata")) == {}
    with pytest.raises(PageShapeError, match="duo: a page is not what the API documents"):
        Body("duo", b'{"response": 3}').records(("response", "authlogs"))
    with pytest.raises(PageShapeError):
        Body("duo", b'{"response": {"authlogs": {}}}').records(("response", "authlogs"))


def test_a_token_walk_ends_on_an_empty_page_whatever_its_token(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers = [
        (200, {}, b'{"issues": [{"id": 1}], "nextPageToken": "a"}'),
        (200, {}, b'{"issues": [], "nextPageToken": "b"}'),
    ]
    paging = TokenParam(("issues",), ("nextPageToken",), "nextPageToken", empty_ends=True)
    walked = list(pages(client(base), Call("/search", {"jql": "x"}), paging))
    assert [len(page.records) for page in walked] == [1, 0] and len(script.seen) == 2
    assert "nextPageToken=a" in script.seen[1][0]


OFFSETS = OffsetParam(records_path=("issues",), param="startAt", total_path=("total",))


def test_an_offset_walk_steps_by_the_records_read_up_to_the_total(
    server: tuple[str, Script],
) -> None:
    base, script = server
    script.answers = [
        # The vendor caps the page below the maxResults asked: the step is what came.
        (200, {}, b'{"startAt": 0, "total": 5, "issues": [{"id": 1}, {"id": 2}]}'),
        (200, {}, b'{"startAt": 2, "total": 5, "issues": [{"id": 3}, {"id": 4}]}'),
        (200, {}, b'{"startAt": 4, "total": 5, "issues": [{"id": 5}]}'),
    ]
    walked = list(pages(client(base), Call("/search", {"maxResults": 3}), OFFSETS))
    assert [len(page.records) for page in walked] == [2, 2, 1] and walked[-1].next is None
    assert [path.count("startAt=") for path, _ in script.seen] == [0, 1, 1]
    assert "startAt=2" in script.seen[1][0] and "startAt=4" in script.seen[2][0]
    script.seen.clear()
    script.answers = [(200, {}, b'{"startAt": 0, "total": 9, "issues": []}')]
    assert [page.next for page in pages(client(base), Call("/search"), OFFSETS)] == [None]
    assert len(script.seen) == 1  # an empty page ends the walk whatever the total says


def test_an_offset_walk_starts_again_from_the_watermark_when_the_set_shrank(
    server: tuple[str, Script],
) -> None:
    base, script = server
    script.answers = [
        (200, {}, b'{"total": 4, "issues": [{"id": 1}, {"id": 2}]}'),
        # Issue 2 was updated and left: 3 moved onto the page read, this page starts at 4.
        (200, {}, b'{"total": 3, "issues": [{"id": 4}]}'),
        (200, {}, b'{"total": 3, "issues": [{"id": 2}, {"id": 3}, {"id": 4}]}'),
    ]
    watermark = ["t0"]
    walk = restarting(
        client(base),
        lambda: Call("/search", {"since": watermark[0]}),
        OFFSETS,
        count=lambda fetched: OFFSETS.total(fetched.body),
    )
    taken = []
    for fetched in walk:
        taken.append(fetched.records)
        watermark[0] = "t1"  # the caller's watermark moves with each page it takes
    assert taken == [[b'{"id": 1}', b'{"id": 2}'], [b'{"id": 2}', b'{"id": 3}', b'{"id": 4}']]
    assert [path.split("?")[1] for path, _ in script.seen] == [
        "since=t0",
        "since=t0&startAt=2",
        "since=t1",
    ]


def test_slices_adapt_to_how_many_pages_they_take() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    taken: list[tuple[datetime, datetime]] = []

    def fetch(begin: datetime, end: datetime) -> Iterator[object]:
        taken.append((begin, end))
        yield from [SimpleNamespace(records=[b"{}"])] * (12 if len(taken) == 3 else 1)

    slicing = Slicing(first=timedelta(hours=1), largest=timedelta(hours=8), pages=10)
    out = list(sliced(start, start + timedelta(hours=30), None, slicing, fetch))  # type: ignore[arg-type]
    lengths = [(end - begin) / timedelta(hours=1) for begin, end in taken]
    assert lengths[:5] == [1, 2, 4, 2, 4]  # doubled when one page did, halved after 12 pages
    assert taken[-1][1] == start + timedelta(hours=30)
    commits = [page.cursor for page in out if page.cursor is not None]
    assert commits[-1]["until"] == (start + timedelta(hours=30)).isoformat()
    assert all(isinstance(page, Page) for page in out)


def test_cursors_round_trip_through_the_compacted_topic(broker: str) -> None:
    producer = BufferedProducer(broker)
    kafka = Kafka.model_construct()
    store = CursorStore(broker, "collect.cursors", kafka, producer, "okta/")
    assert store.load() == {}
    store.commit("okta/acme/logs/live", {"next": "a", "time": "t1"})
    store.commit("okta/acme/logs/live", {"next": "b", "time": "t2"})
    other = CursorStore(broker, "collect.cursors", kafka, producer, "duo/")
    other.commit("duo/acme/authentication/live", {"mintime": 1})
    fresh = CursorStore(broker, "collect.cursors", kafka, producer, "okta/")
    assert fresh.load() == {"okta/acme/logs/live": {"next": "b", "time": "t2"}}
    producer.close()


def test_a_message_key_is_the_login_the_parser_reads() -> None:
    okta_event = (
        b'{"uuid": "u1", "published": "2026-01-05T10:00:00.000Z", "eventType": '
        b'"user.session.start", "actor": {"alternateId": "Ana@Example.com", "type": "User"},'
        b' "outcome": {"result": "SUCCESS"}}'
    )
    assert user_key(Source.OKTA)(okta_event) == b"ana@example.com"
    assert user_key(Source.OKTA)(b"not json") is None


def test_secrets_come_from_a_variable_or_a_file_never_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "token"
    secret.write_text("00abc\n")
    monkeypatch.setenv("PIPELINE_OKTA_TOKEN_FILE", str(secret))
    assert OktaSettings().secret("token") == SecretStr("00abc")
    monkeypatch.setenv("PIPELINE_OKTA_TOKEN", "00def")
    with pytest.raises(ValueError, match="PIPELINE_OKTA_TOKEN or PIPELINE_OKTA_TOKEN_FILE"):
        OktaSettings().secret("token")
    monkeypatch.delenv("PIPELINE_OKTA_TOKEN")
    secret.write_text("\n")
    with pytest.raises(ValueError, match="PIPELINE_OKTA_TOKEN_FILE is empty"):
        OktaSettings().secret("token")
    secret.unlink()
    with pytest.raises(ValueError, match="cannot read"):
        OktaSettings().secret("token")


def test_the_status_line() -> None:
    progress = Progress("okta", events=1234, pages=3, requests=5, rate_limited=1, retries=2)
    now = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
    progress.cursor_times = {"logs": now - timedelta(minutes=4, seconds=10)}
    progress.next_poll = now + timedelta(seconds=60)
    progress.rounds = 7
    assert progress.status_line(now) == (
        "round 7; 1,234 events in 3 pages (5 requests, 1 rate-limited, 2 retried, 0 errors); "
        "cursor at 2026-01-02T11:55:50+00:00 (4m10s behind); next poll in 1m0s"
    )
    assert duration(timedelta(days=3, hours=4, minutes=5)) == "3d4h"
    assert Progress("x").status_line(now).endswith("no cursor yet")
    assert Span(now).label() == "live"
    assert (
        Span(now, now + timedelta(days=1)).label() == "backfill/20260102T120000Z/20260103T120000Z"
    )
