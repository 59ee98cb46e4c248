"""Two Faust workers of one consumer group in one process, sharing one warehouse.

Run by test_pipeline.py: the embedded warehouse (chDB) is open to a single process, so the
two workers that must split the partitions between them live in one process here. Each is
a full Faust app with its own consumer, producer and table; against a ClickHouse server
they would run as two `pipeline worker` processes, unchanged.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import faust

from pipeline.runtime.app import build_app
from pipeline.runtime.worker import prepare_warehouse
from pipeline.settings import Settings
from pipeline.sinks.warehouse import Warehouse


def main(assignments: Path) -> None:
    """Run both workers; keep `assignments` holding each one's raw-topic partitions."""
    settings = Settings()
    bootstrap = settings.kafka.bootstrap
    assert bootstrap, "PIPELINE_KAFKA_BOOTSTRAP must be set"
    raw_topics = set(settings.topics.inputs())
    with Warehouse(settings.clickhouse_dsn) as warehouse:
        prepare_warehouse(warehouse, settings)
        workers = [build_app(settings, warehouse, bootstrap) for _ in range(2)]
        held: dict[int, list[str]] = {}
        for number, app in enumerate(workers):

            @app.timer(interval=1.0)
            async def report(app: faust.App = app, number: int = number) -> None:
                held[number] = sorted(
                    f"{tp.topic}:{tp.partition}"
                    for tp in app.consumer.assignment()
                    if tp.topic in raw_topics
                )
                assignments.write_text(json.dumps(held))

        faust.Worker(*workers, loglevel="INFO", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
