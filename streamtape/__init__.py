"""streamtape: record, replay, reassemble and diff the SSE streams of OpenAI-compatible APIs.

The public API lives here; everything else is an implementation detail that may move.
"""

from __future__ import annotations

from streamtape.core.cassette import Cassette, Entry, TailReport, write_cassette
from streamtape.core.exchange import Exchange, Outcome, Read, RecordedRequest
from streamtape.core.match import Matcher
from streamtape.core.pacing import Pacing
from streamtape.core.redact import Redactor
from streamtape.core.sse import SSEEvent, SSEParser, parse_sse
from streamtape.errors import (
    AssemblyError,
    CassetteCorruptError,
    CassetteError,
    CassetteVersionError,
    NoMatchError,
    NotACassetteError,
    ReplayExhaustedError,
    SecretLeakError,
    SSEError,
    StreamtapeError,
)
from streamtape.formats.base import Problem, StreamOutcome
from streamtape.formats.openai_chat.assembler import Assembler, assemble
from streamtape.formats.openai_chat.results import ChatCompletion, TextCompletion
from streamtape.server.run import serve
from streamtape.transport import (
    AsyncRecordingTransport,
    RecordingTransport,
    ReplayTransport,
)

__version__ = "0.1.0"

__all__ = [
    "Assembler",
    "AssemblyError",
    "AsyncRecordingTransport",
    "Cassette",
    "CassetteCorruptError",
    "CassetteError",
    "CassetteVersionError",
    "ChatCompletion",
    "Entry",
    "Exchange",
    "Matcher",
    "NoMatchError",
    "NotACassetteError",
    "Outcome",
    "Pacing",
    "Problem",
    "Read",
    "RecordedRequest",
    "RecordingTransport",
    "Redactor",
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
    "serve",
    "write_cassette",
]
