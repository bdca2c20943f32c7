"""Groups of an attribute, their reference group, and the joint bootstrap.

For one sensitive attribute (or an intersection, or the overall row) the
atoms (one per observed combination of every sensitive value) are summed
into groups, and one group is chosen as the reference that every other group
is compared with (:func:`choose_reference`: the spec's choice; for an
intersection, the combination of its attributes' references; else the
largest group, never ``(missing)``). :class:`Grouping` does this for
:class:`~audit.metrics.GroupStatistics`; :func:`atoms`, :func:`attribute_sets`,
:func:`grouping_matrix` and :func:`references` do it for the row-level
analyses (selection audits, engine comparisons). The bootstrap draws the cell
counts of the whole run once, jointly over all groups (as a row bootstrap
does), and sums the draws into the groups of every attribute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from audit.exceptions import DataError
from audit.metrics._cells import CHANNELS, channel_matrix, masked_matmul
from audit.metrics._intervals import multinomial_bootstrap
from audit.metrics._registry import MetricInfo
from audit.metrics._statistics import GROUP_SEPARATOR, MISSING_LABEL, GroupStatistics

__all__ = [
    "Bootstrap",
    "Grouping",
    "OVERALL",
    "atoms",
    "attribute_sets",
    "choose_reference",
    "group_labels",
    "grouping_matrix",
    "is_bootstrapped",
    "references",
]

OVERALL = "all"
"""The group label of the overall row (``attributes == []``)."""


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
        self.withheld: np.ndarray | None = None  # counts hidden across linked tables (audit.metrics._disclosure)

    def choose_reference(self, wanted: str | None, min_group_size: int, combo: list[str | None] | None) -> str:
        """Pick and store the reference group (see :func:`choose_reference`); return its label."""
        self.reference = choose_reference(self.attributes, self.labels, self.values, self.rows, wanted=wanted,
                                          combo=combo, min_group_size=min_group_size)
        return self.labels[self.reference]


def choose_reference(
    attributes: Sequence[str],
    labels: Sequence[str],
    values: Sequence[Sequence[str]],
    rows: Any,
    *,
    wanted: str | None,
    combo: Sequence[str | None] | None,
    min_group_size: int,
) -> int:
    """Index of the reference group of an attribute set.

    The spec's choice ``wanted``; else, for an intersection, the combination
    ``combo`` of its attributes' references when that group has at least
    ``min_group_size`` rows; else the group with the most ``rows`` (ties: the
    first label), never one with a ``(missing)`` value unless every group has
    one.

    Raises
    ------
    DataError
        When ``wanted`` is not a group of the data.
    """
    labels = list(labels)
    if wanted is not None:
        if str(wanted) not in labels:
            raise DataError(
                f"reference_groups: {wanted!r} is not a group of {' & '.join(attributes)}. "
                f"Groups in the data: {', '.join(labels)}."
            )
        return labels.index(str(wanted))
    counts = np.asarray(rows, dtype=float)
    if combo is not None and all(c is not None for c in combo):
        label = GROUP_SEPARATOR.join(str(c) for c in combo)
        if label in labels and counts[labels.index(label)] >= min_group_size:
            return labels.index(label)
    counts = np.nan_to_num(counts, nan=-1.0)
    candidates = [i for i, v in enumerate(values) if MISSING_LABEL not in v] or list(range(len(labels)))
    return max(candidates, key=lambda i: (counts[i], -i))


# --------------------------------------------------------------------------
# groups of row-level analyses


def group_labels(frame: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
    """Sensitive values as strings; missing or blank values become ``(missing)``."""
    out = {}
    for f in features:
        s = frame[f]
        text = s.astype("str")
        missing = s.isna().to_numpy(dtype=bool) | text.str.strip().eq("").to_numpy(dtype=bool, na_value=True)
        out[f] = pd.Series(np.where(missing, MISSING_LABEL, text.to_numpy(dtype=object, na_value="")),
                           index=frame.index, dtype="str")
    return pd.DataFrame(out, index=frame.index)


def atoms(frame: pd.DataFrame, features: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Atom id per row (one atom per observed combination of all sensitive values) and the atom keys."""
    if not features or len(frame) == 0:
        keys = pd.DataFrame({f: pd.Series([], dtype="str") for f in features})
        return np.zeros(len(frame), dtype=np.int64), keys if features else pd.DataFrame(index=pd.RangeIndex(1))
    labels = group_labels(frame, features)
    grouped = labels.groupby(list(features), sort=True)
    atom = grouped.ngroup().to_numpy(dtype=np.int64)
    keys = grouped.size().index.to_frame(index=False).astype("str")
    return atom, keys


def attribute_sets(features: Sequence[str], intersections: Sequence[Sequence[str]]) -> list[list[str]]:
    """The overall set ``[]``, each sensitive feature, then each intersection (once).

    Raises
    ------
    DataError
        When an intersection names fewer than two, repeated or unknown features.
    """
    sets: list[list[str]] = [[]] + [[f] for f in features]
    for i, inter in enumerate(intersections):
        inter = list(inter)
        if len(inter) < 2 or len(set(inter)) != len(inter) or any(a not in features for a in inter):
            raise DataError(
                f"intersections[{i}] must name two or more different sensitive features "
                f"({', '.join(features)}). Got {inter}."
            )
        if inter not in sets:
            sets.append(inter)
    return sets


def grouping_matrix(keys: pd.DataFrame, attributes: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Sorted group labels of an attribute set and the ``(atoms, groups)`` 0/1 matrix."""
    n_atoms = len(keys)
    if not attributes:
        return [OVERALL], np.ones((n_atoms, 1))
    parts = [keys[a].astype("str").to_numpy(dtype=str) for a in attributes]
    joined = parts[0]
    for part in parts[1:]:
        joined = np.char.add(np.char.add(joined, GROUP_SEPARATOR), part)
    labels, inverse = np.unique(joined, return_inverse=True)
    matrix = np.zeros((n_atoms, len(labels)))
    matrix[np.arange(n_atoms), inverse] = 1.0
    return [str(v) for v in labels], matrix


def references(
    sets: list[list[str]],
    labels_of: Mapping[int, list[str]],
    rows_of: Mapping[int, np.ndarray],
    reference_groups: Mapping[str, str] | None,
    min_group_size: int,
) -> dict[int, int | None]:
    """Reference group index of every attribute set (single attributes first, then intersections).

    ``rows_of`` gives the size that decides the largest group of each set
    (random cases in a selection audit, compared cases in a comparison).

    Raises
    ------
    DataError
        When ``reference_groups`` is keyed by something other than a
        sensitive feature or an intersection, or names a group not in the data.
    """
    refs = {str(k): str(v) for k, v in (reference_groups or {}).items()}
    known = {a for s in sets for a in s}
    for key in refs:
        if not all(part in known for part in key.split(GROUP_SEPARATOR)):
            raise DataError(
                f"reference_groups must be keyed by sensitive features ({', '.join(sorted(known))}) "
                f"or intersections joined with ' & '. Got {key!r}."
            )
    out: dict[int, int | None] = {}
    attribute_refs: dict[str, str] = {}

    def pick(i: int, attrs: list[str]) -> int | None:
        if not attrs:
            return None
        labels = labels_of[i]
        combo = [attribute_refs.get(a) for a in attrs] if len(attrs) > 1 else None
        return choose_reference(attrs, labels, [lab.split(GROUP_SEPARATOR) for lab in labels], rows_of[i],
                                wanted=refs.get(GROUP_SEPARATOR.join(attrs)), combo=combo,
                                min_group_size=min_group_size)

    for i, attrs in enumerate(sets):
        if len(attrs) <= 1:
            out[i] = pick(i, attrs)
            if attrs and out[i] is not None:
                attribute_refs[attrs[0]] = labels_of[i][out[i]]
    for i, attrs in enumerate(sets):
        if len(attrs) > 1:
            out[i] = pick(i, attrs)
    return out


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
