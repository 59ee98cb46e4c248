"""`pipeline collect` configuration from the environment: PIPELINE_COLLECT_* for every collector,
and one prefix per vendor (PIPELINE_OKTA_*, PIPELINE_ENTRA_*, PIPELINE_DUO_*, PIPELINE_PING_*,
PIPELINE_SERVICENOW_*, PIPELINE_JIRA_*).

Each secret comes from its variable or from a file (`…_FILE`, a mounted secret), never both,
and stays a `SecretStr`: no log line, error or cursor holds it. Every base URL can be set, so
a collector can be pointed at a proxy, a sovereign cloud, or the simulated tenant
(`pipeline simulate … --serve`).
"""

from __future__ import annotations

import ssl
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode

from pipeline.settings import _config


def _seconds(value: object) -> object:
    """A duration: a number of seconds (`600`) or ISO 8601 (`PT10M`, `P7D`)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


# A duration setting, as seconds or ISO 8601.
Duration = Annotated[timedelta, BeforeValidator(_seconds)]


def _listed(value: object) -> object:
    """A comma-separated variable as a list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class _Secrets(BaseSettings):
    """Settings with secrets that may come from `<NAME>_FILE` instead."""

    def secret(self, name: str) -> SecretStr | None:
        """The secret's value, from its variable or its file; ValueError naming the variable
        when both are set, the file cannot be read, or the value is empty."""
        prefix = str(self.model_config.get("env_prefix", ""))
        variable = f"{prefix}{name.upper()}"
        value: SecretStr | None = getattr(self, name)
        path: Path | None = getattr(self, f"{name}_file")
        if value is not None and path is not None:
            raise ValueError(f"set {variable} or {variable}_FILE, not both")
        if path is not None:
            try:
                # A mounted secret often ends in a newline that is not part of it.
                text = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise ValueError(f"{variable}_FILE: cannot read {path}: {reason}") from None
            value, variable = SecretStr(text), f"{variable}_FILE"
        if value is not None and not value.get_secret_value().strip():
            raise ValueError(f"{variable} is empty")
        return value

    def required_secret(self, name: str) -> SecretStr:
        value = self.secret(name)
        if value is None:
            variable = f"{self.model_config.get('env_prefix', '')}{name.upper()}"
            raise ValueError(f"{variable} (or {variable}_FILE) is not set")
        return value

    def required(self, *names: str) -> None:
        """ValueError naming the variables of `names` that are not set."""
        prefix = str(self.model_config.get("env_prefix", ""))
        if missing := [f"{prefix}{name.upper()}" for name in names if not getattr(self, name)]:
            raise ValueError(f"{', '.join(missing)} not set")


class CollectSettings(BaseSettings):
    """What every collector shares."""

    model_config = _config("PIPELINE_COLLECT_")

    cursor_topic: str = Field(
        default="collect.cursors", description="The compacted Kafka topic of the cursors"
    )
    lookback: Duration = Field(
        default=timedelta(days=1),
        description="Where a live stream without a cursor starts, before now (seconds or "
        "ISO 8601, e.g. P7D)",
    )
    attempts: int = Field(default=8, ge=1, le=100, description="Tries of a failing request")
    timeout: float = Field(default=60.0, gt=0, description="Seconds to wait for an answer")
    backoff_max: float = Field(
        default=60.0, gt=0, description="Longest back-off between tries, in seconds"
    )
    retry_after_max: float = Field(
        default=900.0, gt=0, description="Longest Retry-After honoured, in seconds"
    )
    status_seconds: float = Field(
        default=60.0, gt=0, description="Seconds between status lines during a long round"
    )
    ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle the vendors' HTTPS certificates are checked against "
        "(a TLS-inspecting proxy, a test tenant); unset: the system's",
    )
    directory_poll_seconds: float = Field(
        default=86_400.0, gt=0, description="Seconds between two listings of the directory"
    )
    privileged_departments: Annotated[list[str], NoDecode] = Field(
        default=[], description="Departments whose people count as privileged (directory)"
    )

    _list = field_validator("privileged_departments", mode="before")(_listed)

    @field_validator("lookback")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta():
            raise ValueError("must be positive")
        return value

    def verify(self) -> ssl.SSLContext | bool:
        """How httpx checks the vendors' certificates."""
        if self.ca_file is None:
            return True
        try:
            return ssl.create_default_context(cafile=str(self.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"PIPELINE_COLLECT_CA_FILE: cannot read {self.ca_file}: {exc}"
            ) from None


class OktaSettings(_Secrets):
    """Okta: an API token (SSWS), or an OAuth 2.0 service app with a private key."""

    model_config = _config("PIPELINE_OKTA_")

    url: str | None = Field(default=None, description="The org's URL, https://acme.okta.com")
    token: SecretStr | None = Field(default=None, description="An API token (SSWS)")
    token_file: Path | None = None
    client_id: str | None = Field(default=None, description="The API service app's client id")
    private_key: SecretStr | None = Field(
        default=None, description="Its private key, PEM or JWK JSON"
    )
    private_key_file: Path | None = None
    key_id: str | None = Field(default=None, description="The key's kid, as Okta lists it")
    limit: int = Field(default=1000, ge=1, le=1000, description="Events per page")
    poll_seconds: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _one_way_in(self) -> Self:
        has_token = self.token is not None or self.token_file is not None
        has_key = self.private_key is not None or self.private_key_file is not None
        if has_token and (has_key or self.client_id):
            raise ValueError(
                "set PIPELINE_OKTA_TOKEN or PIPELINE_OKTA_CLIENT_ID with "
                "PIPELINE_OKTA_PRIVATE_KEY, not both"
            )
        if has_key != bool(self.client_id):
            raise ValueError("PIPELINE_OKTA_CLIENT_ID and PIPELINE_OKTA_PRIVATE_KEY go together")
        return self


SignInType = Literal["interactiveUser", "nonInteractiveUser", "servicePrincipal", "managedIdentity"]


class EntraSettings(_Secrets):
    """Microsoft Entra ID through Microsoft Graph: an app registration's client secret."""

    model_config = _config("PIPELINE_ENTRA_")

    tenant_id: str | None = Field(default=None, description="The directory (tenant) id")
    client_id: str | None = Field(default=None, description="The app registration's id")
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = None
    authority_url: str = Field(
        default="https://login.microsoftonline.com", description="The identity platform"
    )
    graph_url: str = Field(default="https://graph.microsoft.com")
    scope: str = Field(
        default="https://graph.microsoft.com/.default", description="The token's scope"
    )
    sign_in_types: Annotated[list[SignInType], NoDecode] = Field(
        default=["interactiveUser", "nonInteractiveUser"],
        description="signInEventTypes read, each a stream of its own (Graph beta)",
    )
    audits: bool = Field(default=True, description="Collect the directory audits too")
    page_size: int = Field(default=1000, ge=1, le=1000)
    requests_per_window: int = Field(
        default=5, ge=1, description="Graph's reports: 5 requests per 10 s per app per tenant"
    )
    window_seconds: float = Field(default=10.0, gt=0)
    delay: Duration = Field(
        default=timedelta(minutes=2), description="A live round ends this far behind now"
    )
    overlap: Duration = Field(
        default=timedelta(minutes=10), description="A live round re-reads this much"
    )
    slice: Duration = Field(
        default=timedelta(hours=1), description="The first time slice read whole"
    )
    slice_max: Duration = Field(default=timedelta(days=1), description="The longest slice")
    poll_seconds: float = Field(default=300.0, gt=0)

    _list = field_validator("sign_in_types", mode="before")(_listed)


class DuoSettings(_Secrets):
    """Cisco Duo's Admin API: an Admin API application's integration and secret keys."""

    model_config = _config("PIPELINE_DUO_")

    host: str | None = Field(default=None, description="The API hostname, api-XXXX.duosecurity.com")
    url: str | None = Field(default=None, description="Base URL; unset: https://HOST")
    ikey: str | None = Field(default=None, description="The integration key")
    skey: SecretStr | None = Field(default=None, description="The secret key")
    skey_file: Path | None = None
    logs: Annotated[
        list[Literal["authentication", "activity", "telephony", "administrator"]], NoDecode
    ] = Field(default=["authentication", "activity", "telephony", "administrator"])
    limit: int = Field(default=1000, ge=10, le=1000, description="Records per page")
    min_interval: float = Field(
        default=60.0, ge=0, description="Seconds between two calls of one log (Duo: once a minute)"
    )
    delay: Duration = Field(
        default=timedelta(minutes=2),
        description="maxtime stays this far behind now (Duo's two-minute delay)",
    )
    overlap: Duration = Field(default=timedelta(minutes=1))
    retention: Duration = Field(
        default=timedelta(days=180),
        description="How far back Duo serves the v2 logs (an older mintime is refused); an "
        "older start is moved up to it",
    )
    poll_seconds: float = Field(default=60.0, gt=0)

    _list = field_validator("logs", mode="before")(_listed)

    @field_validator("delay")
    @classmethod
    def _two_minutes(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=2):
            raise ValueError("Duo serves nothing newer than two minutes: at least 120 s")
        return value

    def base_url(self) -> str:
        return self.url or f"https://{self.host}"


PING_REGIONS = ("com", "eu", "asia", "ca", "com.au", "sg")


class PingSettings(_Secrets):
    """PingOne: a worker application's client credentials."""

    model_config = _config("PIPELINE_PING_")

    environment_id: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = None
    region: Literal["com", "eu", "asia", "ca", "com.au", "sg"] = Field(
        default="com", description="The top-level domain of the environment's region"
    )
    auth_url: str | None = Field(default=None, description="Unset: https://auth.pingone.REGION")
    api_url: str | None = Field(
        default=None, description="Ping's apiPath; unset: https://api.pingone.REGION/v1"
    )
    client_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    limit: int = Field(default=500, ge=1, le=1000)
    delay: Duration = Field(default=timedelta(minutes=1))
    overlap: Duration = Field(default=timedelta(minutes=5))
    slice: Duration = Field(default=timedelta(hours=1))
    slice_max: Duration = Field(default=timedelta(days=1))
    poll_seconds: float = Field(default=120.0, gt=0)

    def auth_base(self) -> str:
        return self.auth_url or f"https://auth.pingone.{self.region}"

    def api_base(self) -> str:
        return self.api_url or f"https://api.pingone.{self.region}/v1"


class ServiceNowSettings(_Secrets):
    """ServiceNow's Table API: a user with basic auth, or that user through OAuth."""

    model_config = _config("PIPELINE_SERVICENOW_")

    url: str | None = Field(default=None, description="https://acme.service-now.com")
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    client_id: str | None = Field(default=None, description="Set: OAuth (password grant)")
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = None
    table: str = "incident"
    query: str = Field(default="", description="An encoded query ANDed to the time condition")
    fields: Annotated[list[str], NoDecode] = Field(
        default=[
            "sys_id",
            "number",
            "opened_at",
            "sys_created_on",
            "sys_updated_on",
            "sys_class_name",
            "short_description",
            "description",
            "category",
            "subcategory",
            "state",
            "caller_id.email",
            "caller_id.user_name",
        ],
        description="sysparm_fields: the fields the tickets parser reads, comma-separated",
    )
    limit: int = Field(default=1000, ge=1, le=10_000)
    timezone: str = Field(
        default="UTC", description="The API user's time zone, in which the query's dates are read"
    )
    overlap: Duration = Field(default=timedelta(minutes=1))
    poll_seconds: float = Field(default=300.0, gt=0)

    _list = field_validator("fields", mode="before")(_listed)
    _zone = field_validator("timezone")(lambda value: _zone_name(value))


class JiraSettings(_Secrets):
    """Jira (Service Management). Cloud: an Atlassian account's e-mail and API token. Data
    Center or Server: a personal access token (Bearer), or a username and password (Basic)."""

    model_config = _config("PIPELINE_JIRA_")

    deployment: Literal["cloud", "datacenter"] = Field(
        default="cloud",
        description="cloud: Jira Cloud's enhanced search; datacenter: Jira Data Center or "
        "Server's /rest/api/2/search",
    )
    url: str | None = Field(
        default=None,
        description="Cloud: https://acme.atlassian.net; Data Center: the base URL with its "
        "context path, https://jira.acme.com/jira",
    )
    email: str | None = Field(default=None, description="Cloud: the account's e-mail")
    api_token: SecretStr | None = Field(default=None, description="Cloud: its API token")
    api_token_file: Path | None = None
    pat: SecretStr | None = Field(
        default=None, description="Data Center: a personal access token (Jira 8.14 and later)"
    )
    pat_file: Path | None = None
    username: str | None = Field(default=None, description="Data Center: a user, with its password")
    password: SecretStr | None = None
    password_file: Path | None = None
    jql: str = Field(default="", description="A JQL condition ANDed to the time condition")
    fields: Annotated[list[str], NoDecode] = Field(default=["*navigable"])
    max_results: int = Field(default=100, ge=1, le=5000)
    timezone: str = Field(
        default="UTC", description="The API user's profile time zone, in which JQL dates are read"
    )
    overlap: Duration = Field(default=timedelta(minutes=1))
    poll_seconds: float = Field(default=300.0, gt=0)

    _list = field_validator("fields", mode="before")(_listed)
    _zone = field_validator("timezone")(lambda value: _zone_name(value))

    def credentials(self) -> tuple[str, SecretStr] | SecretStr:
        """What the deployment signs in with: (user, secret) for Basic, a token for Bearer;
        ValueError naming what is missing or set twice."""
        self.required("url")
        if self.deployment == "cloud":
            if not self.email:
                raise ValueError(
                    "PIPELINE_JIRA_EMAIL not set (Jira Cloud; for Data Center or Server set "
                    "PIPELINE_JIRA_DEPLOYMENT=datacenter)"
                )
            return str(self.email), self.required_secret("api_token")
        pat = self.secret("pat")
        password = self.secret("password")
        if pat is not None and (self.username or password is not None):
            raise ValueError(
                "set PIPELINE_JIRA_PAT or PIPELINE_JIRA_USERNAME with PIPELINE_JIRA_PASSWORD, "
                "not both"
            )
        if pat is not None:
            return pat
        if not self.username or password is None:
            raise ValueError(
                "PIPELINE_JIRA_DEPLOYMENT=datacenter needs PIPELINE_JIRA_PAT (a personal "
                "access token), or PIPELINE_JIRA_USERNAME and PIPELINE_JIRA_PASSWORD"
            )
        return str(self.username), password


def _zone_name(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. UTC, Europe/Paris)") from None
    return value


VENDOR_SETTINGS: tuple[type[BaseSettings], ...] = (
    CollectSettings,
    OktaSettings,
    EntraSettings,
    DuoSettings,
    PingSettings,
    ServiceNowSettings,
    JiraSettings,
)
