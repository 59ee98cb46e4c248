"""The rollout delivered as the vendors' shippers deliver it, through the real broker and
worker: Entra as Event Hubs bodies (`{"records": [...]}`, many records per message), Okta as
Event Hook bodies (`{"data": {"events": [...]}}`). The weekly metrics must equal the truth,
a replay must change nothing, and one broken record in a body costs only itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from streaming import (
    USERS,
    WEEKS,
    metrics_of,
    produce,
    read_dead_letters,
    run_worker,
    stored_rows,
    truth_of,
)

from pipeline.model import Kind, Source
from pipeline.settings import Settings
from pipeline.simulate.run import simulate
from pipeline.sinks.warehouse import Warehouse
from pipeline.sources.registry import parse

TOPICS = Settings().topics
BROKEN_AT = 3  # the item index (from 1) of the broken record in the extra body


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("native")
    simulate(users=USERS, weeks=WEEKS, seed=23, out=out, delivery="native")
    return out


def body_with_a_broken_record(native: Path) -> tuple[bytes, list[str]]:
    """An Event Hubs body of five records: four new ones that no metric counts (copies of
    the rollout's `other` records, new ids), and a broken one third."""
    first_body = orjson.loads((native / "entra.ndjson").read_bytes().splitlines()[0])
    others = [
        record
        for record in first_body["records"]
        if parse(Source.ENTRA, orjson.dumps(record)).kind == Kind.OTHER
    ][:4]
    ids = []
    for number, record in enumerate(others):
        record["properties"]["id"] = f"native-extra-{number}"
        ids.append(parse(Source.ENTRA, orjson.dumps(record)).event_id)
    broken = {"time": "2026-03-02T10:00:00Z", "category": "SignInLogs", "properties": []}
    records = [*others[: BROKEN_AT - 1], broken, *others[BROKEN_AT - 1 :]]
    return orjson.dumps({"records": records}), ids


def test_native_delivery_equals_the_truth_a_broken_record_costs_itself_and_replays_change_nothing(
    native: Path, broker: str, tmp_path: Path
) -> None:
    bodies = (native / "entra.ndjson").read_bytes().splitlines()
    hooks = (native / "okta.ndjson").read_bytes().splitlines()
    assert all(len(orjson.loads(body)["records"]) > 1 for body in bodies)
    assert all(len(orjson.loads(hook)["data"]["events"]) > 1 for hook in hooks)
    assert max(map(len, bodies)) < 1_000_000  # Event Hubs' largest publication
    extra, extra_ids = body_with_a_broken_record(native)
    sent = produce(broker, native, {TOPICS.entra: [extra]})
    warehouse = f"chdb://{tmp_path / 'wh'}"
    log = tmp_path / "worker.log"
    run_worker(broker, warehouse, log, sent)

    assert metrics_of(warehouse) == truth_of(native)
    with Warehouse(warehouse) as opened:
        stored = opened.query(
            "SELECT count() FROM auth_events FINAL WHERE event_id IN {ids:Array(String)}",
            {"ids": extra_ids},
        )
        letters = opened.query("SELECT topic, item, reason, raw FROM dead_letters FINAL")
        messages, events = opened.query("SELECT sum(messages), sum(events) FROM ingest_batches")[0]
    assert stored == [(len(extra_ids),)]  # N - 1 of the body stored ...
    ((topic, item, reason, raw),) = letters  # ... and one dead letter, the broken record
    assert (topic, item) == (TOPICS.entra, BROKEN_AT)
    assert reason and orjson.loads(raw)["properties"] == []
    ((value, headers),) = asyncio.run(read_dead_letters(broker, 1))
    assert headers["dead_letter.item"] == str(BROKEN_AT)
    assert orjson.loads(value)["properties"] == []
    # in = stored + dead letters, in records; and every message counted once
    records = sum(Path(native, f"{s.value}.ndjson").read_bytes().count(b"\n") for s in Source)
    in_bodies = sum(len(orjson.loads(b)["records"]) for b in bodies) - len(bodies)
    in_hooks = sum(len(orjson.loads(h)["data"]["events"]) for h in hooks) - len(hooks)
    roster = (native / "roster.ndjson").read_bytes().count(b"\n")
    assert messages == sent
    assert events == records + in_bodies + in_hooks + roster + 5
    rows = stored_rows(warehouse)

    # Every topic read again from its start by a new consumer group.
    run_worker(broker, warehouse, log, sent, PIPELINE_APP_ID="native-replay")
    assert metrics_of(warehouse) == truth_of(native)
    assert stored_rows(warehouse) == rows
