"""Seeded, spec-driven synthetic populations of social-assistance applicants.

A pre-deployment audit of an automated decision system for *ekonomiskt
bistånd* needs cases before real ones exist, and a bias study needs cases
whose truth is known. This module draws monthly applications of households
that look like Sweden's applicants: household types, foreign-born share,
reasons for needing assistance by sex and birth region, long-term share and
rents per m² follow official statistics; the rest is estimated, and the
population spec (``datasets/sweden/population-2026.yaml``) says which is
which. Dependencies that matter for an audit are built in: the reason for
need (latent, as in SCB's *försörjningshinder*) drives incomes, work capacity
and spell length; interpreter need and paper applications are more common
among older applicants and recent arrivals; rents follow the region's SEK/m²
and the household's size.

*Bias knobs* inject known unfairness for studies, each declared in the spec
with a precise meaning and off by default (strength 0):

``flip``
    Among cases in the knob's groups whose *true* value of a boolean column
    is the source value of ``direction``, a share ``strength`` is recorded
    with the other value (e.g. a caseworker assesses ``able_to_work`` as True
    at equal circumstances; a registry lookup fails).
``omit_income``
    Each positive amount of the listed income columns of cases in the groups
    is reported as 0 with probability ``strength``.

:func:`generate_latent` returns the observed case frame together with the
true (pre-bias) values, so the injected gap can be measured exactly;
:func:`generate` returns the case frame alone, with the ground truth of the
active knobs in ``frame.attrs["insyn_bias"]``. Knobs draw from their own
random streams: switching one on changes only the values it is meant to
change.
"""

from __future__ import annotations

import copy
import typing
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from audit._columns import ALLOWED_VALUES, ASSISTANCE_COLUMNS, COST_COLUMNS, INCOME_COLUMNS
from audit.exceptions import DataError, SpecError
from audit.spec import resolve_path

__all__ = [
    "ApplicantAge",
    "Assets",
    "BIRTH_REGIONS",
    "BenefitMonths",
    "BiasKnob",
    "BirthRegion",
    "ChildBenefits",
    "Childcare",
    "Children",
    "HOUSEHOLD_TYPES",
    "HouseholdTypes",
    "LabourMarket",
    "LogOdds",
    "PopulationModel",
    "REASONS",
    "REGION_TYPES",
    "Range",
    "Reasons",
    "Regions",
    "Registry",
    "Rent",
    "Source",
    "Spell",
    "SyntheticPopulation",
    "YearsInSweden",
    "generate",
    "generate_latent",
    "load_population_spec",
    "write_population",
]

HOUSEHOLD_TYPES: tuple[str, ...] = (
    "single_man", "single_woman", "single_mother",
    "couple_with_children", "couple_without_children", "single_father",
)
"""The recipient household types of SCB's statistics (latent column ``household_type``)."""
REGION_TYPES: tuple[str, ...] = ("stockholm", "gothenburg", "malmo", "large", "small")
"""SCB's region types of the rent statistics (latent column ``region_type``)."""
REASONS: tuple[str, ...] = ("unemployment", "ill_health", "social", "other")
"""Reasons for needing assistance, *försörjningshinder* (latent column ``reason``)."""
BIRTH_REGIONS: tuple[str, ...] = ALLOWED_VALUES["birth_region"]
"""Birth regions of the case frame; the first, ``sweden``, is born in Sweden."""
_COUPLE = np.array([False, False, False, True, True, False])
_WITH_CHILDREN = np.array([False, False, True, True, False, True])
_SINGLE_PARENT = np.array([False, False, True, False, False, True])
_FEMALE_SINGLE = np.array([False, True, True, False, False, False])
_BOOL_COLUMNS = tuple(c for c, k in ASSISTANCE_COLUMNS.items() if k == "bool")
_GROUP_VALUES: dict[str, tuple[Any, ...]] = {
    "sex": ALLOWED_VALUES["sex"], "birth_region": BIRTH_REGIONS,
    "application_type": ALLOWED_VALUES["application_type"], "channel": ALLOWED_VALUES["channel"],
    "interpreter": (True, False), "household_type": HOUSEHOLD_TYPES, "region_type": REGION_TYPES,
    "reason": REASONS,
}
_GROUP_RANGES = ("applicant_age", "years_in_sweden")
_PROVENANCE_ACTORS = ("applicant", "caseworker", "system")
_MAX_CHILDREN = 8


class _At(ValueError):
    """A validation error located at ``key`` below the field being validated."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _sum_to_one(values: list[float]) -> list[float]:
    total = float(sum(values))
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"must sum to 1. Got {total:.6g}.")
    return values


Probability = Annotated[float, Field(ge=0, le=1)]
ShareList = Annotated[list[Probability], Field(min_length=1), AfterValidator(_sum_to_one)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def vector(self) -> np.ndarray:
        """The values in the order of the fields (categories), as floats."""
        return np.array(list(self.model_dump().values()), dtype=float)


class _Shares(_Model):
    """A set of shares over fixed categories; they must sum to 1."""

    @model_validator(mode="after")
    def _sums(self) -> _Shares:
        _sum_to_one(list(self.model_dump().values()))
        return self


class Range(_Model):
    """An inclusive integer range ``{min, max}`` (years)."""

    min: int = Field(ge=0)
    max: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"must have min <= max. Got min {self.min}, max {self.max}.")
        return self


class BenefitMonths(_Model):
    """The benefit months drawn (uniformly), ``YYYY-MM``, inclusive."""

    first: str = Field(default="2026-01", pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    last: str = Field(default="2026-12", pattern=r"^\d{4}-(0[1-9]|1[0-2])$")

    @model_validator(mode="after")
    def _ordered(self) -> BenefitMonths:
        if self.first > self.last:
            raise ValueError(f"must have first <= last. Got first {self.first!r}, last {self.last!r}.")
        return self


def _fixed(name: str, keys: tuple[str, ...], kind: Any, base: type[_Model] = _Model) -> type[_Model]:
    """A model with one required key per category (an unknown or missing category is an error)."""
    return create_model(name, __base__=base, **{k: (kind, ...) for k in keys})  # type: ignore[call-overload]


_Codes = Annotated[list[Annotated[str, Field(pattern=r"^\d{4}$")]], Field(min_length=1)]
_RegionShares = _fixed("_RegionShares", REGION_TYPES, Probability, _Shares)
_HouseholdShares = _fixed("_HouseholdShares", HOUSEHOLD_TYPES, Probability, _Shares)
_BirthShares = _fixed("_BirthShares", BIRTH_REGIONS, Probability, _Shares)
_ReasonShares = _fixed("_ReasonShares", REASONS, Probability, _Shares)
_ByReason = _fixed("_ByReason", REASONS, Probability)


class Regions(_Model):
    """Region types: share of applicants, rent level (SEK/m²) and municipality codes."""

    shares: _RegionShares  # type: ignore[valid-type]
    rent_per_m2: _fixed("_RegionRents", REGION_TYPES, Annotated[float, Field(gt=0)])  # type: ignore[valid-type]
    municipality_codes: _fixed("_RegionCodes", REGION_TYPES, _Codes)  # type: ignore[valid-type]


class HouseholdTypes(_Model):
    """Recipient household types (SCB); which partner of a couple applies."""

    shares: _HouseholdShares  # type: ignore[valid-type]
    couple_applicant_female: Probability = 0.5


class Children(_Model):
    """Number and ages of children in households with children."""

    count_shares: ShareList = Field(max_length=_MAX_CHILDREN)
    min_parent_age_gap: int = Field(default=17, ge=12, le=40)
    school_youth: Probability = 0.0
    preschool_lunch: Probability = 0.85


class _Bands(_Model):
    """Integer bands and, per key, one share per band."""

    bands: list[Range] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_share_per_band(self) -> _Bands:
        for key, values in self.shares.model_dump().items():  # type: ignore[attr-defined]
            if len(values) != len(self.bands):
                raise _At(f"shares.{key}", f"must have one share per band ({len(self.bands)}). Got {len(values)}.")
        return self


class ApplicantAge(_Bands):
    """Applicant age bands (18-99) and their shares by household type."""

    shares: _fixed("_AgeShares", HOUSEHOLD_TYPES, ShareList)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _adults(self) -> ApplicantAge:
        for i, band in enumerate(self.bands):
            if band.min < 18:
                raise _At(f"bands[{i}].min", f"must be an integer >= 18 (applicants are adults). Got {band.min}.")
            if band.max > 99:
                raise _At(f"bands[{i}].max", f"must be an integer <= 99. Got {band.max}.")
        return self


class YearsInSweden(_Bands):
    """Years in Sweden of foreign-born applicants, by birth region."""

    shares: _fixed("_YearsShares", BIRTH_REGIONS[1:], ShareList)  # type: ignore[valid-type]


class BirthRegion(_Model):
    """Birth region of the applicant by household type."""

    shares: _fixed("_BirthByHousehold", HOUSEHOLD_TYPES, _BirthShares)  # type: ignore[valid-type]


class Reasons(_Model):
    """Reason for needing assistance by sex and birth region (SCB)."""

    shares: _fixed(  # type: ignore[valid-type]
        "_ReasonsBySexBirth", ("female_sweden", "female_abroad", "male_sweden", "male_abroad"), _ReasonShares
    )


class LogOdds(_Model):
    """A logistic model: P = 1 / (1 + exp(-(intercept + sum of coefficient x predictor)))."""

    intercept: float
    born_abroad: float = 0.0
    recent_arrival: float = 0.0
    age_decades_over_40: float = 0.0
    interpreter: float = 0.0
    couple: float = 0.0
    with_children: float = 0.0


class Spell(_Model):
    """New applications and the length of the current spell of assistance."""

    new_application: Probability
    long_term_by_reason: _ByReason
    short_months: Range
    long_months: Range
    long_mean_extra_months: float = Field(ge=0)
    household_changed: Probability = 0.0

    @model_validator(mode="after")
    def _check(self) -> Spell:
        for r in REASONS:
            total = self.new_application + getattr(self.long_term_by_reason, r)
            if total > 1 + 1e-9:
                raise _At(f"long_term_by_reason.{r}", f"plus new_application must be <= 1. Got {total:.6g}.")
        if self.short_months.min < 1:
            raise _At("short_months.min", f"must be an integer >= 1 (renewals). Got {self.short_months.min}.")
        if self.long_months.min <= self.short_months.max:
            raise _At("long_months.min", f"must be > short_months.max ({self.short_months.max}). "
                      f"Got {self.long_months.min}.")
        return self


class LabourMarket(_Model):
    """True work capacity, AF registration and plan compliance by reason for need."""

    pension_age: int = Field(ge=18, le=99)
    able_to_work: _ByReason
    registered_af_if_able: _ByReason
    registered_af_if_not_able: Probability
    follows_plan: _ByReason


Eligibility = Literal[
    "all", "with_children", "single_parent", "couple", "young_without_children", "pension_age",
    "below_pension_age", "arrived_within_3_years", "child_under_2", "has_rent", "has_wages",
]


class Source(_Model):
    """An income or cost source: who has it, how likely, and a log-normal amount (SEK/month)."""

    column: str
    eligible: Eligibility = "all"
    probability: Probability | None = None
    by_reason: _ByReason | None = None
    couple_extra: Probability = 0.0
    median: float = Field(gt=0)
    sigma: float = Field(ge=0)
    min: float = Field(default=0.0, ge=0)
    max: float = Field(gt=0)
    per_extra_person: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> Source:
        if (self.probability is None) == (self.by_reason is None):
            got = "both" if self.probability is not None else "neither"
            raise ValueError(f"must give exactly one of probability, by_reason. Got {got}.")
        if not self.min <= self.median <= self.max:
            raise ValueError(
                f"must have min <= median <= max. Got min {self.min:g}, median {self.median:g}, max {self.max:g}."
            )
        return self


class ChildBenefits(_Model):
    """Benefits paid per child (barnbidrag, studiebidrag, underhållsstöd), SEK/month."""

    child_allowance: float = Field(ge=0)
    large_family_supplement: list[Annotated[float, Field(ge=0)]] = Field(min_length=1)
    supplement_beyond: float = Field(ge=0)
    study_allowance: float = Field(ge=0)
    maintenance_support: float = Field(ge=0)
    maintenance_take_up: Probability


class Rent(_Model):
    """Rent = region SEK/m² x flat size by household size x log-normal spread (x a second-hand premium)."""

    no_rent: Probability
    flat_m2_by_persons: list[Annotated[float, Field(gt=0)]] = Field(min_length=1)
    sigma: float = Field(ge=0)
    second_hand: Probability = 0.0
    second_hand_factor: float = Field(default=1.0, ge=1)


class Childcare(_Model):
    """Preschool fee (maxtaxa): a share of household income per child, capped."""

    rates: list[Probability] = Field(min_length=1)
    caps: list[Annotated[float, Field(ge=0)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Childcare:
        if len(self.rates) != len(self.caps):
            raise _At("caps", f"must have one cap per rate ({len(self.rates)}). Got {len(self.caps)}.")
        return self


class Assets(_Model):
    """Savings and sellable assets: probability of having any and a log-normal amount."""

    probability: Probability
    median: float = Field(gt=0)
    sigma: float = Field(ge=0)
    max: float = Field(gt=0)


class Registry(_Model):
    """The unbiased rate at which a registry lookup fails."""

    read_failure: Probability


class BiasKnob(_Model):
    """A bias that a study can switch on, with a documented meaning of its strength.

    ``kind: flip`` changes the boolean ``column``: among cases in ``groups``
    whose true value is the source of ``direction``, a share ``strength`` is
    recorded with the other value. ``kind: omit_income`` reports each positive
    amount of ``columns`` of cases in ``groups`` as 0 with probability
    ``strength``. ``groups`` maps a column to its allowed values (AND across
    columns); ``applicant_age`` and ``years_in_sweden`` take ``{min, max}``.
    """

    description: str
    kind: Literal["flip", "omit_income"]
    column: str | None = None
    direction: Literal["false_to_true", "true_to_false"] | None = None
    columns: list[str] | None = None
    groups: dict[str, Any] = Field(default_factory=dict)
    strength: Probability = 0.0

    @model_validator(mode="after")
    def _check(self) -> BiasKnob:
        if self.kind == "flip":
            if self.column not in _BOOL_COLUMNS:
                raise _At("column", f"must be a boolean case-frame column ({', '.join(_BOOL_COLUMNS)}). "
                          f"Got {self.column!r}.")
            if self.direction is None:
                raise _At("direction", "is required for kind flip (false_to_true or true_to_false).")
            if self.columns is not None:
                raise _At("columns", "belongs to kind omit_income; kind flip takes column.")
        else:
            if not self.columns:
                raise _At("columns", f"must list income columns for kind omit_income. Got {self.columns!r}.")
            for i, col in enumerate(self.columns):
                if col not in INCOME_COLUMNS:
                    raise _At(f"columns[{i}]", f"must be an income column ({', '.join(INCOME_COLUMNS)}). Got {col!r}.")
            if self.column is not None or self.direction is not None:
                raise _At("column", "and direction belong to kind flip; kind omit_income takes columns.")
        for key, value in self.groups.items():
            if key in _GROUP_RANGES:
                if not isinstance(value, dict):
                    raise _At(f"groups.{key}", f"must be a range {{min, max}}. Got {value!r}.")
                try:
                    Range.model_validate(value)
                except ValidationError as exc:
                    first = exc.errors(include_url=False)[0]
                    sub = ".".join(str(p) for p in first["loc"])
                    text = str(first["msg"]).removeprefix("Value error, ")
                    raise _At(f"groups.{key}" + (f".{sub}" if sub else ""), f"{text}") from None
            elif key in _GROUP_VALUES:
                allowed = _GROUP_VALUES[key]
                if not isinstance(value, list) or not value:
                    raise _At(f"groups.{key}", f"must be a non-empty list of values. Got {value!r}.")
                for v in value:
                    if v not in allowed or isinstance(v, bool) != isinstance(allowed[0], bool):
                        raise _At(f"groups.{key}", f"must hold values of {', '.join(map(str, allowed))}. Got {v!r}.")
            else:
                known = sorted([*_GROUP_VALUES, *_GROUP_RANGES])
                raise _At(f"groups.{key}", f"is not a column a group can be formed on ({', '.join(known)}).")
        return self

    def effect(self) -> str:
        """One sentence saying exactly what the knob does at its strength."""
        who = _describe_groups(self.groups)
        if self.kind == "flip":
            src, dst = ("False", "True") if self.direction == "false_to_true" else ("True", "False")
            return (f"Among cases {who} whose true {self.column} is {src}, a share {self.strength:g} "
                    f"is recorded as {dst}.")
        return (f"Each positive amount of {', '.join(self.columns or [])} of cases {who} is reported as 0 "
                f"with probability {self.strength:g}.")


class PopulationModel(_Model):
    """A population spec: every marginal, dependency, provenance and bias knob.

    Read one with :func:`load_population_spec`; the YAML file is its
    serialised form and ``datasets/sweden/population-2026.yaml`` documents
    each key.
    """

    name: str
    description: str = ""
    benefit_months: BenefitMonths = Field(default_factory=BenefitMonths)
    provenance: dict[str, str]
    regions: Regions
    household_types: HouseholdTypes
    other_adults: ShareList
    children: Children
    applicant_age: ApplicantAge
    birth_region: BirthRegion
    years_in_sweden: YearsInSweden
    reasons: Reasons
    interpreter: LogOdds
    paper_channel: LogOdds
    assistance_spell: Spell
    labour_market: LabourMarket
    incomes: dict[str, Source]
    child_benefits: ChildBenefits
    rent: Rent
    costs: dict[str, Source]
    childcare: Childcare
    assets: Assets
    registry: Registry
    bias_knobs: dict[str, BiasKnob] = Field(default_factory=dict)

    _source: str = PrivateAttr(default="<population spec>")

    @property
    def source(self) -> str:
        """The file this spec was read from (shown in error messages)."""
        return self._source

    @field_validator("provenance")
    @classmethod
    def _provenance(cls, value: dict[str, str]) -> dict[str, str]:
        for col, actor in value.items():
            if col not in ASSISTANCE_COLUMNS:
                raise _At(col, "is not a column of the case frame.")
            ok = actor in _PROVENANCE_ACTORS or (
                actor.startswith("registry:") and actor[9:].replace("_", "").isalnum() and actor[9:].islower()
            )
            if not ok:
                raise _At(col, f"must be applicant, caseworker, system or registry:<name>. Got {actor!r}.")
        missing = [c for c in ASSISTANCE_COLUMNS if c not in value]
        if missing:
            raise ValueError(f"must declare the actor of every case-frame column. Missing: {', '.join(missing)}.")
        return {c: value[c] for c in ASSISTANCE_COLUMNS}

    @model_validator(mode="after")
    def _columns(self) -> PopulationModel:
        for block, allowed in (("incomes", INCOME_COLUMNS), ("costs", COST_COLUMNS)):
            for name, src in getattr(self, block).items():
                if src.column not in allowed or src.column in ("rent", "childcare"):
                    expected = [c for c in allowed if c not in ("rent", "childcare")]
                    raise _At(f"{block}.{name}.column", f"must be one of {', '.join(expected)}. Got {src.column!r}.")
        return self

    def resolve_bias(self, bias: dict[str, Any] | None, *, source: str = "<population spec>") -> dict[str, BiasKnob]:
        """Return the spec's knobs with ``bias`` applied.

        Parameters
        ----------
        bias : dict, optional
            Knob name -> strength (a number in [0, 1]) or a mapping of knob
            keys to override (e.g. ``{"strength": 0.2, "groups": {...}}``).
        source : str
            Shown first in error messages.

        Raises
        ------
        SpecError
            For an unknown knob or an invalid override, naming it.
        """
        knobs = dict(self.bias_knobs)
        if bias is None:
            return knobs
        if not isinstance(bias, dict):
            raise SpecError(f"{source}: bias must be a mapping of knob names to strengths. Got {bias!r}.")
        for name, value in bias.items():
            if name not in knobs:
                known = ", ".join(sorted(knobs)) or "none"
                raise SpecError(f"{source}: bias.{name} is not a bias knob of this population. Known knobs: {known}.")
            override = {"strength": value} if not isinstance(value, dict) else dict(value)
            data = {**knobs[name].model_dump(exclude_none=True), **override}
            try:
                knobs[name] = BiasKnob.model_validate(data)
            except ValidationError as exc:
                raise SpecError(_format_errors(exc, source, prefix=("bias", name), root=BiasKnob)) from None
        return knobs



@dataclass(frozen=True)
class SyntheticPopulation:
    """A generated population with its ground truth.

    Attributes
    ----------
    cases : pandas.DataFrame
        The observed case frame (after bias knobs), columns of
        ``audit._columns.ASSISTANCE_COLUMNS`` in order.
    latent : pandas.DataFrame
        The true values: the same columns before any knob acted, plus the
        latent ``household_type``, ``region_type`` and ``reason`` (reason for
        needing assistance), row-aligned with ``cases``.
    bias : dict
        The active knobs: name -> kind, column(s), direction, groups,
        strength, description, effect, and the counts ``cases_in_groups``,
        ``eligible`` (in the groups with the source value) and ``changed``.
    """

    cases: pd.DataFrame
    latent: pd.DataFrame
    bias: dict[str, dict[str, Any]]


# --------------------------------------------------------------------------
# loading and messages


def load_population_spec(path: str | Path) -> PopulationModel:
    """Read a population spec from YAML and validate it.

    Parameters
    ----------
    path : str or Path
        The YAML file, e.g. ``datasets/sweden/population-2026.yaml``. A
        relative path under ``datasets/`` that does not exist falls back to
        the spec shipped with Insyn.

    Returns
    -------
    PopulationModel

    Raises
    ------
    SpecError
        When the file is missing or not YAML, a key is unknown, shares do not
        sum to 1 (tolerance 1e-6), a range is impossible or a probability is
        outside [0, 1]; the message names the file, the key path and the value.
    """
    shown = str(path)
    p = resolve_path(path, None)
    if not p.is_file():
        raise SpecError(f"{shown}: no such population spec file. Expected a YAML population spec.")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SpecError(f"{shown}: the spec must be UTF-8 text. Got byte 0x{exc.object[exc.start]:02x}.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SpecError(f"{shown}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}.") from None
    if not isinstance(data, dict):
        raise SpecError(f"{shown}: a population spec must be a mapping of keys to values. Got {type(data).__name__}.")
    try:
        model = PopulationModel.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_errors(exc, shown)) from None
    model._source = shown
    return model


def _format_errors(exc: ValidationError, source: str, *, prefix: tuple[str, ...] = (),
                   root: type[BaseModel] = PopulationModel) -> str:
    """One line per problem: ``<file>: <key path> <what was expected>. Got <value>.``"""
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        typ, ctx, given = err.get("type", ""), err.get("ctx") or {}, err.get("input")
        path = _key_path(prefix + loc)
        got = f"Got {given!r}."
        if typ == "extra_forbidden":
            known = _known_keys(root, loc[:-1])
            parent = _key_path(prefix + loc[:-1])
            hint = f" Known keys{' of ' + parent if parent else ''}: {', '.join(known)}." if known else ""
            msg = f"{path} is not a known key.{hint}"
        elif typ == "missing":
            msg = f"{path} is required."
        elif typ in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
            op, bound = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"),
                         "less_than_equal": ("<=", "le"), "less_than": ("<", "lt")}[typ]
            limit = ctx.get(bound)
            kind = "an integer" if isinstance(limit, int) else "a number"
            msg = f"{path} must be {kind} {op} {limit:g}. {got}"
        elif typ in ("int_type", "int_parsing", "int_from_float"):
            msg = f"{path} must be an integer. {got}"
        elif typ in ("float_type", "float_parsing"):
            msg = f"{path} must be a number. {got}"
        elif typ == "literal_error":
            msg = f"{path} must be one of {str(ctx.get('expected', '')).replace(chr(39), '')}. {got}"
        elif typ == "string_pattern_mismatch":
            what = "a 4-digit municipality code" if "\\d{4}$" in str(ctx.get("pattern")) else "a month YYYY-MM"
            msg = f"{path} must be {what}. {got}"
        elif typ in ("too_short", "too_long"):
            bound = ctx.get("min_length") if typ == "too_short" else ctx.get("max_length")
            count = len(given) if isinstance(given, (list, dict, str)) else given
            msg = f"{path} must have {'at least' if typ == 'too_short' else 'at most'} {bound} item(s). Got {count}."
        elif typ in ("dict_type", "model_type", "model_attributes_type"):
            msg = f"{path} must be a mapping of keys to values. {got}"
        elif typ == "list_type":
            msg = f"{path} must be a list. {got}"
        elif typ == "string_type":
            msg = f"{path} must be a string. {got}"
        elif typ == "value_error":
            inner = ctx.get("error")
            if isinstance(inner, _At):
                path = _key_path(prefix + loc + tuple(inner.key.replace("[", ".[").split(".")))
            text = str(inner) if inner is not None else str(err.get("msg", ""))
            msg = f"{path} {text}" if path else text[:1].upper() + text[1:]
        else:
            msg = f"{path}: {err.get('msg', 'invalid value')}. {got}"
        line = f"{source}: {msg}"
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "":
            continue
        if isinstance(part, int) or (isinstance(part, str) and part.startswith("[")):
            out += part if isinstance(part, str) else f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _known_keys(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys accepted at ``loc`` (walking models, dict values and list items)."""
    ann: Any = root
    for part in loc:
        origin = typing.get_origin(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            field = ann.model_fields.get(part)
            if field is None:
                return []
            ann = field.annotation
        elif origin in (dict, list):
            ann = typing.get_args(ann)[-1]
        ann = _unwrap(ann)
    return sorted(ann.model_fields) if isinstance(ann, type) and issubclass(ann, BaseModel) else []


def _unwrap(ann: Any) -> Any:
    """Strip Optional and Annotated from a type annotation."""
    while typing.get_origin(ann) in (typing.Union, Annotated) or type(ann).__name__ == "UnionType":
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        ann = args[0]
    return ann


def _describe_groups(groups: dict[str, Any]) -> str:
    if not groups:
        return "in every group"
    parts = []
    for key, value in groups.items():
        if isinstance(value, dict):
            parts.append(f"{key} {value['min']}-{value['max']}")
        else:
            parts.append(f"{key} in ({', '.join(map(str, value))})")
    return "with " + " and ".join(parts)


def _knob_truth(knob: BiasKnob) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": knob.kind, "strength": float(knob.strength), "groups": copy.deepcopy(knob.groups),
                           "description": knob.description, "effect": knob.effect()}
    if knob.kind == "flip":
        out.update(column=knob.column, direction=knob.direction)
    else:
        out.update(columns=list(knob.columns or []))
    return out


# --------------------------------------------------------------------------
# drawing


def _categorical(rng: np.random.Generator, cum: np.ndarray) -> np.ndarray:
    """Draw one category index per row; ``cum`` is (n, k) cumulative shares."""
    idx = (rng.random(cum.shape[0])[:, None] >= cum).sum(axis=1)
    return np.minimum(idx, cum.shape[1] - 1)


def _categorical_n(rng: np.random.Generator, shares: np.ndarray, n: int) -> np.ndarray:
    idx = np.searchsorted(np.cumsum(shares), rng.random(n), side="right")
    return np.minimum(idx, len(shares) - 1)


def _in_band(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo + np.floor(rng.random(len(lo)) * (hi - lo + 1)).astype(np.int64)


def _logistic(model: LogOdds, pred: dict[str, np.ndarray]) -> np.ndarray:
    z = np.full(len(pred["born_abroad"]), model.intercept)
    for name in ("born_abroad", "recent_arrival", "age_decades_over_40", "interpreter", "couple", "with_children"):
        coef = getattr(model, name)
        if coef:
            z = z + coef * pred[name]
    return 1.0 / (1.0 + np.exp(-z))


def _lognormal(rng: np.random.Generator, n: int, median: float, sigma: float, lo: float, hi: float) -> np.ndarray:
    return np.clip(np.round(median * np.exp(sigma * rng.standard_normal(n))), lo, hi)


def _child_strings(ages: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Encode rows of ages (-1 = none, sorted descending) as codes into ';'-joined strings."""
    key = np.zeros(len(ages), dtype=np.int64)
    for j in range(ages.shape[1]):
        key = key * 22 + (ages[:, j] + 1)
    uniq, inverse = np.unique(key, return_inverse=True)
    labels = []
    for k in uniq.tolist():
        digits = []
        for _ in range(ages.shape[1]):
            k, d = divmod(k, 22)
            digits.append(d - 1)
        labels.append(";".join(str(a) for a in reversed(digits) if a >= 0))
    return inverse, labels


def _draw_children(rng: np.random.Generator, ch: Children, age: np.ndarray,
                   with_children: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ages of children, (n, k) sorted oldest first with -1 for none, and how many eat lunch at preschool.

    Children are drawn for households with children only: a child is
    0 to min(17, applicant_age - min_parent_age_gap) years old, or with
    probability ``school_youth`` 18-20 (still at school) where the parent is
    old enough.
    """
    n, k = len(age), len(ch.count_shares)
    idx = np.flatnonzero(with_children)
    m = len(idx)
    count = _categorical_n(rng, np.array(ch.count_shares), m) + 1
    room = age[idx] - ch.min_parent_age_gap
    young = np.floor(rng.random((m, k)) * (np.clip(room, 0, 17)[:, None] + 1)).astype(np.int64)
    youth = (rng.random((m, k)) < ch.school_youth) & (room >= 18)[:, None]
    youth_age = 18 + np.floor(rng.random((m, k)) * (np.clip(room, 18, 20) - 17)[:, None]).astype(np.int64)
    present = np.arange(k)[None, :] < count[:, None]
    sub = -np.sort(-np.where(present, np.where(youth, youth_age, young), -1), axis=1)
    ages = np.full((n, k), -1, dtype=np.int64)
    ages[idx] = sub
    lunch = np.zeros(n, dtype=np.int64)
    lunch[idx] = ((sub >= 1) & (sub <= 6) & (rng.random((m, k)) < ch.preschool_lunch)).sum(axis=1)
    return ages, lunch


def _draw(model: PopulationModel, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw the true population as numpy arrays (categoricals as codes, latent extras prefixed ``_``)."""
    hh = _categorical_n(rng, model.household_types.shares.vector(), n)
    couple, with_children = _COUPLE[hh], _WITH_CHILDREN[hh]
    female = np.where(couple, rng.random(n) < model.household_types.couple_applicant_female, _FEMALE_SINGLE[hh])
    region = _categorical_n(rng, model.regions.shares.vector(), n)
    counts = np.array([len(getattr(model.regions.municipality_codes, r)) for r in REGION_TYPES])
    muni = (np.cumsum(counts) - counts)[region] + np.floor(rng.random(n) * counts[region]).astype(np.int64)

    bands = model.applicant_age.bands
    band = _categorical(rng, np.cumsum([getattr(model.applicant_age.shares, h) for h in HOUSEHOLD_TYPES], axis=1)[hh])
    age = _in_band(rng, np.array([b.min for b in bands])[band], np.array([b.max for b in bands])[band])
    birth = _categorical(rng, np.cumsum([getattr(model.birth_region.shares, h).vector()
                                         for h in HOUSEHOLD_TYPES], axis=1)[hh])
    abroad = birth > 0
    ys = model.years_in_sweden
    ycum = np.cumsum([[1.0] + [0.0] * (len(ys.bands) - 1)]  # row 0 (born in Sweden) is unused
                     + [getattr(ys.shares, r) for r in BIRTH_REGIONS[1:]], axis=1)
    yband = _categorical(rng, ycum[birth])
    years = _in_band(rng, np.array([b.min for b in ys.bands])[yband], np.array([b.max for b in ys.bands])[yband])
    redraw = np.floor(rng.random(n) * (age + 1)).astype(np.int64)
    years = np.where(abroad, np.where(years > age, redraw, years), age)
    reason_cum = np.cumsum([getattr(model.reasons.shares, k).vector()
                            for k in ("male_sweden", "male_abroad", "female_sweden", "female_abroad")], axis=1)
    reason = _categorical(rng, reason_cum[female.astype(np.int64) * 2 + abroad])

    ages, lunch = _draw_children(rng, model.children, age, with_children)
    present = ages >= 0
    n_children = present.sum(axis=1)
    other_adults = _categorical_n(rng, np.array(model.other_adults), n)
    adults = np.where(couple, 2, 1)
    persons = adults + other_adults + n_children

    # spell of assistance: new, short-term or long-term by reason for need
    sp = model.assistance_spell
    u = rng.random(n)
    new = u < sp.new_application
    long = ~new & (u < sp.new_application + sp.long_term_by_reason.vector()[reason])
    short_m = sp.short_months.min + np.floor(rng.random(n) * (sp.short_months.max - sp.short_months.min + 1))
    long_m = np.minimum(sp.long_months.min + np.floor(rng.exponential(1.0, n) * sp.long_mean_extra_months),
                        sp.long_months.max)
    months = np.where(new, 0, np.where(long, long_m, short_m)).astype(np.int64)
    changed = ~new & (rng.random(n) < sp.household_changed)

    pred = {"born_abroad": abroad.astype(float), "recent_arrival": (abroad & (years < 5)).astype(float),
            "age_decades_over_40": (age - 40) / 10.0, "couple": couple.astype(float),
            "with_children": with_children.astype(float), "interpreter": np.zeros(n)}
    interpreter = rng.random(n) < _logistic(model.interpreter, pred)
    pred["interpreter"] = interpreter.astype(float)
    paper = rng.random(n) < _logistic(model.paper_channel, pred)

    # the true labour-market circumstances
    lm = model.labour_market
    pension = age >= lm.pension_age
    able = ~pension & (rng.random(n) < lm.able_to_work.vector()[reason])
    reg_if_able = rng.random(n) < lm.registered_af_if_able.vector()[reason]
    registered = ~pension & np.where(able, reg_if_able, rng.random(n) < lm.registered_af_if_not_able)
    follows = rng.random(n) < lm.follows_plan.vector()[reason]

    youngest = np.where(present, ages, 99).min(axis=1)
    cond = {"all": np.ones(n, bool), "with_children": with_children, "single_parent": _SINGLE_PARENT[hh],
            "couple": couple, "young_without_children": (age < 29) & ~with_children, "pension_age": pension,
            "below_pension_age": ~pension, "arrived_within_3_years": abroad & (years < 3),
            "child_under_2": youngest < 2}
    money = _draw_money(rng, model, cond, reason=reason, couple=couple, persons=persons, region=region,
                        ages=ages, single_parent=_SINGLE_PARENT[hh], at_preschool=lunch)
    a = model.assets
    has_assets = rng.random(n) < a.probability
    assets = np.zeros(n)
    assets[has_assets] = _lognormal(rng, int(has_assets.sum()), a.median, a.sigma, 1.0, a.max)
    failed = rng.random(n) < model.registry.read_failure
    first, last = model.benefit_months.first, model.benefit_months.last
    m0 = int(first[:4]) * 12 + int(first[5:]) - 1
    span = int(last[:4]) * 12 + int(last[5:]) - 1 - m0 + 1
    month = np.floor(rng.random(n) * span).astype(np.int64)
    return dict(
        _household_type=hh, _region_type=region, _reason=reason, _month=month, _month0=np.array([m0]),
        _municipality=muni, _female=female, _birth=birth, _ages=ages, _new=new, _paper=paper,
        applicant_age=age, years_in_sweden=years, interpreter=interpreter, adults=adults,
        other_adults=other_adults, children_preschool_lunch=lunch, months_on_assistance=months,
        assets=assets, able_to_work=able, registered_af=registered, follows_plan=follows,
        household_changed=changed, registry_read_failed=failed, **money,
    )


def _draw_money(rng: np.random.Generator, model: PopulationModel, cond: dict[str, np.ndarray], *,
                reason: np.ndarray, couple: np.ndarray, persons: np.ndarray, region: np.ndarray,
                ages: np.ndarray, single_parent: np.ndarray, at_preschool: np.ndarray) -> dict[str, np.ndarray]:
    """Incomes and costs (SEK/month): sources, per-child benefits, rent and the preschool fee."""
    n = len(reason)
    money = {c: np.zeros(n) for c in (*INCOME_COLUMNS, *COST_COLUMNS)}
    _add_sources(rng, model.incomes, money, cond, reason, couple, persons)
    cb = model.child_benefits
    present = ages >= 0
    kids = present.sum(axis=1)
    n_under16 = (present & (ages < 16)).sum(axis=1)
    table = np.array([0.0, *cb.large_family_supplement])
    beyond = np.maximum(kids - (len(table) - 1), 0) * cb.supplement_beyond
    money["income_child_allowance"] += cb.child_allowance * n_under16 + table[np.minimum(kids, len(table) - 1)] + beyond
    money["income_student"] += cb.study_allowance * (kids - n_under16)
    takes_up = single_parent & (rng.random(n) < cb.maintenance_take_up)
    money["income_maintenance"] += np.where(takes_up, cb.maintenance_support * kids, 0.0)

    rc = model.rent
    has_rent = rng.random(n) >= rc.no_rent
    m2 = np.array(rc.flat_m2_by_persons)[np.minimum(persons, len(rc.flat_m2_by_persons)) - 1]
    sqm_price = model.regions.rent_per_m2.vector()[region]
    second_hand = has_rent & (rng.random(n) < rc.second_hand)
    spread = np.exp(rc.sigma * rng.standard_normal(n)) * np.where(second_hand, rc.second_hand_factor, 1.0)
    money["rent"] = np.where(has_rent, np.round(sqm_price * m2 * spread), 0.0)
    cond = {**cond, "has_rent": has_rent, "has_wages": money["income_wages"] > 0}
    _add_sources(rng, model.costs, money, cond, reason, couple, persons)
    earned = sum(money[c] for c in ("income_wages", "income_sickness", "income_unemployment",
                                    "income_parental", "income_pension"))
    for i, (rate, cap) in enumerate(zip(model.childcare.rates, model.childcare.caps, strict=True)):
        money["childcare"] += np.where(at_preschool > i, np.minimum(np.round(rate * earned), cap), 0.0)
    return money


def _add_sources(rng: np.random.Generator, sources: dict[str, Source], money: dict[str, np.ndarray],
                 cond: dict[str, np.ndarray], reason: np.ndarray, couple: np.ndarray, persons: np.ndarray) -> None:
    """Add each source's amounts to its column, in the order of the spec."""
    n = len(reason)
    for src in sources.values():
        p = np.full(n, src.probability) if src.by_reason is None else src.by_reason.vector()[reason]
        p = np.minimum(p + src.couple_extra * couple, 1.0)
        has = cond[src.eligible] & (rng.random(n) < p)
        amount = np.zeros(n)
        amount[has] = (_lognormal(rng, int(has.sum()), src.median, src.sigma, src.min, src.max)
                       + src.per_extra_person * (persons[has] - 1))
        money[src.column] = money[src.column] + amount


def _str_column(codes: np.ndarray, labels: list[str]) -> pd.api.extensions.ExtensionArray:
    return pd.array(pa.array(labels, type=pa.string()).take(pa.array(codes)), dtype="str")


def _frame(col: dict[str, np.ndarray], model: PopulationModel) -> pd.DataFrame:
    """Assemble the case frame (in ASSISTANCE_COLUMNS order) and the latent extras."""
    n = len(col["applicant_age"])
    width = max(7, len(str(n)))
    ids = pc.binary_join_element_wise(
        "c", pc.utf8_lpad(pc.cast(pa.array(np.arange(1, n + 1)), pa.string()), width, "0"), "")
    m0 = int(col["_month0"][0])
    span = int(col["_month"].max()) + 1 if n else 1
    months = [f"{(m0 + i) // 12:04d}-{(m0 + i) % 12 + 1:02d}" for i in range(span)]
    codes = [c for r in REGION_TYPES for c in getattr(model.regions.municipality_codes, r)]
    child_codes, child_labels = _child_strings(col["_ages"])
    data: dict[str, Any] = {
        "case_id": pd.array(ids, dtype="str"),
        "benefit_month": _str_column(col["_month"], months),
        "municipality_code": _str_column(col["_municipality"], codes),
        "application_type": _str_column(np.where(col["_new"], 0, 1), ["new", "renewal"]),
        "channel": _str_column(col["_paper"].astype(np.int64), ["digital", "paper"]),
        "sex": _str_column(col["_female"].astype(np.int64), ["male", "female"]),
        "birth_region": _str_column(col["_birth"], list(BIRTH_REGIONS)),
        "child_ages": _str_column(child_codes, child_labels),
    }
    out: dict[str, Any] = {}
    for name, kind in ASSISTANCE_COLUMNS.items():
        if name in data:
            out[name] = data[name]
        else:
            out[name] = np.asarray(col[name], dtype={"int": np.int64, "float": np.float64, "bool": bool}[kind])
    out["household_type"] = _str_column(col["_household_type"], list(HOUSEHOLD_TYPES))
    out["region_type"] = _str_column(col["_region_type"], list(REGION_TYPES))
    out["reason"] = _str_column(col["_reason"], list(REASONS))
    return pd.DataFrame(out, copy=False)


def _group_mask(frame: pd.DataFrame, groups: dict[str, Any]) -> np.ndarray:
    mask = np.ones(len(frame), dtype=bool)
    for key, value in groups.items():
        values = frame[key].to_numpy()
        if isinstance(value, dict):
            mask &= (values >= value["min"]) & (values <= value["max"])
        else:
            mask &= np.isin(values, np.array(value, dtype=object if not isinstance(value[0], bool) else bool))
    return mask


def _apply_knobs(latent: pd.DataFrame, knobs: dict[str, BiasKnob], seed: int) -> tuple[pd.DataFrame,
                                                                                    dict[str, dict[str, Any]]]:
    """Return the observed case frame and the ground truth of the active knobs."""
    cases = latent[list(ASSISTANCE_COLUMNS)].copy()
    truth: dict[str, dict[str, Any]] = {}
    n = len(latent)
    for name, knob in knobs.items():
        if knob.strength <= 0:
            continue
        rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
        target = _group_mask(latent, knob.groups)
        info = _knob_truth(knob)
        if knob.kind == "flip":
            source_value = knob.direction == "true_to_false"
            current = cases[knob.column].to_numpy()
            eligible = target & (current == source_value)
            change = eligible & (rng.random(n) < knob.strength)
            cases[knob.column] = np.where(change, not source_value, current)
            info.update(eligible=int(eligible.sum()), changed=int(change.sum()))
        else:
            eligible_total = changed_total = 0
            for column in knob.columns or []:
                current = cases[column].to_numpy()
                eligible = target & (current > 0)
                change = eligible & (rng.random(n) < knob.strength)
                cases[column] = np.where(change, 0.0, current)
                eligible_total += int(eligible.sum())
                changed_total += int(change.sum())
            info.update(eligible=eligible_total, changed=changed_total)
        info["cases_in_groups"] = int(target.sum())
        truth[name] = info
    return cases, truth


# --------------------------------------------------------------------------
# public entry points


def _as_model(spec: str | Path | PopulationModel) -> PopulationModel:
    if isinstance(spec, PopulationModel):
        return spec
    if isinstance(spec, (str, Path)):
        return load_population_spec(spec)
    raise SpecError(f"spec must be a path to a population spec or a PopulationModel. Got {type(spec).__name__}.")


def _check_size(n: Any, seed: Any, source: str) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise SpecError(f"{source}: n (the number of cases) must be an integer >= 1. Got {n!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SpecError(f"{source}: seed must be an integer >= 0. Got {seed!r}.")


def generate_latent(spec: str | Path | PopulationModel, *, n: int, seed: int,
                    bias: dict[str, float | dict[str, Any]] | None = None) -> SyntheticPopulation:
    """Generate a population and keep its true (pre-bias) values.

    Parameters
    ----------
    spec : str, Path or PopulationModel
        The population spec or its path.
    n : int
        Number of cases (monthly applications), >= 1.
    seed : int
        Seed of the random generator; the same spec, n, seed and bias give
        the same frames.
    bias : dict, optional
        Knob name -> strength in [0, 1], or a mapping of knob keys to
        override (``strength``, ``groups``, ...). Overrides the spec's
        strengths; knobs not named keep them.

    Returns
    -------
    SyntheticPopulation
        ``cases`` (observed), ``latent`` (true values plus household_type,
        region_type, reason) and ``bias`` (ground truth of the active knobs).

    Raises
    ------
    SpecError
        For an invalid spec, n or seed, or an unknown knob.
    """
    model = _as_model(spec)
    source = model.source
    _check_size(n, seed, source)
    knobs = model.resolve_bias(bias, source=source)
    latent = _frame(_draw(model, int(n), np.random.default_rng([int(seed), 0])), model)
    cases, truth = _apply_knobs(latent, knobs, int(seed))
    cases.attrs["insyn_bias"] = truth
    return SyntheticPopulation(cases=cases, latent=latent, bias=truth)


def generate(spec: str | Path | PopulationModel, *, n: int, seed: int,
             bias: dict[str, float | dict[str, Any]] | None = None) -> pd.DataFrame:
    """Generate a synthetic case frame.

    Parameters
    ----------
    spec : str, Path or PopulationModel
        The population spec or its path.
    n : int
        Number of cases, >= 1.
    seed : int
        Seed of the random generator.
    bias : dict, optional
        Knob strengths (see :func:`generate_latent`).

    Returns
    -------
    pandas.DataFrame
        Exactly the columns of ``audit._columns.ASSISTANCE_COLUMNS`` in that
        order and kind; ``attrs["insyn_bias"]`` holds the active knobs.

    Examples
    --------
    >>> frame = generate("datasets/sweden/population-2026.yaml", n=1000, seed=1)  # doctest: +SKIP
    """
    return generate_latent(spec, n=n, seed=seed, bias=bias).cases


def write_population(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a population to Parquet (``.parquet``) or CSV (``.csv``) by the file's suffix.

    Parameters
    ----------
    frame : pandas.DataFrame
        The case frame.
    path : str or Path
        The output file; its folder is created when missing.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    DataError
        When the suffix is neither ``.parquet`` nor ``.csv``, or the file
        cannot be written.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise DataError(f"{p}: the output file must end in .parquet or .csv. Got {p.suffix or 'no suffix'!r}.")
    plain = frame.copy(deep=False)
    plain.attrs = {}  # the same plain table in both formats; the ground truth stays with the caller
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".parquet":
            plain.to_parquet(p, index=False)
        else:
            plain.to_csv(p, index=False)
    except OSError as exc:
        reason = f"{type(exc).__name__}: {exc.strerror or exc}"
        raise DataError(f"{p}: cannot write the population file. Got {reason}.") from None
    return p
