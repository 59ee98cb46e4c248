"""Every source parser by name, and `auto`: telling the source from the event's shape."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from pipeline.model import NormalizedEvent, Source
from pipeline.sources import duo, entra, okta, ping, tickets
from pipeline.sources._common import RawEvent, RejectedEvent, top_level

__all__ = ["PARSERS", "RejectedEvent", "detect", "parse"]

_MODULES: tuple[ModuleType, ...] = (okta, entra, ping, duo, tickets)

PARSERS: dict[Source, Callable[[RawEvent], NormalizedEvent]] = {
    module.SOURCE: module.parse for module in _MODULES
}


def detect(raw: RawEvent) -> Source:
    """Tell the source of a raw event from its own shape."""
    top = top_level(raw)
    matches = [module.SOURCE for module in _MODULES if module.recognizes(top)]
    if len(matches) != 1:
        found = ", ".join(matches) if matches else "none"
        raise RejectedEvent(f"cannot tell the source from the event's shape (matches: {found})")
    return matches[0]


def parse(source: Source | str, raw: RawEvent) -> NormalizedEvent:
    """Parse one raw event of a known source, or of any source with `auto`."""
    chosen = detect(raw) if source == "auto" else Source(source)
    return PARSERS[chosen](raw)
