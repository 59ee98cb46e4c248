"""Configuration from the environment (prefix `PIPELINE_`), with the embedded defaults."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipeline.model import Source

REPO_ROOT = Path(__file__).resolve().parents[1]
EMBEDDED_WAREHOUSE = REPO_ROOT / "var" / "clickhouse"


def _config(prefix: str) -> SettingsConfigDict:
    # Validation errors never quote their input: it can hold a password or a key.
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", hide_input_in_errors=True)


class Topics(BaseSettings):
    """Kafka topic names: one raw topic per source, plus the roster and the dead letters."""

    model_config = _config("PIPELINE_TOPIC_")

    okta: str = "raw.okta"
    entra: str = "raw.entra"
    ping: str = "raw.ping"
    duo: str = "raw.duo"
    tickets: str = "raw.tickets"
    roster: str = "raw.roster"
    dead_letter: str = "pipeline.dead-letter"
    partitions: int = Field(default=4, ge=1, description="Partitions of topics created here")

    def raw(self, source: Source) -> str:
        return str(getattr(self, source.value))

    def inputs(self, read: list[str] | None = None) -> list[str]:
        """The topics the pipeline reads: every raw source's and the roster, or those of
        `read` (source names and `roster`)."""
        names = [*(source.value for source in Source), "roster"]
        return [str(getattr(self, name)) for name in names if read is None or name in read]

    def source_of(self) -> dict[str, Source | None]:
        """Topic name -> the source whose parser reads it (None: the roster)."""
        return {self.raw(source): source for source in Source} | {self.roster: None}


class Kafka(BaseSettings):
    """How to reach Kafka. Unset bootstrap: the CLI starts the embedded broker."""

    model_config = _config("PIPELINE_KAFKA_")

    bootstrap: str | None = Field(default=None, description="host:port[,host:port…]")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    connect_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to reach Kafka at start before giving up"
    )
    session_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds before a silent worker's partitions go to the others",
    )

    @model_validator(mode="after")
    def _complete(self) -> Self:
        """SASL needs a mechanism and both credentials; certificates need TLS. Half a
        configuration would otherwise fail later, at the broker, with a vaguer error."""
        sasl = {
            "PIPELINE_KAFKA_SASL_MECHANISM": self.sasl_mechanism,
            "PIPELINE_KAFKA_SASL_USERNAME": self.sasl_username,
            "PIPELINE_KAFKA_SASL_PASSWORD": self.sasl_password,
        }
        protocol = f"PIPELINE_KAFKA_SECURITY_PROTOCOL={self.security_protocol}"
        if self.security_protocol.startswith("SASL"):
            if missing := [name for name, value in sasl.items() if value is None]:
                raise ValueError(f"{protocol} needs {', '.join(missing)}")
        elif set_anyway := [name for name, value in sasl.items() if value is not None]:
            raise ValueError(f"{', '.join(set_anyway)} set, but {protocol} uses no SASL")
        tls = ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
        files = [name for name in tls if getattr(self, name) is not None]
        if files and not self.security_protocol.endswith("SSL"):
            names = ", ".join(f"PIPELINE_KAFKA_{name.upper()}" for name in files)
            raise ValueError(f"{names} set, but {protocol} uses no TLS")
        return self

    def client_options(self) -> dict[str, object]:
        """Security options in kafka-python / aiokafka spelling."""
        options: dict[str, object] = {"security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if (path := getattr(self, name)) is not None:
                options[name] = str(path)
        return options

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.security_protocol.endswith("SSL"):
            return None
        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        if self.ssl_certfile:
            context.load_cert_chain(
                str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None
            )
        return context

    def aiokafka_options(self) -> dict[str, object]:
        """Security options in aiokafka spelling (an SSL context instead of file paths)."""
        options = {
            key: value for key, value in self.client_options().items() if not key.startswith("ssl_")
        }
        if (context := self.ssl_context()) is not None:
            options["ssl_context"] = context
        return options


class Grafana(BaseSettings):
    """The Grafana to push to, and how its ClickHouse datasource reaches the warehouse.
    The provisioning files read the same variables from Grafana's own environment."""

    model_config = _config("PIPELINE_GRAFANA_")

    url: str = Field(default="http://localhost:3000", description="Grafana's base URL")
    token: SecretStr | None = Field(
        default=None, description="service account token (Editor, or Admin for datasources)"
    )
    clickhouse_host: str = Field(default="localhost", description="as Grafana reaches it")
    clickhouse_port: int = 8123
    clickhouse_protocol: Literal["http", "native"] = "http"
    clickhouse_secure: bool = False
    clickhouse_database: str = "default"
    clickhouse_user: str = Field(default="grafana_reader", description="a read-only user")
    clickhouse_password: SecretStr = SecretStr("")


class Metrics(BaseSettings):
    """Where a long-running process (worker, receiver, collector) serves `/metrics`,
    `/healthz` and `/readyz`: on a port of its own, never the receiver's public one."""

    model_config = _config("PIPELINE_METRICS_")

    host: str = Field(default="127.0.0.1", description="Address to listen on (0.0.0.0: all)")
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Port to listen on; unset: not served"
    )


class Settings(BaseSettings):
    model_config = _config("PIPELINE_")

    plan_file: Path | None = Field(
        default=None, description="Rollout plan YAML; the shipped example when unset"
    )
    ticket_rules: Path | None = Field(
        default=None, description="Ticket scenario rules YAML; the shipped rules when unset"
    )
    clickhouse_dsn: SecretStr = Field(
        default=SecretStr(f"chdb://{EMBEDDED_WAREHOUSE}"),
        description="http(s)://user:pass@host:8123/db, or chdb:///path (embedded)",
    )
    clickhouse_cluster: str | None = Field(
        default=None,
        description="A ClickHouse cluster (remote_servers) to lay the migrations out on: "
        "Replicated tables ON CLUSTER, Distributed tables for the written ones",
    )
    app_id: str = Field(
        default="passwordless-pipeline", description="Faust app id: the consumer group"
    )
    state_dir: Path = Field(
        default=REPO_ROOT / "var" / "faust", description="Faust's data directory (table state)"
    )
    batch_size: int = Field(
        default=10_000,
        ge=1,
        description="Most messages per batch and events per ClickHouse write (larger parts)",
    )
    batch_seconds: float = Field(default=1.0, gt=0, description="Longest wait to fill a batch")
    watchdog_seconds: float = Field(
        default=120.0,
        ge=0,
        description="Seconds a worker's stream may deliver nothing while Kafka holds messages "
        "at its position before the worker stops itself (exit 70) to be restarted; 0: never",
    )
    max_event_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest raw event; a larger one is a dead letter"
    )
    max_message_bytes: int = Field(
        default=16_777_216,
        ge=1024,
        description="Largest Kafka message split into its records; a larger one is one dead letter",
    )
    oldest_event: datetime = Field(
        default=datetime(2000, 1, 1, tzinfo=UTC), description="Earlier event times: dead letters"
    )
    max_future_seconds: float = Field(
        default=86_400, ge=0, description="How far ahead of the clock an event time may be"
    )

    retention_days: int | None = Field(
        default=None, ge=1, description="Delete sign-ins, tickets, dead letters older than this"
    )
    pseudonymize_key: SecretStr | None = Field(
        default=None, description="HMAC key: store pseudonyms instead of user identifiers"
    )
    pseudonymize_key_file: Path | None = Field(
        default=None, description="A file holding that key (a mounted secret)"
    )

    def pseudonymization_key(self) -> bytes | None:
        """The key's bytes, from the variable or the file; None: identifiers are stored."""
        if self.pseudonymize_key is not None:
            return self.pseudonymize_key.get_secret_value().encode()
        if self.pseudonymize_key_file is not None:
            return self.pseudonymize_key_file.read_bytes().strip()
        return None

    @field_validator("oldest_event")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """A date or time without a zone is UTC."""
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    duo_fronted_apps: list[str] = Field(
        default=["Okta", "Microsoft Entra ID", "Azure AD", "PingOne", "PingFederate"],
        description="Duo application names that are another IdP's integration",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    read_sources: Annotated[list[str], NoDecode] = Field(
        default=[*(source.value for source in Source), "roster"],
        description="The sources whose topics this worker reads, comma-separated (e.g. "
        "`entra` for a worker on Event Hubs' Kafka endpoint, whose namespace holds no other)",
    )

    @field_validator("read_sources", mode="before")
    @classmethod
    def _source_names(cls, value: object) -> object:
        if isinstance(value, str):
            value = [name.strip() for name in value.split(",") if name.strip()]
        known = [*(source.value for source in Source), "roster"]
        if isinstance(value, list) and (unknown := [v for v in value if v not in known]):
            raise ValueError(f"unknown source {', '.join(map(str, unknown))}; known: {known}")
        if isinstance(value, list) and not value:
            raise ValueError("name at least one source")
        return value

    def input_topics(self) -> list[str]:
        """The topics this worker reads (PIPELINE_READ_SOURCES)."""
        return self.topics.inputs(self.read_sources)

    topics: Topics = Field(default_factory=Topics)
    kafka: Kafka = Field(default_factory=Kafka)
    grafana: Grafana = Field(default_factory=Grafana)
    metrics: Metrics = Field(default_factory=Metrics)


def configuration_problems(error: ValidationError, *more: type[BaseSettings]) -> str:
    """A settings error in the variables' own names, without the values (which may be
    secret); `more`: settings models of other commands."""
    prefixes = {
        model.__name__: str(model.model_config.get("env_prefix", ""))
        for model in (Settings, Topics, Kafka, Grafana, Metrics, *more)
    }
    prefix = prefixes.get(error.title, "PIPELINE_")
    return "; ".join(
        (f"{prefix}{str(problem['loc'][0]).upper()}: " if problem["loc"] else "")
        + problem["msg"].removeprefix("Value error, ")
        for problem in error.errors(include_input=False, include_url=False)
    )
