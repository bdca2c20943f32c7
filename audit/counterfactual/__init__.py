"""Counterfactual and paired tests of a black-box decision engine.

Group statistics show *that* outcomes differ, for instance that applicants
born outside the EU are routed to a caseworker more often than applicants
born in Sweden. They cannot show whether the engine itself treats
otherwise-equal applicants differently, or whether the groups simply differ
in their circumstances. A counterfactual test asks the engine directly: the
same application, with only the applicant's birth region (or sex, or
interpreter need) changed, is it decided the same way?

Twins
    For each attribute of the spec's ``counterfactual.attributes``, every
    case gets a *twin* in which that attribute is changed: to each other
    value for a categorical attribute, flipped for a boolean one, moved to
    the other half of its distribution for a numeric one (the rules are
    those of :func:`audit.synth.make_twins`). Twins are decided by the same
    engine, through :func:`audit.engine.run_engine`, so the decision
    contract applies: a twin the engine cannot decide is an error row,
    counted and reported, never dropped.
Consistency
    A twin must still be a case that could exist. The fields the generator
    ties to the attribute (:data:`audit.synth.TIED_FIELDS`: a different
    birth region comes with different years in Sweden, interpreter need and
    channel) are re-drawn from their conditional distributions given the new
    value, by abduction, while household, finances and labour-market facts
    stay. Twins therefore pass the intake suite ``checks/application.yaml``.
Direct and proxy flips
    A *flip* is a twin whose outcome differs from its original's. An engine
    that sees the attribute can flip *directly*; an engine that does not see
    it can only flip *through a proxy*, a tied field it does see
    (``interpreter``, ``channel``, ``years_in_sweden``). That is how a robot
    that never reads birth region still decides by it. For each attribute
    the result records whether the engine saw it, which tied fields changed
    and which of them the engine sees; when the engine sees both the
    attribute and changed tied fields, a second set of twins with only the
    attribute changed splits the flips into direct ones and those that need
    the tied fields.
Paired personas
    Journalists test welfare algorithms with personas: one household,
    described in full, submitted again and again with one attribute changed
    at a time. ``counterfactual.personas`` names a YAML list of such
    personas (see ``examples/personas.yaml`` and :func:`load_personas`);
    they are decided by the same engine and shown as a table.

Statistics
----------
Per attribute, for the groups of the attribute's *original* value and for
all cases (group ``all``), four metrics in the tidy metrics-table form of
:data:`audit.metrics.COLUMNS`:

``flip_rate``
    share of twin pairs whose outcome changed;
``flip_to_unfavourable`` / ``flip_to_favourable``
    share of pairs that went from a favourable outcome to another one, and
    back (both over all pairs, so that their difference is the change in
    the favourable rate that the attribute causes);
``mean_amount_change``
    mean of the twin's amount minus the original's, over pairs with an
    amount both times (SEK/month).

The unit is the *case*: a case with several twins (one per other birth
region) counts once, with the share of its twins that flipped. Rates get
the Wilson interval on the number of cases; because a share in [0, 1] has a
variance at most ``p (1 - p)``, this is valid (if anything conservative),
whereas counting each twin as an independent trial would overstate the
sample. Differences to the reference group (``reference_groups`` or the
largest group) get Newcombe's interval, ratios Katz's, and the pooled
two-proportion z-test (Fisher's exact test for small expected counts).
Amount changes get the t interval over cases and Welch's test: the changes
are bounded, per-case means of paired differences, and groups are reported
from ``min_group_size`` cases up, where the t interval is adequate and needs
no resampling of the engine's decisions. Every p-value of the section is
corrected together (``statistics.correction``), or, in a run, with every
other test of the run (``correct=False`` and
:func:`audit.metrics.correct_family`); the table is built by
:func:`audit.metrics.compare_groups` and :func:`audit.metrics.metric_table`
like every metrics table. Groups smaller than
``min_group_size`` are suppressed; a rate with no decided pair is NaN with a
reason, never 0.

The result also counts the reason and routing codes that each change adds
or removes, and keeps a few anonymised example pairs whose decision changed
(numbered; only the changed fields and the two decisions, never a case id).
Modules: ``_run`` (the section and its result), ``_pairs`` (deciding twins
and comparing pairs), ``_statistics`` (metric blocks and codes),
``_personas`` (paired personas).
"""

from __future__ import annotations

from audit.counterfactual._personas import DEFAULT_PERSONA, load_personas
from audit.counterfactual._run import CounterfactualResult, run_counterfactual
from audit.counterfactual._statistics import FLIP_METRICS

__all__ = [
    "CounterfactualResult",
    "DEFAULT_PERSONA",
    "FLIP_METRICS",
    "load_personas",
    "run_counterfactual",
]
