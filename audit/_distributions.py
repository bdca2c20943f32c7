"""Quantiles and tail probabilities of the normal, Student t and beta distributions, without ``scipy.stats``.

Every interval and p-value Insyn reports comes from one of four distribution
functions: the normal quantile (Wald and Wilson intervals, minimum detectable
differences), the normal upper tail (z tests), Student's t (intervals on
means, Welch's test) and the beta quantile (Clopper-Pearson intervals).
``scipy.stats`` computes them by calling ``scipy.special``; importing
``scipy.stats`` itself costs about a second, longer than a 20,000-case audit
spends on all its statistics. This module calls the same ``scipy.special``
functions ``scipy.stats`` calls, so the values are bit-identical (tested
against ``scipy.stats`` over grids of arguments); Fisher's exact test sums
hypergeometric probabilities from the log-gamma function and agrees with
``scipy.stats.fisher_exact`` to rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

__all__ = ["beta_ppf", "fisher_exact_pvalue", "norm_ppf", "norm_sf", "t_ppf", "t_sf"]


def norm_ppf(q: Any) -> Any:
    """Quantile of the standard normal distribution (``scipy.stats.norm.ppf``)."""
    return special.ndtri(q)


def norm_sf(x: Any) -> Any:
    """Upper tail ``P(Z > x)`` of the standard normal distribution (``scipy.stats.norm.sf``)."""
    return special.ndtr(-np.asarray(x, dtype=float))


def t_ppf(q: Any, df: Any) -> Any:
    """Quantile of Student's t distribution with ``df`` degrees of freedom (``scipy.stats.t.ppf``)."""
    return special.stdtrit(df, q)


def t_sf(x: Any, df: Any) -> Any:
    """Upper tail ``P(T > x)`` of Student's t distribution (``scipy.stats.t.sf``)."""
    return special.stdtr(df, -np.asarray(x, dtype=float))


def beta_ppf(q: Any, a: Any, b: Any) -> Any:
    """Quantile of the beta distribution with shapes ``a`` and ``b`` (``scipy.stats.beta.ppf``); NaN where a shape is 0."""
    return special.betaincinv(a, b, q)


_TIES = 1 + 1e-7
"""Tables whose probability is within this factor of the observed one count as "as extreme" (R's ``fisher.test``)."""


def fisher_exact_pvalue(table: Any) -> float:
    """Two-sided p-value of Fisher's exact test on a 2 x 2 table.

    The sum of the hypergeometric probabilities of every table with the
    observed margins that is no more probable than the observed one (up to
    a relative ``1e-7``, R's ``fisher.test`` rule, so that tables tied in
    exact arithmetic stay tied after rounding). A table with an empty row or
    column gives 1. Agrees with ``scipy.stats.fisher_exact`` (tested over
    thousands of random tables) without importing ``scipy.stats``.

    Parameters
    ----------
    table : array_like
        ``[[a, b], [c, d]]``, non-negative whole counts.

    Returns
    -------
    float
        The p-value, at most 1.
    """
    (a, b), (c, d) = np.asarray(table, dtype=np.int64).tolist()
    if min(a, b, c, d) < 0:
        raise ValueError(f"Fisher's exact test needs non-negative counts; got {[[a, b], [c, d]]}.")
    row1, row2, col1 = a + b, c + d, a + c
    if 0 in (row1, row2, col1, b + d):
        return 1.0
    x = np.arange(max(0, col1 - row2), min(row1, col1) + 1, dtype=float)
    log_pmf = _log_choose(row1, x) + _log_choose(row2, col1 - x)  # up to the constant log(N choose col1)
    extreme = log_pmf - log_pmf[int(a - x[0])] <= np.log(_TIES)
    pmf = np.exp(log_pmf - log_pmf.max())  # normalised by their sum, so rounding cannot push p past 1
    return min(float(pmf[extreme].sum() / pmf.sum()), 1.0)


def _log_choose(n: Any, k: Any) -> Any:
    """``log(n choose k)`` by the log-gamma function."""
    return special.gammaln(n + 1.0) - special.gammaln(k + 1.0) - special.gammaln(n - k + 1.0)
