"""Where the recorded corpus lives, defined once for every test.

The corpus sits beside the checkout (``../shared/corpus``). Without it the parity
tests skip locally; with ``CI`` set, conftest fails the run instead, so a missing
corpus can never pass as green.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def corpus_files(folder: str, pattern: str = "*.sse") -> list[Path]:
    """The corpus files of one folder, sorted; empty when the corpus is absent."""
    where = CORPUS / folder
    return sorted(where.glob(pattern)) if where.is_dir() else []


def require_corpus() -> None:
    """Skip (locally) or fail (under CI) when the corpus is not there."""
    if CORPUS.is_dir():
        return
    if os.environ.get("CI"):
        pytest.fail(f"the recorded corpus is missing: {CORPUS}", pytrace=False)
    pytest.skip(f"recorded corpus not found at {CORPUS}")
