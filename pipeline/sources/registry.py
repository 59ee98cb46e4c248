"""Every source parser by name, and `auto`: telling the source from the event's shape."""

from __future__ import annotations

import logging
import traceback
from collections import Counter
from collections.abc import Callable
from types import ModuleType

from pipeline.model import NormalizedEvent, Source
from pipeline.sources import duo, entra, okta, ping, tickets
from pipeline.sources._common import RawEvent, RejectedEvent, top_level

__all__ = ["PARSERS", "PARSER_FAILURES", "ParserFailure", "RejectedEvent", "detect", "parse"]

log = logging.getLogger("pipeline.sources")

Parser = Callable[[RawEvent], NormalizedEvent]

# Events each parser raised on, by (source, exception type): parser bugs, not bad input.
PARSER_FAILURES: Counter[tuple[str, str]] = Counter()


class ParserFailure(RejectedEvent):
    """A parser raised where it should have rejected: a bug, which costs its one event."""


def guarded(source: Source, parse: Parser) -> Parser:
    """`parse`, with any unexpected exception turned into a rejection of that one event, so
    a parser bug never stops a worker or a CLI run (and, since one agent reads every raw
    topic, every other source with it). Logged once per kind; the reason and the log name
    the exception and where it was raised, never the event's content."""

    def parse_one(raw: RawEvent) -> NormalizedEvent:
        try:
            return parse(raw)
        except RejectedEvent:
            raise
        except Exception as exc:  # the one place a parser bug is contained
            kind = type(exc).__name__
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"
            if not PARSER_FAILURES[(source.value, kind)]:
                log.error(
                    "the %s parser raised %s at %s; each such event becomes a dead letter "
                    "(logged once per kind)",
                    source.value,
                    kind,
                    where,
                )
            PARSER_FAILURES[(source.value, kind)] += 1
            raise ParserFailure(f"the {source.value} parser failed: {kind} at {where}") from None

    return parse_one


_MODULES: tuple[ModuleType, ...] = (okta, entra, ping, duo, tickets)

PARSERS: dict[Source, Parser] = {
    module.SOURCE: guarded(module.SOURCE, module.parse) for module in _MODULES
}


def detect(raw: RawEvent) -> Source:
    """Tell the source of a raw event from its own shape."""
    top = top_level(raw)
    try:
        matches = [module.SOURCE for module in _MODULES if module.recognizes(top)]
    except UnicodeDecodeError:  # a value a recognizer decodes holds bad UTF-8
        raise RejectedEvent("invalid UTF-8 in a string value") from None
    except Exception as exc:  # a recognizer's bug costs this one event, as a parser's does
        raise ParserFailure(f"telling the source failed: {type(exc).__name__}") from None
    if len(matches) != 1:
        found = ", ".join(matches) if matches else "none"
        raise RejectedEvent(f"cannot tell the source from the event's shape (matches: {found})")
    return matches[0]


def parse(source: Source | str, raw: RawEvent) -> NormalizedEvent:
    """Parse one raw event of a known source, or of any source with `auto`."""
    chosen = detect(raw) if source == "auto" else Source(source)
    return PARSERS[chosen](raw)
