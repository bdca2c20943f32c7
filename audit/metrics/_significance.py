"""Hypothesis tests, multiple-testing correction and detectable differences.

An audit compares every group with a reference group on many metrics. Each
comparison is a hypothesis test: is the refusal rate of applicants born
outside the EU different from that of applicants born in Sweden? With dozens
of groups and metrics, some comparisons look "significant" by chance alone,
so the p-values of *every* test of a run are corrected together: Holm's
step-down method by default (controls the family-wise error rate), or
Benjamini–Hochberg (controls the false discovery rate) as an option.

A test that finds nothing is only informative if it could have found
something. For each comparison Insyn reports the *minimum detectable
difference*: the smallest true difference that the test would detect with
80 % power at the run's sample sizes.

Tests used:

* rates: the pooled two-proportion z-test, or Fisher's exact test when any
  expected cell count is below 5;
* means of amounts: Welch's unequal-variance t-test;
* ratios of sums and AUCs: a z-test on delta-method (or Hanley–McNeil)
  standard errors.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from audit._distributions import fisher_exact_pvalue, norm_ppf, norm_sf, t_sf

__all__ = [
    "CORRECTIONS",
    "adjust_pvalues",
    "mdd_means",
    "mdd_proportions",
    "proportion_null_se",
    "two_proportion_test",
    "welch_test",
    "z_power_sum",
    "z_test",
]

CORRECTIONS: tuple[str, ...] = ("holm", "bh", "bonferroni", "none")
"""Multiple-testing corrections that :func:`adjust_pvalues` knows."""

FISHER = "Fisher's exact test"
Z_PROPORTIONS = "two-proportion z-test"
WELCH = "Welch's t-test"

_POWER = 0.8


def adjust_pvalues(p: Any, method: Literal["holm", "bh", "bonferroni", "none"] = "holm") -> np.ndarray:
    """Adjust p-values for multiple testing.

    Parameters
    ----------
    p : array_like
        Raw p-values. NaN entries (tests that could not be run) are ignored:
        they do not count in the number of tests ``m`` and stay NaN.
    method : {"holm", "bh", "bonferroni", "none"}, default "holm"
        ``holm``: Holm's step-down; with the ``m`` valid p-values sorted,
        ``p_(i)`` becomes ``max_{j<=i} min(1, (m - j + 1) p_(j))``.
        ``bh``: Benjamini–Hochberg; ``p_(i)`` becomes
        ``min_{j>=i} min(1, m p_(j) / j)``. ``bonferroni``: ``min(1, m p)``.
        ``none``: unchanged.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the input order and shape.

    Raises
    ------
    ValueError
        For an unknown method or a p-value outside [0, 1].
    """
    if method not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}. Got {method!r}.")
    arr = np.asarray(p, dtype=float)
    flat = arr.ravel().copy()
    valid = ~np.isnan(flat)
    vals = flat[valid]
    if ((vals < 0) | (vals > 1)).any():
        bad = vals[(vals < 0) | (vals > 1)][0]
        raise ValueError(f"p-values must lie between 0 and 1. Got {bad!r}.")
    m = vals.size
    if m == 0 or method == "none":
        return arr.copy()
    if method == "bonferroni":
        adj = np.minimum(1.0, m * vals)
    else:
        order = np.argsort(vals, kind="stable")
        sorted_p = vals[order]
        ranks = np.arange(1, m + 1)
        if method == "holm":
            adj_sorted = np.maximum.accumulate(np.minimum(1.0, (m - ranks + 1) * sorted_p))
        else:  # bh
            adj_sorted = np.minimum.accumulate(np.minimum(1.0, m * sorted_p / ranks)[::-1])[::-1]
        adj = np.empty(m)
        adj[order] = adj_sorted
    flat[valid] = adj
    return flat.reshape(arr.shape)


def two_proportion_test(
    k1: Any, n1: Any, k0: Any, n0: Any, *, min_expected: float = 5.0
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided test of ``k1/n1 == k0/n0`` for many pairs at once.

    Parameters
    ----------
    k1, n1, k0, n0 : array_like
        Counts of the group and of the reference group.
    min_expected : float, default 5
        Fisher's exact test is used when any of the four expected cell counts
        under the pooled rate is below this; the pooled z-test otherwise.

    Returns
    -------
    p_value : numpy.ndarray
        NaN where a denominator is 0 or a count is NaN.
    test : numpy.ndarray of str
        ``"two-proportion z-test"``, ``"Fisher's exact test"`` or ``""``.

    Notes
    -----
    The z statistic is ``(p1 - p0) / sqrt(p (1 - p) (1/n1 + 1/n0))`` with the
    pooled ``p = (k1 + k0) / (n1 + n0)``; it equals the Pearson chi-square
    test without continuity correction. Fisher's test needs whole counts:
    counts derived from published percentages are rounded for it.
    """
    k1, n1, k0, n0 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (k1, n1, k0, n0)))
    shape = k1.shape
    k1, n1, k0, n0 = (v.ravel() for v in (k1, n1, k0, n0))
    p_value = np.full(k1.size, np.nan)
    test = np.full(k1.size, "", dtype=object)
    valid = np.isfinite(k1 + n1 + k0 + n0) & (n1 > 0) & (n0 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (k1 + k0) / (n1 + n0)
        expected = np.minimum.reduce([n1 * pooled, n1 * (1 - pooled), n0 * pooled, n0 * (1 - pooled)])
        small = valid & (expected < min_expected)
        large = valid & ~small
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
        z = (k1 / n1 - k0 / n0) / se
    p_value[large] = 2 * norm_sf(np.abs(z[large]))
    test[large] = Z_PROPORTIONS
    for i in np.flatnonzero(small):
        a, b = round(k1[i]), round(n1[i] - k1[i])
        c, d = round(k0[i]), round(n0[i] - k0[i])
        p_value[i] = fisher_exact_pvalue([[a, b], [c, d]])
        test[i] = FISHER
    return p_value.reshape(shape), test.reshape(shape)


def welch_test(
    mean1: Any, var1: Any, n1: Any, mean0: Any, var0: Any, n0: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Welch's two-sided t-test of equal means, from summary statistics.

    Parameters
    ----------
    mean1, var1, n1, mean0, var0, n0 : array_like
        Means, sample variances (``ddof=1``) and sizes of the two groups.

    Returns
    -------
    p_value, se, df : numpy.ndarray
        ``se = sqrt(var1/n1 + var0/n0)`` and the Welch–Satterthwaite degrees of
        freedom; NaN where a group has fewer than 2 cases or ``se`` is 0.
    """
    m1, v1, n1, m0, v0, n0 = (np.asarray(x, dtype=float) for x in (mean1, var1, n1, mean0, var0, n0))
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = v1 / n1, v0 / n0
        se = np.sqrt(a + b)
        df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n0 - 1))
        t = (m1 - m0) / se
        ok = (n1 >= 2) & (n0 >= 2) & (se > 0) & np.isfinite(t)
        p = np.where(ok, 2 * t_sf(np.abs(t), df), np.nan)
    return p, np.where(ok, se, np.nan), np.where(ok, df, np.nan)


def z_test(estimate1: Any, se1: Any, estimate0: Any, se0: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided z-test of equal estimates from independent groups.

    Returns
    -------
    p_value, se : numpy.ndarray
        ``se = sqrt(se1² + se0²)``; NaN where it is 0 or not finite.
    """
    e1, s1, e0, s0 = (np.asarray(x, dtype=float) for x in (estimate1, se1, estimate0, se0))
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(s1**2 + s0**2)
        z = (e1 - e0) / se
        ok = (se > 0) & np.isfinite(z)
    return np.where(ok, 2 * norm_sf(np.abs(z)), np.nan), np.where(ok, se, np.nan)


def z_power_sum(alpha: Any) -> np.ndarray:
    """``z_{1-alpha/2} + z_{0.8}``: the multiplier of a standard error in a detectable difference."""
    return norm_ppf(1 - np.asarray(alpha, dtype=float) / 2) + norm_ppf(_POWER)


def mdd_proportions(k0: Any, n0: Any, n1: Any, *, alpha: Any) -> np.ndarray:
    """Minimum detectable difference of a rate against a reference rate.

    ``(z_{1-alpha/2} + z_{0.8}) * sqrt(p (1 - p) (1/n1 + 1/n0))`` with the
    reference rate smoothed as ``p = (k0 + 1) / (n0 + 2)`` so that a reference
    rate of 0 or 1 still gives a usable (non-zero) answer. This is the normal
    approximation of a two-sided test with 80 % power when both groups share
    the reference rate under the null.
    """
    return z_power_sum(alpha) * proportion_null_se(k0, n0, n1)


def proportion_null_se(k0: Any, n0: Any, n1: Any) -> np.ndarray:
    """``sqrt(p (1 - p) (1/n1 + 1/n0))`` with ``p = (k0 + 1) / (n0 + 2)``; see :func:`mdd_proportions`."""
    k0, n0, n1 = (np.asarray(x, dtype=float) for x in (k0, n0, n1))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (k0 + 1) / (n0 + 2)
        out = np.sqrt(p * (1 - p) * (1 / n1 + 1 / n0))
    return np.where((n0 > 0) & (n1 > 0), out, np.nan)


def mdd_means(se: Any, *, alpha: Any) -> np.ndarray:
    """Minimum detectable difference of two estimates with standard error ``se``.

    ``(z_{1-alpha/2} + z_{0.8}) * se`` where ``se`` is the standard error of the
    difference (``sqrt(v1/n1 + v0/n0)`` for means).
    """
    return z_power_sum(alpha) * np.asarray(se, dtype=float)
