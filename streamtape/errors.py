"""One exception root, so callers can catch everything streamtape raises in one place.

Every message says what went wrong, where (file, offset, event index), and what to do.
"""

from __future__ import annotations


class StreamtapeError(Exception):
    """Root of every error streamtape raises on purpose."""


class CassetteError(StreamtapeError):
    """A cassette file cannot be read or written."""


class CassetteCorruptError(CassetteError):
    """The bytes of a cassette are not what the format says they must be."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(f"{path}: corrupt cassette at byte {offset}: {reason}")


class CassetteVersionError(CassetteError):
    """The cassette was written by a newer streamtape in a format this one cannot read."""

    def __init__(self, path: str, version: int, supported: int) -> None:
        self.path = path
        self.version = version
        self.supported = supported
        super().__init__(
            f"{path}: cassette format version {version} is newer than this streamtape "
            f"reads (up to {supported}); upgrade streamtape to read it"
        )


class NotACassetteError(CassetteError):
    """The file is not a streamtape cassette at all."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        super().__init__(f"{path}: not a streamtape cassette ({reason})")


class SecretLeakError(StreamtapeError):
    """Redaction left something that looks like a credential; nothing was written."""


class NoMatchError(StreamtapeError):
    """A request during replay matches no recorded exchange."""


class ReplayExhaustedError(NoMatchError):
    """Every recorded answer to this request was already replayed."""


class SSEError(StreamtapeError):
    """A server-sent-event stream could not be parsed."""


class AssemblyError(StreamtapeError):
    """Chunks could not be assembled into a completion."""


class ServerConfigError(StreamtapeError, ValueError):
    """A recording proxy or replay server option is invalid (address, upstream, mode, path)."""


class ExposedServerWarning(UserWarning):
    """A server listens on an address other machines can reach, so its recordings are exposed."""
