"""What one marked test asks for: cassette path, mode, pacing, matching, redaction.

Precedence, most specific first: the marker's keywords, the command line, the ini
file, the defaults. The mode is the exception: ``--tape-mode`` on the command line
wins over a marker (so ``--tape-mode=all`` re-records everything), and when ``CI``
is set the mode is ``none`` unless ``--tape-mode`` is given, so CI never records
(and never needs an API key), whatever a marker or the ini file says.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from streamtape.core.fault_plan import FaultPlan
from streamtape.core.pacing import Pacing
from streamtape.core.redact import Redactor
from streamtape.errors import FaultSpecError, StreamtapeError

MODES = ("none", "once", "new_episodes", "all")
"""Record modes, named as in vcrpy: replay only, record if missing, add new, re-record."""

MATCH_KEYS = frozenset({"match_on", "ignore_fields", "ignore_query", "allow_playback_repeats"})
OTHER_KEYS = frozenset(
    {
        "mode",
        "pacing",
        "max_gap",
        "strict",
        "redact",
        "allow_hosts",
        "ignore_hosts",
        "faults",
        "seed",
    }
)
MARKER_KEYS = MATCH_KEYS | OTHER_KEYS

_UNSAFE = re.compile(r"[^\w.\-\[\]=,+]")


class TapeConfigError(StreamtapeError, ValueError):
    """A marker keyword or plugin option is invalid."""


@dataclass(frozen=True)
class TapeSettings:
    """Everything the plugin needs to run one marked test."""

    test: str
    path: Path
    mode: str
    pacing: Pacing
    strict: bool
    redactor: Redactor
    match_options: dict[str, Any] = field(default_factory=dict)
    allow_hosts: tuple[str, ...] = ()
    ignore_hosts: frozenset[str] = frozenset()
    faults: FaultPlan = field(default_factory=FaultPlan)


def _split_hosts(values: Any) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    return tuple(h.strip().lower() for v in values for h in str(v).split(",") if h.strip())


def cassette_path(item: pytest.Item, name: str | None, folder: str) -> Path:
    """``<test dir>/<folder>/<name>.tape``; by default ``<module>/<Class.test[id]>``."""
    base = Path(folder)
    if not base.is_absolute():
        base = item.path.parent / base
    if name is None:
        parts = [n.name for n in item.listchain() if isinstance(n, pytest.Class)]
        stem = _UNSAFE.sub("_", ".".join([*parts, item.name]))
        return base / item.path.stem / f"{stem}.tape"
    return base / (name if name.endswith(".tape") else f"{name}.tape")


def resolve_mode(config: pytest.Config, marker_mode: str | None) -> str:
    given = config.getoption("tape_mode")
    if given is not None:
        return str(given)
    if os.environ.get("CI"):
        return "none"
    mode = marker_mode or str(config.getini("tape_mode") or "none")
    if mode not in MODES:
        raise TapeConfigError(f"tape mode {mode!r} is not one of {', '.join(MODES)}")
    return mode


def _marker_of(item: pytest.Item) -> tuple[str | None, dict[str, Any]]:
    marker = item.get_closest_marker("tape")
    assert marker is not None
    if len(marker.args) > 1 or (marker.args and not isinstance(marker.args[0], str)):
        raise TapeConfigError(
            f"{item.nodeid}: @pytest.mark.tape takes at most one cassette name, got {marker.args!r}"
        )
    unknown = sorted(set(marker.kwargs) - MARKER_KEYS)
    if unknown:
        raise TapeConfigError(
            f"{item.nodeid}: unknown @pytest.mark.tape option(s) {unknown}; "
            f"choose from {sorted(MARKER_KEYS)}"
        )
    return (marker.args[0] if marker.args else None), dict(marker.kwargs)


def settings_for(item: pytest.Item) -> TapeSettings:
    """The settings of a marked test, or TapeConfigError naming what is wrong."""
    config = item.config
    name, kw = _marker_of(item)
    folder = config.getoption("tape_dir") or str(config.getini("tape_dir") or "cassettes")
    pacing_value = kw.get("pacing") or config.getoption("tape_pacing")
    pacing = Pacing.parse(pacing_value or str(config.getini("tape_pacing") or "instant"))
    if kw.get("max_gap") is not None:
        pacing = Pacing(pacing.speed, float(kw["max_gap"]))
    strict = bool(kw.get("strict", config.getoption("tape_strict") or config.getini("tape_strict")))
    allow = (
        *_split_hosts(config.getini("tape_allow_hosts")),
        *_split_hosts(config.getoption("tape_allow_hosts")),
        *_split_hosts(kw.get("allow_hosts")),
    )
    return TapeSettings(
        test=item.nodeid,
        path=cassette_path(item, name, folder),
        mode=resolve_mode(config, kw.get("mode")),
        pacing=pacing,
        strict=strict,
        redactor=Redactor.coerce(kw.get("redact")),
        match_options={k: v for k, v in kw.items() if k in MATCH_KEYS},
        allow_hosts=allow,
        ignore_hosts=frozenset(_split_hosts(kw.get("ignore_hosts"))),
        faults=_faults(item, kw),
    )


def _faults(item: pytest.Item, kw: dict[str, Any]) -> FaultPlan:
    seed = kw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TapeConfigError(
            f"{item.nodeid}: @pytest.mark.tape seed= must be an int, got {seed!r}"
        )
    try:
        return FaultPlan.parse(kw.get("faults"), seed=seed)
    except FaultSpecError as exc:
        raise FaultSpecError(f"{item.nodeid}: {exc}") from None


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("streamtape", "record and replay LLM streams (streamtape)")
    group.addoption(
        "--tape-mode",
        dest="tape_mode",
        choices=MODES,
        default=None,
        help="none: replay only (the default, and forced when CI is set); once: record "
        "cassettes that are missing; new_episodes: replay what is recorded, record the "
        "rest; all: re-record every cassette",
    )
    group.addoption(
        "--tape-dir",
        dest="tape_dir",
        default=None,
        help="folder of cassettes, relative to each test file (default: cassettes)",
    )
    group.addoption(
        "--tape-strict",
        dest="tape_strict",
        action="store_true",
        default=False,
        help="fail a test that leaves recorded exchanges unused (the cassette drifted)",
    )
    group.addoption(
        "--tape-pacing",
        dest="tape_pacing",
        default=None,
        help="replay pacing: instant (default), original, or a speed such as 2x",
    )
    group.addoption(
        "--tape-allow-hosts",
        dest="tape_allow_hosts",
        default=None,
        help="comma-separated hosts (or host:port) a replaying test may still reach",
    )
    parser.addini("tape_mode", "default record mode (overridden by --tape-mode)", default="")
    parser.addini("tape_dir", "folder of cassettes, relative to each test file", default="")
    parser.addini("tape_strict", "fail tests that leave exchanges unused", type="bool")
    parser.addini("tape_pacing", "default replay pacing", default="")
    parser.addini("tape_allow_hosts", "hosts a replaying test may reach", type="linelist")
