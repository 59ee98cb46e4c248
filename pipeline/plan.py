"""The rollout plan: phases on a calendar, their targets, and the apps each phase names."""

from __future__ import annotations

from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_PLAN = "rollout_plan.yaml"

TargetMetric = Literal[
    "enrollment_rate", "active_use_rate", "on_passwordless_rate", "high_risk_active_use_rate"
]


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: TargetMetric
    min: float = Field(ge=0, le=1)


class Phase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    phase: int = Field(ge=1)
    name: str
    weeks: tuple[int, int | None] = Field(description="First and last rollout week; null: open")
    summary: str = ""
    targets: list[Target] = Field(default_factory=list)

    def contains(self, week: int) -> bool:
        first, last = self.weeks
        return first <= week and (last is None or week <= last)


class RolloutPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    start: date = Field(description="Monday of rollout week 1")
    phases: list[Phase]
    pilot_departments: list[str]
    high_risk_apps: list[str]
    legacy_apps: list[str]

    @model_validator(mode="after")
    def _consistent(self) -> RolloutPlan:
        if self.start.isoweekday() != 1:
            raise ValueError(f"start {self.start} is not a Monday")
        expected_first = 1
        for index, phase in enumerate(self.phases):
            first, last = phase.weeks
            if first != expected_first:
                raise ValueError(
                    f"phase {phase.phase} starts in week {first}, not {expected_first}"
                )
            if last is None and index != len(self.phases) - 1:
                raise ValueError(f"only the last phase can be open-ended (phase {phase.phase})")
            if last is not None:
                if last < first:
                    raise ValueError(f"phase {phase.phase} ends before it starts")
                expected_first = last + 1
        return self

    def week_of(self, day: date) -> int:
        """Rollout week number (1-based) of a day; 0 or less before the start."""
        return (day - self.start).days // 7 + 1

    def week_start(self, week: int) -> date:
        return self.start + timedelta(weeks=week - 1)

    def ending_before(self, day: date, weeks: int) -> RolloutPlan:
        """This plan moved so that its first `weeks` weeks end on the Sunday before `day`'s
        ISO week: a rollout simulated on it ends about `day`, with no event after it."""
        monday = day - timedelta(days=day.weekday())
        return self.model_copy(update={"start": monday - timedelta(weeks=weeks)})

    def phase_of_week(self, week: int) -> Phase | None:
        return next((p for p in self.phases if p.contains(week)), None)

    def phase_number(self, week: int) -> int:
        """The phase in force in a rollout week (0 before the rollout starts)."""
        phase = self.phase_of_week(week)
        return phase.phase if phase else 0


def save_plan(plan: RolloutPlan, path: Path) -> None:
    """Write a plan as YAML that load_plan reads back equal."""
    path.write_text(yaml.safe_dump(plan.model_dump(mode="json"), sort_keys=False), "utf-8")


def load_plan(path: Path | str | None = None) -> RolloutPlan:
    """The plan from a YAML file, or the shipped example when no path is given."""
    origin = f"the shipped {DEFAULT_PLAN}" if path is None else str(path)
    try:
        if path is None:
            text = resources.files("pipeline.data").joinpath(DEFAULT_PLAN).read_text("utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        return RolloutPlan.model_validate(yaml.safe_load(text))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"cannot load rollout plan {origin}: {exc}") from exc
