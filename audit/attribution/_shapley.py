"""Exact Shapley values of a game over a handful of players, as one linear map.

A disparity measured on the recorded data is decomposed into the
contributions of the stages of the data journey. Let ``v(S)`` be the
disparity when the changes of the stages in coalition ``S`` are kept and the
other stages' fields hold the true circumstances; ``v`` of the empty
coalition is the disparity the rules produce on true data. The Shapley value
of stage ``j`` is its marginal effect ``v(S + j) - v(S)`` averaged over every
order in which the stages could be added:

    phi_j = sum over S not holding j of |S|! (k - |S| - 1)! / k! (v(S + j) - v(S))

With at most six players all ``2**k`` coalitions are enumerated, so the values
are exact; they add up to ``v(all) - v(empty)`` (efficiency). Coalition ``c``
is an integer whose bit ``j`` says that stage ``j``'s changes are kept.
Because the values are linear in ``v``, :func:`shapley_matrix` gives them as a
``(k, 2**k)`` matrix, so bootstrap draws of ``v`` are decomposed with one
matrix product. :func:`shapley_by_permutations` computes the same values the
slow way (averaging over all ``k!`` orders), as a check.
"""

from __future__ import annotations

import itertools
from math import factorial

import numpy as np

__all__ = ["MAX_PLAYERS", "shapley_by_permutations", "shapley_matrix", "shapley_values"]

MAX_PLAYERS = 6
"""Most players a game may have (``2**6`` coalitions)."""


def shapley_matrix(k: int) -> np.ndarray:
    """The ``(k, 2**k)`` matrix ``A`` with ``phi = A @ v`` for a game ``v`` indexed by coalition bits.

    Raises
    ------
    ValueError
        When ``k`` is not between 1 and :data:`MAX_PLAYERS`.
    """
    if not 1 <= k <= MAX_PLAYERS:
        raise ValueError(f"k (the number of players) must be between 1 and {MAX_PLAYERS}. Got {k}.")
    a = np.zeros((k, 2**k))
    for coalition in range(2**k):
        size = bin(coalition).count("1")
        for j in range(k):
            if coalition >> j & 1:
                continue
            w = factorial(size) * factorial(k - size - 1) / factorial(k)
            a[j, coalition | (1 << j)] += w
            a[j, coalition] -= w
    return a


def shapley_values(v: np.ndarray) -> np.ndarray:
    """Shapley values of the game ``v`` (length ``2**k``; the last axis when ``v`` is 2-D)."""
    v = np.asarray(v, dtype=float)
    k = int(round(np.log2(v.shape[-1])))
    if 2**k != v.shape[-1]:
        raise ValueError(f"v must hold one value per coalition (a power of 2). Got {v.shape[-1]} values.")
    return v @ shapley_matrix(k).T


def shapley_by_permutations(v: np.ndarray) -> np.ndarray:
    """Shapley values by averaging marginal contributions over all ``k!`` orders of the players."""
    v = np.asarray(v, dtype=float)
    k = int(round(np.log2(len(v))))
    phi = np.zeros(k)
    orders = list(itertools.permutations(range(k)))
    for order in orders:
        coalition = 0
        for j in order:
            phi[j] += v[coalition | (1 << j)] - v[coalition]
            coalition |= 1 << j
    return phi / len(orders)
