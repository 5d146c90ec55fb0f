"""Meaning from bytes: which stream format an exchange holds, and its reassembled response."""

from __future__ import annotations

from streamtape.formats.openai_chat.assembler import Assembler, Completion, assemble

__all__ = ["Assembler", "Completion", "assemble"]
