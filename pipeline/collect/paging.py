"""Paging: one loop that walks a vendor's pages, and the ways vendors say where the next page
is. A vendor module picks a style and its JSON paths; none walks pages itself.

Styles:
- `LinkHeader`: an RFC 8288 `Link: <url>; rel="next"` header (Okta's System Log and users,
  ServiceNow's Table API);
- `BodyLink`: a URL inside the body (Graph's `@odata.nextLink`, PingOne's `_links.next.href`);
- `TokenParam`: a token in the body sent back as a parameter (Jira's `nextPageToken`; Duo's
  `metadata.next_offset`, a list joined by a comma);
- `OffsetParam`: an index sent as a parameter, the next page starting after this one's
  records, up to the body's count of the whole result set (Jira Data Center's
  `startAt`/`total`).

An offset walk over a result set ordered by update time can skip a record: one updated during
the walk leaves the set (or moves to its end), and every record after it moves up one place,
the one at the next page's start onto the page already read. `restarting` walks such a set
and starts again from the caller's watermark when the set's count shrank.

Each record goes on as the vendor wrote it: the page's bytes are cut into its records without
decoding and encoding them again (msgspec `Raw`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import httpx
import msgspec

from pipeline.collect.http import CollectError, GaveUp, VendorClient

_object = msgspec.json.Decoder(dict[str, msgspec.Raw])
_array = msgspec.json.Decoder(list[msgspec.Raw] | None)
_any = msgspec.json.Decoder()


class PageShapeError(CollectError):
    """A 2xx page that is not shaped as the vendor documents it."""


@dataclass(frozen=True)
class Call:
    """One page's request: a URL (absolute, or relative to the client's base URL) and its
    query parameters."""

    url: str
    params: Mapping[str, Any] | None = None


class Body:
    """A JSON page, opened only along the paths asked for."""

    def __init__(self, vendor: str, content: bytes) -> None:
        self._vendor = vendor
        self._content = content
        self._objects: dict[tuple[str, ...], dict[str, msgspec.Raw]] = {}
        self._records: dict[tuple[str, ...], list[bytes]] = {}

    def raw(self, path: tuple[str, ...]) -> msgspec.Raw | None:
        """The undecoded value at `path` (keys of nested objects); None when absent."""
        value: msgspec.Raw | None = msgspec.Raw(self._content)
        for depth, key in enumerate(path):
            prefix = path[:depth]
            if prefix not in self._objects:
                try:
                    self._objects[prefix] = _object.decode(value) if value is not None else {}
                except msgspec.DecodeError:
                    if value is None or bytes(value).strip() != b"null":
                        where = ".".join(prefix) or "the body"
                        raise self._shape(f"{where} is not an object") from None
                    self._objects[prefix] = {}
            value = self._objects[prefix].get(key)
            if value is None:
                return None
        return value

    def records(self, path: tuple[str, ...]) -> list[bytes]:
        """The array at `path` (the body itself for `()`), each item's bytes as sent."""
        if path in self._records:  # asked again by a paging style that counts them
            return self._records[path]
        value = self.raw(path)
        if value is None:
            return []
        try:
            items = _array.decode(value)
        except msgspec.DecodeError:
            raise self._shape(f"{'.'.join(path) or 'the body'} is not an array") from None
        self._records[path] = [bytes(item) for item in items or ()]
        return self._records[path]

    def value(self, path: tuple[str, ...]) -> Any:
        value = self.raw(path)
        return None if value is None else _any.decode(value)

    def _shape(self, what: str) -> PageShapeError:
        return PageShapeError(f"{self._vendor}: a page is not what the API documents: {what}")


@dataclass(frozen=True)
class Fetched:
    """One page: the request that got it, its answer, its records, and the next page's
    request (None: this is the last page; after a stall, the same request, which the walk
    does not send again)."""

    call: Call
    response: httpx.Response
    body: Body
    records: list[bytes]
    next: Call | None


class Paging(Protocol):
    """Where a page's records are, and which request gets the page after it."""

    records_path: tuple[str, ...]
    # An empty page ends the walk even when it names a next page (Jira's token chains).
    empty_ends: bool

    def next(self, call: Call, response: httpx.Response, body: Body) -> Call | None: ...


@dataclass(frozen=True)
class LinkHeader:
    records_path: tuple[str, ...] = ()
    empty_ends: bool = False

    def next(self, call: Call, response: httpx.Response, body: Body) -> Call | None:
        # httpx joins repeated Link headers (Okta sends self and next as two) before parsing.
        url = response.links.get("next", {}).get("url")
        return Call(url) if url else None


@dataclass(frozen=True)
class BodyLink:
    records_path: tuple[str, ...]
    link_path: tuple[str, ...]
    empty_ends: bool = False

    def next(self, call: Call, response: httpx.Response, body: Body) -> Call | None:
        url = body.value(self.link_path)
        return Call(url) if isinstance(url, str) and url else None


@dataclass(frozen=True)
class TokenParam:
    records_path: tuple[str, ...]
    token_path: tuple[str, ...]
    param: str
    last_path: tuple[str, ...] | None = None  # a boolean that says "this is the last page"
    empty_ends: bool = False

    def next(self, call: Call, response: httpx.Response, body: Body) -> Call | None:
        if self.last_path is not None and body.value(self.last_path) is True:
            return None
        token = body.value(self.token_path)
        if isinstance(token, list):  # Duo's next_offset: ["<ms>", "<txid>"], sent joined
            token = ",".join(str(part) for part in token)
        if token in (None, "", []):
            return None
        return replace(call, params={**(call.params or {}), self.param: str(token)})


@dataclass(frozen=True)
class OffsetParam:
    """The next page starts where this one's records end (`param`, 0 on the first page):
    the step is the records counted, never the size asked for, which the vendor may cap
    below what was asked. There is no next page after an empty one, or once it would start
    at or past the count of the whole result set at `total_path`."""

    records_path: tuple[str, ...]
    param: str
    total_path: tuple[str, ...]
    empty_ends: bool = True

    def next(self, call: Call, response: httpx.Response, body: Body) -> Call | None:
        count = len(body.records(self.records_path))
        if count == 0:
            return None
        following = (_int((call.params or {}).get(self.param)) or 0) + count
        total = self.total(body)
        if total is not None and following >= total:
            return None
        return replace(call, params={**(call.params or {}), self.param: following})

    def total(self, body: Body) -> int | None:
        """The size of the whole result set, as this page counts it."""
        return _int(body.value(self.total_path))


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return None


def restarting(
    client: VendorClient,
    first: Callable[[], Call],
    paging: Paging,
    count: Callable[[Fetched], int | None],
    pace: str | None = None,
    restarts: int = 10,
) -> Iterator[Fetched]:
    """The pages of an offset walk over a result set ordered by update time, started again
    from `first()` (a request from the caller's watermark as it stands then: the caller has
    taken every page yielded before) when a page's `count` of the set is below the first
    page's: records after the one that left moved up, and this page may start past one. Up
    to `restarts` times; then a last walk from the watermark is not checked (a set that
    keeps changing under it), and a record it skips is read again only once updated again."""
    for _ in range(restarts):
        baseline: int | None = None
        for fetched in pages(client, first(), paging, pace):
            seen = count(fetched)
            if baseline is not None and seen is not None and seen < baseline:
                break  # not yielded: read from the watermark again
            baseline = seen if baseline is None else baseline
            yield fetched
        else:
            return
    yield from pages(client, first(), paging, pace)


def pages(
    client: VendorClient,
    first: Call,
    paging: Paging,
    pace: str | None = None,
    stalled: Literal["end", "wait"] = "end",
) -> Iterator[Fetched]:
    """Every page from `first` on, until one names no next page.

    A stall, an empty page whose next page is the same request again, would be the same
    empty page: with `stalled="end"` the walk ends there (Okta's polling always sends `next`;
    Jira has been seen chaining tokens); with `"wait"` (a walk that must reach its last page,
    such as a bounded Okta query whose events are not persisted yet) the request is sent
    again after a back-off, and after as many stalls as a request has attempts the walk fails.
    """
    call: Call | None = first
    stalls = 0
    while call is not None:
        response = client.get(call.url, call.params, pace)
        body = Body(client.vendor, response.content)
        records = body.records(paging.records_path)
        following = paging.next(call, response, body)
        stall = not records and following == call
        if stall and stalled == "wait":
            stalls += 1
            if stalls >= client.attempts:
                raise GaveUp(
                    f"{client.vendor}: {stalls} empty pages in a row that point to "
                    "themselves; giving up (PIPELINE_COLLECT_ATTEMPTS)"
                )
            client.pause(stalls)
            continue
        stalls = 0
        yield Fetched(call, response, body, records, following)
        if stall or (not records and paging.empty_ends):
            return  # `following` stays the place to resume from
        call = following
