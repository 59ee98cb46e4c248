"""`pipeline collect servicenow` against the simulated tenant's Table API (real HTTPS server,
real broker): incidents paged to the end by `Link` headers, none skipped when an incident is
updated during the walk (the offsets shift), a 429 waited until `X-RateLimit-Reset`, 500s
retried, refused credentials named, and nothing lost when SIGKILLed during a backfill."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from collecting import collect, ids, kill_during, messages, tenant_env, window

from pipeline.collect import servicenow
from pipeline.collect.http import stoppable_sleep
from pipeline.collect.pacing import Pacer
from pipeline.collect.progress import Progress
from pipeline.collect.runner import Context, Span, user_key
from pipeline.collect.settings import CollectSettings
from pipeline.model import Source
from pipeline.settings import Topics
from pipeline.simulate.tenant import Tenant

TOPIC = "raw.tickets"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    # Tickets are rare: 300 people over 30 weeks open some sixty incidents.
    with Tenant.simulate(tmp_path_factory.mktemp("sn"), users=300, weeks=30) as tenant:
        yield tenant


@pytest.fixture
def tenant(served: Tenant) -> Tenant:
    served.reset()
    return served


def test_incidents_are_paged_to_the_end_by_link_headers(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    incidents = tenant.ids("servicenow.incident")
    assert len(incidents) > 20
    since, until = window(tenant)
    env = tenant_env(tenant, "servicenow", broker, PIPELINE_SERVICENOW_LIMIT="7")
    argv = ["servicenow", "--since", since, "--until", until]
    code, err = collect(monkeypatch, capsys, env, *argv)
    assert code == 0, err
    found = messages(broker, TOPIC)
    assert sorted(ids(found, "sys_id")) == sorted(incidents)
    assert tenant.requests("servicenow") == -(-len(incidents) // 7)
    key = user_key(Source.TICKETS)
    assert all(message_key is not None and message_key == key(v) for message_key, v in found)
    assert all(b"caller_id.email" in value for _, value in found)  # the dot-walked field


def test_an_incident_updated_during_the_walk_does_not_make_another_slip(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first page, an incident it held is updated: it leaves the round's set, every
    later offset moves by one, and X-Total-Count drops. The walk starts again from its
    watermark, so the incident that moved onto the first page's last offset is still read."""
    env = tenant_env(tenant, "servicenow", "127.0.0.1:9", PIPELINE_SERVICENOW_LIMIT="5")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stop = threading.Event()
    context = Context(
        CollectSettings(), Topics(), Progress("servicenow"), stop, Pacer(stoppable_sleep(stop))
    )
    stream = servicenow.build(context).streams[0]
    since, until = window(tenant)
    pages = stream.round(None, Span(datetime.fromisoformat(since), datetime.fromisoformat(until)))
    first = next(pages).records
    feed = tenant.rollout.servicenow
    moved = feed.ids.index(orjson.loads(first[0])["sys_id"])
    later = datetime.now(UTC) + timedelta(minutes=5)
    record = orjson.loads(feed.lines[moved]) | {"sys_updated_on": f"{later:%Y-%m-%d %H:%M:%S}"}
    monkeypatch.setattr(feed, "times", [*feed.times[:moved], *feed.times[moved + 1 :]])
    monkeypatch.setattr(feed, "ids", [*feed.ids[:moved], *feed.ids[moved + 1 :]])
    monkeypatch.setattr(feed, "lines", [*feed.lines[:moved], *feed.lines[moved + 1 :]])
    feed.add(int(later.timestamp() * 1000), record["sys_id"], orjson.dumps(record))
    rest = [raw for page in pages for raw in page.records]
    context.close()
    read = {orjson.loads(raw)["sys_id"] for raw in [*first, *rest]}
    assert read == tenant.ids("servicenow.incident")
    assert context.progress.requests > -(-len(read) // 5)  # the walk started again


def test_a_429_waits_for_the_reset_and_500s_are_retried(
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    since, until = window(tenant)
    env = tenant_env(tenant, "servicenow", broker, PIPELINE_SERVICENOW_LIMIT="10")
    tenant.faults("servicenow").throttle(at=2, retry_after=1.0)
    tenant.faults("servicenow").errors(at=4, count=2)
    started = time.monotonic()
    argv = ["servicenow", "--since", since, "--until", until]
    code, err = collect(monkeypatch, capsys, env, *argv)
    assert code == 0, err
    assert time.monotonic() - started >= 1.0  # X-RateLimit-Reset: no Retry-After here
    assert "429 Too Many Requests; again in" in caplog.text
    assert caplog.text.count("500 Internal Server Error; again in") == 2
    found = ids(messages(broker, TOPIC), "sys_id")
    assert sorted(found) == sorted(tenant.ids("servicenow.incident"))


def test_refused_credentials_are_named(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    env = tenant_env(tenant, "servicenow", broker, PIPELINE_SERVICENOW_PASSWORD="wrong-one")
    code, err = collect(monkeypatch, capsys, env, "servicenow", "--once")
    assert code == 1 and "401" in err and "User Not Authenticated" in err
    assert "read access to the incident table" in err and "wrong-one" not in err
    env = tenant_env(tenant, "servicenow", broker, PIPELINE_SERVICENOW_TIMEZONE="Mars/Olympus")
    code, err = collect(monkeypatch, capsys, env, "servicenow", "--once")
    assert code == 2 and "PIPELINE_SERVICENOW_TIMEZONE" in err


def test_sigkilled_during_a_backfill_and_restarted_nothing_is_missing(
    tenant: Tenant, broker: str, tmp_path: Path
) -> None:
    since, until = window(tenant)
    env = tenant_env(tenant, "servicenow", broker, PIPELINE_SERVICENOW_LIMIT="1")
    incidents = tenant.ids("servicenow.incident")
    argv = ["servicenow", "--since", since, "--until", until]
    midway = kill_during(env, argv, broker, TOPIC, len(incidents), tmp_path / "log", linger=0.1)
    assert midway >= 2, (tmp_path / "log").read_text()[-2000:]
    assert set(ids(messages(broker, TOPIC), "sys_id")) == incidents
