"""The package version, read by hatchling and by ``insyn --version``."""

__version__ = "0.1.0"
