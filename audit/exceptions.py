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

import math
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from audit._privacy import mask, mask_frame

__all__ = [
    "CheckCode",
    "CheckFailedError",
    "DataError",
    "EngineError",
    "FAILURE_COLUMNS",
    "FailureCollector",
    "InsynError",
    "SpecError",
    "show_value",
]

FAILURE_COLUMNS: tuple[str, ...] = ("check", "column", "value", "case_id", "reason")
"""Columns of every failure table (pandera's ``failure_cases`` in Insyn's words)."""


class InsynError(Exception):
    """Base class of every error that Insyn raises on purpose.

    The message and the failure table pass the privacy gate
    (:func:`audit._privacy.mask`) when the error is built, so no
    personnummer reaches a message, a log or the terminal.

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
        message = mask(str(message))  # the privacy gate: no personnummer in any message or table
        super().__init__(message)
        self.message = message
        self.failures = mask_frame(failures) if failures is not None else None

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


class CheckCode(StrEnum):
    """Why a value, column or case failed: the ``check`` column of a failure table.

    A small, closed vocabulary in the spirit of pandera's ``SchemaErrorReason``,
    shared by the population loaders, the selection audit, the law's baseline,
    the engine contract and the metrics, so that one failure table can be
    filtered and counted the same way whichever step raised it.
    """

    MISSING_COLUMN = "missing_column"
    """A column the step needs is absent."""
    DTYPE = "dtype"
    """A column holds values of the wrong kind (text where numbers are expected)."""
    NOT_NULL = "not_null"
    """A value is missing where one is required."""
    IN_SET = "in_set"
    """A value is not one of the allowed labels."""
    IN_RANGE = "in_range"
    """A number lies outside its allowed range."""
    UNIQUE = "unique"
    """A value that must be unique repeats."""
    UNMAPPED = "unmapped"
    """A value that a recode or mapping does not cover."""
    CONTRACT = "contract"
    """An engine's answer breaks the decision contract (a row missing, extra, or malformed)."""
    CONSISTENCY = "consistency"
    """Values that contradict each other (a count above its total, a share above 100 %)."""
    # the decision contract: how an engine failed a case
    MISSING_CASE_ID = "missing_case_id"
    """A case the engine was asked to decide is missing from its answer."""
    DUPLICATE_CASE_ID = "duplicate_case_id"
    """The engine answered more than once for one case."""
    ENGINE_ERROR = "engine_error"
    """The engine itself reported an error for the case."""
    EXCEPTION = "exception"
    """The engine raised an exception for the batch holding the case."""
    TIMEOUT = "timeout"
    """The engine did not answer for the batch holding the case in time."""


class FailureCollector:
    """Collect every failure first, then raise one error with one tidy table.

    Modelled on pandera's lazy validation (``ErrorHandler``): a step records
    each problem it finds instead of stopping at the first, then raises one
    :class:`InsynError` whose message lists every problem (where, what was
    expected, what was given) and whose ``failures`` attribute is a DataFrame
    with the columns of :data:`FAILURE_COLUMNS` (text; a value or case id
    that is missing is NaN), followed by any extra columns a step gave (such
    as the data ``row`` of a file).

    Parameters
    ----------
    source : str
        Where the data came from (a file name or ``<spec>``); starts every message.
    what : str
        What was checked, for the message's first line ("the measurement frame").
    error : type of InsynError
        The error to raise; :class:`DataError` by default.
    cap : int or None
        At most this many rows of one vectorised failure (:meth:`add_mask`)
        go into the table; None keeps every row. Default :attr:`CAP`.

    Examples
    --------
    >>> fc = FailureCollector("cases.csv", what="the case frame")
    >>> fc.add(CheckCode.MISSING_COLUMN, column="rent", reason="is required by the law's baseline")
    >>> len(fc)
    1
    >>> print(fc.message())
    cases.csv: 1 problem(s) in the case frame:
      column 'rent' is required by the law's baseline. Got missing.
    """

    CAP = 10_000
    """At most this many rows of one vectorised failure go into the table (by default)."""

    def __init__(
        self,
        source: str,
        *,
        what: str = "the data",
        error: type[InsynError] | None = None,
        cap: int | None = CAP,
    ) -> None:
        self.source = source
        self.what = what
        self.error = error or DataError
        self.cap = cap
        self.lines: list[str] = []
        self._pieces: list[list[dict[str, Any]] | pd.DataFrame] = []

    def __len__(self) -> int:
        return len(self.lines)

    def __bool__(self) -> bool:
        return bool(self.lines)

    def add(
        self,
        check: CheckCode | str,
        *,
        column: str = "",
        value: Any = None,
        case_id: Any = None,
        reason: str,
        line: str | None = None,
        **extra: Any,
    ) -> None:
        """Record one failure.

        ``line`` is the message line for it (a complete sentence); by default
        ``column 'x' <reason>. Got <value>.`` Keyword arguments beyond these
        become extra columns of the table (e.g. ``row=3``).
        """
        missing = _is_missing(value)
        self.lines.append(line or f"column {column!r} {reason}. Got {'missing' if missing else repr(value)}.")
        row = {
            "check": str(check),
            "column": str(column),
            "value": None if missing else str(value),
            "case_id": None if case_id is None else str(case_id),
            "reason": reason,
            **extra,
        }
        if self._pieces and isinstance(self._pieces[-1], list):
            self._pieces[-1].append(row)
        else:
            self._pieces.append([row])

    def add_mask(
        self,
        check: CheckCode | str,
        *,
        column: str,
        mask: np.ndarray,
        values: Any,
        case_ids: pd.Series | Sequence[Any],
        reason: str | Sequence[str] | np.ndarray,
    ) -> None:
        """Record the failing rows of a vectorised check (``mask`` True where failing).

        ``reason`` is one text for every failing row, or one text per row
        (aligned with ``values``) when the reason names the row's own value.
        One message line names the column, the first failing row's reason
        and value, how many cases fail and the first failing case id; the
        table keeps up to :attr:`cap` rows.
        """
        idx = np.flatnonzero(np.asarray(mask, dtype=bool))
        if idx.size == 0:
            return
        if isinstance(values, pd.Series):
            vals = values.iloc[idx].astype(object).to_numpy()
        else:
            vals = np.asarray(values, dtype=object)[idx]
        ids = case_ids if isinstance(case_ids, pd.Series) else pd.Series(list(case_ids), dtype=object)
        per_row = not isinstance(reason, str)
        reasons = np.asarray(reason, dtype=object)[idx] if per_row else None
        first = vals[0]
        shown = "missing" if _is_missing(first) else repr(first)
        cid = ids.iloc[idx[0]]
        head = reasons[0] if reasons is not None else reason
        self.lines.append(f"column {column!r} {head}. Got {shown} for {idx.size} case(s) (first case_id {cid!r}).")
        keep = idx if self.cap is None else idx[: self.cap]
        n = keep.size
        self._pieces.append(
            pd.DataFrame(
                {
                    "check": np.full(n, str(check), dtype=object),
                    "column": np.full(n, column, dtype=object),
                    "value": np.array([None if _is_missing(v) else str(v) for v in vals[:n]], dtype=object),
                    "case_id": ids.iloc[keep].astype(str).to_numpy(dtype=object),
                    "reason": reasons[:n] if reasons is not None else np.full(n, reason, dtype=object),
                }
            )
        )

    def extend(self, other: FailureCollector) -> None:
        """Append every failure that ``other`` recorded, in its order (e.g. one collector per batch)."""
        self.lines.extend(other.lines)
        for piece in other._pieces:
            if isinstance(piece, list) and self._pieces and isinstance(self._pieces[-1], list):
                self._pieces[-1].extend(piece)
            else:
                self._pieces.append(list(piece) if isinstance(piece, list) else piece)

    def table(self) -> pd.DataFrame:
        """Every failure recorded so far, one row each (columns :data:`FAILURE_COLUMNS`, then extras)."""
        if not self._pieces:
            return pd.DataFrame({c: pd.Series(dtype="str") for c in FAILURE_COLUMNS})
        frames = [pd.DataFrame(p) if isinstance(p, list) else p for p in self._pieces]
        out = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        extra = [c for c in out.columns if c not in FAILURE_COLUMNS]
        out = out[[*FAILURE_COLUMNS, *extra]].reset_index(drop=True)
        return out.astype({c: "str" for c in FAILURE_COLUMNS})

    def message(self, head: str | None = None) -> str:
        """The error message: a first line, then one indented line per failure.

        A single failure recorded with its own ``line`` and no ``head`` is
        that line alone.
        """
        if head is None and len(self.lines) == 1 and self.lines[0].startswith(self.source):
            return self.lines[0]
        head = head or f"{self.source}: {len(self.lines)} problem(s) in {self.what}:"
        return "\n".join([head, *("  " + line for line in self.lines)])

    def raise_if_any(self, head: str | None = None) -> None:
        """Raise :attr:`error` with every failure, or return when there is none."""
        if self.lines:
            raise self.error(self.message(head), failures=self.table())


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and value != value


def show_value(value: Any) -> str:
    """Show a data value in a message: strings quoted, numbers plain, NaN as NaN."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if value is None or value is pd.NA:
        return "None"
    return repr(value)
