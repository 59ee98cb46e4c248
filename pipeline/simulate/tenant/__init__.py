"""A simulated tenant: the vendors' log and directory APIs, as documented, serving a simulated
rollout, so the collectors can be tried and tested without a real tenant.

One HTTPS server (a self-signed CA made at start; trust `tenant.ca_file`) answers for every
vendor at its root, each on the paths its API documents: Okta (`/api/v1/logs`,
`/api/v1/users`, `/oauth2/v1/token`), Microsoft (`/{tenant}/v2.0/.well-known/openid-
configuration`, `/{tenant}/oauth2/v2.0/token`, `/beta/auditLogs/signIns`,
`/v1.0/auditLogs/directoryAudits`, `/v1.0/users`), Duo (`/admin/v2/logs/authentication`,
`/activity`, `/telephony`, `/admin/v1/logs/administrator`), PingOne (`/{envId}/as/token`,
`/v1/environments/{envId}/activities`), ServiceNow (`/api/now/table/incident`), Jira Cloud
(`/rest/api/3/search/jql`; the removed `/rest/api/3/search` answers 410) and Jira Data Center
(context path `/jira`: `/jira/rest/api/2/search`). Each module's docstring cites the vendor
documentation of every behaviour. The vendors' retention windows (Okta 90 days, Duo 180,
Graph 30, PingOne 14) are not applied: a backfill of a whole simulated rollout works.

In a test (build once per module: 30 users over 3 weeks take about a second, but have no
helpdesk tickets yet; 50 users over 30 weeks, seed 2, about 2 s, a dozen per ticket system):

    from pipeline.simulate.tenant import Tenant

    @pytest.fixture(scope="module")
    def tenant(tmp_path_factory):
        with Tenant.simulate(tmp_path_factory.mktemp("tenant"), users=30, weeks=3) as tenant:
            yield tenant

    @pytest.fixture
    def fresh(tenant):
        tenant.reset()  # faults, request counts, tokens, rate-limit windows, clock
        return tenant

`Tenant.simulate` runs `pipeline simulate` with the rollout plan moved to end before today (as
`pipeline demo` does), so every record is in the past; `Tenant.from_directory(DIR)` serves an
existing simulation directory. `with` starts the server on 127.0.0.1 on a free port (or
`Tenant.start(host, port)`), and stops it. `tls=False` serves plain HTTP (msal refuses an
authority that is not https, so Microsoft then works only for plain HTTP clients).

What a collector needs:
- `tenant.url`: the base URL of every vendor ("https://127.0.0.1:PORT"); `tenant.ca_file`:
  the CA to trust (httpx `verify=ssl.create_default_context(cafile=…)`, msal below,
  duo_client `ca_certs=str(ca_file)`).
- `tenant.okta`: `api_token` (`Authorization: SSWS …`), `client_id` and `private_key_pem` /
  `private_jwk` (private_key_jwt client assertions, RS256; `aud` = `{url}/oauth2/v1/token`),
  scopes `okta.logs.read okta.users.read`.
- `tenant.entra`: `tenant_id`, `client_id`, `client_secret`, `authority` (`{url}/{tenant_id}`:
  `msal.ConfidentialClientApplication(client_id, client_credential=client_secret,
  authority=tenant.entra.authority, instance_discovery=False, http_client=session)`),
  `graph_url` (= `url`), scope `https://graph.microsoft.com/.default`. msal's `verify=` sets a
  requests session's `verify`, which REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override when set
  (requests' trust_env): give msal a `requests.Session` with `trust_env = False` and
  `verify = str(tenant.ca_file)`, or point REQUESTS_CA_BUNDLE at the CA file.
- `tenant.duo`: `ikey`, `skey`, `host` and `port` (`duo_client.Admin(ikey, skey, host,
  port=port, ca_certs=tenant.ca_file)`); signatures v2 (HMAC-SHA1 or SHA-512) and v4/v5.
- `tenant.ping`: `environment_id`, `client_id`, `client_secret`; `auth_url` / `api_url` (both
  `url`, for every region).
- `tenant.servicenow`: `user`, `password` (Basic). `tenant.jira`: `email`, `api_token` (Basic);
  `tenant.jira_dc`: `user`, `password`, `base_url` (`{url}/jira`).

What the tenant serves, for the "every event once" checks: `tenant.ids(feed)`, the vendor ids
of a feed (all of them, visible now or not): "okta.logs" (`uuid`), "okta.users" (`id`),
"entra.signins" and "entra.audits" (`id`), "entra.users" (`id`), "duo.authentication"
(`txid`), "duo.activity" (`activity_id`), "duo.telephony" (`telephony_id`),
"duo.administrator" (none simulated), "ping.activities" (`id`), "servicenow.incident"
(`sys_id`), "jira.issues" and "jira_dc.issues" (`id`). `tenant.unserved` holds what no pull
API serves (PingFederate audit records: a file or syslog, never an API), as NDJSON lines.

Faults, per vendor ("okta", "entra", "duo", "ping", "servicenow", "jira", "jira_dc"); counts
are of the vendor's data requests (not token or discovery requests) from the last reset:
- `tenant.faults("entra").throttle(at=3, retry_after=2.0)`: the 3rd request answers 429 in
  the vendor's shape (Retry-After where the vendor sends it; Okta's X-Rate-Limit-* headers;
  Duo's 42901 body); `count=K` for K in a row.
- `tenant.faults("okta").errors(at=2, count=3)`: a run of three 500s from the 2nd request.
- `tenant.faults("ping").token_ttl(5.0)`: tokens issued from now on live 5 s (`expires_in`
  says so; then 401 with the vendor's body); `expire_tokens()` expires every token issued so
  far, before its announced time (a revoked token).
- `tenant.faults("okta").empty_pages(at=1, count=2)`: Okta log pages answered `[]` with a
  `next` link that stays where it was (events not yet persisted).
- Okta's out-of-order `published`: `Tenant(…, okta_reorder=SECONDS)` (default 10 s): each
  event is persisted up to that long after it was published, and polling returns events in
  persistence order, as Okta documents; 0 returns them in `published` order.
- The vendors' documented rate limits are on (Okta 120/min on `/api/v1/logs` and 600/min on
  `/api/v1/users`, Graph 5 per 10 s on the audit logs, Duo 50/min per log); `rate_limits=False`
  turns them off.
- `tenant.requests("okta")`: data requests so far. `tenant.clock`: what "now" is for the data
  (records become visible as it passes their time; Duo's two-minute delay counts from it):
  `tenant.clock.set(datetime)` / `advance(seconds)`; it keeps running in real time.

From the command line, `pipeline simulate … --serve HOST:PORT [--fault SPEC]…` (see
`pipeline.simulate.tenant.cli`): SPEC is `VENDOR:KIND[@N][xK][=VALUE]`, e.g. `entra:throttle@3=2`,
`okta:errors@2x3`, `ping:token-ttl=30`, `okta:empty-pages@1x2`, `okta:reorder=30`.
"""

from __future__ import annotations

from typing import Any

VENDORS = ("okta", "entra", "duo", "ping", "servicenow", "jira", "jira_dc")
__all__ = ["VENDORS", "Clock", "Faults", "Tenant"]


def __getattr__(name: str) -> Any:
    # Imported when used: `pipeline --help` and the other commands need no aiohttp or JWT.
    if name in ("Clock", "Faults", "Tenant"):
        from pipeline.simulate.tenant import server

        return getattr(server, name)
    raise AttributeError(name)
