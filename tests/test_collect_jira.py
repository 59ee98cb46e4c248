"""`pipeline collect jira` against the simulated tenant's Jira Cloud enhanced search (real
HTTPS server, real broker): issues paged to the end by `nextPageToken`, a bounded JQL on
`updated`, a 429 waited for its `Retry-After`, 500s retried, refused credentials named, and
nothing lost when SIGKILLed during a backfill."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from collecting import collect, ids, kill_during, messages, tenant_env, window

from pipeline.collect.runner import user_key
from pipeline.model import Source
from pipeline.simulate.tenant import Tenant

TOPIC = "raw.tickets"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    # Tickets are rare: 300 people over 30 weeks open about a dozen Jira issues.
    with Tenant.simulate(tmp_path_factory.mktemp("jira"), users=300, weeks=30) as tenant:
        yield tenant


@pytest.fixture
def tenant(served: Tenant) -> Tenant:
    served.reset()
    return served


def test_issues_are_paged_to_the_end_by_next_page_token(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    issues = tenant.ids("jira.issues")
    assert len(issues) > 6
    since, until = window(tenant)
    env = tenant_env(tenant, "jira", broker, PIPELINE_JIRA_MAX_RESULTS="3")
    code, err = collect(monkeypatch, capsys, env, "jira", "--since", since, "--until", until)
    assert code == 0, err
    found = messages(broker, TOPIC)
    assert sorted(ids(found, "id")) == sorted(issues)
    assert tenant.requests("jira") == -(-len(issues) // 3)
    key = user_key(Source.TICKETS)
    assert all(message_key is not None and message_key == key(v) for message_key, v in found)


def test_a_jql_of_ones_own_narrows_the_search(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    since, until = window(tenant)
    env = tenant_env(tenant, "jira", broker, PIPELINE_JIRA_JQL="project = NOPE")
    code, err = collect(monkeypatch, capsys, env, "jira", "--since", since, "--until", until)
    assert code == 0, err
    assert messages(broker, TOPIC) == []


def test_a_429_waits_its_retry_after_and_500s_are_retried(
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    since, until = window(tenant)
    env = tenant_env(tenant, "jira", broker, PIPELINE_JIRA_MAX_RESULTS="3")
    tenant.faults("jira").throttle(at=2, retry_after=1.0)
    tenant.faults("jira").errors(at=3, count=2)
    started = time.monotonic()
    code, err = collect(monkeypatch, capsys, env, "jira", "--since", since, "--until", until)
    assert code == 0, err
    assert time.monotonic() - started >= 1.0
    assert "429 Too Many Requests; again in 1." in caplog.text
    assert caplog.text.count("500 Internal Server Error; again in") == 2
    assert sorted(ids(messages(broker, TOPIC), "id")) == sorted(tenant.ids("jira.issues"))


def test_refused_credentials_are_named(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    env = tenant_env(tenant, "jira", broker, PIPELINE_JIRA_API_TOKEN="ATATT-wrong")
    code, err = collect(monkeypatch, capsys, env, "jira", "--once")
    assert code == 1 and "401" in err and "Browse projects" in err
    assert "ATATT-wrong" not in err and len(err.strip().splitlines()) == 1


def test_sigkilled_during_a_backfill_and_restarted_nothing_is_missing(
    tenant: Tenant, broker: str, tmp_path: Path
) -> None:
    since, until = window(tenant)
    env = tenant_env(tenant, "jira", broker, PIPELINE_JIRA_MAX_RESULTS="1")
    issues = tenant.ids("jira.issues")
    argv = ["jira", "--since", since, "--until", until]
    midway = kill_during(env, argv, broker, TOPIC, len(issues), tmp_path / "log", linger=0.05)
    assert midway >= 2, (tmp_path / "log").read_text()[-2000:]
    assert set(ids(messages(broker, TOPIC), "id")) == issues
