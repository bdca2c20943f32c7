"""How much of a disparity each stage of the data journey, and the rules, contribute.

The disparity is a rate of the engine's decisions (``refer_rate``: the share
routed to a caseworker; ``automation_rate``: the share decided without one)
of a group against a reference group, as a ratio (parity 1) or a
difference (parity 0). ``D(S)`` is that disparity when only the stages in
coalition ``S`` keep their changes to the data (:mod:`audit.attribution._replay`).

* The **rules** contribute ``D(none) - parity``: the disparity the engine
  produces on the true circumstances, where no stage has changed anything.
* Each **stage** contributes its exact Shapley value of the game
  ``v(S) = D(S) - D(none)`` (:mod:`audit.attribution._shapley`).

They add up to the **total**, ``D(all) - parity``: the disparity of the run
as recorded. Intervals come from a case bootstrap that resamples the cases
of the two groups and recomputes every coalition's rates from the cached
decisions (no engine call per draw): cases are collapsed into patterns
(group, decision under each coalition) and a draw is a multinomial count
per pattern, which is exactly a resample of cases.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from audit.attribution._replay import Replays, coalition_name
from audit.attribution._shapley import shapley_matrix

__all__ = ["Attribution", "RULES", "attribution_rows", "disparities"]

RULES = "rules"
"""The name of the rules' player in the attribution table."""


@dataclass(frozen=True)
class Attribution:
    """The attribution of one disparity: its rows, the per-coalition disparities and the replays.

    Attributes
    ----------
    rows : list of dict
        One row per stage and one for the rules (``results.json``'s
        ``attribution`` list).
    values : numpy.ndarray
        ``D(S)`` for every coalition (bit ``j`` set: stage ``j`` kept).
    replays : Replays
        Every case's decision under every coalition.
    info : dict
        Metric, groups, scale, engine calls and cases replayed.
    """

    rows: list[dict[str, Any]]
    values: np.ndarray
    replays: Replays
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def notes(self) -> dict[str, Any]:
        """The journey's notes on the attribution step: engine calls and cases replayed."""
        return {"engine_passes": self.info.get("engine_passes", 0), "rows_replayed": self.info.get("rows_replayed", 0)}

    def frame(self) -> pd.DataFrame:
        """``attribution.parquet``: per case, the stages that changed it and its outcome under each coalition.

        Column ``outcome[<stages kept>]`` holds the engine's outcome when the
        named stages keep their changes and every other stage's fields hold
        the true circumstances (``outcome[none]``: the true data).
        """
        r = self.replays
        out: dict[str, Any] = {"case_id": r.case_id.astype(str)}
        out["stages_changed"] = [";".join(s for s, c in zip(r.stages, row, strict=True) if c) for row in r.changed]
        for c in range(r.codes.shape[1]):
            out[f"outcome[{coalition_name(c, r.stages)}]"] = r.outcomes(c).astype(str)
        return pd.DataFrame(out)


_EPS = 1e-12
"""Contributions closer to 0 than this are floating-point noise of the Shapley sums and read as 0."""


def _clean(x: float) -> float:
    return 0.0 if abs(x) < _EPS else float(x)


def _rates(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def disparities(rate_group: np.ndarray, rate_reference: np.ndarray, scale: str) -> np.ndarray:
    """``D`` from the two groups' rates: their ratio (NaN where the reference rate is 0) or difference."""
    if scale == "difference":
        return rate_group - rate_reference
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rate_reference > 0, rate_group / np.where(rate_reference > 0, rate_reference, 1), np.nan)


def _decompose(d: np.ndarray, parity: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stage contributions, rules contribution, total) for ``D`` of shape (..., 2**k)."""
    k = int(round(np.log2(d.shape[-1])))
    phi = (d - d[..., :1]) @ shapley_matrix(k).T
    return phi, d[..., 0] - parity, d[..., -1] - parity


def attribution_rows(
    replays: Replays,
    group_values: np.ndarray,
    *,
    metric: str,
    attribute: str,
    group: str,
    reference: str,
    scale: str,
    review: list[str],
    min_group_size: int,
    bootstrap: int,
    alpha: float,
    seed: int,
) -> Attribution:
    """Decompose the disparity of ``group`` against ``reference`` into stages and rules.

    Parameters
    ----------
    replays : Replays
        Every case's decision under every coalition.
    group_values : numpy.ndarray
        The attribute's value of each case, aligned with ``replays.case_id``.
    metric : {"refer_rate", "automation_rate"}
        The rate of the engine's decisions.
    attribute, group, reference : str
        The sensitive attribute and its two groups.
    scale : {"ratio", "difference"}
        How the two rates are compared.
    review : list of str
        The review labels (``outcomes.review``).
    min_group_size : int
        Groups smaller than this are suppressed (contributions null, with a reason).
    bootstrap : int
        Bootstrap draws (0: no intervals).
    alpha : float
        Intervals are ``1 - alpha`` percentile intervals.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    Attribution
    """
    codes = replays.codes
    review_codes = [i for i, label in enumerate(replays.labels) if label in review]
    valid = codes >= 0
    referred = np.isin(codes, review_codes) & valid
    y = referred if metric == "refer_rate" else valid & ~referred
    values = np.asarray(group_values).astype(object)
    in_g, in_r = values == group, values == reference
    n_g, n_r = int(in_g.sum()), int(in_r.sum())
    parity = 1.0 if scale == "ratio" else 0.0

    def rate(mask: np.ndarray) -> np.ndarray:
        return _rates(y[mask].sum(axis=0), valid[mask].sum(axis=0))

    d = disparities(rate(in_g), rate(in_r), scale)
    phi, rules, total = _decompose(d, parity)
    k = len(replays.stages)
    reason = ""
    if min(n_g, n_r) < min_group_size:
        reason = (f"suppressed: {group if n_g < n_r else reference} has {min(n_g, n_r)} cases, fewer than "
                  f"statistics.min_group_size ({min_group_size})")
    elif not np.isfinite(d).all():
        reason = ("undefined: the reference group's rate is 0 under some coalition, so the ratio is undefined"
                  if scale == "ratio" else "undefined: a group has no decided case under some coalition")
    lows = highs = np.full(k + 1, np.nan)
    if bootstrap > 0 and not reason:
        lows, highs = _intervals(y, valid, in_g, in_r, scale, parity, bootstrap, alpha,
                                 np.random.default_rng([seed, zlib.crc32(b"attribution")]))
    contributions = [_clean(x) for x in (*phi.tolist(), float(rules))]
    lows, highs = np.where(np.abs(lows) < _EPS, 0.0, lows), np.where(np.abs(highs) < _EPS, 0.0, highs)
    players = [*replays.stages, RULES]
    rows = []
    for i, player in enumerate(players):
        bad = bool(reason)
        c = None if bad else float(contributions[i])
        rows.append({
            "metric": metric, "attributes": [attribute], "group": group, "reference_group": reference,
            "scale": scale, "stage": player,
            "contribution": c,
            "ci_low": None if bad or not np.isfinite(lows[i]) else float(lows[i]),
            "ci_high": None if bad or not np.isfinite(highs[i]) else float(highs[i]),
            "share": None if bad or total == 0 else float(contributions[i] / total),
            "total": None if bad else float(total),
            "columns": list(replays.columns.get(player, [])),
            "cases_changed": int(replays.changed[:, i].sum()) if i < k else 0,
            "n_group": n_g, "n_reference": n_r,
            "reason": reason,
        })
    info = {"metric": metric, "attribute": attribute, "group": group, "reference_group": reference,
            "scale": scale, "stages": list(replays.stages), "engine_passes": replays.passes,
            "rows_replayed": replays.rows_replayed, "bootstrap": bootstrap,
            "coalitions": {coalition_name(c, replays.stages): (None if not np.isfinite(v) else float(v))
                           for c, v in enumerate(d)}}
    return Attribution(rows=rows, values=d, replays=replays, info=info)


def _intervals(y: np.ndarray, valid: np.ndarray, in_g: np.ndarray, in_r: np.ndarray, scale: str, parity: float,
               draws: int, alpha: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Percentile intervals of every contribution from a case bootstrap of the two groups' cases."""
    keep = in_g | in_r
    bits = np.uint64(1) << np.arange(y.shape[1], dtype=np.uint64)
    packed = pd.DataFrame({"g": in_g[keep], "y": (y[keep] * bits).sum(axis=1, dtype=np.uint64),
                           "v": (valid[keep] * bits).sum(axis=1, dtype=np.uint64)})
    counted = packed.value_counts(sort=False)  # one row per pattern (group, decisions of every coalition)
    patterns = counted.index.to_frame(index=False)
    counts = counted.to_numpy(dtype=float)
    m = int(keep.sum())
    w = rng.multinomial(m, counts / m, size=draws).astype(float)  # (draws, patterns)
    g = patterns["g"].to_numpy(dtype=bool)
    yy = (patterns["y"].to_numpy(dtype=np.uint64)[:, None] & bits != 0).astype(float)
    vv = (patterns["v"].to_numpy(dtype=np.uint64)[:, None] & bits != 0).astype(float)
    rg = _rates(w @ (yy * g[:, None]), w @ (vv * g[:, None]))
    rr = _rates(w @ (yy * ~g[:, None]), w @ (vv * ~g[:, None]))
    d = disparities(rg, rr, scale)
    phi, rules, _ = _decompose(d, parity)
    both = np.column_stack([phi, rules])
    ok = np.isfinite(both).all(axis=1)
    if ok.sum() < 0.9 * draws:
        nan = np.full(both.shape[1], np.nan)
        return nan, nan
    lo, hi = np.percentile(both[ok], [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
    return lo, hi
