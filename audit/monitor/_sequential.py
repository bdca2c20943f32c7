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
    "moderate_dispersion",
    "proportion_scores",
    "t_to_normal",
    "trigamma_inverse",
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


def _hypergeom_log_mid_p(x: np.ndarray, total: np.ndarray, succ: np.ndarray, draws: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Log of the smaller mid-p tail of a hypergeometric count, and which tail it is.

    ``X`` counts successes among ``draws`` cases drawn without replacement
    from ``total`` cases of which ``succ`` are successes. For each ``x`` the
    tail on the side of ``x`` away from the mean is summed outward from
    ``x``: ``P(X = j - 1) / P(X = j) = j (total - succ - draws + j) /
    ((succ - j + 1) (draws - j + 1))`` going down, the inverse ratio going
    up, until a term no longer changes the sum in double precision. Only the
    terms of that tail are visited (a few standard deviations), and the log
    of ``P(X = x)`` comes from log-gamma functions, so the tail keeps its
    relative precision far beyond where ``1 - cdf`` would round to 0.

    Returns
    -------
    (log_tail, lower)
        ``log(P(X < x) + P(X = x) / 2)`` where ``lower`` is True, else
        ``log(P(X > x) + P(X = x) / 2)``.
    """
    gl = special.gammaln
    log_mass = (gl(succ + 1) - gl(x + 1) - gl(succ - x + 1) + gl(total - succ + 1) - gl(draws - x + 1)
                - gl(total - succ - draws + x + 1) - gl(total + 1) + gl(draws + 1) + gl(total - draws + 1))
    low_end = np.maximum(0.0, draws - (total - succ))
    high_end = np.minimum(draws, succ)
    lower = x * total < draws * succ  # x below the mean: the lower tail is the smaller one
    tail = np.zeros(x.shape)  # sum of P(X = j) / P(X = x) over the tail
    term = np.ones(x.shape)
    j = x.copy()
    todo = np.flatnonzero(np.where(lower, j > low_end, j < high_end))
    while todo.size:
        jj, down = j[todo], lower[todo]
        s, m, d = succ[todo], total[todo], draws[todo]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(down, jj * (m - s - d + jj) / ((s - jj + 1) * (d - jj + 1)),
                             (s - jj) * (d - jj) / ((jj + 1) * (m - s - d + jj + 1)))
        t = term[todo] * ratio
        term[todo] = t
        tail[todo] += t
        jj = np.where(down, jj - 1, jj + 1)
        j[todo] = jj
        more = np.where(down, jj > low_end[todo], jj < high_end[todo]) & (t > 1e-17 * tail[todo])
        todo = todo[more]
    return log_mass + np.log(tail + 0.5), lower


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

    The smaller tail is summed term by term from ``x`` outward and turned
    into ``z`` from its logarithm (:func:`scipy.special.ndtri_exp`), which
    agrees with :class:`scipy.stats.hypergeom` to about 1e-11 and is some
    ten times faster, so that simulations of the monitor's operating
    characteristics (:mod:`audit.monitor._oc`) run the same code.

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
    xs, ns, xb, nb = np.broadcast_arrays(*(np.asarray(a, dtype="float64") for a in (x, n, x_base, n_base)))
    valid = (ns > 0) & (nb > 0) & np.isfinite(xs) & np.isfinite(xb) & (xs >= 0) & (xb >= 0) & (xs <= ns) & (xb <= nb)
    out = np.full(xs.shape, np.nan)
    if not valid.any():
        return out
    k = xs[valid].round()
    draws = ns[valid].round()
    log_tail, lower = _hypergeom_log_mid_p(k, draws + nb[valid].round(), k + xb[valid].round(), draws)
    z = special.ndtri_exp(np.minimum(log_tail, 0.0))
    out[valid] = np.clip(np.where(lower, z, -z), -_MAX_Z, _MAX_Z) + 0.0  # + 0.0: no negative zero
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


def trigamma_inverse(x: np.ndarray) -> np.ndarray:
    """Solve ``trigamma(y) = x`` for ``y > 0`` (elementwise; Newton's method as in limma).

    Parameters
    ----------
    x : numpy.ndarray
        Positive values.

    Returns
    -------
    numpy.ndarray
        ``y`` with ``polygamma(1, y) = x``; NaN where ``x <= 0`` or is NaN.
    """
    xs = np.asarray(x, dtype="float64")
    out = np.full(xs.shape, np.nan)
    ok = np.isfinite(xs) & (xs > 0)
    big, small = ok & (xs > 1e7), ok & (xs < 1e-6)
    out[big] = 1.0 / np.sqrt(xs[big])
    out[small] = 1.0 / xs[small]
    mid = ok & ~big & ~small
    y = 0.5 + 1.0 / xs[mid]
    target = xs[mid]
    for _ in range(50):
        tri = special.polygamma(1, y)
        step = tri * (1.0 - tri / target) / special.polygamma(2, y)
        y = y + step
        if not np.any(-step / y > 1e-8):
            break
    out[mid] = y
    return out


def moderate_dispersion(raw: np.ndarray, df: np.ndarray, groups: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Empirical-Bayes moderated overdispersion factors, shared across the streams of a run.

    A stream's own factor ``raw = Q / (D - 1)`` comes from few periods (a
    year of history gives 11 degrees of freedom), so it is noisy, and a
    score divided by it has the heavy tails of a t distribution with those
    few degrees of freedom: at the monitor's limits that costs most of its
    power. The streams of one run share their data and their months, so
    their factors are alike; as limma does for the variances of genes
    (Smyth 2004, "Linear models and empirical Bayes methods for assessing
    differential expression"), the factors are taken to be scaled
    chi-square draws, ``raw ~ s0^2 chi^2_d / d``, around a prior ``s0^2`` with
    ``d0`` degrees of freedom that is estimated from all streams by the
    method of moments on ``log raw``::

        e = log raw - digamma(d / 2) + log(d / 2)
        trigamma(d0 / 2) = var(e) - mean(trigamma(d / 2))      (d0 = inf when <= 0)
        s0^2 = exp(mean(e) + digamma(d0 / 2) - log(d0 / 2))

    and each stream's factor is the posterior mean ``(d0 s0^2 + d raw) /
    (d0 + d)`` with ``d0 + d`` degrees of freedom, at least 1. Where the
    streams agree (binomial noise everywhere) ``d0`` is large and the scores
    are nearly normal; where one stream's months wander more than the
    others', its own estimate still dominates once it has enough periods.
    With fewer than three streams that have a factor, nothing is shared:
    ``d0 = 0``.

    Parameters
    ----------
    raw : numpy.ndarray
        ``Q / (D - 1)`` per stream, not floored (NaN without a factor).
    df : numpy.ndarray
        ``D - 1`` per stream (0 without a factor).
    groups : numpy.ndarray, optional
        Sets of streams that share a prior (default: all streams share one);
        the simulations of :mod:`audit.monitor._oc` moderate many simulated
        monitors at once.

    Returns
    -------
    (phi, df)
        The moderated factor, at least 1, and its degrees of freedom
        (``inf`` when the prior is exact; 0 where a stream has neither its
        own factor nor a prior).
    """
    r = np.asarray(raw, dtype="float64")
    d = np.asarray(df, dtype="float64")
    g = np.zeros(r.shape, dtype=np.int64) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    count = int(g.max()) + 1 if g.size else 0
    fit = np.isfinite(r) & (r > 0) & (d > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.where(fit, np.log(np.where(fit, r, 1.0)) - special.digamma(d / 2) + np.log(d / 2), 0.0)
        tri = np.where(fit, special.polygamma(1, np.where(fit, d, 1.0) / 2), 0.0)
    size = np.bincount(g, weights=fit.astype("float64"), minlength=count)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.bincount(g, weights=e, minlength=count) / size
        dev = np.where(fit, (e - mean[g]) ** 2, 0.0)
        excess = np.bincount(g, weights=dev, minlength=count) / (size - 1) - np.bincount(g, weights=tri,
                                                                                         minlength=count) / size
    enough = size >= 3
    d0 = np.where(enough & (excess > 0), 2 * trigamma_inverse(np.where(excess > 0, excess, 1.0)), np.inf)
    d0 = np.where(enough, d0, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s0 = np.where(np.isinf(d0), np.exp(mean), np.exp(mean + special.digamma(d0 / 2) - np.log(d0 / 2)))
    s0 = np.where(enough, s0, 1.0)
    prior_df, prior = d0[g], s0[g]
    own = np.where(np.isfinite(r) & (d > 0), r, 0.0)
    own_df = np.where(np.isfinite(r) & (d > 0), d, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.where(np.isinf(prior_df), prior, (prior_df * prior + own_df * own) / (prior_df + own_df))
    phi = np.where(np.isfinite(phi), phi, 1.0)
    return np.maximum(1.0, phi), prior_df + own_df


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
