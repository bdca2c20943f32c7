"""The result of subgroup discovery: the groups found, and their tests.

Subgroup discovery (:mod:`audit.metrics._discovery`) hands back, for each
group it found, the definition (a conjunction of conditions), the search
half's figures that chose it, the test half's figures that test it (in the
fields of a tidy metrics row), and its make-up by the named sensitive
groups. This module holds those results and the three forms they leave in:

* :meth:`DiscoveryResult.metrics_frame`: one tidy metrics row per group
  (``discovered_<rate>``, reference group ``rest``), so that an audit run
  corrects the discovery's p-values together with every other test;
* :meth:`DiscoveryResult.with_run_correction` and
  :meth:`DiscoveryResult.joined_with`: the groups with the p-values of that
  wider correction;
* :meth:`DiscoveryResult.to_records`: the ``discovered`` list of
  ``results.json`` (``audit/schemas/results.schema.json``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from audit._columns import DISCOVERED_PREFIX
from audit.exceptions import DataError
from audit.metrics._table import COLUMNS
from audit.metrics._significance import adjust_pvalues, z_power_sum
from audit.metrics._subgroups import Condition

__all__ = ["REST_LABEL", "DiscoveredGroup", "DiscoveryResult", "p_or_nan"]

REST_LABEL = "rest"
"""The reference group of a discovered subgroup: every other case."""


@dataclass(frozen=True)
class DiscoveredGroup:
    """One subgroup found on the search half and tested on the test half.

    Attributes
    ----------
    rank : int
        The order of finding: 1 deviates most on the search half; each later
        group deviates most once the cases of the groups before it are left
        out (sequential covering).
    conditions : tuple of Condition
        The definition: every condition holds.
    search : Mapping
        The search half's figures that chose the group (optimistic):
        ``n`` (cases), ``n_eligible``, ``value``, ``rest_value``, ``z``.
    test : Mapping
        The test half: the tidy metrics-row fields (``n`` is the rate's
        denominator, ``count`` its numerator, ``reference_value`` the rest's
        rate), ``n_test_cases``, ``rest_n``, ``diff_ci_*``, ``ratio_ci_*``,
        ``test``, ``mdd`` and ``reason``. Counts and values are None when
        ``suppressed``.
    n_cases : int or None
        Cases of the whole population in the group (None when suppressed).
    share : float or None
        The group's share of all cases.
    makeup : tuple of Mapping
        ``{attribute, group, share, population_share, suppressed}`` per
        group of each sensitive attribute, over all cases.
    """

    rank: int
    conditions: tuple[Condition, ...]
    search: Mapping[str, Any]
    test: Mapping[str, Any]
    n_cases: int | None
    share: float | None
    makeup: tuple[Mapping[str, Any], ...]

    @property
    def definition(self) -> str:
        """The conditions joined with `` & ``: ``channel = paper & interpreter = True``."""
        return " & ".join(c.text for c in self.conditions)

    @property
    def attributes(self) -> list[str]:
        """The columns of the definition, in its order."""
        return [c.feature for c in self.conditions]

    @property
    def direction(self) -> str:
        """``higher`` or ``lower``: the deviation from the rest that the search found."""
        return "higher" if float(self.search["z"]) > 0 else "lower"

    def overrepresented(self, min_lift: float = 0.05) -> list[Mapping[str, Any]]:
        """Per sensitive attribute, the named group most over-represented in this group.

        The make-up row whose share inside the group exceeds its share of all
        cases the most, by at least ``min_lift`` (0.05: five percentage
        points); suppressed shares are left out. In the order of the
        attributes.
        """
        best: dict[str, tuple[float, Mapping[str, Any]]] = {}
        for r in self.makeup:
            share, population = r.get("share"), r.get("population_share")
            if r.get("suppressed") or share is None or population is None:
                continue
            lift = float(share) - float(population)
            attribute = str(r["attribute"])
            if lift >= min_lift and (attribute not in best or lift > best[attribute][0]):
                best[attribute] = (lift, r)
        return [r for _, r in best.values()]

    def confirmed(self, alpha: float) -> bool:
        """Whether the test half confirms the deviation the search found.

        A discovered group is a directional claim ("refused more often than
        the rest"). It is confirmed when its corrected two-sided p-value is
        below ``alpha`` *and* the test half deviates in the same direction; a
        significant deviation the other way contradicts the search and
        confirms nothing.
        """
        p, diff = self.test.get("p_adjusted"), self.test.get("difference")
        if _nan(p) or _nan(diff) or float(p) >= alpha:
            return False
        return (float(diff) > 0) == (self.direction == "higher")

    def to_dict(self, *, alpha: float = 0.05) -> dict[str, Any]:
        """The group as a ``discovered`` entry of ``results.json`` (``confirmed`` at level ``alpha``)."""
        return {
            "rank": self.rank,
            "group": self.definition,
            "attributes": self.attributes,
            "conditions": [c.to_dict() for c in self.conditions],
            "direction": self.direction,
            "confirmed": self.confirmed(alpha),
            "n_cases": self.n_cases,
            "share": self.share,
            **{k: v for k, v in self.test.items()},
            "search": dict(self.search),
            "makeup": [dict(m) for m in self.makeup],
        }


@dataclass(frozen=True)
class DiscoveryResult:
    """The result of one subgroup discovery.

    Attributes
    ----------
    outcome : str
        The outcome as given (``deny``, ``shortfall``, a metric name ...).
    metric : str
        The rate searched (``deny_rate`` ...); its metrics rows are named
        ``discovered_<metric>``.
    groups : tuple of DiscoveredGroup
        The groups found, strongest first (at most ``top``).
    features : tuple of str
        The columns searched.
    settings : Mapping
        ``max_conditions``, ``min_size``, ``bins``, ``top``, ``beam``,
        ``seed``, ``alpha``, ``min_group_size``.
    sizes : Mapping
        ``cases``, ``search`` and ``test`` (cases of each half),
        ``conditions`` (single conditions searched), ``candidates``
        (conjunctions scored).
    correction : Mapping
        ``method``, ``family`` (``discovery``: the found groups' tests
        alone; ``run``: every test of the audit run) and ``m`` (tests in the
        family).
    notes : tuple of str
        Why nothing was found, when nothing was.
    """

    outcome: str
    metric: str
    groups: tuple[DiscoveredGroup, ...]
    features: tuple[str, ...]
    settings: Mapping[str, Any]
    sizes: Mapping[str, int]
    correction: Mapping[str, Any]
    notes: tuple[str, ...] = field(default=())

    @property
    def row_metric(self) -> str:
        """The metric name of this discovery's metrics rows: ``discovered_<metric>``."""
        return DISCOVERED_PREFIX + self.metric

    @property
    def confirmed(self) -> tuple[DiscoveredGroup, ...]:
        """Groups the test half confirms at the run's ``alpha`` (see :meth:`DiscoveredGroup.confirmed`)."""
        alpha = float(self.settings["alpha"])
        return tuple(g for g in self.groups if g.confirmed(alpha))

    def metrics_frame(self) -> pd.DataFrame:
        """The tests as tidy metrics rows (``audit.metrics.COLUMNS``), for the run's correction.

        One row per group: ``metric`` is :attr:`row_metric`, ``attributes``
        the columns of the definition, ``group`` the definition,
        ``reference_group`` ``"rest"``; ``n`` is the rate's denominator on
        the test half; ``p_value`` is set and ``p_adjusted`` holds this
        result's correction (an audit run replaces it with the run's).
        """
        rows = []
        for g in self.groups:
            t = g.test
            row = {c: t.get(c) for c in COLUMNS}
            row.update(metric=self.row_metric, attributes=g.attributes, group=g.definition,
                       reference_group=REST_LABEL, four_fifths=None, max_min_gap=np.nan, min_max_ratio=np.nan)
            rows.append(row)
        frame = pd.DataFrame(rows, columns=list(COLUMNS))
        for c in frame.columns:
            if c not in ("metric", "attributes", "group", "reference_group", "test", "four_fifths", "suppressed",
                         "reason"):
                frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
        frame["suppressed"] = frame["suppressed"].astype(bool)
        return frame

    def with_correction(self, p_adjusted: Sequence[float], *, family: str, m: int,
                        mdd: Sequence[float] | None = None) -> DiscoveryResult:
        """Return a copy whose groups carry ``p_adjusted`` (in group order) from a wider family.

        ``mdd`` (optional, in group order): the minimum detectable differences
        sized for that family.
        """
        values = [float(p) for p in p_adjusted]
        if len(values) != len(self.groups):
            raise ValueError(f"expected {len(self.groups)} adjusted p-values, one per group. Got {len(values)}.")
        sized = [g.test.get("mdd") for g in self.groups] if mdd is None else [None if _nan(d) else float(d)
                                                                             for d in mdd]
        groups = tuple(
            replace(g, test={**g.test, "p_adjusted": None if _nan(p) else p, "mdd": d})
            for g, p, d in zip(self.groups, values, sized, strict=True)
        )
        correction = {**self.correction, "family": family, "m": int(m)}
        return replace(self, groups=groups, correction=correction)

    def with_run_correction(self, metrics: pd.DataFrame, *, other_tests: int = 0) -> DiscoveryResult:
        """Take the run-wide corrected p-values of this result's rows from a run's metrics table.

        Parameters
        ----------
        metrics : pandas.DataFrame
            The run's metrics table after the run-wide correction; it holds
            :meth:`metrics_frame`'s rows.
        other_tests : int, default 0
            Tests of the run's family that are not metric rows (the stage
            funnel's), counted in ``m``.
        """
        if not self.groups:
            m = int(metrics["p_value"].notna().sum()) if "p_value" in metrics.columns else 0
            return replace(self, correction={**self.correction, "family": "run", "m": m + other_tests})
        mine = metrics.loc[metrics["metric"] == self.row_metric].drop_duplicates("group").set_index("group")
        missing = [g.definition for g in self.groups if g.definition not in mine.index]
        if missing:
            raise DataError(f"the run's metrics hold no row {self.row_metric!r} for the group {missing[0]!r}.")
        p = [float(mine.at[g.definition, "p_adjusted"]) for g in self.groups]
        mdd = [float(mine.at[g.definition, "mdd"]) for g in self.groups] if "mdd" in mine.columns else None
        return self.with_correction(p, family="run", m=int(metrics["p_value"].notna().sum()) + other_tests, mdd=mdd)

    def joined_with(self, p_values: Sequence[float], *, method: str) -> DiscoveryResult:
        """Correct this result's tests together with other tests (``p_values``), e.g. a finished run's.

        The minimum detectable differences are sized again for the larger family (``alpha / m``).
        """
        other = np.asarray(list(p_values), dtype=float)
        mine = np.asarray([p_or_nan(g.test.get("p_value")) for g in self.groups], dtype=float)
        adjusted = adjust_pvalues(np.concatenate([other, mine]), method=method)  # type: ignore[arg-type]
        m = int(np.isfinite(other).sum() + np.isfinite(mine).sum())
        own = int(np.isfinite(mine).sum())
        alpha = float(self.settings["alpha"])
        factor = 1.0 if method == "none" or own == 0 else float(z_power_sum(alpha / m) / z_power_sum(alpha / own))
        mdd = [math.nan if _nan(g.test.get("mdd")) else float(g.test["mdd"]) * factor for g in self.groups]
        return self.with_correction(list(adjusted[other.size:]), family="run", m=m, mdd=mdd)

    def to_records(self) -> list[dict[str, Any]]:
        """The ``discovered`` list of ``results.json``: one entry per group, each with the search's settings."""
        common = {
            "outcome": self.outcome,
            "metric": self.metric,
            "row_metric": self.row_metric,
            "reference_group": REST_LABEL,
            "correction": dict(self.correction),
            "search_half": int(self.sizes["search"]),
            "test_half": int(self.sizes["test"]),
        }
        alpha = float(self.settings["alpha"])
        return [{**common, **g.to_dict(alpha=alpha)} for g in self.groups]

    def to_dict(self) -> dict[str, Any]:
        """Everything: settings, sizes, correction, notes and the groups."""
        return {
            "outcome": self.outcome,
            "metric": self.metric,
            "features": list(self.features),
            "settings": dict(self.settings),
            "sizes": dict(self.sizes),
            "correction": dict(self.correction),
            "notes": list(self.notes),
            "groups": [g.to_dict(alpha=float(self.settings["alpha"])) for g in self.groups],
        }


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def p_or_nan(value: Any) -> float:
    """A p-value as float; NaN for None or NaN."""
    return math.nan if _nan(value) else float(value)
