"""Helpers of the collector tests: the simulated tenant's settings for each collector, the
collector run in process or as `python -m pipeline.collect` (SIGKILLed on demand), and what
the raw topics hold afterwards."""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from pipeline.collect.cli import add_arguments, run
from pipeline.simulate.tenant import Tenant
from pipeline.tools.demo_collect import collector_env

# Fast failures in tests: a few attempts, short back-offs.
QUICK = {
    "PIPELINE_COLLECT_ATTEMPTS": "5",
    "PIPELINE_COLLECT_BACKOFF_MAX": "0.2",
    "PIPELINE_COLLECT_STATUS_SECONDS": "1",
}


def tenant_env(tenant: Tenant, vendor: str, bootstrap: str, **more: str) -> dict[str, str]:
    """The settings a user of the simulated tenant sets for one collector."""
    return {
        **collector_env(tenant, vendor, bootstrap),
        **QUICK,
        "PIPELINE_DUO_MIN_INTERVAL": "0",
        **more,
    }


def window(tenant: Tenant) -> tuple[str, str]:
    """`--since` and `--until` that hold the whole simulated rollout (a day before its first
    record, and now)."""
    feeds = [tenant.rollout.okta, tenant.rollout.signins, tenant.rollout.duo_authentication]
    first = min(feed.times[0] for feed in feeds if len(feed))
    since = datetime.fromtimestamp(first / 1000, UTC) - timedelta(days=1)
    until = datetime.now(UTC).replace(microsecond=0)
    return since.isoformat(), until.isoformat()


def collect(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    *argv: str,
) -> tuple[int, str]:
    """`pipeline collect ARGV` in this process with `env` set: (exit code, stderr)."""
    for name in [name for name in os.environ if name.startswith("PIPELINE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    code = run(parser.parse_args(list(argv)))
    return code, capsys.readouterr().err


# How long `messages` waits for more once it reached the end offsets: the Tansu broker's end
# offsets have been seen to undercount (2,500 messages read while they summed to 2,004).
QUIET = 1.0


def messages(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every message of `topic`, as (key, value): read until the positions reach the end
    offsets (asked again each time) and then no message has come for QUIET seconds."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, partition) for partition in sorted(partitions)]
        if not assigned:
            return []
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        found: list[tuple[bytes | None, bytes]] = []
        deadline = time.monotonic() + 60
        last = time.monotonic()
        while True:
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for records in consumer.poll(timeout_ms=200).values():
                found.extend((record.key, record.value) for record in records)
                last = time.monotonic()
            if time.monotonic() - last < QUIET:
                continue
            ends = consumer.end_offsets(assigned)
            if all(consumer.position(tp) >= ends[tp] for tp in assigned):
                return found
    finally:
        consumer.close(autocommit=False)


def ids(found: Iterable[tuple[bytes | None, bytes]], field: str) -> list[str]:
    """The vendor id of each message (one record per message), duplicates kept."""
    return [str(orjson.loads(value)[field]) for _, value in found]


def child(env: dict[str, str], *argv: str, log: Path) -> subprocess.Popen[bytes]:
    """`python -m pipeline.collect ARGV` as a child process, its output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline.collect", *argv],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def kill_during(
    env: dict[str, str],
    argv: list[str],
    bootstrap: str,
    topic: str,
    total: int,
    log: Path,
    kills: int = 3,
    seed: int = 0,
    linger: float = 0.3,
) -> int:
    """Start the collector `kills` times and SIGKILL it each time once it has produced more
    than before (a random moment, up to `linger` seconds, after its first new page), then let
    a last run finish. The
    number of kills that landed with part of the backfill done (events on the topic, not all)."""
    chance = random.Random(seed)
    probe = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)

    def ends() -> int:  # grows with every batch produced: a cheap "something new"
        partitions = probe.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, partition) for partition in partitions]
        return sum(probe.end_offsets(assigned).values()) if assigned else 0

    midway = 0
    try:
        for _ in range(kills):
            before = ends()
            process = child(env, *argv, log=log)
            deadline = time.monotonic() + 60
            while process.poll() is None and ends() <= before and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(chance.uniform(0, linger))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait(30)
            if 0 < len({value for _, value in messages(bootstrap, topic)}) < total:
                midway += 1
    finally:
        probe.close()
    process = child(env, *argv, log=log)
    assert process.wait(180) == 0, log.read_text()[-3000:]
    return midway
