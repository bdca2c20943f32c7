"""The reference calculation and the reference engine (``engine.kind: reference``).

Need = household norm + allowed costs - counted income, computed for all
cases at once with numpy; the reference engine turns the need and the
eligibility rules into the decision frame (``grant``, ``partial``, ``deny`` or
``error``). See the package docstring of :mod:`audit.norms` for the rules.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from audit._columns import COST_COLUMNS, INCOME_COLUMNS
from audit._schema import coded_strings
from audit.exceptions import DataError, SpecError
from audit.norms._guideline import MunicipalGuideline
from audit.norms._inputs import ELIGIBILITY_COLUMNS, NEED_COLUMNS, prepare_cases, PreparedCases
from audit.norms._rules import DEFAULT_ASSET_BUFFER, RULE_VERSIONS, ReferenceOptions
from audit.norms._tables import N_YOUNG_BANDS, NORM_YEARS, NormTable, is_number, load_norm_table

__all__ = ["ReferenceEngine", "compute_need"]

_ENGINE_REVISION = "1"


# --------------------------------------------------------------------------
# the calculation


def _rent_limit(options: ReferenceOptions, other_adults: np.ndarray, children: np.ndarray) -> np.ndarray:
    """Law-level housing limit: overcrowding norm 2 flat at ``rent_limit_per_sqm``."""
    if options.rent_limit_per_sqm is None:
        return np.full(len(other_adults), np.inf)
    rooms = 2 + other_adults + children  # living room + bedroom of applicant (and partner) + one each
    areas = np.asarray(options.rent_limit_areas)
    k = len(areas)
    beyond = areas[-1] + options.rent_limit_area_per_extra_room * (rooms - k)
    area = np.where(rooms <= k, areas[np.clip(rooms, 1, k) - 1], beyond)
    return options.rent_limit_per_sqm * area


def _joined(codes: np.ndarray, names: tuple[str, ...]) -> Any:
    """Turn bit codes into a ``str`` array of ';'-joined names (bit j set -> ``names[j]``)."""
    return coded_strings(codes, [";".join(c for j, c in enumerate(names) if code >> j & 1)
                                 for code in range(1 << len(names))])


def _tables(options: ReferenceOptions) -> dict[int, NormTable]:
    return {y: load_norm_table(y, directory=options.norm_dir) for y in NORM_YEARS}


def _compute(
    prep: PreparedCases, tables: dict[int, NormTable], options: ReferenceOptions, guideline: MunicipalGuideline | None
) -> dict[str, np.ndarray]:
    """Need = norm + allowed costs - counted income, for every row of ``prep`` (NaN where invalid)."""
    v, n = prep.values, prep.n
    ok = ~prep.bad
    adults, others, children = v["adults"], v["other_adults"], v["children"]
    persons = adults + others + children
    norm = np.full(n, np.nan)
    norm_other = np.full(n, np.nan)
    code = v["age_code"]
    for year in np.unique(v["year"][ok]):
        m = ok & (v["year"] == year)
        t = tables[int(year)]
        single, couple = t.personal["single_adult"], 2 * t.personal["cohabiting_adult"]
        # per distinct child_ages value: the children's amounts, and the lunch reductions of
        # its k oldest children aged 0-6 (column k of ``cut``)
        u_children = v["u_counts"] @ t.band_amounts
        young = v["u_young"]
        red = np.where(young >= 0, t.lunch_reductions[np.clip(young, 0, N_YOUNG_BANDS - 1)], 0.0)
        cut = np.concatenate([np.zeros((len(red), 1)), np.cumsum(red, axis=1)], axis=1)
        common = t.common_costs(persons[m])
        norm[m] = (
            u_children[code[m]]
            - cut[code[m], v["lunch"][m]]
            + np.where(adults[m] == 2, couple, single)
            + others[m] * single
            + common
        )
        norm_other[m] = others[m] * (single + common / persons[m])
    if guideline is not None:
        limits = guideline._limits(adults, others, children)
    else:
        limits = {"rent": _rent_limit(options, others, children)}
        for col, lim in options.cost_limits.items():
            limits[col] = np.minimum(limits.get(col, np.inf), lim)
    applied_total = np.zeros(n)
    allowed_total = np.zeros(n)
    capped_code = np.zeros(n, dtype="int64")
    for j, col in enumerate(COST_COLUMNS):
        applied = v[col]
        allowed = np.minimum(applied, limits[col]) if col in limits else applied
        applied_total += applied
        allowed_total += allowed
        capped_code |= (allowed < applied).astype("int64") << j
    capped_code[~ok] = 0
    income = np.zeros(n)
    for col in INCOME_COLUMNS:
        income += v[col]
    months = v["months"]
    stim = months >= options.jobbstimulans_after_months
    if options.jobbstimulans_window_months is not None:
        stim &= months < options.jobbstimulans_after_months + options.jobbstimulans_window_months
    stim &= np.array([r.jobbstimulans for r in RULE_VERSIONS])[np.clip(v["rule"], 0, None)]
    income -= options.jobbstimulans_share * v["income_wages"] * stim
    out = {
        "norm_amount": norm,
        "costs_applied": applied_total,
        "costs_allowed": allowed_total,
        "costs_capped": capped_code > 0,
        "capped_items": _joined(capped_code, COST_COLUMNS),
        "income_counted": income,
        "need_amount": norm + allowed_total - income,
        "norm_other_adults": norm_other,
        "household_size": persons,
    }
    for key in ("costs_applied", "costs_allowed", "income_counted", "need_amount"):
        out[key] = np.where(ok, out[key], np.nan)
    return out


_OUTCOMES = ("error", "deny", "partial", "grant")
"""The reference engine's outcomes, by the code its decision computes."""


def _str_array(values: np.ndarray) -> Any:
    """A pandas ``str`` array (positional, so duplicate index labels are harmless)."""
    return pd.array(np.asarray(values, dtype=object), dtype="str")


def _int_array(values: np.ndarray, ok: np.ndarray) -> Any:
    """A nullable ``Int64`` array, missing where not ``ok``."""
    arr = pd.array(np.where(ok, values, 0).astype("int64"), dtype="Int64")
    arr[~ok] = pd.NA
    return arr


def compute_need(
    cases: pd.DataFrame,
    *,
    guideline: MunicipalGuideline | None = None,
    options: ReferenceOptions | None = None,
    detail: bool = False,
) -> pd.DataFrame:
    """Compute each case's need under the law (or under a municipal guideline's caps).

    Parameters
    ----------
    cases : pandas.DataFrame
        Assistance case frame; needs ``benefit_month``, ``adults``,
        ``other_adults``, ``child_ages``, ``children_preschool_lunch``, the
        income columns, ``months_on_assistance`` and the cost columns.
    guideline : MunicipalGuideline, optional
        Cap costs by this guideline instead of the law-level limits.
    options : ReferenceOptions, optional
        Parameters of the calculation (defaults documented there).
    detail : bool, default False
        Add ``norm_other_adults`` (the non-partner adults' part of the norm),
        ``household_size``, ``norm_year`` and ``rule_version``.

    Returns
    -------
    pandas.DataFrame
        Same index as ``cases``: ``norm_amount``, ``costs_applied``,
        ``costs_allowed``, ``costs_capped``, ``capped_items``,
        ``income_counted``, ``need_amount`` (may be negative) and ``error``
        ('' or the reason the case cannot be computed; numbers are NaN then).

    Examples
    --------
    A single adult in 2026 with a rent of 5 000 and no income needs
    3 940 + 1 280 + 5 000 = 10 220 SEK.
    """
    options = options or ReferenceOptions()
    tables = _tables(options)
    prep = prepare_cases(cases, NEED_COLUMNS, tuple(tables))
    columns = _need_columns(prep, _compute(prep, tables, options, guideline), detail=detail)
    return pd.DataFrame(columns, index=cases.index)


def _need_columns(prep: PreparedCases, res: dict[str, np.ndarray], *, detail: bool) -> dict[str, Any]:
    """The columns of :func:`compute_need`, as positional arrays."""
    ok = ~prep.bad
    out: dict[str, Any] = {
        "norm_amount": np.where(ok, res["norm_amount"], np.nan),
        "costs_applied": res["costs_applied"],
        "costs_allowed": res["costs_allowed"],
        "costs_capped": res["costs_capped"],
        "capped_items": res["capped_items"],
        "income_counted": res["income_counted"],
        "need_amount": res["need_amount"],
        "error": _str_array(prep.error_text()) if prep.problems else coded_strings(np.zeros(prep.n, np.int64), [""]),
    }
    if detail:
        v = prep.values
        out["norm_other_adults"] = np.where(ok, res["norm_other_adults"], np.nan)
        out["household_size"] = _int_array(res["household_size"], ok)
        out["norm_year"] = _int_array(v["year"], ok)
        ids = np.array([r.rule_id for r in RULE_VERSIONS] + [""], dtype=object)
        out["rule_version"] = _str_array(ids[np.where(ok, v["rule"], -1)])
    return out


# --------------------------------------------------------------------------
# the engine

_REASON_ORDER = (
    "ASSETS_AVAILABLE",
    "NOT_AVAILABLE_LABOUR_MARKET",
    "ACTIVITY_REQUIREMENT_NOT_MET",
    "NO_NEED_INCOME_SUFFICIENT",
    "COST_NOT_REASONABLE",
)
_DECISION_EXTRA = (
    "error",
    "norm_amount",
    "costs_applied",
    "costs_allowed",
    "capped_items",
    "income_counted",
    "need_amount",
    "norm_year",
    "rule_version",
)


class ReferenceEngine:
    """The law's baseline as an engine (``engine.kind: reference``).

    Parameters
    ----------
    asset_buffer : float, default :data:`DEFAULT_ASSET_BUFFER`
        Assets above this amount (SEK) deny assistance (``ASSETS_AVAILABLE``).
    options : ReferenceOptions or mapping, optional
        Parameters of the calculation.
    **option_values
        Individual :class:`ReferenceOptions` fields (as in a spec's
        ``engine.options``); unknown names are errors.

    Attributes
    ----------
    name : str
        ``"reference"``.
    version : str
        The engine revision, the rule versions and the norm years it uses.
    definition_hash : str
        SHA-256 over the norm tables, the rule versions and every parameter.
    required_columns : tuple of str
        The case-frame columns it reads.

    Notes
    -----
    Outcome: ``deny`` (amount 0) when any of ``ASSETS_AVAILABLE``,
    ``NOT_AVAILABLE_LABOUR_MARKET``, ``ACTIVITY_REQUIREMENT_NOT_MET`` or
    ``NO_NEED_INCOME_SUFFICIENT`` (need <= 0) holds; otherwise ``partial``
    when a cost was reduced (``COST_NOT_REASONABLE``), else ``grant``; the
    amount is the need. ``reasons`` lists every ground that holds, in that
    order, and ``COST_NOT_REASONABLE`` whenever a cost was reduced.
    """

    name = "reference"

    def __init__(
        self,
        *,
        asset_buffer: float = DEFAULT_ASSET_BUFFER,
        options: ReferenceOptions | Mapping[str, Any] | None = None,
        **option_values: Any,
    ) -> None:
        if not is_number(asset_buffer) or asset_buffer < 0:
            raise SpecError(f"The 'asset_buffer' option must be a number >= 0 (SEK). Got {asset_buffer!r}.")
        if options is None:
            opts = ReferenceOptions.from_mapping(option_values)
        elif isinstance(options, ReferenceOptions):
            opts = ReferenceOptions.from_mapping({**options.to_dict(), **option_values})
        else:
            opts = ReferenceOptions.from_mapping({**dict(options), **option_values})
        self.asset_buffer = float(asset_buffer)
        self.options = opts
        self._tables = _tables(opts)
        ids = ", ".join(r.rule_id for r in RULE_VERSIONS)
        self.version = f"{_ENGINE_REVISION} (rules {ids}; riksnorm {min(NORM_YEARS)}-{max(NORM_YEARS)})"
        self.required_columns: tuple[str, ...] = NEED_COLUMNS + ELIGIBILITY_COLUMNS
        definition = {
            "engine": self.name,
            "revision": _ENGINE_REVISION,
            "asset_buffer": self.asset_buffer,
            "options": {k: v for k, v in opts.to_dict().items() if k != "norm_dir"},
            "rules": [r.to_dict() for r in RULE_VERSIONS],
            "tables": {str(y): t.to_dict() for y, t in self._tables.items()},
        }
        self.definition_hash = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()

    def __repr__(self) -> str:
        return f"ReferenceEngine(asset_buffer={self.asset_buffer:g}, version={self.version!r})"

    def decide(self, cases: pd.DataFrame) -> pd.DataFrame:
        """Decide every case under the law.

        Parameters
        ----------
        cases : pandas.DataFrame
            Needs ``case_id`` and :attr:`required_columns`; other columns are
            ignored. A missing required column makes every row an error row.

        Returns
        -------
        pandas.DataFrame
            Same index and row order as ``cases``: ``case_id``, ``outcome``
            (``grant``, ``partial``, ``deny`` or ``error``), ``amount`` (SEK;
            0.0 for deny, NaN for error), ``reasons``, ``error``,
            ``norm_amount``, ``costs_applied``, ``costs_allowed``,
            ``capped_items``, ``income_counted``, ``need_amount``,
            ``norm_year`` and ``rule_version``.

        Raises
        ------
        DataError
            When ``cases`` is not a DataFrame or has no ``case_id`` column.
        """
        if not isinstance(cases, pd.DataFrame):
            raise DataError(f"cases must be a pandas DataFrame. Got {type(cases).__name__}.")
        if "case_id" not in cases.columns:
            raise DataError(
                "cases: no 'case_id' column. The reference engine returns one decision per case_id; "
                f"got columns {', '.join(map(str, cases.columns[:12]))}{' ...' if len(cases.columns) > 12 else ''}."
            )
        prep = prepare_cases(cases, self.required_columns, tuple(self._tables))
        res = _compute(prep, self._tables, self.options, None)
        need = _need_columns(prep, res, detail=True)
        v, ok = prep.values, ~prep.bad
        rule = np.clip(v["rule"], 0, None)
        activity = np.array([r.activity_requirement for r in RULE_VERSIONS])[rule]
        min_months = np.array([r.activity_min_months for r in RULE_VERSIONS])[rule]
        exempt = (v["income_sickness"] > 0) | (v["income_pension"] > 0)
        flags = np.column_stack(
            [
                v["assets"] > self.asset_buffer,
                v["able_to_work"] & ~(v["registered_af"] & v["follows_plan"]),
                activity & (v["months"] >= min_months) & ~exempt & ~v["follows_plan"],
                res["need_amount"] <= 0,
                res["costs_capped"],
            ]
        ).reshape(prep.n, len(_REASON_ORDER)) & ok[:, None]
        deny = flags[:, :4].any(axis=1)
        outcome = np.select([~ok, deny, flags[:, 4]], [0, 1, 2], 3)  # a code of _OUTCOMES
        amount = np.where(~ok, np.nan, np.where(deny, 0.0, res["need_amount"]))
        codes = (flags.astype("int64") * (1 << np.arange(len(_REASON_ORDER)))).sum(axis=1)
        columns = {
            "case_id": cases["case_id"].array,
            "outcome": coded_strings(outcome, _OUTCOMES),
            "amount": amount.astype("float64"),
            "reasons": _joined(codes, _REASON_ORDER),
        }
        columns.update({k: need[k] for k in _DECISION_EXTRA})
        return pd.DataFrame(columns, index=cases.index)
