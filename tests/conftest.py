"""Services the tests start for themselves: the embedded Kafka-compatible broker (Tansu),
and the simulated rollout the whole-pipeline tests stream through it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
from streaming import USERS, WEEKS

from pipeline.plan import load_plan
from pipeline.runtime.broker import EmbeddedBroker
from pipeline.settings import Settings
from pipeline.simulate.run import simulate

# The suite's rollouts keep the example plan's fixed dates (a seed gives the same bytes), 30
# weeks at most. On a clock before their end (the suite run under faketime) the worker would
# refuse them as events from the future: accept events that far ahead, and no further.
_SIMULATED_END = datetime.combine(load_plan().week_start(WEEKS + 1), time(), UTC)
_AHEAD = (_SIMULATED_END - datetime.now(UTC)).total_seconds()
if _AHEAD > 0 and "PIPELINE_MAX_FUTURE_SECONDS" not in os.environ:
    os.environ["PIPELINE_MAX_FUTURE_SECONDS"] = str(int(_AHEAD + Settings().max_future_seconds))


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with EmbeddedBroker() as broker:
        yield broker.bootstrap


@pytest.fixture
def broker() -> Iterator[str]:
    """A broker of the test's own: topics, offsets and groups start empty."""
    with EmbeddedBroker() as started:
        yield started.bootstrap


@pytest.fixture(scope="module")
def rollout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated rollout (raw files and truth.json) for the whole-pipeline tests."""
    out = tmp_path_factory.mktemp("rollout")
    simulate(users=USERS, weeks=WEEKS, seed=23, out=out)
    return out


# The modules that take longest, first: `make test` runs the tests in two processes
# (pytest-xdist, one module per process at a time), and these mostly wait on the broker.
LONGEST_FIRST = ("test_crashes.py", "test_pipeline.py", "test_grafana.py", "test_simulate.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
