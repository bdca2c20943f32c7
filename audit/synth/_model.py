"""The population spec: every marginal, dependency, provenance note and bias knob.

A synthetic population is only as credible as the numbers behind it. The
population spec (``datasets/sweden/population-2026.yaml``) states each share,
rate and amount the generator uses (household types, birth regions, reasons
for needing assistance, years in Sweden, log-odds of interpreter need and of
paper applications, incomes and costs, rents per m² by region type), marks
each as verified, secondary or estimated, names the actor that supplies each
case-frame column along the data journey (applicant, caseworker, system or a
registry), and declares the bias knobs a study can switch on.

This private module holds the pydantic models of that spec, strict loading
(:func:`load_population_spec`) and the error messages, which name the file,
the key path and the value, e.g.::

    datasets/sweden/population-2026.yaml: household_types.shares must sum to 1. Got 0.98.
"""

from __future__ import annotations

import copy
import functools
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
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

from audit._yaml import load_yaml
from audit._columns import ALLOWED_VALUES, ASSISTANCE_COLUMNS, COST_COLUMNS, INCOME_COLUMNS
from audit.exceptions import SpecError
from audit._paths import resolve_path

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
    "YearsInSweden",
    "load_population_spec",
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
COUPLE = np.array([False, False, False, True, True, False])
WITH_CHILDREN = np.array([False, False, True, True, False, True])
SINGLE_PARENT = np.array([False, False, True, False, False, True])
FEMALE_SINGLE = np.array([False, True, True, False, False, False])
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
    ``strength``. ``kind: scale`` reports each positive amount of ``columns``
    (incomes or costs) as ``factor`` times the true amount with probability
    ``strength`` (over-reporting when factor > 1). ``groups`` maps a column to its allowed values (AND across
    columns); ``applicant_age`` and ``years_in_sweden`` take ``{min, max}``.
    ``stage`` is the step of the data journey where the bias enters (the
    applicant's declaration, a registry read, a caseworker's edit); without
    it, the stage is the creator of the knob's column in ``provenance``
    (:meth:`PopulationModel.knob_stage`).
    """

    description: str
    kind: Literal["flip", "omit_income", "scale"]
    column: str | None = None
    direction: Literal["false_to_true", "true_to_false"] | None = None
    columns: list[str] | None = None
    factor: float | None = Field(default=None, gt=0, le=10)
    groups: dict[str, Any] = Field(default_factory=dict)
    strength: Probability = 0.0
    stage: Literal["applicant", "registry", "caseworker", "system"] | None = None

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
            money = INCOME_COLUMNS if self.kind == "omit_income" else (*INCOME_COLUMNS, *COST_COLUMNS)
            what = "an income column" if self.kind == "omit_income" else "an income or cost column"
            if not self.columns:
                raise _At("columns", f"must list {what.removeprefix('an ')}s for kind {self.kind}. "
                          f"Got {self.columns!r}.")
            for i, col in enumerate(self.columns):
                if col not in money:
                    raise _At(f"columns[{i}]", f"must be {what} ({', '.join(money)}). Got {col!r}.")
            if self.column is not None or self.direction is not None:
                raise _At("column", f"and direction belong to kind flip; kind {self.kind} takes columns.")
            if (self.factor is None) == (self.kind == "scale"):
                raise _At("factor", "is required for kind scale (the recorded amount is the true one times factor)."
                          if self.kind == "scale" else "belongs to kind scale; kind omit_income takes none.")
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
        if self.kind == "scale":
            return (f"Each positive amount of {', '.join(self.columns or [])} of cases {who} is reported as "
                    f"{self.factor:g} times the true amount with probability {self.strength:g}.")
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

    def knob_stage(self, knob: BiasKnob) -> str:
        """The stage of the data journey where ``knob`` acts.

        Its ``stage`` when given, else the creator of its (first) column in
        ``provenance``: ``applicant``, ``caseworker``, ``system``, or
        ``registry`` for any ``registry:<name>``.
        """
        if knob.stage is not None:
            return knob.stage
        column = knob.column if knob.kind == "flip" else (knob.columns or [""])[0]
        actor = self.provenance.get(str(column), "system")
        return "registry" if actor.startswith("registry:") else actor

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
    stat = p.stat()
    return _load_population_file(shown, p, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _load_population_file(shown: str, p: Path, mtime_ns: int, size: int) -> PopulationModel:
    """Read and validate one population spec file; cached by path, modification time and size (the model is frozen).

    Every chunk of a chunked run, and every arm of a study, draws from the same file.
    """
    try:
        data = load_yaml(p.read_text(encoding="utf-8"), source=shown)  # duplicate keys, alias bombs: SpecError
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


def knob_truth(knob: BiasKnob, stage: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": knob.kind, "strength": float(knob.strength), "groups": copy.deepcopy(knob.groups),
                           "description": knob.description, "effect": knob.effect()}
    if stage is not None:
        out["stage"] = stage
    if knob.kind == "flip":
        out.update(column=knob.column, direction=knob.direction)
    else:
        out.update(columns=list(knob.columns or []), **({"factor": knob.factor} if knob.kind == "scale" else {}))
    return out
