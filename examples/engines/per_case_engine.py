"""A per-case Python engine: a simplified eligibility screen, one case at a time.

Many engines that reach an audit were written the way a caseworker reads a
file: take one application, check it, decide it. This module is such an
engine, usable as ``engine: {kind: python, target:
"examples.engines.per_case_engine:decide_case"}`` in a spec (the python
adapter finds this file relative to the spec's folder) and in the tests and
benchmarks of :mod:`audit.engine`.

The screen is deliberately simple and is **not** the law (see
:mod:`audit.norms` for the reference calculation):

* a failed registry read or a first application is referred to a caseworker
  (``REGISTRY_READ_FAILED``, ``NEW_APPLICATION``);
* otherwise need = norm + rent + electricity + home insurance - all income,
  with the 2026 riksnorm totals 5 220 (one adult) or 8 510 (two adults) SEK,
  3 940 SEK per other adult and 3 820 SEK per child;
* need <= 0 is a ``deny`` (amount 0, ``NO_NEED_INCOME_SUFFICIENT``), a
  positive need a ``grant`` of the need rounded to whole SEK.

``delay_s`` makes each case take that long, to stand in for a slow engine
(a remote lookup, a legacy routine) in the worker-process benchmarks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from audit.engine import per_case

__all__ = ["ADULT_NORM", "CHILD_NORM", "OTHER_ADULT_NORM", "ScreeningEngine", "decide_case", "screen_need"]
__version__ = "1.0"

ADULT_NORM: dict[int, float] = {1: 5220.0, 2: 8510.0}
"""Riksnorm 2026 totals (personal plus common costs) for one and two adults, SEK/month."""
OTHER_ADULT_NORM = 3940.0
"""Personal costs of an adult who is not a partner, SEK/month (2026)."""
CHILD_NORM = 3820.0
"""A flat amount per child (the 2026 figure for ages 7-10), SEK/month."""

_INCOME = (
    "income_wages", "income_sickness", "income_unemployment", "income_parental", "income_pension",
    "income_housing_allowance", "income_child_allowance", "income_maintenance", "income_student", "income_other",
)
_COSTS = ("rent", "electricity", "home_insurance")


def _children(child_ages: Any) -> int:
    text = "" if child_ages is None or (isinstance(child_ages, float) and math.isnan(child_ages)) else str(child_ages)
    return len([part for part in text.split(";") if part.strip()])


def screen_need(case: Mapping[str, Any]) -> float:
    """Return norm + rent + electricity + home insurance - income for one case (SEK/month)."""
    norm = ADULT_NORM[int(case["adults"])] + OTHER_ADULT_NORM * int(case["other_adults"])
    norm += CHILD_NORM * _children(case["child_ages"])
    costs = sum(float(case[c]) for c in _COSTS)
    income = sum(float(case[c]) for c in _INCOME)
    return norm + costs - income


@per_case
def decide_case(case: Mapping[str, Any], *, delay_s: float = 0.0) -> dict[str, Any]:
    """Decide one case (see the module docstring for the rules).

    Parameters
    ----------
    case : mapping
        One row of the case frame.
    delay_s : float, default 0
        Seconds to wait first, standing in for a slow engine.

    Returns
    -------
    dict
        ``outcome``, ``amount`` and ``reasons``.
    """
    if delay_s:
        time.sleep(delay_s)
    if case["registry_read_failed"]:
        return {"outcome": "refer", "amount": math.nan, "reasons": "REGISTRY_READ_FAILED"}
    if case["application_type"] == "new":
        return {"outcome": "refer", "amount": math.nan, "reasons": "NEW_APPLICATION"}
    need = screen_need(case)
    if need <= 0:
        return {"outcome": "deny", "amount": 0.0, "reasons": "NO_NEED_INCOME_SUFFICIENT"}
    return {"outcome": "grant", "amount": float(math.floor(need + 0.5)), "reasons": ""}


class ScreeningEngine:
    """The same screen as a class with ``decide_case`` (the python adapter's class form).

    Parameters
    ----------
    delay_s : float, default 0
        Seconds per case, standing in for a slow engine.
    """

    name = "screening"
    version = __version__

    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    def decide_case(self, case: Mapping[str, Any]) -> dict[str, Any]:
        """Decide one case."""
        return decide_case(case, delay_s=self.delay_s)
