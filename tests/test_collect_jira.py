"""`pipeline collect jira` against the simulated tenant's Jira Cloud enhanced search and Jira
Data Center search (real HTTPS server, real broker), each deployment through the same tests:
issues paged to the end (`nextPageToken`; `startAt`/`total`), a bounded JQL on `updated`, a
429 waited for its `Retry-After`, 500s retried, refused credentials named, and nothing lost
when SIGKILLed during a backfill; a Cloud site and a Data Center instance keep cursors of their
own, and a Data Center personal access token goes as `Authorization: Bearer`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
from collecting import collect, ids, kill_during, messages, tenant_env, window

from pipeline.collect.jira import instance
from pipeline.collect.runner import user_key
from pipeline.model import Source
from pipeline.simulate.tenant import Tenant

TOPIC = "raw.tickets"
# The tenant's vendor keys: the Cloud site, and the Data Center instance at {url}/jira.
DEPLOYMENTS = ("jira", "jira_dc")
WRONG = {"jira": "PIPELINE_JIRA_API_TOKEN", "jira_dc": "PIPELINE_JIRA_PASSWORD"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    # Tickets are rare: 300 people over 30 weeks open about a dozen issues on each Jira.
    with Tenant.simulate(tmp_path_factory.mktemp("jira"), users=300, weeks=30) as tenant:
        yield tenant


@pytest.fixture
def tenant(served: Tenant) -> Tenant:
    served.reset()
    return served


def backfill(
    tenant: Tenant,
    vendor: str,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    **more: str,
) -> tuple[int, str]:
    since, until = window(tenant)
    env = tenant_env(tenant, vendor, broker, **more)
    return collect(monkeypatch, capsys, env, "jira", "--since", since, "--until", until)


@pytest.mark.parametrize("vendor", DEPLOYMENTS)
def test_issues_are_paged_to_the_end(
    vendor: str,
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    issues = tenant.ids(f"{vendor}.issues")
    assert len(issues) > 6
    code, err = backfill(tenant, vendor, broker, monkeypatch, capsys, PIPELINE_JIRA_MAX_RESULTS="3")
    assert code == 0, err
    found = messages(broker, TOPIC)
    assert sorted(ids(found, "id")) == sorted(issues)
    # Several pages, and none asked for past the last: `isLast`, or `startAt + len >= total`.
    assert tenant.requests(vendor) == -(-len(issues) // 3)
    key = user_key(Source.TICKETS)
    assert all(message_key is not None and message_key == key(v) for message_key, v in found)


@pytest.mark.parametrize("vendor", DEPLOYMENTS)
def test_a_jql_of_ones_own_narrows_the_search(
    vendor: str,
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    code, err = backfill(
        tenant, vendor, broker, monkeypatch, capsys, PIPELINE_JIRA_JQL="project = NOPE"
    )
    assert code == 0, err
    assert messages(broker, TOPIC) == []


@pytest.mark.parametrize("vendor", DEPLOYMENTS)
def test_a_429_waits_its_retry_after_and_500s_are_retried(
    vendor: str,
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant.faults(vendor).throttle(at=2, retry_after=1.0)
    tenant.faults(vendor).errors(at=3, count=2)
    started = time.monotonic()
    code, err = backfill(tenant, vendor, broker, monkeypatch, capsys, PIPELINE_JIRA_MAX_RESULTS="3")
    assert code == 0, err
    assert time.monotonic() - started >= 1.0
    assert "429 Too Many Requests; again in 1." in caplog.text
    assert caplog.text.count("500 Internal Server Error; again in") == 2
    assert sorted(ids(messages(broker, TOPIC), "id")) == sorted(tenant.ids(f"{vendor}.issues"))


@pytest.mark.parametrize("vendor", DEPLOYMENTS)
def test_refused_credentials_are_named(
    vendor: str,
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    env = tenant_env(tenant, vendor, broker, **{WRONG[vendor]: "wrong-secret-1234"})
    code, err = collect(monkeypatch, capsys, env, "jira", "--once")
    assert code == 1 and "401" in err and "browse projects permission" in err.lower()
    assert "wrong-secret-1234" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("unset", "more", "named"),
    [
        ("PIPELINE_JIRA_PASSWORD", {}, "needs PIPELINE_JIRA_PAT (a personal access token), or"),
        ("", {"PIPELINE_JIRA_PAT": "pat-1234"}, "not both"),
        ("PIPELINE_JIRA_URL", {}, "PIPELINE_JIRA_URL not set"),
    ],
)
def test_data_center_settings_that_are_missing_or_twice_are_named(
    unset: str,
    more: dict[str, str],
    named: str,
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    env = {k: v for k, v in tenant_env(tenant, "jira_dc", broker, **more).items() if k != unset}
    code, err = collect(monkeypatch, capsys, env, "jira", "--once")
    assert code == 2 and named in err and len(err.strip().splitlines()) == 1, err
    assert "pat-1234" not in err and tenant.jira_dc.password not in err


def test_a_cloud_setup_without_its_email_points_to_data_center(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    env = {k: v for k, v in tenant_env(tenant, "jira", broker).items() if "EMAIL" not in k}
    code, err = collect(monkeypatch, capsys, env, "jira", "--once")
    assert code == 2 and "PIPELINE_JIRA_DEPLOYMENT=datacenter" in err, err


@pytest.mark.parametrize("vendor", DEPLOYMENTS)
def test_sigkilled_during_a_backfill_and_restarted_nothing_is_missing(
    vendor: str, tenant: Tenant, broker: str, tmp_path: Path
) -> None:
    since, until = window(tenant)
    env = tenant_env(tenant, vendor, broker, PIPELINE_JIRA_MAX_RESULTS="1")
    issues = tenant.ids(f"{vendor}.issues")
    argv = ["jira", "--since", since, "--until", until]
    midway = kill_during(env, argv, broker, TOPIC, len(issues), tmp_path / "log", linger=0.05)
    assert midway >= 2, (tmp_path / "log").read_text()[-2000:]
    assert set(ids(messages(broker, TOPIC), "id")) == issues


def test_a_cloud_site_and_a_data_center_instance_keep_cursors_of_their_own(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # Both on one host: the cursors must not be one (the second backfill would then be
    # "already complete" and read nothing).
    for vendor in DEPLOYMENTS:
        code, err = backfill(tenant, vendor, broker, monkeypatch, capsys)
        assert code == 0, err
    wanted = tenant.ids("jira.issues") | tenant.ids("jira_dc.issues")
    assert set(ids(messages(broker, TOPIC), "id")) == wanted
    keys = {key.decode() for key, _ in messages(broker, "collect.cursors") if key}
    instances = {key.rsplit("/issues/", 1)[0] for key in keys}
    assert instances == {
        f"jira/{instance(tenant.url)}",
        f"jira/{instance(tenant.jira_dc.base_url)}",
    }
    # A Cloud site's key is what it was before Data Center: its host alone.
    assert instance("https://acme.atlassian.net/") == "acme.atlassian.net"


@pytest.fixture
def bearer_only(tenant: Tenant) -> Iterator[tuple[str, list[str]]]:
    """A Data Center search at /jira that takes only `Authorization: Bearer pat-1234` and
    answers one page holding the tenant's first Data Center issue."""
    issue = orjson.loads(tenant.rollout.jira_dc.lines[0])
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            good = (
                self.path.startswith("/jira/rest/api/2/search?") and seen[-1] == "Bearer pat-1234"
            )
            body = {"startAt": 0, "maxResults": 100, "total": 1, "issues": [issue]}
            payload = orjson.dumps(body if good else {"errorMessages": ["no"], "errors": {}})
            self.send_response(200 if good else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/jira", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_personal_access_token_goes_as_a_bearer_token(
    bearer_only: tuple[str, list[str]],
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    url, seen = bearer_only
    env = {
        k: v
        for k, v in tenant_env(
            tenant, "jira_dc", broker, PIPELINE_JIRA_URL=url, PIPELINE_JIRA_PAT="pat-1234"
        ).items()
        if k not in ("PIPELINE_JIRA_USERNAME", "PIPELINE_JIRA_PASSWORD")
    }
    code, err = collect(monkeypatch, capsys, env, "jira", "--once")
    assert code == 0, err
    assert seen == ["Bearer pat-1234"]
    assert ids(messages(broker, TOPIC), "id") == [
        str(orjson.loads(tenant.rollout.jira_dc.lines[0])["id"])
    ]
