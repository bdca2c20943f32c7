"""Keep Swedish personal identity numbers (personnummer) out of every artifact.

Decision logs handed over by an authority often carry a personnummer as the
case key or in free-text fields; Trelleborg's robot carried a few hundred of
them in its source code. Insyn never writes one: a ``case_id`` that looks
like a personnummer is replaced by a keyed pseudonym (the same input and key
give the same pseudonym, so a rerun with the same seed is reproducible), and
personnummer-shaped substrings in other text columns are masked.

The pattern matches ``YYMMDD-NNNN``, ``YYMMDD+NNNN``, ``YYYYMMDDNNNN`` and
``YYYYMMDD-NNNN`` with a plausible month and day (coordination numbers add 60
to the day and are matched too).
"""

from __future__ import annotations

import hashlib
import re

import pandas as pd

__all__ = ["MASK", "PNR_PATTERN", "PNR_RE2", "looks_like_personnummer", "mask_text_columns", "pseudonymise"]

_PNR = r"(?:19|20)?\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]|6[1-9]|[78]\d|9[01])[-+]?\d{4}"
"""The one definition of a personnummer's shape: optional century, YYMMDD (day + 60 allowed), separator, 4 digits."""

PNR_PATTERN = re.compile(rf"(?<!\d){_PNR}(?!\d)")
"""A personnummer or samordningsnummer, with or without century and separator, not inside a longer number."""

PNR_RE2 = rf"(?:^|\D){_PNR}(?:\D|$)"
""":data:`PNR_PATTERN` without look-around, for RE2 engines (pyarrow's ``match_substring_regex``).

RE2 has no look-behind, so the digit boundaries are matched as characters;
searched as a substring this finds exactly the texts that hold a
personnummer. (RE2's ``\\d`` and ``\\D`` are ASCII; Python's also count
other scripts' digits.)
"""

MASK = "[personnummer removed]"
"""What a personnummer is replaced by in text."""


def looks_like_personnummer(values: pd.Series) -> pd.Series:
    """Return a boolean Series: True where the value contains a personnummer.

    Parameters
    ----------
    values : pandas.Series
        Any values; non-strings are converted with ``str``.
    """
    text = values.astype("str")
    return text.str.contains(PNR_PATTERN, regex=True, na=False)


def pseudonymise(values: pd.Series, *, key: str) -> pd.Series:
    """Replace each value by ``"p-" + the first 16 hex digits of SHA-256(key|value)``.

    Parameters
    ----------
    values : pandas.Series
        The identifiers to replace.
    key : str
        A secret or run-specific key; the same key maps a value to the same
        pseudonym.
    """
    uniques = pd.unique(values.astype("str"))
    mapping = {
        u: "p-" + hashlib.sha256(f"{key}|{u}".encode()).hexdigest()[:16] for u in uniques
    }
    return values.astype("str").map(mapping).astype("str")


def mask_text_columns(frame: pd.DataFrame, *, skip: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[str]]:
    """Mask personnummer-shaped substrings in every text column.

    Returns
    -------
    (frame, columns)
        A copy with masked values (the input is unchanged when nothing
        matched) and the names of the columns where something was masked.
    """
    changed: list[str] = []
    out = frame
    for col in frame.columns:
        if col in skip:
            continue
        s = frame[col]
        if not (pd.api.types.is_string_dtype(s) or s.dtype == object):
            continue
        hit = looks_like_personnummer(s)
        if hit.any():
            if out is frame:
                out = frame.copy()
            out[col] = s.where(~hit, s.astype("str").str.replace(PNR_PATTERN, MASK, regex=True))
            changed.append(col)
    return out, changed
