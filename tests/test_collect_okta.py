"""`pipeline collect okta` against the simulated tenant's System Log API (real HTTPS server,
real broker): pages to the end, polls through empty pages and events out of `published`
order without re-reading, waits out a 429, rides a run of 500s, renews an expired token,
names the missing permission, and loses nothing when SIGKILLed during a backfill."""

from __future__ import annotations

import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from collecting import child, collect, ids, kill_during, messages, tenant_env, window
from prometheus_client.parser import text_string_to_metric_families

from pipeline.collect import okta
from pipeline.collect.http import stoppable_sleep
from pipeline.collect.pacing import Pacer
from pipeline.collect.progress import Progress
from pipeline.collect.runner import Context, Span, user_key
from pipeline.collect.settings import CollectSettings
from pipeline.model import Source
from pipeline.runtime.broker import free_port
from pipeline.settings import Topics
from pipeline.simulate.tenant import Tenant

TOPIC = "raw.okta"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    with Tenant.simulate(tmp_path_factory.mktemp("okta"), users=30, weeks=3) as tenant:
        yield tenant


@pytest.fixture
def tenant(served: Tenant) -> Tenant:
    served.reset()
    return served


def test_a_backfill_pages_to_the_end_each_event_once_keyed_by_user(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    since, until = window(tenant)
    env = tenant_env(tenant, "okta", broker, PIPELINE_OKTA_LIMIT="100")
    code, err = collect(monkeypatch, capsys, env, "okta", "--since", since, "--until", until)
    assert code == 0, err
    found = messages(broker, TOPIC)
    assert sorted(ids(found, "uuid")) == sorted(tenant.ids("okta.logs"))
    assert tenant.requests("okta") == len(found) // 100 + 1  # pages of 100, the last short
    key = user_key(Source.OKTA)
    assert all(message_key == key(value) for message_key, value in found)
    assert sum(message_key is not None for message_key, _ in found) > len(found) / 2
    # The same backfill again: already complete, nothing asked, nothing produced.
    code, err = collect(monkeypatch, capsys, env, "okta", "--since", since, "--until", until)
    assert code == 0, err
    assert len(messages(broker, TOPIC)) == len(found)


def test_polling_ends_a_round_at_a_short_page_and_follows_next_through_empty_pages(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Live polling (no --until): since on the first request only, then the `next` link. Two
    empty pages with a `next` link that stays in place (events not persisted yet) each end a
    round with nothing lost; events come in persistence order, not `published` order."""
    env = tenant_env(
        tenant, "okta", broker, PIPELINE_OKTA_LIMIT="200", PIPELINE_COLLECT_LOOKBACK="P60D"
    )
    tenant.faults("okta").empty_pages(at=2, count=2)
    rounds = []
    for _ in range(4):
        before = tenant.requests("okta")
        code, err = collect(monkeypatch, capsys, env, "okta", "--once")
        assert code == 0, err
        rounds.append(tenant.requests("okta") - before)
    found = messages(broker, TOPIC)
    events = tenant.ids("okta.logs")
    # 1st round: a full page, then the empty page; 2nd: the empty page; 3rd: to the end,
    # whose short page ends it; 4th: one request, an empty page at the end of the log.
    assert rounds == [2, 1, len(events) // 200 + 1 - 1, 1]
    assert sorted(ids(found, "uuid")) == sorted(events)  # once each: no re-read on restart
    published = [orjson.loads(value)["published"] for _, value in found]
    assert published != sorted(published), "the tenant should serve some events out of order"


def test_a_429_waits_for_the_rate_limit_reset(
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    since, until = window(tenant)
    env = tenant_env(tenant, "okta", broker, PIPELINE_OKTA_LIMIT="200")
    tenant.faults("okta").throttle(at=2, retry_after=1.5)
    started = time.monotonic()
    code, err = collect(monkeypatch, capsys, env, "okta", "--since", since, "--until", until)
    assert code == 0, err
    assert time.monotonic() - started >= 1.0  # X-Rate-Limit-Reset, not the short back-off
    assert "okta: GET /api/v1/logs: 429 Too Many Requests; again in" in caplog.text
    assert "1 rate-limited, 1 retried" in caplog.text  # the status line
    assert sorted(ids(messages(broker, TOPIC), "uuid")) == sorted(tenant.ids("okta.logs"))


def test_a_run_of_500s_is_retried_and_a_longer_one_fails_in_one_line(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    since, until = window(tenant)
    env = tenant_env(tenant, "okta", broker, PIPELINE_OKTA_LIMIT="200")
    tenant.faults("okta").errors(at=2, count=3)
    code, err = collect(monkeypatch, capsys, env, "okta", "--since", since, "--until", until)
    assert code == 0, err
    assert sorted(ids(messages(broker, TOPIC), "uuid")) == sorted(tenant.ids("okta.logs"))

    tenant.reset()
    tenant.faults("okta").errors(at=1, count=50)
    code, err = collect(monkeypatch, capsys, env, "okta", "--once")
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("pipeline collect okta: okta: GET /api/v1/logs: 5 attempts")
    assert "500 Internal Server Error each time" in last
    assert "Traceback" not in err


def test_an_expired_token_is_renewed_once_and_the_request_retried(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OAuth service app (private_key_jwt): the tenant expires every token after the
    first page; the next request gets a 401, the collector fetches a new token, goes on."""
    env = tenant_env(tenant, "okta", "127.0.0.1:9", PIPELINE_OKTA_LIMIT="100")
    del env["PIPELINE_OKTA_TOKEN"]
    env["PIPELINE_OKTA_CLIENT_ID"] = tenant.okta.client_id
    env["PIPELINE_OKTA_PRIVATE_KEY"] = orjson.dumps(tenant.okta.private_jwk).decode()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stop = threading.Event()
    context = Context(
        CollectSettings(), Topics(), Progress("okta"), stop, Pacer(stoppable_sleep(stop))
    )
    stream = okta.build(context).streams[0]
    since, until = window(tenant)
    span = Span(datetime.fromisoformat(since), datetime.fromisoformat(until))
    pages = stream.round(None, span)
    records = list(next(pages).records)
    tenant.faults("okta").expire_tokens()
    for page in pages:
        records.extend(page.records)
    context.close()
    assert context.progress.token_renewals == 1
    assert sorted(orjson.loads(raw)["uuid"] for raw in records) == sorted(tenant.ids("okta.logs"))


def test_refused_credentials_name_what_to_grant(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    env = tenant_env(tenant, "okta", broker, PIPELINE_OKTA_TOKEN="00not-the-token")
    code, err = collect(monkeypatch, capsys, env, "okta", "--once")
    assert code == 1
    assert "401" in err and "okta.logs.read" in err and "Invalid token provided" in err
    assert len(err.strip().splitlines()) == 1 and "00not-the-token" not in err

    env = tenant_env(tenant, "okta", broker)
    del env["PIPELINE_OKTA_TOKEN"]
    env["PIPELINE_OKTA_CLIENT_ID"] = tenant.okta.client_id
    env["PIPELINE_OKTA_PRIVATE_KEY"] = tenant.okta.private_key_pem.decode()
    monkeypatch.setattr(tenant.okta, "scopes", frozenset({"okta.users.read"}))
    code, err = collect(monkeypatch, capsys, env, "okta", "--once")
    assert code == 1
    assert "invalid_scope" in err and "okta.logs.read" in err
    assert "PRIVATE KEY" not in err


def test_settings_errors_are_one_line_and_exit_2(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    env = tenant_env(tenant, "okta", broker, PIPELINE_OKTA_CLIENT_ID="0oa1")
    code, err = collect(monkeypatch, capsys, env, "okta", "--once")
    assert code == 2 and "PIPELINE_OKTA_TOKEN or PIPELINE_OKTA_CLIENT_ID" in err
    env = tenant_env(tenant, "okta", broker)
    code, err = collect(monkeypatch, capsys, env, "okta", "--since", "2026-01-01")
    assert code == 2 and "--since and --until go together" in err
    key = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"
    env = {**env, "PIPELINE_OKTA_CLIENT_ID": "0oa1", "PIPELINE_OKTA_PRIVATE_KEY": key}
    del env["PIPELINE_OKTA_TOKEN"]
    code, err = collect(monkeypatch, capsys, env, "okta", "--once")
    assert code == 2 and "not an RSA key" in err and "not a key" not in err


def test_sigkilled_during_a_backfill_and_restarted_nothing_is_missing(
    tenant: Tenant, broker: str, tmp_path: Path
) -> None:
    since, until = window(tenant)
    env = tenant_env(tenant, "okta", broker, PIPELINE_OKTA_LIMIT="10")
    events = tenant.ids("okta.logs")
    argv = ["okta", "--since", since, "--until", until]
    midway = kill_during(env, argv, broker, TOPIC, len(events), tmp_path / "log")
    assert midway >= 2, (tmp_path / "log").read_text()[-2000:]
    assert set(ids(messages(broker, TOPIC), "uuid")) == events


def _scraped(port: int, path: str = "/metrics") -> tuple[int, dict[str, float]]:
    """The status of GET path, and (for /metrics) each okta sample's value by name."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            status, text = answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, {}
    if path != "/metrics":
        return status, {}
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("collector") == "okta"
    }
    return status, values


def test_sigterm_stops_a_live_collector_with_its_cursor_committed(
    tenant: Tenant, broker: str, tmp_path: Path
) -> None:
    """...and while it runs, its /metrics count what is in the raw topic."""
    metrics_port = free_port()
    env = tenant_env(
        tenant,
        "okta",
        broker,
        PIPELINE_OKTA_LIMIT="100",
        PIPELINE_OKTA_POLL_SECONDS="1",
        PIPELINE_COLLECT_LOOKBACK="P60D",
        PIPELINE_METRICS_PORT=str(metrics_port),
    )
    log = tmp_path / "log"
    process = child(env, "okta", log=log)
    events = tenant.ids("okta.logs")
    deadline = time.monotonic() + 60
    while len(messages(broker, TOPIC)) < len(events):
        assert time.monotonic() < deadline and process.poll() is None, log.read_text()
        time.sleep(0.2)
    time.sleep(1.5)  # a round with nothing new, then the wait for the next poll
    status, values = _scraped(metrics_port)
    assert status == 200
    assert values["pipeline_collector_events_total"] == len(events)
    assert values["pipeline_collector_pages_total"] >= len(events) / 100
    assert values["pipeline_collector_cursor_age_seconds"] > 0
    assert _scraped(metrics_port, "/healthz")[0] == 200
    assert _scraped(metrics_port, "/readyz")[0] == 200
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0, log.read_text()
    status = [line for line in log.read_text().splitlines() if "round" in line]
    assert status and "next poll in" in status[0] and "events in" in status[0]
    # Restarted: it resumes at the committed `next` link, so it produces nothing again.
    before = tenant.requests("okta")
    process = child(env, "okta", "--once", log=log)
    assert process.wait(30) == 0, log.read_text()
    assert tenant.requests("okta") - before == 1
    assert sorted(ids(messages(broker, TOPIC), "uuid")) == sorted(events)


def test_the_cursor_survives_in_kafka_not_in_the_process(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """The cursor topic holds the `next` link (not a secret) under the collector's key."""
    env = tenant_env(
        tenant, "okta", broker, PIPELINE_OKTA_LIMIT="1000", PIPELINE_COLLECT_LOOKBACK="P60D"
    )
    code, err = collect(monkeypatch, capsys, env, "okta", "--once")
    assert code == 0, err
    cursors = messages(broker, "collect.cursors")
    assert cursors
    key, value = cursors[-1]
    assert key == b"okta/127.0.0.1/logs/live"
    document = orjson.loads(value)
    assert document["cursor"]["next"].startswith(f"{tenant.url}/api/v1/logs?")
    assert tenant.okta.api_token.encode() not in b"".join(v for _, v in cursors)
    stamp = datetime.fromisoformat(document["cursor"]["time"])
    assert datetime.now(UTC) - stamp < timedelta(days=60)
