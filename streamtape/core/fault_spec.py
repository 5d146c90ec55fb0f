"""The one spelling of a replay fault: text specs and the `Fault` objects they parse to.

``ReplayTransport(faults=...)``, the pytest marker and ``streamtape serve --fault``
all take these, so a fault reads the same in a test, on a command line and in a
failure message (``str(fault)`` is its canonical spec). Events count from 0
(``cut:event=3`` keeps events 0-2), tokens from 1 (``cut:token=5`` keeps five).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from streamtape.errors import FaultSpecError

__all__ = ["GRAMMAR", "KINDS", "Fault", "parse_fault", "parse_faults"]

GRAMMAR = (
    "cut:event=K | cut:token=N | cut:byte=B (add ,reset) | stall:SECONDS:event=K | "
    "slow:FACTOR:events=A-B | status:CODE[:attempts=M|exchange=K][,retry-after=S] | "
    "corrupt:event=K[,truncate] | error-event:event=K | drop:headers | crlf | keepalive; "
    "any fault also takes ,exchange=K or ,attempts=M"
)
"""What a bad spec's error shows."""

KINDS = ("cut", "stall", "slow", "status", "corrupt", "error-event", "drop", "crlf", "keepalive")

_INT = re.compile(r"^\d+$")
_RANGE = re.compile(r"^(\d+)-(\d+)$")
_FLAGS = frozenset({"reset", "truncate"})
_KEYS = frozenset({"event", "token", "byte", "events", "exchange", "attempts", "retry-after"})
_NEEDS_VALUE = {"stall": "SECONDS", "slow": "FACTOR", "status": "CODE", "drop": "headers"}


@dataclass(frozen=True)
class Fault:
    """One fault: what it does, where in the stream, and which attempts it hits.

    ``exchange`` (the k-th request the replay answers, from 0) or ``attempts`` (the
    first m attempts at each distinct request) select the attempts; neither means all.
    """

    kind: str
    event: int | None = None
    token: int | None = None
    byte: int | None = None
    events: tuple[int, int] | None = None
    seconds: float = 0.0
    factor: float = 1.0
    status: int = 0
    retry_after: float | None = None
    reset: bool = False
    truncate: bool = False
    exchange: int | None = None
    attempts: int | None = None

    def hits(self, exchange: int, attempt: int) -> bool:
        """Whether this fault acts on answer number `exchange`, attempt `attempt` (from 0)."""
        if self.exchange is not None and exchange != self.exchange:
            return False
        return self.attempts is None or attempt < self.attempts

    @property
    def preempts(self) -> bool:
        """Whether the fault answers instead of the recording (which stays unused)."""
        return self.kind in ("status", "drop")

    def __str__(self) -> str:
        return _spell(self)


def _num(x: float) -> str:
    """The shortest spelling that parses back to exactly `x`."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _spell(f: Fault) -> str:
    head: list[str] = [f.kind]
    if f.kind == "stall":
        head.append(_num(f.seconds))
    elif f.kind == "slow":
        head.append(_num(f.factor))
    elif f.kind == "status":
        head.append(str(f.status))
    elif f.kind == "drop":
        head.append("headers")
    opts: list[str] = []
    for key in ("event", "token", "byte"):
        value = getattr(f, key)
        if value is not None:
            opts.append(f"{key}={value}")
    if f.events is not None:
        opts.append(f"events={f.events[0]}-{f.events[1]}")
    if f.exchange is not None:
        opts.append(f"exchange={f.exchange}")
    if f.attempts is not None:
        opts.append(f"attempts={f.attempts}")
    if f.retry_after is not None:
        opts.append(f"retry-after={_num(f.retry_after)}")
    opts += [flag for flag in ("reset", "truncate") if getattr(f, flag)]
    return ":".join([*head, ",".join(opts)] if opts else head)


def _bad(spec: object, why: str) -> FaultSpecError:
    return FaultSpecError(f"bad fault spec {spec!r}: {why}; expected {GRAMMAR}")


def _number(spec: str, text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(spec, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise _bad(spec, f"{what} must be a finite number >= 0, got {text!r}")
    return value


def _options(spec: str, text: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        if item in _FLAGS:
            found[item] = True
            continue
        key, eq, value = item.partition("=")
        if not eq or key not in _KEYS:
            raise _bad(spec, f"unknown option {item!r}")
        if key in found:
            raise _bad(spec, f"option {key!r} given twice")
        if key == "events":
            m = _RANGE.match(value)
            if m is None or int(m.group(1)) > int(m.group(2)):
                raise _bad(spec, f"events={value!r} is not a range A-B with A <= B")
            found[key] = (int(m.group(1)), int(m.group(2)))
        elif key == "retry-after":
            found[key] = _number(spec, value, "retry-after")
        elif _INT.match(value):
            found[key] = int(value)
        else:
            raise _bad(spec, f"{key}={value!r} is not a whole number >= 0")
    return found


def _check(spec: str, fault: Fault) -> Fault:
    kind = fault.kind
    where = [k for k in ("event", "token", "byte") if getattr(fault, k) is not None]
    needs = {
        "cut": len(where) == 1,
        "stall": where == ["event"],
        "corrupt": where == ["event"],
        "error-event": where == ["event"],
        "slow": fault.events is not None and not where,
    }
    if kind in needs and not needs[kind]:
        what = "one of event=/token=/byte=" if kind == "cut" else "its position"
        raise _bad(spec, f"{kind} needs {what}")
    if kind not in needs and (where or fault.events is not None):
        raise _bad(spec, f"{kind} takes no stream position")
    if fault.reset and kind != "cut":
        raise _bad(spec, "only cut takes ,reset")
    if fault.truncate and kind != "corrupt":
        raise _bad(spec, "only corrupt takes ,truncate")
    if fault.retry_after is not None and kind != "status":
        raise _bad(spec, "only status takes retry-after=")
    if fault.token == 0:
        raise _bad(spec, "tokens count from 1")
    if kind == "status" and not 100 <= fault.status <= 599:
        raise _bad(spec, f"status {fault.status} is not an HTTP status code")
    if fault.exchange is not None and fault.attempts is not None:
        raise _bad(spec, "give exchange= or attempts=, not both")
    return fault


def _head(text: str) -> tuple[str, str]:
    """The part before the first ':' or ',', and what follows that separator."""
    cut = min((i for i in (text.find(":"), text.find(",")) if i >= 0), default=len(text))
    return text[:cut].strip(), text[cut + 1 :]


def parse_fault(spec: str | Fault) -> Fault:
    """One spec (or a `Fault`, returned as is) as a `Fault`; `FaultSpecError` if malformed."""
    if isinstance(spec, Fault):
        return spec
    if not isinstance(spec, str):
        raise _bad(spec, "a fault is a text spec or a streamtape Fault")
    kind, rest = _head(spec.strip())
    kind = kind.lower()
    if kind not in KINDS:
        raise _bad(spec, f"unknown fault {kind!r}")
    value: str | None = None
    if kind in _NEEDS_VALUE:
        value, rest = _head(rest)
        if not value or "=" in value:
            raise _bad(spec, f"{kind} needs {_NEEDS_VALUE[kind]} after {kind}:")
    if ":" in rest:
        raise _bad(spec, "too many ':' parts")
    opts = _options(spec, rest)
    fields: dict[str, object] = {"kind": kind, **{k.replace("-", "_"): v for k, v in opts.items()}}
    if kind == "stall":
        fields["seconds"] = _number(spec, value or "", "SECONDS")
    elif kind == "slow":
        fields["factor"] = _number(spec, value or "", "FACTOR")
    elif kind == "status":
        if not _INT.match(value or ""):
            raise _bad(spec, f"status {value!r} is not a whole number")
        fields["status"] = int(value or 0)
    elif kind == "drop" and value != "headers":
        raise _bad(spec, "the one drop is drop:headers")
    return _check(spec, Fault(**fields))  # type: ignore[arg-type]


def parse_faults(specs: str | Fault | Iterable[str | Fault] | None) -> tuple[Fault, ...]:
    """Specs as given to ``faults=``: one spec, a `Fault`, a list of them, or None."""
    if specs is None:
        return ()
    if isinstance(specs, (str, Fault)):
        return (parse_fault(specs),)
    return tuple(parse_fault(spec) for spec in specs)
