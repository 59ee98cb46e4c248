"""The push receiver: vendor webhooks and plain POSTs in, Kafka raw topics out.

Routes (each on only when its secret is set):
- `GET /okta`: Okta Event Hook's one-time verification. Okta sends the challenge in the
  `X-Okta-Verification-Challenge` header and expects `{"verification": "<value>"}` back; it
  sends the hook's static `Authorization` value on every request, this GET included
  (https://developer.okta.com/docs/concepts/event-hooks/, in okta/okta-developer-docs
  `packages/@okta/vuepress-site/docs/concepts/event-hooks/index.md`; the request Okta sends:
  https://support.okta.com/help/s/article/Unable-to-verify-event-hook-Hook-hook-name-execution-failed).
- `POST /okta`: Event Hook deliveries, `{"data": {"events": [LogEvent, ...]}}`. The
  `Authorization` value is "a secret string you provide to Okta when you register your event
  hook", not an Okta token, and Okta does not sign payloads. Okta "enforces a default timeout
  of 3 seconds", "will attempt at most one retry" and does not retry a 4xx; a 200 or 204 with
  an empty body is the expected answer (same page).
- `POST /ping`: PingOne webhook subscriptions. "Each webhook request contains a single JSON
  document with a batch of up to 500 events … included as an array within the payload … doesn't
  use line-delimited JSON" (https://docs.pingidentity.com/pingone/integrations/p1_create_webhook.html);
  the subscription's `httpEndpoint.headers` carry the secret header, its `format` is `ACTIVITY`
  (https://developer.pingidentity.com/pingone-api/platform/subscriptions-webhooks/create-subscriptions.html);
  "the webhook continues to retry the current event until a 200 response is returned"
  (https://developer.pingidentity.com/pingone-api/platform/subscriptions-webhooks.html).
- `POST /ingest/{source}`: any shipper, `Authorization: Bearer <token>`; a JSON object, a JSON
  array, or NDJSON (made one JSON array), for okta, entra, ping, duo, tickets or roster.

Whole bodies: a body goes to Kafka as one message (the worker's splitter,
`pipeline.sources.records.split_batch`, opens it into its records), so its produce is one
Kafka write, acknowledged or not as a whole; measured on the embedded broker, a 100-event Okta
hook body (230 kB) took 2.1 ms whole against 5.2 ms as 100 keyed messages (500 events: 11 ms
against 22 ms, p99 17 ms against 65 ms). A body over PIPELINE_RECEIVE_MAX_MESSAGE_BYTES
(Kafka's default limit is 1 MiB, which a full 500-event PingOne batch can pass) goes as JSON
arrays of its records, each under the limit; one record over it is refused with 413.

An answer is 2xx only once Kafka acknowledged every message of the body (acks=all), within
PIPELINE_RECEIVE_PRODUCE_TIMEOUT (2.5 s: inside Okta's 3 s); otherwise 503 with Retry-After,
so the sender retries. A body answered 503 may still reach Kafka if the broker is back
within that timeout of it (aiokafka retries what it queued until it is that old, then drops
it), and a sender may retry a body whose 200 it did not see: a body can be in Kafka twice, and
the warehouse stores each event once, by its vendor id (see pipeline/aggregate/batch.py).

Its metrics (requests, events and refusals per route) and readiness (Kafka reachable) are
served apart, on PIPELINE_METRICS_PORT (pipeline/runtime/metrics.py), never on this port.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import msgspec
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from pipeline.model import Source
from pipeline.receive.settings import PREFIX, ReceiveSettings, Secrets
from pipeline.runtime.broker import TopicSetupError, create_topics
from pipeline.runtime.metrics import Check, ReceiverMetrics
from pipeline.settings import Kafka, Topics
from pipeline.sources.records import split_batch

log = logging.getLogger("pipeline.receive")

ROSTER = "roster"
INGEST_SOURCES = (*(source.value for source in Source), ROSTER)
CHALLENGE_HEADER = "X-Okta-Verification-Challenge"
# Room for a record's framing in a produce request, over the largest message produced.
_RECORD_OVERHEAD = 4096
# Seconds between the readiness questions to Kafka (a metadata request).
_KAFKA_CHECK_SECONDS = 10.0

_json = msgspec.json.Decoder(msgspec.Raw)  # checks a whole document without building it

EVENTS = web.RequestKey("events", int)
MESSAGES = web.RequestKey("messages", int)
BODY_BYTES = web.RequestKey("body_bytes", int)
REASON = web.RequestKey("reason", str)


class Refused(Exception):
    """An answer other than 2xx, with the reason the sender (and the log) gets."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


class StartError(RuntimeError):
    """The receiver cannot start; the message says why, in one line."""


@dataclass(frozen=True)
class Batch:
    """What one body becomes: the Kafka messages to produce, and the events they hold."""

    messages: list[bytes]
    events: int


def batch_of(body: bytes, max_message_bytes: int, ndjson: bool = False) -> Batch:
    """The messages of a body: itself, whole (a JSON object or array); NDJSON (when allowed)
    as one JSON array of its lines; above `max_message_bytes`, JSON arrays of its records.
    Refused (400, 413) when it is not JSON, or one record is larger than a message may be."""
    document = body.strip()
    if not document:
        raise Refused(400, "empty body")
    try:
        document.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(400, f"not UTF-8 (byte {exc.start})") from None
    try:
        _check_json(document, "")
    except Refused:
        if not ndjson or b"\n" not in document:
            raise
        lines = []
        for number, line in enumerate(document.splitlines(), start=1):
            if line := line.strip():
                _check_json(line, f"line {number}: ")
                lines.append(line)
        document = b"[" + b",".join(lines) + b"]"
    records = split_batch(document)
    if records is None:  # one record
        if len(document) > max_message_bytes:
            raise _too_large("an event", len(document), max_message_bytes)
        return Batch([document], 1)
    if not records:
        return Batch([], 0)
    if len(document) <= max_message_bytes:
        return Batch([document], len(records))
    return Batch(list(_arrays(records, max_message_bytes)), len(records))


def _check_json(document: bytes, where: str) -> None:
    try:
        _json.decode(document)
    except msgspec.DecodeError as exc:  # its message gives a byte offset, never content
        raise Refused(400, f"{where}not valid JSON: {exc}") from None
    except RecursionError:
        raise Refused(400, f"{where}JSON nested too deeply to read") from None
    if document[:1] not in (b"{", b"["):
        raise Refused(400, f"{where}JSON, but not an object or an array of events")


def _arrays(records: list[bytes], limit: int) -> Iterator[bytes]:
    """Records as JSON arrays of at most `limit` bytes each, in order."""
    chunk: list[bytes] = []
    size = 2  # the brackets
    for record in records:
        if len(record) + 2 > limit:
            raise _too_large("an event", len(record), limit)
        if chunk and size + 1 + len(record) > limit:
            yield b"[" + b",".join(chunk) + b"]"
            chunk, size = [], 2
        size += len(record) + (1 if chunk else 0)
        chunk.append(record)
    if chunk:
        yield b"[" + b",".join(chunk) + b"]"


def _too_large(what: str, size: int, limit: int) -> Refused:
    return Refused(
        413,
        f"{what} of {size:,} bytes, over the largest Kafka message of {limit:,} bytes "
        f"({PREFIX}MAX_MESSAGE_BYTES)",
    )


class Producer:
    """aiokafka with acks=all, each body's messages acknowledged within a time bound. It
    reconnects by itself when the broker comes back."""

    def __init__(self, bootstrap: str, kafka: Kafka, max_message_bytes: int, timeout: float):
        self._bootstrap = bootstrap
        self._kafka = kafka
        self._max_request = max_message_bytes + _RECORD_OVERHEAD
        self._timeout = timeout
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id="pipeline-receive",
            acks="all",
            max_request_size=self._max_request,
            # Queued batches whose partition has no leader fail after this, not 40 s.
            request_timeout_ms=int(self._timeout * 1000),
            **self._kafka.aiokafka_options(),
        )
        try:
            await asyncio.wait_for(producer.start(), self._kafka.connect_timeout)
        except (TimeoutError, KafkaError) as exc:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise StartError(
                f"cannot reach Kafka at {self._bootstrap} within "
                f"{self._kafka.connect_timeout:g} s ({type(exc).__name__}): check "
                "PIPELINE_KAFKA_BOOTSTRAP and the security settings (PIPELINE_KAFKA_*)"
            ) from None
        self._producer = producer

    async def deliver(self, topic: str, messages: list[bytes]) -> None:
        """Return once Kafka acknowledged every message; Refused(503) otherwise."""
        assert self._producer is not None, "start() first"
        producer = self._producer

        async def send_all() -> None:
            pending = [await producer.send(topic, message) for message in messages]
            await asyncio.gather(*pending)

        try:
            await asyncio.wait_for(send_all(), self._timeout)
        except TimeoutError:
            raise Refused(503, f"Kafka did not acknowledge within {self._timeout:g} s") from None
        except MessageSizeTooLargeError:
            raise Refused(
                503,
                "Kafka refused the message as too large: lower "
                f"{PREFIX}MAX_MESSAGE_BYTES to the broker's message.max.bytes",
            ) from None
        except KafkaError as exc:
            raise Refused(503, f"Kafka did not take the message ({type(exc).__name__})") from None

    async def reachable(self) -> bool:
        """Whether Kafka answers a metadata request within the produce timeout."""
        if self._producer is None:
            return False
        try:
            return bool(
                await asyncio.wait_for(self._producer.client.force_metadata_update(), self._timeout)
            )
        except (TimeoutError, KafkaError):
            return False

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


@dataclass
class Counters:
    """Since start, for the status line."""

    requests: int = 0
    events: int = 0
    messages: int = 0
    unauthorized: int = 0
    unavailable: int = 0
    refused: int = 0
    errors: int = 0

    def count(self, status: int, events: int, messages: int) -> None:
        self.requests += 1
        if status < 300:
            self.events += events
            self.messages += messages
        elif status == 401:
            self.unauthorized += 1
        elif status == 503:
            self.unavailable += 1
        elif status >= 500:
            self.errors += 1
        else:
            self.refused += 1

    def line(self) -> str:
        return (
            f"status: {self.requests:,} requests; {self.events:,} events produced in "
            f"{self.messages:,} messages; {self.unauthorized:,} unauthorized (401), "
            f"{self.unavailable:,} Kafka unavailable (503), {self.refused:,} refused (4xx), "
            f"{self.errors:,} internal errors (500)"
        )


@dataclass(frozen=True)
class Route:
    path: str
    secret: bytes | None
    header: str
    variable: str  # the setting that turns it on
    bearer: bool = False
    ndjson: bool = False


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Receiver:
    """The aiohttp application, its producer and its status line, on one event loop."""

    def __init__(
        self,
        receive: ReceiveSettings,
        secrets: Secrets,
        bootstrap: str,
        kafka: Kafka,
        topics: Topics,
        metrics: ReceiverMetrics | None = None,
    ) -> None:
        self._receive = receive
        self._bootstrap = bootstrap
        self._kafka = kafka
        self._topics = topics
        self.counters = Counters()
        self.metrics = metrics or ReceiverMetrics()
        # Readiness: what is wrong with Kafka (None: it answers), and a stop under way.
        self._kafka_problem: str | None = "not started"
        self._stopping = False
        self._okta = Route(
            "/okta", secrets.okta, receive.okta_header, f"{PREFIX}OKTA_SECRET (or _FILE)"
        )
        self._ping = Route(
            "/ping", secrets.ping, receive.ping_header, f"{PREFIX}PING_SECRET (or _FILE)"
        )
        self._ingest = Route(
            "/ingest/{source}",
            secrets.token,
            "Authorization",
            f"{PREFIX}TOKEN (or _FILE)",
            bearer=True,
            ndjson=True,
        )
        self._producer = Producer(
            bootstrap, kafka, receive.max_message_bytes, receive.produce_timeout
        )
        self._runner: web.AppRunner | None = None
        self._status: asyncio.Task[None] | None = None
        self._kafka_check: asyncio.Task[None] | None = None

    def checks(self) -> dict[str, Check]:
        """The receiver's readiness: Kafka answers, and it is not stopping."""
        return {
            "kafka": lambda: self._kafka_problem,
            "stopping": lambda: "the receiver is stopping" if self._stopping else None,
        }

    def routes_on(self) -> list[str]:
        return [route.path for route in (self._okta, self._ping, self._ingest) if route.secret]

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._answer], client_max_size=self._receive.max_body_bytes
        )
        app.router.add_get("/okta", self._okta_verification, allow_head=False)
        app.router.add_post("/okta", self._okta_events)
        app.router.add_post("/ping", self._ping_events)
        app.router.add_post("/ingest/{source}", self._ingest_events)
        return app

    async def start(self) -> str:
        """Topics, producer, listener; the base URL. StartError says what is wrong."""
        # aiokafka's DEBUG lines quote the messages it sends: event content stays out.
        kafka_log = logging.getLogger("aiokafka")
        if kafka_log.getEffectiveLevel() < logging.INFO:
            kafka_log.setLevel(logging.INFO)
        topics = self._topics_written()
        try:
            await asyncio.to_thread(
                create_topics, self._bootstrap, topics, self._topics.partitions, self._kafka
            )
        except TopicSetupError as exc:
            raise StartError(str(exc)) from None
        await self._producer.start()
        try:
            tls = self._tls_context()
            # Our own line per request instead of aiohttp's access log.
            runner = web.AppRunner(
                self.app(),
                access_log=None,
                handle_signals=False,
                shutdown_timeout=self._receive.produce_timeout + 1,
            )
            await runner.setup()
            site = web.TCPSite(runner, self._receive.host, self._receive.port, ssl_context=tls)
            try:
                await site.start()
            except OSError as exc:
                await runner.cleanup()
                where = f"{self._receive.host}:{self._receive.port}"
                raise StartError(
                    f"cannot listen on {where}: {exc.strerror or exc} ({PREFIX}HOST, {PREFIX}PORT)"
                ) from None
        except BaseException:
            await self._producer.stop()
            raise
        self._runner = runner
        self._kafka_problem = None  # the producer connected
        self._status = asyncio.create_task(self._status_lines())
        self._kafka_check = asyncio.create_task(self._check_kafka())
        host, port = runner.addresses[0][:2]
        return f"{'https' if tls else 'http'}://{host}:{port}"

    async def stop(self) -> None:
        """Finish the requests under way, then flush and close the producer."""
        self._stopping = True
        for task in (self._status, self._kafka_check):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._runner is not None:
            await self._runner.cleanup()
        await self._producer.stop()
        log.info("stopped; %s", self.counters.line())

    def _topics_written(self) -> list[str]:
        topics = []
        if self._okta.secret:
            topics.append(self._topics.raw(Source.OKTA))
        if self._ping.secret:
            topics.append(self._topics.raw(Source.PING))
        if self._ingest.secret:
            topics += self._topics.inputs()
        return list(dict.fromkeys(topics))

    def _tls_context(self) -> ssl.SSLContext | None:
        cert, key = self._receive.tls_cert_file, self._receive.tls_key_file
        if cert is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(str(cert), str(key) if key else None)
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise StartError(
                f"cannot load the TLS certificate {cert}"
                + (f" and key {key}" if key else "")
                + f": {reason} ({PREFIX}TLS_CERT_FILE, {PREFIX}TLS_KEY_FILE)"
            ) from None
        return context

    async def _status_lines(self) -> None:
        while True:
            await asyncio.sleep(self._receive.status_seconds)
            log.info("%s", self.counters.line())

    async def _check_kafka(self) -> None:
        while True:
            await asyncio.sleep(_KAFKA_CHECK_SECONDS)
            reachable = await self._producer.reachable()
            self._kafka_problem = None if reachable else "Kafka does not answer"

    @web.middleware
    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every answer, refusals and failures included, with one log line per request:
        route, status, events, bytes, time; never a header value, never a body."""
        started = time.perf_counter()
        try:
            response = await handler(request)
        except Refused as refused:
            response = _error(refused.status, refused.reason, refused.headers)
            request[REASON] = refused.reason
        except web.HTTPException as exc:  # aiohttp's own: no such route, wrong method
            reason = {404: "no such route: POST /okta, /ping or /ingest/{source}"}.get(
                exc.status, exc.reason
            )
            allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            response = _error(exc.status, reason, allow)
            request[REASON] = reason
        except Exception as exc:  # a bug here must cost one request, not the receiver
            response = _error(500, "internal error")
            request[REASON] = f"internal error ({type(exc).__name__})"
        status, events, messages = response.status, request.get(EVENTS, 0), request.get(MESSAGES, 0)
        self.counters.count(status, events, messages)
        elapsed = time.perf_counter() - started
        route, source = _route_of(request)
        self.metrics.answered(route, status, source, events, elapsed)
        if status == 503:
            self._kafka_problem = "Kafka did not acknowledge the last request's events in time"
        elif status < 300 and messages:
            self._kafka_problem = None
        reason = request.get(REASON)
        log.log(
            logging.ERROR if status >= 500 and status != 503 else logging.INFO,
            "%s %s %d events=%d messages=%d bytes=%d ms=%.1f%s",
            request.method,
            request.rel_url.raw_path[:120],  # percent-encoded: no line breaks in the log
            status,
            events,
            messages,
            request.get(BODY_BYTES, 0),
            elapsed * 1000,
            f" reason={reason}" if reason else "",
        )
        return response

    async def _okta_verification(self, request: web.Request) -> web.StreamResponse:
        self._authorize(request, self._okta)
        challenge = request.headers.get(CHALLENGE_HEADER)
        if not challenge:
            raise Refused(400, f"no {CHALLENGE_HEADER} header: only Okta's verification is a GET")
        return web.json_response({"verification": challenge})

    async def _okta_events(self, request: web.Request) -> web.StreamResponse:
        await self._deliver(request, self._okta, self._topics.raw(Source.OKTA))
        return web.Response(status=200)  # empty, as Okta asks

    async def _ping_events(self, request: web.Request) -> web.StreamResponse:
        await self._deliver(request, self._ping, self._topics.raw(Source.PING))
        return web.Response(status=200)  # PingOne retries until exactly 200

    async def _ingest_events(self, request: web.Request) -> web.StreamResponse:
        self._authorize(request, self._ingest)
        source = request.match_info["source"]
        if source not in INGEST_SOURCES:
            raise Refused(404, f"unknown source: use one of {', '.join(INGEST_SOURCES)}")
        topic = self._topics.roster if source == ROSTER else self._topics.raw(Source(source))
        batch = await self._deliver(request, self._ingest, topic)
        return web.json_response({"events": batch.events, "messages": len(batch.messages)})

    async def _deliver(self, request: web.Request, route: Route, topic: str) -> Batch:
        self._authorize(request, route)
        body = await self._body(request)
        batch = batch_of(body, self._receive.max_message_bytes, ndjson=route.ndjson)
        request[EVENTS] = batch.events
        if batch.messages:
            try:
                await self._producer.deliver(topic, batch.messages)
            except Refused as refused:
                refused.headers["Retry-After"] = str(self._receive.retry_after)
                raise
        request[MESSAGES] = len(batch.messages)
        return batch

    def _authorize(self, request: web.Request, route: Route) -> None:
        if route.secret is None:
            raise Refused(404, f"{route.path} is off: {route.variable} is not set")
        given = request.headers.get(route.header)
        challenge = {"WWW-Authenticate": "Bearer"} if route.bearer else None
        if given is None:
            raise Refused(401, f"no {route.header} header", challenge)
        if route.bearer:
            scheme, _, given = given.partition(" ")
            if scheme.lower() != "bearer":
                raise Refused(401, "expected Authorization: Bearer <token>", challenge)
            given = given.strip()
        # surrogatepass: any header text encodes, and no two texts alike.
        if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), route.secret):
            raise Refused(401, f"wrong {route.header} value", challenge)

    async def _body(self, request: web.Request) -> bytes:
        limit = self._receive.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            request[BODY_BYTES] = length
            raise _body_too_large(length, limit)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # a chunked body that kept coming
            raise _body_too_large(None, limit) from None
        request[BODY_BYTES] = len(body)
        return body


def _route_of(request: web.Request) -> tuple[str, str | None]:
    """The metrics' route (its path template; `other` for a path no route has, so that no
    path a sender makes up becomes a series) and the source its events are for."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "other"
    if route == "/ingest/{source}":
        source = request.match_info.get("source")
        return route, source if source in INGEST_SOURCES else None
    return route, {"/okta": Source.OKTA.value, "/ping": Source.PING.value}.get(route)


def _body_too_large(size: int | None, limit: int) -> Refused:
    what = f"a body of {size:,} bytes" if size is not None else "a body"
    return Refused(413, f"{what} over the limit of {limit:,} bytes ({PREFIX}MAX_BODY_BYTES)")


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers=headers)
