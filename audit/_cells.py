"""Cells of published tables: numbers, suppressed cells and their bounds.

Statistics authorities and investigators release per-group tables in which
small cells are *suppressed* (withheld so that no person can be singled out).
Releases write a suppressed cell in many ways: a blank cell, R's ``NA``,
``NaN``, Statistics Sweden's ``..``, ``.``, ``-`` or an en dash ``–``,
Eurostat's and the ONS's ``x`` or ``:``, ``*``, or a bound such as ``<5``
("fewer than five"). Such a cell is *not* zero and must never be filled in
from the other cells of its row, which would undo the suppression.

This module turns a column of raw cells into numbers, a mask of suppressed
cells, the marker each was written with, and, for a ``<k`` marker, its upper
bound (the count is known to be below ``k``). It is kept in a private ground
module so that every reader of a release (``audit.population``) uses one
definition of the markers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_SUPPRESSION_MARKERS", "ParsedCells", "describe_bound", "parse_cells"]

DEFAULT_SUPPRESSION_MARKERS: tuple[str, ...] = (
    "", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "..", "...", ".", "-", "--", "\u2013", "\u2014",
    "x", "X", "*", "**", "***", ":", "§", "s", "S", "c", "C",
)
"""Markers of a suppressed cell in published tables, as written by common releases
(blank, R's ``NA``, SCB's ``..``, ``.``, ``-``, ``–``, ``x``, ``*`` and the like).
A ``<k`` (or ``≤k``) marker is recognised in addition to these and keeps its bound."""

_BOUND = re.compile(r"^\s*(<=|≤|<)\s*(\d+(?:[.,]\d+)?)\s*$")


@dataclass(frozen=True)
class ParsedCells:
    """A column of published cells, parsed.

    Attributes
    ----------
    values : numpy.ndarray
        The numbers; NaN where the cell is suppressed.
    suppressed : numpy.ndarray
        True where the cell is suppressed at the source.
    marker : numpy.ndarray
        The text the suppressed cell was written with (``""`` for a blank
        cell); ``""`` where not suppressed.
    bound : numpy.ndarray
        For a ``<k`` marker, ``k`` (the count is below it; ``≤k``/``<=k``:
        at most ``k``, stored as ``k + 1`` exclusive for whole counts); NaN
        otherwise.
    bad : numpy.ndarray
        True where the cell is neither a finite number nor a suppression marker.
    """

    values: np.ndarray
    suppressed: np.ndarray
    marker: np.ndarray
    bound: np.ndarray
    bad: np.ndarray


def parse_cells(raw: pd.Series, *, markers: Sequence[str] = DEFAULT_SUPPRESSION_MARKERS,
                decimal: str = ",.") -> ParsedCells:
    """Parse one column of a published table into numbers and suppressed cells.

    Parameters
    ----------
    raw : pandas.Series
        The cells as read (text, numbers or missing values).
    markers : sequence of str
        The texts that mark a suppressed cell (compared after stripping
        spaces); a missing value and a ``<k`` bound are always suppressed.
    decimal : str, default ",."
        Characters accepted as the decimal mark (Swedish releases write ``,``).

    Returns
    -------
    ParsedCells
    """
    n = len(raw)
    missing = raw.isna().to_numpy()
    text = raw.astype("str").str.replace("\u00a0", "", regex=False).str.strip()
    marks = set(str(m).strip() for m in markers)
    is_marker = text.isin(marks).to_numpy() & ~missing
    bound_match = text.str.extract(_BOUND)
    has_bound = bound_match[0].notna().to_numpy() & ~missing
    bound = np.full(n, np.nan)
    if has_bound.any():
        k = pd.to_numeric(bound_match[1].str.replace(",", ".", regex=False), errors="coerce").to_numpy(dtype="float64")
        inclusive = bound_match[0].isin(["<=", "≤"]).to_numpy()
        bound = np.where(has_bound, np.where(inclusive, k + 1, k), np.nan)
    numtext = text.str.replace(" ", "", regex=False)
    if "," in decimal:
        numtext = numtext.str.replace(",", ".", regex=False)
    values = pd.to_numeric(numtext.where(~(missing | is_marker | has_bound)), errors="coerce").to_numpy(dtype="float64")
    suppressed = missing | is_marker | has_bound
    bad = ~suppressed & ~np.isfinite(values)  # text that is no number, and numbers too large to hold ('1e400')
    marker = np.where(missing, "", np.where(suppressed, text.to_numpy(dtype=object), ""))
    return ParsedCells(values=np.where(suppressed, np.nan, values), suppressed=suppressed,
                       marker=marker.astype(object), bound=bound, bad=bad)


def describe_bound(bound: float, marker: str) -> str:
    """Plain words for a suppressed cell: ``"fewer than 5"`` for ``<5``, ``"suppressed ('..')"`` otherwise."""
    if bound == bound:  # not NaN
        return f"fewer than {bound:g}"
    return "suppressed (blank)" if marker == "" else f"suppressed ({marker!r})"
