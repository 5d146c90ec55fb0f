"""OpenAI Responses API streams (``POST /v1/responses``): wire, results, assembler, fast path."""

from __future__ import annotations

from streamtape.formats.openai_responses.assembler import ResponsesAssembler
from streamtape.formats.openai_responses.body import assemble, stream_finished
from streamtape.formats.openai_responses.results import Response
from streamtape.formats.openai_responses.summarize import summarize_responses

FORMAT = "openai_responses"
"""The name `Summary.format` and format detection use for this stream kind."""

__all__ = [
    "FORMAT",
    "Response",
    "ResponsesAssembler",
    "assemble",
    "stream_finished",
    "summarize_responses",
]
