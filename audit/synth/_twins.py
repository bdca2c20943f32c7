"""Counterfactual twins: the same case with one attribute changed, consistently.

To ask whether an engine treats otherwise-equal applicants differently, an
audit decides each case twice: as it is, and as its *twin*, in which one
attribute (birth region, sex, interpreter need, channel, age, years in
Sweden) is changed and everything else stays. "Everything else" needs care:
in the population the generator draws, some fields depend on others. An
applicant born outside the EU has a years-in-Sweden history, needs an
interpreter more often and applies on paper more often; a twin born in
Sweden with an interpreter and two years in Sweden is not a case that
exists. The fields that the generator ties to an attribute (:data:`TIED_FIELDS`)
are therefore re-drawn from their conditional distributions given the new
value and the unchanged rest; household, finances and labour-market facts
stay (except that a twin at or above the pension age is neither able to work
nor registered at Arbetsförmedlingen, as the generator has it).

Re-drawing is done by *abduction*, the standard way to compute a
counterfactual in a structural model: the random numbers behind the
original case's tied fields are first inferred from what was observed (drawn
from their conditional distribution given the observed value), then the
tied fields are recomputed with the new attribute. A field drawn as
``u < p`` (interpreter need, a paper application) keeps ``u`` drawn
uniformly in ``[0, p)`` when the field is True and in ``[p, 1)`` when False;
years in Sweden keep their quantile within the band distribution and their
position within the band. Marginally every tied field of a twin still
follows the generator's conditional distribution, but a twin differs from
its original only where the change of attribute moves it: an applicant
whose interpreter need does not depend on the change keeps it, and a twin
whose attribute is set to its own value equals the original.

The rule that picks each twin's new value (:func:`make_twins`):

* boolean attribute: flipped, one twin per case;
* categorical attribute with at most :data:`MAX_TWIN_VALUES` values: one
  twin per *other* value observed in the frame;
* categorical attribute with more values (municipality codes): one twin per
  case, its value drawn from the frame's distribution of the other values;
* numeric attribute: the cases are split at the median ``m`` into ``<= m``
  and ``> m`` (or ``< m`` and ``>= m`` when nothing lies above the median);
  each twin takes a value drawn uniformly from the observed values of the
  other half that are admissible for the case (an applicant at least the
  oldest child's age plus the parent age gap; at most as many years in
  Sweden as years of age; applicants born in Sweden have lived there all
  their life and get no years-in-Sweden twin).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from audit._columns import ALLOWED_VALUES
from audit._schema import coded_strings
from audit.exceptions import DataError, SpecError
from audit.synth._draw import logistic_probability
from audit.synth._model import BIRTH_REGIONS, PopulationModel, load_population_spec

__all__ = ["DEFAULT_POPULATION", "MAX_TWIN_VALUES", "TIED_FIELDS", "make_twins"]

DEFAULT_POPULATION = "datasets/sweden/population-2026.yaml"
"""The population spec whose conditional distributions twins use when none is given."""

MAX_TWIN_VALUES = 8
"""Largest number of values for which a categorical attribute gets one twin per other value."""

TIED_FIELDS: dict[str, tuple[str, ...]] = {
    "birth_region": ("years_in_sweden", "interpreter", "channel"),
    "sex": (),
    "interpreter": ("channel",),
    "channel": (),
    "applicant_age": ("years_in_sweden", "interpreter", "channel", "able_to_work", "registered_af"),
    "years_in_sweden": ("interpreter", "channel"),
}
"""Case-frame fields the generator draws conditionally on each attribute.

``sex`` ties nothing observed: it drives the latent reason for needing
assistance, and through it finances, which a twin keeps. ``channel`` ties
nothing: it is drawn last. ``applicant_age`` ties ``able_to_work`` and
``registered_af`` only through the pension age, at and above which both are
False. Any other column has no tied fields: only the column itself changes.
"""

_PREDICTORS = ("applicant_age", "birth_region", "years_in_sweden", "interpreter", "adults", "child_ages")
_SWEDEN = BIRTH_REGIONS[0]
_TWIN_OF = "twin_of"
_TWIN_GROUP = "twin_group"


class _Plan(NamedTuple):
    """Which cases get a twin and with which value.

    ``new`` holds codes into ``values`` for a categorical or boolean
    attribute and the new numbers for a numeric one; ``group`` holds codes
    into ``groups``, the labels of the originals' groups.
    """

    rows: np.ndarray
    new: np.ndarray
    values: list[Any]
    group: np.ndarray
    groups: list[str]
    rule: str
    skipped: dict[str, int]


def make_twins(
    cases: pd.DataFrame,
    attribute: str,
    *,
    seed: int,
    spec: str | Path | PopulationModel | None = None,
    to: Any = None,
) -> pd.DataFrame:
    """Return counterfactual twins of cases with one attribute changed consistently.

    Parameters
    ----------
    cases : pandas.DataFrame
        Case frame with a unique ``case_id`` and the column ``attribute``.
    attribute : str
        The column to change (see the module docstring for the rule by kind).
    seed : int
        Seed (>= 0) of the random numbers behind new values and re-draws; each
        attribute draws from its own stream, so twins of one attribute do not
        depend on which others are made.
    spec : str, Path or PopulationModel, optional
        Population spec whose conditional distributions re-draw the tied
        fields (default :data:`DEFAULT_POPULATION`, shipped with Insyn).
    to : scalar or array-like, optional
        Instead of the default rule, give every case exactly one twin with
        this value (a scalar) or with its own value (one per case, in row
        order). A case whose value is set to its own value gets a twin equal
        to itself.

    Returns
    -------
    pandas.DataFrame
        One row per twin, with the columns of ``cases`` in their order and
        kinds, plus ``twin_of`` (the original ``case_id``) and
        ``twin_group`` (the original's group: its value as text, or its half
        ``"<= m"`` / ``"> m"`` for a numeric attribute). ``case_id`` is
        ``"<case_id>|<attribute>=<value>"`` (``"<case_id>|<attribute>"`` for
        numeric attributes), unique across twins. Rows are ordered by new
        value, then by input order. ``attrs["insyn_twins"]`` holds
        ``attribute``, ``kind``, ``rule`` (one sentence), ``values``,
        ``tied_fields`` (those re-drawn), ``note`` (why tied fields were not
        re-drawn, or ``""``) and ``skipped`` (reason -> number of cases that
        got no twin).

    Raises
    ------
    DataError
        When ``attribute`` or ``case_id`` is not a column, case ids are not
        unique, or a value given in ``to`` is not possible for a case.
    SpecError
        When ``seed`` is not an integer >= 0 or ``spec`` cannot be loaded.

    Examples
    --------
    >>> from audit.synth import generate, make_twins
    >>> cases = generate("datasets/sweden/population-2026.yaml", n=1000, seed=1)  # doctest: +SKIP
    >>> twins = make_twins(cases, "birth_region", seed=1)                          # doctest: +SKIP
    >>> len(twins) == 3 * len(cases)                                              # doctest: +SKIP
    True
    """
    ids = _check(cases, attribute, seed)
    rng = np.random.default_rng([int(seed), zlib.crc32(attribute.encode("utf-8"))])
    column = cases[attribute]
    kind = _kind(column)
    tied = tuple(c for c in TIED_FIELDS.get(attribute, ()) if c in cases.columns)
    note = _tied_unavailable(cases, attribute, tied)
    needs_model = (tied and not note) or attribute == "applicant_age"
    model = _as_model(spec) if needs_model else None
    gap = model.children.min_parent_age_gap if model is not None else 0
    plan = _plan(cases, attribute, kind, rng, gap) if to is None else _explicit(cases, attribute, kind, to, gap)
    orig = cases.take(plan.rows).reset_index(drop=True)
    twins = orig.copy()
    old_ids = ids.take(plan.rows).reset_index(drop=True)
    if kind == "numeric":
        twins[attribute] = _as_kind(plan.new, column)
        twins["case_id"] = old_ids + f"|{attribute}"
    else:
        twins[attribute] = _from_codes(plan.new, plan.values, column)
        suffixes = [f"|{attribute}={_label(v)}" for v in plan.values]
        twins["case_id"] = old_ids + pd.Series(coded_strings(plan.new, suffixes))
    if tied and not note and model is not None:
        for col, vals in _redraw(model, orig, twins, tied, rng).items():
            twins[col] = vals if isinstance(vals, pd.api.extensions.ExtensionArray) else _as_kind(vals, cases[col])
    twins[_TWIN_OF] = old_ids
    twins[_TWIN_GROUP] = coded_strings(plan.group, plan.groups)
    twins.attrs = {
        "insyn_twins": {
            "attribute": attribute,
            "kind": kind,
            "rule": plan.rule,
            "values": plan.groups if kind == "numeric" else [_label(v) for v in plan.values],
            "tied_fields": list(tied) if not note else [],
            "note": note,
            "skipped": plan.skipped,
        }
    }
    return twins


# --------------------------------------------------------------------------
# arguments, kinds and values


def _check(cases: Any, attribute: Any, seed: Any) -> pd.Series:
    """Check the arguments; return the case ids as a str Series indexed 0..n-1."""
    if not isinstance(cases, pd.DataFrame):
        raise DataError(f"make_twins: cases must be a pandas DataFrame. Got {type(cases).__name__}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SpecError(f"make_twins: seed must be an integer >= 0. Got {seed!r}.")
    if not isinstance(attribute, str) or attribute not in cases.columns:
        shown = ", ".join(map(str, cases.columns[:12])) + (" ..." if len(cases.columns) > 12 else "")
        raise DataError(f"make_twins: attribute {attribute!r} is not a column of the cases. Columns: {shown}.")
    if attribute in ("case_id", _TWIN_OF, _TWIN_GROUP):
        raise DataError(f"make_twins: attribute must be a case attribute, not {attribute!r}.")
    if "case_id" not in cases.columns:
        raise DataError("make_twins: the cases have no 'case_id' column. Expected a unique string id per case.")
    ids = cases["case_id"].astype("str").reset_index(drop=True)
    if cases["case_id"].isna().any() or not ids.is_unique:
        raise DataError("make_twins: column 'case_id' must hold a unique, non-missing id per case.")
    return ids


def _kind(column: pd.Series) -> str:
    """The twin rule that applies to a column: ``boolean``, ``numeric`` or ``categorical``."""
    if pd.api.types.is_bool_dtype(column.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(column.dtype):
        return "numeric"
    return "categorical"


def _label(value: Any) -> str:
    """Text of a value as used in group labels and twin ids (``True``, ``eu``, ``41``)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (np.bool_, bool)):
        return str(bool(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def _as_kind(values: Any, like: pd.Series) -> Any:
    """Numbers or truth values in the kind of the column ``like`` (bool, int64, float64 or its own dtype)."""
    arr = np.asarray(values)
    dtype = like.dtype
    if pd.api.types.is_bool_dtype(dtype) and isinstance(dtype, np.dtype):
        return arr.astype(bool)
    if pd.api.types.is_integer_dtype(dtype) and isinstance(dtype, np.dtype):
        return arr.astype(np.int64)
    if pd.api.types.is_float_dtype(dtype) and isinstance(dtype, np.dtype):
        return arr.astype(np.float64)
    return pd.array(arr, dtype=dtype)


def _from_codes(codes: np.ndarray, values: list[Any], like: pd.Series) -> Any:
    """The column whose row i is ``values[codes[i]]``, in the kind of ``like`` (str columns via Arrow)."""
    dtype = like.dtype
    if pd.api.types.is_string_dtype(dtype) and dtype != object and all(isinstance(v, str) for v in values):
        return coded_strings(codes, [str(v) for v in values])
    return _as_kind(np.asarray(values, dtype=object)[codes], like)


def _codes(column: pd.Series, values: list[Any]) -> np.ndarray:
    """Position of each row's value in ``values`` (-1 where missing), from one factorisation."""
    codes, uniques = pd.factorize(column.reset_index(drop=True))
    index = pd.Index(values, dtype=object)
    lookup = np.append(index.get_indexer(pd.Index(uniques, dtype=object)), -1)
    return lookup[codes].astype(np.int64)


def _ordered_values(column: pd.Series, attribute: str) -> list[Any]:
    """Values observed in the column, in the case frame's order when it has one."""
    observed = pd.unique(column.dropna())
    known = ALLOWED_VALUES.get(attribute)
    if known is not None:
        first = [v for v in known if v in set(observed)]
        rest = sorted((v for v in observed if v not in set(known)), key=str)
        return first + rest
    return sorted(observed.tolist(), key=lambda v: (str(type(v)), v))


# --------------------------------------------------------------------------
# which twins: the default rule


def _plan(cases: pd.DataFrame, attribute: str, kind: str, rng: np.random.Generator, gap: int) -> _Plan:
    """The twins of the default rule (see the module docstring)."""
    column = cases[attribute].reset_index(drop=True)
    missing = column.isna().to_numpy()
    skipped: dict[str, int] = {}
    if missing.any():
        skipped[f"the case has no {attribute} value"] = int(missing.sum())
    if kind == "numeric":
        return _numeric_plan(cases, attribute, rng, missing, skipped, gap)
    if kind == "boolean":
        rows = np.flatnonzero(~missing)
        own = column.to_numpy(dtype=bool, na_value=False)[rows].astype(np.int64)
        return _Plan(rows, 1 - own, [False, True], own, ["False", "True"],
                     f"{attribute} is flipped (True <-> False)", skipped)
    values = _ordered_values(column, attribute)
    labels = [_label(v) for v in values]
    code = _codes(column, values)
    if len(values) <= MAX_TWIN_VALUES:
        parts = [np.flatnonzero((code >= 0) & (code != k)) for k in range(len(values))]
        rows = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        new = np.concatenate([np.full(len(p), k, dtype=np.int64) for k, p in enumerate(parts)])
        rule = f"{attribute} is set to each other value ({', '.join(labels)}), one twin per value"
        return _Plan(rows, new, values, code[rows], labels, rule, skipped)
    rows = np.flatnonzero(code >= 0)
    own = code[rows]
    counts = np.bincount(own, minlength=len(values)).astype(float)
    before = np.cumsum(counts) - counts
    r = rng.random(len(rows)) * (len(rows) - counts[own])
    r = r + counts[own] * (r >= before[own])  # step over the case's own value
    pick = np.minimum(np.searchsorted(np.cumsum(counts), r, side="right"), len(values) - 1).astype(np.int64)
    rule = (f"{attribute} has {len(values)} values: one twin per case, its value drawn from the "
            "frame's distribution of the other values")
    return _Plan(rows, pick, values, own, labels, rule, skipped)


def _numeric_plan(
    cases: pd.DataFrame, attribute: str, rng: np.random.Generator, missing: np.ndarray, skipped: dict[str, int],
    gap: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, list[Any], dict[str, int]]:
    """The other-half rule for a numeric attribute (see the module docstring)."""
    x = cases[attribute].to_numpy(dtype=float, na_value=np.nan)
    eligible = ~missing
    lo_bound, hi_bound = _bounds(cases, attribute, gap)
    if attribute == "years_in_sweden" and "birth_region" in cases.columns:
        native = (cases["birth_region"] == _SWEDEN).to_numpy(dtype=bool, na_value=False) & eligible
        if native.any():
            skipped["born in Sweden: years in Sweden equal the age"] = int(native.sum())
        eligible &= ~native
    pool = x[eligible]
    if pool.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _Plan(empty, np.zeros(0), [], empty, [], f"{attribute}: no case can be changed", skipped)
    m = float(np.median(pool))
    upper_closed = bool((pool > m).any())  # split <= m | > m, or < m | >= m when nothing lies above m
    is_high = (x > m) if upper_closed else (x >= m)
    low_label, high_label = (
        (f"<= {_label(m)}", f"> {_label(m)}") if upper_closed else (f"< {_label(m)}", f">= {_label(m)}")
    )
    rows = np.flatnonzero(eligible)
    in_high = is_high[rows]
    donors = {True: np.sort(x[eligible & is_high]), False: np.sort(x[eligible & ~is_high])}
    new = np.full(len(rows), np.nan)
    ok = np.zeros(len(rows), dtype=bool)
    u = rng.random(len(rows))
    for target in (True, False):
        pick_from = donors[target]
        sel = np.flatnonzero(in_high != target)
        if pick_from.size == 0 or sel.size == 0:
            continue
        lo = np.searchsorted(pick_from, lo_bound[rows[sel]], side="left")
        hi = np.searchsorted(pick_from, hi_bound[rows[sel]], side="right")
        has = hi > lo
        idx = np.clip(lo + np.floor(u[sel] * (hi - lo)).astype(np.int64), 0, pick_from.size - 1)
        new[sel] = np.where(has, pick_from[idx], np.nan)
        ok[sel] = has
    if (~ok).any():
        skipped[f"no value of the other half of {attribute} is possible for the case"] = int((~ok).sum())
    rule = (f"{attribute} is split at its median {_label(m)} into {low_label} and {high_label}; each twin takes a "
            "value drawn uniformly from the observed values of the other half that are possible for the case")
    return _Plan(rows[ok], new[ok], [], in_high[ok].astype(np.int64), [low_label, high_label], rule, skipped)


def _bounds(cases: pd.DataFrame, attribute: str, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Per case, the smallest and largest value of ``attribute`` that keeps the case valid.

    An applicant is at least 18, at least ``gap`` years older than the oldest
    child and, when born abroad, at least as old as the years lived in Sweden
    (which a twin keeps); years in Sweden are at most the age.
    """
    n = len(cases)
    lo = np.full(n, -np.inf)
    hi = np.full(n, np.inf)
    if attribute == "applicant_age":
        lo[:] = 18
        if "child_ages" in cases.columns:
            lo = np.maximum(lo, _oldest_child(cases["child_ages"]) + gap)
        if "years_in_sweden" in cases.columns and "birth_region" in cases.columns:
            abroad = (cases["birth_region"] != _SWEDEN).to_numpy(dtype=bool, na_value=True)
            years = cases["years_in_sweden"].to_numpy(dtype=float, na_value=np.nan)
            lo = np.where(abroad & np.isfinite(years), np.maximum(lo, years), lo)
    elif attribute == "years_in_sweden":
        lo[:] = 0
        if "applicant_age" in cases.columns:
            hi = cases["applicant_age"].to_numpy(dtype=float, na_value=np.inf)
    return lo, hi


def _oldest_child(child_ages: pd.Series) -> np.ndarray:
    """Age of the oldest child per case (-inf where there are none)."""
    text = child_ages.astype("str").fillna("").reset_index(drop=True)
    parts = text.str.split(";").explode()
    ages = pd.to_numeric(parts.where(parts.str.strip() != ""), errors="coerce")
    oldest = ages.groupby(level=0).max().reindex(range(len(text)))
    return oldest.to_numpy(dtype=float, na_value=-np.inf)


def _explicit(cases: pd.DataFrame, attribute: str, kind: str, to: Any, gap: int) -> _Plan:
    """Twins with the values given in ``to``, checked to be possible for each case."""
    n = len(cases)
    column = cases[attribute].reset_index(drop=True)
    if column.isna().any():
        raise DataError(f"make_twins: {attribute} is missing for {int(column.isna().sum())} case(s); "
                        "to needs a value to change from.")
    if np.ndim(to) == 0:
        new = np.full(n, to, dtype=object)
    else:
        new = np.asarray(list(to), dtype=object)
        if len(new) != n:
            raise DataError(f"make_twins: to must hold one value per case ({n}). Got {len(new)}.")
    rows = np.arange(n)
    rule = f"{attribute} is set to the given value(s)"
    if kind == "boolean":
        bad = [v for v in new if not isinstance(v, (bool, np.bool_))]
        if bad:
            raise DataError(f"make_twins: {attribute} is boolean; to must hold True or False. Got {bad[0]!r}.")
        own = column.to_numpy(dtype=bool, na_value=False).astype(np.int64)
        return _Plan(rows, new.astype(bool).astype(np.int64), [False, True], own, ["False", "True"], rule, {})
    if kind == "categorical":
        known = ALLOWED_VALUES.get(attribute)
        bad = [v for v in new if (v not in known if known is not None else not isinstance(v, str))]
        if bad:
            expected = f"values of {attribute} ({', '.join(known)})" if known is not None else "strings"
            raise DataError(f"make_twins: to must hold {expected}. Got {bad[0]!r}.")
        values = _ordered_values(column, attribute)
        values += [v for v in pd.unique(new) if v not in set(values)]
        labels = [_label(v) for v in values]
        return _Plan(rows, _codes(pd.Series(new, dtype=object), values), values, _codes(column, values), labels,
                     rule, {})
    try:
        num = new.astype(float)
    except (TypeError, ValueError):
        raise DataError(f"make_twins: {attribute} is numeric; to must hold numbers. Got {new[0]!r}.") from None
    lo, hi = _bounds(cases, attribute, gap)
    if attribute == "years_in_sweden" and "birth_region" in cases.columns:
        native = (cases["birth_region"] == _SWEDEN).to_numpy(dtype=bool, na_value=False)
        age = cases["applicant_age"].to_numpy(dtype=float) if "applicant_age" in cases.columns else num
        lo, hi = np.where(native, age, lo), np.where(native, age, hi)
    bad = (num < lo) | (num > hi) | ~np.isfinite(num)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"make_twins: {attribute} = {_label(num[i])} is not possible for case "
            f"{cases['case_id'].iloc[i]!r}: expected a value between {_label(lo[i])} and {_label(hi[i])}."
        )
    x = column.to_numpy(dtype=float)
    m = float(np.median(x))
    high = x > m
    return _Plan(rows, num, [], high.astype(np.int64), [f"<= {_label(m)}", f"> {_label(m)}"], rule, {})


# --------------------------------------------------------------------------
# re-drawing the tied fields


def _as_model(spec: str | Path | PopulationModel | None) -> PopulationModel:
    """The population model: the default one, a loaded one, or one read from a path."""
    if spec is None:
        return load_population_spec(DEFAULT_POPULATION)
    if isinstance(spec, PopulationModel):
        return spec
    if isinstance(spec, (str, Path)):
        return load_population_spec(spec)
    raise SpecError(f"make_twins: spec must be a population spec path or a PopulationModel. Got {type(spec).__name__}.")


def _tied_unavailable(cases: pd.DataFrame, attribute: str, tied: Sequence[str]) -> str:
    """Why the tied fields cannot be re-drawn for this frame ("" when they can)."""
    if not tied:
        return ""
    needs = [c for c in _PREDICTORS if c not in cases.columns]
    if needs:
        return (f"tied fields ({', '.join(tied)}) were not re-drawn: the population model needs the column "
                f"{needs[0]!r}, which the cases lack")
    regions = set(pd.unique(cases["birth_region"].dropna()).tolist()) - set(BIRTH_REGIONS)
    if regions:
        return (f"tied fields ({', '.join(tied)}) were not re-drawn: birth_region holds "
                f"{sorted(map(str, regions))[0]!r}, which the population model does not know "
                f"(expected {', '.join(BIRTH_REGIONS)})")
    for col in ("applicant_age", "years_in_sweden", "adults"):
        if cases[col].isna().any():
            return f"tied fields ({', '.join(tied)}) were not re-drawn: {col} is missing for some cases"
    return ""


def _posterior_uniform(rng: np.random.Generator, observed: np.ndarray, p: np.ndarray) -> np.ndarray:
    """A uniform ``u`` consistent with ``observed == (u < p)``: in [0, p) when True, [p, 1) when False."""
    v = rng.random(len(p))
    return np.where(observed, v * p, p + v * (1.0 - p))


def _predictors(*, age: np.ndarray, region: np.ndarray, years: np.ndarray, interpreter: np.ndarray,
                couple: np.ndarray, with_children: np.ndarray) -> dict[str, np.ndarray]:
    """The predictors of the generator's logistic models (``region`` 0 is born in Sweden)."""
    abroad = region != 0
    return {
        "born_abroad": abroad.astype(float),
        "recent_arrival": (abroad & (years < 5)).astype(float),
        "age_decades_over_40": (age - 40) / 10.0,
        "interpreter": interpreter.astype(float),
        "couple": couple.astype(float),
        "with_children": with_children.astype(float),
    }


def _redraw(model: PopulationModel, orig: pd.DataFrame, twin: pd.DataFrame, tied: Sequence[str],
            rng: np.random.Generator) -> dict[str, Any]:
    """Re-draw the tied fields of ``twin`` (whose attribute is already changed) by abduction from ``orig``.

    Every random stream is drawn at full length in a fixed order, so the
    result depends only on the seed and the cases.
    """
    m = len(orig)
    regions = list(BIRTH_REGIONS)
    age0 = orig["applicant_age"].to_numpy(dtype=float)
    age1 = twin["applicant_age"].to_numpy(dtype=float)
    region0, region1 = _codes(orig["birth_region"], regions), _codes(twin["birth_region"], regions)
    years0 = orig["years_in_sweden"].to_numpy(dtype=float)
    years1 = twin["years_in_sweden"].to_numpy(dtype=float)
    interp0 = orig["interpreter"].to_numpy(dtype=bool)
    interp1 = twin["interpreter"].to_numpy(dtype=bool)
    household = {"couple": orig["adults"].to_numpy(dtype=float) == 2,
                 "with_children": (orig["child_ages"].fillna("") != "").to_numpy(dtype=bool)}
    out: dict[str, Any] = {}

    u_band, u_pos, u_cap = rng.random(m), rng.random(m), rng.random(m)
    if "years_in_sweden" in tied:
        years1 = _redraw_years(model, region0, region1, years0, age1, u_band, u_pos, u_cap)
        out["years_in_sweden"] = years1.astype(np.int64)
    pred0 = _predictors(age=age0, region=region0, years=years0, interpreter=interp0, **household)
    if "interpreter" in tied:
        pred1 = _predictors(age=age1, region=region1, years=years1, interpreter=interp1, **household)
        u = _posterior_uniform(rng, interp0, logistic_probability(model.interpreter, pred0))
        interp1 = u < logistic_probability(model.interpreter, pred1)
        out["interpreter"] = interp1
    else:
        rng.random(m)  # keep the stream aligned whatever is tied
    if "channel" in tied:
        pred1 = _predictors(age=age1, region=region1, years=years1, interpreter=interp1, **household)
        paper0 = (orig["channel"] == "paper").to_numpy(dtype=bool, na_value=False)
        u = _posterior_uniform(rng, paper0, logistic_probability(model.paper_channel, pred0))
        paper1 = u < logistic_probability(model.paper_channel, pred1)
        out["channel"] = _from_codes(paper1.astype(np.int64), ["digital", "paper"], orig["channel"])
    pension = age1 >= model.labour_market.pension_age
    for col in ("able_to_work", "registered_af"):
        if col in tied:
            out[col] = np.where(pension, False, orig[col].to_numpy(dtype=bool))
    return out


def _redraw_years(model: PopulationModel, c0: np.ndarray, c1: np.ndarray, years0: np.ndarray,
                  age1: np.ndarray, u_band: np.ndarray, u_pos: np.ndarray, u_cap: np.ndarray) -> np.ndarray:
    """Years in Sweden of twins: equal to the age when born in Sweden, else by band quantile and position.

    The original's band quantile and position within the band are kept when it
    was born abroad and its years lie in a band; otherwise they are fresh
    draws. A draw above the twin's age is redrawn uniformly in [0, age], as
    the generator does. ``c0`` and ``c1`` are birth-region codes (0: Sweden).
    """
    ys = model.years_in_sweden
    lo = np.array([b.min for b in ys.bands], dtype=float)
    hi = np.array([b.max for b in ys.bands], dtype=float)
    width = hi - lo + 1
    # row 0 (born in Sweden) has no band distribution; rows 1.. are cumulative band shares
    cum = np.vstack([np.ones(len(ys.bands))] + [np.cumsum(getattr(ys.shares, r)) for r in BIRTH_REGIONS[1:]])
    band0 = np.searchsorted(hi, years0, side="left")
    in_band = (c0 > 0) & (band0 < len(lo)) & (years0 >= lo[np.minimum(band0, len(lo) - 1)])
    b0 = np.minimum(band0, len(lo) - 1)
    prev = np.where(b0 > 0, cum[c0, np.maximum(b0 - 1, 0)], 0.0)
    cur = cum[c0, b0]
    q = np.where(in_band, prev + u_band * (cur - prev), u_band)
    pos = np.where(in_band, (years0 - lo[b0] + u_pos) / width[b0], u_pos)
    c1_abroad = np.maximum(c1, 1)
    band1 = np.minimum((q[:, None] >= cum[c1_abroad]).sum(axis=1), len(lo) - 1)
    years = lo[band1] + np.floor(pos * width[band1])
    years = np.where(years > age1, np.floor(u_cap * (age1 + 1)), years)
    return np.where(c1 == 0, age1, years)
