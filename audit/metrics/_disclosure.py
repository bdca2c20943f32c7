"""Secondary suppression across the margins of a run's tables: no hidden count recovered by subtraction.

An audit publishes, for one set of cases, several tables of counts that
nest: the overall count, one table per sensitive attribute (``sex``,
``birth_region``) and intersection tables (``sex & birth_region``). A cell of
an intersection table whose count is suppressed (fewer than
``min_group_size`` cases) can be recovered by subtraction when the other
cells of its *line* are shown: the cells that share every value but one
(all birth regions of women) add up to a published margin (the count of
women in the ``sex`` table). The reverse holds too: a count withheld in the
``birth_region`` table is the sum of its line in the intersection table when
that line is fully shown.

Statistics offices protect such linked tables with secondary (complementary)
suppression over every line of every table, including the lines that add up
to a margin (the ESSnet *Handbook on Statistical Disclosure Control*, on
linked and hierarchical tables; the hypercube method of tau-ARGUS).
:func:`linked_suppression` does this for the case counts of one run, with
the same rule Insyn applies inside one table: in every line that holds a
hidden cell, at least two cells are hidden and together they hold at least
``min_group_size`` cases (unless the whole line is hidden), and a margin
cell that is hidden has at least one hidden cell in its line of every finer
table. Further cells are hidden smallest first (the least information
lost), until nothing changes. The result is the pattern of groups whose
counts are withheld; their rates stay shown (:func:`audit.metrics.compare_groups`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["linked_suppression"]

_MAX_ROUNDS = 1000


def _lines(keys: Sequence[tuple[Any, ...]]) -> list[tuple[int, tuple[Any, ...], np.ndarray]]:
    """The lines of a table: for each dropped attribute position, the cells that share every other value."""
    out = []
    width = len(keys[0]) if keys else 0
    for d in range(width):
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for i, k in enumerate(keys):
            groups[k[:d] + k[d + 1:]].append(i)
        out += [(d, margin, np.array(idx, dtype=np.int64)) for margin, idx in groups.items()]
    return out


def _complete(line: np.ndarray, sizes: np.ndarray, hidden: np.ndarray, min_n: int) -> bool:
    """Hide cells of one line, smallest first, until its hidden cells are none, all, or >= 2 holding >= min_n."""
    sub = hidden[line]
    changed = False
    if not sub.any() or sub.all():
        return False
    while (~sub).any() and (sub.sum() < 2 or sizes[line][sub].sum() < min_n):
        visible = np.flatnonzero(~sub)
        sub[visible[np.argmin(sizes[line][visible])]] = True
        changed = True
    hidden[line] = sub
    return changed


def linked_suppression(tables: Mapping[tuple[str, ...], tuple[Sequence[tuple[Any, ...]], Any]],
                       min_n: int) -> dict[tuple[str, ...], np.ndarray]:
    """The cells of nested count tables to hide so that no hidden count can be recovered by subtraction.

    Parameters
    ----------
    tables : mapping
        Attribute set (``()`` for the overall count, ``("sex",)``,
        ``("sex", "birth_region")``) to ``(keys, sizes)``: the value tuple and
        the case count of each cell, in the table's order.
    min_n : int
        The smallest count that may be published (``statistics.min_group_size``).

    Returns
    -------
    dict
        Attribute set to a boolean array: True where the cell's count is
        hidden (its primary suppression, fewer than ``min_n`` cases, included).

    Notes
    -----
    The rules, applied to every table until nothing changes:

    1. a cell with fewer than ``min_n`` cases is hidden (primary suppression);
    2. in every line (the whole of a one-attribute table, whose cells add up
       to the overall count; in a table of k >= 2 attributes, the cells that
       share all values but one, which add up to a cell of the table without
       that attribute), a line with a hidden cell has at least two hidden
       cells holding at least ``min_n`` cases together, or is hidden whole;
    3. when a margin cell is hidden, its line in every finer table that is
       published has a hidden cell (else the line's sum would give it away),
       and rule 2 then makes it two.
    """
    sizes = {a: np.asarray(s, dtype=float) for a, (_, s) in tables.items()}
    keys = {a: [tuple(k) for k in ks] for a, (ks, _) in tables.items()}
    hidden = {a: sizes[a] < min_n for a in tables}
    index = {a: {k: i for i, k in enumerate(keys[a])} for a in tables}
    lines: dict[tuple[str, ...], list[tuple[tuple[str, ...] | None, int | None, np.ndarray]]] = {}
    for a in tables:
        found: list[tuple[tuple[str, ...] | None, int | None, np.ndarray]] = []
        if len(a) == 1:
            found.append(((), 0 if () in tables else None, np.arange(len(keys[a]))))
        elif len(a) >= 2:
            for d, margin_key, idx in _lines(keys[a]):
                margin = a[:d] + a[d + 1:]
                pos = index[margin].get(margin_key) if margin in tables else None
                found.append((margin if pos is not None else None, pos, idx))
        lines[a] = found
    for _ in range(_MAX_ROUNDS):
        changed = False
        for a, found in lines.items():
            for margin, pos, idx in found:
                if margin is not None and pos is not None and hidden[margin][pos] and not hidden[a][idx].any():
                    sub = hidden[a][idx]
                    sub[np.argmin(sizes[a][idx])] = True  # rule 3: the line may not reveal its hidden margin
                    hidden[a][idx] = sub
                    changed = True
                changed |= _complete(idx, sizes[a], hidden[a], min_n)
        if not changed:
            return hidden
    raise AssertionError("linked suppression did not settle; this is a bug in Insyn")  # pragma: no cover
