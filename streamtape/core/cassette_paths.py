"""Checking a cassette path up front, so a typo or a read-only folder fails at once.

A recorder learns that it cannot write only when the first exchange ends, after the
whole stream was delivered; a replayer pointed at a misspelt name would see an empty
cassette and blame the request. Both transports call these when they are built, and
every builtin ``OSError`` about the path becomes a ``CassetteAccessError`` that names it.
"""

from __future__ import annotations

import difflib
import errno
import os
import pathlib

from streamtape.errors import CassetteAccessError, CassetteNotFoundError

_REASONS = {
    errno.EISDIR: "is a folder, not a cassette file",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOENT: "the folder does not exist",
}


def access_error(path: str | os.PathLike[str], doing: str, exc: OSError) -> CassetteAccessError:
    """Our error for a builtin one met while ``doing`` something with the path."""
    reason = _REASONS.get(exc.errno or 0, exc.strerror or str(exc))
    return CassetteAccessError(str(path), f"cannot {doing}: {reason}")


def require_readable(path: str | os.PathLike[str]) -> None:
    """Raise unless ``path`` is a file we can read (naming close names when it is missing)."""
    target = pathlib.Path(path)
    try:
        with open(target, "rb"):
            pass
    except FileNotFoundError:
        raise CassetteNotFoundError(str(path), _missing(target)) from None
    except OSError as exc:
        raise access_error(path, "read the cassette", exc) from None


def require_writable(path: str | os.PathLike[str]) -> None:
    """Raise unless a cassette can be appended at ``path`` (the file need not exist yet).

    Probes for real, since permission bits do not tell (a read-only mount, root): an
    existing file is opened for appending, a new one is created and removed again.
    """
    target = pathlib.Path(path)
    flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
    try:
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder")
        try:
            os.close(os.open(target, flags))
        except FileNotFoundError:
            os.close(os.open(target, flags | os.O_CREAT | os.O_EXCL, 0o644))
            target.unlink()
    except OSError as exc:
        raise access_error(path, "write the cassette", exc) from None


def _missing(target: pathlib.Path) -> str:
    folder = target.parent
    if not folder.is_dir():
        return f"no such cassette (the folder {str(folder)!r} does not exist either)"
    names = [p.name for p in folder.iterdir() if p.suffix == ".tape"]
    close = difflib.get_close_matches(target.name, names, n=3)
    hint = f"; did you mean {', '.join(repr(str(folder / n)) for n in close)}?" if close else ""
    return f"no such cassette{hint}"
