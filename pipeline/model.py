"""The normalized event model: one canonical record whatever the source.

Aligned with OCSF Authentication (class_uid 3002): `time` is OCSF `time`, `user` is
`user.name`, `outcome` is `status`, `method` / `raw_method` are `auth_factors[].factor_type`
beside the vendor's own string, `session` is `session.uid`, `app` is `service.name`,
`src_ip` is `src_endpoint.ip`, `reason` is `status_detail`, `event_type` is `metadata.event_code`.
The JSON Schemas under `schemas/events/` are generated from these classes (`pipeline schemas`).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

OCSF_AUTHENTICATION_CLASS_UID = 3002


class Source(StrEnum):
    OKTA = "okta"
    ENTRA = "entra"
    PING = "ping"
    DUO = "duo"
    TICKETS = "tickets"


class Kind(StrEnum):
    AUTHENTICATION = "authentication"
    AUTHENTICATION_STEP = "authentication_step"
    ENROLLMENT = "enrollment"
    TICKET = "ticket"
    OTHER = "other"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


class Method(StrEnum):
    PASSWORD = "password"
    WINDOWS_HELLO = "windows_hello"
    PLATFORM_PASSKEY = "platform_passkey"
    SYNCED_PASSKEY = "synced_passkey"
    SECURITY_KEY = "security_key"
    MOBILE_AUTHENTICATOR = "mobile_authenticator"
    CERTIFICATE = "certificate"
    PUSH = "push"
    OTP = "otp"
    SMS = "sms"
    VOICE = "voice"
    EMAIL = "email"
    FEDERATED = "federated"
    UNKNOWN = "unknown"


class Scenario(StrEnum):
    """The helpdesk runbook's fallback scenarios (DESIGN.md)."""

    LOST_DEVICE = "lost_device"
    LOST_SECURITY_KEY = "lost_security_key"
    BIOMETRIC_FAILURE = "biometric_failure"
    UNSUPPORTED_COUNTRY = "unsupported_country"
    KIOSK_DEVICE = "kiosk_device"
    PHISHING_LOCKDOWN = "phishing_lockdown"
    MNA_INTEGRATION = "mna_integration"
    OTHER = "other"


class _Event(BaseModel):
    """Fields every normalized line carries (the `pipeline classify` interface)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Source
    event_id: str = Field(min_length=1, description="The vendor's own id of the raw event")
    time: datetime = Field(description="When the event happened, UTC")
    user: str | None = Field(description="Lower-cased login (UPN / e-mail) of the person")
    kind: Kind
    outcome: Outcome
    method: Method | None = Field(description="Canonical method; null where none applies")
    raw_method: str | None = Field(description="The vendor's own method string")
    passwordless: bool | None = Field(
        description="True/false for authentications and steps, null otherwise"
    )
    session: str | None = Field(description="Id tying the steps of one sign-in together")
    event_type: str = Field(description="The vendor's own event type or category")

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("time must carry a timezone")
        return value


class AuthEvent(_Event):
    """A sign-in, one factor check of a sign-in, or another IdP event (`kind: other`)."""

    kind: Literal[Kind.AUTHENTICATION, Kind.AUTHENTICATION_STEP, Kind.OTHER]
    factors: list[Method] = Field(
        default_factory=list, description="Every factor used, in order (canonical)"
    )
    raw_factors: list[str] = Field(
        default_factory=list, description="Every factor used, in order (vendor strings)"
    )
    interactive: bool = Field(
        default=True, description="False for token refreshes and other non-user sign-ins"
    )
    app: str | None = None
    src_ip: str | None = None
    country: str | None = None
    reason: str | None = Field(default=None, description="The vendor's failure reason")


class EnrollmentEvent(_Event):
    """A factor registered or removed for a user."""

    kind: Literal[Kind.ENROLLMENT] = Kind.ENROLLMENT
    action: Literal["registered", "removed"]
    passwordless_factor: bool = Field(
        description="Whether the factor can sign in without a password"
    )


class HelpdeskTicket(_Event):
    """A helpdesk ticket, classified into a runbook fallback scenario."""

    kind: Literal[Kind.TICKET] = Kind.TICKET
    system: Literal["servicenow", "jira"]
    number: str = Field(description="Human ticket number (INC0012345, HELP-42)")
    scenario: Scenario
    summary: str


class WorkforceUser(BaseModel):
    """One roster row: the denominators of every rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str = Field(min_length=1, description="Lower-cased login, as in the events")
    display_name: str | None = None
    department: str
    country: str = Field(description="ISO 3166-1 alpha-2")
    privileged: bool
    idp: Source | None = Field(default=None, description="The user's home identity provider")
    active_from: date
    terminated_on: date | None = None


NormalizedEvent = AuthEvent | EnrollmentEvent | HelpdeskTicket
EventT = TypeVar("EventT", AuthEvent, EnrollmentEvent)

# Per model: its fields in order, and the set of them (every field is given, so every one is set).
_FIELDS: dict[type[BaseModel], tuple[list[str], set[str]]] = {
    model: (list(model.model_fields), set(model.model_fields))
    for model in (AuthEvent, EnrollmentEvent)
}
_new = object.__new__
_set = object.__setattr__


def parsed_event(model: type[EventT], fields: dict[str, Any]) -> EventT:
    """An event built from values its source parser has already typed (msgspec structs, its
    own tables) and checked (`event_id` non-empty, `time` aware UTC, `user` normalized), so
    without pydantic's validation, which would only repeat that at 2-3 times the cost. What
    `model_construct` does (itself slower than validating here), but `fields` must hold every
    field, defaults too, in the model's order: it becomes `__dict__` as it is, so `json_line`
    gives what validation would."""
    order, names = _FIELDS[model]
    if list(fields) != order:
        raise TypeError(f"{model.__name__} takes every field, in order: {order}")
    event = _new(model)
    _set(event, "__dict__", fields)
    _set(event, "__pydantic_fields_set__", names.copy())
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


_JSON_LINE = orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE


def json_line(event: NormalizedEvent) -> bytes:
    """One NDJSON line of a normalized event: the bytes `model_dump_json` gives, at a
    quarter of its cost (the model is validated on construction, or built by `parsed_event`
    from checked values, so its fields are final)."""
    return orjson.dumps(event.__dict__, option=_JSON_LINE)


SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "auth_event": AuthEvent,
    "enrollment_event": EnrollmentEvent,
    "helpdesk_ticket": HelpdeskTicket,
    "workforce_user": WorkforceUser,
}
