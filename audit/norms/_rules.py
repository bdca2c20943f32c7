"""Rule versions, reason codes and the parameters of the law's calculation.

The rules of social assistance change over time: a new Social Services Act
from July 2025 and an activity requirement (aktivitetskrav) from October
2026. Each :class:`RuleVersion` says from which benefit month it applies and
what it changes; :class:`ReferenceOptions` holds the parameters the law
leaves open (the reasonableness limit on housing costs, jobbstimulans).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from audit._columns import COST_COLUMNS
from audit.exceptions import DataError, SpecError
from audit.norms._tables import is_number

__all__ = [
    "DEFAULT_ASSET_BUFFER",
    "REASON_CODES",
    "RULE_VERSIONS",
    "ReferenceOptions",
    "RuleVersion",
    "rule_version",
]

DEFAULT_ASSET_BUFFER = 10_000.0
"""Assets (SEK) a household may keep; about two months of the 2026 single-person norm."""

REASON_CODES: dict[str, str] = {
    "ACTIVITY_REQUIREMENT_NOT_MET": (
        "From 2026-10: at least 3 consecutive months on assistance, not exempt, and not taking part "
        "in the assigned activity (follows_plan is false)."
    ),
    "ASSETS_AVAILABLE": "Savings or sellable assets above the asset buffer must be used first.",
    "COST_ABOVE_CAP": (
        "A cost was reduced to a municipal guideline's cap (used by engines that apply a guideline; "
        "never by the reference)."
    ),
    "COST_NOT_REASONABLE": "A cost was reduced to the law-level reasonableness limit (delavslag).",
    "NOT_AVAILABLE_LABOUR_MARKET": (
        "Able to work but not registered at Arbetsförmedlingen or not following the agreed plan."
    ),
    "NO_NEED_INCOME_SUFFICIENT": "Counted income covers the norm and the allowed costs (need <= 0).",
}
"""Documented reason codes -> meaning."""

# --------------------------------------------------------------------------
# rule versions


@dataclass(frozen=True, kw_only=True)
class RuleVersion:
    """One version of the rules, in force from ``effective_from`` (``YYYY-MM``) on.

    Attributes
    ----------
    rule_id : str
        Its name, the month it takes effect.
    effective_from : str
        First benefit month it applies to.
    law : str
        The legal basis.
    jobbstimulans : bool
        Whether 25 % of wages are disregarded after six months on assistance.
    activity_requirement : bool
        Whether the aktivitetskrav applies.
    activity_min_months : int
        Consecutive months on assistance after which the activity requirement applies.
    summary : str
        What changes compared with the previous version.
    """

    rule_id: str
    effective_from: str
    law: str
    jobbstimulans: bool = True
    activity_requirement: bool = False
    activity_min_months: int = 3
    summary: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the version as plain data."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


RULE_VERSIONS: tuple[RuleVersion, ...] = (
    RuleVersion(
        rule_id="2023-01",
        effective_from="2023-01",
        law="SoL (2001:453) 4 kap. 1 §, 1 b § (jobbstimulans), 3 § (riksnorm); SoF (2001:937) 2 kap. 1 §",
        summary="Norm + reasonable costs - income; jobbstimulans; labour-market requirement.",
    ),
    RuleVersion(
        rule_id="2025-07",
        effective_from="2025-07",
        law="Socialtjänstlag (2025:400), riksnorm in 12 kap. 7 §; SoF (2001:937) 2 kap. 1 §",
        summary="New Social Services Act; the calculation is unchanged.",
    ),
    RuleVersion(
        rule_id="2026-10",
        effective_from="2026-10",
        law="Socialtjänstlag (2025:400) with the aktivitetskrav (in force 2026-07-01, first applied to October 2026)",
        activity_requirement=True,
        summary=(
            "Aktivitetskrav: after 3 consecutive months, taking part in the assigned activity is required "
            "unless exempt (modelled: sickness benefit or pension income)."
        ),
    ),
)
"""Rule versions, oldest first."""

MONTH_PATTERN = re.compile(r"^\s*(\d{4})-(0[1-9]|1[0-2])\s*$")


def rule_version(benefit_month: str) -> RuleVersion:
    """Return the rule version that applies to a benefit month (``YYYY-MM``).

    Raises
    ------
    DataError
        When the month is not ``YYYY-MM`` or precedes the first version.
    """
    m = MONTH_PATTERN.match(benefit_month) if isinstance(benefit_month, str) else None
    if m is None:
        raise DataError(f"benefit_month must be a month in the form YYYY-MM. Got {benefit_month!r}.")
    month = f"{m.group(1)}-{m.group(2)}"
    applicable = [v for v in RULE_VERSIONS if v.effective_from <= month]
    if not applicable:
        raise DataError(f"benefit_month {month!r} precedes the first rule version ({RULE_VERSIONS[0].effective_from}).")
    return applicable[-1]


# --------------------------------------------------------------------------
# options


@dataclass(frozen=True, kw_only=True)
class ReferenceOptions:
    """Parameters of the law's calculation (see the module docstring for the defaults).

    Parameters
    ----------
    jobbstimulans_share : float, default 0.25
        Share of wages disregarded under jobbstimulans.
    jobbstimulans_after_months : int, default 6
        Consecutive months on assistance after which it applies.
    jobbstimulans_window_months : int or None, default None
        If set, jobbstimulans applies only while ``months_on_assistance`` is
        below ``after + window`` (the law's 24 months); None: no end.
    rent_limit_per_sqm : float or None, default 133.0
        SEK per m² and month of the law-level housing limit; None: no limit.
    rent_limit_areas : tuple of float, default (42, 60, 78, 98)
        Flat sizes in m² for 1-4 rooms and kitchen.
    rent_limit_area_per_extra_room : float, default 20.0
        m² added per room beyond 4.
    cost_limits : Mapping[str, float], default {}
        Fixed law-level limits on cost columns (SEK/month).
    norm_dir : str or None, default None
        Folder of the riksnorm tables (default: the shipped ones).
    """

    jobbstimulans_share: float = 0.25
    jobbstimulans_after_months: int = 6
    jobbstimulans_window_months: int | None = None
    rent_limit_per_sqm: float | None = 133.0
    rent_limit_areas: tuple[float, ...] = (42.0, 60.0, 78.0, 98.0)
    rent_limit_area_per_extra_room: float = 20.0
    cost_limits: Mapping[str, float] = field(default_factory=dict)
    norm_dir: str | None = None

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> SpecError:
            return SpecError(f"The {name!r} option must be {expected}. Got {getattr(self, name)!r}.")

        if not is_number(self.jobbstimulans_share) or not 0 <= self.jobbstimulans_share <= 1:
            raise bad("jobbstimulans_share", "a number between 0 and 1")
        for name in ("jobbstimulans_after_months", "jobbstimulans_window_months"):
            v = getattr(self, name)
            if not (v is None and name.endswith("window_months")) and (
                not isinstance(v, int) or isinstance(v, bool) or v < 0
            ):
                raise bad(name, "an integer >= 0" + (" or null" if name.endswith("window_months") else ""))
        v = self.rent_limit_per_sqm
        if v is not None and (not is_number(v) or v <= 0):
            raise bad("rent_limit_per_sqm", "a number > 0 or null")
        areas = self.rent_limit_areas
        if (
            not isinstance(areas, (list, tuple))
            or len(areas) < 1
            or not all(is_number(a) and a > 0 for a in areas)
            or list(areas) != sorted(areas)
        ):
            raise bad("rent_limit_areas", "a non-empty, increasing list of areas in m² > 0")
        object.__setattr__(self, "rent_limit_areas", tuple(float(a) for a in areas))
        if not is_number(self.rent_limit_area_per_extra_room) or self.rent_limit_area_per_extra_room < 0:
            raise bad("rent_limit_area_per_extra_room", "a number >= 0")
        if not isinstance(self.cost_limits, Mapping):
            raise bad("cost_limits", f"a mapping of cost columns ({', '.join(COST_COLUMNS)}) to amounts")
        for col, limit in self.cost_limits.items():
            if col not in COST_COLUMNS:
                raise SpecError(
                    f"The 'cost_limits' option names {col!r}, which is not a cost column. "
                    f"Expected one of {', '.join(COST_COLUMNS)}."
                )
            if not is_number(limit) or limit < 0:
                raise SpecError(f"The 'cost_limits' option must give {col} a number >= 0. Got {limit!r}.")
        object.__setattr__(self, "cost_limits", MappingProxyType({k: float(v) for k, v in self.cost_limits.items()}))
        if self.norm_dir is not None and not isinstance(self.norm_dir, (str, Path)):
            raise bad("norm_dir", "a folder path or null")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ReferenceOptions:
        """Build options from a mapping (e.g. ``engine.options`` of a spec); unknown keys are errors."""
        known = [f.name for f in fields(cls)]
        for key in data:
            if key not in known:
                raise SpecError(
                    f"{key!r} is not a known option of the reference engine. Known options: "
                    f"asset_buffer, {', '.join(known)}."
                )
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """Return the options as JSON-ready data."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["rent_limit_areas"] = list(self.rent_limit_areas)
        out["cost_limits"] = dict(self.cost_limits)
        out["norm_dir"] = None if self.norm_dir is None else str(self.norm_dir)
        return out
