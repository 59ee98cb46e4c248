"""Per-person emitter state shared by the emitters' hot paths.

A person's records repeat the same actor, client and device blocks, and a person signs in
a handful of ways (factors, outcome): both are built once and reused (never mutated).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from pipeline.model import Method
from pipeline.simulate.intents import Person


class Profile(Protocol):
    person: Person
    shapes: list[tuple[tuple[Method, ...], bool, tuple]]


P = TypeVar("P", bound=Profile)

_MAX_SHAPES = 32  # a person signs in a handful of ways


class Profiles(Generic[P]):
    """Profiles by person uid; bounded by the workforce, cleared if a caller ever feeds
    more people than `limit`."""

    def __init__(self, make: Callable[[Person], P], limit: int = 100_000) -> None:
        self._make = make
        self._limit = limit
        self._by_uid: dict[str, P] = {}

    def of(self, person: Person) -> P:
        profile = self._by_uid.get(person.uid)
        if profile is None or (profile.person is not person and profile.person != person):
            if len(self._by_uid) >= self._limit:
                self._by_uid.clear()
            profile = self._by_uid[person.uid] = self._make(person)
        return profile


def shape_of(
    profile: P,
    factors: tuple[Method, ...],
    success: bool,
    build: Callable[[P, tuple[Method, ...], bool], tuple],
) -> tuple:
    """The person's memoized shape of a sign-in with these factors and outcome. A scan (tuple
    == compares the enum members by identity) is cheaper than hashing the enum members."""
    for entry in profile.shapes:
        if entry[0] == factors and entry[1] == success:
            return entry[2]
    shape = build(profile, factors, success)
    if len(profile.shapes) >= _MAX_SHAPES:
        profile.shapes.clear()
    profile.shapes.append((factors, success, shape))
    return shape
