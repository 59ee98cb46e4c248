"""The weekly review report (pipeline/report/) on the real engine, without a browser.

Each warehouse is filled from a simulated rollout through `build_batch`, as the worker writes
it (tests/warehouse_fill.py). The embedded engine serves one data directory at a time, so the
module fixture fills, reads and closes them in turn: the simulated rollout (`rollout`, with a
roster entry whose department is markup), one of a single week, one without tickets, one
where Duo stopped sending, and a migrated one with no events. The report's numbers are
checked against `weekly_metrics` and `phase_gates` (pipeline/report/weekly.py), the command
line in a child process, as a user runs it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from warehouse_fill import fill, fill_lines, migrated, simulation

from pipeline.plan import load_plan
from pipeline.report.data import (
    OTHER_METHODS,
    PASSWORD_AND_SECOND,
    PASSWORD_ONLY,
    SECOND_FACTOR_ALONE,
    ReportError,
    method_category,
    parse_week,
    read_report,
)
from pipeline.report.render import parse_formats, write_report
from pipeline.report.weekly import phase_gates, weekly_metrics

# A department name that would run script, or fetch, were it pasted into the page unescaped.
HOSTILE = '</script><img src="http://report-test.invalid/x.png" onerror="alert(1)">'
HOSTILE_USER = {
    "user": "mallory.markup@example.com",
    "display_name": "Mallory Markup",
    "department": HOSTILE,
    "country": "DE",
    "privileged": False,
    "idp": "okta",
    "active_from": "2020-01-01",
    "terminated_on": None,
}
SMALL = {"users": 60, "weeks": 16, "seed": 7}
DUO_STOPS_IN_WEEK = 10


@dataclass
class Case:
    """One warehouse's report and what the warehouse answered beside it."""

    data: dict[str, Any]  # the JSON file, parsed
    html: str
    paths: list[Path]
    metrics: dict[str, Any] = field(default_factory=dict)  # weekly_metrics
    gates: list[tuple] = field(default_factory=list)  # phase_gates
    earlier: dict[str, Any] | None = None  # the report for an earlier week
    outside: str = ""  # what asking for a week before the rollout says
    quarterly: list[tuple] = field(default_factory=list)


@dataclass
class Cases:
    full: Case
    single_week: Case
    no_tickets: Case
    duo_stopped: Case
    empty_warehouse: Path
    roster_logins: list[str]
    roster_names: list[str]


def _report(base: Path, name: str, warehouse: Any, formats: tuple[str, ...] = ("html",)) -> Case:
    data = read_report(warehouse)
    paths = write_report(data, base / name, formats)
    return Case(
        data=json.loads(paths[1].read_text()),
        html=paths[0].read_text(),
        paths=paths,
    )


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory, rollout: Path) -> Cases:
    base = tmp_path_factory.mktemp("report")
    plan = load_plan()
    for name in ("small", "one"):
        (base / name).mkdir()
    small = simulation(base / "small", **SMALL)
    one_week = simulation(base / "one", users=60, weeks=1, seed=3)
    # One warehouse, emptied between the cases: a migration costs more than a fill here.
    with migrated(base / "wh") as warehouse:
        fill(warehouse, rollout, extra={"roster": [orjson.dumps(HOSTILE_USER)]})
        full = _report(base, "full", warehouse, ("html", "png"))
        full.metrics = weekly_metrics(warehouse, plan)
        full.gates = phase_gates(warehouse)
        full.earlier = read_report(warehouse, plan.week_start(12)).to_json()
        with pytest.raises(ReportError) as outside:
            read_report(warehouse, plan.start - timedelta(weeks=1))
        full.outside = str(outside.value)
        full.quarterly = warehouse.query(
            "SELECT quarter_start, scenario, tickets, tickets_per_1000 FROM ticket_rate_quarterly "
            "WHERE department = 'all' ORDER BY quarter_start, scenario"
        )

        warehouse.empty()
        fill(warehouse, one_week)
        single_week = _report(base, "one-week", warehouse)
        single_week.metrics = weekly_metrics(warehouse, plan)

        warehouse.empty()
        fill(warehouse, small, names=("okta", "entra", "ping", "duo", "roster"))
        no_tickets = _report(base, "no-tickets", warehouse)

        warehouse.empty()
        fill(warehouse, small, names=("okta", "entra", "ping", "tickets", "roster"))
        # Duo's authentication log v2 stamps each record with `isotimestamp`, its activity
        # log with `ts` (Duo Admin API, https://duo.com/docs/adminapi#logs).
        cutoff = plan.week_start(DUO_STOPS_IN_WEEK).isoformat()
        kept = [
            line
            for line in (small / "duo.ndjson").read_bytes().splitlines()
            if _duo_time(orjson.loads(line)) < cutoff
        ]
        fill_lines(warehouse, "duo", kept)
        duo_stopped = _report(base, "duo-stopped", warehouse)

        warehouse.empty()  # left migrated, with the plan, for the command line's run
    roster = [orjson.loads(line) for line in (rollout / "roster.ndjson").read_bytes().splitlines()]
    return Cases(
        full=full,
        single_week=single_week,
        no_tickets=no_tickets,
        duo_stopped=duo_stopped,
        empty_warehouse=base / "wh",
        roster_logins=[r["user"] for r in roster] + [HOSTILE_USER["user"]],
        roster_names=[r["display_name"] for r in roster if r.get("display_name")]
        + [HOSTILE_USER["display_name"]],
    )


def _duo_time(record: dict[str, Any]) -> str:
    return str(record.get("isotimestamp") or record["ts"])


class _Tags(HTMLParser):
    """Every (tag, attribute) of a page, and the text of its style elements."""

    def __init__(self) -> None:
        super().__init__()
        self.attributes: list[tuple[str, str]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [(tag, name) for name, _ in attrs]
        self._in_style = tag == "style"

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)
            self._in_style = False


def _embedded(html: str, element: str) -> Any:
    found = re.search(rf'<script type="application/json" id="{element}">(.*?)</script>', html, re.S)
    assert found, element
    return json.loads(found.group(1))


def _strings(value: Any) -> set[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return {value}
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return set().union(*(_strings(item) for item in items))


# -- the numbers are the warehouse's --------------------------------------------------------


def test_the_report_is_on_the_last_complete_week(cases: Cases) -> None:
    report, weeks = cases.full.data, cases.full.metrics["weeks"]
    assert report["complete"]
    assert report["week"] == weeks[-1]["week"]
    assert report["rollout_week"] == len(weeks)


def test_the_trend_and_headline_are_weekly_metrics(cases: Cases) -> None:
    report = cases.full.data
    assert report["metrics"]["weeks"] == cases.full.metrics["weeks"]
    this, before = cases.full.metrics["weeks"][-1], cases.full.metrics["weeks"][-2]
    for tile in report["headline"]:
        assert tile["value"] == this[tile["metric"]], tile["metric"]
        assert tile["previous"] == before[tile["metric"]], tile["metric"]
    # the page carries the same numbers, and shows the headline as it says
    assert _embedded(cases.full.html, "report-data") == report
    enrollment = next(t for t in report["headline"] if t["metric"] == "enrollment_rate")
    assert f"{enrollment['value']:.1%}" in cases.full.html


def test_the_gates_are_phase_gates(cases: Cases) -> None:
    expected = [
        {
            "week_start": week.isoformat(),
            "phase": phase,
            "metric": metric,
            "target": target,
            "actual": actual,
            "passed": None if passed is None else bool(passed),
        }
        for week, phase, metric, target, actual, passed in cases.full.gates
    ]
    got = [{k: v for k, v in g.items() if k != "rollout_week"} for g in cases.full.data["gates"]]
    assert got == expected
    assert got  # the simulated rollout has reached gates


def test_an_earlier_week_shows_that_week_and_its_gate(cases: Cases) -> None:
    earlier = cases.full.earlier
    assert earlier is not None
    weeks = cases.full.metrics["weeks"]
    assert earlier["metrics"]["weeks"] == weeks[:12]
    assert earlier["rollout_week"] == 12
    # rollout week 12 is in phase 3, whose gate in week 14 asks 60% on passwordless
    assert earlier["plan"]["phase"] == 3
    gate = earlier["plan"]["next_gate"]
    assert (gate["phase"], gate["rollout_week"], gate["weeks_away"]) == (3, 14, 2)
    assert gate["targets"] == [
        {"metric": "on_passwordless_rate", "target": 0.6, "now": weeks[11]["on_passwordless_rate"]}
    ]
    assert earlier["plan"]["days_left"] == 2 * 7  # after its Sunday: weeks 13 and 14
    tile = next(t for t in earlier["headline"] if t["metric"] == "on_passwordless_rate")
    gate_row = next(
        g
        for g in cases.full.gates
        if g[0].isoformat() == earlier["week_start"] and g[2] == "on_passwordless_rate"
    )
    assert (tile["target"], tile["met"]) == (gate_row[3], bool(gate_row[5]))
    enrollment = next(t for t in earlier["headline"] if t["metric"] == "enrollment_rate")
    assert enrollment["target"] is None  # phase 3 sets none, and no later phase does either
    assert all(g["week_start"] <= earlier["week_start"] for g in earlier["gates"])


def test_the_breakdowns_add_up_to_the_week(cases: Cases) -> None:
    report = cases.full.data
    this = cases.full.metrics["weeks"][-1]
    departments = report["by_department"]["rows"]
    assert sum(d["active_workforce"] for d in departments) == this["active_workforce"]
    assert sum(d["sign_ins"] for d in departments) == this["counts"]["sign_ins"]
    assert (
        sum(d["passwordless_sign_ins"] for d in departments)
        == (this["counts"]["passwordless_sign_ins"])
    )
    key = report["by_department"]["sorted_by"]
    rates = [d[key] for d in departments if d[key] is not None]
    assert rates == sorted(rates)  # furthest behind first
    for idp in report["by_idp"]:
        assert idp["sign_ins"] == this["counts"]["sign_ins_by_source"][idp["source"]]
        assert idp["active_use_rate"] == this["active_use_rate_by_source"][idp["source"]]
    for week in cases.full.metrics["weeks"]:
        mix = [r for r in report["method_mix"]["rows"] if r["week"] == week["week"]]
        assert sum(r["sign_ins"] for r in mix) == week["counts"]["sign_ins"]
        assert (
            sum(r["sign_ins"] for r in mix if r["group"] == "passwordless")
            == (week["counts"]["passwordless_sign_ins"])
        )


def test_the_tickets_are_the_quarterly_view(cases: Cases) -> None:
    tickets = cases.full.data["tickets"]
    quarter = date.fromisoformat(
        f"{tickets['quarter'][:4]}-{(int(tickets['quarter'][-1]) - 1) * 3 + 1:02d}-01"
    )
    view = {(q, s): (n, rate) for q, s, n, rate in cases.full.quarterly}
    for row in tickets["scenarios"]:
        if (quarter, row["scenario"]) in view:
            assert (row["tickets"], row["rate"]) == view[(quarter, row["scenario"])]
    assert tickets["total"] == sum(w["counts"]["tickets"] for w in cases.full.metrics["weeks"])
    assert "other (no runbook)" in cases.full.html


def test_method_categories() -> None:
    assert method_category(["password", "push"], False) == ("password", PASSWORD_AND_SECOND)
    assert method_category(["password"], False) == ("password", PASSWORD_ONLY)
    assert method_category(["push"], False) == ("not passwordless", SECOND_FACTOR_ALONE)
    assert method_category(["federated"], False) == ("not passwordless", OTHER_METHODS)
    assert method_category(["a-new-vendor-string"], False) == ("not passwordless", OTHER_METHODS)
    assert method_category(["windows_hello"], True) == ("passwordless", "Windows Hello")
    assert method_category(["push", "security_key"], True) == ("passwordless", "security key")


# -- the page -------------------------------------------------------------------------------


def test_the_page_names_no_one_and_no_other_host(cases: Cases) -> None:
    for case in (cases.full, cases.duo_stopped):
        text = case.html + json.dumps(case.data)
        assert [login for login in cases.roster_logins if login in text] == []
        assert [name for name in cases.roster_names if name in text] == []
    # no element loads anything: no src or href attribute at all, no CSS url() or @import
    tags = _Tags()
    tags.feed(cases.full.html)
    assert [(tag, name) for tag, name in tags.attributes if name in ("src", "href")] == []
    assert tags.styles and not any("url(" in s or "@import" in s for s in tags.styles)
    assert ("meta", "http-equiv") in tags.attributes


def test_markup_in_the_data_is_text(cases: Cases) -> None:
    departments = [d["department"] for d in cases.full.data["by_department"]["rows"]]
    assert HOSTILE in departments  # stored and reported as it came
    assert HOSTILE not in cases.full.html
    assert "&lt;/script&gt;&lt;img" in cases.full.html
    embedded = _embedded(cases.full.html, "report-data")["by_department"]["rows"]
    assert HOSTILE in [d["department"] for d in embedded]
    assert HOSTILE in _strings(_embedded(cases.full.html, "chart-specs")["by_department"])


def test_png_charts_beside_the_page(cases: Cases) -> None:
    charts = [p for p in cases.full.paths if p.suffix == ".png"]
    specs = _embedded(cases.full.html, "chart-specs")
    assert sorted(p.stem.split(f"report-{cases.full.data['week']}-")[1] for p in charts) == sorted(
        specs
    )
    assert len(specs) == 8
    for chart in charts:
        assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and chart.stat().st_size > 5000


# -- what the data cannot show is said, not failed -------------------------------------------


def test_a_single_week(cases: Cases) -> None:
    report = cases.single_week.data
    assert report["metrics"]["weeks"] == cases.single_week.metrics["weeks"]
    assert len(report["metrics"]["weeks"]) == 1
    assert all(tile["change"] is None for tile in report["headline"])
    assert any("first week of data" in note for note in report["notes"])
    assert "the trend starts next week" in cases.single_week.html
    assert "no earlier week to compare" in cases.single_week.html


def test_no_tickets(cases: Cases) -> None:
    report = cases.no_tickets.data
    assert report["tickets"]["total"] == 0
    assert "No helpdesk tickets are stored" in cases.no_tickets.html
    assert "tickets" not in _embedded(cases.no_tickets.html, "chart-specs")
    tickets = next(s for s in report["health"]["sources"] if s["source"] == "tickets")
    assert tickets["last_event"] is None
    assert "tickets: no events at all in the warehouse." in report["notes"]


def test_a_source_that_stopped(cases: Cases) -> None:
    report = cases.duo_stopped.data
    sources = {s["source"]: s for s in report["health"]["sources"]}
    assert sources["duo"]["stopped"]
    assert sources["duo"]["last_event"] < load_plan().week_start(DUO_STOPS_IN_WEEK).isoformat()
    assert [s for s, health in sources.items() if health["stopped"]] == ["duo"]
    assert any(note.startswith("duo has sent no events since") for note in report["notes"])
    assert "stopped: nothing for" in cases.duo_stopped.html
    duo = next(row for row in report["by_idp"] if row["source"] == "duo")
    assert (duo["sign_ins"], duo["active_use_rate"]) == (0, None)


# -- the command line -----------------------------------------------------------------------


def _pipeline_report(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIPELINE_CLICKHOUSE_DSN": dsn}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.report", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_empty_warehouse_is_one_line_and_an_error(cases: Cases, tmp_path: Path) -> None:
    ran = _pipeline_report(f"chdb://{cases.empty_warehouse}", "--out", str(tmp_path))
    assert ran.returncode == 1
    assert ran.stderr.startswith("pipeline: report: the warehouse ")
    assert "holds no events yet" in ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1 and "Traceback" not in ran.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unmigrated_warehouse_says_migrate(tmp_path: Path) -> None:
    ran = _pipeline_report(f"chdb://{tmp_path / 'nothing'}", "--out", str(tmp_path / "out"))
    assert ran.returncode == 2
    assert "run `pipeline migrate`" in ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1 and "Traceback" not in ran.stderr


def test_bad_arguments_are_one_line(cases: Cases, tmp_path: Path) -> None:
    dsn = f"chdb://{cases.empty_warehouse}"
    for args, says in (
        (["--week", "23"], "write an ISO week"),
        (["--format", "html,gif"], "unknown format gif"),
    ):
        ran = _pipeline_report(dsn, "--out", str(tmp_path), *args)
        assert ran.returncode == 2, args
        assert says in ran.stderr and len(ran.stderr.strip().splitlines()) == 1


def test_week_and_format_parsing() -> None:
    assert parse_week("2026-W23") == date(2026, 6, 1)
    assert parse_week("2026-w01") == date(2025, 12, 29)
    with pytest.raises(ReportError):
        parse_week("2026-W54")
    assert parse_formats("html, PDF") == ["html", "pdf"]
    with pytest.raises(ValueError):
        parse_formats("svg")


def test_a_week_outside_the_rollout(cases: Cases) -> None:
    first, last = cases.full.metrics["weeks"][0]["week"], cases.full.metrics["weeks"][-1]["week"]
    assert "is not in the rollout" in cases.full.outside
    assert f"(weeks {first} to {last})" in cases.full.outside
