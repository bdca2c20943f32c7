"""Where along the data journey a disparity arises: true circumstances, replays and attribution.

The research behind Insyn says data is not objective: applicants declare,
registries are read, caseworkers assess, and each may err, differently for
different groups. When a population carries each case's *true
circumstances* beside what was recorded (a synthetic population knows them;
a file may give ``true_<column>`` columns), Insyn can

* compute the law's baseline from the true circumstances
  (``truth.basis: true_circumstances``), so bias in the data shows up as
  wrongful decisions;
* replay the engine with each coalition of stages' changes reverted (the
  true values of the fields a stage created restored), and decompose a
  disparity (e.g. the refer-rate ratio of ``outside_eu`` to ``sweden``) into
  the exact Shapley contributions of the stages and the contribution of
  the rules (the disparity that remains on true data), with bootstrap
  intervals, adding up to the total (``attribution:`` in the spec);
* tell for one case which stage changed its decision (``insyn trace``).

Modules: ``_circumstances`` (true columns, stages of fields), ``_shapley``
(exact Shapley values), ``_replay`` (replays of only the cases whose input
differs), ``_attribution`` (the decomposition and its intervals), ``_run``
(from a spec and a run), ``_trace`` (one case).
"""

from __future__ import annotations

from audit.attribution._attribution import RULES, Attribution, attribution_rows, disparities
from audit.attribution._circumstances import (
    TRUE_PREFIX,
    changed_cells,
    split_true_columns,
    stage_columns,
    stage_matches,
)
from audit.attribution._replay import Replays, coalition_name, replay
from audit.attribution._run import attribute, attribute_run, basis_cases, true_rows
from audit.attribution._shapley import MAX_PLAYERS, shapley_by_permutations, shapley_matrix, shapley_values
from audit.attribution._trace import ATTRIBUTION_FILE, trace_attribution

__all__ = [
    "ATTRIBUTION_FILE",
    "Attribution",
    "MAX_PLAYERS",
    "RULES",
    "Replays",
    "TRUE_PREFIX",
    "attribute",
    "attribute_run",
    "attribution_rows",
    "basis_cases",
    "changed_cells",
    "coalition_name",
    "disparities",
    "replay",
    "shapley_by_permutations",
    "shapley_matrix",
    "shapley_values",
    "split_true_columns",
    "stage_columns",
    "stage_matches",
    "trace_attribution",
    "true_rows",
]
