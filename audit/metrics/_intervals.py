"""Confidence intervals for rates, and the multinomial bootstrap.

A rate such as "share of applications refused" is a binomial proportion
``k / n``. Its interval must stay inside [0, 1] and behave for small ``n`` and
for ``k`` near 0 or ``n``: the Wald interval does neither, so Insyn uses the
Wilson score interval for every rate, and the exact Clopper–Pearson interval
where an auditor wants a guaranteed coverage (published confusion tables).

Differences and ratios between two groups come from a bootstrap. Because
every count metric is a function of the counts of a handful of disjoint cells
(status × routing × decision × truth × prediction per group), resampling the
rows of a run with replacement is *exactly* a draw from a multinomial
distribution over those cells: ``Multinomial(N, counts / N)``. Drawing the
cells instead of the rows costs ``O(cells)`` per draw instead of ``O(rows)``
and gives the same distribution as fairlearn's row bootstrap.

When the bootstrap is turned off (``statistics.bootstrap: 0``), differences use
Newcombe's hybrid score interval and ratios Katz's log interval, both analytic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audit._distributions import beta_ppf, norm_ppf
from audit.exceptions import DataError

__all__ = [
    "clopper_pearson_interval",
    "katz_ratio_interval",
    "multinomial_bootstrap",
    "newcombe_difference_interval",
    "wilson_interval",
]

_BLOCK_CELLS = 4_000_000
"""Largest number of cells drawn at once (draws × cells) to bound memory."""


def _as_float(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number between 0 and 1 (exclusive). Got {alpha!r}.")
    return float(norm_ppf(1 - alpha / 2))


def wilson_interval(k: Any, n: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion ``k / n``.

    Parameters
    ----------
    k : array_like
        Numerators (successes); non-integer values (counts derived from
        published percentages) are allowed.
    n : array_like
        Denominators. Where ``n`` is 0 or NaN the interval is NaN.
    alpha : float, default 0.05
        One minus the confidence level.

    Returns
    -------
    low, high : numpy.ndarray
        Bounds, clipped to [0, 1]; exactly 0 where ``k == 0`` and exactly 1
        where ``k == n``.

    Notes
    -----
    With ``p = k / n`` and ``z`` the ``1 - alpha/2`` normal quantile::

        centre = (p + z²/(2n)) / (1 + z²/n)
        half   = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/(4n²))
    """
    k_arr, n_arr = np.broadcast_arrays(_as_float(k), _as_float(n))
    z = _z(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k_arr / n_arr
        z2n = z * z / n_arr
        centre = (p + z2n / 2) / (1 + z2n)
        half = z / (1 + z2n) * np.sqrt(p * (1 - p) / n_arr + z2n / (4 * n_arr))
    low = np.clip(centre - half, 0.0, 1.0)
    high = np.clip(centre + half, 0.0, 1.0)
    valid = n_arr > 0
    low = np.where(valid, np.where(k_arr <= 0, 0.0, low), np.nan)
    high = np.where(valid, np.where(k_arr >= n_arr, 1.0, high), np.nan)
    return low, high


def clopper_pearson_interval(k: Any, n: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper–Pearson) interval of a binomial proportion ``k / n``.

    Parameters
    ----------
    k, n : array_like
        Numerators and denominators; NaN or ``n == 0`` gives NaN.
    alpha : float, default 0.05
        One minus the confidence level.

    Returns
    -------
    low, high : numpy.ndarray
        ``low = Beta(alpha/2; k, n-k+1)`` (0 when ``k == 0``) and
        ``high = Beta(1-alpha/2; k+1, n-k)`` (1 when ``k == n``).
    """
    k_arr, n_arr = np.broadcast_arrays(_as_float(k), _as_float(n))
    _z(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = beta_ppf(alpha / 2, k_arr, n_arr - k_arr + 1)
        high = beta_ppf(1 - alpha / 2, k_arr + 1, n_arr - k_arr)
    valid = n_arr > 0
    low = np.where(valid, np.where(k_arr <= 0, 0.0, low), np.nan)
    high = np.where(valid, np.where(k_arr >= n_arr, 1.0, high), np.nan)
    return np.asarray(low, dtype=float), np.asarray(high, dtype=float)


def newcombe_difference_interval(
    k1: Any, n1: Any, k0: Any, n0: Any, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval for ``k1/n1 - k0/n0`` (his method 10).

    Built from the two Wilson intervals ``(l1, u1)`` and ``(l0, u0)``::

        low  = d - sqrt((p1 - l1)² + (u0 - p0)²)
        high = d + sqrt((u1 - p1)² + (p0 - l0)²)
    """
    k1, n1, k0, n0 = (_as_float(v) for v in (k1, n1, k0, n0))
    l1, u1 = wilson_interval(k1, n1, alpha)
    l0, u0 = wilson_interval(k0, n0, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p0 = k1 / n1, k0 / n0
    d = p1 - p0
    return d - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)


def katz_ratio_interval(
    k1: Any, n1: Any, k0: Any, n0: Any, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Katz's log interval for the ratio ``(k1/n1) / (k0/n0)``.

    ``exp(log r ± z * sqrt((1-p1)/k1 + (1-p0)/k0))``; NaN when either count is 0.
    """
    k1, n1, k0, n0 = (_as_float(v) for v in (k1, n1, k0, n0))
    z = _z(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p0 = k1 / n1, k0 / n0
        log_r = np.log(p1 / p0)
        se = np.sqrt((1 - p1) / k1 + (1 - p0) / k0)
        ok = (k1 > 0) & (k0 > 0)
        low = np.where(ok, np.exp(log_r - z * se), np.nan)
        high = np.where(ok, np.exp(log_r + z * se), np.nan)
    return low, high


def multinomial_bootstrap(counts: Any, *, draws: int = 2000, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Resample cell counts: ``draws`` draws from ``Multinomial(N, counts / N)``.

    This is the row bootstrap (resample all ``N`` rows with replacement) done on
    the counts of disjoint cells: the number of resampled rows that fall in each
    cell is multinomial with the observed cell shares.

    Parameters
    ----------
    counts : array_like of non-negative integers
        Cell counts of any shape; every cell of every group of a run, so that
        the draws keep the joint distribution (as a row bootstrap does).
    draws : int, default 2000
        Number of bootstrap draws.
    seed : int or numpy.random.Generator, default 0
        Seed of ``numpy.random.default_rng``; the same seed gives the same draws.

    Returns
    -------
    numpy.ndarray of int64, shape ``(draws, *counts.shape)``

    Raises
    ------
    DataError
        When a count is negative, not finite or not a whole number.
    """
    arr = np.asarray(counts, dtype=float)
    flat = arr.ravel()
    bad = ~np.isfinite(flat) | (flat < 0) | (flat != np.round(flat))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"multinomial_bootstrap: counts must be whole numbers >= 0. Got {flat[i]!r} at position {i}."
        )
    if not isinstance(draws, (int, np.integer)) or draws < 1:
        raise ValueError(f"multinomial_bootstrap: draws must be an integer >= 1. Got {draws!r}.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    flat_int = flat.astype(np.int64)
    total = int(flat_int.sum())
    out = np.zeros((int(draws), flat.size), dtype=np.int64)
    nonzero = np.flatnonzero(flat_int)
    if total == 0 or nonzero.size == 0:
        return out.reshape((int(draws), *arr.shape))
    p = flat_int[nonzero] / total
    block = max(1, _BLOCK_CELLS // nonzero.size)
    for start in range(0, int(draws), block):
        stop = min(int(draws), start + block)
        out[start:stop, nonzero] = rng.multinomial(total, p, size=stop - start)
    return out.reshape((int(draws), *arr.shape))
