"""Replaying the engine with stages' changes reverted, one coalition of stages at a time.

For ``k`` stages there are ``2**k`` coalitions (bit ``j`` of coalition ``c``
set: stage ``j``'s changes to the data are kept; clear: its fields hold the
case's true circumstances). Coalition ``2**k - 1`` is the recorded data,
whose decisions the run already has.

Most cases are touched by no stage, or by one: a case whose changed stages
are ``C`` has only ``2**|C|`` distinct inputs, and its decision under
coalition ``S`` is its decision under ``S & C``. So the engine decides,
for each coalition ``T``, only the cases with ``T`` a proper subset of
their ``C``: every other cell of the ``(cases, coalitions)`` table is a
cached decision. All those inputs go to the engine in one call (each with
the id ``<case_id>@coalition-<T>``), through the decision contract
(:func:`audit.engine.run_engine`) like the run's own decision step, so an
engine's fixed cost per call is paid once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from audit.attribution._circumstances import changed_cells
from audit.engine import run_engine

__all__ = ["Replays", "coalition_name", "replay"]

ERROR_CODE = -1
REPLAY_MARK = "@coalition-"
"""Joins a case id and its coalition in the one engine call of the replays (each input needs its own id)."""


def coalition_name(coalition: int, stages: Sequence[str]) -> str:
    """The stages whose changes a coalition keeps, joined by ``+`` (``none`` for the true data)."""
    kept = [s for j, s in enumerate(stages) if coalition >> j & 1]
    return "+".join(kept) if kept else "none"


@dataclass(frozen=True)
class Replays:
    """Every case's decision under every coalition of stages.

    Attributes
    ----------
    stages : tuple of str
        The stages, in bit order.
    columns : dict
        Stage -> the engine-visible columns it created.
    case_id : numpy.ndarray
        Case ids, in the order of the engine input.
    labels : tuple of str
        Outcome labels; ``codes`` index them.
    codes : numpy.ndarray
        ``(cases, 2**k)`` int16: the outcome's index in ``labels``, -1 for a
        case the engine could not decide.
    changed : numpy.ndarray
        ``(cases, k)`` bool: the stage changed a field of the case that the
        engine sees.
    passes : int
        Engine calls made (1 when any case was replayed, else 0).
    rows_replayed : int
        Cases decided again, summed over the calls.
    """

    stages: tuple[str, ...]
    columns: dict[str, list[str]]
    case_id: np.ndarray
    labels: tuple[str, ...]
    codes: np.ndarray
    changed: np.ndarray
    passes: int
    rows_replayed: int

    def outcomes(self, coalition: int) -> np.ndarray:
        """The outcome labels of every case under one coalition (``error`` for undecided cases)."""
        names = np.array([*self.labels, "error"], dtype=object)
        return names[self.codes[:, coalition]]


def _codes(outcome: pd.Series, status: pd.Series, labels: Sequence[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    out = outcome.astype(object).map(index).to_numpy(dtype=float, na_value=np.nan)
    bad = np.isnan(out) | (status.astype(str).to_numpy() != "ok")
    return np.where(bad, ERROR_CODE, np.nan_to_num(out)).astype(np.int16)


def replay(
    engine: Any,
    recorded: pd.DataFrame,
    truth: pd.DataFrame,
    decisions: pd.DataFrame,
    columns: dict[str, list[str]],
    *,
    labels: Sequence[str],
    run_options: dict[str, Any] | None = None,
) -> Replays:
    """Decide every case under every coalition of stages.

    Parameters
    ----------
    engine : Engine
        The engine under audit.
    recorded : pandas.DataFrame
        The engine's input as recorded (with ``case_id``).
    truth : pandas.DataFrame
        The same rows and columns holding the true circumstances.
    decisions : pandas.DataFrame
        The run's decisions on ``recorded``, row-aligned (``outcome``, ``status``).
    columns : dict
        Stage -> its columns (in stage order: bit ``j`` is the ``j``-th stage).
    labels : sequence of str
        The outcome labels.
    run_options : dict, optional
        Keywords for :func:`audit.engine.run_engine` (batch size, workers,
        error budget, timeout).

    Returns
    -------
    Replays
    """
    stages = tuple(columns)
    k, n = len(stages), len(recorded)
    full = 2**k - 1
    changed = np.zeros((n, k), dtype=bool)
    for j, stage in enumerate(stages):
        if columns[stage]:
            changed[:, j] = changed_cells(recorded, truth, columns[stage]).any(axis=1)
    cmask = (changed.astype(np.int64) * (1 << np.arange(k))).sum(axis=1)
    table = np.full((n, full + 1), ERROR_CODE, dtype=np.int16)
    rows_all = np.arange(n)
    table[rows_all, cmask] = _codes(decisions["outcome"], decisions["status"], labels)
    parts, where = [], []
    for t in range(full):
        rows = np.flatnonzero(((t & ~cmask) == 0) & (cmask != t))
        if not len(rows):
            continue
        x = recorded.iloc[rows].reset_index(drop=True)
        true_rows = truth.iloc[rows]
        for j, stage in enumerate(stages):
            if not t >> j & 1:
                for c in columns[stage]:
                    x[c] = true_rows[c].to_numpy()
        x["case_id"] = x["case_id"].astype(str) + f"{REPLAY_MARK}{t}"  # unique across the coalitions of one call
        parts.append(x)
        where.append((rows, t))
    replayed = sum(len(r) for r, _ in where)
    if parts:  # one call of the engine for every replayed input: its fixed cost is paid once
        run = run_engine(engine, pd.concat(parts, ignore_index=True), labels=labels, **(run_options or {}))
        codes_all = _codes(run.decisions["outcome"], run.decisions["status"], labels)
        start = 0
        for rows, t in where:
            table[rows, t] = codes_all[start:start + len(rows)]
            start += len(rows)
    passes = 1 if parts else 0
    coalitions = np.arange(full + 1)
    codes = table[rows_all[:, None], coalitions[None, :] & cmask[:, None]]
    return Replays(stages=stages, columns=dict(columns), case_id=recorded["case_id"].to_numpy(),
                   labels=tuple(labels), codes=codes, changed=changed, passes=passes, rows_replayed=replayed)
