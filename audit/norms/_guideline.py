"""Municipal guidelines: caps on costs that are stricter than the law.

Municipalities publish guidelines (riktlinjer) that turn "a reasonable cost"
into fixed figures: the highest rent accepted for a household of a given
composition, and fixed caps on electricity, insurance or travel. Research on
municipal robots found that they follow such guidelines more than the law.
A guideline is a separate, explicit layer: an engine may apply it through
``compute_need(..., guideline=...)``; the reference engine never does.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from audit._columns import COST_COLUMNS
from audit.exceptions import DataError, SpecError
from audit.norms._inputs import GUIDELINE_COLUMNS, prepare_cases
from audit.norms._rules import MONTH_PATTERN
from audit.norms._tables import (
    NORM_YEARS,
    check_unknown_keys,
    read_mapping,
    read_number,
    read_provenance,
    read_yaml,
    shown_path,
)
from audit._paths import resolve_path

__all__ = ["MunicipalGuideline"]

_GUIDELINE_KEYS = (
    "name",
    "description",
    "municipality_code",
    "valid_from",
    "source",
    "housing_cap",
    "cost_caps",
    "provenance",
)

# --------------------------------------------------------------------------
# municipal guidelines


@dataclass(frozen=True, kw_only=True)
class MunicipalGuideline:
    """A municipality's guideline: caps on costs that are stricter than the law.

    Attributes
    ----------
    name : str
        Short name, e.g. ``trelleborg-2019``.
    housing_cap_no_children : tuple of float
        Highest rent for households without children with 1, 2 adults.
    housing_cap_children : tuple of float
        Highest rent for 1-2 adults with 1, 2, ... children; the last value
        applies to more children.
    housing_cap_per_extra_child : float
        Added per child beyond the last row (Malmö style); 0 for none.
    cost_caps : Mapping[str, float]
        Fixed caps on other cost columns (not ``rent``).
    municipality_code, valid_from, source, description : str or None
        Where the guideline comes from (``valid_from`` is informative only).
    provenance : Mapping[str, str]
        ``"<status>: <how>"`` per figure.
    path : str or None
        The file read.

    Notes
    -----
    Household composition for the housing cap: adults are ``adults +
    other_adults``; adults beyond two count as children (the published tables
    list one or two adults only).
    """

    name: str
    housing_cap_no_children: tuple[float, ...]
    housing_cap_children: tuple[float, ...]
    housing_cap_per_extra_child: float = 0.0
    cost_caps: Mapping[str, float] = field(default_factory=dict)
    municipality_code: str | None = None
    valid_from: str | None = None
    source: str | None = None
    description: str | None = None
    provenance: Mapping[str, str] = field(default_factory=dict)
    path: str | None = None

    @classmethod
    def from_yaml(cls, path: str | Path) -> MunicipalGuideline:
        """Read a guideline file (see ``datasets/sweden/guidelines/``).

        Raises
        ------
        SpecError
            When the file is missing, is not YAML, has an unknown key or a cap
            that is not a number >= 0; the message names the file, key and value.
        """
        p = resolve_path(path, None) if not Path(path).is_absolute() else Path(path)
        shown = shown_path(p)
        return cls.from_dict(read_yaml(p, shown, "a municipal guideline YAML file"), source=shown)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<guideline>") -> MunicipalGuideline:
        """Build a guideline from parsed YAML; ``source`` names it in error messages."""
        if not isinstance(data, dict):
            raise SpecError(f"{source}: a guideline must be a mapping of keys to values. Got {type(data).__name__}.")
        errs: list[str] = []
        check_unknown_keys(data, _GUIDELINE_KEYS, "", errs)
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            errs.append(f"name is required (a string). Got {name!r}.")
        for key in ("description", "municipality_code", "valid_from", "source"):
            if data.get(key) is not None and not isinstance(data.get(key), str):
                errs.append(f"{key} must be a string. Got {data.get(key)!r}.")
        month = data.get("valid_from")
        if isinstance(month, str) and not MONTH_PATTERN.match(month):
            errs.append(f"valid_from must be a month in the form YYYY-MM. Got {month!r}.")
        code = data.get("municipality_code")
        if isinstance(code, str) and not re.fullmatch(r"\d{4}", code):
            errs.append(f"municipality_code must be 4 digits in quotes, e.g. \"1287\". Got {code!r}.")
        housing = read_mapping(data, "housing_cap", errs)
        check_unknown_keys(housing, ("no_children", "children", "per_extra_child"), "housing_cap.", errs)
        tables: dict[str, list[float]] = {}
        for key in ("no_children", "children"):
            rows = housing.get(key)
            if not isinstance(rows, dict) or not rows:
                what = "adults (1, 2)" if key == "no_children" else "numbers of children (1, 2, ...)"
                errs.append(f"housing_cap.{key} must map {what} to caps. Got {rows!r}.")
                continue
            want = [1, 2] if key == "no_children" else list(range(1, len(rows) + 1))
            if set(rows) != set(want):
                errs.append(
                    f"housing_cap.{key} must have the keys {', '.join(map(str, want))}. "
                    f"Got {', '.join(map(repr, rows))}."
                )
                continue
            vals = [read_number(rows, k, f"housing_cap.{key}.{k}", errs) for k in want]
            tables[key] = [v for v in vals if v is not None]
        extra = read_number(housing, "per_extra_child", "housing_cap.per_extra_child", errs, required=False) or 0.0
        caps_in = data.get("cost_caps") or {}
        if not isinstance(caps_in, dict):
            errs.append(f"cost_caps must map cost columns to caps. Got {caps_in!r}.")
            caps_in = {}
        caps: dict[str, float] = {}
        for col in caps_in:
            if col == "rent":
                errs.append("cost_caps.rent: rent is capped by housing_cap; remove it from cost_caps.")
            elif col not in COST_COLUMNS:
                others = ", ".join(c for c in COST_COLUMNS if c != "rent")
                errs.append(f"cost_caps.{col} is not a cost column. Known: {others}.")
            else:
                v = read_number(caps_in, col, f"cost_caps.{col}", errs)
                if v is not None:
                    caps[col] = v
        figures = ("housing_cap",) + tuple(f"cost_caps.{c}" for c in caps_in)
        provenance = read_provenance(data, figures, errs) if "provenance" in data else {}
        if errs:
            raise SpecError("\n".join(f"{source}: {e}" for e in errs))
        return cls(
            name=name.strip(),
            housing_cap_no_children=tuple(tables["no_children"]),
            housing_cap_children=tuple(tables["children"]),
            housing_cap_per_extra_child=float(extra),
            cost_caps=MappingProxyType(caps),
            municipality_code=code,
            valid_from=data.get("valid_from"),
            source=data.get("source"),
            description=data.get("description"),
            provenance=MappingProxyType(provenance),
            path=source,
        )

    def housing_cap(self, *, adults: Any, other_adults: Any, children: Any) -> np.ndarray:
        """Return the highest accepted rent for households (vectorised).

        Parameters
        ----------
        adults, other_adults, children : int or array-like of int
            Partners (1-2), other adults and children in each household.
        """
        total = np.asarray(adults, dtype="int64") + np.asarray(other_adults, dtype="int64")
        kids = np.asarray(children, dtype="int64") + np.maximum(total - 2, 0)
        no_kids = np.asarray(self.housing_cap_no_children, dtype="float64")[np.clip(total, 1, 2) - 1]
        rows = np.asarray(self.housing_cap_children, dtype="float64")
        extra = self.housing_cap_per_extra_child * np.maximum(kids - len(rows), 0)
        with_kids = rows[np.clip(kids, 1, len(rows)) - 1] + extra
        return np.where(kids == 0, no_kids, with_kids)

    def _limits(self, adults: np.ndarray, other_adults: np.ndarray, children: np.ndarray) -> dict[str, Any]:
        """Caps per capped cost column (an array for rent, numbers for fixed caps)."""
        limits: dict[str, Any] = {"rent": self.housing_cap(adults=adults, other_adults=other_adults, children=children)}
        limits.update(self.cost_caps)
        return limits

    def allowed_costs(self, cases: pd.DataFrame) -> pd.DataFrame:
        """Return the costs this guideline allows, per case.

        Parameters
        ----------
        cases : pandas.DataFrame
            Needs ``adults``, ``other_adults``, ``child_ages`` and the cost columns.

        Returns
        -------
        pandas.DataFrame
            Same index as ``cases``: one column per cost column holding
            ``min(applied, cap)``, and ``housing_cap``.

        Raises
        ------
        DataError
            When an input is missing or invalid; ``failures`` lists every problem.
        """
        prep = prepare_cases(cases, GUIDELINE_COLUMNS, NORM_YEARS)
        if prep.bad.any():
            table = prep.failures(f"guideline {self.name}").table()
            raise DataError(
                f"guideline {self.name}: {int(prep.bad.sum())} case(s) cannot be capped; "
                f"first: {table['reason'].iloc[0]}.",
                failures=table,
            )
        v = prep.values
        limits = self._limits(v["adults"], v["other_adults"], v["children"])
        out = pd.DataFrame(
            {c: np.minimum(v[c], limits[c]) if c in limits else v[c] for c in COST_COLUMNS}, index=cases.index
        )
        out["housing_cap"] = limits["rent"]
        return out

    @property
    def definition_hash(self) -> str:
        """SHA-256 over the caps (not the prose)."""
        data = {
            "no_children": list(self.housing_cap_no_children),
            "children": list(self.housing_cap_children),
            "per_extra_child": self.housing_cap_per_extra_child,
            "cost_caps": dict(sorted(self.cost_caps.items())),
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
