"""Riksnorm tables: one year's national norm, read and validated from YAML.

The riksnorm is the national minimum for everyday living costs (food,
clothes, leisure, hygiene, consumables, newspaper and phone) that the
government sets every year in socialtjänstförordningen (2001:937) 2 kap. 1 §.
It has personal costs by age band and for single or cohabiting adults, lower
amounts for children who eat lunch at preschool, and common household costs by
household size. One YAML file per year lives in ``datasets/sweden/``; every
figure carries its provenance (published, municipal, anchored, derived or
estimated). See ``datasets/sweden/README.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from audit._yaml import load_yaml
from audit.exceptions import DataError, SpecError
from audit._paths import resolve_path

__all__ = ["AGE_BANDS", "NORM_YEARS", "NormTable", "PROVENANCE_STATUSES", "load_norm_table"]

NORM_YEARS: tuple[int, ...] = (2023, 2024, 2025, 2026)
"""Calendar years with a riksnorm table in ``datasets/sweden/``."""

AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("child_0", 0, 0),
    ("child_1_2", 1, 2),
    ("child_3", 3, 3),
    ("child_4_6", 4, 6),
    ("child_7_10", 7, 10),
    ("child_11_14", 11, 14),
    ("child_15_18", 15, 18),
    ("child_19_20", 19, 20),
)
"""Children's age bands of the riksnorm: (key, lowest age, highest age)."""

PROVENANCE_STATUSES: tuple[str, ...] = ("published", "municipal", "anchored", "derived", "estimated", "illustrative")
"""How a figure in a data file was obtained (the first word of its provenance)."""

_ROOT = Path(__file__).resolve().parents[2]
_PERSONAL_KEYS = tuple(b[0] for b in AGE_BANDS) + ("single_adult", "cohabiting_adult")
_LUNCH_KEYS = tuple(b[0] for b in AGE_BANDS[:4])
AGE_TO_BAND = np.array([i for i, (_, lo, hi) in enumerate(AGE_BANDS) for _ in range(lo, hi + 1)])
MAX_AGE = AGE_BANDS[-1][2]
N_YOUNG_BANDS = len(_LUNCH_KEYS)
_TABLE_KEYS = ("year", "uplift_percent", "derived_from", "personal", "preschool_lunch", "common", "items", "provenance")


# --------------------------------------------------------------------------
# small helpers


def shown_path(path: Path) -> str:
    """Return ``path`` relative to the project root or the current folder when possible."""
    for base in (_ROOT, Path.cwd()):
        try:
            return path.resolve().relative_to(base).as_posix()
        except ValueError:
            continue
    return str(path)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_yaml(path: Path, shown: str, what: str) -> Any:
    if not path.is_file():
        raise SpecError(f"{shown}: no such file. Expected {what}.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise SpecError(
            f"{shown}: the file must be UTF-8 text. Got byte 0x{byte:02x} at position {exc.start}."
        ) from None
    return load_yaml(text, source=shown)


def read_number(section: Any, key: Any, path: str, errs: list[str], *, required: bool = True) -> float | None:
    """Read a number >= 0 at ``section[key]``; append a message to ``errs`` when it is not one."""
    if not isinstance(section, dict) or key not in section:
        if required:
            errs.append(f"{path} is required (a number >= 0).")
        return None
    value = section[key]
    if not is_number(value) or value < 0:
        errs.append(f"{path} must be a number >= 0. Got {value!r}.")
        return None
    return float(value)


def read_mapping(data: dict[str, Any], key: str, errs: list[str], *, required: bool = True) -> dict[Any, Any]:
    value = data.get(key)
    if value is None:
        if required:
            errs.append(f"{key} is required (a mapping).")
        return {}
    if not isinstance(value, dict):
        errs.append(f"{key} must be a mapping of keys to values. Got {value!r}.")
        return {}
    return value


def check_unknown_keys(section: dict[Any, Any], known: tuple[Any, ...], prefix: str, errs: list[str]) -> None:
    for key in section:
        if key not in known:
            errs.append(f"{prefix}{key} is not a known key. Known keys: {', '.join(map(str, known))}.")


def read_provenance(data: dict[str, Any], figures: tuple[str, ...], errs: list[str]) -> dict[str, str]:
    """Validate a ``provenance`` mapping and expand it to one entry per figure."""
    section = read_mapping(data, "provenance", errs)
    known = ("default",) + figures
    out: dict[str, str] = {}
    for key, text in section.items():
        if key not in known:
            errs.append(f"provenance.{key} names no figure of this file. Known: default, {', '.join(figures)}.")
            continue
        status = str(text).split(":", 1)[0].strip() if isinstance(text, str) else ""
        if status not in PROVENANCE_STATUSES or ":" not in str(text):
            errs.append(
                f"provenance.{key} must read '<status>: <how>' with a status of "
                f"{', '.join(PROVENANCE_STATUSES)}. Got {text!r}."
            )
            continue
        out[key] = text.strip()
    if section and "default" not in out and any(f not in out for f in figures):
        errs.append("provenance.default is required unless every figure has its own entry.")
    return {f: out.get(f, out.get("default", "")) for f in figures}


# --------------------------------------------------------------------------
# norm tables


@dataclass(frozen=True, kw_only=True)
class NormTable:
    """One year's riksnorm (SEK per month), read from ``riksnorm-<year>.yaml``.

    Attributes
    ----------
    year : int
        The calendar year the table applies to.
    personal : Mapping[str, float]
        Personal costs: ``child_0`` ... ``child_19_20`` (see :data:`AGE_BANDS`),
        ``single_adult`` and ``cohabiting_adult`` (per person).
    preschool_lunch : Mapping[str, float]
        Reduced personal costs of children aged 0-6 who eat lunch at preschool.
    common : tuple of float
        Common household costs for 1 ... 7 persons.
    common_increment : float
        Added to ``common[6]`` for every person beyond 7.
    uplift_percent, derived_from
        The uplift on the previous year and the year the figures derive from.
    provenance : Mapping[str, str]
        ``"<status>: <how>"`` for every figure (``personal.child_0``, ``common.4`` ...).
    path : str
        The file read.
    """

    year: int
    personal: Mapping[str, float]
    preschool_lunch: Mapping[str, float]
    common: tuple[float, ...]
    common_increment: float
    uplift_percent: float | None = None
    derived_from: int | None = None
    provenance: Mapping[str, str] = field(default_factory=dict)
    path: str = ""

    @property
    def band_amounts(self) -> np.ndarray:
        """Personal costs per age band, in the order of :data:`AGE_BANDS`."""
        return np.array([self.personal[b[0]] for b in AGE_BANDS], dtype="float64")

    @property
    def lunch_reductions(self) -> np.ndarray:
        """How much lower the amount is with preschool lunch, for bands 0, 1-2, 3 and 4-6."""
        return np.array([self.personal[k] - self.preschool_lunch[k] for k in _LUNCH_KEYS], dtype="float64")

    def common_costs(self, persons: Any) -> np.ndarray:
        """Return the common household costs for household sizes ``persons`` (>= 1).

        Parameters
        ----------
        persons : int or array-like of int
            Household sizes.

        Returns
        -------
        numpy.ndarray
            ``common[persons - 1]`` up to 7 persons; beyond,
            ``common[6] + common_increment * (persons - 7)``.
        """
        p = np.asarray(persons, dtype="int64")
        if np.any(p < 1):
            raise DataError(f"household size must be >= 1 person. Got {p[p < 1][0]}.")
        table = np.asarray(self.common, dtype="float64")
        return np.where(p <= 7, table[np.clip(p, 1, 7) - 1], table[6] + self.common_increment * (p - 7))

    def non_partner_adult_norm(self, persons: int) -> float:
        """Norm of an adult who shares a household of ``persons`` without being a partner.

        Single-adult personal costs plus an equal share of the common costs:
        ``personal['single_adult'] + common(persons) / persons``.
        """
        return self.personal["single_adult"] + float(self.common_costs(persons)) / persons

    def household_norm(
        self, *, adults: int, other_adults: int = 0, child_ages: tuple[int, ...] = (), preschool_lunch: int = 0
    ) -> float:
        """Return the norm of one household (a plain, non-vectorised statement of the rules).

        Parameters
        ----------
        adults : int
            1 (applicant alone) or 2 (applicant and partner).
        other_adults : int, default 0
            Adults who are not partners; each gets single-adult personal costs.
        child_ages : tuple of int, default ()
            Ages 0-20 of the children living there.
        preschool_lunch : int, default 0
            How many children aged 0-6 eat lunch at preschool (the oldest first).

        Returns
        -------
        float
            Personal costs of every member plus common costs for the household size.
        """
        if adults not in (1, 2) or other_adults < 0:
            raise DataError(f"adults must be 1 or 2 and other_adults >= 0. Got {adults} and {other_adults}.")
        bands = [next(k for k, lo, hi in AGE_BANDS if lo <= a <= hi) for a in child_ages]
        young = sorted((a for a in child_ages if a <= 6), reverse=True)
        if not 0 <= preschool_lunch <= len(young):
            raise DataError(f"preschool_lunch must be 0-{len(young)} for ages {child_ages}. Got {preschool_lunch}.")
        total = sum(self.personal[b] for b in bands)
        for age in young[:preschool_lunch]:
            key = next(k for k, lo, hi in AGE_BANDS if lo <= age <= hi)
            total += self.preschool_lunch[key] - self.personal[key]
        total += 2 * self.personal["cohabiting_adult"] if adults == 2 else self.personal["single_adult"]
        total += other_adults * self.personal["single_adult"]
        return total + float(self.common_costs(adults + other_adults + len(child_ages)))

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as plain data (the input of definition hashes)."""
        return {
            "year": self.year,
            "personal": dict(self.personal),
            "preschool_lunch": dict(self.preschool_lunch),
            "common": list(self.common),
            "common_increment": self.common_increment,
        }


def _norm_figures() -> tuple[str, ...]:
    return (
        tuple(f"personal.{k}" for k in _PERSONAL_KEYS)
        + tuple(f"preschool_lunch.{k}" for k in _LUNCH_KEYS)
        + tuple(f"common.{i}" for i in range(1, 8))
        + ("common.increment_beyond_7",)
    )


def _parse_norm_table(data: Any, *, year: int, shown: str) -> NormTable:
    if not isinstance(data, dict):
        raise SpecError(f"{shown}: a riksnorm table must be a mapping of keys to values. Got {type(data).__name__}.")
    errs: list[str] = []
    check_unknown_keys(data, _TABLE_KEYS, "", errs)
    if data.get("year") != year or isinstance(data.get("year"), bool):
        errs.append(f"year must be {year}, the year in the file name. Got {data.get('year')!r}.")
    uplift = data.get("uplift_percent")
    if uplift is not None and not is_number(uplift):
        errs.append(f"uplift_percent must be a number or null. Got {uplift!r}.")
    derived = data.get("derived_from")
    if derived is not None and (not isinstance(derived, int) or isinstance(derived, bool) or derived >= year):
        errs.append(f"derived_from must be an earlier year or null. Got {derived!r}.")
    personal_in = read_mapping(data, "personal", errs)
    check_unknown_keys(personal_in, _PERSONAL_KEYS, "personal.", errs)
    personal = {k: read_number(personal_in, k, f"personal.{k}", errs) for k in _PERSONAL_KEYS}
    lunch_in = read_mapping(data, "preschool_lunch", errs)
    check_unknown_keys(lunch_in, _LUNCH_KEYS, "preschool_lunch.", errs)
    lunch = {k: read_number(lunch_in, k, f"preschool_lunch.{k}", errs) for k in _LUNCH_KEYS}
    for k in _LUNCH_KEYS:
        full, reduced = personal[k], lunch[k]
        if full is not None and reduced is not None and reduced > full:
            errs.append(f"preschool_lunch.{k} must not exceed personal.{k} ({full:g}). Got {reduced:g}.")
    common_in = read_mapping(data, "common", errs)
    check_unknown_keys(common_in, (1, 2, 3, 4, 5, 6, 7, "increment_beyond_7"), "common.", errs)
    common = [read_number(common_in, i, f"common.{i}", errs) for i in range(1, 8)]
    increment = read_number(common_in, "increment_beyond_7", "common.increment_beyond_7", errs)
    if common[5] is not None and common[6] is not None and increment is not None and increment != common[6] - common[5]:
        errs.append(
            "common.increment_beyond_7 must equal common.7 - common.6 "
            f"({common[6]:g} - {common[5]:g} = {common[6] - common[5]:g}; the published rule). Got {increment:g}."
        )
    totals: dict[str, float | None] = {k: personal[k] for k in _PERSONAL_KEYS[:-1]}
    couple = personal["cohabiting_adult"]
    totals["cohabiting_couple"] = None if couple is None else 2 * couple
    totals.update({f"common_{i + 1}": c for i, c in enumerate(common)})
    for row, items in read_mapping(data, "items", errs, required=False).items():
        if row not in totals:
            errs.append(f"items.{row} is not a row of the table. Known rows: {', '.join(totals)}.")
        elif not isinstance(items, dict) or not items:
            errs.append(f"items.{row} must map item names to amounts. Got {items!r}.")
        else:
            amounts = [read_number(items, name, f"items.{row}.{name}", errs) for name in items]
            total = totals[row]
            if total is not None and all(a is not None for a in amounts):
                got = sum(a for a in amounts if a is not None)
                if got != total:
                    errs.append(f"items.{row} must sum to its total {total:g}. Got {got:g}.")
    provenance = read_provenance(data, _norm_figures(), errs)
    if errs:
        raise SpecError("\n".join(f"{shown}: {e}" for e in errs))
    return NormTable(
        year=year,
        personal=MappingProxyType(personal),  # type: ignore[arg-type]
        preschool_lunch=MappingProxyType(lunch),  # type: ignore[arg-type]
        common=tuple(common),  # type: ignore[arg-type]
        common_increment=increment,  # type: ignore[arg-type]
        uplift_percent=None if uplift is None else float(uplift),
        derived_from=derived,
        provenance=MappingProxyType(provenance),
        path=shown,
    )


@lru_cache(maxsize=64)
def _load_table_cached(path: str, year: int, mtime_ns: int, size: int) -> NormTable:
    p = Path(path)
    shown = shown_path(p)
    return _parse_norm_table(read_yaml(p, shown, f"a riksnorm table for {year}"), year=year, shown=shown)


def load_norm_table(year: int, *, directory: str | Path | None = None) -> NormTable:
    """Read and validate the riksnorm table of one calendar year.

    Parameters
    ----------
    year : int
        The calendar year; one of :data:`NORM_YEARS` for the shipped tables.
    directory : str or Path, optional
        Folder holding ``riksnorm-<year>.yaml``. Default: ``datasets/sweden``
        of the project, or the copy shipped with Insyn.

    Returns
    -------
    NormTable
        Frozen; cached per file version.

    Raises
    ------
    SpecError
        When the file is missing or a figure is missing, negative, not a
        number, or inconsistent; the message names the file, key and value.
    """
    if not isinstance(year, int) or isinstance(year, bool):
        raise SpecError(f"year must be an integer such as 2026. Got {year!r}.")
    name = f"riksnorm-{year}.yaml"
    if directory is None:
        path = resolve_path(f"datasets/sweden/{name}", _ROOT)
    else:
        path = Path(directory).expanduser().resolve() / name
    if not path.is_file():
        raise SpecError(
            f"{shown_path(path)}: no riksnorm table for {year}. "
            f"Expected one of the years {', '.join(map(str, NORM_YEARS))} or a file {name} in the folder given."
        )
    stat = path.stat()
    return _load_table_cached(str(path), year, stat.st_mtime_ns, stat.st_size)
