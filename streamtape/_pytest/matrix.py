"""``fault_matrix``: one test, run once per fault against one recording.

Each case carries its own ``@pytest.mark.tape(name, faults=[fault])``, so the test body
is the same for all of them and receives the `Fault` it runs under as ``fault``, to
say what its client must do (retry, surface the error, keep the partial answer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import pytest

from streamtape.core.fault_spec import Fault, parse_faults

__all__ = ["STANDARD_FAULTS", "fault_matrix"]

STANDARD_FAULTS = (
    "status:429:attempts=2,retry-after=0.01",
    "status:500:attempts=1",
    "status:503:attempts=1",
    "drop:headers,attempts=1",
    "cut:token=3",
    "cut:token=3,reset",
    "cut:event=1",
    "error-event:event=2",
    "corrupt:event=2",
    "crlf",
    "keepalive",
)
"""What a streaming client meets in production: rate limits, 5xx, a dropped connection,
a stream cut (cleanly or by a reset) mid-answer, an error event, a broken chunk, and
the framing variants of proxies. Stalls depend on the client's timeout: add them."""

F = TypeVar("F", bound=Callable[..., Any])


def fault_matrix(
    cassette: str | None = None,
    faults: Iterable[str | Fault] = STANDARD_FAULTS,
    *,
    extra: Iterable[str | Fault] = (),
    argname: str = "fault",
    **tape_options: Any,
) -> Callable[[F], F]:
    """Parametrize a test over `faults` (+ `extra`), each replayed from `cassette`.

    ``tape_options`` go to every case's ``@pytest.mark.tape`` (``pacing=``, ``seed=``...).
    The cassette is shared by every case (its default name is the test's own name).
    """
    chosen = parse_faults([*faults, *extra])

    def decorate(test: F) -> F:
        name = cassette or test.__name__
        cases = [
            pytest.param(
                fault,
                marks=pytest.mark.tape(name, faults=[fault], **tape_options),
                id=str(fault),
            )
            for fault in chosen
        ]
        marked: F = pytest.mark.parametrize(argname, cases)(test)
        return marked

    return decorate
