"""httpx and httpx2 transports that record to and replay from cassettes."""

from __future__ import annotations

from streamtape.transport.recording import AsyncRecordingTransport, RecordingTransport
from streamtape.transport.replay import ReplayTransport

__all__ = ["AsyncRecordingTransport", "RecordingTransport", "ReplayTransport"]
