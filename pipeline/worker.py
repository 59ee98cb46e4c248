"""`pipeline worker`: the Faust worker against the configured Kafka and warehouse."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import faust

from pipeline.app import build_app
from pipeline.broker import EmbeddedBroker, create_topics
from pipeline.plan import load_plan
from pipeline.settings import Settings
from pipeline.sinks.warehouse import Warehouse


def prepare_warehouse(warehouse: Warehouse, settings: Settings) -> list[str]:
    """Apply pending migrations and load the rollout plan; return the migrations applied."""
    applied = warehouse.migrate()
    warehouse.load_plan(load_plan(settings.plan_file))
    return applied


def pipeline_topics(settings: Settings) -> list[str]:
    """Every topic the worker reads or writes, internal ones included."""
    topics = settings.topics
    return [*topics.inputs(), topics.dead_letter, topics.enrollments]


@contextmanager
def kafka_bootstrap(settings: Settings) -> Iterator[str]:
    """The configured Kafka, or the embedded broker for as long as the block runs."""
    if settings.kafka.bootstrap:
        yield settings.kafka.bootstrap
        return
    with EmbeddedBroker() as broker:
        logging.getLogger("pipeline.worker").warning(
            "PIPELINE_KAFKA_BOOTSTRAP is unset: started the embedded broker at %s "
            "(in memory; it stops with this worker)",
            broker.bootstrap,
        )
        yield broker.bootstrap


def run_worker(settings: Settings) -> None:
    """Run until SIGTERM / SIGINT; offsets are committed only after warehouse writes."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with kafka_bootstrap(settings) as bootstrap, Warehouse(settings.clickhouse_dsn) as warehouse:
        prepare_warehouse(warehouse, settings)
        create_topics(
            bootstrap,
            pipeline_topics(settings),
            settings.topics.partitions,
            **settings.kafka.client_options(),
        )
        app = build_app(settings, warehouse, bootstrap)
        worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
        worker.execute_from_commandline()
