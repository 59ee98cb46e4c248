"""`pipeline collect ping` against the simulated tenant's PingOne (real HTTPS server, real
broker): audit activities paged to the end by `_links.next`, a worker app's token by Client
Secret Basic or Post and renewed when it expires, a 429 and a run of 500s retried, refused
credentials named, and nothing lost when SIGKILLed during a backfill."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from collecting import collect, ids, kill_during, messages, tenant_env, window

from pipeline.collect import ping
from pipeline.collect.http import stoppable_sleep
from pipeline.collect.pacing import Pacer
from pipeline.collect.progress import Progress
from pipeline.collect.runner import Context, Span
from pipeline.collect.settings import CollectSettings
from pipeline.settings import Topics
from pipeline.simulate.tenant import Tenant

TOPIC = "raw.ping"
FAST = {"PIPELINE_PING_SLICE": "P1D", "PIPELINE_PING_SLICE_MAX": "P7D"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    with Tenant.simulate(tmp_path_factory.mktemp("ping"), users=30, weeks=3) as tenant:
        yield tenant


@pytest.fixture
def tenant(served: Tenant) -> Tenant:
    served.reset()
    return served


@pytest.mark.parametrize("client_auth", ["client_secret_basic", "client_secret_post"])
def test_activities_are_paged_to_the_end(
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    client_auth: str,
) -> None:
    since, until = window(tenant)
    env = tenant_env(
        tenant, "ping", broker, PIPELINE_PING_LIMIT="10", PIPELINE_PING_CLIENT_AUTH=client_auth
    )
    code, err = collect(monkeypatch, capsys, env | FAST, "ping", "--since", since, "--until", until)
    assert code == 0, err
    found = messages(broker, TOPIC)
    assert sorted(ids(found, "id")) == sorted(tenant.ids("ping.activities"))  # once each
    assert tenant.requests("ping") > len(found) / 10


def test_a_429_waits_its_retry_after_and_500s_are_retried(
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    since, until = window(tenant)
    env = tenant_env(tenant, "ping", broker, PIPELINE_PING_LIMIT="20", **FAST)
    tenant.faults("ping").throttle(at=2, retry_after=1.0)
    tenant.faults("ping").errors(at=4, count=3)
    started = time.monotonic()
    code, err = collect(monkeypatch, capsys, env, "ping", "--since", since, "--until", until)
    assert code == 0, err
    assert time.monotonic() - started >= 1.0
    assert "429 Too Many Requests; again in 1." in caplog.text
    assert caplog.text.count("500 Internal Server Error; again in") == 3
    assert sorted(ids(messages(broker, TOPIC), "id")) == sorted(tenant.ids("ping.activities"))


def test_an_expired_token_is_renewed(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tenant_env(tenant, "ping", "127.0.0.1:9", PIPELINE_PING_LIMIT="10", **FAST)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stop = threading.Event()
    context = Context(
        CollectSettings(), Topics(), Progress("ping"), stop, Pacer(stoppable_sleep(stop))
    )
    stream = ping.build(context).streams[0]
    since, until = window(tenant)
    pages = stream.round(None, Span(datetime.fromisoformat(since), datetime.fromisoformat(until)))
    records = list(next(pages).records)
    tenant.faults("ping").expire_tokens()
    records += [raw for page in pages for raw in page.records]
    context.close()
    assert context.progress.token_renewals == 1
    assert sorted(orjson.loads(raw)["id"] for raw in records) == sorted(
        tenant.ids("ping.activities")
    )


def test_refused_credentials_are_named_in_one_line(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    env = tenant_env(tenant, "ping", broker, PIPELINE_PING_CLIENT_SECRET="not-the-secret")
    code, err = collect(monkeypatch, capsys, env, "ping", "--once")
    assert code == 1 and "invalid_client" in err and "PIPELINE_PING_CLIENT_ID" in err
    assert "not-the-secret" not in err and len(err.strip().splitlines()) == 1
    env = tenant_env(tenant, "ping", broker, PIPELINE_PING_REGION="mars")
    code, err = collect(monkeypatch, capsys, env, "ping", "--once")
    assert code == 2 and "PIPELINE_PING_REGION" in err


def test_sigkilled_during_a_backfill_and_restarted_nothing_is_missing(
    tenant: Tenant, broker: str, tmp_path: Path
) -> None:
    since, until = window(tenant)
    env = tenant_env(
        tenant,
        "ping",
        broker,
        PIPELINE_PING_LIMIT="4",
        PIPELINE_PING_SLICE="PT6H",
        PIPELINE_PING_SLICE_MAX="PT12H",
    )
    events = tenant.ids("ping.activities")
    argv = ["ping", "--since", since, "--until", until]
    midway = kill_during(env, argv, broker, TOPIC, len(events), tmp_path / "log")
    assert midway >= 2, (tmp_path / "log").read_text()[-2000:]
    assert set(ids(messages(broker, TOPIC), "id")) == events
