"""The truth can fail the pipeline: a wrong passwordless rule or a wrong rate formula in the
pipeline makes `weekly_metrics` differ from the simulator's truth.json.

The simulator states the passwordless rule on its own (pipeline/simulate/truth.py) and the
report defines its rates on its own (pipeline/report/weekly.py). Each test here breaks the pipeline
side alone, after the rollout was simulated, fills a fresh embedded warehouse as the worker
would (tests/warehouse_fill.py), and asserts the answer moved away from both the unbroken
pipeline's answer (the mutation reached the code path) and the truth.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from warehouse_fill import fill, migrated, simulation

import pipeline.aggregate.batch
import pipeline.classify
import pipeline.report.weekly
from pipeline.aggregate.signins import SIGN_IN_PART_COLUMNS, SignInPart
from pipeline.model import Method
from pipeline.plan import load_plan
from pipeline.report.weekly import WeekNumbers, fraction, weekly_metrics
from pipeline.sinks.warehouse import Warehouse

USERS, WEEKS, SEED = 100, 30, 13
HAS_PASSWORD = SIGN_IN_PART_COLUMNS.index("has_password")
HAS_PASSWORDLESS_FACTOR = SIGN_IN_PART_COLUMNS.index("has_passwordless_factor")


@dataclass
class Rollout:
    files: Path  # the simulator's raw files and truth.json
    truth: dict[str, Any]
    warehouse: Path  # filled by the unmutated pipeline, closed
    control: dict[str, Any]  # weekly_metrics of that warehouse


@pytest.fixture(scope="module")
def rollout(tmp_path_factory: pytest.TempPathFactory) -> Rollout:
    base = tmp_path_factory.mktemp("mutation")
    files = simulation(base, users=USERS, weeks=WEEKS, seed=SEED)
    truth = json.loads((files / "truth.json").read_text())
    return Rollout(files, truth, base / "control", _filled_metrics(base / "control", files))


def _filled_metrics(path: Path, files: Path) -> dict[str, Any]:
    """weekly_metrics of a fresh embedded warehouse at `path` filled with `files`. The engine
    serves one data directory per process at a time: it is closed again before returning."""
    warehouse = migrated(path)
    try:
        fill(warehouse, files)
        return weekly_metrics(warehouse, load_plan())
    finally:
        warehouse.close()


def _differing(metrics: dict[str, Any], other: dict[str, Any]) -> set[str]:
    """The keys of a week (counts included, as `counts.<key>`) that differ in some week."""
    keys = set()
    for week, week_other in zip(metrics["weeks"], other["weeks"], strict=True):
        for key in week.keys() | week_other.keys():
            if key == "counts":
                keys |= {
                    f"counts.{k}"
                    for k in week["counts"].keys() | week_other["counts"].keys()
                    if week["counts"].get(k) != week_other["counts"].get(k)
                }
            elif week.get(key) != week_other.get(key):
                keys.add(key)
    return keys


def test_the_unmutated_pipeline_equals_the_truth(rollout: Rollout) -> None:
    assert len(rollout.truth["weeks"]) == WEEKS
    assert rollout.control == rollout.truth


# -- a wrong passwordless rule -------------------------------------------------------------


def _rebind(monkeypatch: pytest.MonkeyPatch, name: str, value: object) -> list[str]:
    """Replace pipeline.classify's `name` in that module and in every pipeline module that
    imported it by name (the parsers, the sign-in fold), but never in the simulator: the
    modules' own global is what they look up at call time. The modules it was replaced in."""
    original = getattr(pipeline.classify, name)
    replaced = []
    for module_name, module in sorted(sys.modules.items()):
        if not module_name.startswith("pipeline.") or module_name.startswith("pipeline.simulate"):
            continue
        if getattr(module, name, None) is original:
            monkeypatch.setattr(module, name, value)
            replaced.append(module_name)
    return replaced


def test_a_security_key_taken_for_a_password_factor_fails_the_truth(
    rollout: Rollout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's factor rule forgets that a security-key passkey is passwordless: its
    sign-ins are then not passwordless, its registrations no enrollment."""
    wrong = pipeline.classify.PASSWORDLESS_METHODS - {Method.SECURITY_KEY}
    replaced = _rebind(monkeypatch, "is_passwordless_factor", lambda method: method in wrong)
    replaced += _rebind(monkeypatch, "PASSWORDLESS_METHODS", wrong)
    # where the metrics' factor rule is looked up: the fold (sign-ins) and every IdP parser
    # (enrollment events' passwordless_factor)
    assert {
        "pipeline.aggregate.signins",
        "pipeline.sources.okta",
        "pipeline.sources.entra",
        "pipeline.sources.ping",
        "pipeline.sources.duo",
    } <= set(replaced)

    mutated = _filled_metrics(tmp_path / "wh", rollout.files)

    assert mutated != rollout.control
    assert mutated != rollout.truth
    assert {
        "enrollment_rate",
        "active_use_rate",
        "counts.enrolled_users",
        "counts.passwordless_sign_ins",
    } <= _differing(mutated, rollout.truth)
    last, truth_last = mutated["weeks"][-1], rollout.truth["weeks"][-1]
    assert last["enrollment_rate"] < truth_last["enrollment_rate"]
    assert last["active_use_rate"] < truth_last["active_use_rate"]


def test_password_and_push_taken_for_passwordless_fails_the_truth(
    rollout: Rollout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fold forgets that a password anywhere makes the sign-in a password sign-in, when
    a push follows it. The metrics do not read the parsers' per-event `passwordless`
    (pipeline.classify.is_passwordless): a sign-in is passwordless in the warehouse when none
    of its parts has a password and one has a passwordless factor (SignInPart.row and the
    `sign_ins` view), so that is where the mistake goes."""
    row = SignInPart.row

    def wrong_row(part: SignInPart) -> tuple:
        values = list(row(part))
        if {Method.PASSWORD, Method.PUSH} <= part.factors:
            values[HAS_PASSWORD], values[HAS_PASSWORDLESS_FACTOR] = 0, 1
        return tuple(values)

    monkeypatch.setattr(SignInPart, "row", wrong_row)

    mutated = _filled_metrics(tmp_path / "wh", rollout.files)

    assert mutated != rollout.control
    assert mutated != rollout.truth
    assert {
        "active_use_rate",
        "on_passwordless_rate",
        "counts.passwordless_sign_ins",
    } <= _differing(mutated, rollout.truth)
    first, truth_first = mutated["weeks"][0], rollout.truth["weeks"][0]
    assert first["active_use_rate"] > truth_first["active_use_rate"]
    # the sign-ins themselves, and the enrollments, are as many as before
    assert [w["counts"]["sign_ins"] for w in mutated["weeks"]] == [
        w["counts"]["sign_ins"] for w in rollout.truth["weeks"]
    ]
    assert "enrollment_rate" not in _differing(mutated, rollout.truth)


# -- a wrong rate formula ------------------------------------------------------------------


def _enrollment_of_signed_in(week: WeekNumbers) -> float | None:
    return fraction(week.enrolled_users, week.users_signed_in)  # not the active workforce


def _active_use_of_passwords(passwordless: int, sign_ins: int) -> float | None:
    return fraction(passwordless, sign_ins - passwordless)  # not all sign-ins


def _on_passwordless_of_workforce(week: WeekNumbers) -> float | None:
    return fraction(week.users_on_passwordless, week.active_workforce)  # not users signed in


def _high_risk_of_all(week: WeekNumbers) -> float | None:
    return fraction(week.high_risk_passwordless, sum(week.sign_ins.values()))  # not high-risk


def _tickets_per_100(tickets: int, active_workforce: int) -> float | None:
    return fraction(tickets * 100, active_workforce)  # not per 1,000


RATE_MUTATIONS: dict[str, tuple[str, Callable[..., float | None], set[str]]] = {
    # name: (report.py's helper, its wrong version, keys that must then differ)
    "enrollment over users signed in": (
        "enrollment_rate",
        _enrollment_of_signed_in,
        {"enrollment_rate"},
    ),
    "active use over password sign-ins": (
        "active_use_rate",
        _active_use_of_passwords,
        {"active_use_rate", "active_use_rate_by_source"},
    ),
    "on passwordless over the workforce": (
        "on_passwordless_rate",
        _on_passwordless_of_workforce,
        {"on_passwordless_rate"},
    ),
    "high-risk active use over all sign-ins": (
        "high_risk_active_use_rate",
        _high_risk_of_all,
        {"high_risk_active_use_rate"},
    ),
    "tickets per 100": (
        "ticket_rate_per_1000",
        _tickets_per_100,
        {"ticket_rate_per_1000", "ticket_rate_per_1000_by_scenario"},
    ),
}


@pytest.fixture
def control_warehouse(rollout: Rollout) -> Iterator[Warehouse]:
    """The unmutated pipeline's warehouse, open again (its data is not rewritten)."""
    warehouse = Warehouse(f"chdb://{rollout.warehouse}")
    try:
        yield warehouse
    finally:
        warehouse.close()


@pytest.mark.parametrize("mutation", list(RATE_MUTATIONS))
def test_a_wrong_rate_formula_fails_the_truth(
    mutation: str,
    rollout: Rollout,
    control_warehouse: Warehouse,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    helper, wrong, keys = RATE_MUTATIONS[mutation]
    assert callable(getattr(pipeline.report.weekly, helper))
    assert weekly_metrics(control_warehouse, load_plan()) == rollout.truth  # reopened: the same

    monkeypatch.setattr(pipeline.report.weekly, helper, wrong)
    mutated = weekly_metrics(control_warehouse, load_plan())

    assert mutated != rollout.control
    assert mutated != rollout.truth
    # the mutated formula, and only it, changed: every count is the warehouse's still
    assert _differing(mutated, rollout.truth) == keys
