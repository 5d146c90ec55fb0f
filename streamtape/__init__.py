"""streamtape: record, replay, reassemble and diff the SSE streams of OpenAI-compatible APIs."""

from __future__ import annotations

from streamtape.errors import StreamtapeError
from streamtape.exchange import Exchange, Outcome, Read, RecordedRequest

__version__ = "0.1.0"

__all__ = [
    "Exchange",
    "Outcome",
    "Read",
    "RecordedRequest",
    "StreamtapeError",
    "__version__",
]
