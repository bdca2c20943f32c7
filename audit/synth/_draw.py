"""Drawing a synthetic population from its spec, applying bias knobs, and writing it.

The generator draws a latent household first (household type, region type,
applicant age, birth region, reason for needing assistance) and then every
observed column from distributions conditional on it, in one vectorised pass
per column: years in Sweden given birth region and age; children given the
household type and the parent's age; the spell of assistance and the
labour-market facts given the reason for need; interpreter need and paper
applications from logistic models of age, arrival and household; incomes,
per-child benefits, rent (region SEK/m² x flat size) and the preschool fee.
Bias knobs then act on a copy of the true frame, each from its own random
stream, so that switching one on changes only what it is meant to change.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audit._columns import ASSISTANCE_COLUMNS, COST_COLUMNS, INCOME_COLUMNS
from audit._schema import coded_strings
from audit.exceptions import DataError, SpecError
from audit.synth._model import (
    COUPLE,
    FEMALE_SINGLE,
    SINGLE_PARENT,
    WITH_CHILDREN,
    BIRTH_REGIONS,
    HOUSEHOLD_TYPES,
    REASONS,
    REGION_TYPES,
    BiasKnob,
    Children,
    LogOdds,
    PopulationModel,
    Source,
    knob_truth,
    load_population_spec,
)

__all__ = ["SyntheticPopulation", "generate", "generate_latent", "write_population"]


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


def logistic_probability(model: LogOdds, pred: dict[str, np.ndarray]) -> np.ndarray:
    z = np.full(len(pred["born_abroad"]), model.intercept)
    for name in ("born_abroad", "recent_arrival", "age_decades_over_40", "interpreter", "couple", "with_children"):
        coef = getattr(model, name)
        if coef:
            z = z + coef * pred[name]
    return 1.0 / (1.0 + np.exp(-z))


def _lognormal(rng: np.random.Generator, n: int, median: float, sigma: float, lo: float, hi: float) -> np.ndarray:
    return np.clip(np.round(median * np.exp(sigma * rng.standard_normal(n))), lo, hi)


def _child_strings(ages: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Encode rows of ages (-1 = none, sorted descending) as codes into ';'-joined strings.

    Each row's ages are read as the digits of one number (base 22), so that
    equal rows share a key; each distinct key is spelled out once (and once
    per process: the same households recur in every chunk of a run).
    """
    key = np.zeros(len(ages), dtype=np.int64)
    for j in range(ages.shape[1]):
        key = key * 22 + (ages[:, j] + 1)
    codes, uniq = pd.factorize(key)
    width = ages.shape[1]
    labels = [_child_label(k, width) for k in uniq.tolist()]
    return codes.astype(np.int64), labels


@functools.lru_cache(maxsize=1 << 16)
def _child_label(key: int, width: int) -> str:
    """The ';'-joined ages (oldest first) that :func:`_child_strings` packed into ``key``."""
    digits = []
    for _ in range(width):
        key, d = divmod(key, 22)
        digits.append(d - 1)
    return ";".join(str(a) for a in reversed(digits) if a >= 0)


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
    couple, with_children = COUPLE[hh], WITH_CHILDREN[hh]
    female = np.where(couple, rng.random(n) < model.household_types.couple_applicant_female, FEMALE_SINGLE[hh])
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
    interpreter = rng.random(n) < logistic_probability(model.interpreter, pred)
    pred["interpreter"] = interpreter.astype(float)
    paper = rng.random(n) < logistic_probability(model.paper_channel, pred)

    # the true labour-market circumstances
    lm = model.labour_market
    pension = age >= lm.pension_age
    able = ~pension & (rng.random(n) < lm.able_to_work.vector()[reason])
    reg_if_able = rng.random(n) < lm.registered_af_if_able.vector()[reason]
    registered = ~pension & np.where(able, reg_if_able, rng.random(n) < lm.registered_af_if_not_able)
    follows = rng.random(n) < lm.follows_plan.vector()[reason]

    youngest = np.where(present, ages, 99).min(axis=1)
    cond = {"all": np.ones(n, bool), "with_children": with_children, "single_parent": SINGLE_PARENT[hh],
            "couple": couple, "young_without_children": (age < 29) & ~with_children, "pension_age": pension,
            "below_pension_age": ~pension, "arrived_within_3_years": abroad & (years < 3),
            "child_under_2": youngest < 2}
    money = _draw_money(rng, model, cond, reason=reason, couple=couple, persons=persons, region=region,
                        ages=ages, single_parent=SINGLE_PARENT[hh], at_preschool=lunch)
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
        if src.by_reason is None and src.couple_extra == 0:  # one probability for everyone: no array of it
            p: float | np.ndarray = min(src.probability, 1.0)
        else:
            base = np.full(n, src.probability) if src.by_reason is None else src.by_reason.vector()[reason]
            p = np.minimum(base + src.couple_extra * couple, 1.0)
        has = cond[src.eligible] & (rng.random(n) < p)
        amount = (_lognormal(rng, int(has.sum()), src.median, src.sigma, src.min, src.max)
                  + src.per_extra_person * (persons[has] - 1))
        money[src.column][has] += amount  # the arrays are _draw_money's own


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
        "benefit_month": coded_strings(col["_month"], months),
        "municipality_code": coded_strings(col["_municipality"], codes),
        "application_type": coded_strings(np.where(col["_new"], 0, 1), ["new", "renewal"]),
        "channel": coded_strings(col["_paper"].astype(np.int64), ["digital", "paper"]),
        "sex": coded_strings(col["_female"].astype(np.int64), ["male", "female"]),
        "birth_region": coded_strings(col["_birth"], list(BIRTH_REGIONS)),
        "child_ages": coded_strings(child_codes, child_labels),
    }
    out: dict[str, Any] = {}
    for name, kind in ASSISTANCE_COLUMNS.items():
        if name in data:
            out[name] = data[name]
        else:
            out[name] = np.asarray(col[name], dtype={"int": np.int64, "float": np.float64, "bool": bool}[kind])
    out["household_type"] = coded_strings(col["_household_type"], list(HOUSEHOLD_TYPES))
    out["region_type"] = coded_strings(col["_region_type"], list(REGION_TYPES))
    out["reason"] = coded_strings(col["_reason"], list(REASONS))
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


def _apply_knobs(latent: pd.DataFrame, knobs: dict[str, BiasKnob], seed: int,
                 model: PopulationModel) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Return the observed case frame and the ground truth of the active knobs."""
    cases = latent[list(ASSISTANCE_COLUMNS)]  # copy-on-write: a knob's column replaced here leaves latent's
    truth: dict[str, dict[str, Any]] = {}
    n = len(latent)
    for name, knob in knobs.items():
        if knob.strength <= 0:
            continue
        rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
        target = _group_mask(latent, knob.groups)
        info = knob_truth(knob, model.knob_stage(knob))
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
                recorded = np.round(current * knob.factor) if knob.kind == "scale" else 0.0
                cases[column] = np.where(change, recorded, current)
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
    cases, truth = _apply_knobs(latent, knobs, int(seed), model)
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
