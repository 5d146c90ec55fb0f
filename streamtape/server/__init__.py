"""The recording proxy and the replay server: ASGI apps for clients in any language."""

from __future__ import annotations

from streamtape.server.proxy import RecordingProxy
from streamtape.server.replay import MODES, ReplayServer
from streamtape.server.run import serve

__all__ = ["MODES", "RecordingProxy", "ReplayServer", "serve"]
