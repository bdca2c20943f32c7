"""A case's true circumstances beside what was recorded, and the creator of each field.

Data is not objective: along the data journey an applicant declares
incomes and costs (and may leave some out), registries are read (and a read
may fail or lag behind a decision), a caseworker assesses work capacity and
conduct (and may err). What an engine decides on is the *recorded* case;
what the law asks about is the applicant's *true circumstances*. A
population may carry both:

* a synthetic population (:mod:`audit.synth`) knows them: the values drawn
  before any bias knob acted;
* a file or SQL source may give them as ``true_<column>`` columns beside the
  recorded ``<column>`` (e.g. ``true_income_sickness`` next to
  ``income_sickness``); :func:`split_true_columns` takes them out of the
  case frame, so no engine ever sees them.

The *stage* of a field is the creator that put it into the case
(``provenance``): ``applicant``, ``caseworker``, ``system``, ``registry``
(any ``registry:<name>``), or one named registry such as
``registry:forsakringskassan``. Reverting a stage restores the true values
of the fields it created.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from audit.exceptions import DataError

__all__ = ["TRUE_PREFIX", "changed_cells", "split_true_columns", "stage_columns", "stage_matches"]

TRUE_PREFIX = "true_"
"""Prefix of a column that holds the true value of the recorded column named after it."""


def split_true_columns(frame: pd.DataFrame, *, source: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Take ``true_<column>`` columns out of a case frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        The case frame as read, possibly with ``true_<column>`` columns.
    source : str
        Shown first in error messages (the file or URL).

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame or None)
        The recorded case frame without the ``true_`` columns, and the true
        circumstances: the recorded frame with each ``<column>`` replaced by
        its ``true_<column>`` where that is not missing (None when the frame
        has no ``true_`` column).

    Raises
    ------
    DataError
        When a ``true_<column>`` has no recorded ``<column>`` beside it.
    """
    true_cols = [c for c in frame.columns if isinstance(c, str) and c.startswith(TRUE_PREFIX)]
    if not true_cols:
        return frame, None
    recorded = frame.drop(columns=true_cols)
    orphans = [c for c in true_cols if c[len(TRUE_PREFIX):] not in recorded.columns]
    if orphans:
        raise DataError(
            f"{source}: the column {orphans[0]!r} holds true circumstances, but there is no recorded column "
            f"{orphans[0][len(TRUE_PREFIX):]!r} beside it. Expected true_<column> next to <column>."
        )
    truth = recorded.copy()
    for col in true_cols:
        name = col[len(TRUE_PREFIX):]
        given = frame[col]
        try:
            values = given.astype(recorded[name].dtype) if given.notna().all() else given
        except (TypeError, ValueError):
            raise DataError(
                f"{source}: the column {col!r} must hold values of the same kind as {name!r} "
                f"({recorded[name].dtype}). Got {given.dtype} values such as {given.dropna().iloc[0]!r}."
            ) from None
        truth[name] = values.where(given.notna(), recorded[name])
    return recorded, truth


def stage_matches(stage: str, actor: str) -> bool:
    """Whether a field created by ``actor`` belongs to ``stage`` (``registry`` takes every ``registry:<name>``)."""
    return actor == stage or (stage == "registry" and actor.startswith("registry:"))


def stage_columns(stages: Sequence[str], provenance: Mapping[str, str], columns: Sequence[str], *,
                  explicit: Mapping[str, Sequence[str]] | None = None,
                  source: str = "<spec>") -> dict[str, list[str]]:
    """The columns each stage created, among ``columns``.

    Parameters
    ----------
    stages : sequence of str
        Stage names: a creator (``applicant``, ``caseworker``, ``system``,
        ``registry``, ``registry:<name>``) or a name given in ``explicit``.
    provenance : mapping
        Column -> creator of the population.
    columns : sequence of str
        The columns that matter (what the engine sees).
    explicit : mapping, optional
        Stage -> its columns, overriding the provenance.
    source : str
        Shown first in error messages.

    Raises
    ------
    DataError
        When a column falls in two stages (a field has one creator).
    """
    explicit = explicit or {}
    out: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for stage in stages:
        if stage in explicit:
            cols = [c for c in explicit[stage] if c in columns]
        else:
            cols = [c for c in columns if stage_matches(stage, provenance.get(c, "unknown"))]
        for c in cols:
            if c in owner:
                raise DataError(f"{source}: attribution.stages: the column {c!r} falls in both {owner[c]!r} and "
                                f"{stage!r}. Expected each field to have one creator.")
            owner[c] = stage
        out[stage] = cols
    return out


def changed_cells(recorded: pd.DataFrame, truth: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """A boolean (rows, columns) array: where the recorded value differs from the true one (missing = missing)."""
    out = np.zeros((len(recorded), len(columns)), dtype=bool)
    for j, c in enumerate(columns):
        r, t = recorded[c], truth[c]
        both_missing = (r.isna() & t.isna()).to_numpy()
        differ = (r.astype(object).to_numpy() != t.astype(object).to_numpy())
        out[:, j] = differ & ~both_missing
    return out
