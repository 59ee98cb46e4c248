"""`pipeline receive` with a real HTTP client, the real broker and, end to end, the real worker.

The receiver runs in this process on an event loop of its own (a thread), as `pipeline
receive` runs it; requests go over real sockets with urllib. Vendor behaviour the receiver is
built for is cited in pipeline/receive/server.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import TypeVar

import orjson
import pytest
import trustme
from aiokafka import AIOKafkaConsumer, TopicPartition
from streaming import run_worker, stored_rows

from pipeline.receive.server import Receiver, StartError, batch_of
from pipeline.receive.settings import ReceiveSettings
from pipeline.runtime.broker import EmbeddedBroker, create_topics, free_port
from pipeline.settings import Kafka, Topics

FIXTURES = Path(__file__).parent / "fixtures"
T = TypeVar("T")
OKTA_SECRET = "okta-hook-secret-9c1f"
PING_SECRET = "ping-header-secret-77ab"
TOKEN = "plain-bearer-token-41de"
# Fixtures that are each one sign-in step (auth_events rows) in their source's parser.
OKTA_STEPS = [
    "oie_fastpass.json",
    "oie_password_success.json",
    "oie_push_verify.json",
    "oie_sms.json",
    "oie_totp.json",
    "oie_webauthn_platform_mac.json",
    "oie_webauthn_security_key.json",
    "oie_webauthn_synced_icloud.json",
    "oie_webauthn_windows_hello.json",
]
PING_STEPS = [
    "p1_assertion_platform_passkey.json",
    "p1_assertion_security_key.json",
    "p1_assertion_synced_passkey.json",
    "p1_mfa_push_approved.json",
    "p1_otp_check_sms.json",
    "p1_password_check_succeeded.json",
]


def okta_events(count: int) -> list[dict]:
    """`count` Okta LogEvents, each with a uuid of its own (Okta's dedup key)."""
    events = []
    for n in range(count):
        event = orjson.loads((FIXTURES / "okta" / OKTA_STEPS[n % len(OKTA_STEPS)]).read_bytes())
        event["uuid"] = str(uuid.uuid4())
        events.append(event)
    return events


def okta_hook(events: list[dict]) -> bytes:
    """An Event Hook delivery, shaped as Okta's sample payload."""
    return orjson.dumps(
        {
            "eventType": "com.okta.event_hook",
            "eventTypeVersion": "1.0",
            "cloudEventsVersion": "0.1",
            "contentType": "application/json",
            "eventId": str(uuid.uuid4()),
            "eventTime": "2024-03-01T16:00:00.000Z",
            "source": "https://example.okta.com/api/v1/eventHooks/who1",
            "data": {"events": events},
        }
    )


def ping_batch(count: int) -> bytes:
    """A PingOne webhook batch in the ACTIVITY format: a JSON array of activities."""
    activities = []
    for n in range(count):
        path = FIXTURES / "ping" / PING_STEPS[n % len(PING_STEPS)]
        activity = orjson.loads(path.read_bytes())
        activity["id"] = str(uuid.uuid4())
        activities.append(activity)
    return orjson.dumps(activities)


def receive_settings(**more: object) -> ReceiveSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": free_port(),
        "okta_secret": OKTA_SECRET,
        "ping_secret": PING_SECRET,
        "token": TOKEN,
        "status_seconds": 0.2,
    }
    return ReceiveSettings(**(values | more))


class Running:
    """A Receiver on its own event loop in a thread, from start to stop."""

    def __init__(self, bootstrap: str, settings: ReceiveSettings) -> None:
        self.settings = settings
        self.receiver = Receiver(settings, settings.secrets(), bootstrap, Kafka(), Topics())
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.url = ""

    def __enter__(self) -> Running:
        self._thread.start()
        try:
            self.url = self._run(self.receiver.start())
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._run(self.receiver.stop())
        finally:
            self._close()

    def _run(self, coroutine: Coroutine[None, None, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(60)

    def _close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> object:
        return orjson.loads(self.body)


def request(
    url: str,
    method: str = "POST",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> Answer:
    sent = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(sent, timeout=30, context=context) as answer:
            return Answer(answer.status, dict(answer.headers), answer.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read())


def topic_values(bootstrap: str, topic: str) -> list[bytes]:
    """Every message the topic holds, read up to its end offsets."""

    async def read() -> list[bytes]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            await consumer.topics()  # metadata of every topic, so their partitions are known
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            values: list[bytes] = []
            deadline = time.monotonic() + 30
            while [p for p in partitions if await consumer.position(p) < ends[p]]:
                assert time.monotonic() < deadline, f"{topic} not read to its end"
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    values += [record.value for record in records]
            return values
        finally:
            await consumer.stop()

    return asyncio.run(read())


def events_in(values: list[bytes]) -> list[dict]:
    """The vendor records of raw messages, as the worker's splitter opens them."""
    from pipeline.sources.records import split_batch

    records: list[dict] = []
    for value in values:
        items = split_batch(value)
        records += [orjson.loads(item) for item in (items if items is not None else [value])]
    return records


OKTA_AUTH = {"Authorization": OKTA_SECRET}
PING_AUTH = {"X-Pipeline-Secret": PING_SECRET}
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def test_okta_verification_handshake(broker: str) -> None:
    with Running(broker, receive_settings()) as running:
        challenge = "Me_rShK8JHsTnbyYrWXCEoMGbM_zsZ6k0hLPZ_Pg"
        headers = {"X-Okta-Verification-Challenge": challenge}
        answer = request(f"{running.url}/okta", "GET", headers=OKTA_AUTH | headers)
        assert answer.status == 200
        assert answer.json() == {"verification": challenge}
        assert answer.headers["Content-Type"].startswith("application/json")
        # Okta sends the hook's secret on the verification GET too: without it, nothing.
        assert request(f"{running.url}/okta", "GET", headers=headers).status == 401
        wrong = {"Authorization": "not-the-secret"} | headers
        assert request(f"{running.url}/okta", "GET", headers=wrong).status == 401
        missing = request(f"{running.url}/okta", "GET", headers=OKTA_AUTH)
        assert missing.status == 400
        assert "X-Okta-Verification-Challenge" in missing.json()["error"]


def test_an_okta_hook_is_one_kafka_message_holding_its_events(broker: str) -> None:
    events = okta_events(100)
    body = okta_hook(events)
    with Running(broker, receive_settings()) as running:
        answer = request(f"{running.url}/okta", body=body, headers=OKTA_AUTH)
        assert (answer.status, answer.body) == (200, b"")
    assert topic_values(broker, "raw.okta") == [body]
    assert events_in([body]) == events


def test_a_wrong_or_missing_secret_is_401_and_nothing_is_produced(broker: str) -> None:
    body = okta_hook(okta_events(3))
    with Running(broker, receive_settings()) as running:
        for headers in ({}, {"Authorization": "guess"}, {"Authorization": OKTA_SECRET + "x"}):
            assert request(f"{running.url}/okta", body=body, headers=headers).status == 401
        for headers in ({}, {"X-Pipeline-Secret": "guess"}, OKTA_AUTH):
            assert request(f"{running.url}/ping", body=ping_batch(2), headers=headers).status == 401
        for headers in ({}, {"Authorization": TOKEN}, {"Authorization": "Bearer guess"}):
            answer = request(f"{running.url}/ingest/okta", body=body, headers=headers)
            assert answer.status == 401
            assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert running.receiver.counters.unauthorized == 9
    for topic in Topics().inputs():
        assert topic_values(broker, topic) == [], topic


def test_a_route_without_its_secret_is_off(broker: str) -> None:
    with Running(broker, receive_settings(ping_secret=None, token=None)) as running:
        off = request(f"{running.url}/ping", body=ping_batch(1), headers=PING_AUTH)
        assert off.status == 404
        assert "PIPELINE_RECEIVE_PING_SECRET" in off.json()["error"]
        assert request(f"{running.url}/ingest/duo", body=b"{}", headers=BEARER).status == 404
        assert running.receiver.routes_on() == ["/okta"]
    with pytest.raises(ValueError, match="no route has a secret"):
        receive_settings(okta_secret=None, ping_secret=None, token=None).secrets()


def test_too_large_bodies_are_413_and_bad_json_is_400_with_the_reason(broker: str) -> None:
    with Running(broker, receive_settings(max_body_bytes=4096)) as running:
        big = okta_hook(okta_events(5))
        assert len(big) > 4096
        answer = request(f"{running.url}/okta", body=big, headers=OKTA_AUTH)
        assert answer.status == 413
        assert "PIPELINE_RECEIVE_MAX_BODY_BYTES" in answer.json()["error"]

        # No Content-Length: a chunked body is cut off at the limit as it comes.
        def chunks() -> Iterator[bytes]:
            yield from (big[i : i + 1000] for i in range(0, len(big), 1000))

        chunked = urllib.request.Request(
            f"{running.url}/okta",
            data=chunks(),
            method="POST",
            headers=OKTA_AUTH | {"Transfer-Encoding": "chunked"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(chunked, timeout=30)
        assert refused.value.code == 413

        for body, reason in [
            (b'{"data": {"events": [{"uuid": tru}]}}', "not valid JSON"),
            (b"", "empty body"),
            (b"42", "not an object or an array"),
            (b'{"a": "\xff"}', "not UTF-8"),
            (b"[" * 2000 + b"]" * 2000, "nested too deeply"),  # within the 4 kB
            (b'{"a": 1}\n{"b": 2}\n', "not valid JSON"),  # Okta sends one document
        ]:
            answer = request(f"{running.url}/okta", body=body, headers=OKTA_AUTH)
            assert answer.status == 400, body[:40]
            assert reason in answer.json()["error"]
        bad_line = request(
            f"{running.url}/ingest/duo", body=b'{"a": 1}\n\n{"b": 2\n', headers=BEARER
        )
        assert bad_line.status == 400
        assert bad_line.json()["error"].startswith("line 3: not valid JSON")
    for topic in Topics().inputs():
        assert topic_values(broker, topic) == [], topic


def test_a_body_over_the_kafka_message_limit_goes_as_arrays_of_its_records(broker: str) -> None:
    events = okta_events(60)
    body = okta_hook(events)
    limit = 20_000
    assert len(body) > 4 * limit
    with Running(broker, receive_settings(max_message_bytes=limit)) as running:
        assert request(f"{running.url}/okta", body=body, headers=OKTA_AUTH).status == 200
        values = topic_values(broker, "raw.okta")
        assert len(values) > 4
        assert all(len(value) <= limit and value.startswith(b"[") for value in values)
        assert sorted(e["uuid"] for e in events_in(values)) == sorted(e["uuid"] for e in events)
        one_too_big = orjson.dumps({"uuid": "x", "debug": "y" * limit})
        answer = request(f"{running.url}/okta", body=one_too_big, headers=OKTA_AUTH)
        assert answer.status == 413
        assert "PIPELINE_RECEIVE_MAX_MESSAGE_BYTES" in answer.json()["error"]


def test_the_plain_route_takes_an_object_an_array_or_ndjson(broker: str) -> None:
    events = okta_events(4)
    lines = [orjson.dumps(event) for event in events]
    with Running(broker, receive_settings()) as running:
        url = f"{running.url}/ingest/okta"
        assert request(url, body=lines[0], headers=BEARER).json() == {"events": 1, "messages": 1}
        array = orjson.dumps(events[1:3])
        assert request(url, body=array, headers=BEARER).json() == {"events": 2, "messages": 1}
        ndjson = b"\n".join([lines[3], b"", lines[0]]) + b"\n"
        assert request(url, body=ndjson, headers=BEARER).json() == {"events": 2, "messages": 1}
        roster = b'{"user": "ana@example.com", "department": "IT"}'
        answer = request(f"{running.url}/ingest/roster", body=roster, headers=BEARER)
        assert answer.status == 200
        unknown = request(f"{running.url}/ingest/splunk", body=roster, headers=BEARER)
        assert unknown.status == 404
        assert "okta, entra, ping, duo, tickets, roster" in unknown.json()["error"]
    values = topic_values(broker, "raw.okta")
    assert lines[0] in values
    assert array in values
    assert b"[" + lines[3] + b"," + lines[0] + b"]" in values  # NDJSON as one JSON array
    assert topic_values(broker, "raw.roster") == [roster]


def test_okta_ping_and_plain_posts_end_in_the_warehouse(broker: str, tmp_path: Path) -> None:
    hook, ping, ndjson = okta_events(40), ping_batch(30), okta_events(5)
    with Running(broker, receive_settings()) as running:
        assert request(f"{running.url}/okta", body=okta_hook(hook), headers=OKTA_AUTH).status == 200
        assert request(f"{running.url}/ping", body=ping, headers=PING_AUTH).status == 200
        lines = b"\n".join(orjson.dumps(event) for event in ndjson)
        assert request(f"{running.url}/ingest/okta", body=lines, headers=BEARER).status == 200
    warehouse = f"chdb://{tmp_path / 'wh'}"
    run_worker(broker, warehouse, tmp_path / "worker.log", 3)
    auth_events = stored_rows(warehouse)[0]
    assert auth_events == 40 + 30 + 5


def test_a_stopped_broker_is_503_and_the_retry_once_it_is_back_is_stored_once(
    tmp_path: Path,
) -> None:
    events = okta_events(25)
    body = okta_hook(events)
    timeout = 1.0
    port = free_port()
    broker = EmbeddedBroker(port=port).start()
    bootstrap = broker.bootstrap
    try:
        with Running(bootstrap, receive_settings(produce_timeout=timeout)) as running:
            broker.stop()
            started = time.monotonic()
            down = request(f"{running.url}/okta", body=body, headers=OKTA_AUTH)
            assert down.status == 503
            assert time.monotonic() - started < 2.5  # within Okta's 3 s
            assert down.headers["Retry-After"] == "5"
            assert "did not acknowledge" in down.json()["error"]
            # What aiokafka still held of that body expires (request_timeout_ms is the produce
            # timeout) before the broker is back: Tansu, which keeps nothing across its
            # restart, would ack it to a topic not made yet and never serve it.
            time.sleep(2 * timeout + 0.5)
            broker = EmbeddedBroker(port=port).start()  # the same port
            topics = Topics()
            create_topics(bootstrap, [*topics.inputs(), topics.dead_letter], topics.partitions)
            deadline = time.monotonic() + 30
            while (
                retry := request(f"{running.url}/okta", body=body, headers=OKTA_AUTH)
            ).status != 200:
                assert retry.status == 503
                assert time.monotonic() < deadline, "the producer did not reconnect"
                time.sleep(0.5)
            # Okta retrying a delivery whose 200 it did not see: the body twice in Kafka.
            assert request(f"{running.url}/okta", body=body, headers=OKTA_AUTH).status == 200
            assert running.receiver.counters.unavailable >= 1
        assert topic_values(bootstrap, "raw.okta") == [body, body]
        warehouse = f"chdb://{tmp_path / 'wh'}"
        run_worker(bootstrap, warehouse, tmp_path / "worker.log", 2)
        assert stored_rows(warehouse)[0] == len(events)  # each event once
    finally:
        broker.stop()


def test_https_round_trip(broker: str, tmp_path: Path) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.cert_chain_pems[0].write_to_path(cert)
    for extra in certificate.cert_chain_pems[1:]:
        extra.write_to_path(cert, append=True)
    certificate.private_key_pem.write_to_path(key)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    settings = receive_settings(tls_cert_file=cert, tls_key_file=key)
    body = okta_hook(okta_events(2))
    with Running(broker, settings) as running:
        assert running.url.startswith("https://127.0.0.1:")
        answer = request(f"{running.url}/okta", body=body, headers=OKTA_AUTH, context=trusting)
        assert answer.status == 200
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            request(f"{running.url}/okta", body=body, headers=OKTA_AUTH)  # an untrusting client
    assert topic_values(broker, "raw.okta") == [body]
    with pytest.raises(StartError, match="PIPELINE_RECEIVE_TLS_CERT_FILE"):
        Running(broker, receive_settings(tls_cert_file=key, tls_key_file=cert)).__enter__()


def test_no_secret_and_no_event_content_in_the_logs(
    broker: str, caplog: pytest.LogCaptureFixture
) -> None:
    events = okta_events(3)
    body = okta_hook(events)
    user = events[0]["actor"]["alternateId"]
    caplog.set_level(logging.DEBUG)
    with Running(broker, receive_settings()) as running:
        challenge = {"X-Okta-Verification-Challenge": "challenge-value-5e2"}
        request(f"{running.url}/okta", "GET", headers=OKTA_AUTH | challenge)
        request(f"{running.url}/okta", body=body, headers=OKTA_AUTH)
        request(f"{running.url}/okta", body=body, headers={"Authorization": "guess-" + TOKEN})
        request(f"{running.url}/ping", body=ping_batch(2), headers=PING_AUTH)
        request(f"{running.url}/ingest/okta", body=b'{"user": "' + user.encode(), headers=BEARER)
        time.sleep(0.5)  # a status line or two
    logged = "\n".join(record.getMessage() for record in caplog.records)
    lines = [r.getMessage() for r in caplog.records if r.name == "pipeline.receive"]
    assert sum(" events=" in line for line in lines) == 5  # one line per request
    assert any(line.startswith("status: 5 requests") for line in lines)
    assert "POST /okta 200 events=3 messages=1" in logged
    for secret in (OKTA_SECRET, PING_SECRET, TOKEN, "challenge-value-5e2", user):
        assert secret not in logged


def run_cli(env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_RECEIVE_")}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.receive"],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_command_refuses_to_start_in_one_line(broker: str, tmp_path: Path) -> None:
    kafka = {"PIPELINE_KAFKA_BOOTSTRAP": broker}
    cases = [
        (kafka, "no route has a secret"),
        ({"PIPELINE_RECEIVE_TOKEN": TOKEN}, "PIPELINE_KAFKA_BOOTSTRAP is not set"),
        (
            kafka | {"PIPELINE_RECEIVE_TOKEN": TOKEN, "PIPELINE_RECEIVE_TOKEN_FILE": "/x"},
            "set PIPELINE_RECEIVE_TOKEN or PIPELINE_RECEIVE_TOKEN_FILE, not both",
        ),
        (
            kafka | {"PIPELINE_RECEIVE_TOKEN_FILE": str(tmp_path / "absent")},
            "PIPELINE_RECEIVE_TOKEN_FILE: cannot read",
        ),
        (kafka | {"PIPELINE_RECEIVE_TOKEN": TOKEN, "PIPELINE_RECEIVE_PORT": "x"}, "_PORT:"),
    ]
    for env, message in cases:
        done = run_cli(env)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
        assert TOKEN not in done.stderr
    unreachable = kafka | {
        "PIPELINE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "PIPELINE_KAFKA_CONNECT_TIMEOUT": "2",
        "PIPELINE_RECEIVE_TOKEN": TOKEN,
    }
    done = run_cli(unreachable, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "pipeline receive: cannot set up the Kafka topics" in done.stderr


def test_the_command_serves_until_sigterm(broker: str, tmp_path: Path) -> None:
    port = free_port()
    secret_file = tmp_path / "okta-secret"
    secret_file.write_text(OKTA_SECRET + "\n")  # as a mounted secret often is
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_RECEIVE_")}
    env = clean | {
        "PIPELINE_KAFKA_BOOTSTRAP": broker,
        "PIPELINE_RECEIVE_PORT": str(port),
        "PIPELINE_RECEIVE_OKTA_SECRET_FILE": str(secret_file),
    }
    log = tmp_path / "receive.log"
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "pipeline.receive"], env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 60
        while "listening on" not in log.read_text():
            assert child.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        body = okta_hook(okta_events(2))
        answer = request(f"http://127.0.0.1:{port}/okta", body=body, headers=OKTA_AUTH)
        assert answer.status == 200
    finally:
        child.send_signal(signal.SIGTERM)
        assert child.wait(30) == 0, log.read_text()
    text = log.read_text()
    assert "POST /okta 200 events=2" in text
    assert "stopped; status: 1 requests" in text
    assert OKTA_SECRET not in text and "Traceback" not in text
    assert topic_values(broker, "raw.okta") == [body]


def test_batches_are_whole_bodies_unless_over_the_limit() -> None:
    """The decision without Kafka: what a body becomes."""
    records = [orjson.dumps({"uuid": str(n), "pad": "x" * 100}) for n in range(30)]
    body = orjson.dumps({"data": {"events": [orjson.loads(r) for r in records]}})
    assert batch_of(body, 1_000_000).messages == [body]
    assert batch_of(body, 1_000_000).events == 30
    split = batch_of(body, 1024)
    assert split.events == 30 and all(len(message) <= 1024 for message in split.messages)
    assert [r for m in split.messages for r in orjson.loads(m)] == [
        orjson.loads(r) for r in records
    ]
    assert batch_of(b'{"data": {"events": []}}', 1024).messages == []
