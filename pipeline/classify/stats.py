"""Counts of what a classification run saw: events by source and kind, rejects, and the
vendor method strings no mapping knows yet (so someone adds the mapping)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pipeline.model import Method, NormalizedEvent


@dataclass
class ClassifyStats:
    events: Counter[tuple[str, str]] = field(default_factory=Counter)
    unknown_methods: Counter[tuple[str, str]] = field(default_factory=Counter)
    rejected: int = 0

    def observe(self, event: NormalizedEvent) -> None:
        self.events[event.source.value, event.kind.value] += 1
        if event.method is Method.UNKNOWN:
            self.unknown_methods[event.source.value, event.raw_method or ""] += 1

    def reject(self) -> None:
        self.rejected += 1

    def summary(self) -> str:
        total = sum(self.events.values())
        parts = [f"{total} classified, {self.rejected} rejected"]
        if self.events:
            by_kind = ", ".join(f"{s}/{k} {n}" for (s, k), n in sorted(self.events.items()))
            parts.append(f"by source/kind: {by_kind}")
        if self.unknown_methods:
            unknown = ", ".join(
                f"{s} {raw!r} x{n}" for (s, raw), n in self.unknown_methods.most_common()
            )
            parts.append(f"unknown methods: {unknown}")
        return "; ".join(parts)
