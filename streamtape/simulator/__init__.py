"""A simulated OpenAI-compatible upstream for the demo and the tests, served on loopback."""

from streamtape.simulator.app import FAULT_HEADER, FAULTS, GZIP_HEADER, DemoUpstream, UpstreamServer

__all__ = ["FAULTS", "FAULT_HEADER", "GZIP_HEADER", "DemoUpstream", "UpstreamServer"]
