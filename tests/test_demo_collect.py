"""`pipeline demo --collect` as a user runs it, at a small size: the rollout served by the
simulated tenant, every collector's backfill through the real broker, the worker into a real
embedded warehouse, and every week equal to the simulator's truth."""

from __future__ import annotations

import re
from pathlib import Path

from commands import pipeline_cli

from pipeline.model import Source
from pipeline.sinks.warehouse import Warehouse
from pipeline.tools.demo_collect import COLLECTORS


def test_the_collecting_demo_ends_with_every_week_equal_to_the_truth(
    broker: str, tmp_path: Path
) -> None:
    out, dsn = tmp_path / "out", f"chdb://{tmp_path / 'wh'}"
    env = {"PIPELINE_KAFKA_BOOTSTRAP": broker, "PIPELINE_CLICKHOUSE_DSN": dsn}
    users, weeks = "60", "8"
    done = pipeline_cli(
        "demo", "--collect", "--users", users, "--weeks", weeks, "--out", str(out), env=env
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout
    assert "8 of 8 weeks equal" in lines, lines[-3000:]
    assert re.search(r"roster: \d+ people to \S+ .*HR export", lines)
    assert re.search(r"PingFederate: [1-9]\d* audit records to \S+ as a shipper would", lines)
    for name in COLLECTORS:
        assert f"    {name}: backfill done" in lines
        assert (out / f"collect-{name}.log").exists()
    # Okta's events came through `collect okta`, PingOne's and PingFederate's through
    # `collect ping` and the shipper: the warehouse holds as many as were simulated.
    with Warehouse(dsn) as warehouse:
        for source in (Source.OKTA, Source.PING):
            simulated = (out / f"{source.value}.ndjson").read_bytes().splitlines()
            stored = sum(
                warehouse.query(
                    f"SELECT count() FROM {table} FINAL WHERE source = %(s)s", {"s": source.value}
                )[0][0]
                for table in ("auth_events", "enrollment_events")
            )
            assert stored == len(simulated), source
