"""The `pipeline` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import orjson
from pydantic import ValidationError

from pipeline.classify.stats import ClassifyStats
from pipeline.collect import roster_file
from pipeline.collect.cli import add_command as add_collect_command
from pipeline.entry import warehouse_errors
from pipeline.model import NormalizedEvent, Source, json_line
from pipeline.receive.cli import add_command as add_receive_command
from pipeline.report.cli import add_command as add_report_command
from pipeline.simulate.tenant.cli import add_serve_arguments
from pipeline.sources.records import read_records, split_batch
from pipeline.sources.registry import RejectedEvent, parse
from pipeline.tools import bench_warehouse

SOURCE_CHOICES = [s.value for s in Source] + ["auto"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ValidationError as exc:  # the settings, from the environment
        from pipeline.settings import configuration_problems

        print(f"pipeline: configuration: {configuration_problems(exc)}", file=sys.stderr)
        return 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline", description="Passwordless rollout metrics pipeline"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    classify = commands.add_parser(
        "classify",
        help="classify raw IdP events / helpdesk tickets into normalized NDJSON",
        description="Read raw vendor events (a JSON array, one object, or NDJSON) and write "
        "one normalized NDJSON line per event. Unreadable events: one line each on stderr.",
    )
    classify.add_argument("--source", required=True, choices=SOURCE_CHOICES)
    classify.add_argument("file", nargs="?", default="-", help="input file, or - for stdin")
    classify.add_argument(
        "--stats", action="store_true", help="print a summary line on stderr at the end"
    )
    classify.set_defaults(handler=_classify)

    simulate = commands.add_parser(
        "simulate",
        help="generate a six-phase rollout in the vendors' raw log formats, with its truth",
        description="Write DIR/{okta,entra,ping,duo,tickets,roster}.ndjson and DIR/truth.json, "
        "or produce the events to the raw Kafka topics with --kafka, or serve them through the "
        "vendors' APIs with --serve HOST:PORT.",
    )
    simulate.add_argument("--users", type=_positive_int, default=5000)
    simulate.add_argument("--weeks", type=_positive_int, default=30)
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument("--out", type=Path, default=Path("var/simulation"))
    simulate.add_argument("--plan", type=Path, default=None, help="rollout plan YAML")
    simulate.add_argument(
        "--idp-mix",
        type=_idp_mix,
        default=None,
        metavar="okta=0.4,entra=0.35,ping=0.15,duo=0.1",
        help="share of the workforce whose home IdP each is (the default shown)",
    )
    simulate.add_argument(
        "--duo-fronted",
        type=float,
        default=None,
        metavar="0.3",
        help="share of Okta users with Duo as the MFA in front of Okta",
    )
    simulate.add_argument(
        "--no-runbook-growth",
        type=float,
        default=None,
        metavar="1.15",
        help="weekly growth factor of the scenario no runbook covers (passkeys in VDI/RDP "
        "sessions), from phase 3; 0 simulates a rollout without it",
    )
    simulate.add_argument(
        "--kafka", metavar="BOOTSTRAP", default=None, help="produce to the raw topics instead"
    )
    simulate.add_argument(
        "--delivery",
        choices=["message", "native"],
        default="message",
        help="message: one record per message (line); native: as the vendors deliver, Entra "
        "as Event Hubs bodies, Okta as Event Hook bodies, several records each",
    )
    add_serve_arguments(simulate)
    simulate.set_defaults(handler=_simulate)

    demo = commands.add_parser(
        "demo",
        help="the whole pipeline end to end on a simulated rollout (make run)",
        description="Start the embedded broker (unless PIPELINE_KAFKA_BOOTSTRAP is set), "
        "empty and migrate the warehouse (PIPELINE_CLICKHOUSE_DSN), simulate a rollout into "
        "the raw topics, run the worker until it has caught up, print the weekly metrics.",
    )
    demo.add_argument("--users", type=_positive_int, default=2000)
    demo.add_argument("--weeks", type=_positive_int, default=30)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--out", type=Path, default=Path("var/demo"))
    demo.add_argument(
        "--collect",
        action="store_true",
        help="serve the rollout from a simulated tenant (the vendors' APIs) and bring it in "
        "with `pipeline collect`, instead of producing it to the raw topics",
    )
    demo.set_defaults(handler=_demo)

    commands.add_parser(
        "worker",
        help="run the Faust worker: raw topics -> ClickHouse (until SIGTERM)",
        description="Consume the raw topics of PIPELINE_KAFKA_BOOTSTRAP (the embedded broker "
        "when unset) and write to PIPELINE_CLICKHOUSE_DSN. Several workers may share topics.",
    ).set_defaults(handler=_worker)

    commands.add_parser(
        "migrate", help="apply the ClickHouse migrations (schemas/clickhouse/) and load the plan"
    ).set_defaults(handler=_migrate)

    sql = commands.add_parser(
        "sql",
        help="run SQL against the warehouse",
        description="Run one statement against PIPELINE_CLICKHOUSE_DSN. Values go in as "
        "parameters: --param user=ana@example.com with {user:String} in the query.",
    )
    sql.add_argument("query")
    sql.add_argument("--param", action="append", default=[], type=_name_value, metavar="NAME=VALUE")
    sql.add_argument("--format", choices=["table", "json"], default="table")
    sql.set_defaults(handler=_sql)

    metrics = commands.add_parser(
        "metrics",
        help="the weekly metrics from the warehouse (JSON: the shape of truth.json)",
    )
    metrics.add_argument("--format", choices=["table", "json"], default="table")
    metrics.set_defaults(handler=_metrics)

    forget = commands.add_parser(
        "forget-user",
        help="delete every row of one user from the warehouse",
        description="Delete the user's rows from every table that has a user (by login; with "
        "PIPELINE_PSEUDONYMIZE_KEY set, by the login's pseudonym), and the dead letters whose "
        "stored bytes name the login. The raw topics and the dead-letter topic keep the "
        "user's events until Kafka's own retention deletes them.",
    )
    forget.add_argument("user", help="the login, as the IdPs log it (case does not matter)")
    forget.set_defaults(handler=_forget_user)

    grafana = commands.add_parser(
        "grafana",
        help="dashboards, provisioning and alert rules: render, check, push",
        description="Grafana as code (pipeline/grafana/, files in grafana/).",
    ).add_subparsers(dest="grafana_command", required=True)
    render = grafana.add_parser(
        "render", help="write grafana/ (dashboards JSON, provisioning YAML) from the code"
    )
    render.add_argument(
        "--check", action="store_true", help="exit 1 if the files differ from the code"
    )
    render.set_defaults(handler=_grafana_render)
    check = grafana.add_parser(
        "check",
        help="run every panel's and alert rule's SQL against the warehouse",
        description="Expand each query's macros and variables as Grafana and the ClickHouse "
        "plugin do, for the last 30 days of data (or --from/--to), run it against "
        "PIPELINE_CLICKHOUSE_DSN, print one line per query with its row count. Exit 1 if a "
        "query fails or a panel gets an answer of the wrong shape.",
    )
    check.add_argument("--from", dest="start", type=_utc, metavar="ISO-TIME")
    check.add_argument("--to", dest="end", type=_utc, metavar="ISO-TIME")
    check.add_argument(
        "--var",
        action="append",
        default=[],
        type=_name_value,
        metavar="NAME=VALUE",
        help="a template variable's value (default: source=all, department=all)",
    )
    check.set_defaults(handler=_grafana_check)
    push = grafana.add_parser(
        "push",
        help="create or update the folder, datasource, dashboards and alert rules in a Grafana",
        description="Idempotent, through Grafana's HTTP API (grafana-client). The datasource "
        "gets PIPELINE_GRAFANA_CLICKHOUSE_* (host, port, protocol, secure, database, user, "
        "password).",
    )
    push.add_argument("--url", default=None, help="default: PIPELINE_GRAFANA_URL")
    push.add_argument(
        "--token",
        default=None,
        help="service account token; prefer PIPELINE_GRAFANA_TOKEN (the command line is "
        "visible to other users of the machine)",
    )
    push.set_defaults(handler=_grafana_push)

    schemas = commands.add_parser(
        "schemas", help="write the event JSON Schemas (schemas/events/) from the models"
    )
    schemas.add_argument("--out", type=Path, default=Path("schemas/events"))
    schemas.add_argument(
        "--check", action="store_true", help="exit 1 if the files differ from the models"
    )
    schemas.set_defaults(handler=_schemas)
    roster_file.add_command(commands)
    add_receive_command(commands)
    add_collect_command(commands)
    add_report_command(commands)
    bench = commands.add_parser(
        "bench",
        help="measure: `bench warehouse` (the dashboards' queries at a workforce's size)",
        description="The streaming benchmark is `make bench` (python -m pipeline.tools.bench).",
    ).add_subparsers(dest="bench_command", required=True)
    bench_warehouse.add_command(bench)
    return parser


def _classify(args: argparse.Namespace) -> int:
    stats = ClassifyStats()
    out = sys.stdout.buffer
    with ExitStack() as stack:
        stream: BinaryIO
        if args.file == "-":
            stream, name = sys.stdin.buffer, "stdin"
        else:
            try:
                stream, name = stack.enter_context(open(args.file, "rb")), args.file
            except OSError as exc:
                print(
                    f"pipeline classify: cannot read {args.file}: {exc.strerror}", file=sys.stderr
                )
                return 2
        for record in read_records(stream, name):
            if record.data is None:
                _report(record.where, record.error or "unreadable")
                stats.reject()
                continue
            for where, event, reason in _classified(args.source, record.where, record.data):
                if event is None:
                    _report(where, reason or "unreadable")
                    stats.reject()
                    continue
                try:
                    line = json_line(event)
                except (TypeError, ValueError) as exc:  # a value JSON cannot hold
                    _report(where, f"cannot be written as JSON: {exc}")
                    stats.reject()
                    continue
                stats.observe(event)
                out.write(line)
    out.flush()
    if args.stats:
        print(f"pipeline classify: {stats.summary()}", file=sys.stderr)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from pipeline.runtime.broker import TopicSetupError
    from pipeline.simulate.run import simulate

    if args.serve:
        from pipeline.simulate.tenant.cli import serve_from_args

        return serve_from_args(args)

    try:
        summary = simulate(
            users=args.users,
            weeks=args.weeks,
            seed=args.seed,
            out=args.out,
            plan_file=args.plan,
            kafka=args.kafka,
            idp_mix=args.idp_mix,
            duo_fronted_share=args.duo_fronted,
            no_runbook_growth=args.no_runbook_growth,
            delivery=args.delivery,
        )
    except (ValueError, TopicSetupError) as exc:
        print(f"pipeline simulate: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pipeline.tools.demo import run_demo

    return warehouse_errors(
        lambda: run_demo(
            users=args.users, weeks=args.weeks, seed=args.seed, out=args.out, collect=args.collect
        )
    )


def _worker(args: argparse.Namespace) -> int:
    from pipeline.runtime.worker import run_worker
    from pipeline.settings import Settings

    return warehouse_errors(lambda: run_worker(Settings()) or 0)


def _migrate(args: argparse.Namespace) -> int:
    from pipeline.runtime.worker import prepare_warehouse
    from pipeline.settings import Settings
    from pipeline.sinks.access import ensure_reader
    from pipeline.sinks.warehouse import Warehouse

    def migrate() -> int:
        settings = Settings()
        with Warehouse.from_settings(settings) as warehouse:
            applied = prepare_warehouse(warehouse, settings)
            # Here, not at each worker start: it needs rights the worker's user should not have.
            applied.append(ensure_reader(warehouse, settings.grafana))
            for change in applied:
                print(change)
            print(f"{warehouse.location}: schema up to date, rollout plan loaded")
        return 0

    return warehouse_errors(migrate)


def _sql(args: argparse.Namespace) -> int:
    from pipeline.settings import Settings
    from pipeline.sinks.warehouse import Warehouse

    parameters = dict(args.param)

    def run() -> int:
        with Warehouse.from_settings(Settings()) as warehouse:
            columns, rows = warehouse.query_columns(args.query, parameters)
        if args.format == "json":
            for row in rows:
                sys.stdout.buffer.write(
                    orjson.dumps(dict(zip(columns, row, strict=True)), default=str) + b"\n"
                )
        else:
            print(_text_table(columns, rows))
        return 0

    return warehouse_errors(run)


def _metrics(args: argparse.Namespace) -> int:
    from pipeline.plan import load_plan
    from pipeline.report.weekly import weekly_metrics
    from pipeline.settings import Settings
    from pipeline.sinks.warehouse import Warehouse
    from pipeline.tools.demo import weekly_table

    def report() -> int:
        settings = Settings()
        with Warehouse.from_settings(settings) as warehouse:
            metrics = weekly_metrics(warehouse, load_plan(settings.plan_file))
        if args.format == "json":
            sys.stdout.buffer.write(orjson.dumps(metrics, option=orjson.OPT_INDENT_2) + b"\n")
        else:
            print(weekly_table(metrics))
        return 0

    return warehouse_errors(report)


def _forget_user(args: argparse.Namespace) -> int:
    from pipeline.aggregate.privacy import Pseudonymizer
    from pipeline.settings import Settings
    from pipeline.sinks.warehouse import Warehouse
    from pipeline.sources._common import normalize_user

    settings = Settings()
    login = normalize_user(args.user)
    if login is None:
        print("pipeline forget-user: an empty login", file=sys.stderr)
        return 2
    key = settings.pseudonymization_key()
    stored = Pseudonymizer(key)(login) if key is not None else login

    def forget() -> int:
        with Warehouse.from_settings(settings) as warehouse:
            deleted = warehouse.forget_user(stored, login)
        for table, rows in deleted.items():
            print(f"{table}: {rows:,} rows deleted")
        print(
            "The raw Kafka topics and the dead-letter topic keep this user's events until "
            "Kafka's retention deletes them (their retention.ms)."
        )
        return 0

    return warehouse_errors(forget)


def _grafana_render(args: argparse.Namespace) -> int:
    from pipeline.grafana import provisioning

    if args.check:
        stale = provisioning.out_of_date()
        for path in stale:
            print(f"out of date: {path} (run `pipeline grafana render`)", file=sys.stderr)
        return 1 if stale else 0
    for path in provisioning.write():
        print(f"wrote {path}")
    return 0


def _grafana_check(args: argparse.Namespace) -> int:
    from pipeline.grafana import check, provisioning
    from pipeline.grafana.alerts import rule_groups
    from pipeline.grafana.dashboards import dashboards
    from pipeline.settings import Settings
    from pipeline.sinks.warehouse import Warehouse

    variables = dict(args.var)
    stale = provisioning.out_of_date()
    if stale:
        print(f"note: {len(stale)} file(s) under grafana/ differ from the code", file=sys.stderr)

    def run() -> int:
        with Warehouse.from_settings(Settings()) as warehouse:
            end = args.end or check.data_end(warehouse)
            start = args.start or end - timedelta(days=30)
            print(f"time range {start.isoformat()} .. {end.isoformat()}")
            found = check.queries(dashboards(), rule_groups())
            outcomes = check.run(warehouse, found, start=start, end=end, variables=variables)
        for outcome in outcomes:
            print(outcome.line())
        failed = sum(not outcome.ok for outcome in outcomes)
        print(f"{len(outcomes) - failed} of {len(outcomes)} queries ok")
        return 1 if failed else 0

    return warehouse_errors(run)


def _grafana_push(args: argparse.Namespace) -> int:
    from grafana_client import GrafanaApi

    from pipeline.grafana.provisioning import bundle
    from pipeline.grafana.push import GrafanaPushError, push
    from pipeline.settings import Settings

    settings = Settings().grafana
    token = (args.token or (settings.token.get_secret_value() if settings.token else "")).strip()
    if not token:
        print("pipeline grafana push: no token: set PIPELINE_GRAFANA_TOKEN", file=sys.stderr)
        return 2
    if not token.isprintable():  # e.g. a secret file's inner newline: no header could carry it
        print("pipeline grafana push: the token holds control characters", file=sys.stderr)
        return 2
    api = GrafanaApi.from_url(args.url or settings.url, credential=token)
    try:
        for line in push(api, bundle(settings)):
            print(line)
    except GrafanaPushError as exc:
        print(f"pipeline grafana push: {exc}", file=sys.stderr)
        return 1
    return 0


def _name_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"wants NAME=VALUE, not {text!r}")
    return name, value


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _text_table(columns: list[str], rows: list[tuple]) -> str:
    cells = [[str(value) for value in row] for row in rows]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]
    lines = ["  ".join(name.ljust(width) for name, width in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    lines.append(f"({len(rows)} rows)")
    return "\n".join(lines)


def _idp_mix(text: str) -> dict[Source, float]:
    """`okta=0.5,entra=0.5`: IdPs left out get no users."""
    idps = (Source.OKTA, Source.ENTRA, Source.PING, Source.DUO)
    mix: dict[Source, float] = {}
    try:
        for part in text.split(","):
            name, _, share = part.partition("=")
            mix[Source(name.strip())] = float(share)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected okta=0.4,entra=0.35,..., not {text!r}"
        ) from None
    if not set(mix) <= set(idps) or not mix or min(mix.values()) < 0 or sum(mix.values()) <= 0:
        raise argparse.ArgumentTypeError(f"shares of okta, entra, ping, duo, not {text!r}")
    return mix


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _classified(
    source: str, where: str, data: bytes
) -> Iterator[tuple[str, NormalizedEvent | None, str | None]]:
    """(where, event, None) for an event; (where, None, reason) for what cannot be read. A
    batch (a vendor API envelope, an array) gives its records, one by one."""
    items = split_batch(data)
    named = (
        [(where, data)]
        if items is None
        else [(f"{where} record {index}", item) for index, item in enumerate(items, start=1)]
    )
    for name, item in named:
        try:
            yield name, parse(source, item), None
        except RejectedEvent as exc:
            yield name, None, exc.reason


def _report(where: str, reason: str) -> None:
    print(f"pipeline classify: {where}: {' '.join(reason.split())}", file=sys.stderr)


def _schemas(args: argparse.Namespace) -> int:
    from pipeline.schema_export import check_schemas, write_schemas

    if args.check:
        stale = check_schemas(args.out)
        for name in stale:
            print(f"pipeline schemas: {args.out / name} differs from the model", file=sys.stderr)
        return 1 if stale else 0
    for path in write_schemas(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
