"""The `collect` subcommand: `pipeline collect SOURCE [--once] [--since T --until T]`.

Runs until SIGTERM or Ctrl-C (the page in hand is finished, its cursor committed, then the
process exits 0), one round with `--once` (for cron), or a backfill of a window with
`--since/--until` (resumable: the same command again continues it). A status line per round.
Failures are one line on stderr, never a traceback: exit 2 for the settings and arguments, 1
for what a vendor or Kafka refused.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING

from pydantic import ValidationError

from pipeline.settings import Settings, configuration_problems

if TYPE_CHECKING:
    from pipeline.collect.runner import Collector, Context
    from pipeline.collect.settings import CollectSettings

SOURCES = ("okta", "entra", "duo", "ping", "servicenow", "jira", "directory")
HELP = "pull vendor logs (Okta, Entra, Duo, PingOne, ServiceNow, Jira) into the raw topics"
DESCRIPTION = (
    "Pull a vendor's logs from its API into its raw Kafka topic (PIPELINE_KAFKA_BOOTSTRAP), one "
    "event per message keyed by user, with a cursor kept in Kafka (PIPELINE_COLLECT_CURSOR_TOPIC) "
    "that is committed only once Kafka acknowledged the events it covers. Settings: "
    "PIPELINE_COLLECT_* and PIPELINE_<VENDOR>_*. `directory --from okta|entra` writes the "
    "workforce roster from the IdP's users. Runs until SIGTERM or Ctrl-C, or one round with "
    "--once, or a backfill with --since/--until."
)


def add_command(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("collect", help=HELP, description=DESCRIPTION)
    add_arguments(command)
    command.set_defaults(handler=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", choices=SOURCES)
    parser.add_argument(
        "--from",
        dest="idp",
        choices=["okta", "entra"],
        help="the IdP whose users make the roster (directory only)",
    )
    parser.add_argument("--once", action="store_true", help="one round, then exit (cron)")
    parser.add_argument(
        "--since",
        type=_time,
        metavar="TIME",
        help="backfill from this time (ISO 8601; with --until)",
    )
    parser.add_argument(
        "--until", type=_time, metavar="TIME", help="backfill up to this time (with --since)"
    )


def _time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (2026-01-31 or 2026-01-31T08:00:00Z)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def run(args: argparse.Namespace) -> int:
    problem = _argument_problem(args)
    if problem:
        return _fail(args.source, problem, code=2)
    from pipeline.collect.settings import VENDOR_SETTINGS, CollectSettings

    try:
        settings = Settings()
        collect = CollectSettings()
    except ValidationError as exc:
        return _fail(args.source, f"configuration: {configuration_problems(exc, *VENDOR_SETTINGS)}")
    if not settings.kafka.bootstrap:
        return _fail(
            args.source,
            "PIPELINE_KAFKA_BOOTSTRAP is not set: the collector produces to the Kafka your "
            "workers read, and keeps its cursor there",
        )
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("pipeline.collect").setLevel(settings.log_level)
    for noisy in ("kafka", "aiokafka", "httpx", "httpcore", "msal", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if settings.log_level != "DEBUG":
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, _setter(stop)) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        return _collect(args, settings, collect, stop)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _argument_problem(args: argparse.Namespace) -> str | None:
    if (args.since is None) != (args.until is None):
        return "--since and --until go together (a backfill of that window)"
    if args.since is not None and args.since >= args.until:
        return "--since must be before --until"
    if args.since is not None and args.since > datetime.now(UTC):
        return "--since is in the future"
    if args.source == "directory":
        if args.idp is None:
            return "directory needs --from okta or --from entra"
        if args.since is not None:
            return "directory lists the users as they are now: no --since/--until"
    elif args.idp is not None:
        return "--from is for directory only"
    return None


def _setter(stop: threading.Event) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    return handler


def _collect(
    args: argparse.Namespace, settings: Settings, collect: CollectSettings, stop: threading.Event
) -> int:
    # Here, not at the top: `pipeline --help` and the other commands need none of this.
    from aiokafka.errors import KafkaError
    from kafka.errors import KafkaError as AdminKafkaError

    from pipeline.collect.cursor import CursorStore
    from pipeline.collect.http import CollectError, Stopped, stoppable_sleep
    from pipeline.collect.pacing import Pacer
    from pipeline.collect.progress import Progress
    from pipeline.collect.runner import Context, Runner, Span
    from pipeline.collect.settings import VENDOR_SETTINGS
    from pipeline.runtime.broker import BufferedProducer, TopicSetupError, create_topics
    from pipeline.runtime.metrics import CollectorMetrics, HealthServer, MetricsError, listen

    name = args.source
    bootstrap = str(settings.kafka.bootstrap)
    context = Context(collect, settings.topics, Progress(name), stop, Pacer(stoppable_sleep(stop)))
    try:
        collector = _build(name, args.idp, context)
    except ValidationError as exc:
        return _fail(name, f"configuration: {configuration_problems(exc, *VENDOR_SETTINGS)}")
    except ValueError as exc:
        return _fail(name, f"configuration: {exc}")
    span = (
        Span(args.since, args.until)
        if args.since is not None
        else Span(datetime.now(UTC) - collect.lookback)
    )
    try:
        metrics_socket = listen(settings.metrics)
    except MetricsError as exc:
        return _fail(name, str(exc), code=1)
    metrics = CollectorMetrics()
    if metrics_socket is not None:
        stopping = {"stopping": lambda: "the collector is stopping" if stop.is_set() else None}
        HealthServer(metrics_socket, metrics.registry, stopping).start_in_thread()
    producer = None
    try:
        create_topics(bootstrap, [collector.topic], settings.topics.partitions, settings.kafka)
        producer = BufferedProducer(bootstrap, **settings.kafka.aiokafka_options())
        cursors = None
        if collector.cursors:
            cursors = CursorStore(
                bootstrap, collect.cursor_topic, settings.kafka, producer, f"{name}/"
            )
        runner = Runner(
            collector, producer, cursors, context.progress, stop, collect.status_seconds, metrics
        )
        runner.run(span, once=args.once)
    except Stopped:
        pass
    except (CollectError, TopicSetupError) as exc:
        return _fail(name, str(exc), code=1)
    except (KafkaError, AdminKafkaError) as exc:
        return _fail(
            name,
            f"Kafka did not take the events ({type(exc).__name__}: {exc}); the cursor was not "
            "moved past them: running the collector again re-reads from its last cursor",
            code=1,
        )
    except Exception as exc:  # a bug: one line, the traceback only with PIPELINE_LOG_LEVEL=DEBUG
        logging.getLogger("pipeline.collect").debug("unexpected failure", exc_info=True)
        return _fail(name, f"unexpected failure (a bug): {type(exc).__name__}: {exc}", code=1)
    finally:
        context.close()
        if producer is not None:
            with suppress(KafkaError):
                producer.close()
    return 0


def _build(name: str, idp: str | None, context: Context) -> Collector:
    from pipeline.collect import directory, duo, entra, jira, okta, ping, servicenow

    if name == "directory":
        return directory.build(context, str(idp))
    builders = {
        "okta": okta.build,
        "entra": entra.build,
        "duo": duo.build,
        "ping": ping.build,
        "servicenow": servicenow.build,
        "jira": jira.build,
    }
    return builders[name](context)


def _fail(source: str, message: str, code: int = 2) -> int:
    """One line on stderr; exit 2 for the settings, 1 for what the world refused."""
    print(f"pipeline collect {source}: {' '.join(message.split())}", file=sys.stderr)
    return code
