"""The report's charts as Vega-Lite specs, built with Altair from a `ReportData`.

One spec per chart serves every output: the HTML page draws it with the Vega bundle inlined
in the page, and vl-convert renders the same spec to PNG without a browser (`png`). Data
goes inline in each spec (`values`), so a spec names no URL.

Colours are the Okabe-Ito palette, which stays distinct under the common colour-vision
deficiencies (Okabe & Ito, "Color Universal Design", https://jfly.uni-koeln.de/color/);
no chart relies on colour alone: series differ by line dash or point shape too, and bars
carry their labels, so a page printed in grey still reads.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import vl_convert

from pipeline.report.data import HEADLINE, ReportData

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
BLUE, ORANGE, GREEN, VERMILLION, PURPLE = OKABE_ITO[:5]
GREY = "#999999"
LIGHT_GREY = "#CCCCCC"
WIDTH = 620
PERCENT = ".0%"
# Rates on an axis from 0 to 100 %.
RATE_SCALE = alt.Scale(domain=[0, 1])
# Shapes that stay apart in grey, one per headline metric.
SHAPES = ["circle", "square", "triangle-up"]
CONFIG: dict[str, Any] = {
    "font": "DejaVu Sans, Liberation Sans, Arial, sans-serif",
    "range": {"category": OKABE_ITO},
    "view": {"stroke": None},
    "axis": {"labelFontSize": 11, "titleFontSize": 11, "grid": True, "gridColor": "#e6e6e6"},
    "legend": {"labelFontSize": 11, "titleFontSize": 11, "orient": "bottom"},
    "title": {"fontSize": 13, "anchor": "start"},
}


def charts(data: ReportData) -> dict[str, dict[str, Any]]:
    """Each chart the data can draw, by name (names are HTML ids); a section the data leaves
    empty has no chart, and the page says why instead (`ReportData.sections`)."""
    built: dict[str, alt.TopLevelMixin | None] = {
        "trend": _trend(data),
        "method_mix": _method_mix(data) if "method_mix" not in data.sections else None,
        "by_idp": _by_idp(data),
        "by_department": _by_department(data),
        "still_passwords_departments": _bars(
            data.still_passwords["departments"],
            "department",
            "users",
            "Enrolled users still typing passwords, by department",
            "users",
        ),
        "still_passwords_apps": _bars(
            data.still_passwords["apps"],
            "app",
            "users",
            "The apps they still use a password (or no passwordless factor) for",
            "users",
        ),
        "password_apps": _password_apps(data),
        "tickets": _tickets(data) if "tickets" not in data.sections else None,
    }
    return {name: _spec(chart) for name, chart in built.items() if chart is not None}


def png(spec: dict[str, Any]) -> bytes:
    """A chart as PNG at twice its size, rendered by vl-convert (no browser)."""
    return bytes(vl_convert.vegalite_to_png(spec, scale=2))


def _spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    spec = chart.to_dict()  # validated against the Vega-Lite schema
    spec["config"] = {**CONFIG, **spec.get("config", {})}
    return spec


def _trend(data: ReportData) -> alt.FacetChart | None:
    """Each headline rate per rollout week against the plan's target for that week (a
    dashed step where the week's phase sets one)."""
    rows: list[dict[str, Any]] = []
    for week in data.metrics["weeks"]:
        for metric, label in HEADLINE.items():
            if week[metric] is not None:
                rows.append(
                    {
                        "metric": label,
                        "week": week["week"],
                        "rollout_week": week["rollout_week"],
                        "value": week[metric],
                        "kind": "actual",
                    }
                )
    for gate in data.gates:
        rows.append(
            {
                "metric": HEADLINE[gate["metric"]],
                "week": gate["week_start"],
                "rollout_week": gate["rollout_week"] - 0.5,
                "until": gate["rollout_week"] + 0.5,
                "value": gate["target"],
                "kind": "target",
            }
        )
    if not any(row["kind"] == "actual" for row in rows):
        return None
    x = alt.X("rollout_week:Q", title="rollout week", axis=alt.Axis(tickMinStep=1))
    y = alt.Y("value:Q", title=None, scale=RATE_SCALE, axis=alt.Axis(format=PERCENT))
    actual = (
        alt.Chart()
        .transform_filter(alt.datum.kind == "actual")
        .mark_line(point=True, color=BLUE, strokeWidth=2)
        .encode(
            x=x,
            y=y,
            tooltip=[
                alt.Tooltip("week:N"),
                alt.Tooltip("value:Q", format=".1%", title="value"),
            ],
        )
    )
    target = (
        alt.Chart()
        .transform_filter(alt.datum.kind == "target")
        .mark_rule(color="#000000", strokeDash=[5, 3], strokeWidth=2)
        .encode(
            x=x, x2="until:Q", y=y, tooltip=[alt.Tooltip("value:Q", format=".0%", title="target")]
        )
    )
    return (
        alt.layer(actual, target, data=alt.Data(values=rows))
        .properties(width=WIDTH // 2 - 40, height=150)
        .facet(
            facet=alt.Facet("metric:N", sort=list(HEADLINE.values()), title=None),
            columns=2,
        )
        .properties(title="The headline rates per week (line) against the phase target (dashed)")
    )


def _method_mix(data: ReportData) -> alt.FacetChart:
    """Each method category's share of the week's sign-ins, a row per category."""
    colours = alt.Scale(
        domain=["passwordless", "password", "not passwordless"], range=[BLUE, VERMILLION, GREY]
    )
    return (
        alt.Chart(alt.Data(values=data.method_mix["rows"]))
        .mark_bar()
        .encode(
            x=alt.X("rollout_week:O", title="rollout week"),
            y=alt.Y("share:Q", title=None, axis=alt.Axis(format=PERCENT, tickCount=2)),
            color=alt.Color("group:N", scale=colours, title="sign-ins that were"),
            tooltip=[
                alt.Tooltip("category:N"),
                alt.Tooltip("week:N"),
                alt.Tooltip("sign_ins:Q", title="sign-ins"),
                alt.Tooltip("share:Q", format=".1%"),
            ],
        )
        .properties(width=WIDTH - 200, height=34)
        .facet(
            row=alt.Row(
                "category:N",
                sort=data.method_mix["categories"],
                title=None,
                header=alt.Header(labelAngle=0, labelAlign="right", labelFontSize=11),
            ),
            spacing=6,
        )
        .properties(title="How sign-ins were made: each method's share of the week's sign-ins")
    )


def _by_idp(data: ReportData) -> alt.LayerChart | None:
    """This week's active use per owning IdP (bar, labelled) and last week's (tick)."""
    rows = [
        {
            **row,
            "label": f"{row['active_use_rate']:.1%} of {row['sign_ins']:,} sign-ins",
        }
        for row in data.by_idp
        if row["sign_ins"]
    ]
    if not rows:
        return None
    base = alt.Chart(alt.Data(values=rows)).encode(y=alt.Y("source:N", title=None, sort=None))
    bars = base.mark_bar(color=BLUE, height=18).encode(
        x=alt.X(
            "active_use_rate:Q", title="active use", scale=RATE_SCALE, axis=alt.Axis(format=PERCENT)
        )
    )
    before = base.mark_tick(color="#000000", thickness=3, size=24, opacity=1).encode(
        x="previous_active_use_rate:Q"
    )
    labels = base.mark_text(align="left", dx=4, color="#000000").encode(
        x=alt.datum(1.0), text="label:N"
    )
    return alt.layer(bars, before, labels).properties(
        width=WIDTH - 220,
        height=alt.Step(28),
        title="Active use by IdP this week (bar) and last week (black tick)",
    )


def _by_department(data: ReportData) -> alt.LayerChart | None:
    """Each department's three rates as points of different shapes, furthest behind first."""
    department_rows = data.by_department["rows"]
    metrics = {
        "enrollment_rate": "enrolled",
        "active_use_rate": "active use",
        "on_passwordless_rate": "users on passwordless",
    }
    rows = [
        {"department": row["department"], "metric": label, "value": row[metric]}
        for row in department_rows
        for metric, label in metrics.items()
        if row[metric] is not None
    ]
    if not rows:
        return None
    order = [row["department"] for row in department_rows]
    points = (
        alt.Chart(alt.Data(values=rows))
        .mark_point(filled=True, size=80, opacity=0.9)
        .encode(
            x=alt.X(
                "value:Q", title=None, scale=RATE_SCALE, axis=alt.Axis(format=PERCENT, tickCount=5)
            ),
            y=alt.Y("department:N", title=None, sort=order),
            color=alt.Color(
                "metric:N",
                scale=alt.Scale(domain=list(metrics.values()), range=[BLUE, ORANGE, GREEN]),
                title=None,
            ),
            shape=alt.Shape(
                "metric:N", scale=alt.Scale(domain=list(metrics.values()), range=SHAPES), title=None
            ),
            tooltip=["department:N", "metric:N", alt.Tooltip("value:Q", format=".1%")],
        )
    )
    layers: list[alt.Chart] = [points]
    if data.by_department["target"] is not None:
        layers.append(
            alt.Chart(alt.Data(values=[{"target": data.by_department["target"]}]))
            .mark_rule(color="#000000", strokeDash=[5, 3])
            .encode(x="target:Q")
        )
    sorted_by = metrics.get(data.by_department["sorted_by"], data.by_department["sorted_by"])
    return alt.layer(*layers).properties(
        width=WIDTH - 160,
        height=alt.Step(20),
        title=f"By department, lowest {sorted_by} first (dashed: the next gate's target)",
    )


def _bars(
    rows: list[dict[str, Any]], category: str, value: str, title: str, unit: str
) -> alt.LayerChart | None:
    """Horizontal bars in the rows' order (largest first), each labelled with its value."""
    if not rows:
        return None
    base = alt.Chart(alt.Data(values=rows)).encode(
        y=alt.Y(f"{category}:N", title=None, sort=[row[category] for row in rows]),
        x=alt.X(f"{value}:Q", title=unit, axis=alt.Axis(tickMinStep=1)),
    )
    return alt.layer(
        base.mark_bar(color=ORANGE, height=16),
        base.mark_text(align="left", dx=4, color="#000000").encode(text=f"{value}:Q"),
    ).properties(width=WIDTH - 260, height=alt.Step(24), title=title)


def _password_apps(data: ReportData) -> alt.LayerChart | None:
    """The apps with the most password sign-ins this week, their risk tier in the label."""
    rows = [
        {
            **row,
            "label": row["app"]
            if row["risk_tier"] == "standard"
            else f"{row['app']} ({row['risk_tier'].replace('_', '-')})",
            "text": f"{row['password_sign_ins']:,} of {row['sign_ins']:,} sign-ins",
        }
        for row in data.password_apps
    ]
    if not rows:
        return None
    base = alt.Chart(alt.Data(values=rows)).encode(
        y=alt.Y("label:N", title=None, sort=[row["label"] for row in rows]),
        x=alt.X(
            "password_sign_ins:Q", title="sign-ins with a password", axis=alt.Axis(tickMinStep=1)
        ),
    )
    tiers = alt.Scale(domain=["high_risk", "legacy", "standard"], range=[VERMILLION, ORANGE, GREY])
    return alt.layer(
        base.mark_bar(height=16).encode(
            color=alt.Color("risk_tier:N", scale=tiers, title="app risk tier")
        ),
        base.mark_text(align="left", dx=4, color="#000000").encode(text="text:N"),
    ).properties(
        width=WIDTH - 300,
        height=alt.Step(24),
        title="Apps with the most password sign-ins this week",
    )


def _tickets(data: ReportData) -> alt.LayerChart | None:
    """Tickets per 1,000 users per scenario, last quarter (light) and this one (dark), with
    the scenarios the alert rule flags marked and `other` named for what it is."""
    tickets = data.tickets
    quarters = [q for q in (tickets["previous_quarter"], tickets["quarter"]) if q]
    rows = []
    for row in tickets["scenarios"]:
        if row["scenario"] == "all" or (row["rate"] is None and row["previous_rate"] is None):
            continue
        label = "other (no runbook)" if row["scenario"] == "other" else row["scenario"]
        if row["flagged"]:
            label += " ▲ rising"
        for quarter, rate in (
            (tickets["previous_quarter"], row["previous_rate"]),
            (tickets["quarter"], row["rate"]),
        ):
            if quarter and rate is not None:
                rows.append({"scenario": label, "quarter": quarter, "rate": round(rate, 1)})
    if not rows:
        return None
    base = alt.Chart(alt.Data(values=rows)).encode(
        y=alt.Y("scenario:N", title=None, sort=list(dict.fromkeys(r["scenario"] for r in rows))),
        yOffset=alt.YOffset("quarter:N", sort=quarters),
        x=alt.X("rate:Q", title="tickets per 1,000 users"),
    )
    return alt.layer(
        base.mark_bar(height=10).encode(
            color=alt.Color(
                "quarter:N",
                sort=quarters,
                scale=alt.Scale(domain=quarters, range=[LIGHT_GREY, BLUE][-len(quarters) :]),
                title=None,
            )
        ),
        base.mark_text(align="left", dx=3, fontSize=10, color="#000000").encode(text="rate:Q"),
    ).properties(
        width=WIDTH - 260,
        height=alt.Step(12),
        title="Helpdesk tickets per 1,000 users by runbook scenario, quarter over quarter",
    )
