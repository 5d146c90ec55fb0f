"""The sans-IO core: exchanges, the SSE parser, the cassette format, redaction, matching, pacing.

Nothing here does network I/O or imports an HTTP library; clocks and sleeps are
injected, so every piece is a pure function or a small state machine.
"""
