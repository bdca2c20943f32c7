"""Scores and sequential tests for monitoring: change scores, CUSUM and its run length.

Each monitored *stream* (one metric for one group) gives one score per period:
a standard normal deviate ``z`` that says how far this period's value is from
the baseline, given the sampling noise of both (see the package docstring for
the formulas). This module turns counts and estimates into such scores, keeps
the two-sided CUSUM of the scores, and computes the CUSUM's average run length
(ARL) so that its decision limit can be chosen for a target rate of false
alarms.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from audit.exceptions import SpecError

__all__ = [
    "change_limit",
    "cusum_arl",
    "cusum_limit",
    "cusum_statistics",
    "dispersion_mean",
    "dispersion_proportion",
    "mean_scores",
    "proportion_scores",
    "t_to_normal",
]

_STATES = 200
"""States of the Markov-chain approximation of the CUSUM (Brook and Evans, 1972)."""

_MAX_Z = 37.0
"""Scores are clipped here: beyond it the normal tail underflows double precision."""


# --------------------------------------------------------------------------
# run length and limits


def _check_positive(name: str, value: float, *, strict: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{name} must be a number. Got {value!r}.") from None
    if math.isnan(v) or (v <= 0 if strict else v < 0):
        raise SpecError(f"{name} must be a number {'>' if strict else '>='} 0. Got {value!r}.")
    return v


def cusum_arl(h: float, *, k: float = 0.5, shift: float = 0.0, states: int = _STATES) -> float:
    """Average run length of a one-sided CUSUM of normal scores.

    The CUSUM is ``S_0 = 0``, ``S_t = max(0, S_{t-1} + z_t - k)`` with
    ``z_t ~ N(shift, 1)`` independent; it signals at the first ``t`` with
    ``S_t > h``. The ARL is the expected ``t``, computed with the Markov-chain
    approximation of Brook and Evans (1972): ``[0, h]`` is cut into
    ``states`` cells (the first holds 0), ``R`` is the matrix of transition
    probabilities between cells, and ``ARL = ((I - R)^{-1} 1)_0``.

    Parameters
    ----------
    h : float
        Decision limit, > 0.
    k : float, default 0.5
        Reference value (allowance), >= 0; ``k = delta / 2`` is optimal for a
        shift of ``delta`` standard deviations.
    shift : float, default 0.0
        Mean of the scores: 0 gives the in-control ARL (time to a false
        alarm), a positive shift the out-of-control ARL (time to detection).
    states : int, default 200
        Cells of the approximation; 200 give about 4 significant digits
        (930.75 against 930.88 with 800 cells for ``h = 5, k = 0.5``).

    Returns
    -------
    float
        The ARL in periods.

    Examples
    --------
    >>> round(cusum_arl(5.0, k=0.5))  # doctest: +SKIP
    930
    """
    h = _check_positive("h", h)
    k = _check_positive("k", k, strict=False)
    if states < 10:
        raise SpecError(f"states must be an integer >= 10. Got {states!r}.")
    width = 2.0 * h / (2 * states - 1)
    centres = np.arange(states) * width
    upper_edges = (np.arange(states) + 0.5) * width
    below = special.ndtr(upper_edges[None, :] - centres[:, None] + k - shift)
    r = np.diff(below, axis=1, prepend=0.0)
    arl = np.linalg.solve(np.eye(states) - r, np.ones(states))
    return float(arl[0])


def _siegmund_arl(h: float, k: float) -> float:
    """Siegmund's (1985) approximation of the in-control ARL, used to bracket the exact one."""
    b = h + 1.166
    if k < 1e-9:
        return b * b
    return (math.exp(2 * k * b) - 2 * k * b - 1) / (2 * k * k)


@lru_cache(maxsize=256)
def _limit(arl: float, k: float) -> float:
    target = math.log(arl)

    def exact_gap(h: float) -> float:
        return math.log(cusum_arl(h, k=k)) - target

    def rough_gap(h: float) -> float:
        return math.log(_siegmund_arl(h, k)) - target

    if rough_gap(1e-3) >= 0:
        guess = 1e-3
    else:
        high = 1.0
        while rough_gap(high) < 0:
            high *= 2.0
        guess = float(optimize.brentq(rough_gap, 1e-3, high, xtol=1e-4))
    low, high = max(1e-3, guess - 0.25), guess + 0.25
    while exact_gap(low) > 0 and low > 1e-3:
        low = max(1e-3, low - 0.5)
    if exact_gap(low) >= 0:
        return low
    while exact_gap(high) < 0:
        high += 0.5
    return float(optimize.brentq(exact_gap, low, high, xtol=1e-5))


def cusum_limit(arl: float, *, k: float = 0.5) -> float:
    """Decision limit ``h`` of a one-sided CUSUM with the given in-control ARL.

    Solves ``cusum_arl(h, k=k) = arl`` for ``h`` (the ARL increases with ``h``).

    Parameters
    ----------
    arl : float
        Target in-control average run length in periods, >= 2.
    k : float, default 0.5
        Reference value (see :func:`cusum_arl`).

    Returns
    -------
    float

    Raises
    ------
    SpecError
        When ``arl`` is not a number >= 2 or ``k`` is negative.
    """
    a = _check_positive("arl", arl)
    if a < 2 or a > 1e15:
        raise SpecError(f"arl must be a number between 2 and 1e15 (periods). Got {arl!r}.")
    kk = _check_positive("k", k, strict=False)
    return _limit(float(f"{a:.6g}"), float(f"{kk:.6g}"))


def change_limit(false_alarm_rate: float) -> float:
    """Limit ``c`` on ``|z|`` with ``P(|Z| > c) = false_alarm_rate`` for standard normal ``Z``.

    Parameters
    ----------
    false_alarm_rate : float
        Two-sided tail probability, in (0, 1).

    Returns
    -------
    float
    """
    p = _check_positive("false_alarm_rate", false_alarm_rate)
    if p >= 1:
        raise SpecError(f"false_alarm_rate must be a number in (0, 1). Got {false_alarm_rate!r}.")
    return float(stats.norm.isf(p / 2.0))


def cusum_statistics(
    upper: np.ndarray, lower: np.ndarray, z: np.ndarray, *, k: float
) -> tuple[np.ndarray, np.ndarray]:
    """One step of the two-sided CUSUM of normal scores.

    ``U_t = max(0, U_{t-1} + z_t - k)`` accumulates evidence of an increase,
    ``L_t = max(0, L_{t-1} - z_t - k)`` of a decrease. Where ``z`` is NaN (no
    score this period) the state is carried over unchanged. The caller
    compares the result with the limit ``h`` and stores 0 for a side that
    signalled (a CUSUM restarts after a signal).

    Parameters
    ----------
    upper, lower : numpy.ndarray
        State after the previous period (0 for a new stream).
    z : numpy.ndarray
        Scores of this period.
    k : float
        Reference value.

    Returns
    -------
    (upper, lower)
        The statistics of this period.
    """
    u = np.asarray(upper, dtype="float64")
    lo = np.asarray(lower, dtype="float64")
    zz = np.asarray(z, dtype="float64")
    have = ~np.isnan(zz)
    zs = np.where(have, zz, 0.0)
    up = np.where(have, np.maximum(0.0, u + zs - k), u)
    down = np.where(have, np.maximum(0.0, lo - zs - k), lo)
    return up, down


# --------------------------------------------------------------------------
# scores


def proportion_scores(x: np.ndarray, n: np.ndarray, x_base: np.ndarray, n_base: np.ndarray) -> np.ndarray:
    """Normal scores of this period's count against the baseline's counts.

    Under "no change" this period's rate equals the baseline's. Given the
    total count ``K = x + x_base`` of both, ``x`` is hypergeometric: ``K``
    successes among ``M = n + n_base`` cases, ``n`` of which are this
    period's. The score is the mid-p value of that conditional test turned
    into a standard normal deviate::

        lower = P(X < x) + P(X = x) / 2,   upper = P(X > x) + P(X = x) / 2
        z = Phi^{-1}(lower)   (= -Phi^{-1}(upper), whichever is more precise)

    For large counts ``z`` equals the pooled two-proportion z statistic;
    for small counts it stays close to standard normal where the normal
    approximation fails, so rare events (errors, refusals) do not raise
    spurious alarms. A stream with no cases this period or in the baseline
    has no score (NaN); one where every case is a success (or none is) has
    score 0.

    Parameters
    ----------
    x, n : numpy.ndarray
        This period's count and denominator per stream.
    x_base, n_base : numpy.ndarray
        The baseline's pooled count and denominator per stream.

    Returns
    -------
    numpy.ndarray
        ``z`` per stream, clipped to +-37; NaN where undefined.
    """
    xs = np.asarray(x, dtype="float64")
    ns = np.asarray(n, dtype="float64")
    xb = np.asarray(x_base, dtype="float64")
    nb = np.asarray(n_base, dtype="float64")
    valid = (ns > 0) & (nb > 0) & np.isfinite(xs) & np.isfinite(xb) & (xs >= 0) & (xb >= 0) & (xs <= ns) & (xb <= nb)
    out = np.full(xs.shape, np.nan)
    if not valid.any():
        return out
    total = (ns + nb)[valid].round().astype(np.int64)
    succ = (xs + xb)[valid].round().astype(np.int64)
    draws = ns[valid].round().astype(np.int64)
    k = xs[valid].round().astype(np.int64)
    dist = stats.hypergeom(total, succ, draws)
    mass = dist.pmf(k)
    lower = dist.cdf(k - 1) + 0.5 * mass
    upper = dist.sf(k) + 0.5 * mass
    with np.errstate(divide="ignore"):
        z = np.where(lower < upper, stats.norm.ppf(lower), stats.norm.isf(upper))
    out[valid] = np.clip(z, -_MAX_Z, _MAX_Z)
    return out


def dispersion_proportion(x: np.ndarray, n: np.ndarray, stream: np.ndarray) -> pd.DataFrame:
    """Pooled rate and overdispersion factor of each stream's baseline periods.

    ``phi = max(1, Q / (B - 1))`` with Pearson's ``Q = sum_i (x_i - n_i p)^2 /
    (n_i p (1 - p))`` over the stream's ``B`` baseline periods and ``p`` their
    pooled rate ``sum x_i / sum n_i``. Binomial noise alone gives
    ``Q ~ chi^2_{B-1}``, so ``phi`` near 1; month-to-month changes in the case
    mix make it larger, and the scores are then divided by ``sqrt(phi)``.
    ``phi`` is 1 for a single period or a pooled rate of 0 or 1.

    Parameters
    ----------
    x, n : numpy.ndarray
        Count and denominator of each baseline period (one row per stream
        and period; rows with ``n <= 0`` are left out).
    stream : numpy.ndarray
        The stream each row belongs to.

    Returns
    -------
    pandas.DataFrame
        Indexed by stream: ``x`` and ``n`` (pooled), ``periods`` (``B``),
        ``q`` and ``phi``.
    """
    frame = pd.DataFrame({"key": np.asarray(stream, dtype=object), "x": np.asarray(x, dtype="float64"),
                          "n": np.asarray(n, dtype="float64")})
    frame = frame[frame["n"] > 0]
    pooled = frame.groupby("key", sort=False).agg(x=("x", "sum"), n=("n", "sum"), periods=("x", "size"))
    p = (pooled["x"] / pooled["n"]).reindex(frame["key"]).to_numpy()
    var = frame["n"].to_numpy() * p * (1 - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        contrib = np.where(var > 0, (frame["x"].to_numpy() - frame["n"].to_numpy() * p) ** 2 / var, 0.0)
    pooled["q"] = pd.Series(contrib, index=frame["key"].to_numpy()).groupby(level=0, sort=False).sum()
    b = pooled["periods"].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled["phi"] = np.where(b >= 2, np.maximum(1.0, pooled["q"].to_numpy() / (b - 1)), 1.0)
    return pooled


def dispersion_mean(value: np.ndarray, se: np.ndarray, stream: np.ndarray) -> pd.DataFrame:
    """Inverse-variance pooled value, its variance and the overdispersion factor per stream.

    ``w_i = 1 / se_i^2``, ``v = sum w_i v_i / sum w_i``, ``var(v) = 1 / sum w_i``
    and ``phi = max(1, Q / (B - 1))`` with Cochran's ``Q = sum_i w_i (v_i - v)^2``
    over the stream's ``B`` baseline periods (1 for a single period).

    Parameters
    ----------
    value, se : numpy.ndarray
        Estimate and standard error of each baseline period.
    stream : numpy.ndarray
        The stream each row belongs to.

    Returns
    -------
    pandas.DataFrame
        Indexed by stream: ``value``, ``var``, ``periods``, ``q`` and ``phi``.
        A stream with a missing or zero standard error in any baseline
        period is left out (its baseline has no known precision).
    """
    frame = pd.DataFrame({"key": np.asarray(stream, dtype=object), "v": np.asarray(value, dtype="float64"),
                          "se": np.asarray(se, dtype="float64")})
    bad = ~(np.isfinite(frame["v"]) & np.isfinite(frame["se"]) & (frame["se"] > 0))
    frame = frame[~frame["key"].isin(set(frame.loc[bad, "key"]))]
    frame = frame.assign(w=1.0 / frame["se"] ** 2)
    frame = frame.assign(wv=frame["w"] * frame["v"])
    agg = frame.groupby("key", sort=False).agg(w=("w", "sum"), wv=("wv", "sum"), periods=("v", "size"))
    out = pd.DataFrame({"value": agg["wv"] / agg["w"], "var": 1.0 / agg["w"], "periods": agg["periods"]})
    dev = frame["w"].to_numpy() * (frame["v"].to_numpy() - out["value"].reindex(frame["key"]).to_numpy()) ** 2
    out["q"] = pd.Series(dev, index=frame["key"].to_numpy()).groupby(level=0, sort=False).sum()
    b = out["periods"].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["phi"] = np.where(b >= 2, np.maximum(1.0, out["q"].to_numpy() / (b - 1)), 1.0)
    return out


def mean_scores(value: np.ndarray, se: np.ndarray, base_value: np.ndarray, base_var: np.ndarray,
                phi: np.ndarray) -> np.ndarray:
    """Normal scores of estimates with standard errors against a pooled baseline.

    ``z = (v - v_base) / sqrt(phi (se^2 + var_base))``; NaN where a standard
    error is missing or zero.
    """
    v = np.asarray(value, dtype="float64")
    s = np.asarray(se, dtype="float64")
    b = np.asarray(base_value, dtype="float64")
    bv = np.asarray(base_var, dtype="float64")
    f = np.asarray(phi, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = np.sqrt(f * (s**2 + bv))
        z = np.where((denom > 0) & np.isfinite(denom) & (s > 0), (v - b) / denom, np.nan)
    return np.clip(z, -_MAX_Z, _MAX_Z)


def t_to_normal(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Map a t statistic to the standard normal deviate with the same tail probability.

    ``z = sign(t) Phi^{-1}(1 - F_df(|t|))`` (computed from the upper tails, so
    large values keep their precision). A score whose variance factor was
    estimated from ``df + 1`` periods follows a t distribution with ``df``
    degrees of freedom, whose tails are heavier than the normal's; mapping it
    back keeps the limits, which are set on the normal scale, honest.
    ``df`` of infinity (or NaN) leaves ``t`` unchanged.
    """
    tt = np.asarray(t, dtype="float64")
    d = np.asarray(df, dtype="float64")
    finite = np.isfinite(d) & (d > 0) & np.isfinite(tt)
    out = tt.copy()
    if finite.any():
        tail = stats.t.sf(np.abs(tt[finite]), d[finite])
        out[finite] = np.sign(tt[finite]) * stats.norm.isf(tail)
    return np.clip(out, -_MAX_Z, _MAX_Z)
