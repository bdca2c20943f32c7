"""Sufficient statistics per group: every metric of a run comes from these.

Every disparity metric of an audit is a function of a few numbers per group:
how many cases there are, how many were refused, routed to a caseworker,
wrongly refused, underpaid, and by how much. Computing those numbers once, in
one vectorised pass over the cases, makes every later step (rates, intervals,
bootstrap draws, tests) independent of the number of cases.

The finest groups are *atoms*: one per combination of the values of all
sensitive features that occurs in the data (``female & outside_eu & 30-44 &
True``). Any group of any attribute or intersection is a union of atoms, so
its statistics are sums over atoms. For each atom Insyn keeps

* the count of cases in each *cell*: status (ok, error, quarantined) ×
  routing (referred to a caseworker or not) × final decision class
  (favourable, denied, unresolved) × truth (known or not; entitled or not;
  positive or not) × prediction (positive or not) × amount flags (owed an
  amount; underpaid; paid an amount). Cells are disjoint, so resampling rows is
  resampling cells (see :func:`multinomial_bootstrap`);
* exact integer sums and sums of squares of granted amounts, correct amounts
  and shortfalls (in öre) and of scores (in millionths);
* a histogram of scores by truth, for AUC and calibration.

Because the sums are exact integers, the statistics of a whole frame equal the
sum of the statistics of any split of it, bit for bit: row data, chunks, Dask
partitions and aggregated tables (:meth:`GroupStatistics.from_confusion`) all
give the same numbers and add up with ``+`` or ``sum()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from audit._columns import (
    ERROR_LABEL,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_QUARANTINED,
    STATUS_VALUES,
    TRUTH_AMOUNT,
    TRUTH_OUTCOME,
)
from audit._arrays import codes_of
from audit._ids import is_unique
from audit.exceptions import CheckCode, DataError, FailureCollector, SpecError
from audit.metrics._cells import (
    B_ENTITLED,
    B_OWED,
    B_PAID,
    B_PRICED,
    B_REFER,
    B_TRUTH,
    B_UNDERPAID,
    B_YPRED,
    B_YTRUE,
    CHANNELS,
    F_SHIFT,
    MAX_AMOUNT_SEK,
    N_CODES,
    SCORE_UNIT,
    ST_ERROR,
    ST_OK,
    ST_QUARANTINED,
    SUM_SCALES,
    CellDefinition,
    channel_matrix,
    make_definition,
    masked_matmul,
)

__all__ = ["GroupStatistics", "MISSING_LABEL"]

MISSING_LABEL = "(missing)"
"""Group label of cases whose sensitive value is missing (never dropped)."""

GROUP_SEPARATOR = " & "
OVERALL_LABEL = "all"

# --------------------------------------------------------------------------
# helpers


class _Labels:
    """A string column factorised once: membership tests cost one lookup per case."""

    def __init__(self, series: pd.Series) -> None:
        self.codes, uniques = codes_of(series)
        self.labels = np.array([str(u) for u in uniques], dtype=object)

    def isin(self, values: Iterable[str]) -> np.ndarray:
        """True where the value is one of ``values`` (missing values are False)."""
        lut = np.append(np.isin(self.labels, list(values)), False)
        return lut[self.codes]

    def missing(self) -> np.ndarray:
        """True where the value is missing or blank."""
        blank = np.array([lab.strip() == "" for lab in self.labels] + [True], dtype=bool)
        return blank[self.codes]


def _factorize(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes and sorted string labels of a sensitive column; missing or blank is ``(missing)``."""
    codes, uniques = codes_of(series)
    raw = [str(u) for u in uniques]
    labels = np.array([MISSING_LABEL if r.strip() == "" else r for r in raw] + [MISSING_LABEL], dtype=object)
    codes = np.where(codes < 0, len(labels) - 1, codes)
    used = np.bincount(codes, minlength=len(labels)) > 0
    remap = np.cumsum(used) - 1
    codes = remap[codes]
    sorted_labels, inverse = np.unique(labels[used].astype(str), return_inverse=True)
    return inverse[codes].astype(np.int64), sorted_labels.astype(object)


def _atoms(
    codes: list[np.ndarray], labels: list[np.ndarray], names: Sequence[str], n: int
) -> tuple[np.ndarray, pd.DataFrame]:
    """Combine per-feature codes into atom ids (sorted by the label tuple)."""
    if not names:
        return np.zeros(n, dtype=np.int64), pd.DataFrame(index=pd.RangeIndex(1 if n else 0))
    sizes = [len(lab) for lab in labels]
    product = int(np.prod(sizes, dtype=object)) if sizes else 1
    if product < 2**62:
        combo = np.zeros(n, dtype=np.int64)
        for c, size in zip(codes, sizes):
            combo = combo * size + c
        if product <= 1 << 22:
            present = np.bincount(combo, minlength=product) > 0
            combos = np.flatnonzero(present)
            lut = np.cumsum(present) - 1
            atom = lut[combo]
        else:
            combos, atom = np.unique(combo, return_inverse=True)
        parts = []
        rest = combos.copy()
        for size in reversed(sizes):
            parts.append(rest % size)
            rest = rest // size
        parts.reverse()
    else:  # pragma: no cover - needs > 2**62 label combinations
        stacked = np.stack(codes, axis=1)
        uniq, atom = np.unique(stacked, axis=0, return_inverse=True)
        parts = [uniq[:, i] for i in range(uniq.shape[1])]
    keys = pd.DataFrame(
        {name: pd.Series(lab[p].astype(str), dtype="str") for name, lab, p in zip(names, labels, parts)}
    )
    return atom.astype(np.int64), keys


def _exact_sums(values: np.ndarray, atom: np.ndarray, n_atoms: int) -> np.ndarray:
    """Per-atom sums of non-negative int64 values as exact Python ints (object array)."""
    out = np.zeros(n_atoms, dtype=object)
    if values.size == 0:
        return np.array([0] * n_atoms, dtype=object)
    vmax = int(values.max())
    if vmax * values.size < 2**62:
        acc = np.zeros(n_atoms, dtype=np.int64)
        np.add.at(acc, atom, values)
        return acc.astype(object)
    hi = np.zeros(n_atoms, dtype=np.int64)
    lo = np.zeros(n_atoms, dtype=np.int64)
    np.add.at(hi, atom, values >> 31)
    np.add.at(lo, atom, values & ((1 << 31) - 1))
    for i in range(n_atoms):
        out[i] = int(hi[i]) * (1 << 31) + int(lo[i])
    return out


def _numeric(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    """A numeric column as float64; text that holds numbers is converted, other text is an error."""
    series = frame[column]
    if pd.api.types.is_bool_dtype(series.dtype):
        raise DataError(f"{source}: column {column!r} must hold numbers. Got dtype {series.dtype}.")
    if not pd.api.types.is_numeric_dtype(series.dtype):
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna().to_numpy(dtype=bool) & series.notna().to_numpy(dtype=bool)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            case = frame["case_id"].iloc[i] if "case_id" in frame.columns else f"row {i + 1}"
            raise DataError(
                f"{source}: column {column!r} must hold numbers. Got {series.iloc[i]!r} for "
                f"{int(bad.sum())} case(s) (first case_id {case!r})."
            )
        series = converted
    return series.to_numpy(dtype=float, na_value=np.nan)


# --------------------------------------------------------------------------
# the statistics


class GroupStatistics:
    """Sufficient statistics of a run per atom (combination of sensitive values).

    Build one with :meth:`from_frame` (row data), :meth:`from_confusion`
    (published per-group confusion counts) or :meth:`from_dask` (a partitioned
    frame); add statistics of chunks with ``a + b`` or ``sum([...])``.

    Attributes
    ----------
    keys : pandas.DataFrame
        One row per atom, one ``str`` column per sensitive feature, sorted.
    codes : numpy.ndarray
        The cell codes present (columns of ``counts``).
    counts : numpy.ndarray
        ``(atoms, codes)`` case counts, float64; NaN marks a cell suppressed at
        the source of an aggregated table.
    sums : dict of str to numpy.ndarray
        Exact per-atom integer sums (Python ints), scaled as in ``SUM_SCALES``.
    score_hist : numpy.ndarray or None
        ``(atoms, 2, bins)`` counts of scored cases by truth (0 negative,
        1 positive) and score bin of width ``1 / bins``.
    families : frozenset of str
        Which groups of statistics the source provided (see ``FAMILIES``).
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(
        self,
        *,
        keys: pd.DataFrame,
        codes: np.ndarray,
        counts: np.ndarray,
        sums: Mapping[str, np.ndarray],
        score_hist: np.ndarray | None,
        families: frozenset[str],
        definition: CellDefinition,
    ) -> None:
        self.keys = keys.reset_index(drop=True)
        self.codes = np.asarray(codes, dtype=np.int64)
        self.counts = np.asarray(counts, dtype=float).reshape(len(self.keys), len(self.codes))
        self.sums = {k: np.asarray(v, dtype=object) for k, v in sums.items()}
        self.score_hist = score_hist
        self.families = frozenset(families)
        self.definition = definition

    # ------------------------------------------------------------------ info
    @property
    def sensitive_features(self) -> tuple[str, ...]:
        """Names of the sensitive features that form the atoms."""
        return tuple(self.keys.columns)

    @property
    def n_atoms(self) -> int:
        """Number of atoms (observed combinations of sensitive values)."""
        return len(self.keys)

    @property
    def total(self) -> float:
        """Number of cases (NaN if a cell was suppressed at the source)."""
        return float(self.counts.sum())

    def __repr__(self) -> str:
        feats = ", ".join(self.sensitive_features) or "none"
        return f"GroupStatistics({self.total:.0f} cases, {self.n_atoms} atoms of {feats})"

    def channels(self) -> pd.DataFrame:
        """Per-atom counts of every channel and the sums in SEK / score units.

        Returns
        -------
        pandas.DataFrame
            ``keys`` followed by one column per channel (``ok``, ``refer``,
            ``fav``, ``tp`` ...) and per sum (``granted`` in SEK ...).
        """
        mat = channel_matrix(self.codes)
        values = masked_matmul(self.counts, mat)
        out = self.keys.copy()
        for i, name in enumerate(CHANNELS):
            out[name] = values[:, i]
        for name, arr in self.sums.items():
            out[name] = np.array([float(v) for v in arr], dtype=float) / SUM_SCALES[name]
        return out

    # ------------------------------------------------------------ builders
    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        sensitive_features: Sequence[str],
        favourable: Sequence[str] = ("grant", "partial"),
        review: Sequence[str] = ("refer",),
        pred_positive: Sequence[str] = ("deny",),
        truth_positive: Sequence[str] | None = None,
        amount_tolerance: float = 1.0,
        score_bins: int = 1000,
        source: str = "measurement frame",
    ) -> GroupStatistics:
        """Compute the statistics of a measurement frame in one vectorised pass.

        Parameters
        ----------
        frame : pandas.DataFrame
            The measurement frame of ``docs/interfaces.md``: ``case_id``, the
            sensitive columns, ``status``, ``outcome``, ``final_outcome`` and
            optionally ``final_amount``, ``truth_outcome``, ``truth_amount``,
            ``score``.
        sensitive_features : sequence of str
            Columns that form the groups. Missing values form the group
            ``"(missing)"``; values are compared as strings.
        favourable, review, pred_positive, truth_positive : sequence of str
            Outcome labels: favourable decisions, routing to a caseworker,
            positive predictions, positive truths (default ``pred_positive``).
        amount_tolerance : float, default 1.0
            A case is underpaid when it was granted more than this many SEK
            less than the correct amount.
        score_bins : int, default 1000
            Bins of the score histogram on [0, 1].
        source : str, default "measurement frame"
            Name used at the start of error messages.

        Returns
        -------
        GroupStatistics

        Raises
        ------
        DataError
            When a column is missing or a value is invalid; all problems are
            collected first and listed in the message and in ``failures``.
        SpecError
            When an option is invalid.
        """
        definition = make_definition(
            favourable=favourable,
            review=review,
            pred_positive=pred_positive,
            truth_positive=truth_positive,
            amount_tolerance=amount_tolerance,
            score_bins=score_bins,
        )
        features = _check_features(sensitive_features)
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"{source}: expected a pandas DataFrame. Got {type(frame).__name__}.")
        required = ["case_id", *features, "status", "outcome", "final_outcome"]
        missing_cols = [c for c in dict.fromkeys(required) if c not in frame.columns]
        if missing_cols:
            raise DataError(
                f"{source}: missing column(s) {', '.join(map(repr, missing_cols))}. Expected case_id, the "
                "sensitive columns, status, outcome, final_outcome (and optionally final_amount, "
                f"truth_outcome, truth_amount, score). Got columns {list(frame.columns)}."
            )
        has_amount = "final_amount" in frame.columns
        has_truth = TRUTH_OUTCOME in frame.columns
        has_truth_amount = TRUTH_AMOUNT in frame.columns and has_amount
        has_score = "score" in frame.columns and has_truth
        n = len(frame)
        fails = FailureCollector(source, what="the measurement frame")
        case_ids = frame["case_id"]

        # ---- status, outcomes
        status = _Labels(frame["status"])
        ok = status.isin([STATUS_OK])
        err = status.isin([STATUS_ERROR])
        quar = status.isin([STATUS_QUARANTINED])
        fails.add_mask(
            CheckCode.IN_SET, column="status", mask=~(ok | err | quar), values=frame["status"], case_ids=case_ids,
            reason=f"must be one of {', '.join(STATUS_VALUES)}",
        )
        cid = frame["case_id"]
        cid_missing = cid.isna().to_numpy(dtype=bool)
        fails.add_mask(CheckCode.NOT_NULL, column="case_id", mask=cid_missing, values=cid, case_ids=case_ids,
                       reason="must not be missing")
        if not is_unique(cid):
            dup = cid.duplicated(keep="first").to_numpy(dtype=bool) & ~cid_missing
            fails.add_mask(CheckCode.UNIQUE, column="case_id", mask=dup, values=cid, case_ids=case_ids,
                           reason="must be unique")
        outcome, final = _Labels(frame["outcome"]), _Labels(frame["final_outcome"])
        for col, labels in (("outcome", outcome), ("final_outcome", final)):
            bad = ok & (labels.missing() | labels.isin([ERROR_LABEL]))
            fails.add_mask(
                CheckCode.NOT_NULL, column=col, mask=bad, values=frame[col], case_ids=case_ids,
                reason="must hold a decided outcome label where status is ok",
            )

        # ---- amounts and scores
        fa = _numeric(frame, "final_amount", source) if has_amount else np.full(n, np.nan)
        ta = _numeric(frame, TRUTH_AMOUNT, source) if has_truth_amount else np.full(n, np.nan)
        for col, arr, present in (("final_amount", fa, has_amount), (TRUTH_AMOUNT, ta, has_truth_amount)):
            if present:
                with np.errstate(invalid="ignore"):
                    bad = ~np.isnan(arr) & ~((arr >= 0) & (arr <= MAX_AMOUNT_SEK))
                fails.add_mask(
                    CheckCode.IN_RANGE, column=col, mask=bad, values=arr, case_ids=case_ids,
                    reason=f"must be a number of SEK between 0 and {MAX_AMOUNT_SEK:,.0f} (or missing)",
                )
        score = _numeric(frame, "score", source) if has_score else np.full(n, np.nan)
        if has_score:
            with np.errstate(invalid="ignore"):
                bad = ~np.isnan(score) & ~((score >= 0) & (score <= 1))
            fails.add_mask(CheckCode.IN_RANGE, column="score", mask=bad, values=score, case_ids=case_ids,
                           reason="must be a number between 0 and 1 (or missing)")
        fails.raise_if_any()

        # ---- atoms
        codes_f, labels_f = [], []
        for feat in features:
            c, lab = _factorize(frame[feat])
            codes_f.append(c)
            labels_f.append(lab)
        atom, keys = _atoms(codes_f, labels_f, features, n)
        n_atoms = len(keys)

        # ---- cells
        d = definition
        refer = ok & outcome.isin(d.review)
        fav = ok & final.isin(d.favourable)
        unresolved = ok & final.isin(d.review)
        fclass = np.where(fav, 0, np.where(unresolved, 2, 1)) * ok
        ypred = ok & final.isin(d.pred_positive)
        if has_truth:
            truth_col = _Labels(frame[TRUTH_OUTCOME])
            truth = ok & ~truth_col.missing() & ~truth_col.isin([ERROR_LABEL, *d.review])
            entitled = truth & truth_col.isin(d.favourable)
            ytrue = truth & truth_col.isin(d.truth_positive)
        else:
            truth = entitled = ytrue = np.zeros(n, dtype=bool)
        granted_ore = np.where(np.isnan(fa), 0.0, np.rint(fa * 100)).astype(np.int64)
        decided = ok & ~unresolved
        with np.errstate(invalid="ignore"):
            owed = decided & (ta > 0) if has_truth_amount else np.zeros(n, dtype=bool)
        correct_ore = np.where(owed, np.rint(np.nan_to_num(ta) * 100), 0).astype(np.int64)
        tol_ore = int(round(d.amount_tolerance * 100))
        underpaid = owed & (granted_ore < correct_ore - tol_ore)
        paid = fav & ~np.isnan(fa) if has_amount else np.zeros(n, dtype=bool)
        priced = ~np.isnan(ta)

        code = (
            np.where(ok, ST_OK, np.where(err, ST_ERROR, ST_QUARANTINED)).astype(np.int64)
            | (refer * B_REFER)
            | (fclass.astype(np.int64) << F_SHIFT)
            | (truth * B_TRUTH)
            | (entitled * B_ENTITLED)
            | (ytrue * B_YTRUE)
            | (ypred * B_YPRED)
            | (owed * B_OWED)
            | (underpaid * B_UNDERPAID)
            | (paid * B_PAID)
            | (priced * B_PRICED)
        )
        present = np.bincount(code, minlength=N_CODES) > 0
        codes_present = np.flatnonzero(present)
        lut = np.cumsum(present) - 1
        width = len(codes_present)
        counts = np.bincount(atom * width + lut[code], minlength=n_atoms * width).reshape(n_atoms, width)

        # ---- exact sums
        sums: dict[str, np.ndarray] = {}
        if has_truth_amount:
            a_o = atom[owed]
            g = granted_ore[owed]
            c = correct_ore[owed]
            s = np.maximum(c - g, 0)
            for name, vals in (
                ("granted", g), ("granted_sq", g * g), ("correct", c), ("correct_sq", c * c),
                ("granted_correct", g * c), ("shortfall", s), ("shortfall_sq", s * s),
            ):
                sums[name] = _exact_sums(vals, a_o, n_atoms)
        if has_amount:
            p = granted_ore[paid]
            sums["paid"] = _exact_sums(p, atom[paid], n_atoms)
            sums["paid_sq"] = _exact_sums(p * p, atom[paid], n_atoms)
        hist = None
        if has_score:
            scored = truth & ~np.isnan(score)
            s_int = np.rint(score[scored] * SCORE_UNIT).astype(np.int64)
            a_s = atom[scored]
            y = ytrue[scored].astype(np.int64)
            bins = d.score_bins
            b = np.minimum(s_int * bins // SCORE_UNIT, bins - 1)
            hist = np.bincount((a_s * 2 + y) * bins + b, minlength=n_atoms * 2 * bins).reshape(n_atoms, 2, bins)
            sums["score"] = _exact_sums(s_int, a_s, n_atoms)
            sums["score_sq"] = _exact_sums(s_int * s_int, a_s, n_atoms)
            sums["score_pos"] = _exact_sums(s_int * y, a_s, n_atoms)

        families = {"rows", "status", "routing", "decision", "prediction"}
        if has_amount:
            families.add("amount")
        if has_truth:
            families |= {"truth", "entitlement"}
        if has_truth_amount:
            families.add("truth_amount")
        if has_score:
            families.add("score")
        return cls(
            keys=keys,
            codes=codes_present,
            counts=counts.astype(float),
            sums=sums,
            score_hist=hist,
            families=frozenset(families),
            definition=definition,
        )

    @classmethod
    def from_confusion(
        cls,
        table: pd.DataFrame,
        *,
        sensitive_features: Sequence[str],
        cells: Mapping[str, str] | None = None,
        source: str = "confusion table",
    ) -> GroupStatistics:
        """Statistics from per-group confusion counts (an aggregated table).

        Parameters
        ----------
        table : pandas.DataFrame
            One row per group: the sensitive columns and the four cells.
            A NaN cell means "suppressed at the source": every metric that
            needs it is NaN with the reason ``cell suppressed at source``.
            Counts may be non-integer (derived from published percentages).
        sensitive_features : sequence of str
            Columns naming the group of each row (one column for a marginal
            table, several for a joint one). Each combination may appear once.
        cells : mapping, optional
            ``{"tp": column, "fp": column, "fn": column, "tn": column}``;
            default the columns ``tp``, ``fp``, ``fn``, ``tn``.
        source : str
            Name used at the start of error messages (e.g. the file name).

        Returns
        -------
        GroupStatistics
            With the families ``rows``, ``prediction`` and ``truth``: case
            counts and the binary metrics.
        """
        features = _check_features(sensitive_features)
        if not isinstance(table, pd.DataFrame):
            raise DataError(f"{source}: expected a pandas DataFrame. Got {type(table).__name__}.")
        cellmap = dict(cells) if cells is not None else {k: k for k in ("tp", "fp", "fn", "tn")}
        if sorted(cellmap) != ["fn", "fp", "tn", "tp"]:
            raise SpecError(f"{source}: cells must map exactly tp, fp, fn, tn to columns. Got {sorted(cellmap)}.")
        missing_cols = [c for c in [*features, *cellmap.values()] if c not in table.columns]
        if missing_cols:
            raise DataError(
                f"{source}: missing column(s) {', '.join(map(repr, missing_cols))}. "
                f"Got columns {list(table.columns)}."
            )
        values = {}
        for cell, col in cellmap.items():
            arr = _numeric(table, col, source)
            with np.errstate(invalid="ignore"):
                bad = ~np.isnan(arr) & ~((arr >= 0) & np.isfinite(arr))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"{source}: column {col!r} ({cell}) must hold counts >= 0 (or be empty where suppressed). "
                    f"Got {float(arr[i])!r} in row {i + 1}."
                )
            values[cell] = arr
        codes_f, labels_f = [], []
        for feat in features:
            c, lab = _factorize(table[feat])
            codes_f.append(c)
            labels_f.append(lab)
        atom, keys = _atoms(codes_f, labels_f, features, len(table))
        if len(keys) != len(table):
            dup = pd.Series(atom).duplicated().to_numpy()
            i = int(np.flatnonzero(dup)[0])
            shown = GROUP_SEPARATOR.join(str(keys.iloc[atom[i]][f]) for f in features)
            raise DataError(
                f"{source}: each group must appear once. Got group {shown!r} of "
                f"{', '.join(features)} again in row {i + 1}; filter the table (e.g. with where:) first."
            )
        base = ST_OK | B_TRUTH | (2 << F_SHIFT)
        cell_codes = {
            "tp": base | B_YTRUE | B_YPRED,
            "fp": base | B_YPRED,
            "fn": base | B_YTRUE,
            "tn": base,
        }
        order = sorted(cell_codes, key=lambda k: cell_codes[k])
        counts = np.zeros((len(keys), 4))
        for j, cell in enumerate(order):
            counts[atom, j] = values[cell]
        return cls(
            keys=keys,
            codes=np.array([cell_codes[k] for k in order], dtype=np.int64),
            counts=counts,
            sums={},
            score_hist=None,
            families=frozenset({"rows", "prediction", "truth"}),
            definition=CellDefinition.confusion(),
        )

    @classmethod
    def from_dask(
        cls,
        ddf: Any,
        *,
        sensitive_features: Sequence[str],
        favourable: Sequence[str] = ("grant", "partial"),
        review: Sequence[str] = ("refer",),
        pred_positive: Sequence[str] = ("deny",),
        truth_positive: Sequence[str] | None = None,
        amount_tolerance: float = 1.0,
        score_bins: int = 1000,
        source: str = "measurement frame",
    ) -> GroupStatistics:
        """Statistics of a Dask DataFrame: one :meth:`from_frame` per partition, summed.

        Runs on the current Dask scheduler (a ``dask.distributed`` client when
        one is active). Strings keep the pandas ``str`` dtype
        (``dataframe.convert-string`` is switched off while computing).
        Duplicate ``case_id`` values are only detected within a partition.

        Parameters
        ----------
        ddf : dask.dataframe.DataFrame
            The measurement frame, partitioned.
        sensitive_features, favourable, review, pred_positive, truth_positive, amount_tolerance, score_bins, source
            As in :meth:`from_frame`.

        Returns
        -------
        GroupStatistics
            Equal to ``from_frame(ddf.compute(), ...)``.
        """
        try:
            import dask
        except ImportError:  # pragma: no cover - depends on the environment
            raise DataError(
                "Dask is not installed. Install it with: pip install 'insyn[dask]'."
            ) from None
        options = dict(
            sensitive_features=list(sensitive_features),
            favourable=tuple(favourable),
            review=tuple(review),
            pred_positive=tuple(pred_positive),
            truth_positive=None if truth_positive is None else tuple(truth_positive),
            amount_tolerance=amount_tolerance,
            score_bins=score_bins,
            source=source,
        )
        make_definition(
            favourable=favourable, review=review, pred_positive=pred_positive,
            truth_positive=truth_positive, amount_tolerance=amount_tolerance, score_bins=score_bins,
        )
        with dask.config.set({"dataframe.convert-string": False}):
            parts = ddf.to_delayed()
            stats = [dask.delayed(_from_partition)(part, options) for part in parts]
            total = dask.delayed(_sum_statistics)(stats)
            return total.compute()

    # ------------------------------------------------------------ algebra
    def _compatible(self, other: GroupStatistics) -> None:
        if not isinstance(other, GroupStatistics):
            raise TypeError(f"can only add GroupStatistics. Got {type(other).__name__}.")
        if set(self.sensitive_features) != set(other.sensitive_features):
            raise DataError(
                "cannot add statistics of different sensitive features. "
                f"Got {list(self.sensitive_features)} and {list(other.sensitive_features)}."
            )
        if self.families != other.families:
            raise DataError(
                "cannot add statistics built from different columns. "
                f"Got {sorted(self.families)} and {sorted(other.families)}."
            )
        if self.definition != other.definition:
            raise DataError(
                "cannot add statistics built with different outcome options. "
                f"Got {self.definition} and {other.definition}."
            )

    def __add__(self, other: Any) -> GroupStatistics:
        if isinstance(other, int) and other == 0:
            return self
        self._compatible(other)
        feats = list(self.sensitive_features)
        keys_b = other.keys[feats]
        tuples_a = list(self.keys.itertuples(index=False, name=None))
        tuples_b = list(keys_b.itertuples(index=False, name=None))
        union = sorted(set(tuples_a) | set(tuples_b))
        pos = {t: i for i, t in enumerate(union)}
        ia = np.array([pos[t] for t in tuples_a], dtype=np.int64)
        ib = np.array([pos[t] for t in tuples_b], dtype=np.int64)
        codes = np.union1d(self.codes, other.codes)
        ca = np.searchsorted(codes, self.codes)
        cb = np.searchsorted(codes, other.codes)
        counts = np.zeros((len(union), len(codes)))
        counts[np.ix_(ia, ca)] += self.counts
        counts[np.ix_(ib, cb)] += other.counts
        sums = {}
        for name in self.sums.keys() | other.sums.keys():
            acc = np.array([0] * len(union), dtype=object)
            if name in self.sums:
                np.add.at(acc, ia, self.sums[name])
            if name in other.sums:
                np.add.at(acc, ib, other.sums[name])
            sums[name] = acc
        hist = None
        if self.score_hist is not None and other.score_hist is not None:
            hist = np.zeros((len(union), *self.score_hist.shape[1:]), dtype=np.int64)
            np.add.at(hist, ia, self.score_hist)
            np.add.at(hist, ib, other.score_hist)
        if union:
            cols = list(zip(*union))
            keys = pd.DataFrame({f: pd.Series(list(col), dtype="str") for f, col in zip(feats, cols)})
        else:
            keys = pd.DataFrame({f: pd.Series([], dtype="str") for f in feats})
        return GroupStatistics(
            keys=keys, codes=codes, counts=counts, sums=sums, score_hist=hist,
            families=self.families, definition=self.definition,
        )

    def __radd__(self, other: Any) -> GroupStatistics:
        if isinstance(other, int) and other == 0:
            return self
        return self.__add__(other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GroupStatistics):
            return NotImplemented
        if (
            self.families != other.families
            or self.definition != other.definition
            or list(self.keys.columns) != list(other.keys.columns)
            or not self.keys.equals(other.keys)
            or not np.array_equal(self.codes, other.codes)
            or not np.array_equal(self.counts, other.counts, equal_nan=True)
            or self.sums.keys() != other.sums.keys()
        ):
            return False
        if any(list(self.sums[k]) != list(other.sums[k]) for k in self.sums):
            return False
        if (self.score_hist is None) != (other.score_hist is None):
            return False
        return self.score_hist is None or np.array_equal(self.score_hist, other.score_hist)

    # ------------------------------------------------------------ grouping
    def grouping(self, attributes: Sequence[str]) -> tuple[list[str], list[tuple[str, ...]], np.ndarray]:
        """Map atoms to the groups of an attribute or intersection.

        Parameters
        ----------
        attributes : sequence of str
            ``[]`` for the overall group ``"all"``, one feature, or several
            (an intersection).

        Returns
        -------
        labels : list of str
            Group labels (values joined with ``" & "``), sorted by value tuple.
        values : list of tuple of str
            The value tuple of each group.
        index : numpy.ndarray
            The group of each atom.
        """
        attrs = list(attributes)
        if not attrs:
            return [OVERALL_LABEL], [()], np.zeros(self.n_atoms, dtype=np.int64)
        unknown = [a for a in attrs if a not in self.keys.columns]
        if unknown:
            raise SpecError(
                f"{unknown[0]!r} is not a sensitive feature of these statistics "
                f"({', '.join(self.sensitive_features)})."
            )
        tuples = list(self.keys[attrs].itertuples(index=False, name=None))
        values = sorted(set(tuples))
        pos = {t: i for i, t in enumerate(values)}
        index = np.array([pos[t] for t in tuples], dtype=np.int64)
        labels = [GROUP_SEPARATOR.join(t) for t in values]
        return labels, values, index


def _check_features(sensitive_features: Sequence[str]) -> list[str]:
    if isinstance(sensitive_features, str) or not isinstance(sensitive_features, Iterable):
        raise SpecError(f"sensitive_features must be a list of column names. Got {sensitive_features!r}.")
    feats = list(sensitive_features)
    if not all(isinstance(f, str) and f for f in feats):
        raise SpecError(f"sensitive_features must be a list of column names. Got {feats!r}.")
    if len(set(feats)) != len(feats):
        raise SpecError(f"sensitive_features must be unique. Got {feats}.")
    return feats


def _from_partition(part: pd.DataFrame, options: dict[str, Any]) -> GroupStatistics:
    return GroupStatistics.from_frame(part, **options)


def _sum_statistics(stats: list[GroupStatistics]) -> GroupStatistics:
    return sum(stats[1:], stats[0])
