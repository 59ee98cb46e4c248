"""Classification rules shared by every source: which canonical methods are passwordless,
and how the factors of one authentication decide it.

The vendor-specific mapping (raw method string -> canonical method) lives in each source's
module under `pipeline/sources/`; the rule that decides passwordless lives here, once.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.model import Method

PASSWORDLESS_METHODS: frozenset[Method] = frozenset(
    {
        Method.WINDOWS_HELLO,
        Method.PLATFORM_PASSKEY,
        Method.SYNCED_PASSKEY,
        Method.SECURITY_KEY,
        Method.MOBILE_AUTHENTICATOR,
        Method.CERTIFICATE,
    }
)


def is_passwordless_factor(method: Method) -> bool:
    """A factor that can sign a user in on its own, without a password."""
    return method in PASSWORDLESS_METHODS


def is_passwordless(factors: Iterable[Method]) -> bool:
    """An authentication is passwordless when no factor was a password and at least one
    factor is passwordless-capable. Password + push is password; a push, OTP or SMS alone
    (typically the second factor after a password checked elsewhere) is not passwordless."""
    seen = set(factors)
    return Method.PASSWORD not in seen and not seen.isdisjoint(PASSWORDLESS_METHODS)


def primary_method(factors: Iterable[Method]) -> Method:
    """The method that decides the classification: password if a password was used
    anywhere, else the first passwordless factor, else the first factor, else unknown."""
    ordered = list(factors)
    if Method.PASSWORD in ordered:
        return Method.PASSWORD
    for method in ordered:
        if method in PASSWORDLESS_METHODS:
            return method
    return ordered[0] if ordered else Method.UNKNOWN
