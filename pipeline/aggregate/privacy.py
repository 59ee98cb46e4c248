"""Pseudonymized storage (PIPELINE_PSEUDONYMIZE_KEY): what is personal never reaches the
warehouse.

A user's login becomes `u_` + the first 32 hex digits of HMAC-SHA256(key, login). The same
login gives the same pseudonym in every source, the roster and the enrollment state, so every
metric and distinct-user count is unchanged, while the warehouse holds no login. Without the
key nobody can tell whose a pseudonym is, nor test a guess. Besides the login, these are left
out: the sign-in's source IP, the ticket's free-text summary, the roster's display name, and a
dead letter's bytes in the warehouse (the dead-letter topic keeps them, under Kafka's ACLs).
"""

from __future__ import annotations

import hashlib
import hmac

from pipeline.model import AuthEvent, EnrollmentEvent, HelpdeskTicket

MIN_KEY_BYTES = 16
# Logins repeat all day; a cache spares the hash. Cleared when it grows past this.
_CACHE_LIMIT = 1_000_000


class Pseudonymizer:
    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a pseudonymization key needs at least {MIN_KEY_BYTES} bytes")
        self._key = key
        self._cache: dict[str, str] = {}

    def __call__(self, user: str) -> str:
        pseudonym = self._cache.get(user)
        if pseudonym is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            digest = hmac.new(self._key, user.encode(), hashlib.sha256).hexdigest()
            pseudonym = self._cache[user] = "u_" + digest[:32]
        return pseudonym

    def event(
        self, event: AuthEvent | EnrollmentEvent | HelpdeskTicket
    ) -> AuthEvent | EnrollmentEvent | HelpdeskTicket:
        update: dict[str, object] = {"user": self(event.user) if event.user else None}
        if isinstance(event, AuthEvent):
            update["src_ip"] = None
        elif isinstance(event, HelpdeskTicket):
            update["summary"] = ""
        return event.model_copy(update=update)

    def roster_row(self, row: tuple) -> tuple:
        """A roster row (batch.ROSTER_COLUMNS): the login hashed, no display name."""
        user, _display_name, *rest = row
        return (self(user), None, *rest)
