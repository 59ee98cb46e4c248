"""The simulated tenant: every fake vendor API on one aiohttp server, HTTPS by default, run on
a thread of its own (tests) or in the foreground (`pipeline simulate --serve`)."""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from pipeline.simulate.tenant import VENDORS
from pipeline.simulate.tenant.duo import DuoAPI
from pipeline.simulate.tenant.entra import MicrosoftAPI
from pipeline.simulate.tenant.framework import Clock, Faults, Vendor
from pipeline.simulate.tenant.jira import JiraCloudAPI, JiraDataCenterAPI
from pipeline.simulate.tenant.okta import OktaAPI
from pipeline.simulate.tenant.ping import PingOneAPI
from pipeline.simulate.tenant.rollout import load_rollout, simulate_rollout
from pipeline.simulate.tenant.servicenow import ServiceNowAPI
from pipeline.simulate.tenant.tls import make_certificates

log = logging.getLogger("pipeline.simulate.tenant")


class Tenant:
    """A simulated rollout served through the vendors' APIs (see the package docstring)."""

    def __init__(
        self,
        directory: Path,
        *,
        okta_reorder: float = 10.0,
        rate_limits: bool = True,
        tls: bool = True,
    ) -> None:
        self.directory = directory
        self.rollout = load_rollout(directory, okta_reorder)
        self.clock = Clock()
        self.rate_limits = rate_limits
        self.tls = tls
        self._faults = {key: Faults(_clock=self.clock) for key in VENDORS}
        self.okta = OktaAPI(self)
        self.entra = MicrosoftAPI(self)
        self.duo = DuoAPI(self)
        self.ping = PingOneAPI(self)
        self.servicenow = ServiceNowAPI(self)
        self.jira = JiraCloudAPI(self)
        self.jira_dc = JiraDataCenterAPI(self)
        self.url = ""
        self.ca_file: Path | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @classmethod
    def simulate(
        cls,
        directory: Path,
        users: int,
        weeks: int,
        seed: int = 1,
        plan_file: Path | None = None,
        *,
        okta_reorder: float = 10.0,
        rate_limits: bool = True,
        tls: bool = True,
        **simulation: Any,
    ) -> Self:
        """Simulate a rollout into `directory` (its plan moved to end before today;
        `simulation`: the other arguments of `pipeline.simulate.run.simulate`) and serve it."""
        simulate_rollout(directory, users, weeks, seed, plan_file, **simulation)
        return cls(directory, okta_reorder=okta_reorder, rate_limits=rate_limits, tls=tls)

    @classmethod
    def from_directory(cls, directory: Path, **options: Any) -> Self:
        """Serve the simulation already in `directory` (`pipeline simulate --out DIR`)."""
        return cls(directory, **options)

    @property
    def vendors(self) -> list[Vendor]:
        return [
            self.okta,
            self.entra,
            self.duo,
            self.ping,
            self.servicenow,
            self.jira,
            self.jira_dc,
        ]

    @property
    def unserved(self) -> list[bytes]:
        """Records no pull API serves (PingFederate audit records), as NDJSON lines."""
        return self.rollout.unserved

    def faults(self, vendor: str) -> Faults:
        try:
            return self._faults[vendor]
        except KeyError:
            raise ValueError(f"no vendor {vendor!r}: one of {', '.join(VENDORS)}") from None

    def requests(self, vendor: str) -> int:
        """The vendor's data requests since the last reset."""
        return self.faults(vendor).requests

    def ids(self, feed: str) -> set[str]:
        """The vendor ids of every record a feed serves (see the package docstring)."""
        rollout = self.rollout
        feeds = {
            "okta.logs": rollout.okta,
            "entra.signins": rollout.signins,
            "entra.audits": rollout.audits,
            "duo.authentication": rollout.duo_authentication,
            "duo.activity": rollout.duo_activity,
            "duo.telephony": rollout.duo_telephony,
            "duo.administrator": rollout.duo_administrator,
            "ping.activities": rollout.ping,
            "servicenow.incident": rollout.servicenow,
            "jira.issues": rollout.jira,
            "jira_dc.issues": rollout.jira_dc,
        }
        if feed in feeds:
            return set(feeds[feed].ids)
        if feed == "okta.users":
            return {person.okta_id for person in rollout.employees}
        if feed == "entra.users":
            return {person.entra_id for person in rollout.employees}
        raise ValueError(
            f"no feed {feed!r}: one of {', '.join([*feeds, 'okta.users', 'entra.users'])}"
        )

    def reset(self) -> None:
        """Forget faults, request counts, issued tokens, rate-limit windows and clock moves."""
        for faults in self._faults.values():
            faults.reset()
        for vendor in self.vendors:
            vendor.reset()
        self.clock.reset()

    def app(self) -> web.Application:
        app = web.Application()
        for vendor in self.vendors:
            app.add_routes(vendor.routes())
        return app

    # --- running ------------------------------------------------------------------------

    def start(
        self, host: str = "127.0.0.1", port: int = 0, certificates: Path | None = None
    ) -> str:
        """Serve on a thread of its own; the base URL. `certificates`: where to write the CA
        (a temporary directory by default)."""
        if self._thread is not None:
            raise RuntimeError("the tenant is already serving")
        context = None
        if self.tls:
            if certificates is None:
                self._scratch = tempfile.TemporaryDirectory(prefix="tenant-tls-")
                certificates = Path(self._scratch.name)
            context, self.ca_file = make_certificates(certificates, host)
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="tenant", daemon=True)
        self._thread.start()
        try:
            bound = asyncio.run_coroutine_threadsafe(
                self._serve(host, port, context), loop
            ).result()
        except BaseException:
            self.stop()
            raise
        scheme = "https" if context else "http"
        name = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{name}:{bound}"
        return self.url

    async def _serve(self, host: str, port: int, context: ssl.SSLContext | None) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=context)
        await site.start()
        return int(self._runner.addresses[0][1])

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            if self._runner is not None:
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result()
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
        self._loop = self._thread = self._runner = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def __enter__(self) -> Self:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
