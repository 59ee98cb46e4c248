"""`pipeline receive` configuration from the environment (prefix `PIPELINE_RECEIVE_`).

Each secret comes from its variable or from a file (a mounted secret), never both. A route
whose secret is unset is off; with no secret at all the receiver refuses to start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

from pipeline.settings import _config

PREFIX = "PIPELINE_RECEIVE_"


@dataclass(frozen=True)
class Secrets:
    """The secrets' bytes, compared in constant time; None: that route is off."""

    okta: bytes | None
    ping: bytes | None
    token: bytes | None


class ReceiveSettings(BaseSettings):
    model_config = _config(PREFIX)

    host: str = Field(default="127.0.0.1", description="Address to listen on (0.0.0.0: all)")
    port: int = Field(default=8088, ge=0, le=65535, description="Port to listen on")
    tls_cert_file: Path | None = Field(
        default=None, description="PEM certificate (chain) to serve HTTPS; unset: plain HTTP"
    )
    tls_key_file: Path | None = Field(
        default=None, description="PEM private key, when not in the certificate file"
    )

    okta_secret: SecretStr | None = Field(
        default=None, description="The Okta Event Hook's authScheme value; unset: /okta is off"
    )
    okta_secret_file: Path | None = Field(default=None, description="A file holding it")
    okta_header: str = Field(
        default="Authorization", description="The header Okta sends it in (authScheme key)"
    )
    ping_secret: SecretStr | None = Field(
        default=None, description="The PingOne webhook's header value; unset: /ping is off"
    )
    ping_secret_file: Path | None = Field(default=None, description="A file holding it")
    ping_header: str = Field(
        default="X-Pipeline-Secret", description="The header PingOne sends it in"
    )
    token: SecretStr | None = Field(
        default=None, description="Bearer token of /ingest/{source}; unset: that route is off"
    )
    token_file: Path | None = Field(default=None, description="A file holding it")

    max_body_bytes: int = Field(
        default=10_485_760, ge=1024, description="Largest request body; a larger one gets 413"
    )
    max_message_bytes: int = Field(
        default=1_000_000,
        ge=1024,
        description="Largest Kafka message produced (Kafka's default limit is 1 MiB); a larger "
        "body is split into JSON arrays of its records",
    )
    produce_timeout: float = Field(
        default=2.5,
        gt=0,
        description="Seconds to wait for Kafka's acknowledgement before answering 503 "
        "(Okta gives up after 3 s)",
    )
    retry_after: int = Field(default=5, ge=0, description="Retry-After seconds sent with a 503")
    status_seconds: float = Field(
        default=60.0, gt=0, description="Seconds between status lines in the log"
    )

    @model_validator(mode="after")
    def _one_source_each(self) -> Self:
        for name in ("okta_secret", "ping_secret", "token"):
            if getattr(self, name) is not None and getattr(self, f"{name}_file") is not None:
                variable = f"{PREFIX}{name.upper()}"
                raise ValueError(f"set {variable} or {variable}_FILE, not both")
        if self.tls_key_file is not None and self.tls_cert_file is None:
            raise ValueError(f"{PREFIX}TLS_KEY_FILE set without {PREFIX}TLS_CERT_FILE")
        return self

    def secrets(self) -> Secrets:
        """Read the secrets (files included). ValueError, naming the variable, when a file
        cannot be read or a secret is empty, or when no route has one."""
        secrets = Secrets(
            okta=self._secret("okta_secret"),
            ping=self._secret("ping_secret"),
            token=self._secret("token"),
        )
        if secrets == Secrets(None, None, None):
            raise ValueError(
                f"no route has a secret: set {PREFIX}OKTA_SECRET, {PREFIX}PING_SECRET or "
                f"{PREFIX}TOKEN (or their _FILE variants)"
            )
        return secrets

    def _secret(self, name: str) -> bytes | None:
        value: SecretStr | None = getattr(self, name)
        path: Path | None = getattr(self, f"{name}_file")
        variable = f"{PREFIX}{name.upper()}"
        if path is not None:
            variable += "_FILE"
            try:
                # A mounted secret often ends in a newline the sender does not send.
                secret = path.read_bytes().strip()
            except OSError as exc:
                raise ValueError(f"{variable}: cannot read {path}: {exc.strerror}") from None
        elif value is not None:
            secret = value.get_secret_value().encode()
        else:
            return None
        if not secret:
            raise ValueError(f"{variable} is empty")
        return secret
