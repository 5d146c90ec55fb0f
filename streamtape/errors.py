"""Every exception streamtape raises on purpose, under one root so callers catch it once.

Every message says what went wrong, where (file, offset, event index, request), and
what to do about it. The tree::

    StreamtapeError
    ├── ConfigError (also ValueError)       an option cannot be understood
    │   ├── MatchConfigError                 match_on= / ignore_fields= / ignore_query=
    │   ├── PacingError                      pacing= / max_gap=
    │   ├── FaultSpecError                   faults= / --fault (shows the grammar)
    │   └── RedactConfigError                redact=
    ├── CassetteError                        a cassette cannot be read or written
    │   ├── CassetteAccessError (also OSError)   the path cannot be opened (a folder, no
    │   │   │                                    permission, a missing folder)
    │   │   └── CassetteNotFoundError (also FileNotFoundError)   replay from a missing file
    │   ├── CassetteCorruptError             bytes that break the format (with offset)
    │   ├── CassetteVersionError             written in a newer format version
    │   └── NotACassetteError                not a cassette at all
    ├── SecretLeakError                      redaction left a credential; nothing written
    ├── NoMatchError                         replay: no recording answers this request
    │   └── ReplayExhaustedError             every recorded answer was already used
    ├── SSEError                             an event stream breaks a hard limit
    ├── AssemblyError                        no stream format fits the bytes
    └── AnalysisError                        diff / stats / export / report cannot run
        ├── TimingToleranceError (ValueError) a --timing-tolerance it cannot read
        └── MissingExtraError                an optional extra (pyarrow...) is absent
"""

from __future__ import annotations


class StreamtapeError(Exception):
    """Root of every error streamtape raises on purpose."""


class ConfigError(StreamtapeError, ValueError):
    """An option passed to streamtape cannot be understood."""


class MatchConfigError(ConfigError):
    """A matching option is invalid."""


class PacingError(ConfigError):
    """A pacing value cannot be understood."""


class FaultSpecError(ConfigError):
    """A fault spec (``cut:token=5``, ``status:429:attempts=2``...) cannot be understood."""


class RedactConfigError(ConfigError):
    """A ``redact=`` value cannot be understood."""


class CassetteError(StreamtapeError):
    """A cassette file cannot be read or written."""


class CassetteAccessError(CassetteError, OSError):
    """The cassette's path cannot be opened as a file: raised before any request is made.

    Also an ``OSError``, so code that caught the builtin error keeps working.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class CassetteNotFoundError(CassetteAccessError, FileNotFoundError):
    """Replay was pointed at a cassette file that does not exist."""


class CassetteCorruptError(CassetteError):
    """The bytes of a cassette are not what the format says they must be."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(
            f"{path}: corrupt cassette at byte {offset}: {reason} "
            f"(`streamtape repair {path}` keeps every intact exchange)"
        )


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
    """No stream format fits the bytes, or an unknown format was asked for."""


class AnalysisError(StreamtapeError):
    """An analysis (diff, stats, export, report) cannot run as asked."""


class TimingToleranceError(AnalysisError, ValueError):
    """A ``--timing-tolerance`` value cannot be understood."""


class MissingExtraError(AnalysisError):
    """An optional dependency (an extra such as ``analysis``) is not installed."""


class ServerConfigError(StreamtapeError, ValueError):
    """A recording proxy or replay server option is invalid (address, upstream, mode, path)."""


class ExposedServerWarning(UserWarning):
    """A server listens on an address other machines can reach, so its recordings are exposed."""
