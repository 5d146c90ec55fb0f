"""The one version string: the package metadata, ``--version`` and cassette headers read it."""

__version__ = "0.1.0"
