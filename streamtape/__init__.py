"""streamtape: record, replay, reassemble and diff the SSE streams of OpenAI-compatible APIs.

The public API lives here; everything else is an implementation detail that may move.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamtape._version import __version__
from streamtape.core.cassette import (
    Cassette,
    Damage,
    Entry,
    RepairReport,
    TailReport,
    repair,
    write_cassette,
)
from streamtape.core.exchange import Exchange, Outcome, Read, RecordedRequest
from streamtape.core.fault_plan import FaultPlan, Fired
from streamtape.core.fault_spec import Fault
from streamtape.core.match import Matcher
from streamtape.core.pacing import Pacing
from streamtape.core.redact import Redactor
from streamtape.core.sse import SSEEvent, SSEParser, parse_sse
from streamtape.errors import (
    AssemblyError,
    CassetteAccessError,
    CassetteCorruptError,
    CassetteError,
    CassetteNotFoundError,
    CassetteVersionError,
    ConfigError,
    FaultSpecError,
    MatchConfigError,
    NoMatchError,
    NotACassetteError,
    PacingError,
    RedactConfigError,
    ReplayExhaustedError,
    SecretLeakError,
    SSEError,
    StreamtapeError,
)
from streamtape.formats import Assembler, assemble
from streamtape.formats.base import Problem, StreamOutcome
from streamtape.formats.openai_chat.results import ChatCompletion, TextCompletion
from streamtape.transport import (
    AsyncRecordingTransport,
    RecordingTransport,
    ReplayTransport,
)

__all__ = [
    "Assembler",
    "AssemblyError",
    "AsyncRecordingTransport",
    "Cassette",
    "CassetteAccessError",
    "CassetteCorruptError",
    "CassetteError",
    "CassetteNotFoundError",
    "CassetteVersionError",
    "ChatCompletion",
    "ConfigError",
    "Damage",
    "Entry",
    "Exchange",
    "Fault",
    "FaultPlan",
    "FaultSpecError",
    "Fired",
    "MatchConfigError",
    "Matcher",
    "NoMatchError",
    "NotACassetteError",
    "Outcome",
    "Pacing",
    "PacingError",
    "Problem",
    "Read",
    "RecordedRequest",
    "RecordingTransport",
    "RedactConfigError",
    "Redactor",
    "RepairReport",
    "ReplayExhaustedError",
    "ReplayTransport",
    "SSEError",
    "SSEEvent",
    "SSEParser",
    "SecretLeakError",
    "StreamOutcome",
    "StreamtapeError",
    "TailReport",
    "TextCompletion",
    "__version__",
    "assemble",
    "parse_sse",
    "repair",
    "serve",
    "write_cassette",
]

if TYPE_CHECKING:
    from streamtape.server.run import serve


def __getattr__(name: str) -> Any:
    """``serve`` loads the servers (uvicorn, the proxy) only when asked for: imports stay light."""
    if name == "serve":
        from streamtape.server.run import serve

        return serve
    raise AttributeError(f"module 'streamtape' has no attribute {name!r}")
