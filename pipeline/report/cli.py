"""The `report` subcommand: the weekly review report from the configured warehouse."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.entry import warehouse_errors

HELP = "the weekly review report: one self-contained HTML page, its JSON, a PDF, PNG charts"
DESCRIPTION = (
    "Read PIPELINE_CLICKHOUSE_DSN (a read-only user is enough) and write report-<week>.html "
    "(self-contained: opens offline, fit to attach to an e-mail) and report-<week>.json (every "
    "number shown) to --out, with `pdf` report-<week>.pdf (printed by headless Chromium) and "
    "with `png` a PNG per chart. The week: the last complete week of data unless --week."
)
DEFAULT_OUT = Path("var/reports")


def add_command(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser("report", help=HELP, description=DESCRIPTION)
    report.add_argument("--week", help="ISO week, e.g. 2026-W23 (default: the last complete one)")
    report.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    report.add_argument(
        "--format",
        default="html,pdf",
        help="comma-separated: html, pdf, png (default html,pdf; the HTML and JSON are "
        "always written)",
    )
    report.add_argument(
        "--chromium", default=None, help="the Chromium that prints the PDF (default: on PATH)"
    )
    report.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from pipeline.report.data import ReportError, parse_week, read_report
    from pipeline.report.render import BrowserError, parse_formats, write_report
    from pipeline.settings import Settings, configuration_problems
    from pipeline.sinks.warehouse import Warehouse

    try:
        formats = parse_formats(args.format)
        week = parse_week(args.week) if args.week else None
        settings = Settings()
    except ValidationError as exc:
        return _fail(f"configuration: {configuration_problems(exc)}", 2)
    except (ValueError, ReportError) as exc:
        return _fail(f"report: {exc}", 2)

    def report() -> int:
        with Warehouse.from_settings(settings) as warehouse:
            data = read_report(warehouse, week)
        for path in write_report(data, args.out, formats, args.chromium):
            print(path)
        return 0

    try:
        return warehouse_errors(report)
    except ReportError as exc:
        return _fail(f"report: {exc}", 1)
    except BrowserError as exc:
        return _fail(f"report: no PDF ({exc}); the HTML and JSON are in {args.out}", 1)
    except OSError as exc:  # the output folder
        return _fail(f"report: cannot write to {args.out}: {exc.strerror or exc}", 1)


def _fail(message: str, code: int) -> int:
    print(f"pipeline: {message}", file=sys.stderr)
    return code
