"""`pipeline simulate … --serve HOST:PORT`: simulate a rollout, then serve it through the fake
vendor APIs until SIGTERM or Ctrl-C, printing each vendor's base URL and credentials.

The lead wires it into `pipeline/cli.py`: `add_serve_arguments(simulate_parser)` and, in the
simulate handler, `if args.serve: return serve_from_args(args)`.

`--fault SPEC` (repeatable), SPEC = `VENDOR:KIND[@N][xK][=VALUE]`:
- `VENDOR:throttle@N[xK][=SECONDS]`: the Nth data request (K in a row) answers 429, Retry-After
  SECONDS (default 1) where the vendor sends one;
- `VENDOR:errors@N[xK]`: a run of K 500s from the Nth request;
- `VENDOR:token-ttl=SECONDS`: tokens expire after SECONDS (401 with the vendor's body);
- `okta:empty-pages@N[xK]`: K empty log pages with a `next` link from the Nth request;
- `okta:reorder=SECONDS`: events persisted up to SECONDS after `published` (default 10).
VENDOR is one of okta, entra, duo, ping, servicenow, jira, jira_dc.
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.simulate.tenant import VENDORS

if TYPE_CHECKING:
    from pipeline.simulate.tenant.server import Tenant

_SPEC = re.compile(
    r"(?P<vendor>[a-z_]+):(?P<kind>throttle|errors|token-ttl|empty-pages|reorder)"
    r"(?:@(?P<at>\d+))?(?:x(?P<count>\d+))?(?:=(?P<value>\d+(?:\.\d+)?))?"
)
KEY_FILE = "tenant-okta-key.pem"
UNSERVED_FILE = "pingfederate-audit.ndjson"


@dataclass(frozen=True)
class FaultSpec:
    vendor: str
    kind: str
    at: int
    count: int
    value: float | None


def fault_spec(text: str) -> FaultSpec:
    """An argparse type: one `--fault` value."""
    match = _SPEC.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected VENDOR:KIND[@N][xK][=VALUE], KIND one of throttle, errors, "
            "token-ttl, empty-pages, reorder"
        )
    vendor, kind = match["vendor"], match["kind"]
    if vendor not in VENDORS:
        raise argparse.ArgumentTypeError(f"{text!r}: no vendor {vendor!r} ({', '.join(VENDORS)})")
    if kind in ("empty-pages", "reorder") and vendor != "okta":
        raise argparse.ArgumentTypeError(f"{text!r}: {kind} is an Okta fault")
    needs_at = kind in ("throttle", "errors", "empty-pages")
    if needs_at and match["at"] is None:
        raise argparse.ArgumentTypeError(f"{text!r}: {kind} needs @N, the request it starts at")
    if kind in ("token-ttl", "reorder") and match["value"] is None:
        raise argparse.ArgumentTypeError(f"{text!r}: {kind} needs =SECONDS")
    value = float(match["value"]) if match["value"] is not None else None
    return FaultSpec(vendor, kind, int(match["at"] or 1), int(match["count"] or 1), value)


def host_port(text: str) -> tuple[str, int]:
    """An argparse type: HOST:PORT (an IPv6 host in brackets; port 0: a free one)."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:8443")
    return host, int(port)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--serve",
        type=host_port,
        metavar="HOST:PORT",
        default=None,
        help="serve the simulated rollout through the vendors' APIs (HTTPS, a CA written to "
        "--out) until SIGTERM, the plan moved to end before today; prints each vendor's base "
        "URL and credentials",
    )
    parser.add_argument(
        "--fault",
        type=fault_spec,
        action="append",
        default=[],
        metavar="SPEC",
        help="with --serve: VENDOR:KIND[@N][xK][=VALUE], e.g. entra:throttle@3=2, "
        "okta:errors@2x3, ping:token-ttl=30, okta:empty-pages@1x2, okta:reorder=30",
    )


def serve_from_args(args: argparse.Namespace) -> int:
    """The `--serve` path of `pipeline simulate`: simulate, serve, wait for a signal."""
    from pipeline.simulate.tenant.rollout import simulate_rollout
    from pipeline.simulate.tenant.server import Tenant

    if getattr(args, "kafka", None):
        return _fail(
            "--serve and --kafka: the simulated tenant serves the rollout over HTTP; pick one"
        )
    host, port = args.serve
    faults: list[FaultSpec] = args.fault
    reorder = next((f.value for f in faults if f.kind == "reorder"), None)
    out: Path = args.out
    try:  # before simulating: a busy port fails at once
        socket.create_server((host, port)).close()
    except OSError as exc:
        return _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", code=1)
    try:
        summary = simulate_rollout(
            out,
            users=args.users,
            weeks=args.weeks,
            seed=args.seed,
            plan_file=args.plan,
            idp_mix=args.idp_mix,
            duo_fronted_share=args.duo_fronted,
            no_runbook_growth=args.no_runbook_growth,
        )
        tenant = Tenant.from_directory(out, okta_reorder=10.0 if reorder is None else reorder)
    except ValueError as exc:
        return _fail(str(exc))
    for fault in faults:
        _apply(tenant, fault)
    try:
        tenant.start(host, port, certificates=out)
    except OSError as exc:
        return _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", code=1)
    key_file = out / KEY_FILE
    key_file.write_bytes(tenant.okta.private_key_pem)
    key_file.chmod(0o600)
    unserved = out / UNSERVED_FILE
    unserved.write_bytes(b"".join(line + b"\n" for line in tenant.unserved))
    print(summary)
    for line in describe(tenant, key_file, unserved):
        print(line)
    sys.stdout.flush()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        tenant.stop()
    return 0


def describe(tenant: Tenant, key_file: Path, unserved: Path) -> list[str]:
    """One line per vendor: where it is and the (generated, fake) credentials to use."""
    url = tenant.url
    okta, entra, duo, ping = tenant.okta, tenant.entra, tenant.duo, tenant.ping
    return [
        f"tenant: {url} until SIGTERM; trust the CA {tenant.ca_file}",
        f"okta: {url} SSWS token {okta.api_token}; or OAuth client {okta.client_id} with the "
        f"private key {key_file} (kid {okta.key_id}), scopes {' '.join(sorted(okta.scopes))}",
        f"entra: authority {entra.authority}, Graph {url}; client {entra.client_id} secret "
        f"{entra.client_secret}",
        f"duo: host {duo.host} port {duo.port}; ikey {duo.ikey} skey {duo.skey}",
        f"ping: auth {ping.auth_url}, API {ping.api_url}, environment {ping.environment_id}; "
        f"client {ping.client_id} secret {ping.client_secret}",
        f"servicenow: {url} user {tenant.servicenow.user} password {tenant.servicenow.password}",
        f"jira: {url} e-mail {tenant.jira.email} API token {tenant.jira.api_token}",
        f"jira_dc: {tenant.jira_dc.base_url} user {tenant.jira_dc.user} password "
        f"{tenant.jira_dc.password}",
        f"pingfederate: {len(tenant.unserved)} audit records have no pull API: {unserved}",
    ]


def _apply(tenant: Tenant, fault: FaultSpec) -> None:
    faults = tenant.faults(fault.vendor)
    if fault.kind == "throttle":
        faults.throttle(fault.at, fault.count, 1.0 if fault.value is None else fault.value)
    elif fault.kind == "errors":
        faults.errors(fault.at, fault.count)
    elif fault.kind == "token-ttl":
        faults.token_ttl(fault.value)
    elif fault.kind == "empty-pages":
        faults.empty_pages(fault.at, fault.count)


def _fail(message: str, code: int = 2) -> int:
    print(f"pipeline simulate: {message}", file=sys.stderr)
    return code
