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
``scale``
    Each positive amount of the listed income or cost columns is reported as
    ``factor`` times the true amount with probability ``strength``
    (over-reporting a cost, under-reporting an income).

Each knob has a ``stage`` of the data journey where it enters (the
applicant's declaration, a registry read, a caseworker's assessment);
:mod:`audit.attribution` reverts a stage's changes and measures what they
did to a disparity.

:func:`generate_latent` returns the observed case frame together with the
true (pre-bias) values, so the injected gap can be measured exactly;
:func:`generate` returns the case frame alone, with the ground truth of the
active knobs in ``frame.attrs["insyn_bias"]``. Knobs draw from their own
random streams: switching one on changes only the values it is meant to
change.

*Counterfactual twins* (:func:`make_twins`) are the same cases with one
attribute changed and the fields the generator ties to it
(:data:`TIED_FIELDS`) re-drawn from their conditional distributions, so that
a twin is still a case the generator could have drawn; :mod:`audit.counterfactual`
decides them with the engine under audit.

The package is split by noun: ``_model`` (the population spec's pydantic
models, loading and error messages), ``_draw`` (drawing, bias knobs,
writing) and ``_twins`` (counterfactual twins).
"""

from __future__ import annotations

from audit.synth._draw import SyntheticPopulation, generate, generate_latent, write_population
from audit.synth._model import (
    BIRTH_REGIONS,
    HOUSEHOLD_TYPES,
    REASONS,
    REGION_TYPES,
    ApplicantAge,
    Assets,
    BenefitMonths,
    BiasKnob,
    BirthRegion,
    ChildBenefits,
    Childcare,
    Children,
    HouseholdTypes,
    LabourMarket,
    LogOdds,
    PopulationModel,
    Range,
    Reasons,
    Regions,
    Registry,
    Rent,
    Source,
    Spell,
    YearsInSweden,
    load_population_spec,
)
from audit.synth._twins import DEFAULT_POPULATION, MAX_TWIN_VALUES, TIED_FIELDS, make_twins

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
    "DEFAULT_POPULATION",
    "HOUSEHOLD_TYPES",
    "HouseholdTypes",
    "LabourMarket",
    "LogOdds",
    "MAX_TWIN_VALUES",
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
    "TIED_FIELDS",
    "YearsInSweden",
    "generate",
    "generate_latent",
    "load_population_spec",
    "make_twins",
    "write_population",
]
