"""Grow the process's descriptor table before serving, not while serving.

Linux keeps each process's open files in a table that doubles when a new descriptor
does not fit (past 64, 128, 256, ... open files). In a process with more than one
thread the call that opened the descriptor then waits for an RCU grace period before
returning; for a server that call is ``accept`` on its event loop, and on a loaded
machine the wait is 10-30 ms in which every paced stream stalls. The replay benchmark
saw it as a cliff at the 256th connection. Growing the table once at start-up takes
that wait out of serving; the kernel never shrinks it again.
"""

from __future__ import annotations

import os
import sys

RESERVED = 8192
"""Descriptors made room for: a replay server's streams, or half as many proxied ones."""


def reserve_descriptors(count: int = RESERVED) -> int:
    """Make room for ``count`` descriptors (capped by the open-files limit); the room made.

    The table grows by duplicating a descriptor to the lowest free number at or above
    the last slot (``F_DUPFD`` never replaces an open one), then closing the copy.
    Elsewhere than Linux it does nothing and returns 0.
    """
    if not sys.platform.startswith("linux"):
        return 0
    import fcntl
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = min(count, soft) if soft != resource.RLIM_INFINITY else count
    probe = os.open(os.devnull, os.O_RDONLY)
    try:
        copy = fcntl.fcntl(probe, fcntl.F_DUPFD, room - 1)
    except OSError:  # every slot up to the limit is taken, or the limit is tiny
        return 0
    finally:
        os.close(probe)
    os.close(copy)
    return room


def raise_descriptor_limit(wanted: int = 65536) -> int:
    """Lift the soft open-files limit toward ``wanted`` (never above the hard one); the new one.

    Why: many systems start processes at a soft limit of 1024, which a proxy with 500
    streams (a client and an upstream connection each) runs out of. Only the command
    line calls this: a library must not change its host process's limits.
    """
    if not sys.platform.startswith("linux") and sys.platform != "darwin":
        return 0
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft
