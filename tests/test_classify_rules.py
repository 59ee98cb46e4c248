"""The shared rule: a password anywhere makes an authentication a password one."""

from __future__ import annotations

import pytest

from pipeline.classify import (
    PASSWORDLESS_METHODS,
    is_passwordless,
    is_passwordless_factor,
    primary_method,
)
from pipeline.model import Method

M = Method


@pytest.mark.parametrize(
    ("factors", "passwordless", "primary"),
    [
        ([M.PASSWORD], False, M.PASSWORD),
        ([M.PASSWORD, M.PUSH], False, M.PASSWORD),
        ([M.PASSWORD, M.SECURITY_KEY], False, M.PASSWORD),
        ([M.SECURITY_KEY, M.PASSWORD], False, M.PASSWORD),
        ([M.WINDOWS_HELLO], True, M.WINDOWS_HELLO),
        ([M.PLATFORM_PASSKEY], True, M.PLATFORM_PASSKEY),
        ([M.SYNCED_PASSKEY], True, M.SYNCED_PASSKEY),
        ([M.SECURITY_KEY], True, M.SECURITY_KEY),
        ([M.MOBILE_AUTHENTICATOR], True, M.MOBILE_AUTHENTICATOR),
        ([M.CERTIFICATE], True, M.CERTIFICATE),
        ([M.PUSH], False, M.PUSH),
        ([M.OTP, M.SMS], False, M.OTP),
        ([M.PUSH, M.SECURITY_KEY], True, M.SECURITY_KEY),
        ([M.FEDERATED], False, M.FEDERATED),
        ([M.UNKNOWN], False, M.UNKNOWN),
        ([], False, M.UNKNOWN),
    ],
)
def test_factors_decide(factors: list[Method], passwordless: bool, primary: Method) -> None:
    assert is_passwordless(factors) is passwordless
    assert primary_method(factors) is primary


def test_passwordless_factors_are_the_design_patterns() -> None:
    assert {m.value for m in PASSWORDLESS_METHODS} == {
        "windows_hello",
        "platform_passkey",
        "synced_passkey",
        "security_key",
        "mobile_authenticator",
        "certificate",
    }
    assert not is_passwordless_factor(M.PASSWORD)
    assert not is_passwordless_factor(M.SMS)
