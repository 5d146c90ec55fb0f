"""The recordings a replay server answers from: files and folders of cassettes.

Why not one ``Matcher`` over everything: a folder of 10,000 exchanges would have to be
decompressed before the first request. The library starts from the cassette indexes
alone (method, URL and where each record sits) and groups records by the parts of the
key the index knows (method and path). The first request to a group decodes that
group once, keeps only the requests (for matching), and reads the matched record
from disk when it answers (the last thousand or so stay decoded), so memory holds
requests, not every response body.

Matching itself is ``core.match.Matcher``, one per group, with the options of
``ReplayTransport``; a request whose group has no recording gets the nearest
recorded request from the groups that share its path (or method) as its diagnosis.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from streamtape.core.cassette import Cassette, TailReport
from streamtape.core.exchange import Exchange, RecordedRequest
from streamtape.core.match import Matcher
from streamtape.errors import NoMatchError, ServerConfigError

_EXPLAIN_GROUPS = 20
"""How many neighbouring groups a miss without a group of its own is compared with."""

ANSWER_CACHE = 1024
"""Decoded exchanges kept for the next identical request (a test suite replays the same few)."""

GroupKey = tuple[str | None, str | None]


def cassette_files(
    paths: Iterable[str | os.PathLike[str]], *, may_be_missing: Iterable[Path] = ()
) -> list[Path]:
    """The ``.tape`` files named by ``paths``: files as given, folders searched recursively."""
    missing_ok = {Path(p).resolve() for p in may_be_missing}
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files.extend(sorted(path.rglob("*.tape")))
        elif path.is_file():
            files.append(path)
        elif path.resolve() not in missing_ok:
            raise ServerConfigError(f"{path}: no such cassette file or folder")
    return files


@dataclass(frozen=True, eq=False)
class _Slot:
    """Where one recorded exchange lives: a record on disk, or in memory once just recorded."""

    cassette: Cassette | None
    offset: int = 0
    exchange: Exchange | None = None
    status: int = 0

    def load(self) -> Exchange:
        if self.exchange is not None:
            return self.exchange
        assert self.cassette is not None
        return self.cassette.get(self.offset)


@dataclass
class _Group:
    """The recordings that share a method and path, matched once they are first needed."""

    slots: list[_Slot] = field(default_factory=list)
    matcher: Matcher | None = None
    by_stub: dict[int, _Slot] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _stubs(slots: list[_Slot]) -> list[Exchange]:
    """Each slot's exchange without its reads: requests read with one open per cassette."""
    on_disk: dict[Cassette, list[_Slot]] = {}
    for slot in slots:
        if slot.exchange is None and slot.cassette is not None:
            on_disk.setdefault(slot.cassette, []).append(slot)
    requests: dict[_Slot, RecordedRequest] = {}
    for cassette, group in on_disk.items():
        found = cassette.requests_at(slot.offset for slot in group)
        requests.update(zip(group, found, strict=True))
    return [
        msgspec.structs.replace(slot.exchange, reads=[])
        if slot.exchange is not None
        else Exchange(request=requests[slot], status=slot.status)
        for slot in slots
    ]


class Library:
    """Every exchange under ``paths``, matched like ``ReplayTransport`` matches.

    ``match_options`` are ``Matcher``'s (``match_on``, ``ignore_fields``,
    ``ignore_query``, ``key``, ``allow_playback_repeats``). Thread-safe.
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        may_be_missing: Iterable[Path] = (),
        **match_options: Any,
    ) -> None:
        self.match_options = match_options
        self.match_on = Matcher([], **match_options).match_on  # checks the options now
        self.files = cassette_files(paths, may_be_missing=may_be_missing)
        self.tails: list[tuple[Path, TailReport]] = []
        self._groups: dict[GroupKey, _Group] = {}
        self._lock = threading.Lock()
        self._answers: dict[_Slot, Exchange] = {}
        self.count = 0
        for path in self.files:
            cassette = Cassette.open(path)
            for entry in cassette.entries():
                self._group(self.group_key(entry.method, entry.url)).slots.append(
                    _Slot(cassette, entry.offset, status=entry.status)
                )
                self.count += 1
            if cassette.tail is not None:
                self.tails.append((path, cassette.tail))

    def __len__(self) -> int:
        return self.count

    def group_key(self, method: str, url: str) -> GroupKey:
        """The part of a match key that the index knows."""
        return (
            method.upper() if "method" in self.match_on else None,
            (urlsplit(url).path or "/") if "path" in self.match_on else None,
        )

    def _group(self, key: GroupKey) -> _Group:
        with self._lock:
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group()
            return group

    def _matcher(self, group: _Group) -> Matcher:
        """The group's matcher, decoding its records the first time (requests only)."""
        with group.lock:
            if group.matcher is None:
                stubs = _stubs(group.slots)
                for slot, stub in zip(group.slots, stubs, strict=True):
                    group.by_stub[id(stub)] = slot
                group.matcher = Matcher(stubs, **self.match_options)
            return group.matcher

    def ready(self, method: str, url: str) -> bool:
        """Whether matching this request reads no cassette beyond one record (no group load)."""
        group = self._groups.get(self.group_key(method, url))
        return group is not None and group.matcher is not None

    def match(self, request: RecordedRequest) -> Exchange:
        """The recorded exchange that answers ``request`` (already redacted like a recording).

        Raises ``NoMatchError`` naming the nearest recorded request and how it differs.
        """
        group = self._groups.get(self.group_key(request.method, request.url))
        if group is None:
            raise NoMatchError(self._explain_miss(request))
        stub = self._matcher(group).match(
            request.method, request.url, request.headers, request.body
        )
        return self._answer(group.by_stub[id(stub)])

    def _answer(self, slot: _Slot) -> Exchange:
        """The whole exchange of a slot, from the last ``ANSWER_CACHE`` decoded ones if there."""
        with self._lock:
            cached = self._answers.pop(slot, None)
            if cached is not None:
                self._answers[slot] = cached  # now the most recently used
                return cached
        exchange = slot.load()
        with self._lock:
            self._answers[slot] = exchange
            if len(self._answers) > ANSWER_CACHE:
                del self._answers[next(iter(self._answers))]
        return exchange

    def _explain_miss(self, request: RecordedRequest) -> str:
        """The no-match message for a request whose method and path were never recorded."""
        method, path = self.group_key(request.method, request.url)
        with self._lock:
            groups = list(self._groups.items())
        same_path = [g for (m, p), g in groups if p == path]
        same_method = [g for (m, p), g in groups if m == method]
        nearby = same_path or same_method or [g for _, g in groups]
        stubs: list[Exchange] = []
        for group in nearby[:_EXPLAIN_GROUPS]:
            stubs.extend(self._matcher(group).recorded())
        try:
            Matcher(stubs, **self.match_options).match(
                request.method, request.url, request.headers, request.body
            )
        except NoMatchError as exc:
            return str(exc)
        return f"no recorded exchange matches {request.method} {request.url}"

    def add(self, exchange: Exchange, *, used: bool = True) -> None:
        """Learn an exchange recorded while serving (``used``: it already answered a call)."""
        group = self._group(self.group_key(exchange.request.method, exchange.request.url))
        matcher = self._matcher(group)
        with group.lock:
            group.slots.append(_Slot(None, exchange=exchange))
            group.by_stub[id(exchange)] = group.slots[-1]
        matcher.add(exchange, used=used)
        with self._lock:
            self.count += 1

    def requests(self) -> Iterator[RecordedRequest]:
        """Every recorded request (decodes every group not decoded yet)."""
        with self._lock:
            groups = list(self._groups.values())
        for group in groups:
            for stub in self._matcher(group).recorded():
                yield stub.request
