"""`pipeline collect directory --from okta|entra` against the simulated tenant's users (real
HTTPS server, real broker): every person of the workforce becomes one roster record, keyed
by login, deprovisioned and disabled people with their leaving day, checked by the HR
import's own row rules; a person the roster cannot take is skipped and named."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest
from collecting import collect, messages, tenant_env

from pipeline.model import Source, WorkforceUser
from pipeline.simulate.tenant import Tenant

TOPIC = "raw.roster"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    with Tenant.simulate(tmp_path_factory.mktemp("dir"), users=250, weeks=30) as tenant:
        yield tenant


@pytest.fixture
def tenant(served: Tenant) -> Tenant:
    served.reset()
    return served


def expected(tenant: Tenant) -> dict[str, tuple]:
    """The workforce as its IdP shows it today: a termination only once it happened."""
    today = datetime.now(UTC).date()
    rows = {}
    for person in tenant.rollout.employees:
        row = person.row
        left = row.terminated_on if row.terminated_on and row.terminated_on <= today else None
        rows[row.user] = (row.department, row.country, row.active_from, left)
    return rows


@pytest.mark.parametrize("idp", ["okta", "entra"])
def test_the_roster_is_the_idps_users(
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    idp: str,
) -> None:
    env = tenant_env(tenant, idp, broker, PIPELINE_COLLECT_PRIVILEGED_DEPARTMENTS="Security")
    code, err = collect(monkeypatch, capsys, env, "directory", "--from", idp, "--once")
    assert code == 0, err
    found = messages(broker, TOPIC)
    roster = [WorkforceUser.model_validate_json(value) for _, value in found]
    assert [key for key, _ in found] == [user.user.encode() for user in roster]
    got = {u.user: (u.department, u.country, u.active_from, u.terminated_on) for u in roster}
    assert got == expected(tenant)
    assert any(user.terminated_on for user in roster)  # the deprovisioned are listed too
    assert {user.idp for user in roster} == {Source(idp)}
    assert all(user.privileged == (user.department == "Security") for user in roster)


def test_a_person_the_roster_cannot_take_is_skipped_and_named(
    tenant: Tenant,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = tenant.rollout.employees[0]
    person = replace(first, row=first.row.model_copy(update={"department": ""}))
    tenant.rollout.employees[0] = person
    try:
        env = tenant_env(tenant, "okta", broker)
        code, err = collect(monkeypatch, capsys, env, "directory", "--from", "okta", "--once")
    finally:
        tenant.rollout.employees[0] = first
    assert code == 0, err
    users = {orjson.loads(value)["user"] for _, value in messages(broker, TOPIC)}
    assert person.row.user not in users and len(users) == len(tenant.rollout.employees) - 1
    assert f"directory: skipped {person.row.user}: no department" in caplog.text


def test_the_arguments_of_directory(
    tenant: Tenant, broker: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    env = tenant_env(tenant, "okta", broker)
    code, err = collect(monkeypatch, capsys, env, "directory", "--once")
    assert code == 2 and "--from okta or --from entra" in err
    code, err = collect(monkeypatch, capsys, env, "okta", "--from", "okta", "--once")
    assert code == 2 and "--from is for directory only" in err
