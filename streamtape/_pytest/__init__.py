"""The pytest plugin's parts; ``streamtape.pytest_plugin`` is the entry module."""
