"""The law's baseline: riksnorm tables and the reference entitlement calculation.

Social assistance (*försörjningsstöd*) is a right under the Social Services
Act. For each benefit month a household's **need** is

    need = household norm + reasonable costs - counted income

* The **household norm** (*riksnorm*, set yearly by the government in
  socialtjänstförordningen 2 kap. 1 §) is the sum of every member's personal
  costs (by age band for children, single or cohabiting for adults) plus
  common household costs for the household size (1-7 persons, then a fixed
  increment per further person). Children who eat lunch at preschool five
  days a week have a lower amount. An adult who lives in the household but is
  not a partner (an adult child, a lodger) gets the single-adult personal
  costs plus an equal share ``common(n) / n`` of the common costs; the case
  norm is the sum of every member's part, which equals the sum of personal
  costs plus ``common(n)``.
* **Reasonable costs** outside the norm: rent, household electricity, home
  insurance, travel to work, union and a-kassa fees, medical care and
  medicine, childcare fees (the ``COST_COLUMNS`` of the case frame).
* **Counted income**: all net income of the household. *Jobbstimulans*
  (old SoL 4 kap. 1 b §): once a household has had assistance for six
  consecutive months, 25 % of wages are disregarded.

Assistance is denied when available **assets** exceed a buffer, when a person
who is able to work is not available to the labour market (not registered at
Arbetsförmedlingen or not following the agreed plan), and, from October 2026,
when the **activity requirement** (*aktivitetskrav*) is not met. Otherwise the
decision is ``grant`` (the full need), ``partial`` (a cost was reduced as not
reasonable, *delavslag*) or ``deny`` with ``NO_NEED_INCOME_SUFFICIENT``.

Rules change over time, so both the norm table and the rule set follow the
case's ``benefit_month``: the norm year is the month's calendar year (tables
in ``datasets/sweden/riksnorm-<year>.yaml``, see :data:`NORM_YEARS`) and the
rule set is the last :class:`RuleVersion` in :data:`RULE_VERSIONS` whose
``effective_from`` is not after the month:

=========  ====================================================================
from       what changes
=========  ====================================================================
2023-01    SoL (2001:453): norm + reasonable costs - income; jobbstimulans;
           labour-market requirement for those able to work.
2025-07    New Socialtjänstlag (2025:400); riksnorm in 12 kap. 7 §. The
           calculation is unchanged; only the legal references change.
2026-10    Aktivitetskrav (in force 2026-07-01, first applied to assistance for
           October 2026): a recipient with at least 3 consecutive months of
           assistance must take part in the assigned activity
           (``follows_plan``) whatever the work-capacity assessment, unless
           exempt. Modelled exemptions: sickness benefit or compensation
           (``income_sickness > 0``) and pension (``income_pension > 0``, read
           as "at pension age").
=========  ====================================================================

Not modelled (no column carries the facts): the disregard of children's
work income up to one prisbasbelopp, the 24-month limit of jobbstimulans
(``months_on_assistance`` counts consecutive months only, so the start of a
24-month window is unknown; set ``jobbstimulans_window_months`` to impose one),
the doctor's certificate required from July 2026, the activity-requirement
exemptions for full-time work and for people under 21 in school, day
proration of partial months, and the 2027 bidragstak (no 2027 table exists, so
2027 cases are error rows).

**The law's reasonableness limit.** The law accepts the actual cost when it is
reasonable; it sets no figure. So that the reference can still find an
unreasonable housing cost (``partial``, ``COST_NOT_REASONABLE``) without
borrowing a municipality's caps, the default limit is deliberately generous:
the rent of a flat that meets overcrowding norm 2 (*trångboddhetsnorm 2*: a
bedroom for the applicant and partner, one for every other member, plus a
living room) at the highest regional average rent in Sweden (SCB 2024,
Stor-Stockholm, 133 SEK/m² a month), with typical sizes 42/60/78/98 m² for
1-4 rooms and kitchen and 20 m² per further room. A single adult's limit is
133 x 60 = 7 980 SEK, a couple with two children 133 x 98 = 13 034 SEK; every
municipal cap we know of is lower. Other costs have no law-level limit unless
``cost_limits`` sets one. Everything is configurable in :class:`ReferenceOptions`.

**Assets.** The law says savings and sellable assets are used first; the
buffer an applicant may keep is set locally. The default buffer,
:data:`DEFAULT_ASSET_BUFFER` = 10 000 SEK, is about two months of the 2026
single-person norm; pass ``asset_buffer`` to change it.

**Preschool lunch.** ``children_preschool_lunch`` says how many children eat
lunch at preschool, not which; the reduced amount is applied to the oldest
children aged 0-6 first. A count above the number of children aged 0-6 is an
error, not a guess.

**Municipal guidelines** (:class:`MunicipalGuideline`, files in
``datasets/sweden/guidelines/``) are a separate layer: housing-cost caps by
household composition and fixed caps on other costs, stricter than the law.
:func:`compute_need` applies one when asked (the rule engine does); the
reference engine never does.

**Cases the rules cannot decide** (a required column missing, a missing,
negative or non-numeric amount, ``child_ages`` that do not parse, a
``benefit_month`` outside the years with tables) become rows with a non-empty
``error`` that names the column and the value. Nothing is guessed and no row
is dropped.
"""


from __future__ import annotations

from audit.norms._engine import ReferenceEngine, compute_need
from audit.norms._guideline import MunicipalGuideline
from audit.norms._rules import (
    DEFAULT_ASSET_BUFFER,
    REASON_CODES,
    RULE_VERSIONS,
    ReferenceOptions,
    RuleVersion,
    rule_version,
)
from audit.norms._tables import AGE_BANDS, NORM_YEARS, PROVENANCE_STATUSES, NormTable, load_norm_table

__all__ = [
    "AGE_BANDS",
    "DEFAULT_ASSET_BUFFER",
    "MunicipalGuideline",
    "NORM_YEARS",
    "NormTable",
    "PROVENANCE_STATUSES",
    "REASON_CODES",
    "RULE_VERSIONS",
    "ReferenceEngine",
    "ReferenceOptions",
    "RuleVersion",
    "compute_need",
    "load_norm_table",
    "rule_version",
]
