"""Groups of an attribute, their reference group, and the joint bootstrap.

For one sensitive attribute (or an intersection, or the overall row) the
atoms of :class:`~audit.metrics.GroupStatistics` are summed into groups, and
one group is chosen as the reference that every other group is compared
with. The bootstrap draws the cell counts of the whole run once, jointly over
all groups (as a row bootstrap does), and sums the draws into the groups of
every attribute.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy import sparse

from audit.exceptions import DataError
from audit.metrics._cells import CHANNELS, channel_matrix, masked_matmul
from audit.metrics._intervals import multinomial_bootstrap
from audit.metrics._registry import MetricInfo
from audit.metrics._statistics import GROUP_SEPARATOR, MISSING_LABEL, GroupStatistics

__all__ = ["Bootstrap", "Grouping", "is_bootstrapped"]


def _object_group_sum(values: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    acc = np.array([0] * size, dtype=object)
    np.add.at(acc, index, values)
    return acc


class Grouping:
    """The groups of one attribute (or intersection, or the overall row)."""

    def __init__(self, stats_: GroupStatistics, attributes: list[str]) -> None:
        self.stats = stats_
        self.attributes = attributes
        self.labels, self.values, self.index = stats_.grouping(attributes)
        size = len(self.labels)
        self.size = size
        gcounts = np.zeros((size, len(stats_.codes)))
        np.add.at(gcounts, self.index, stats_.counts)
        self.code_counts = gcounts
        ch = masked_matmul(gcounts, channel_matrix(stats_.codes))
        s: dict[str, Any] = {name: ch[:, i] for i, name in enumerate(CHANNELS)}
        s["total_rows"] = np.full(size, float(stats_.counts.sum()))
        for name, arr in stats_.sums.items():
            s["sum_" + name] = _object_group_sum(arr, self.index, size)
        if stats_.score_hist is not None:
            hist = np.zeros((size, *stats_.score_hist.shape[1:]), dtype=np.int64)
            np.add.at(hist, self.index, stats_.score_hist)
            s["hist"] = hist
            s["scored"] = hist.sum(axis=(1, 2)).astype(object)
            s["scored_pos"] = hist[:, 1, :].sum(axis=1).astype(object)
        self.s = s
        self.rows = ch[:, CHANNELS.index("rows")]
        self.reference: int | None = None

    def choose_reference(self, wanted: str | None, min_group_size: int, combo: list[str | None] | None) -> str:
        """Pick and store the reference group; return its label."""
        labels = self.labels
        if wanted is not None:
            if wanted not in labels:
                raise DataError(
                    f"reference_groups: {wanted!r} is not a group of {' & '.join(self.attributes)}. "
                    f"Groups in the data: {', '.join(labels)}."
                )
            self.reference = labels.index(wanted)
            return wanted
        if combo is not None and all(c is not None for c in combo):
            label = GROUP_SEPARATOR.join(c for c in combo if c is not None)
            if label in labels and self.rows[labels.index(label)] >= min_group_size:
                self.reference = labels.index(label)
                return label
        rows = np.nan_to_num(self.rows, nan=-1.0)
        candidates = [i for i, v in enumerate(self.values) if MISSING_LABEL not in v] or list(range(self.size))
        best = max(candidates, key=lambda i: (rows[i], -i))
        self.reference = best
        return labels[best]


def is_bootstrapped(info: MetricInfo) -> bool:
    return info.compare and info.kind == "rate"


class _Recorder(dict):
    """A mapping that records which channels a metric function reads."""

    def __init__(self) -> None:
        super().__init__()
        self.used: set[str] = set()

    def __missing__(self, key: str) -> np.ndarray:
        self.used.add(key)
        return np.ones(1)


def _channels_used(infos: Iterable[MetricInfo]) -> list[str]:
    rec = _Recorder()
    for info in infos:
        info.function(rec)
    return [c for c in CHANNELS if c in rec.used]


class Bootstrap:
    """One joint multinomial draw over all cells; channel counts per grouping.

    Cells that no bootstrapped metric tells apart (e.g. a granted case with
    and without an amount) are merged first: the multinomial distribution of
    merged cells is the distribution of the sums, so this is exact and saves
    draws.
    """

    def __init__(
        self,
        stats_: GroupStatistics,
        groupings: list[Grouping],
        infos: list[MetricInfo],
        draws: int,
        rng: np.random.Generator,
    ) -> None:
        self.draws = draws
        self.channels: dict[int, dict[str, np.ndarray]] = {}
        self.names = _channels_used(infos)
        full = channel_matrix(stats_.codes)  # (C, codes)
        mat = full[[CHANNELS.index(c) for c in self.names]]
        signature, merged = np.unique(mat.T, axis=0, return_inverse=True)  # (M, C_b), code -> merged cell
        merged = merged.ravel()
        counts = np.where(np.isnan(stats_.counts), 0.0, stats_.counts)
        cells = np.zeros((stats_.n_atoms, len(signature)))
        np.add.at(cells.T, merged, counts.T)
        # order atoms by content (not by label) so that renaming groups keeps the draws
        rows = cells.sum(axis=1)
        keys = [np.arange(stats_.n_atoms)] + [cells[:, j] for j in range(cells.shape[1] - 1, -1, -1)] + [-rows]
        order = np.lexsort(keys)
        atom_idx, cell_idx = np.nonzero(cells[order] > 0)
        atom_idx = order[atom_idx]
        cell_counts = np.round(cells[atom_idx, cell_idx])  # counts from percentages are rounded
        if atom_idx.size == 0:
            return
        sample = multinomial_bootstrap(cell_counts, draws=draws, seed=rng).astype(float)
        n_ch = len(self.names)
        active = signature.T[:, cell_idx]  # (C_b, K)
        ch_i, k_i = np.nonzero(active)
        for grouping in groupings:
            g_of_cell = grouping.index[atom_idx]
            cols = g_of_cell[k_i] * n_ch + ch_i
            proj = sparse.csr_matrix((np.ones(cols.size), (k_i, cols)), shape=(atom_idx.size, grouping.size * n_ch))
            res = np.asarray(sample @ proj).reshape(draws, grouping.size, n_ch)
            self.channels[id(grouping)] = {name: res[:, :, i] for i, name in enumerate(self.names)}

    def proportion(self, grouping: Grouping, info: MetricInfo) -> np.ndarray | None:
        """Draws of the metric, ``(draws, groups)``; NaN where undefined."""
        ch = self.channels.get(id(grouping))
        if ch is None:
            return None
        est = info.function(ch)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(est.n > 0, est.count / est.n, np.nan)
