"""Errors that Insyn raises on purpose.

An audit fails for one of a few reasons, and the person running it needs to
know which: the audit spec is wrong (``SpecError``), the data handed over is
wrong (``DataError``), the engine under audit misbehaved beyond what the spec
tolerates (``EngineError``), or a data-quality check with the ``fail`` policy
stopped the run (``CheckFailedError``). Each of these is a user-facing
problem: the command line prints the message and exits with code 2, never a
traceback. Anything else that escapes is an internal error (exit code 3).

Messages follow one rule: say where (file, key, column, value), what was
expected and what was given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "CheckFailedError",
    "DataError",
    "EngineError",
    "InsynError",
    "SpecError",
]


class InsynError(Exception):
    """Base class of every error that Insyn raises on purpose.

    Parameters
    ----------
    message : str
        A complete sentence that says what was expected and what was given.
    failures : pandas.DataFrame, optional
        A tidy table of every failure found (columns ``check``, ``column``,
        ``value``, ``case_id``, ``reason``), collected before raising, in the
        manner of pandera's lazy validation.
    """

    exit_code: int = 2

    def __init__(self, message: str, *, failures: pd.DataFrame | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.failures = failures

    def __str__(self) -> str:
        return self.message


class SpecError(InsynError, ValueError):
    """The audit spec (or a population, rule or suite file) is invalid."""


class DataError(InsynError, ValueError):
    """Input data cannot be used as given: a file, column or value is wrong."""


class EngineError(InsynError, RuntimeError):
    """The engine under audit failed for more cases than its error budget allows."""


class CheckFailedError(InsynError):
    """A data-quality check with policy ``fail`` did not pass."""
