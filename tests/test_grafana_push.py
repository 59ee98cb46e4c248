"""pipeline.grafana.push against a local HTTP server that plays Grafana 11 and checks each request.

The server keeps state by uid, records every request, answers as Grafana's HTTP API docs say, and
records a violation whenever a request departs from them. Doc pages (Grafana 11.x), cited at each
check below by the short name on the left:

- auth:         https://grafana.com/docs/grafana/v11.6/developers/http_api/authentication/
- folder:       https://grafana.com/docs/grafana/v11.6/developers/http_api/folder/
- data_source:  https://grafana.com/docs/grafana/v11.6/developers/http_api/data_source/
- dashboard:    https://grafana.com/docs/grafana/v11.6/developers/http_api/dashboard/
- provisioning: https://grafana.com/docs/grafana/v11.6/developers/http_api/alerting_provisioning/
"""

from __future__ import annotations

import copy
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from commands import pipeline_cli
from grafana_client import GrafanaApi

from pipeline.grafana.push import Bundle, GrafanaPushError, push, rule_group_body

TOKEN = "glsa_pushTest_0123456789abcdef"
PASSWORD = "ch-secret-Pa55word-42"
FOLDER_UID = "passwordless-rollout"
FOLDER_TITLE = "Passwordless rollout"
DS_UID = "passwordless-clickhouse"
DS_TYPE = "grafana-clickhouse-datasource"
GROUP = "passwordless rollout"  # a space: the group name travels in the URL path
GROUP_PATH = "/api/v1/provisioning/folder/passwordless-rollout/rule-groups/passwordless%20rollout"
EXPR = "__expr__"  # datasourceUid of server-side expressions (provisioning: AlertQuery)


# --- the bundle -----------------------------------------------------------------------------


def _ds_ref() -> dict[str, str]:
    return {"type": DS_TYPE, "uid": DS_UID}


def _rule(uid: str, title: str, sql: str, above: float) -> dict[str, Any]:
    """A file-format rule: ClickHouse query A, reduce B (last value), threshold C (B > above)."""
    return {
        "uid": uid,
        "title": title,
        "condition": "C",
        "data": [
            {
                "refId": "A",
                "relativeTimeRange": {"from": 14 * 86400, "to": 0},
                "datasourceUid": DS_UID,
                "model": {
                    "refId": "A",
                    "datasource": _ds_ref(),
                    "editorType": "sql",
                    "format": 1,
                    "queryType": "table",
                    "rawSql": sql,
                },
            },
            {
                "refId": "B",
                "datasourceUid": EXPR,
                "model": {
                    "refId": "B",
                    "datasource": {"type": EXPR, "uid": EXPR},
                    "type": "reduce",
                    "expression": "A",
                    "reducer": "last",
                },
            },
            {
                "refId": "C",
                "datasourceUid": EXPR,
                "model": {
                    "refId": "C",
                    "datasource": {"type": EXPR, "uid": EXPR},
                    "type": "threshold",
                    "expression": "B",
                    "conditions": [{"evaluator": {"type": "gt", "params": [above]}}],
                },
            },
        ],
        "noDataState": "NoData",
        "execErrState": "Error",
        "for": "5m",
        "labels": {"team": "identity"},
        "annotations": {"summary": title},
        "isPaused": False,
    }


def make_bundle() -> Bundle:
    panel_sql = (
        "SELECT week, enrollment_rate, active_use_rate FROM weekly_metrics "
        "WHERE $__dateFilter(week) ORDER BY week"
    )
    dashboards = [
        {
            "uid": "rollout-overview",
            "title": "Passwordless rollout: overview",
            "schemaVersion": 39,
            "time": {"from": "now-30w", "to": "now"},
            "panels": [
                {
                    "id": 1,
                    "type": "timeseries",
                    "title": "Enrollment and active use",
                    "datasource": _ds_ref(),
                    "targets": [
                        {
                            "refId": "A",
                            "datasource": _ds_ref(),
                            "editorType": "sql",
                            "format": 0,
                            "queryType": "timeseries",
                            "rawSql": panel_sql,
                        }
                    ],
                }
            ],
        },
        {
            "uid": "rollout-helpdesk",
            "title": "Passwordless rollout: helpdesk",
            "schemaVersion": 39,
            "panels": [],
        },
    ]
    rules = [
        _rule(
            "ticket-rate-rising",
            "Helpdesk tickets per 1,000 users rising",
            "SELECT tickets_per_1000 FROM weekly_metrics WHERE $__dateFilter(week) ORDER BY week",
            12.0,
        ),
        _rule(
            "active-use-stalled",
            "Active use below the phase target",
            "SELECT target - active_use_rate FROM phase_gates WHERE $__dateFilter(week)",
            0.05,
        ),
    ]
    return Bundle(
        folder_uid=FOLDER_UID,
        folder_title=FOLDER_TITLE,
        datasource={
            "name": "Passwordless ClickHouse",
            "uid": DS_UID,
            "type": DS_TYPE,
            "access": "proxy",
            "jsonData": {
                "host": "clickhouse.internal",
                "port": 9000,
                "protocol": "native",
                "defaultDatabase": "passwordless",
                "username": "grafana_reader",
            },
            "secureJsonData": {"password": PASSWORD},
        },
        dashboards=dashboards,
        rule_groups=[
            {"orgId": 1, "name": GROUP, "folder": FOLDER_TITLE, "interval": "1m", "rules": rules}
        ],
    )


# --- the fake Grafana -----------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str  # as sent, percent-encoded, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    raw: bytes
    body: Any


Answer = tuple[int, Any]
DURATION = re.compile(r"^(\d+(ms|[ywdhms]))+$")  # Go/Prometheus duration, e.g. "5m", "1h30m"
NO_DATA_STATES = {"Alerting", "NoData", "OK", "KeepLast"}  # provisioning: ProvisionedAlertRule
EXEC_ERR_STATES = {"OK", "Alerting", "Error", "KeepLast"}


class FakeGrafana:
    """Grafana's documented behaviour for the endpoints push uses, with state kept by uid."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}  # as sent, minus secureJsonData
        self.secure: dict[str, dict[str, Any]] = {}  # secureJsonData, which Grafana encrypts
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.provenance: dict[str, str] = {}
        self.intervals: dict[tuple[str, str], int] = {}
        self.versions: dict[str, int] = {}
        self._lock = threading.Lock()
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Answer]]] = [
            ("GET", re.compile(r"/api/folders/([^/]+)"), self._get_folder),
            ("POST", re.compile(r"/api/folders"), self._create_folder),
            ("PUT", re.compile(r"/api/folders/([^/]+)"), self._update_folder),
            ("GET", re.compile(r"/api/datasources/uid/([^/]+)"), self._get_datasource),
            ("POST", re.compile(r"/api/datasources"), self._create_datasource),
            ("PUT", re.compile(r"/api/datasources/uid/([^/]+)"), self._update_datasource),
            ("POST", re.compile(r"/api/dashboards/db"), self._save_dashboard),
            (
                "GET",
                re.compile(r"/api/v1/provisioning/folder/([^/]+)/rule-groups/([^/]+)"),
                self._get_rule_group,
            ),
            (
                "PUT",
                re.compile(r"/api/v1/provisioning/folder/([^/]+)/rule-groups/([^/]+)"),
                self._put_rule_group,
            ),
        ]
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as grafana-client's session expects
            # Headers and body leave in separate writes: without this, Nagle's algorithm and
            # the client's delayed ACK hold every keep-alive answer back by ~40 ms.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, body = fake.handle(
                    self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
                )
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeGrafana:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- bookkeeping ---------------------------------------------------------------------

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]

    def state(self) -> dict[str, Any]:
        """Everything Grafana would keep, except version counters and timestamps."""
        with self._lock:
            return copy.deepcopy(
                {
                    "folders": self.folders,
                    "datasources": self.datasources,
                    "secure": self.secure,
                    "dashboards": self.dashboards,
                    "rules": self.rules,
                    "provenance": self.provenance,
                    "intervals": self.intervals,
                }
            )

    def _bump(self, key: str) -> int:
        self.versions[key] = self.versions.get(key, 0) + 1
        return self.versions[key]

    # -- dispatch ------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Answer:
        split = urlsplit(target)
        lower = {k.lower(): v for k, v in headers.items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            self.requests.append(
                Recorded(method, split.path, parse_qs(split.query), lower, raw, body)
            )
            # auth: "Authorization: Bearer <token>" on every request.
            auth = lower.get("authorization", "")
            if not auth.startswith("Bearer "):
                self.violations.append(f"{method} {split.path}: no 'Authorization: Bearer'")
            if auth != f"Bearer {self.token}":
                return 401, {"message": "invalid API key", "messageId": "auth.unauthorized"}
            for verb, pattern, route in self._routes:
                if (match := pattern.fullmatch(split.path)) and verb == method:
                    problems: list[str] = []
                    if raw and not lower.get("content-type", "").startswith("application/json"):
                        problems.append("a JSON body without Content-Type: application/json")
                    args = [unquote(g) for g in match.groups()]
                    status, answer = route(problems, body, lower, *args)
                    if problems:
                        self.violations += [f"{method} {split.path}: {p}" for p in problems]
                        return 400, {"message": "; ".join(problems)}
                    return status, answer
            self.violations.append(f"{method} {split.path}: not a documented endpoint")
            return 404, {"message": "Not found"}

    # -- folder ---------------------------------------------------------------------------

    def _folder_json(self, uid: str) -> dict[str, Any]:
        title = self.folders[uid]["title"]
        return {
            "id": 1,
            "uid": uid,
            "title": title,
            "url": f"/dashboards/f/{uid}/",
            "version": self.versions[f"folder:{uid}"],
        }

    def _get_folder(self, problems: list[str], body: Any, headers: Any, uid: str) -> Answer:
        # folder, "Get folder by uid": 200, or 404 "Folder not found".
        if uid not in self.folders:
            return 404, {"message": "folder not found"}
        return 200, self._folder_json(uid)

    def _create_folder(self, problems: list[str], body: Any, headers: Any) -> Answer:
        # folder, "Create folder": body {uid?, title}; 409 if it already exists.
        _need(problems, body, {"title": str}, "folder")
        _optional(problems, body, {"uid": str}, "folder")
        if problems:
            return 400, None
        uid = body.get("uid") or "generated"
        if uid in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        self.folders[uid] = {"uid": uid, "title": body["title"]}
        self._bump(f"folder:{uid}")
        return 200, self._folder_json(uid)

    def _update_folder(self, problems: list[str], body: Any, headers: Any, uid: str) -> Answer:
        # folder, "Update folder": body {title, version | overwrite: true}; 404 if missing.
        _need(problems, body, {"title": str}, "folder")
        if isinstance(body, dict) and body.get("overwrite") is not True:
            _need(problems, body, {"version": int}, "folder (version, or overwrite: true)")
        if problems:
            return 400, None
        if uid not in self.folders:
            return 404, {"message": "folder not found"}
        self.folders[uid]["title"] = body["title"]
        self._bump(f"folder:{uid}")
        return 200, self._folder_json(uid)

    # -- data source -----------------------------------------------------------------------

    def _check_datasource(self, problems: list[str], body: Any) -> None:
        # data_source, "Create a data source" / "Update an existing data source": name, type,
        # access ("proxy" | "direct"), jsonData; secrets only in secureJsonData, which Grafana
        # encrypts ("password ... should be defined under secureJsonData").
        fields = {"name": str, "type": str, "uid": str, "access": str, "jsonData": dict}
        _need(problems, body, fields, "datasource")
        _optional(problems, body, {"secureJsonData": dict}, "datasource")
        if problems:
            return
        if body["access"] not in {"proxy", "direct"}:
            problems.append(f"datasource access {body['access']!r}")
        for key in ("password", "basicAuthPassword"):
            if body.get(key) or key in body["jsonData"]:
                problems.append(f"datasource {key} outside secureJsonData")

    def _datasource_json(self, uid: str) -> dict[str, Any]:
        fields = {k: True for k in self.secure.get(uid, {})}
        return {
            **self.datasources[uid],
            "id": 7,
            "orgId": 1,
            "readOnly": False,
            "secureJsonFields": fields,
            "version": self.versions[f"ds:{uid}"],
        }

    def _get_datasource(self, problems: list[str], body: Any, headers: Any, uid: str) -> Answer:
        # data_source, "Get a single data source by uid".
        if uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        return 200, self._datasource_json(uid)

    def _store_datasource(self, body: dict[str, Any]) -> str:
        uid = body["uid"]
        self.datasources[uid] = {k: v for k, v in body.items() if k != "secureJsonData"}
        if "secureJsonData" in body:
            self.secure[uid] = dict(body["secureJsonData"])
        self._bump(f"ds:{uid}")
        return uid

    def _create_datasource(self, problems: list[str], body: Any, headers: Any) -> Answer:
        self._check_datasource(problems, body)
        if problems:
            return 400, None
        if body["uid"] in self.datasources:
            return 409, {"message": "data source with the same uid already exists"}
        if any(d["name"] == body["name"] for d in self.datasources.values()):
            return 409, {"message": "data source with the same name already exists"}
        uid = self._store_datasource(body)
        return 200, {
            "datasource": self._datasource_json(uid),
            "id": 7,
            "message": "Datasource added",
            "name": body["name"],
        }

    def _update_datasource(self, problems: list[str], body: Any, headers: Any, uid: str) -> Answer:
        self._check_datasource(problems, body)
        if problems:
            return 400, None
        if uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        if body["uid"] != uid:
            problems.append("datasource uid in the body differs from the path")
            return 400, None
        self._store_datasource(body)
        return 200, {
            "datasource": self._datasource_json(uid),
            "id": 7,
            "message": "Datasource updated",
            "name": body["name"],
        }

    # -- dashboard --------------------------------------------------------------------------

    def _save_dashboard(self, problems: list[str], body: Any, headers: Any) -> Answer:
        # dashboard, "Create / Update dashboard": dashboard (the model, id null for a new one, uid
        # to address it), folderUid (else it lands in the root), overwrite (true replaces the
        # dashboard with that uid; without it a second save answers 412 name-exists).
        _need(problems, body, {"dashboard": dict, "folderUid": str, "overwrite": bool}, "save")
        if problems:
            return 400, None
        model = body["dashboard"]
        _need(problems, model, {"uid": str, "title": str}, "dashboard")
        if model.get("id") is not None:
            problems.append("dashboard.id set: ids are local to one Grafana, address by uid")
        if body["folderUid"] not in self.folders:
            problems.append(f"folderUid {body['folderUid']!r} is not an existing folder")
        if problems:
            return 400, None
        uid = model["uid"]
        if uid in self.dashboards and body["overwrite"] is not True:
            return 412, {
                "message": "A dashboard with the same uid already exists",
                "status": "name-exists",
            }
        self.dashboards[uid] = {"folderUid": body["folderUid"], "dashboard": model}
        version = self._bump(f"dash:{uid}")
        return 200, {
            "id": 3,
            "uid": uid,
            "url": f"/d/{uid}/x",
            "status": "success",
            "version": version,
            "slug": "x",
        }

    # -- alert rules -----------------------------------------------------------------------

    def _group_rules(self, folder: str, group: str) -> list[dict[str, Any]]:
        return [
            r for r in self.rules.values() if (r["folderUID"], r["ruleGroup"]) == (folder, group)
        ]

    def _get_rule_group(
        self, problems: list[str], body: Any, headers: Any, folder: str, group: str
    ) -> Answer:
        # provisioning, "route get alert rule group": 200 AlertRuleGroup, or 404.
        rules = self._group_rules(folder, group)
        if not rules:
            return 404, {"message": "rule group does not exist"}
        return 200, {
            "title": group,
            "folderUid": folder,
            "interval": self.intervals[(folder, group)],
            "rules": rules,
        }

    def _put_rule_group(
        self, problems: list[str], body: Any, headers: dict[str, str], folder: str, group: str
    ) -> Answer:
        # provisioning, "route put alert rule group": body AlertRuleGroup {title, folderUid,
        # interval (int64 seconds), rules: [ProvisionedAlertRule]}; "rules included in this body
        # will overwrite configured rules for the group". X-Disable-Provenance: "Edit resources
        # in the Grafana UI" (without it, API-provisioned rules are locked in the UI).
        if "x-disable-provenance" not in headers:
            problems.append("no X-Disable-Provenance header: the rules would be locked in the UI")
        fields = {"title": str, "folderUid": str, "interval": int, "rules": list}
        _need(problems, body, fields, "rule group")
        if problems:
            return 400, None
        if (body["title"], body["folderUid"]) != (group, folder):
            problems.append("rule group title/folderUid differ from the path")
        # Grafana evaluates on a 10 s base tick and rejects other intervals (ngalert
        # models.ValidateRuleGroupInterval).
        if body["interval"] <= 0 or body["interval"] % 10:
            problems.append(f"rule group interval {body['interval']} s")
        if folder not in self.folders:
            problems.append(f"rule group in folder {folder!r}, which does not exist")
        for rule in body["rules"]:
            self._check_rule(problems, rule, folder, group)
        if problems:
            return 400, None
        keep = {r["uid"] for r in body["rules"]}
        for old in self._group_rules(folder, group):
            if old["uid"] not in keep:
                del self.rules[old["uid"]]
                del self.provenance[old["uid"]]
        for rule in body["rules"]:
            self.rules[rule["uid"]] = rule
            self.provenance[rule["uid"]] = "" if "x-disable-provenance" in headers else "api"
        self.intervals[(folder, group)] = body["interval"]
        return 200, body

    def _check_rule(self, problems: list[str], rule: Any, folder: str, group: str) -> None:
        # provisioning, model ProvisionedAlertRule: required condition, data, execErrState,
        # folderUID, for, noDataState, orgID, ruleGroup, title; uid addresses it on the next push.
        fields = {
            "uid": str,
            "title": str,
            "condition": str,
            "data": list,
            "folderUID": str,
            "ruleGroup": str,
            "for": str,
            "noDataState": str,
            "execErrState": str,
            "orgID": int,
        }
        _need(problems, rule, fields, "alert rule")
        _optional(problems, rule, {"labels": dict, "annotations": dict, "isPaused": bool}, "rule")
        if problems:
            return
        name = f"alert rule {rule['uid']}"
        if (rule["folderUID"], rule["ruleGroup"]) != (folder, group):
            problems.append(f"{name}: folderUID/ruleGroup differ from the group")
        if not DURATION.fullmatch(rule["for"]):
            problems.append(f"{name}: for {rule['for']!r} is not a duration")
        if rule["noDataState"] not in NO_DATA_STATES:
            problems.append(f"{name}: noDataState {rule['noDataState']!r}")
        if rule["execErrState"] not in EXEC_ERR_STATES:
            problems.append(f"{name}: execErrState {rule['execErrState']!r}")
        for key in ("labels", "annotations"):
            if not all(isinstance(v, str) for v in rule.get(key, {}).values()):
                problems.append(f"{name}: {key} must map strings to strings")
        ref_ids = set()
        for query in rule["data"]:
            # provisioning, model AlertQuery: refId, datasourceUid ("__expr__" for expressions),
            # model (the raw query), relativeTimeRange {from, to} in seconds for data queries.
            _need(problems, query, {"refId": str, "datasourceUid": str, "model": dict}, name)
            if not isinstance(query, dict) or not isinstance(query.get("refId"), str):
                continue
            ref_ids.add(query["refId"])
            if query.get("datasourceUid") == EXPR:
                continue
            if query.get("datasourceUid") not in self.datasources:
                problems.append(f"{name}: query {query['refId']} on an unknown datasource")
            span = query.get("relativeTimeRange")
            if not (
                isinstance(span, dict)
                and _is_int(span.get("from"))
                and _is_int(span.get("to"))
                and span["from"] > span["to"] >= 0
            ):
                problems.append(f"{name}: query {query['refId']} needs relativeTimeRange from>to")
        if rule["condition"] not in ref_ids:
            problems.append(f"{name}: condition {rule['condition']!r} names no query")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_ok(value: Any, kind: type) -> bool:
    return _is_int(value) if kind is int else isinstance(value, kind)


def _need(problems: list[str], body: Any, fields: dict[str, type], what: str) -> None:
    if not isinstance(body, dict):
        problems.append(f"{what}: body is not a JSON object")
        return
    for name, kind in fields.items():
        if name not in body:
            problems.append(f"{what}: missing {name}")
        elif not _type_ok(body[name], kind):
            problems.append(f"{what}: {name} is not a {kind.__name__}")


def _optional(problems: list[str], body: Any, fields: dict[str, type], what: str) -> None:
    if isinstance(body, dict):
        present = {k: v for k, v in fields.items() if k in body}
        _need(problems, body, present, what)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    with FakeGrafana() as fake:
        yield fake


def _api(url: str, token: str = TOKEN) -> Iterator[GrafanaApi]:
    api = GrafanaApi.from_url(url, credential=token)
    try:
        yield api
    finally:
        api.client.s.close()


@pytest.fixture
def api(grafana: FakeGrafana) -> Iterator[GrafanaApi]:
    yield from _api(grafana.url)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- tests ------------------------------------------------------------------------------------

FIRST_CALLS = [
    ("GET", f"/api/folders/{FOLDER_UID}"),
    ("POST", "/api/folders"),
    ("GET", f"/api/datasources/uid/{DS_UID}"),
    ("POST", "/api/datasources"),
    ("POST", "/api/dashboards/db"),
    ("POST", "/api/dashboards/db"),
    ("GET", GROUP_PATH),
    ("PUT", GROUP_PATH),
]


def test_first_push_creates_everything(grafana: FakeGrafana, api: GrafanaApi) -> None:
    bundle = make_bundle()
    lines = push(api, bundle)

    assert grafana.violations == []
    assert grafana.calls() == FIRST_CALLS
    assert lines == [
        "folder passwordless-rollout: created",
        "datasource passwordless-clickhouse: created",
        "dashboard rollout-overview: saved",
        "dashboard rollout-helpdesk: saved",
        "rule group passwordless rollout: created (every 60s)",
        "alert rule ticket-rate-rising: created",
        "alert rule active-use-stalled: created",
    ]
    assert grafana.folders == {FOLDER_UID: {"uid": FOLDER_UID, "title": FOLDER_TITLE}}
    expected_ds = {k: v for k, v in bundle.datasource.items() if k != "secureJsonData"}
    assert grafana.datasources == {DS_UID: expected_ds}
    assert grafana.secure == {DS_UID: {"password": PASSWORD}}
    assert set(grafana.dashboards) == {"rollout-overview", "rollout-helpdesk"}
    for dashboard in bundle.dashboards:
        stored = grafana.dashboards[dashboard["uid"]]
        assert stored["folderUid"] == FOLDER_UID
        assert stored["dashboard"] == {**dashboard, "id": None}
    assert grafana.intervals == {(FOLDER_UID, GROUP): 60}
    assert set(grafana.rules) == {"ticket-rate-rising", "active-use-stalled"}
    for source in bundle.rule_groups[0]["rules"]:
        stored = grafana.rules[source["uid"]]
        # The file-format rule, with what the API adds: its folder uid, group and org.
        assert stored == {**source, "folderUID": FOLDER_UID, "ruleGroup": GROUP, "orgID": 1}
    assert grafana.provenance == {"ticket-rate-rising": "", "active-use-stalled": ""}
    # push leaves the bundle as it found it.
    assert bundle == make_bundle()


def test_second_push_updates_in_place_without_duplicates(
    grafana: FakeGrafana, api: GrafanaApi
) -> None:
    push(api, make_bundle())
    after_first = grafana.state()
    grafana.requests.clear()

    lines = push(api, make_bundle())

    assert grafana.violations == []
    assert grafana.calls() == [
        ("GET", f"/api/folders/{FOLDER_UID}"),  # same title: no write
        ("GET", f"/api/datasources/uid/{DS_UID}"),
        ("PUT", f"/api/datasources/uid/{DS_UID}"),
        ("POST", "/api/dashboards/db"),
        ("POST", "/api/dashboards/db"),
        ("GET", GROUP_PATH),
        ("PUT", GROUP_PATH),
    ]
    assert all(r.body["overwrite"] is True for r in grafana.requests if r.path.endswith("/db"))
    assert lines == [
        "folder passwordless-rollout: unchanged",
        "datasource passwordless-clickhouse: updated",
        "dashboard rollout-overview: saved",
        "dashboard rollout-helpdesk: saved",
        "rule group passwordless rollout: updated (every 60s)",
        "alert rule ticket-rate-rising: updated",
        "alert rule active-use-stalled: updated",
    ]
    assert grafana.state() == after_first
    assert (len(grafana.folders), len(grafana.datasources)) == (1, 1)
    assert (len(grafana.dashboards), len(grafana.rules)) == (2, 2)


def test_changed_bundle_updates_renames_and_removes(grafana: FakeGrafana, api: GrafanaApi) -> None:
    push(api, make_bundle())
    changed = make_bundle()
    changed = Bundle(
        folder_uid=changed.folder_uid,
        folder_title="Passwordless rollout (phase 2)",
        datasource=changed.datasource,
        dashboards=changed.dashboards,
        rule_groups=[
            {
                **changed.rule_groups[0],
                "folder": "Passwordless rollout (phase 2)",
                "interval": "5m",
                "rules": changed.rule_groups[0]["rules"][:1],
            }
        ],
    )
    grafana.requests.clear()

    lines = push(api, changed)

    assert grafana.violations == []
    assert ("PUT", f"/api/folders/{FOLDER_UID}") in grafana.calls()
    assert grafana.folders[FOLDER_UID]["title"] == "Passwordless rollout (phase 2)"
    assert "folder passwordless-rollout: updated" in lines
    assert "rule group passwordless rollout: updated (every 300s)" in lines
    assert "alert rule ticket-rate-rising: updated" in lines
    assert "alert rule active-use-stalled: removed (no longer in the bundle)" in lines
    assert set(grafana.rules) == {"ticket-rate-rising"}
    assert grafana.intervals == {(FOLDER_UID, GROUP): 300}


def test_secrets_go_only_where_they_belong(grafana: FakeGrafana, api: GrafanaApi) -> None:
    lines = push(api, make_bundle()) + push(api, make_bundle())

    assert grafana.violations == []
    datasource_writes = 0
    for request in grafana.requests:
        where = f"{request.method} {request.path}"
        # The token: in the Authorization header, and nowhere else.
        assert request.headers["authorization"] == f"Bearer {TOKEN}", where
        others = {k: v for k, v in request.headers.items() if k != "authorization"}
        assert TOKEN not in json.dumps(others) + request.path + json.dumps(request.query), where
        assert TOKEN.encode() not in request.raw, where
        # The password: only in secureJsonData of the datasource requests.
        if request.path.startswith("/api/datasources") and request.method in {"POST", "PUT"}:
            datasource_writes += 1
            assert request.body["secureJsonData"] == {"password": PASSWORD}, where
            rest = {k: v for k, v in request.body.items() if k != "secureJsonData"}
            assert PASSWORD not in json.dumps(rest), where
        else:
            assert PASSWORD.encode() not in request.raw, where
            assert PASSWORD not in request.path + json.dumps(request.query), where
    assert datasource_writes == 2
    assert not any(TOKEN in line or PASSWORD in line for line in lines)


def test_unauthorized_is_one_clear_error_without_the_token() -> None:
    wrong = "glsa_revokedToken_fedcba9876543210"
    with FakeGrafana() as grafana:
        for api in _api(grafana.url, token=wrong):
            with pytest.raises(GrafanaPushError) as caught:
                push(api, make_bundle())

    message = str(caught.value)
    assert message == "folder passwordless-rollout: Grafana answered 401: invalid API key"
    assert wrong not in message and PASSWORD not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    # It stopped at the first refusal: one request, nothing stored.
    assert grafana.calls() == [("GET", f"/api/folders/{FOLDER_UID}")]
    assert grafana.state()["folders"] == {}


def test_grafana_refusal_names_the_object_and_grafanas_message(
    grafana: FakeGrafana, api: GrafanaApi
) -> None:
    # Another datasource already has the name: Grafana answers 409 on the create.
    grafana.datasources["someone-elses"] = {"name": "Passwordless ClickHouse", "uid": "x"}
    grafana.versions["ds:someone-elses"] = 1

    with pytest.raises(GrafanaPushError) as caught:
        push(api, make_bundle())

    message = str(caught.value)
    assert message == (
        "datasource passwordless-clickhouse: Grafana answered 409: "
        "data source with the same name already exists"
    )
    assert TOKEN not in message and PASSWORD not in message


def test_refused_connection_is_one_clear_error_without_the_token() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    for api in _api(url):
        with pytest.raises(GrafanaPushError) as caught:
            push(api, make_bundle())

    message = str(caught.value)
    assert message.startswith(f"folder passwordless-rollout: cannot reach Grafana at {url}/api: ")
    assert "refused" in message.lower()
    assert TOKEN not in message and PASSWORD not in message


def test_a_malformed_bundle_fails_before_any_request(grafana: FakeGrafana, api: GrafanaApi) -> None:
    bundle = make_bundle()
    bundle.rule_groups[0]["interval"] = "one minute"

    with pytest.raises(ValueError, match="interval 'one minute'"):
        push(api, bundle)

    assert grafana.requests == []


@pytest.mark.parametrize(
    ("interval", "seconds"), [("1m", 60), ("90s", 90), ("1h30m", 5400), ("2d", 172800), (600, 600)]
)
def test_rule_group_interval_in_seconds(interval: str | int, seconds: int) -> None:
    group = {**make_bundle().rule_groups[0], "interval": interval}

    body = rule_group_body(group, make_bundle())

    assert body["interval"] == seconds
    assert (body["title"], body["folderUid"]) == (GROUP, FOLDER_UID)


def test_a_token_with_a_newline_never_reaches_the_error(grafana: FakeGrafana) -> None:
    """A token read from a secret file may end in a newline; the HTTP library then refuses
    the header and quotes it, escaped, in its error."""
    for api in _api(grafana.url, token=TOKEN + "\n"):
        with pytest.raises(GrafanaPushError) as caught:
            push(api, make_bundle())
    assert TOKEN not in str(caught.value)


def test_the_cli_refuses_a_token_with_control_characters(grafana: FakeGrafana) -> None:
    env = {"PIPELINE_GRAFANA_TOKEN": "glsa_AB\x01CD"}
    result = pipeline_cli("grafana", "push", "--url", grafana.url, env=env, timeout=120)
    assert result.returncode == 2
    assert "control characters" in result.stderr and "glsa_AB" not in result.stderr
    assert grafana.calls() == []
