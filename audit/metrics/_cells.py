"""Cells: how each case is sorted into one of a few disjoint classes.

A case contributes to a metric through a handful of yes/no facts: was it
decided (status ok), did the engine route it to a caseworker, was the final
decision favourable or a denial, is the correct outcome known, was the case
entitled, is it a positive prediction or truth, was money owed, was it
underpaid, was an amount paid, is the correct amount known. Packed into bit fields, these facts give every
case one small integer, its *cell code*. Counting cases per (group, cell code)
is all the statistics that the rate metrics need, and because the cells are
disjoint, resampling cases with replacement is resampling cells.

A *channel* is a named set of cell codes (``ok``, ``refer``, ``fav``,
``wrong_deny``, ``tp`` ...): the count of a channel is the sum of the counts of
its codes. Metric functions read channels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from audit.exceptions import SpecError

__all__ = [
    "CHANNELS",
    "FAMILIES",
    "SUM_SCALES",
    "CellDefinition",
    "channel_matrix",
    "make_definition",
    "masked_matmul",
]

# --------------------------------------------------------------------------
# cell codes: one small integer per case, built from bit fields

N_CODES = 1 << 13
ST_OK, ST_ERROR, ST_QUARANTINED = 0, 1, 2
B_REFER = 1 << 2
F_SHIFT = 3  # two bits: 0 favourable, 1 denied, 2 unresolved (still in review)
B_TRUTH = 1 << 5
B_ENTITLED = 1 << 6
B_YTRUE = 1 << 7
B_YPRED = 1 << 8
B_OWED = 1 << 9
B_UNDERPAID = 1 << 10
B_PAID = 1 << 11
B_PRICED = 1 << 12  # truth_amount known

MAX_AMOUNT_SEK = 10_000_000.0
SCORE_UNIT = 1_000_000

SUM_SCALES: dict[str, float] = {
    "granted": 100.0,
    "granted_sq": 1e4,
    "correct": 100.0,
    "correct_sq": 1e4,
    "granted_correct": 1e4,
    "shortfall": 100.0,
    "shortfall_sq": 1e4,
    "paid": 100.0,
    "paid_sq": 1e4,
    "score": float(SCORE_UNIT),
    "score_sq": float(SCORE_UNIT) ** 2,
    "score_pos": float(SCORE_UNIT),
}
"""Exact integer sums kept per atom and the factor that turns each into SEK or score units."""

FAMILIES: dict[str, str] = {
    "rows": "case counts",
    "status": "the status column (ok, error, quarantined)",
    "routing": "the engine's outcome (routing to a caseworker)",
    "decision": "the final outcome",
    "prediction": "the final outcome as a binary prediction",
    "amount": "the final_amount column",
    "truth": "the truth_outcome column",
    "entitlement": "the truth_outcome column",
    "truth_amount": "the truth_amount and final_amount columns",
    "score": "the score and truth_outcome columns",
}
"""Groups of statistics; a metric can be computed when its families are present."""


def _decode(codes: np.ndarray) -> dict[str, np.ndarray]:
    c = np.asarray(codes, dtype=np.int64)
    st = c & 3
    ok = st == ST_OK
    f = (c >> F_SHIFT) & 3
    truth = ok & ((c & B_TRUTH) > 0)
    ent = (c & B_ENTITLED) > 0
    yt = (c & B_YTRUE) > 0
    yp = (c & B_YPRED) > 0
    entitled = truth & ent
    not_entitled = truth & ~ent
    owed = ok & ((c & B_OWED) > 0)
    paid = ok & ((c & B_PAID) > 0)
    fav = ok & (f == 0)
    return {
        "rows": np.ones(c.shape, dtype=bool),
        "ok": ok,
        "error": st == ST_ERROR,
        "quarantined": st == ST_QUARANTINED,
        "refer": ok & ((c & B_REFER) > 0),
        "fav": fav,
        "deny": ok & (f == 1),
        "unresolved": ok & (f == 2),
        "ypred": ok & yp,
        "truth": truth,
        "entitled": entitled,
        "not_entitled": not_entitled,
        "wrong_deny": entitled & (f == 1),
        "wrong_grant": not_entitled & (f == 0),
        "tp": truth & yt & yp,
        "fp": truth & ~yt & yp,
        "fn": truth & yt & ~yp,
        "tn": truth & ~yt & ~yp,
        "owed": owed,
        "underpaid": owed & ((c & B_UNDERPAID) > 0),
        "paid": paid,
        "fav_no_amount": fav & ~paid,
        "unpriced": ok & (f != 2) & ((c & B_PRICED) == 0),
        "priced": ok & (f != 2) & ((c & B_PRICED) > 0),
    }


CHANNELS: tuple[str, ...] = tuple(_decode(np.zeros(1, dtype=np.int64)))
"""Names of the per-group counts that metrics are built from (see :func:`_decode`)."""


def channel_matrix(codes: np.ndarray) -> np.ndarray:
    """Return a ``(channels, codes)`` 0/1 matrix: which cell codes each channel counts."""
    masks = _decode(codes)
    return np.stack([masks[name] for name in CHANNELS]).astype(float)


@dataclass(frozen=True)
class CellDefinition:
    """How cases are sorted into cells: the outcome labels and amount options."""

    favourable: tuple[str, ...]
    review: tuple[str, ...]
    pred_positive: tuple[str, ...]
    truth_positive: tuple[str, ...]
    amount_tolerance: float
    score_bins: int

    @classmethod
    def confusion(cls) -> CellDefinition:
        """The definition of statistics built from a confusion table (no labels)."""
        return cls((), (), (), (), 0.0, 0)


def _labels(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SpecError(f"{key} must be a list of outcome labels. Got {value!r}.")
    out = tuple(value)
    if not all(isinstance(v, str) for v in out):
        raise SpecError(f"{key} must be a list of outcome labels (strings). Got {list(out)!r}.")
    return out


def make_definition(
    *,
    favourable: Sequence[str],
    review: Sequence[str],
    pred_positive: Sequence[str],
    truth_positive: Sequence[str] | None,
    amount_tolerance: float,
    score_bins: int,
) -> CellDefinition:
    """Validate the outcome options of a measurement and freeze them."""
    fav = _labels(favourable, "favourable")
    rev = _labels(review, "review")
    pos = _labels(pred_positive, "pred_positive")
    tpos = pos if truth_positive is None else _labels(truth_positive, "truth_positive")
    both = sorted(set(fav) & set(rev))
    if both:
        raise SpecError(f"favourable and review must not share labels. Got {both[0]!r} in both.")
    if not fav:
        raise SpecError("favourable must name at least one outcome label. Got [].")
    if not pos:
        raise SpecError("pred_positive must name at least one outcome label. Got [].")
    if isinstance(amount_tolerance, bool) or not isinstance(amount_tolerance, (int, float)) or not (
        amount_tolerance >= 0 and np.isfinite(amount_tolerance)
    ):
        raise SpecError(f"amount_tolerance must be a number of SEK >= 0. Got {amount_tolerance!r}.")
    if isinstance(score_bins, bool) or not isinstance(score_bins, (int, np.integer)) or not 2 <= score_bins <= 100_000:
        raise SpecError(f"score_bins must be an integer between 2 and 100000. Got {score_bins!r}.")
    return CellDefinition(fav, rev, pos, tpos, float(amount_tolerance), int(score_bins))


def masked_matmul(counts: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """``counts @ mat.T`` where a NaN count makes NaN only the channels that use it."""
    nan = np.isnan(counts)
    out = np.where(nan, 0.0, counts) @ mat.T
    if nan.any():
        out[(nan.astype(float) @ mat.T) > 0] = np.nan
    return out
