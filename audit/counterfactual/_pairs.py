"""Deciding twins and comparing each twin's decision with its original's.

A twin pair is a case and its twin. Both are decided by the engine under
audit through :func:`audit.engine.run_engine`, so every twin the engine
cannot decide is an error row with a reason. A pair counts as *decided* only
when both decisions are ``ok``; flips, their direction and amount changes
are computed on decided pairs only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from audit._columns import STATUS_OK
from audit.engine import RecordedEngine, run_engine

__all__ = ["RECORDED_NOTE", "decide", "direct_twins", "plain", "text", "twin_pairs"]

RECORDED_NOTE = (
    "Counterfactual tests need an engine that can decide new cases. A recorded engine only replays decisions "
    "already made, so it cannot decide a twin or a persona: every twin is an error row and no flip rate exists."
)
"""Why a recorded engine yields no flip rate."""


def decide(engine: Any, frame: pd.DataFrame, cols: list[str], labels: Sequence[str], *,
           batch_size: int | None = None, workers: int = 1) -> pd.DataFrame:
    """Decide new cases under the contract; every case the engine cannot decide is an error row.

    The error budget is 1: a twin the engine cannot decide is counted and
    reported with its reason, it does not stop the audit. A recorded
    engine's own columns are blanked first, since they hold the original
    case's decision, not the twin's.
    """
    given = frame.reindex(columns=cols)
    if isinstance(engine, RecordedEngine):
        for c in engine.required_columns:
            if c in given.columns:
                given[c] = np.nan
    return run_engine(engine, given, labels=list(labels), batch_size=batch_size, workers=workers,
                      error_budget=1.0).decisions


def direct_twins(cases: pd.DataFrame, twins: pd.DataFrame, pos: np.ndarray, tied: Sequence[str]) -> pd.DataFrame:
    """Twins with only the attribute changed: tied fields back at the original's values (years kept <= age)."""
    direct = twins.copy()
    for f in tied:
        direct[f] = cases[f].take(pos).reset_index(drop=True)
    if "years_in_sweden" in tied and "applicant_age" in direct.columns:
        direct["years_in_sweden"] = np.minimum(direct["years_in_sweden"], direct["applicant_age"])
    return direct


def twin_pairs(base: dict[str, np.ndarray], run: pd.DataFrame, pos: np.ndarray,
               fav: tuple[str, ...]) -> dict[str, Any]:
    """Per twin pair (aligned with ``run``): decided both times, flipped, direction, amount change.

    ``base`` holds the originals' decisions as arrays in case order and
    ``pos`` the position of each twin's original.
    """
    twin_ok = (run["status"].astype("str") == STATUS_OK).to_numpy()
    decided = base["ok"][pos] & twin_ok
    b_out, t_out = base["outcome"][pos], run["outcome"].astype("str").to_numpy(dtype=object)
    b_fav, t_fav = np.isin(b_out, fav), np.isin(t_out, fav)
    b_amt = base["amount"][pos]
    t_amt = pd.to_numeric(run["amount"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    has_amount = decided & np.isfinite(b_amt) & np.isfinite(t_amt)
    delta = np.where(has_amount, t_amt - b_amt, 0.0)
    flip = decided & (b_out != t_out)
    return {"decided": decided, "twin_ok": twin_ok, "base_ok": base["ok"][pos], "flip": flip,
            "to_unfavourable": decided & b_fav & ~t_fav, "to_favourable": decided & ~b_fav & t_fav,
            "has_amount": has_amount, "delta": delta,
            "changed": flip | (has_amount & (np.abs(delta) >= 1.0))}


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value (JSON-safe)."""
    return value.item() if isinstance(value, np.generic) else value


def text(value: Any) -> str:
    """A value as shown in tables: ``true``/``false``, whole numbers without ``.0``."""
    value = plain(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
