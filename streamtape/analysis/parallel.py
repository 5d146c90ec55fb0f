"""Run a per-file function over many cassettes on every core, reporting progress.

Decoding dominates ``stats`` and ``diff`` over a corpus, and each cassette decodes
independently, so files go to a process pool in chunks; a handful run inline, where a
pool would cost more to start than it saves.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

__all__ = ["default_jobs", "map_files"]

T = TypeVar("T")
_INLINE_BELOW = 8


def default_jobs() -> int:
    """Every core this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


def map_files(
    func: Callable[[Path], T],
    files: Sequence[Path],
    *,
    jobs: int | None = None,
    on_done: Callable[[int], None] | None = None,
) -> list[T]:
    """``[func(f) for f in files]``, in order, on ``jobs`` processes (default: all cores).

    ``func`` must be a module-level function (it is pickled by name).
    """
    jobs = default_jobs() if jobs is None else max(1, jobs)
    if jobs == 1 or len(files) < _INLINE_BELOW:
        out = []
        for file in files:
            out.append(func(file))
            if on_done is not None:
                on_done(1)
        return out
    chunk = max(1, min(64, len(files) // (jobs * 8)))
    results: list[T] = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for result in pool.map(func, files, chunksize=chunk):
            results.append(result)
            if on_done is not None:
                on_done(1)
    return results
