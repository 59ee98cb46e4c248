"""`pipeline demo --collect`: the demo's rollout served by the simulated tenant and brought in
by the collectors, instead of produced to the raw topics directly.

The rollout is simulated into the demo's directory (the same plan, seed and truth as the
default demo) and served through the vendors' APIs (`pipeline.simulate.tenant`, rate limits
on); each collector runs a backfill of the whole rollout window as a `pipeline collect`
child process, as a user runs it. Two things no pull API serves go on as they do without
collectors: the roster (an HR export, produced to the roster topic as the default demo does)
and PingFederate's audit records (a file or syslog, never an API: produced to raw.ping one
record per message, keyed by user, as a shipper would).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from pipeline.collect.runner import user_key
from pipeline.model import Source
from pipeline.runtime.broker import BufferedProducer, create_topics
from pipeline.settings import Settings
from pipeline.simulate.output import ROSTER_FILE
from pipeline.simulate.tenant import Tenant
from pipeline.simulate.tenant.rollout import simulate_rollout

# Each a `pipeline collect` run; jira_dc is `collect jira` against the tenant's Jira Data Center.
COLLECTORS = ("okta", "entra", "duo", "ping", "servicenow", "jira", "jira_dc")
COMMANDS = {"jira_dc": "jira"}
DEMO_SETTINGS = {
    # Duo asks for at most one call a minute per log (the default), which would make a
    # 30-week backfill last hours: the demo keeps to the 50 calls a minute per log the tenant
    # enforces (Duo's documented rate limit, pipeline/simulate/tenant/duo.py).
    "PIPELINE_DUO_MIN_INTERVAL": "1.2",
    # Graph is read by time slices of at most a day (the default), each a request at 5 per
    # 10 s: 30 weeks of three streams would take 20 minutes. A demo tenant is sparse: slices
    # of up to 30 days, halved by the collector wherever one holds more than 10 pages.
    "PIPELINE_ENTRA_SLICE": "P30D",
    "PIPELINE_ENTRA_SLICE_MAX": "P30D",
    # Duo refuses a mintime older than 180 days, and the collector moves an older start up to
    # it; the simulated tenant keeps every record (its docstring), and a 30-week rollout
    # reaches further back. Read once the collector has the setting (ignored until then).
    "PIPELINE_DUO_RETENTION": "P400D",
}
_COLLECTOR_PREFIXES = tuple(
    f"PIPELINE_{name.upper()}_" for name in ("collect", *COLLECTORS) if name not in COMMANDS
)


def collector_env(tenant: Tenant, vendor: str, bootstrap: str) -> dict[str, str]:
    """The settings a user of the simulated tenant sets for one collector (README: `pipeline
    collect`), secrets included: for a child process's environment only."""
    url = tenant.url
    vendors = {
        "okta": {"PIPELINE_OKTA_URL": url, "PIPELINE_OKTA_TOKEN": tenant.okta.api_token},
        "entra": {
            "PIPELINE_ENTRA_TENANT_ID": tenant.entra.tenant_id,
            "PIPELINE_ENTRA_CLIENT_ID": tenant.entra.client_id,
            "PIPELINE_ENTRA_CLIENT_SECRET": tenant.entra.client_secret,
            "PIPELINE_ENTRA_AUTHORITY_URL": url,
            "PIPELINE_ENTRA_GRAPH_URL": url,
        },
        "duo": {
            "PIPELINE_DUO_HOST": tenant.duo.host,
            "PIPELINE_DUO_URL": url,
            "PIPELINE_DUO_IKEY": tenant.duo.ikey,
            "PIPELINE_DUO_SKEY": tenant.duo.skey,
        },
        "ping": {
            "PIPELINE_PING_ENVIRONMENT_ID": tenant.ping.environment_id,
            "PIPELINE_PING_CLIENT_ID": tenant.ping.client_id,
            "PIPELINE_PING_CLIENT_SECRET": tenant.ping.client_secret,
            "PIPELINE_PING_AUTH_URL": url,
            "PIPELINE_PING_API_URL": tenant.ping.api_url,
        },
        "servicenow": {
            "PIPELINE_SERVICENOW_URL": url,
            "PIPELINE_SERVICENOW_USERNAME": tenant.servicenow.user,
            "PIPELINE_SERVICENOW_PASSWORD": tenant.servicenow.password,
        },
        "jira": {
            "PIPELINE_JIRA_URL": url,
            "PIPELINE_JIRA_EMAIL": tenant.jira.email,
            "PIPELINE_JIRA_API_TOKEN": tenant.jira.api_token,
        },
        "jira_dc": {
            "PIPELINE_JIRA_DEPLOYMENT": "datacenter",
            "PIPELINE_JIRA_URL": tenant.jira_dc.base_url,
            "PIPELINE_JIRA_USERNAME": tenant.jira_dc.user,
            "PIPELINE_JIRA_PASSWORD": tenant.jira_dc.password,
        },
    }
    return {
        "PIPELINE_KAFKA_BOOTSTRAP": bootstrap,
        "PIPELINE_COLLECT_CA_FILE": str(tenant.ca_file),
        **vendors[vendor],
    }


def rollout_window(tenant: Tenant) -> tuple[datetime, datetime]:
    """A backfill window holding every record the tenant serves: from a day before its
    first record to now."""
    rollout = tenant.rollout
    feeds = [
        rollout.okta,
        rollout.signins,
        rollout.audits,
        rollout.duo_authentication,
        rollout.duo_activity,
        rollout.duo_telephony,
        rollout.ping,
        rollout.servicenow,
        rollout.jira,
        rollout.jira_dc,
    ]
    first = min(feed.times[0] for feed in feeds if len(feed))
    since = datetime.fromtimestamp(first / 1000, UTC) - timedelta(days=1)
    return since.replace(microsecond=0), datetime.now(UTC).replace(microsecond=0)


def collect_rollout(
    users: int, weeks: int, seed: int, out: Path, plan_file: Path, bootstrap: str
) -> bool:
    """Step 3 of the collecting demo: simulate, serve, produce what no API serves, run every
    collector's backfill. False (with the failing collector's log on stderr) if one failed."""
    settings = Settings()
    print(
        f"3/4 simulating a {weeks}-week rollout of {users:,} users, served by a simulated "
        "tenant (the vendors' APIs), brought in by `pipeline collect`"
    )
    summary = simulate_rollout(out, users, weeks, seed, plan_file)
    print("    " + summary.split(" -> ")[0], flush=True)
    with Tenant.from_directory(out) as tenant:
        print(f"    tenant at {tenant.url} (its CA: {tenant.ca_file})")
        create_topics(
            bootstrap, settings.topics.inputs(), settings.topics.partitions, settings.kafka
        )
        people, shipped = _produce_unserved(tenant, out, bootstrap, settings)
        print(
            f"    roster: {people:,} people to {settings.topics.roster} from {out / ROSTER_FILE}, "
            "as the default demo writes it (an HR export's path, as `pipeline roster import` "
            "writes one; no collector)"
        )
        print(
            f"    PingFederate: {shipped:,} audit records to {settings.topics.raw(Source.PING)} "
            "as a shipper would (its audit log is a file or syslog: no pull API)"
        )
        since, until = rollout_window(tenant)
        print(
            f"    backfilling {since:%Y-%m-%d} .. {until:%Y-%m-%dT%H:%M:%SZ} with "
            f"{', '.join(COLLECTORS)} (logs: {out}/collect-NAME.log)",
            flush=True,
        )
        return _backfill(tenant, since, until, out, bootstrap)


def _produce_unserved(
    tenant: Tenant, out: Path, bootstrap: str, settings: Settings
) -> tuple[int, int]:
    """The roster and PingFederate's records to their topics; how many of each."""
    producer = BufferedProducer(bootstrap, **settings.kafka.aiokafka_options())
    try:
        rows = [line for line in (out / ROSTER_FILE).read_bytes().splitlines() if line.strip()]
        for row in rows:
            producer.send(settings.topics.roster, key=orjson.loads(row)["user"].encode(), value=row)
        key = user_key(Source.PING)
        for line in tenant.unserved:
            producer.send(settings.topics.raw(Source.PING), key=key(line), value=line)
    finally:
        producer.close()
    return len(rows), len(tenant.unserved)


def _backfill(tenant: Tenant, since: datetime, until: datetime, out: Path, bootstrap: str) -> bool:
    """Every collector's backfill at once, each a child process; True if all ended well."""
    window = ["--since", since.isoformat(), "--until", until.isoformat()]
    # The broker's settings (PIPELINE_KAFKA_*) pass on; a user's own collector settings do not.
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_COLLECTOR_PREFIXES)
    }
    started = time.monotonic()
    running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for name in COLLECTORS:
        env = {**inherited, **collector_env(tenant, name, bootstrap)}
        env.update(DEMO_SETTINGS)
        log = out / f"collect-{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "pipeline.collect", COMMANDS.get(name, name), *window],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        running[name] = (process, log)
    failed = []
    while running:
        for name, (process, log) in list(running.items()):
            if process.poll() is None:
                continue
            del running[name]
            elapsed = time.monotonic() - started
            if process.returncode == 0:
                print(f"    {name}: backfill done in {elapsed:.0f} s", flush=True)
            else:
                failed.append(name)
                tail = log.read_text("utf-8", "replace").strip().splitlines()[-10:]
                print(f"\npipeline demo: `pipeline collect {name}` failed:", file=sys.stderr)
                print("\n".join(tail), file=sys.stderr)
        time.sleep(0.2)
    return not failed
