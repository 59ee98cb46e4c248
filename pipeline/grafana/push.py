"""Push the folder, the ClickHouse datasource, the dashboards and the alert rules to a Grafana.

Idempotent: every object is addressed by its uid, looked up first and then created or updated,
or written through an endpoint that is create-or-replace by definition. Endpoints, as documented
for Grafana 11 (https://grafana.com/docs/grafana/v11.6/developers/http_api/):

- folder: ``GET /api/folders/:uid``, then ``POST /api/folders`` or ``PUT /api/folders/:uid``
  (folder/);
- datasource: ``GET /api/datasources/uid/:uid``, then ``POST /api/datasources`` or
  ``PUT /api/datasources/uid/:uid`` (data_source/);
- dashboards: ``POST /api/dashboards/db`` with ``overwrite: true``, create-or-replace by uid
  (dashboard/);
- alert rules: ``GET`` then ``PUT /api/v1/provisioning/folder/:folderUid/rule-groups/:group``
  with the whole group (alerting_provisioning/): the PUT sets the group's evaluation interval
  and replaces its rules in one transaction, creating, updating and deleting rules by uid.

All calls go through grafana-client (``GrafanaApi``); nothing here logs, and neither the token
nor the datasource password ever reaches a returned line or an error message.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

__all__ = ["Bundle", "GrafanaPushError", "push", "rule_group_body"]

T = TypeVar("T")

# Rule-level keys of the file-provisioning format that the HTTP API spells differently: the API
# links a rule to a panel through the annotations `__dashboardUid__` / `__panelId__`.
_FILE_ONLY_RULE_KEYS = ("dashboardUid", "panelId")

_DURATION = re.compile(r"(\d+)(ms|[ywdhms])")
_UNIT_SECONDS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


class GrafanaPushError(Exception):
    """Grafana refused or could not be reached; the message names the object and the reason."""


@dataclass(frozen=True)
class Bundle:
    folder_uid: str
    folder_title: str
    datasource: dict[str, Any]  # Grafana datasource API body: name, uid, type, access, jsonData,
    # secureJsonData (password)
    dashboards: list[dict[str, Any]]  # dashboard JSON models, each with "uid" and "title"
    rule_groups: list[dict[str, Any]]  # alert rule groups in Grafana's FILE-provisioning format:
    # {"orgId": 1, "name": "...", "folder": "<folder title>", "interval": "1m",
    #  "rules": [{"uid","title","condition","data":[...],"noDataState","execErrState",
    #             "for":"5m","labels":{},"annotations":{},"isPaused":false}]}


def push(api: GrafanaApi, bundle: Bundle) -> list[str]:
    """Create or update everything; return one line per object for a person, e.g.
    'folder passwordless-rollout: created', 'datasource passwordless-clickhouse: updated',
    'dashboard rollout-overview: saved', 'alert rule ticket-rate-rising: created'."""
    # Check the whole bundle before the first write, so a malformed one changes nothing.
    groups = [rule_group_body(group, bundle) for group in bundle.rule_groups]
    _check_unique("dashboard", (d.get("uid") for d in bundle.dashboards))
    for dashboard in bundle.dashboards:
        if not dashboard.get("uid") or not dashboard.get("title"):
            raise ValueError("every dashboard needs a uid and a title")
    for key in ("uid", "name", "type"):
        if not bundle.datasource.get(key):
            raise ValueError(f"the datasource needs a {key}")

    call = _Caller(api, bundle)
    lines = [_push_folder(api, call, bundle)]
    lines.append(_push_datasource(api, call, bundle.datasource))
    for dashboard in bundle.dashboards:
        lines.append(_push_dashboard(api, call, dashboard, bundle.folder_uid))
    for group in groups:
        lines.extend(_push_rule_group(api, call, group))
    return lines


def rule_group_body(group: dict[str, Any], bundle: Bundle) -> dict[str, Any]:
    """The provisioning API's AlertRuleGroup for one file-format group of the bundle.

    The file format names the folder by title and gives the interval as a duration ("1m"); the
    API wants the folder uid on the group and on every rule, the interval in whole seconds, and
    `folderUID`, `ruleGroup` and `orgID` on each rule (ProvisionedAlertRule).
    """
    name = group.get("name")
    if not name:
        raise ValueError("every rule group needs a name")
    folder = group.get("folder", bundle.folder_title)
    if folder != bundle.folder_title:
        # The file format would put the group in another folder; the push has only one.
        raise ValueError(f"rule group {name}: folder {folder!r} is not {bundle.folder_title!r}")
    org_id = int(group.get("orgId", 1))
    rules = [_rule_body(rule, bundle.folder_uid, name, org_id) for rule in group.get("rules", [])]
    _check_unique(f"rule group {name}: rule", (r["uid"] for r in rules))
    return {
        "title": name,
        "folderUid": bundle.folder_uid,
        "interval": _seconds(group.get("interval", "1m"), f"rule group {name}"),
        "rules": rules,
    }


def _rule_body(rule: dict[str, Any], folder_uid: str, group: str, org_id: int) -> dict[str, Any]:
    if not rule.get("uid") or not rule.get("title"):
        raise ValueError(f"rule group {group}: every rule needs a uid and a title")
    # A deep copy: the bundle stays as it was, whatever the caller does with the bodies.
    body = {k: copy.deepcopy(v) for k, v in rule.items() if k not in _FILE_ONLY_RULE_KEYS}
    annotations = dict(rule.get("annotations") or {})
    if rule.get("dashboardUid"):
        annotations["__dashboardUid__"] = str(rule["dashboardUid"])
        annotations["__panelId__"] = str(rule.get("panelId", ""))
    body["annotations"] = annotations
    body["labels"] = dict(rule.get("labels") or {})
    # Required by the API, optional in files; these are the file provisioning defaults.
    body.setdefault("for", "0s")
    body.setdefault("noDataState", "NoData")
    body.setdefault("execErrState", "Alerting")
    body.update(folderUID=folder_uid, ruleGroup=group, orgID=org_id)
    return body


def _seconds(value: Any, what: str) -> int:
    """Whole seconds of a Prometheus-style duration ("1m", "1h30m", "90s") or of a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value and _DURATION.sub("", value) == "":
        seconds = 0.0
        for amount, unit in _DURATION.findall(value):
            seconds += int(amount) / 1000 if unit == "ms" else int(amount) * _UNIT_SECONDS[unit]
    else:
        raise ValueError(f"{what}: interval {value!r} is not a duration such as '1m'")
    if seconds <= 0 or seconds != int(seconds):
        raise ValueError(f"{what}: interval {value!r} is not a positive whole number of seconds")
    return int(seconds)


def _check_unique(what: str, uids: Iterable[Any]) -> None:
    seen: set[Any] = set()
    for uid in uids:
        if uid in seen:
            raise ValueError(f"{what} uid {uid!r} appears twice in the bundle")
        seen.add(uid)


def _path(segment: str) -> str:
    # grafana-client puts ids into paths unescaped; a group name may hold spaces or a slash.
    return quote(str(segment), safe="")


class _Caller:
    """Runs one grafana-client call and turns any failure into a GrafanaPushError."""

    def __init__(self, api: GrafanaApi, bundle: Bundle) -> None:
        self.url = str(api.client.url)
        self.secrets = _secrets(api, bundle)

    def __call__(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except GrafanaException as exc:
            message = self._reason(exc)
        except OSError as exc:
            # The HTTP library's ConnectionError (refused, DNS, TLS) is an OSError that
            # grafana-client lets through unwrapped; its innermost cause is the short reason.
            message = f"cannot reach Grafana at {self.url}: {_innermost(exc)}"
        # `from None`: one clear error, without a chain that repeats the request details.
        raise GrafanaPushError(self._redact(f"{what}: {message}")) from None

    def lookup(self, what: str, fn: Callable[[], T]) -> T | None:
        """Like __call__, but a 404 means "not there yet" and gives None."""

        def attempt() -> T | None:
            try:
                return fn()
            except GrafanaClientError as exc:
                if exc.status_code == 404:
                    return None
                raise

        return self(what, attempt)

    @staticmethod
    def _reason(exc: GrafanaException) -> str:
        # Grafana's own words are in the JSON body's "message"; grafana-client's text for a 401
        # is only "Unauthorized", and for a 400 it repeats the whole body.
        body = exc.response
        detail = body.get("message") if isinstance(body, dict) else None
        if not detail:
            detail = body if isinstance(body, str) and body else exc.message
        detail = " ".join(str(detail).split())
        if len(detail) > 300:  # a proxy in front of Grafana may answer with a whole HTML page
            detail = detail[:300] + "…"
        status = exc.status_code
        if not status:  # a timeout: grafana-client reports it with status 0
            return f"no answer from Grafana: {detail}"
        return f"Grafana answered {status}: {detail}"

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def _secrets(api: GrafanaApi, bundle: Bundle) -> list[str]:
    """The token (or basic-auth password) and the datasource's secure values, longest first."""
    found: list[str] = []
    auth = api.client.auth
    for attr in ("token", "password", "value"):  # TokenAuth, HTTPBasicAuth, HeaderAuth
        value = getattr(auth, attr, None)
        if isinstance(value, str | bytes):
            found.append(value.decode() if isinstance(value, bytes) else value)
    secure = bundle.datasource.get("secureJsonData") or {}
    found.extend(str(v) for v in secure.values() if v)
    # Errors may quote a value escaped (an HTTP library's repr of a bad header): those too.
    found += [s.encode("unicode_escape").decode() for s in found]
    # Longest first, and none too short to be a secret: "***" must not eat ordinary words.
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def _innermost(exc: BaseException) -> BaseException:
    seen = {id(exc)}
    while (nxt := exc.__cause__ or exc.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        exc = nxt
    return exc


def _push_folder(api: GrafanaApi, call: _Caller, bundle: Bundle) -> str:
    uid, title = bundle.folder_uid, bundle.folder_title
    what = f"folder {uid}"
    existing = call.lookup(what, lambda: api.folder.get_folder(_path(uid)))
    if existing is None:
        call(what, lambda: api.folder.create_folder(title, uid=uid))
        return f"{what}: created"
    if existing.get("title") == title:
        return f"{what}: unchanged"
    # overwrite=true: the docs require either the current version or this flag.
    call(what, lambda: api.folder.update_folder(_path(uid), title=title, overwrite=True))
    return f"{what}: updated"


def _push_datasource(api: GrafanaApi, call: _Caller, datasource: dict[str, Any]) -> str:
    uid = str(datasource["uid"])
    what = f"datasource {uid}"
    existing = call.lookup(what, lambda: api.datasource.get_datasource_by_uid(_path(uid)))
    if existing is None:
        call(what, lambda: api.datasource.create_datasource(datasource))
        return f"{what}: created"
    # Always written: Grafana never returns secureJsonData, so a changed password is invisible
    # to a comparison; the PUT re-sends it and Grafana re-encrypts it.
    call(what, lambda: api.datasource.update_datasource_by_uid(_path(uid), datasource))
    return f"{what}: updated"


def _push_dashboard(
    api: GrafanaApi, call: _Caller, dashboard: dict[str, Any], folder_uid: str
) -> str:
    uid = str(dashboard["uid"])
    # No numeric id: it is local to one Grafana; with overwrite, the uid finds the dashboard.
    model = {**dashboard, "id": None}
    body = {
        "dashboard": model,
        "folderUid": folder_uid,
        "overwrite": True,
        "message": "pipeline grafana push",
    }
    call(f"dashboard {uid}", lambda: api.dashboard.update_dashboard(body))
    return f"dashboard {uid}: saved"


def _push_rule_group(api: GrafanaApi, call: _Caller, group: dict[str, Any]) -> list[str]:
    folder_uid, name = group["folderUid"], group["title"]
    what = f"rule group {name}"
    rules = api.alertingprovisioning
    existing = call.lookup(what, lambda: rules.get_rule_group(_path(folder_uid), _path(name)))
    before = {r.get("uid") for r in (existing or {}).get("rules") or []}
    # One PUT of the whole group: it sets the interval (seconds) and creates, updates and deletes
    # rules by uid in one transaction, so a second push of the same bundle changes nothing.
    # X-Disable-Provenance (disable_provenance=True): without it Grafana marks the rules as
    # provisioned ("api") and locks them in the UI; people must still be able to edit or pause
    # a rule there during the rollout. The next push puts the bundle's version back.
    call(
        what,
        lambda: rules.update_rule_group(
            _path(folder_uid), _path(name), group, disable_provenance=True
        ),
    )
    lines = [f"{what}: {'updated' if existing else 'created'} (every {group['interval']}s)"]
    after = [r["uid"] for r in group["rules"]]
    lines += [f"alert rule {uid}: {'updated' if uid in before else 'created'}" for uid in after]
    lines += [
        f"alert rule {uid}: removed (no longer in the bundle)"
        for uid in sorted(before - set(after), key=str)
    ]
    return lines
