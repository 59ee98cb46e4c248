"""`pipeline collect duo` against the simulated tenant's Admin API (real HTTPS server checking
each request's HMAC signature, real broker): the authentication, activity and telephony logs
paged to the end by `next_offset`, `maxtime` kept two minutes behind now, one call per
interval per log, a 429 and a run of 500s retried, refused keys and permissions named, and
nothing lost when SIGKILLed during a backfill."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from collecting import collect, kill_during, messages, tenant_env, window

from pipeline.simulate.tenant import Tenant

TOPIC = "raw.duo"
ID_FIELDS = ("txid", "activity_id", "telephony_id")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    directory = tmp_path_factory.mktemp("duo")
    # 60 people over 10 weeks: a few activity-log records beside the authentications.
    with Tenant.simulate(directory, users=60, weeks=10, rate_limits=False) as tenant:
        yield tenant


@pytest.fixture
def tenant(served: Tenant) -> Tenant:
    served.reset()
    return served


def everything(tenant: Tenant) -> set[str]:
    logs = ("duo.authentication", "duo.activity", "duo.telephony", "duo.administrator")
    return set().union(*(tenant.ids(log) for log in logs))


def record_ids(found: list[tuple[bytes | None, bytes]]) -> list[str]:
    out = []
    for _, value in found:
        record = orjson.loads(value)
        out.append(next(str(record[field]) for field in ID_FIELDS if field in record))
    return out


def test_every_log_is_paged_to_the_end_by_next_offset(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    assert len(tenant.ids("duo.authentication")) > 100 and tenant.ids("duo.activity")
    since, until = window(tenant)
    env = tenant_env(tenant, "duo", broker, PIPELINE_DUO_LIMIT="50")
    code, err = collect(monkeypatch, capsys, env, "duo", "--since", since, "--until", until)
    assert code == 0, err
    found = messages(broker, TOPIC)
    assert sorted(record_ids(found)) == sorted(everything(tenant))  # each once
    assert tenant.requests("duo") >= len(found) / 50


def test_maxtime_stays_two_minutes_behind_and_rounds_resume_after_it(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    env = tenant_env(
        tenant, "duo", broker, PIPELINE_COLLECT_LOOKBACK="P120D", PIPELINE_DUO_OVERLAP="PT0S"
    )
    code, err = collect(monkeypatch, capsys, env, "duo", "--once")
    assert code == 0, err
    cursors = {key: orjson.loads(value) for key, value in messages(broker, "collect.cursors")}
    auth = cursors[b"duo/127.0.0.1/authentication/live"]
    committed = datetime.fromisoformat(auth["committed_at"])
    maxtime = auth["cursor"]["maxtime"]
    assert committed.timestamp() * 1000 - maxtime >= 120_000
    assert auth["cursor"]["next_offset"] is None  # the round read its window to the end
    # The next round starts just after that maxtime: nothing is read twice.
    code, err = collect(monkeypatch, capsys, env, "duo", "--once")
    assert code == 0, err
    assert sorted(record_ids(messages(broker, TOPIC))) == sorted(everything(tenant))

    env["PIPELINE_DUO_DELAY"] = "60"
    code, err = collect(monkeypatch, capsys, env, "duo", "--once")
    assert code == 2 and "PIPELINE_DUO_DELAY" in err and "120" in err


def test_each_log_is_called_at_most_once_per_interval(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    since, until = window(tenant)
    env = tenant_env(
        tenant,
        "duo",
        broker,
        PIPELINE_DUO_LIMIT="100",
        PIPELINE_DUO_MIN_INTERVAL="0.4",
        PIPELINE_DUO_LOGS="authentication",
    )
    started = time.monotonic()
    code, err = collect(monkeypatch, capsys, env, "duo", "--since", since, "--until", until)
    assert code == 0, err
    calls = tenant.requests("duo")
    assert calls >= 3 and time.monotonic() - started >= 0.4 * (calls - 1)


def test_a_429_and_a_run_of_500s_are_retried_with_back_off(
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    since, until = window(tenant)
    env = tenant_env(tenant, "duo", broker, PIPELINE_DUO_LIMIT="50")
    tenant.faults("duo").throttle(at=2, count=2)
    tenant.faults("duo").errors(at=5, count=2)
    code, err = collect(monkeypatch, capsys, env, "duo", "--since", since, "--until", until)
    assert code == 0, err
    assert caplog.text.count("429 Too Many Requests; again in") == 2
    assert caplog.text.count("500 Internal Server Error; again in") == 2
    assert sorted(record_ids(messages(broker, TOPIC))) == sorted(everything(tenant))


def test_a_wrong_key_or_a_missing_permission_is_named(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    env = tenant_env(tenant, "duo", broker, PIPELINE_DUO_SKEY="not-the-secret-key")
    code, err = collect(monkeypatch, capsys, env, "duo", "--once")
    assert code == 1 and "401" in err and "Invalid signature" in err
    assert "not-the-secret-key" not in err and len(err.strip().splitlines()) == 1
    monkeypatch.setattr(tenant.duo, "permissions", frozenset())
    code, err = collect(monkeypatch, capsys, tenant_env(tenant, "duo", broker), "duo", "--once")
    assert code == 1 and "403" in err and '"Grant read log"' in err


def test_sigkilled_during_a_backfill_and_restarted_nothing_is_missing(
    tenant: Tenant, broker: str, tmp_path: Path
) -> None:
    since, until = window(tenant)
    env = tenant_env(tenant, "duo", broker, PIPELINE_DUO_LIMIT="20")
    events = everything(tenant)
    argv = ["duo", "--since", since, "--until", until]
    midway = kill_during(env, argv, broker, TOPIC, len(events), tmp_path / "log")
    assert midway >= 2, (tmp_path / "log").read_text()[-2000:]
    assert set(record_ids(messages(broker, TOPIC))) == events


def test_a_start_beyond_duos_180_days_is_moved_up(
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    until = datetime.fromisoformat(window(tenant)[1])
    since = (until - timedelta(days=400)).isoformat()
    env = tenant_env(tenant, "duo", broker, PIPELINE_DUO_LOGS="authentication")
    code, err = collect(
        monkeypatch, capsys, env, "duo", "--since", since, "--until", until.isoformat()
    )
    assert code == 0, err
    assert "Duo keeps 180 days" in caplog.text
    assert set(record_ids(messages(broker, TOPIC))) == tenant.ids("duo.authentication")
