"""The sign-in fold and the batch builder (pure), and the fold's merge in the real engine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from pipeline.aggregate.batch import BatchRules, RawMessage, build_batch
from pipeline.aggregate.signins import SIGN_IN_PART_COLUMNS, SignInFold
from pipeline.model import AuthEvent, Kind, Method, Outcome, Source
from pipeline.settings import Settings
from pipeline.sinks.warehouse import Warehouse

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FRONTED = ["Okta"]


def event(
    source: Source,
    event_id: str,
    kind: Kind,
    factors: tuple[Method, ...] = (),
    *,
    seconds: int = 0,
    outcome: Outcome = Outcome.SUCCESS,
    session: str | None = "s1",
    app: str | None = None,
    interactive: bool = True,
) -> AuthEvent:
    return AuthEvent(
        source=source,
        event_id=event_id,
        time=T0 + timedelta(seconds=seconds),
        user="ana@example.com",
        kind=kind,
        outcome=outcome,
        method=factors[0] if factors else None,
        raw_method=None,
        passwordless=None,
        session=session,
        event_type="test",
        factors=list(factors),
        raw_factors=[f.value for f in factors],
        interactive=interactive,
        app=app,
    )


def folded(*events: AuthEvent) -> dict[str, dict]:
    fold = SignInFold(FRONTED)
    for item in events:
        fold.add(item)
    return {row[1]: dict(zip(SIGN_IN_PART_COLUMNS, row, strict=True)) for row in fold.rows()}


STEP = Kind.AUTHENTICATION_STEP


def test_okta_steps_of_one_session_fold_into_one_sign_in_with_every_factor() -> None:
    rows = folded(
        event(Source.OKTA, "a", Kind.OTHER, seconds=0),
        event(Source.OKTA, "b", STEP, (Method.PASSWORD,), seconds=1),
        event(Source.OKTA, "c", STEP, (Method.PUSH,), seconds=5),
        event(Source.OKTA, "d", Kind.OTHER, seconds=6, app="Workday"),
    )
    assert list(rows) == ["s1"]
    row = rows["s1"]
    assert row["step_ids"] == ["b", "c"]
    assert row["factors"] == ["password", "push"]
    assert (row["has_password"], row["has_passwordless_factor"]) == (1, 0)
    assert row["time"] == T0
    assert row["first_app"] == (T0 + timedelta(seconds=6), "Workday")
    assert row["last_outcome"] == (T0 + timedelta(seconds=5), 0)


def test_a_failed_last_step_or_a_failed_session_record_fails_the_sign_in() -> None:
    failed_step = folded(
        event(Source.PING, "a", STEP, (Method.PASSWORD,), seconds=1),
        event(Source.PING, "b", STEP, (Method.OTP,), seconds=9, outcome=Outcome.FAILURE),
    )["s1"]
    assert failed_step["last_outcome"] == (T0 + timedelta(seconds=9), 1)
    failed_session = folded(
        event(Source.OKTA, "a", STEP, (Method.WINDOWS_HELLO,), seconds=1),
        event(Source.OKTA, "b", Kind.OTHER, seconds=2, outcome=Outcome.FAILURE),
    )["s1"]
    assert failed_session["last_outcome"][1] == 1
    assert failed_session["has_passwordless_factor"] == 1


def test_entra_and_duo_records_are_sign_ins_of_their_own_unless_not_interactive() -> None:
    rows = folded(
        event(Source.ENTRA, "e1", Kind.AUTHENTICATION, (Method.WINDOWS_HELLO,), session="c1"),
        event(Source.ENTRA, "e2", Kind.AUTHENTICATION, (Method.WINDOWS_HELLO,), session="c1"),
        event(Source.ENTRA, "e3", Kind.OTHER, (Method.PASSWORD,), interactive=False),
        event(Source.DUO, "d1", Kind.AUTHENTICATION, (Method.PUSH,), app="VPN"),
    )
    assert sorted(rows) == ["d1", "e1", "e2"]


def test_a_duo_check_in_front_of_another_idp_is_not_a_sign_in() -> None:
    fold = SignInFold(FRONTED)
    duo = event(Source.DUO, "d1", Kind.AUTHENTICATION, (Method.PUSH,), app="okta")
    assert fold.fronted_idp(duo) == "okta"
    fold.add(duo)
    assert fold.rows() == []


def test_bad_messages_become_dead_letters_and_the_rest_of_the_batch_goes_on() -> None:
    topics = Settings().topics
    roster = orjson.dumps(
        {
            "user": "Ana@Example.com",
            "department": "IT",
            "country": "US",
            "privileged": False,
            "active_from": "2025-01-01",
        }
    )
    messages = [
        RawMessage(topics.okta, 0, 7, b"k", b'{"uuid": "x", "published": '),
        RawMessage(topics.entra, 1, 3, None, b"not json at all"),
        RawMessage(topics.duo, 2, 4, None, None),
        RawMessage(topics.roster, 0, 0, None, roster),
        RawMessage(topics.roster, 0, 1, None, b'{"user": "bob"}'),
    ]
    batch = build_batch(messages, BatchRules(topics.source_of(), FRONTED))
    reasons = {dead.message.offset: (dead.source, dead.reason) for dead in batch.dead_letters}
    assert set(reasons) == {7, 3, 4, 1}
    assert reasons[4] == ("duo", "empty message (no value)")
    assert reasons[1][0] == "roster" and "department" in reasons[1][1]
    assert all(reason for _, reason in reasons.values())
    assert [row[0] for row in batch.rows["roster"]] == ["ana@example.com"]
    assert len(batch.rows["dead_letters"]) == 4
    assert batch.received == {"okta": 1, "entra": 1, "duo": 1, "roster": 2}
    # The token names the offset ranges: the same messages give the same token.
    again = build_batch(list(reversed(messages)), BatchRules(topics.source_of(), FRONTED))
    assert again.dedup_token("auth_events") == batch.dedup_token("auth_events")
    assert batch.dedup_token("auth_events") != batch.dedup_token("tickets")


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    with Warehouse(f"chdb://{tmp_path / 'wh'}") as opened:
        opened.migrate()
        yield opened


def test_parts_from_different_batches_merge_into_one_sign_in_counted_once(
    warehouse: Warehouse,
) -> None:
    password = event(Source.OKTA, "a", STEP, (Method.PASSWORD,), seconds=1)
    push = event(Source.OKTA, "b", STEP, (Method.PUSH,), seconds=4)
    start = event(Source.OKTA, "c", Kind.OTHER, seconds=5, app="AWS Console")
    # The steps land in three batches (three workers, or a replay), one of them twice.
    for batch in [(password,), (push, start), (password,), (start,)]:
        fold = SignInFold(FRONTED)
        for item in batch:
            fold.add(item)
        warehouse.insert("sign_in_parts", fold.rows(), SIGN_IN_PART_COLUMNS)
    rows = warehouse.query(
        "SELECT source, sign_in_id, factors, passwordless, success, app, steps FROM sign_ins"
    )
    assert rows == [("okta", "s1", ["password", "push"], False, True, "AWS Console", 2)]
