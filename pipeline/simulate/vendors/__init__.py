"""Vendor emitters: one module per source writes an intent down in that vendor's raw shape.

Each IdP module exports `SUPPORTED_METHODS` (factors it logs in a sign-in), optionally
`ENROLLABLE_METHODS` (factors it logs a registration of), `emit_signin(intent, rng)` and
`emit_enrollment(intent, rng)`; `tickets` exports `emit_ticket(intent, rng)`. Each is the
mirror image of the parser of the same name in `pipeline.sources`.
"""

from __future__ import annotations

import random
from functools import cache
from importlib import import_module
from types import ModuleType

from pipeline.model import Method, Source
from pipeline.simulate.intents import EnrollmentIntent, SignInIntent, TicketIntent
from pipeline.simulate.truth import PASSWORDLESS_FACTORS

SECOND_FACTORS = frozenset({Method.PUSH, Method.OTP, Method.SMS, Method.VOICE})


@cache
def _module(source: Source) -> ModuleType:
    return import_module(f"{__name__}.{source.value}")


def passwordless_choices(source: Source) -> frozenset[Method]:
    """Passwordless factors the vendor logs both the registration and the use of."""
    module = _module(source)
    enrollable = getattr(module, "ENROLLABLE_METHODS", module.SUPPORTED_METHODS)
    return frozenset(module.SUPPORTED_METHODS) & enrollable & PASSWORDLESS_FACTORS


def mfa_choices(source: Source) -> frozenset[Method]:
    """Second factors the vendor logs after a password."""
    return frozenset(_module(source).SUPPORTED_METHODS) & SECOND_FACTORS


def emit_signin(source: Source, intent: SignInIntent, rng: random.Random) -> list[dict]:
    return _module(source).emit_signin(intent, rng)


def emit_enrollment(source: Source, intent: EnrollmentIntent, rng: random.Random) -> list[dict]:
    return _module(source).emit_enrollment(intent, rng)


def emit_ticket(intent: TicketIntent, rng: random.Random) -> dict:
    return _module(Source.TICKETS).emit_ticket(intent, rng)
