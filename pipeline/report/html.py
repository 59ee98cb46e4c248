"""The report as one self-contained HTML page: styles, scripts, data and charts inline.

The page opens offline and asks no other host for anything, so it can go out as an e-mail
attachment: the Vega, Vega-Lite and vega-embed bundle comes from vl-convert
(`javascript_bundle`, "no external dependencies required", vega/vl-convert:
vl-convert-python/vl_convert.pyi), and a Content-Security-Policy lets the page load nothing
but what it holds (https://developer.mozilla.org/docs/Web/HTTP/Headers/Content-Security-Policy).
Every text from the warehouse (department, app and method names come from vendors' logs and
the HR roster) is escaped by Jinja2's autoescape, and the embedded JSON escapes `<`, `>` and
`&`, so no value can close its script element.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jinja2
import vl_convert

from pipeline.report.data import HEADLINE, ReportData

# Vega compiles its expressions with Function(): script-src needs 'unsafe-eval'
# (https://vega.github.io/vega/usage/interpreter/).
CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data:; font-src data:"
)
METRIC_NAMES = {**HEADLINE, "ticket_rate_per_1000": "Tickets per 1,000 users"}
TEMPLATE = "report.html.j2"
# Shown for a number the data does not have (an en dash).
MISSING = "\u2013"


@cache
def vega_bundle() -> str:
    """Vega, Vega-Lite and vega-embed in one script (vl-convert builds it: a few seconds),
    with no `</script` left to end its element early."""
    return vl_convert.javascript_bundle().replace("</script", "<\\/script")


def embedded_json(value: Any) -> str:
    """JSON that is safe inside a <script> element and still parses as the same value."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(data: ReportData, specs: dict[str, dict[str, Any]]) -> str:
    return _template().render(
        data=data,
        report=data.to_json(),
        specs=specs,
        metric_names=METRIC_NAMES,
        this_week=data.metrics["weeks"][-1],
        gate_rows=_gate_rows(data),
        mix=_this_weeks_mix(data),
        scenarios=[s for s in data.tickets["scenarios"] if s["scenario"] != "all"],
        all_tickets=next(s for s in data.tickets["scenarios"] if s["scenario"] == "all"),
        other=next(s for s in data.tickets["scenarios"] if s["scenario"] == "other"),
        csp=CSP,
        bundle=vega_bundle(),
        report_json=embedded_json(data.to_json()),
        specs_json=embedded_json(specs),
    )


def _gate_rows(data: ReportData) -> list[dict[str, Any]]:
    """Each phase's targets against its last week up to the report's week: the gate, or
    where a phase in progress stands."""
    last: dict[tuple[int, str], dict[str, Any]] = {}
    for gate in data.gates:
        last[(gate["phase"], gate["metric"])] = gate
    phases = {p["phase"]: p for p in data.plan["phases"]}
    rows = []
    for (phase, _), gate in sorted(last.items()):
        finished = phases[phase]["last_week"] is not None and (
            gate["rollout_week"] == phases[phase]["last_week"]
        )
        rows.append({**gate, "name": phases[phase]["name"], "finished": finished})
    return rows


def _this_weeks_mix(data: ReportData) -> list[dict[str, Any]]:
    rows = [r for r in data.method_mix["rows"] if r["week"] == data.week]
    order = data.method_mix["categories"]
    return sorted(rows, key=lambda r: order.index(r["category"]))


def _pct(value: float | None, digits: int = 1) -> str:
    return MISSING if value is None else f"{value:.{digits}%}"


def _points(value: float | None) -> str:
    """A change of a rate, in percentage points."""
    if value is None:
        return MISSING
    return f"{value * 100:+.1f} pts"


def _number(value: float | None, digits: int = 1) -> str:
    return MISSING if value is None else f"{value:,.{digits}f}"


def _signed(value: float | None, digits: int = 1) -> str:
    return MISSING if value is None else f"{value:+,.{digits}f}"


def _count(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"


def _day(value: str | None) -> str:
    return MISSING if not value else value[:16].replace("T", " ")


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters.update(
        pct=_pct, points=_points, number=_number, signed=_signed, count=_count, day=_day
    )
    return env.from_string(resources.files("pipeline.report").joinpath(TEMPLATE).read_text("utf-8"))
