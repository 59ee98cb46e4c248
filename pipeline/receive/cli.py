"""The `receive` subcommand: settings checked, then the receiver until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys

from pydantic import ValidationError

from pipeline.receive.settings import ReceiveSettings, Secrets
from pipeline.settings import Settings, configuration_problems

HELP = "receive Okta Event Hooks, PingOne webhooks and plain POSTs into the raw Kafka topics"
DESCRIPTION = (
    "Listen on PIPELINE_RECEIVE_HOST:PIPELINE_RECEIVE_PORT (HTTPS with "
    "PIPELINE_RECEIVE_TLS_CERT_FILE) for GET/POST /okta, POST /ping and POST /ingest/{source}, "
    "each on when its secret is set, and produce each body to PIPELINE_KAFKA_BOOTSTRAP; a 2xx "
    "answer means Kafka acknowledged it. With PIPELINE_METRICS_PORT set, /metrics, /healthz "
    "and /readyz there. Runs until SIGTERM or Ctrl-C."
)


def add_command(commands: argparse._SubParsersAction) -> None:
    commands.add_parser("receive", help=HELP, description=DESCRIPTION).set_defaults(handler=run)


def run(args: argparse.Namespace | None = None) -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        return _fail(f"configuration: {configuration_problems(exc)}")
    try:
        receive = ReceiveSettings()
        secrets = receive.secrets()
    except ValidationError as exc:
        return _fail(f"configuration: {configuration_problems(exc, ReceiveSettings)}")
    except ValueError as exc:
        return _fail(f"configuration: {exc}")
    if not settings.kafka.bootstrap:
        return _fail(
            "PIPELINE_KAFKA_BOOTSTRAP is not set: the receiver produces to the Kafka your "
            "workers read (an embedded broker would live and die inside this process)"
        )
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python's admin chatter
    if settings.log_level != "DEBUG":
        # aiokafka logs every reconnect attempt during an outage; the 503 lines and the
        # status line say it once per request instead.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    from pipeline.runtime.metrics import MetricsError, listen  # aiohttp: not for `--help`

    try:
        metrics_socket = listen(settings.metrics)
    except MetricsError as exc:
        return _fail(str(exc), code=1)
    try:
        return asyncio.run(
            _serve(settings, settings.kafka.bootstrap, receive, secrets, metrics_socket)
        )
    except KeyboardInterrupt:  # Ctrl-C while starting, before the signal handlers
        return 130


async def _serve(
    settings: Settings,
    bootstrap: str,
    receive: ReceiveSettings,
    secrets: Secrets,
    metrics_socket: socket.socket | None,
) -> int:
    # Here, not at the top: `pipeline --help` and the other commands need no aiohttp.
    from pipeline.receive.server import Receiver, StartError
    from pipeline.runtime.metrics import HealthServer

    receiver = Receiver(receive, secrets, bootstrap, settings.kafka, settings.topics)
    try:
        url = await receiver.start()
    except StartError as exc:
        return _fail(str(exc), code=1)
    health = None
    if metrics_socket is not None:
        health = HealthServer(metrics_socket, receiver.metrics.registry, receiver.checks())
        await health.start()
        logging.getLogger("pipeline.receive").info("metrics and health on %s", health.url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    logging.getLogger("pipeline.receive").info(
        "listening on %s: %s; producing to %s",
        url,
        ", ".join(receiver.routes_on()),
        bootstrap,
    )
    await stop.wait()
    await receiver.stop()
    if health is not None:
        await health.stop()
    return 0


def _fail(message: str, code: int = 2) -> int:
    """One line on stderr; exit 2 for the settings, 1 for what the world refused."""
    print(f"pipeline receive: {message}", file=sys.stderr)
    return code
