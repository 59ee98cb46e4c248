"""The simulated tenant's fake vendor APIs, each checked with a plain HTTP client (and the
vendors' own clients where they sign or fetch tokens: duo_client, msal) against the behaviour
its documentation describes (the sources are cited in each module of
pipeline/simulate/tenant/): paging to the end returns every record once, filters hold, and
faults come when asked."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duo_client
import jwt
import msal
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from duo_client.client import sign

from pipeline.simulate.tenant import Tenant
from pipeline.simulate.tenant.cli import fault_spec

# duo_client builds its TLS context with the deprecated ssl.PROTOCOL_TLS (https_wrapper.py)
pytestmark = pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated:DeprecationWarning")
GRAPH = "https://graph.microsoft.com/.default"
BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALL_SIGNINS = "signInEventTypes/any(t: t eq 'interactiveUser' or t eq 'nonInteractiveUser')"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    # 30 weeks: the helpdesk tickets come late in a rollout
    directory = tmp_path_factory.mktemp("tenant")
    with Tenant.simulate(directory, users=50, weeks=30, seed=2) as tenant:
        yield tenant


@pytest.fixture
def tenant(served: Tenant) -> Tenant:
    served.reset()
    served.rate_limits = False  # the tests that check them turn them on
    return served


@pytest.fixture
def http(tenant: Tenant) -> Iterator[requests.Session]:
    """A client trusting the tenant's CA (trust_env off: requests lets REQUESTS_CA_BUNDLE
    override a session's `verify`)."""
    with requests.Session() as session:
        session.trust_env = False
        session.verify = str(tenant.ca_file)
        yield session


def okta_headers(tenant: Tenant) -> dict[str, str]:
    return {"Authorization": f"SSWS {tenant.okta.api_token}"}


def follow(http: requests.Session, url: str, headers: dict[str, str], pages: int = 500) -> list:
    """Pages of a Link-header API up to the first page without `next` (or `pages`)."""
    results = []
    for _ in range(pages):
        response = http.get(url, headers=headers)
        assert response.status_code == 200, response.text
        results.append(response)
        if "next" not in response.links:
            break
        url = response.links["next"]["url"]
    return results


# --- Okta ---------------------------------------------------------------------------------


def test_okta_polling_pages_every_event_once_and_never_ends(
    tenant: Tenant, http: requests.Session
) -> None:
    url = f"{tenant.url}/api/v1/logs?since=2000-01-01T00:00:00Z&limit=1000"
    seen: list[dict] = []
    for _ in range(50):
        response = http.get(url, headers=okta_headers(tenant))
        assert response.status_code == 200
        page = response.json()
        seen.extend(page)
        url = response.links["next"]["url"]  # polling: always a next link
        if not page:
            break
    uuids = [event["uuid"] for event in seen]
    assert len(uuids) == len(set(uuids))
    assert set(uuids) == tenant.ids("okta.logs")
    published = [event["published"] for event in seen]
    assert published != sorted(published), "polling follows persistence, not published, order"
    # the saved next link stays valid: still empty, still with a next link
    again = http.get(url, headers=okta_headers(tenant))
    assert again.json() == [] and "next" in again.links
    assert "after=" in url and "since=" not in url


def test_okta_polling_returns_new_events_through_the_saved_next_link(
    tenant: Tenant, http: requests.Session
) -> None:
    times = sorted(tenant.rollout.okta.times)
    middle = times[len(times) // 2]
    tenant.clock.set(datetime.fromtimestamp(middle / 1000, UTC))
    url = f"{tenant.url}/api/v1/logs?since=2000-01-01T00:00:00Z&limit=1000"
    before = []
    while True:
        response = http.get(url, headers=okta_headers(tenant))
        url = response.links["next"]["url"]
        if not response.json():
            break
        before.extend(response.json())
    assert 0 < len(before) < len(times)
    tenant.clock.reset()
    after = []
    for _ in range(50):
        response = http.get(url, headers=okta_headers(tenant))
        url = response.links["next"]["url"]
        if not response.json():
            break
        after.extend(response.json())
    both = [event["uuid"] for event in before + after]
    assert len(both) == len(set(both)) and set(both) == tenant.ids("okta.logs")


def test_okta_bounded_requests_are_in_published_order_and_end(
    tenant: Tenant, http: requests.Session
) -> None:
    published = sorted(tenant.rollout.okta.published)
    since = datetime.fromtimestamp(published[100] / 1000, UTC)
    until = datetime.fromtimestamp(published[400] / 1000, UTC)
    url = (
        f"{tenant.url}/api/v1/logs?limit=70&since={since.isoformat().replace('+00:00', 'Z')}"
        f"&until={until.isoformat().replace('+00:00', 'Z')}"
    )
    events = [event for page in follow(http, url, okta_headers(tenant)) for event in page.json()]
    stamps = [event["published"] for event in events]
    assert stamps == sorted(stamps)
    expected = [t for t in published if since.timestamp() * 1000 <= t < until.timestamp() * 1000]
    assert len(events) == len(expected) == len({event["uuid"] for event in events})
    descending = url + "&sortOrder=DESCENDING"
    down = [
        e["published"] for p in follow(http, descending, okta_headers(tenant)) for e in p.json()
    ]
    assert down == sorted(stamps, reverse=True)


def test_okta_filters_keywords_and_validation(tenant: Tenant, http: requests.Session) -> None:
    base = f"{tenant.url}/api/v1/logs?since=2000-01-01T00:00:00Z&limit=1000"
    wanted = 'eventType eq "user.session.start"'
    events = http.get(base, params={"filter": wanted}, headers=okta_headers(tenant)).json()
    assert events and {event["eventType"] for event in events} == {"user.session.start"}
    refused = http.get(
        base, params={"filter": 'published gt "2020-01-01T00:00:00Z"'}, headers=okta_headers(tenant)
    )
    assert refused.status_code == 400 and refused.json()["errorCode"] == "E0000053"
    both = http.get(f"{base}&after=x", headers=okta_headers(tenant))
    assert both.status_code == 400 and both.json()["errorCode"] == "E0000001"
    too_big = http.get(f"{tenant.url}/api/v1/logs?limit=1001", headers=okta_headers(tenant))
    assert too_big.status_code == 400
    wrong = http.get(base, headers={"Authorization": "SSWS nope"})
    assert wrong.status_code == 401 and wrong.json()["errorCode"] == "E0000011"


def test_okta_empty_pages_with_next_then_the_data(tenant: Tenant, http: requests.Session) -> None:
    tenant.faults("okta").empty_pages(at=1, count=2)
    url = f"{tenant.url}/api/v1/logs?since=2000-01-01T00:00:00Z&limit=5"
    for _ in range(2):
        response = http.get(url, headers=okta_headers(tenant))
        assert response.status_code == 200 and response.json() == []
        url = response.links["next"]["url"]
    data = http.get(url, headers=okta_headers(tenant)).json()
    assert len(data) == 5
    assert data[0]["uuid"] == tenant.rollout.okta.ids[0]
    assert tenant.requests("okta") == 3


def test_okta_runs_of_500s_and_throttles(tenant: Tenant, http: requests.Session) -> None:
    tenant.faults("okta").errors(at=1, count=3)
    tenant.faults("okta").throttle(at=4, retry_after=5)
    tenant.rate_limits = True
    url = f"{tenant.url}/api/v1/logs?limit=1"
    statuses = [http.get(url, headers=okta_headers(tenant)) for _ in range(5)]
    assert [r.status_code for r in statuses] == [500, 500, 500, 429, 200]
    assert statuses[3].json()["errorCode"] == "E0000047"
    assert statuses[3].headers["X-Rate-Limit-Remaining"] == "0"
    assert int(statuses[3].headers["X-Rate-Limit-Reset"]) >= time.time() + 4
    assert "Retry-After" not in statuses[3].headers  # Okta sends its own headers only
    assert statuses[4].headers["X-Rate-Limit-Limit"] == "120"


def test_okta_rate_limit_per_minute(tenant: Tenant, http: requests.Session) -> None:
    tenant.rate_limits = True
    # at the start of a minute, so that the window cannot turn during the test
    minute = datetime.now(UTC).replace(second=1, microsecond=0) + timedelta(minutes=1)
    tenant.clock.set(minute)
    tenant.okta.logs_limit.limit = 3
    try:
        answers = [
            http.get(f"{tenant.url}/api/v1/logs?limit=1", headers=okta_headers(tenant))
            for _ in range(4)
        ]
    finally:
        tenant.okta.logs_limit.limit = 120
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["X-Rate-Limit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
    assert {r.headers["X-Rate-Limit-Reset"] for r in answers} == {str(int(minute.timestamp()) + 59)}


def okta_assertion(tenant: Tenant, key: Any = None, **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": tenant.okta.client_id,
        "sub": tenant.okta.client_id,
        "aud": f"{tenant.url}/oauth2/v1/token",
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    return jwt.encode(body, key or tenant.okta.private_key_pem, algorithm="RS256")


def okta_token(http: requests.Session, tenant: Tenant, assertion: str, scope: str) -> Any:
    return http.post(
        f"{tenant.url}/oauth2/v1/token",
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": BEARER,
            "client_assertion": assertion,
        },
    )


def test_okta_oauth_private_key_jwt(tenant: Tenant, http: requests.Session) -> None:
    assertion = okta_assertion(tenant)
    answer = okta_token(http, tenant, assertion, "okta.logs.read")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert http.get(f"{tenant.url}/api/v1/logs?limit=1", headers=bearer).status_code == 200
    users = http.get(f"{tenant.url}/api/v1/users", headers=bearer)
    assert users.status_code == 403 and users.json()["errorCode"] == "E0000006"
    assert 'error="insufficient_scope"' in users.headers["WWW-Authenticate"]
    replay = okta_token(http, tenant, assertion, "okta.logs.read")
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    forged = okta_token(http, tenant, okta_assertion(tenant, key=pem), "okta.logs.read")
    assert forged.status_code == 401 and forged.json()["error"] == "invalid_client"
    far = okta_token(
        http, tenant, okta_assertion(tenant, exp=int(time.time()) + 7200), "okta.logs.read"
    )
    assert far.status_code == 401
    scope = okta_token(http, tenant, okta_assertion(tenant), "okta.apps.read")
    assert scope.status_code == 400 and scope.json()["error"] == "invalid_scope"
    tenant.faults("okta").expire_tokens()
    expired = http.get(f"{tenant.url}/api/v1/logs?limit=1", headers=bearer)
    assert expired.status_code == 401 and expired.json()["errorCode"] == "E0000011"
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]


def test_okta_token_ttl(tenant: Tenant, http: requests.Session) -> None:
    tenant.faults("okta").token_ttl(60)
    body = okta_token(http, tenant, okta_assertion(tenant), "okta.logs.read").json()
    assert body["expires_in"] == 60
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert http.get(f"{tenant.url}/api/v1/logs?limit=1", headers=bearer).status_code == 200
    tenant.clock.advance(61)
    assert http.get(f"{tenant.url}/api/v1/logs?limit=1", headers=bearer).status_code == 401


def test_okta_users_page_and_filter(tenant: Tenant, http: requests.Session) -> None:
    pages = follow(http, f"{tenant.url}/api/v1/users?limit=7", okta_headers(tenant))
    listed = [user for page in pages for user in page.json()]
    assert len(pages) > 2 and len(listed) == len({user["id"] for user in listed})
    leavers = {
        person.okta_id
        for person in tenant.rollout.employees
        if person.row.terminated_on and person.row.terminated_on < datetime.now(UTC).date()
    }
    assert leavers, "the simulated workforce has leavers"
    assert {user["id"] for user in listed} == tenant.ids("okta.users") - leavers
    assert {user["status"] for user in listed} == {"ACTIVE"}
    profile = listed[0]["profile"]
    assert {"department", "countryCode", "manager", "managerId", "login"} <= set(profile)
    gone = http.get(
        f"{tenant.url}/api/v1/users",
        params={"filter": 'status eq "DEPROVISIONED"'},
        headers=okta_headers(tenant),
    ).json()
    assert {user["id"] for user in gone} == leavers
    unsupported = http.get(
        f"{tenant.url}/api/v1/users",
        params={"filter": 'profile.department eq "Sales"'},
        headers=okta_headers(tenant),
    )
    assert unsupported.status_code == 400
    sales = http.get(
        f"{tenant.url}/api/v1/users",
        params={"search": 'profile.department eq "Sales"'},
        headers=okta_headers(tenant),
    ).json()
    assert sales and {user["profile"]["department"] for user in sales} == {"Sales"}


# --- Microsoft ------------------------------------------------------------------------------


def msal_app(tenant: Tenant, http: requests.Session, secret: str | None = None) -> Any:
    return msal.ConfidentialClientApplication(
        tenant.entra.client_id,
        client_credential=secret or tenant.entra.client_secret,
        authority=tenant.entra.authority,
        instance_discovery=False,
        http_client=http,
    )


@pytest.fixture
def graph(tenant: Tenant, http: requests.Session) -> dict[str, str]:
    result = msal_app(tenant, http).acquire_token_for_client(scopes=[GRAPH])
    assert "access_token" in result, result
    return {"Authorization": f"Bearer {result['access_token']}"}


def graph_pages(http: requests.Session, url: str, headers: dict[str, str], **params: str) -> list:
    pages, response = [], http.get(url, params=params, headers=headers)
    while True:
        assert response.status_code == 200, response.text
        pages.append(response.json())
        if "@odata.nextLink" not in pages[-1]:
            return pages
        response = http.get(pages[-1]["@odata.nextLink"], headers=headers)


def test_msal_gets_a_token_and_refuses_a_wrong_secret(
    tenant: Tenant, http: requests.Session
) -> None:
    good = msal_app(tenant, http).acquire_token_for_client(scopes=[GRAPH])
    assert good["token_type"] == "Bearer" and good["expires_in"] > 3000
    bad = msal_app(tenant, http, secret="wrong").acquire_token_for_client(scopes=[GRAPH])
    assert bad["error"] == "invalid_client" and "AADSTS7000215" in bad["error_description"]


def test_graph_signins_newest_first_every_one_once(
    tenant: Tenant, http: requests.Session, graph: dict[str, str]
) -> None:
    pages = graph_pages(
        http,
        f"{tenant.url}/beta/auditLogs/signIns",
        graph,
        **{"$top": "100", "$filter": f"createdDateTime ge 2000-01-01T00:00:00Z and {ALL_SIGNINS}"},
    )
    records = [record for page in pages for record in page["value"]]
    assert len(pages) > 3
    ids = [record["id"] for record in records]
    assert len(ids) == len(set(ids)) and set(ids) == tenant.ids("entra.signins")
    stamps = [record["createdDateTime"] for record in records]
    assert stamps == sorted(stamps, reverse=True)
    assert all(stamp.endswith("Z") for stamp in stamps)
    kinds = {kind for record in records for kind in record["signInEventTypes"]}
    assert kinds == {"interactiveUser", "nonInteractiveUser"}
    default = graph_pages(http, f"{tenant.url}/beta/auditLogs/signIns", graph, **{"$top": "500"})
    interactive = [r for page in default for r in page["value"]]
    assert interactive and {t for r in interactive for t in r["signInEventTypes"]} == {
        "interactiveUser"
    }


def test_graph_time_filter_and_bad_queries(
    tenant: Tenant, http: requests.Session, graph: dict[str, str]
) -> None:
    times = sorted(tenant.rollout.signins.times)
    low = datetime.fromtimestamp(times[len(times) // 3] / 1000, UTC)
    high = datetime.fromtimestamp(times[2 * len(times) // 3] / 1000, UTC)
    window = (
        f"createdDateTime ge {low.strftime('%Y-%m-%dT%H:%M:%S.%fZ')} and createdDateTime le "
        f"{high.strftime('%Y-%m-%dT%H:%M:%S.%fZ')} and {ALL_SIGNINS}"
    )
    pages = graph_pages(http, f"{tenant.url}/beta/auditLogs/signIns", graph, **{"$filter": window})
    got = [r for page in pages for r in page["value"]]
    expected = [t for t in times if low.timestamp() * 1000 <= t <= high.timestamp() * 1000]
    assert len(got) == len(expected) > 0
    for option in ("$skip", "$orderby"):
        refused = http.get(
            f"{tenant.url}/beta/auditLogs/signIns", params={option: "1"}, headers=graph
        )
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "BadRequest"
    broken = http.get(
        f"{tenant.url}/beta/auditLogs/signIns",
        params={"$filter": "createdDateTime gee 1"},
        headers=graph,
    )
    assert broken.status_code == 400


def test_graph_throttling_expiry_and_rate_limit(
    tenant: Tenant, http: requests.Session, graph: dict[str, str]
) -> None:
    url = f"{tenant.url}/v1.0/auditLogs/directoryAudits"
    tenant.faults("entra").throttle(at=1, retry_after=3)
    throttled = http.get(url, headers=graph)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    audits = graph_pages(http, url, graph, **{"$top": "3"})
    ids = [r["id"] for page in audits for r in page["value"]]
    assert len(ids) == len(set(ids)) and set(ids) == tenant.ids("entra.audits")
    tenant.rate_limits = True
    tenant.clock.set(datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1))
    answers = [http.get(url, params={"$top": "1"}, headers=graph).status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]
    tenant.faults("entra").expire_tokens()
    expired = http.get(url, headers=graph)
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_graph_users_default_properties_select_and_manager(
    tenant: Tenant, http: requests.Session, graph: dict[str, str]
) -> None:
    url = f"{tenant.url}/v1.0/users"
    plain = graph_pages(http, url, graph, **{"$top": "10"})
    users = [u for page in plain for u in page["value"]]
    assert {u["id"] for u in users} == tenant.ids("entra.users")
    assert "department" not in users[0] and "userPrincipalName" in users[0]
    chosen = graph_pages(
        http,
        url,
        graph,
        **{"$select": "id,department,country,accountEnabled", "$expand": "manager", "$top": "999"},
    )[0]["value"]
    assert set(chosen[0]) <= {"id", "department", "country", "accountEnabled", "manager"}
    managed = [u for u in chosen if "manager" in u]
    assert managed and all(u["manager"]["@odata.type"] == "#microsoft.graph.user" for u in managed)
    disabled = graph_pages(
        http, url, graph, **{"$filter": "accountEnabled eq false", "$select": "id"}
    )
    assert len(disabled[0]["value"]) == sum(
        1
        for p in tenant.rollout.employees
        if p.row.terminated_on and p.row.terminated_on < datetime.now(UTC).date()
    )


# --- Duo ------------------------------------------------------------------------------------


def duo(tenant: Tenant, **options: Any) -> duo_client.Admin:
    return duo_client.Admin(
        tenant.duo.ikey,
        tenant.duo.skey,
        tenant.duo.host,
        port=tenant.duo.port,
        ca_certs=str(tenant.ca_file),
        **options,
    )


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.mark.parametrize(
    "options",
    [{}, {"sig_version": 2, "digestmod": hashlib.sha1}, {"sig_version": 2}, {"sig_version": 4}],
    ids=["v5", "v2-sha1", "v2-sha512", "v4"],
)
def test_duo_authentication_log_pages_with_next_offset(tenant: Tenant, options: dict) -> None:
    admin = duo(tenant, **options)
    txids, offset = [], None
    for _ in range(100):
        response = admin.get_authentication_log(
            api_version=2,
            mintime="1000000000000",
            maxtime=str(now_ms() - 120_000),
            limit="100",
            sort="ts:asc",
            next_offset=offset,
        )
        txids.extend(log["txid"] for log in response["authlogs"])
        offset = response["metadata"]["next_offset"]
        if offset is None:
            break
    assert len(txids) == len(set(txids)) and set(txids) == tenant.ids("duo.authentication")
    assert response["metadata"]["total_objects"] == len(txids)


def test_duo_two_minute_delay(tenant: Tenant) -> None:
    times = tenant.rollout.duo_authentication.times
    newest = times[-1]
    tenant.clock.set(datetime.fromtimestamp((newest + 60_000) / 1000, UTC))  # a minute after it
    admin = duo(tenant)
    window = {
        "api_version": 2,
        "mintime": str(newest - 1),
        "maxtime": str(newest + 1),
        "limit": "10",
    }
    assert admin.get_authentication_log(**window)["authlogs"] == []
    tenant.clock.advance(61)
    logs = admin.get_authentication_log(**window)["authlogs"]
    assert [log["txid"] for log in logs] == [tenant.rollout.duo_authentication.ids[-1]]


def duo_get(
    tenant: Tenant, http: requests.Session, path: str, params: dict, date: str | None = None
) -> Any:
    date = date or email.utils.formatdate()
    encoded = {key.encode(): [value.encode()] for key, value in params.items()}
    host = tenant.duo.host
    auth = sign(
        tenant.duo.ikey,
        tenant.duo.skey,
        "GET",
        host,
        path,
        date,
        2,
        encoded,
        digestmod=hashlib.sha1,
    )
    return http.get(
        f"{tenant.url}{path}", params=params, headers={"Authorization": auth, "Date": date}
    )


def test_duo_signature_date_throttle_and_parameters(tenant: Tenant, http: requests.Session) -> None:
    path = "/admin/v2/logs/authentication"
    window = {"mintime": "1000000000000", "maxtime": str(now_ms()), "limit": "1"}
    assert duo_get(tenant, http, path, window).status_code == 200
    stale = email.utils.formatdate(time.time() - 3600)
    old = duo_get(tenant, http, path, window, date=stale)
    assert old.status_code == 401 and old.json()["code"] == 40103
    forged = base64.b64encode(f"{tenant.duo.ikey}:{'0' * 40}".encode()).decode()
    unsigned = http.get(
        f"{tenant.url}{path}",
        params=window,
        headers={"Authorization": f"Basic {forged}", "Date": email.utils.formatdate()},
    )
    assert unsigned.status_code == 401 and unsigned.json()["code"] == 40103
    missing = duo_get(tenant, http, path, {"maxtime": window["maxtime"]})
    assert missing.status_code == 400 and missing.json()["code"] == 40002
    tenant.faults("duo").throttle(at=tenant.requests("duo") + 1)
    throttled = duo_get(tenant, http, path, window)
    assert throttled.status_code == 429
    assert throttled.json() == {"code": 42901, "message": "Too Many Requests", "stat": "FAIL"}


def test_duo_rate_limit_per_log(tenant: Tenant, http: requests.Session) -> None:
    tenant.rate_limits = True
    tenant.clock.set(datetime.now(UTC).replace(second=1, microsecond=0) + timedelta(minutes=1))
    window = {"mintime": "1000000000000", "maxtime": str(now_ms()), "limit": "1"}
    tenant.duo.log_limits["authentication"].limit = 2
    try:
        answers = [duo_get(tenant, http, "/admin/v2/logs/authentication", window) for _ in range(3)]
        other = duo_get(tenant, http, "/admin/v2/logs/activity", window)
    finally:
        tenant.duo.log_limits["authentication"].limit = 50
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert answers[2].json()["code"] == 42901 and "Retry-After" not in answers[2].headers
    assert other.status_code == 200  # each log has its own limit


def test_duo_activity_log_and_administrator_log(tenant: Tenant) -> None:
    admin = duo(tenant)
    items, offset = [], None
    while True:
        params = {"mintime": "1000000000000", "maxtime": str(now_ms()), "limit": "1"}
        if offset:
            params["next_offset"] = offset
        response = admin.json_api_call("GET", "/admin/v2/logs/activity", params)
        items.extend(item["activity_id"] for item in response["items"])
        offset = response["metadata"]["next_offset"]
        if offset is None:
            break
    assert set(items) == tenant.ids("duo.activity") and len(items) == len(set(items))
    assert admin.get_administrator_log(mintime=0) == []


# --- PingOne --------------------------------------------------------------------------------


def ping_token(tenant: Tenant, http: requests.Session, basic: bool = True) -> Any:
    url = f"{tenant.url}/{tenant.ping.environment_id}/as/token"
    if basic:
        return http.post(
            url,
            data={"grant_type": "client_credentials"},
            auth=(tenant.ping.client_id, tenant.ping.client_secret),
        )
    return http.post(
        url,
        data={
            "grant_type": "client_credentials",
            "client_id": tenant.ping.client_id,
            "client_secret": tenant.ping.client_secret,
        },
    )


def test_ping_activities_follow_next_links(tenant: Tenant, http: requests.Session) -> None:
    assert ping_token(tenant, http, basic=False).status_code == 200
    token = ping_token(tenant, http).json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    url = f"{tenant.ping.api_url}/environments/{tenant.ping.environment_id}/activities"
    response = http.get(
        url,
        params={
            "filter": 'recordedAt gt "2000-01-01T00:00:00Z" AND '
            'recordedAt lt "2100-01-01T00:00:00.000Z"',
            "limit": "100",
        },
        headers=headers,
    )
    activities = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        activities.extend(body["_embedded"]["activities"])
        if "next" not in body["_links"]:
            break
        response = http.get(body["_links"]["next"]["href"], headers=headers)
    ids = [activity["id"] for activity in activities]
    assert len(ids) == len(set(ids)) and set(ids) == tenant.ids("ping.activities")
    stamps = [activity["recordedAt"] for activity in activities]
    assert stamps == sorted(stamps, reverse=True)
    no_range = http.get(url, params={"filter": 'action.type eq "SESSION.CREATED"'}, headers=headers)
    assert no_range.status_code == 400 and no_range.json()["code"] == "INVALID_DATA"
    posted = http.post(
        url,
        data={
            "filter": 'recordedAt gt "2000-01-01T00:00:00Z" AND action.type eq "SESSION.CREATED"'
        },
        headers=headers,
    )
    assert posted.status_code == 200
    assert {a["action"]["type"] for a in posted.json()["_embedded"]["activities"]} == {
        "SESSION.CREATED"
    }
    tenant.faults("ping").expire_tokens()
    expired = http.get(
        url, params={"filter": 'recordedAt gt "2000-01-01T00:00:00Z"'}, headers=headers
    )
    assert expired.status_code == 401 and expired.json()["code"] == "ACCESS_FAILED"
    wrong = http.post(
        f"{tenant.url}/{tenant.ping.environment_id}/as/token",
        data={"grant_type": "client_credentials"},
        auth=(tenant.ping.client_id, "nope"),
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


# --- ServiceNow and Jira --------------------------------------------------------------------


def test_servicenow_link_headers_page_every_incident(
    tenant: Tenant, http: requests.Session
) -> None:
    auth = (tenant.servicenow.user, tenant.servicenow.password)
    url = f"{tenant.url}/api/now/table/incident"
    query = {
        "sysparm_query": "sys_updated_on>=2000-01-01 00:00:00^ORDERBYsys_updated_on",
        "sysparm_limit": "2",
    }
    response = http.get(url, params=query, auth=auth)
    incidents = []
    while True:
        assert response.status_code == 200
        incidents.extend(response.json()["result"])
        if "next" not in response.links:
            break
        response = http.get(response.links["next"]["url"], auth=auth)
    assert int(response.headers["X-Total-Count"]) == len(incidents) > 2
    ids = [incident["sys_id"] for incident in incidents]
    assert len(ids) == len(set(ids)) and set(ids) == tenant.ids("servicenow.incident")
    stamps = [incident["sys_updated_on"] for incident in incidents]
    assert stamps == sorted(stamps)
    assert {"first", "last"} <= set(response.links) and "prev" in response.links
    later = http.get(
        url,
        params={"sysparm_query": f"sys_updated_on>{stamps[-2]}", "sysparm_fields": "sys_id,number"},
        auth=auth,
    )
    assert [r["sys_id"] for r in later.json()["result"]] == [ids[-1]]
    assert set(later.json()["result"][0]) == {"sys_id", "number"}
    assert "Link" not in later.headers  # one page
    assert http.get(url, auth=("x", "y")).status_code == 401


def test_jira_cloud_next_page_tokens_and_the_removed_search(
    tenant: Tenant, http: requests.Session
) -> None:
    auth = (tenant.jira.email, tenant.jira.api_token)
    url = f"{tenant.url}/rest/api/3/search/jql"
    params = {
        "jql": 'project = HELP AND updated >= "2000/01/01 00:00" ORDER BY updated ASC',
        "maxResults": "2",
        "fields": "*all",
    }
    body = http.get(url, params=params, auth=auth).json()
    issues = list(body["issues"])
    while not body["isLast"]:
        body = http.get(url, params={"nextPageToken": body["nextPageToken"]}, auth=auth).json()
        issues.extend(body["issues"])
    assert "nextPageToken" not in body and len(issues) > 2
    ids = [issue["id"] for issue in issues]
    assert len(ids) == len(set(ids)) and set(ids) == tenant.ids("jira.issues")
    updated = [issue["fields"]["updated"] for issue in issues]
    assert updated == sorted(updated)
    only_ids = http.post(url, json={"jql": "project = HELP", "maxResults": 50}, auth=auth).json()
    assert {tuple(issue) for issue in only_ids["issues"]} == {("id",)}
    unbounded = http.get(url, params={"jql": "ORDER BY created"}, auth=auth)
    assert unbounded.status_code == 400 and "Unbounded" in unbounded.json()["errorMessages"][0]
    for old in ("/rest/api/3/search", "/rest/api/2/search"):
        gone = http.get(f"{tenant.url}{old}", params={"jql": "project = HELP"}, auth=auth)
        assert (
            gone.status_code == 410 and "/rest/api/3/search/jql" in gone.json()["errorMessages"][0]
        )
    last = updated[-1][:16].replace("T", " ")
    later = http.get(
        url, params={"jql": f'updated > "{last}"', "fields": "updated"}, auth=auth
    ).json()
    assert [issue["id"] for issue in later["issues"]] == [ids[-1]]
    assert http.get(url, params=params, auth=("x", "y")).status_code == 401


def test_jira_data_center_start_at(tenant: Tenant, http: requests.Session) -> None:
    auth = (tenant.jira_dc.user, tenant.jira_dc.password)
    url = f"{tenant.jira_dc.base_url}/rest/api/2/search"
    issues, start = [], 0
    while True:
        body = http.get(
            url,
            params={
                "jql": "project = HELP ORDER BY created ASC",
                "startAt": str(start),
                "maxResults": "2",
            },
            auth=auth,
        ).json()
        issues.extend(body["issues"])
        start += len(body["issues"])
        if start >= body["total"] or not body["issues"]:
            break
    ids = [issue["id"] for issue in issues]
    assert set(ids) == tenant.ids("jira_dc.issues") and len(ids) == len(set(ids)) > 0


# --- what the tenant knows, and the command line ----------------------------------------------


def test_truth_and_unserved(tenant: Tenant) -> None:
    for feed in ("okta.logs", "entra.signins", "duo.authentication", "ping.activities"):
        assert len(tenant.ids(feed)) > 10
    assert tenant.unserved and all(b'"trackingid"' in line for line in tenant.unserved)
    with pytest.raises(ValueError, match="no feed"):
        tenant.ids("okta.nothing")


def test_fault_specs() -> None:
    spec = fault_spec("entra:throttle@3x2=2.5")
    assert (spec.vendor, spec.kind, spec.at, spec.count, spec.value) == (
        "entra",
        "throttle",
        3,
        2,
        2.5,
    )
    assert fault_spec("ping:token-ttl=30").value == 30.0
    for bad in ("entra:throttle", "nobody:errors@1", "ping:empty-pages@1", "okta:reorder", "okta"):
        with pytest.raises(Exception, match=r"expected|needs|vendor|Okta fault"):
            fault_spec(bad)


SERVE = """
import argparse, sys
from pathlib import Path
from pipeline.simulate.tenant.cli import add_serve_arguments, serve_from_args
parser = argparse.ArgumentParser()
for name, default in (("--users", 20), ("--weeks", 2), ("--seed", 1)):
    parser.add_argument(name, type=int, default=default)
parser.add_argument("--out", type=Path)
for name in ("--plan", "--idp-mix", "--duo-fronted", "--no-runbook-growth", "--kafka"):
    parser.add_argument(name, default=None)
add_serve_arguments(parser)
sys.exit(serve_from_args(parser.parse_args()))
"""


def test_serve_until_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SERVE,
            "--out",
            str(tmp_path),
            "--serve",
            "127.0.0.1:0",
            "--fault",
            "okta:errors@1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = {}
        assert process.stdout is not None
        for line in process.stdout:
            name, _, rest = line.partition(": ")
            lines[name] = rest.strip()
            if name == "pingfederate":
                break
        url = lines["tenant"].split()[0]
        token = lines["okta"].split("SSWS token ")[1].split(";")[0]
        with requests.Session() as http:
            http.trust_env, http.verify = False, str(tmp_path / "tenant-ca.pem")
            first = http.get(f"{url}/api/v1/logs", headers={"Authorization": f"SSWS {token}"})
            second = http.get(f"{url}/api/v1/logs", headers={"Authorization": f"SSWS {token}"})
        assert (first.status_code, second.status_code) == (500, 200)
        assert (tmp_path / "tenant-okta-key.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
        assert set(lines) >= {"okta", "entra", "duo", "ping", "servicenow", "jira", "jira_dc"}
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    assert "Traceback" not in errors


def test_serve_refuses_a_busy_port(tmp_path: Path, tenant: Tenant) -> None:
    port = tenant.url.rsplit(":", 1)[1]
    done = subprocess.run(
        [sys.executable, "-c", SERVE, "--out", str(tmp_path), "--serve", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("pipeline simulate: cannot listen on 127.0.0.1:")
    assert "Traceback" not in done.stderr
