"""Paired personas: one household, decided again with one attribute changed at a time.

Journalists test welfare algorithms with invented applicants: a persona is
described in full and submitted again and again, each time with exactly one
attribute changed (born outside the EU instead of in Sweden, needs an
interpreter, applied on paper), and the answers are compared side by side.
This module reads such personas from YAML (:func:`load_personas`), fills in
what a persona leaves out from :data:`DEFAULT_PERSONA`, checks every value
against the case frame's contract and decides them with the engine under
audit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from audit._yaml import load_yaml
from audit._columns import ALLOWED_VALUES, ASSISTANCE_COLUMNS, COST_COLUMNS, INCOME_COLUMNS, STATUS_OK
from audit.counterfactual._pairs import RECORDED_NOTE, decide, text
from audit.engine import RecordedEngine
from audit.exceptions import SpecError
from audit._paths import resolve_path

__all__ = ["DEFAULT_PERSONA", "decide_personas", "load_personas"]

DEFAULT_PERSONA: dict[str, Any] = {
    "benefit_month": "2026-03",
    "municipality_code": "1287",
    "application_type": "renewal",
    "channel": "digital",
    "applicant_age": 35,
    "sex": "female",
    "birth_region": "sweden",
    "interpreter": False,
    "adults": 1,
    "other_adults": 0,
    "child_ages": "",
    "children_preschool_lunch": 0,
    **{c: 0.0 for c in INCOME_COLUMNS},
    "months_on_assistance": 3,
    **{c: 0.0 for c in COST_COLUMNS},
    "rent": 3800.0,
    "electricity": 350.0,
    "home_insurance": 150.0,
    "assets": 0.0,
    "able_to_work": True,
    "registered_af": True,
    "follows_plan": True,
    "household_changed": False,
    "registry_read_failed": False,
}
"""The default household a persona starts from: a single adult without children,
35, born in Sweden, re-applying digitally for March 2026 in Trelleborg (1287)
after three months of assistance, no income, rent 3,800, electricity 350 and
home insurance 150 SEK/month, no assets, able to work, registered at
Arbetsförmedlingen and following the plan. ``years_in_sweden`` defaults to
the persona's age (lived in Sweden all their life), in a variant of another
age too, unless the persona gives it."""

_BASE = "(base)"
_PERSONA_KEYS = ("case", "description", "name", "vary")
_RANGES: dict[str, tuple[float, float]] = {
    "applicant_age": (18, 110), "years_in_sweden": (0, 110), "adults": (1, 2), "other_adults": (0, 10),
    "children_preschool_lunch": (0, 20), "months_on_assistance": (0, 600),
}
_PATTERNS = {"benefit_month": r"20\d{2}-(0[1-9]|1[0-2])", "municipality_code": r"(0[1-9]|1\d|2[0-5])\d{2}",
             "child_ages": r"(\d{1,2}(;\d{1,2})*)?"}


def load_personas(path: str | Path, *, columns: Sequence[str] | None = None, shown: str | None = None) -> pd.DataFrame:
    """Read a YAML list of paired personas into a case frame.

    Each entry has ``name``, an optional ``description``, ``case`` (values
    that differ from :data:`DEFAULT_PERSONA`) and ``vary`` (attribute -> a
    value or a list of values; each value makes one variant that differs from
    the persona's own case in that attribute only).

    Parameters
    ----------
    path : str or Path
        The YAML file.
    columns : sequence of str, optional
        Columns of the audit's case frame; persona keys may name these besides
        the assistance case-frame columns.
    shown : str, optional
        How to name the file in messages (default: ``path``).

    Returns
    -------
    pandas.DataFrame
        One row per persona and variant (the persona's own case first):
        ``case_id`` (``persona-1``, ``persona-1-1``, ...), ``persona``,
        ``attribute`` (``"(base)"`` for the persona's own case), ``value``,
        then every case-frame column.

    Raises
    ------
    SpecError
        When the file is missing or not YAML, or an entry, key or value is
        wrong; the message names the file, the entry and the key.
    """
    shown = shown or str(path)
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{shown}: no such personas file. Expected a YAML list of personas with name, case and vary.")
    try:
        data = load_yaml(p.read_text(encoding="utf-8"), source=shown)  # duplicate keys, alias bombs: SpecError
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SpecError(f"{shown}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}.") from None
    if not isinstance(data, list) or not data:
        raise SpecError(f"{shown}: must be a non-empty list of personas. Got {_kind_of(data)}.")
    known = {**ASSISTANCE_COLUMNS, **{c: "any" for c in (columns or ()) if c not in ASSISTANCE_COLUMNS}}
    known.pop("case_id", None)
    records: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, entry in enumerate(data):
        at = f"{shown}: personas[{i}]"
        if not isinstance(entry, dict):
            raise SpecError(f"{at} must be a mapping with name, case and vary. Got {_kind_of(entry)}.")
        for key in entry:
            if key not in _PERSONA_KEYS:
                raise SpecError(f"{at}.{key} is not a known key. Known keys: {', '.join(_PERSONA_KEYS)}.")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise SpecError(f"{at}.name is required: a short name for the persona. Got {name!r}.")
        if name in names:
            raise SpecError(f"{at}.name must be unique. Got {name!r} twice.")
        names.add(name)
        case = entry.get("case", {}) or {}
        if not isinstance(case, dict):
            raise SpecError(f"{at}.case must be a mapping of case-frame columns to values. Got {_kind_of(case)}.")
        base = dict(DEFAULT_PERSONA)
        for key, value in case.items():
            base[key] = _persona_value(f"{at}.case.{key}", key, value, known)
        base.setdefault("years_in_sweden", base["applicant_age"])
        _consistent(f"{at}.case", base)
        vary = entry.get("vary", {}) or {}
        if not isinstance(vary, dict):
            raise SpecError(f"{at}.vary must be a mapping of attribute to values. Got {_kind_of(vary)}.")
        records.append({"case_id": f"persona-{i + 1}", "persona": name, "attribute": _BASE, "value": "", **base})
        j = 0
        for key, values in vary.items():
            for k, value in enumerate(values if isinstance(values, list) else [values]):
                where = f"{at}.vary.{key}" + (f"[{k}]" if isinstance(values, list) else "")
                variant = {**base, key: _persona_value(where, key, value, known)}
                if key == "applicant_age" and "years_in_sweden" not in case:
                    variant["years_in_sweden"] = variant["applicant_age"]  # lived in Sweden all their life
                _consistent(where, variant)
                j += 1
                records.append({"case_id": f"persona-{i + 1}-{j}", "persona": name, "attribute": key,
                                 "value": text(variant[key]), **variant})
    frame = pd.DataFrame.from_records(records)
    for col, kind in ASSISTANCE_COLUMNS.items():
        if col in frame.columns:
            frame[col] = frame[col].astype({"str": "str", "int": np.int64, "float": np.float64, "bool": bool}[kind])
    for col in ("persona", "attribute", "value"):
        frame[col] = frame[col].astype("str")
    return frame


def _persona_value(where: str, key: str, value: Any, known: Mapping[str, str]) -> Any:
    """Check one persona value against the column's kind, range, allowed values and format."""
    if key not in known:
        raise SpecError(f"{where} is not a column of the case frame.")
    kind = known[key]
    ok = {"int": isinstance(value, int) and not isinstance(value, bool),
          "float": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
          "bool": isinstance(value, bool), "str": isinstance(value, str),
          "any": isinstance(value, (str, int, float, bool))}[kind]
    expected = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
                "any": "a string, number or true/false"}[kind]
    if key in _RANGES:
        lo, hi = _RANGES[key]
        expected = f"an integer between {lo:g} and {hi:g}"
        ok = ok and lo <= value <= hi
    elif kind == "float":
        expected = "a number >= 0 (SEK/month)"
        ok = ok and value >= 0
    if ok and key in ALLOWED_VALUES:
        ok, expected = value in ALLOWED_VALUES[key], f"one of {', '.join(ALLOWED_VALUES[key])}"
    if ok and key in _PATTERNS:
        ok = re.fullmatch(_PATTERNS[key], value) is not None
        expected = {"benefit_month": "a month YYYY-MM", "municipality_code": "a 4-digit municipality code",
                    "child_ages": "children's ages 0-20 joined by ';' (\"\" for none)"}[key]
        if ok and key == "child_ages" and value:
            ok = all(0 <= int(a) <= 20 for a in value.split(";"))
    if not ok:
        raise SpecError(f"{where} must be {expected}. Got {value!r}.")
    return float(value) if kind == "float" else value


def _consistent(where: str, case: dict[str, Any]) -> None:
    """Check the rules that tie columns of one persona together (as the intake suite does)."""
    if case["years_in_sweden"] > case["applicant_age"]:
        raise SpecError(f"{where}: years_in_sweden ({case['years_in_sweden']}) must be at most applicant_age "
                        f"({case['applicant_age']}).")
    young = sum(1 for a in str(case["child_ages"]).split(";") if a != "" and int(a) <= 6)
    if case["children_preschool_lunch"] > young:
        raise SpecError(f"{where}: children_preschool_lunch ({case['children_preschool_lunch']}) must be at most "
                        f"the number of children aged 0-6 in child_ages ({young}).")


def decide_personas(path: str, base_dir: Path, source: str, cases: pd.DataFrame, engine: Any, cols: list[str],
                    labels: Sequence[str], *, batch_size: int | None = None,
                    workers: int = 1) -> tuple[pd.DataFrame, list[str]]:
    """Load the spec's personas, decide them with the engine and return the table and notes."""
    resolved = resolve_path(path, base_dir)
    if not resolved.is_file():
        raise SpecError(f"{source}: counterfactual.personas names {path!r}, which does not exist "
                        f"(looked for {resolved}). Expected a YAML list of personas.")
    frame = load_personas(resolved, columns=list(cases.columns), shown=path)
    notes = []
    absent = [c for c in cols if c not in frame.columns]
    if absent:
        notes.append(f"Personas have no value for {', '.join(absent)}, which the engine sees; they were given as "
                     "missing.")
    decisions = decide(engine, frame, cols, labels, batch_size=batch_size, workers=workers)
    amount = pd.to_numeric(decisions["amount"], errors="coerce")
    table = pd.DataFrame({
        "persona": frame["persona"], "attribute": frame["attribute"], "value": frame["value"],
        "outcome": decisions["outcome"].astype("str"), "amount": amount.astype(float),
        "reasons": decisions["reasons"].astype("str"), "status": decisions["status"].astype("str"),
    })
    own = table[table["attribute"] == _BASE].set_index("persona")
    own_outcome, own_amount = table["persona"].map(own["outcome"]), table["persona"].map(own["amount"])
    same_amount = (table["amount"] == own_amount) | (table["amount"].isna() & own_amount.isna())
    own_reasons = table["persona"].map(own["reasons"])
    differs = (table["outcome"] != own_outcome) | ~same_amount | (table["reasons"] != own_reasons)
    table["differs"] = differs.astype(bool)
    if (table["status"] != STATUS_OK).all():
        notes.append("No persona was decided: " + (RECORDED_NOTE if isinstance(engine, RecordedEngine) else
                     f"first reason: {decisions['error_reason'].iloc[0]}."))
    return table, notes


def _kind_of(value: Any) -> str:
    """How a YAML value is named in messages."""
    return "nothing" if value is None else f"a {type(value).__name__}"
