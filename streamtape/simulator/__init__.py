"""A simulated OpenAI-compatible upstream for the demo and the tests, served on loopback."""
