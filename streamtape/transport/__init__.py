"""httpx and httpx2 transports that record to and replay from cassettes."""
