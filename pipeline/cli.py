"""The `pipeline` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

from pipeline.classify.stats import ClassifyStats
from pipeline.model import NormalizedEvent, Source, json_line
from pipeline.sources.records import envelope_items, read_records
from pipeline.sources.registry import RejectedEvent, parse

SOURCE_CHOICES = [s.value for s in Source] + ["auto"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


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
        "or produce the events to the raw Kafka topics with --kafka.",
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
        "--kafka", metavar="BOOTSTRAP", default=None, help="produce to the raw topics instead"
    )
    simulate.set_defaults(handler=_simulate)

    demo = commands.add_parser(
        "demo",
        help="simulate a rollout, classify all of it, print the weekly metrics (make run)",
    )
    demo.add_argument("--users", type=_positive_int, default=2000)
    demo.add_argument("--weeks", type=_positive_int, default=30)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--out", type=Path, default=Path("var/demo"))
    demo.set_defaults(handler=_demo)

    schemas = commands.add_parser(
        "schemas", help="write the event JSON Schemas (schemas/events/) from the models"
    )
    schemas.add_argument("--out", type=Path, default=Path("schemas/events"))
    schemas.add_argument(
        "--check", action="store_true", help="exit 1 if the files differ from the models"
    )
    schemas.set_defaults(handler=_schemas)
    return parser


def _classify(args: argparse.Namespace) -> int:
    stats = ClassifyStats()
    out = sys.stdout.buffer
    with ExitStack() as stack:
        stream: BinaryIO
        if args.file == "-":
            stream, name = sys.stdin.buffer, "stdin"
        else:
            stream, name = stack.enter_context(open(args.file, "rb")), args.file
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
                stats.observe(event)
                out.write(json_line(event))
    out.flush()
    if args.stats:
        print(f"pipeline classify: {stats.summary()}", file=sys.stderr)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from pipeline.simulate.run import simulate

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
        )
    except ValueError as exc:
        print(f"pipeline simulate: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pipeline.demo import run_demo

    run_demo(users=args.users, weeks=args.weeks, seed=args.seed, out=args.out)
    return 0


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
    document no parser reads may be a vendor API envelope: then its events, one by one."""
    try:
        yield where, parse(source, data), None
        return
    except RejectedEvent as exc:
        reason = exc.reason
    items = envelope_items(data)
    if items is None:
        yield where, None, reason
        return
    for index, item in enumerate(items, start=1):
        yield from _classified(source, f"{where} record {index}", item)


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
