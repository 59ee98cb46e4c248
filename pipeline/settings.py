"""Configuration from the environment (prefix `PIPELINE_`), with the embedded defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.model import Source


class Topics(BaseSettings):
    """Kafka topic names: one raw topic per source, plus the roster and the dead letters."""

    model_config = SettingsConfigDict(env_prefix="PIPELINE_TOPIC_", extra="ignore")

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

    def inputs(self) -> list[str]:
        """Every topic the pipeline reads: the raw sources and the roster."""
        return [self.raw(source) for source in Source] + [self.roster]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIPELINE_", extra="ignore")

    plan_file: Path | None = Field(
        default=None, description="Rollout plan YAML; the shipped example when unset"
    )
    ticket_rules: Path | None = Field(
        default=None, description="Ticket scenario rules YAML; the shipped rules when unset"
    )
    topics: Topics = Field(default_factory=Topics)
