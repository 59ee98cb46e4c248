"""`pipeline collect entra` against the simulated tenant's Microsoft identity platform and
Graph (real HTTPS server, MSAL, real broker): interactive and non-interactive sign-ins and
directory audits paged to the end by `@odata.nextLink`, a 429 waited out for its
`Retry-After`, Graph's 5 requests per 10 s kept, a run of 500s, an expired token renewed,
the missing permission named, and nothing lost when SIGKILLed during a backfill."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from collecting import collect, ids, kill_during, messages, tenant_env, window

from pipeline.collect import entra
from pipeline.collect.http import stoppable_sleep
from pipeline.collect.pacing import Pacer
from pipeline.collect.progress import Progress
from pipeline.collect.runner import Context, Span
from pipeline.collect.settings import CollectSettings
from pipeline.settings import Topics
from pipeline.simulate.tenant import Tenant

TOPIC = "raw.entra"
# The tenant's rate limits are off but in one test: the pacer would otherwise make every
# test wait out Graph's 5 requests per 10 s.
FAST = {
    "PIPELINE_ENTRA_REQUESTS_PER_WINDOW": "1000",
    "PIPELINE_ENTRA_SLICE": "P1D",
    "PIPELINE_ENTRA_SLICE_MAX": "P7D",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    directory = tmp_path_factory.mktemp("entra")
    with Tenant.simulate(directory, users=30, weeks=3, rate_limits=False) as tenant:
        yield tenant


@pytest.fixture
def tenant(served: Tenant) -> Tenant:
    served.reset()
    served.rate_limits = False
    return served


def everything(tenant: Tenant) -> set[str]:
    return tenant.ids("entra.signins") | tenant.ids("entra.audits")


def test_sign_ins_of_both_kinds_and_audits_are_paged_to_the_end(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    since, until = window(tenant)
    env = tenant_env(tenant, "entra", broker, PIPELINE_ENTRA_PAGE_SIZE="10", **FAST)
    code, err = collect(monkeypatch, capsys, env, "entra", "--since", since, "--until", until)
    assert code == 0, err
    found = messages(broker, TOPIC)
    kinds = {kind for _, value in found for kind in orjson.loads(value).get("signInEventTypes", [])}
    assert kinds == {"interactiveUser", "nonInteractiveUser"}
    assert sorted(ids(found, "id")) == sorted(everything(tenant))  # each once: no overlap
    assert tenant.requests("entra") > len(found) / 10  # pages of 10, by nextLink


def test_a_429_waits_its_retry_after_and_500s_are_retried(
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    since, until = window(tenant)
    env = tenant_env(tenant, "entra", broker, PIPELINE_ENTRA_PAGE_SIZE="20", **FAST)
    tenant.faults("entra").throttle(at=3, retry_after=1.2)
    tenant.faults("entra").errors(at=6, count=3)
    started = time.monotonic()
    code, err = collect(monkeypatch, capsys, env, "entra", "--since", since, "--until", until)
    assert code == 0, err
    assert time.monotonic() - started >= 1.2
    assert "429 Too Many Requests; again in 2." in caplog.text  # Retry-After: 2 (1.2 up)
    assert caplog.text.count("500 Internal Server Error; again in") == 3
    assert sorted(ids(messages(broker, TOPIC), "id")) == sorted(everything(tenant))


def test_the_reports_limit_is_kept_without_a_single_429(
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The tenant enforces Graph's 5 requests per 10 s; the default pacing never meets it."""
    tenant.rate_limits = True
    since, until = window(tenant)
    env = tenant_env(
        tenant,
        "entra",
        broker,
        PIPELINE_ENTRA_SLICE="P30D",
        PIPELINE_ENTRA_SLICE_MAX="P30D",
        PIPELINE_ENTRA_PAGE_SIZE="40",
    )
    started = time.monotonic()
    code, err = collect(monkeypatch, capsys, env, "entra", "--since", since, "--until", until)
    assert code == 0, err
    requests = tenant.requests("entra")
    assert requests > 5 and time.monotonic() - started >= 10 * ((requests - 1) // 5)
    assert "0 rate-limited, 0 retried" in caplog.text and "429" not in caplog.text
    assert sorted(ids(messages(broker, TOPIC), "id")) == sorted(everything(tenant))


def test_an_expired_token_is_renewed(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tenant_env(tenant, "entra", "127.0.0.1:9", PIPELINE_ENTRA_PAGE_SIZE="10", **FAST)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stop = threading.Event()
    context = Context(
        CollectSettings(), Topics(), Progress("entra"), stop, Pacer(stoppable_sleep(stop))
    )
    stream = entra.build(context).streams[0]
    since, until = window(tenant)
    pages = stream.round(None, Span(datetime.fromisoformat(since), datetime.fromisoformat(until)))
    records = [raw for page in [next(pages)] for raw in page.records]
    tenant.faults("entra").expire_tokens()
    records += [raw for page in pages for raw in page.records]
    context.close()
    assert context.progress.token_renewals == 1
    interactive = {
        orjson.loads(line)["id"]
        for line in tenant.rollout.signins.lines
        if "interactiveUser" in orjson.loads(line)["signInEventTypes"]
    }
    assert {orjson.loads(raw)["id"] for raw in records} == interactive


def test_a_missing_permission_is_named(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(tenant.entra, "roles", frozenset({"User.Read.All"}))
    env = tenant_env(tenant, "entra", broker, **FAST)
    code, err = collect(monkeypatch, capsys, env, "entra", "--once")
    assert code == 1
    assert "403" in err and "AuditLog.Read.All" in err and "Insufficient privileges" in err
    env["PIPELINE_ENTRA_CLIENT_SECRET"] = "not-the-secret"
    code, err = collect(monkeypatch, capsys, env, "entra", "--once")
    assert code == 1 and "AADSTS7000215" in err and "not-the-secret" not in err
    assert len(err.strip().splitlines()) == 1


def test_sigkilled_during_a_backfill_and_restarted_nothing_is_missing(
    tenant: Tenant, broker: str, tmp_path: Path
) -> None:
    since, until = window(tenant)
    env = tenant_env(
        tenant,
        "entra",
        broker,
        PIPELINE_ENTRA_PAGE_SIZE="5",
        PIPELINE_ENTRA_SLICE="PT6H",
        PIPELINE_ENTRA_SLICE_MAX="PT12H",
        PIPELINE_ENTRA_REQUESTS_PER_WINDOW="1000",
    )
    events = everything(tenant)
    argv = ["entra", "--since", since, "--until", until]
    midway = kill_during(env, argv, broker, TOPIC, len(events), tmp_path / "log")
    assert midway >= 2, (tmp_path / "log").read_text()[-2000:]
    assert set(ids(messages(broker, TOPIC), "id")) == events
