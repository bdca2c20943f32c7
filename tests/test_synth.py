"""Tests of audit.synth: marginals, coherence, determinism, bias knobs, spec errors, output.

Sampling checks use a 4-sigma bound from the binomial standard error,
``|k/n - p| <= 4 * sqrt(p (1 - p) / n)``, on one seeded population of
200 000 cases; with about 120 such comparisons the chance of a false alarm
is below 1e-2 and the seed makes every run identical.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.optimize import brentq
from scipy.stats import norm

from audit import synth
from audit._columns import ASSISTANCE_COLUMNS, COST_COLUMNS, INCOME_COLUMNS
from audit.exceptions import DataError, SpecError

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "datasets" / "sweden" / "population-2026.yaml"
N = 200_000
SEED = 20260101
DTYPES = {"str": "str", "int": "int64", "float": "float64", "bool": "bool"}


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(SPEC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def model() -> synth.PopulationModel:
    return synth.load_population_spec(SPEC)


@pytest.fixture(scope="module")
def pop(model: synth.PopulationModel) -> synth.SyntheticPopulation:
    return synth.generate_latent(model, n=N, seed=SEED)


def _close(hits: np.ndarray | pd.Series, p: float, *, what: str) -> None:
    """Assert that the share of True in ``hits`` is p within 4 binomial SEs."""
    k, n = int(np.sum(hits)), len(hits)
    assert n > 0, what
    se = math.sqrt(max(p * (1 - p), 1e-12) / n)
    assert abs(k / n - p) <= 4 * se + 1e-12, f"{what}: observed {k / n:.5f} (n={n}), expected {p:.5f} ± {4 * se:.5f}"


def _child_lists(frame: pd.DataFrame) -> list[list[int]]:
    return [[int(a) for a in s.split(";")] if s else [] for s in frame["child_ages"].tolist()]


# --------------------------------------------------------------------------
# the case frame contract


def test_columns_dtypes_and_ids(pop: synth.SyntheticPopulation) -> None:
    cases = pop.cases
    assert list(cases.columns) == list(ASSISTANCE_COLUMNS)
    assert {c: str(t) for c, t in cases.dtypes.items()} == {c: DTYPES[k] for c, k in ASSISTANCE_COLUMNS.items()}
    assert len(cases) == N
    assert cases["case_id"].is_unique
    assert cases["case_id"].str.fullmatch(r"c\d{7}").all()
    assert cases["case_id"].iloc[0] == "c0000001" and cases["case_id"].iloc[-1] == f"c{N:07d}"
    # nothing shaped like a personnummer (YYMMDD-NNNN, YYYYMMDDNNNN, ...) in any text column
    pnr = re.compile(
        r"(?<!\d)(?:19|20)?\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]|6[1-9]|[78]\d|9[01])[-+]?\d{4}(?!\d)"
    )
    for col in cases.columns[cases.dtypes == "str"]:
        assert not cases[col].str.contains(pnr).any(), col
    assert list(pop.latent.columns) == [*ASSISTANCE_COLUMNS, "household_type", "region_type", "reason"]


def test_household_coherence(pop: synth.SyntheticPopulation, model: synth.PopulationModel) -> None:
    c = pop.cases
    assert c["adults"].isin([1, 2]).all()
    assert (c["other_adults"] >= 0).all()
    assert c["applicant_age"].between(18, 99).all()
    assert (c["years_in_sweden"] >= 0).all() and (c["years_in_sweden"] <= c["applicant_age"]).all()
    born_here = c["birth_region"] == "sweden"
    assert (c.loc[born_here, "years_in_sweden"] == c.loc[born_here, "applicant_age"]).all()
    assert c["municipality_code"].str.fullmatch(r"\d{4}").all()
    for col in (*INCOME_COLUMNS, *COST_COLUMNS, "assets"):
        assert np.isfinite(c[col]).all() and (c[col] >= 0).all(), col
    new = c["application_type"] == "new"
    assert (c.loc[new, "months_on_assistance"] == 0).all()
    assert (c.loc[~new, "months_on_assistance"] >= 1).all()
    assert not c.loc[new, "household_changed"].any()
    kids = _child_lists(c)
    assert all(0 <= a <= 20 for ks in kids for a in ks)
    assert c["child_ages"].str.fullmatch(r"(\d{1,2}(;\d{1,2})*)?").all()
    preschool_age = np.array([sum(1 <= a <= 6 for a in ks) for ks in kids])
    assert (c["children_preschool_lunch"].to_numpy() <= preschool_age).all()
    gap = model.children.min_parent_age_gap
    oldest = np.array([max(ks) if ks else -1 for ks in kids])
    assert (oldest <= np.maximum(c["applicant_age"].to_numpy() - gap, 0)).all()
    assert c["benefit_month"].between("2026-01", "2026-12").all()
    pension = c["applicant_age"] >= model.labour_market.pension_age
    assert not (c.loc[pension, "able_to_work"] | c.loc[pension, "registered_af"]).any()


def test_child_allowance_matches_the_rule(pop: synth.SyntheticPopulation, model: synth.PopulationModel) -> None:
    # barnbidrag 1 250 per child under 16 + flerbarnstillägg by number of children,
    # recomputed from the child_ages strings
    cb = model.child_benefits
    table = [0.0, *cb.large_family_supplement]
    expected = []
    for ks in _child_lists(pop.cases):
        k = len(ks)
        supplement = table[min(k, len(table) - 1)] + max(k - (len(table) - 1), 0) * cb.supplement_beyond if k else 0.0
        expected.append(cb.child_allowance * sum(a < 16 for a in ks) + supplement)
    np.testing.assert_array_equal(pop.cases["income_child_allowance"].to_numpy(), np.array(expected))
    # e.g. ages "12;9;4": 3 x 1 250 + 730 = 4 480
    rows = pop.cases["child_ages"] == "12;9;4"
    assert rows.any() and (pop.cases.loc[rows, "income_child_allowance"] == 4480.0).all()


# --------------------------------------------------------------------------
# marginals within sampling error


def _household_type(c: pd.DataFrame) -> pd.Series:
    """Reconstruct the household type from observed columns only."""
    kids = c["child_ages"] != ""
    female = c["sex"] == "female"
    single = c["adults"] == 1
    return pd.Series(
        np.select(
            [single & ~kids & ~female, single & ~kids & female, single & kids & female,
             ~single & kids, ~single & ~kids, single & kids & ~female],
            list(synth.HOUSEHOLD_TYPES), default="?",
        ),
        index=c.index,
    )


def test_household_type_shares(pop: synth.SyntheticPopulation, raw: dict) -> None:
    ht = _household_type(pop.cases)
    shares = raw["household_types"]["shares"]
    assert shares["single_man"] == 0.421 and shares["single_mother"] == 0.155
    for name, p in shares.items():
        _close(ht == name, p, what=f"household type {name}")
    assert (ht == pop.latent["household_type"]).all()


def test_region_shares_and_rents(pop: synth.SyntheticPopulation, raw: dict) -> None:
    c = pop.cases
    code_to_region = {code: r for r, codes in raw["regions"]["municipality_codes"].items() for code in codes}
    region = c["municipality_code"].map(code_to_region)
    for r, p in raw["regions"]["shares"].items():
        _close(region == r, p, what=f"region {r}")
    # rent = SEK/m2 of the region x flat size of the household size x exp(sigma Z), and x factor for a
    # share q renting second hand: log(rent / (price * m2)) has the median m solving
    # (1 - q) Phi(m / sigma) + q Phi((m - log factor) / sigma) = 1/2; the sample median has SE 1 / (2 f(m) sqrt(k))
    persons = c["adults"] + c["other_adults"] + c["child_ages"].map(lambda s: len(s.split(";")) if s else 0)
    m2 = np.array(raw["rent"]["flat_m2_by_persons"])
    size = m2[np.minimum(persons, len(m2)) - 1]
    price = region.map(raw["regions"]["rent_per_m2"]).to_numpy(dtype=float)
    has = c["rent"] > 0
    _close(~has, raw["rent"]["no_rent"], what="no rent")
    sigma, q = raw["rent"]["sigma"], raw["rent"]["second_hand"]
    shift = math.log(raw["rent"]["second_hand_factor"])
    median = brentq(lambda m: (1 - q) * norm.cdf(m / sigma) + q * norm.cdf((m - shift) / sigma) - 0.5, -1, 1)
    density = ((1 - q) * norm.pdf(median / sigma) + q * norm.pdf((median - shift) / sigma)) / sigma
    log_ratio = np.log(c["rent"].where(has) / (price * size))
    cells = 0
    for (r, k), vals in log_ratio[has].groupby([region[has], np.minimum(persons[has], 6)]):
        if len(vals) >= 500:
            cells += 1
            se = 1 / (2 * density * math.sqrt(len(vals)))
            assert abs(vals.median() - median) <= 4 * se + 1 / (price.min() * 38), (r, k, vals.median(), median)
    assert cells >= 20
    assert c.loc[has & (region == "stockholm"), "rent"].median() > c.loc[has & (region == "small"), "rent"].median()


def test_birth_region_and_foreign_born_share(pop: synth.SyntheticPopulation, raw: dict) -> None:
    c, ht = pop.cases, pop.latent["household_type"]
    by_type = raw["birth_region"]["shares"]
    for h, shares in by_type.items():
        rows = ht == h
        for region, p in shares.items():
            _close(c.loc[rows, "birth_region"] == region, p, what=f"{region} | {h}")
    abroad = sum(raw["household_types"]["shares"][h] * (1 - by_type[h]["sweden"]) for h in by_type)
    assert abs(abroad - 0.60) < 0.005  # "about 60 % of adult recipients born abroad"
    _close(c["birth_region"] != "sweden", abroad, what="born abroad")


def test_applicant_age_bands(pop: synth.SyntheticPopulation, raw: dict) -> None:
    c, ht = pop.cases, pop.latent["household_type"]
    bands = raw["applicant_age"]["bands"]
    for h, shares in raw["applicant_age"]["shares"].items():
        ages = c.loc[ht == h, "applicant_age"]
        for band, p in zip(bands, shares, strict=True):
            _close(ages.between(band["min"], band["max"]), p, what=f"age {band} | {h}")


def test_reasons_for_need_by_sex_and_birth_region(pop: synth.SyntheticPopulation, raw: dict) -> None:
    c, reason = pop.cases, pop.latent["reason"]
    table = raw["reasons"]["shares"]
    # SCB 2021: unemployment 33/42/62/64 %, ill-health 29/18/13/10 %, social 22/29/11/11 %
    assert [table[g]["unemployment"] for g in ("female_sweden", "female_abroad", "male_sweden", "male_abroad")] == [
        0.33, 0.42, 0.62, 0.64]
    for group, shares in table.items():
        sex, born = group.split("_")
        rows = (c["sex"] == sex) & ((c["birth_region"] == "sweden") == (born == "sweden"))
        for r, p in shares.items():
            _close(reason[rows] == r, p, what=f"{r} | {group}")


def test_spell_and_long_term_share(pop: synth.SyntheticPopulation, raw: dict) -> None:
    c, reason = pop.cases, pop.latent["reason"]
    sp = raw["assistance_spell"]
    _close(c["application_type"] == "new", sp["new_application"], what="new applications")
    long_term = c["months_on_assistance"] >= sp["long_months"]["min"]
    for r, p in sp["long_term_by_reason"].items():
        _close(long_term[reason == r], p, what=f"long-term | {r}")
    assert abs(long_term.mean() - 0.48) < 0.015  # about 48 % long-term recipients
    _close(c.loc[c["application_type"] == "renewal", "household_changed"], sp["household_changed"],
           what="household changed")
    for month in range(1, 13):
        _close(c["benefit_month"] == f"2026-{month:02d}", 1 / 12, what=f"month {month}")


def test_interpreter_and_paper_follow_age_and_arrival(pop: synth.SyntheticPopulation, raw: dict) -> None:
    c = pop.cases
    abroad = (c["birth_region"] != "sweden").to_numpy(float)
    recent = abroad * (c["years_in_sweden"] < 5).to_numpy(float)
    decades = (c["applicant_age"].to_numpy() - 40) / 10
    interp, paper = raw["interpreter"], raw["paper_channel"]
    z_i = interp["intercept"] + interp["born_abroad"] * abroad + interp["recent_arrival"] * recent \
        + interp["age_decades_over_40"] * decades
    p_i = 1 / (1 + np.exp(-z_i))
    has_i = c["interpreter"].to_numpy(float)
    z_p = paper["intercept"] + paper["age_decades_over_40"] * decades + paper["interpreter"] * has_i \
        + paper["recent_arrival"] * recent
    p_p = 1 / (1 + np.exp(-z_p))
    # observed counts against the sum of the model probabilities (Poisson-binomial SE), in age groups
    for name, hit, prob in (("interpreter", c["interpreter"].to_numpy(), p_i),
                            ("paper", (c["channel"] == "paper").to_numpy(), p_p)):
        for lo, hi in ((18, 29), (30, 49), (50, 99)):
            rows = (c["applicant_age"] >= lo).to_numpy() & (c["applicant_age"] <= hi).to_numpy()
            expected, se = prob[rows].sum(), math.sqrt((prob[rows] * (1 - prob[rows])).sum())
            assert abs(hit[rows].sum() - expected) <= 4 * se, (name, lo, hi)
    young, old = c["applicant_age"] < 30, c["applicant_age"] >= 50
    assert (c.loc[old, "channel"] == "paper").mean() > 2 * (c.loc[young, "channel"] == "paper").mean()
    foreign = c["birth_region"] != "sweden"
    new_arrival = foreign & (c["years_in_sweden"] < 5)
    assert c.loc[new_arrival, "interpreter"].mean() > 2 * c.loc[foreign & ~new_arrival, "interpreter"].mean()


def test_incomes_follow_reason_for_need(pop: synth.SyntheticPopulation, raw: dict) -> None:
    c, reason = pop.cases, pop.latent["reason"]
    single = c["adults"] == 1
    working_age = c["applicant_age"] < raw["labour_market"]["pension_age"]
    sick = raw["incomes"]["sickness"]["by_reason"]
    wages = raw["incomes"]["wages"]
    for r in synth.REASONS:
        _close(c.loc[reason == r, "income_sickness"] > 0, sick[r], what=f"sickness income | {r}")
        rows = (reason == r) & single & working_age
        _close(c.loc[rows, "income_wages"] > 0, wages["by_reason"][r], what=f"wages | {r}, single")
        rows = (reason == r) & ~single & working_age
        _close(c.loc[rows, "income_wages"] > 0, min(wages["by_reason"][r] + wages["couple_extra"], 1),
               what=f"wages | {r}, couple")
    # ill-health -> sickness income far more often than unemployment
    assert (c.loc[reason == "ill_health", "income_sickness"] > 0).mean() > 10 * (
        c.loc[reason == "unemployment", "income_sickness"] > 0).mean()
    paid = c.loc[c["income_sickness"] > 0, "income_sickness"]
    assert abs(np.log(paid.median() / raw["incomes"]["sickness"]["median"])) < 0.05
    lm = raw["labour_market"]
    for r in synth.REASONS:
        _close(c.loc[(reason == r) & working_age, "able_to_work"], lm["able_to_work"][r], what=f"able | {r}")


# --------------------------------------------------------------------------
# determinism


def test_same_seed_same_frame_other_seed_other_frame(model: synth.PopulationModel) -> None:
    a = synth.generate(SPEC, n=5000, seed=7)
    b = synth.generate(model, n=5000, seed=7)
    pd.testing.assert_frame_equal(a, b)
    c = synth.generate(model, n=5000, seed=8)
    assert (a["case_id"] == c["case_id"]).all()
    assert (a["applicant_age"] != c["applicant_age"]).mean() > 0.9
    assert (a["rent"] != c["rent"]).mean() > 0.9
    assert a.attrs["insyn_bias"] == {}


def test_knobs_leave_the_latent_population_alone(model: synth.PopulationModel, pop: synth.SyntheticPopulation) -> None:
    on = synth.generate_latent(model, n=N, seed=SEED, bias={k: 0.5 for k in model.bias_knobs})
    pd.testing.assert_frame_equal(on.latent, pop.latent)
    pd.testing.assert_frame_equal(pop.cases, pop.latent[list(ASSISTANCE_COLUMNS)])
    touched = {"able_to_work", "follows_plan", "registry_read_failed", "income_wages", "income_other",
               "income_sickness", "income_unemployment", "income_parental", "income_housing_allowance",
               "rent", "electricity"}
    untouched = [col for col in ASSISTANCE_COLUMNS if col not in touched]
    pd.testing.assert_frame_equal(on.cases[untouched], pop.cases[untouched])


# --------------------------------------------------------------------------
# bias knobs inject exactly what the spec says


def _target(latent: pd.DataFrame, groups: dict) -> np.ndarray:
    mask = np.ones(len(latent), dtype=bool)
    for col, want in groups.items():
        if isinstance(want, dict):
            mask &= latent[col].between(want["min"], want["max"]).to_numpy()
        else:
            mask &= latent[col].isin(want).to_numpy()
    return mask


@pytest.mark.parametrize(
    "name",
    ["able_to_work_born_outside_eu", "follows_plan_young_men", "registry_failure_recent_arrivals"],
)
def test_flip_knob_changes_the_stated_share(model: synth.PopulationModel, raw: dict, name: str) -> None:
    strength = 0.3
    knob = raw["bias_knobs"][name]
    out = synth.generate_latent(model, n=N, seed=SEED, bias={name: strength})
    col, src = knob["column"], knob["direction"] == "true_to_false"
    true, seen = out.latent[col].to_numpy(), out.cases[col].to_numpy()
    target = _target(out.latent, knob["groups"])
    eligible = target & (true == src)
    _close(seen[eligible] != src, strength, what=f"{name}: flipped share")
    assert (seen[~eligible] == true[~eligible]).all()  # nobody else changes, in either direction
    # the group gap grows by strength x P(source value | group)
    gap = seen[target].mean() - true[target].mean()
    assert abs(abs(gap) - strength * (true[target] == src).mean()) <= 4 * math.sqrt(
        strength * (1 - strength) * eligible.sum()) / target.sum()
    truth = out.cases.attrs["insyn_bias"][name]
    assert truth["strength"] == strength and truth["column"] == col and truth["groups"] == knob["groups"]
    assert truth["cases_in_groups"] == int(target.sum()) and truth["eligible"] == int(eligible.sum())
    assert truth["changed"] == int((seen != true).sum())
    assert str(strength) in truth["effect"] and truth["description"] == knob["description"]
    assert list(out.bias) == [name]


def test_omit_income_knob_zeroes_the_stated_share(model: synth.PopulationModel, raw: dict) -> None:
    name, strength = "under_reported_income_paper", 0.4
    knob = raw["bias_knobs"][name]
    out = synth.generate_latent(model, n=N, seed=SEED, bias={name: strength})
    target = _target(out.latent, knob["groups"])
    assert knob["groups"] == {"channel": ["paper"]}
    changed = 0
    for col in knob["columns"]:
        true, seen = out.latent[col].to_numpy(), out.cases[col].to_numpy()
        positive = target & (true > 0)
        _close(seen[positive] == 0, strength, what=f"{col} omitted")
        assert ((seen == true) | (seen == 0)).all()
        assert (seen[~positive] == true[~positive]).all()
        changed += int((seen != true).sum())
    assert out.bias[name]["changed"] == changed and out.bias[name]["columns"] == knob["columns"]


def test_bias_override_with_groups_and_full_strength(model: synth.PopulationModel) -> None:
    out = synth.generate_latent(model, n=20_000, seed=3, bias={
        "follows_plan_young_men": {"strength": 1.0, "groups": {"sex": ["female"], "region_type": ["small"]}}})
    lat, cas = out.latent, out.cases
    target = ((lat["sex"] == "female") & (lat["region_type"] == "small")).to_numpy()
    assert target.sum() > 1000
    assert not cas.loc[target, "follows_plan"].any()  # strength 1: every True becomes False
    assert (cas.loc[~target, "follows_plan"] == lat.loc[~target, "follows_plan"]).all()
    assert out.bias["follows_plan_young_men"]["groups"] == {"sex": ["female"], "region_type": ["small"]}


def test_knob_ground_truth_in_attrs_is_json_safe(model: synth.PopulationModel) -> None:
    import json

    frame = synth.generate(model, n=2000, seed=1, bias={"able_to_work_born_outside_eu": 0.2})
    truth = json.loads(json.dumps(frame.attrs["insyn_bias"]))
    assert list(truth) == ["able_to_work_born_outside_eu"]
    assert truth["able_to_work_born_outside_eu"]["kind"] == "flip"
    assert truth["able_to_work_born_outside_eu"]["direction"] == "false_to_true"
    assert set(model.bias_knobs) == {"able_to_work_born_outside_eu", "follows_plan_young_men",
                                     "over_reported_costs_new_applicants", "registry_failure_recent_arrivals",
                                     "registry_lag_recent_arrivals", "under_reported_income_paper"}
    assert all(k.strength == 0 for k in model.bias_knobs.values())


@pytest.mark.parametrize(
    ("bias", "message"),
    [
        ({"nope": 0.1}, "bias.nope is not a bias knob of this population. Known knobs: able_to_work_born_outside_eu, "
         "follows_plan_young_men, over_reported_costs_new_applicants, registry_failure_recent_arrivals, "
         "registry_lag_recent_arrivals, under_reported_income_paper."),
        ({"follows_plan_young_men": 1.5}, "bias.follows_plan_young_men.strength must be a number <= 1. Got 1.5."),
        ({"follows_plan_young_men": -0.1}, "bias.follows_plan_young_men.strength must be a number >= 0. Got -0.1."),
        ({"follows_plan_young_men": "abc"}, "bias.follows_plan_young_men.strength must be a number. Got 'abc'."),
        ({"follows_plan_young_men": {"groups": {"sex": ["x"]}}},
         "bias.follows_plan_young_men.groups.sex must hold values of female, male. Got 'x'."),
    ],
)
def test_bad_bias_is_refused(model: synth.PopulationModel, bias: dict, message: str) -> None:
    with pytest.raises(SpecError) as err:
        synth.generate(model, n=10, seed=1, bias=bias)
    assert str(err.value) == f"{SPEC}: {message}"


@pytest.mark.parametrize(("n", "seed", "message"), [
    (0, 1, "n (the number of cases) must be an integer >= 1. Got 0."),
    (2.5, 1, "n (the number of cases) must be an integer >= 1. Got 2.5."),
    (10, -1, "seed must be an integer >= 0. Got -1."),
])
def test_bad_size_or_seed_is_refused(model: synth.PopulationModel, n: object, seed: object, message: str) -> None:
    with pytest.raises(SpecError) as err:
        synth.generate(model, n=n, seed=seed)  # type: ignore[arg-type]
    assert str(err.value) == f"{SPEC}: {message}"


# --------------------------------------------------------------------------
# the population spec is validated


def test_public_names_are_sorted_and_exist() -> None:
    assert synth.__all__ == sorted(synth.__all__)
    assert all(hasattr(synth, name) for name in synth.__all__)
    assert {"generate", "generate_latent", "load_population_spec", "write_population"} <= set(synth.__all__)


def test_provenance_declares_every_column(model: synth.PopulationModel) -> None:
    assert list(model.provenance) == list(ASSISTANCE_COLUMNS)
    assert all(re.fullmatch(r"applicant|caseworker|system|registry:[a-z_]+", a) for a in model.provenance.values())
    assert model.provenance["able_to_work"] == "caseworker"
    assert model.provenance["registered_af"] == "registry:arbetsformedlingen"
    assert model.provenance["income_wages"] == "applicant"


def _set(path: str, value: object):
    def mutate(d: dict) -> None:
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        for k in keys[:-1]:
            d = d[k]
        if value is _DELETE:
            del d[keys[-1]]
        else:
            d[keys[-1]] = value
    return mutate


_DELETE = object()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_set("colour", "red"), "colour is not a known key. Known keys: applicant_age, assets, assistance_spell, "
         "benefit_months, bias_knobs, birth_region, child_benefits, childcare, children, costs, description, "
         "household_types, incomes, interpreter, labour_market, name, other_adults, paper_channel, provenance, "
         "reasons, regions, registry, rent, years_in_sweden."),
        (_set("incomes.wages.colour", 1), "incomes.wages.colour is not a known key. Known keys of incomes.wages: "
         "by_reason, column, couple_extra, eligible, max, median, min, per_extra_person, probability, sigma."),
        (_set("household_types.shares.single_man", 0.391), "household_types.shares must sum to 1. Got 0.97."),
        (_set("household_types.shares.aliens", 0.0), "household_types.shares.aliens is not a known key. Known keys "
         "of household_types.shares: couple_with_children, couple_without_children, single_father, single_man, "
         "single_mother, single_woman."),
        (_set("applicant_age.shares.single_man", [0.5, 0.4, 0.0, 0.0, 0.0, 0.0]),
         "applicant_age.shares.single_man must sum to 1. Got 0.9."),
        (_set("reasons.shares.male_sweden.unemployment", 1.2),
         "reasons.shares.male_sweden.unemployment must be a number <= 1. Got 1.2."),
        (_set("registry.read_failure", -0.01), "registry.read_failure must be a number >= 0. Got -0.01."),
        (_set("applicant_age.bands.2.min", 45), "applicant_age.bands[2] must have min <= max. Got min 45, max 39."),
        (_set("applicant_age.bands.0.min", -3), "applicant_age.bands[0].min must be an integer >= 0. Got -3."),
        (_set("applicant_age.bands.0.min", 10),
         "applicant_age.bands[0].min must be an integer >= 18 (applicants are adults). Got 10."),
        (_set("years_in_sweden.bands.4", {"min": 30, "max": 20}),
         "years_in_sweden.bands[4] must have min <= max. Got min 30, max 20."),
        (_set("incomes.wages.max", 100), "incomes.wages must have min <= median <= max. Got min 0, median 6500, "
         "max 100."),
        (_set("incomes.wages.column", "income_foo"), "incomes.wages.column must be one of income_wages, "
         "income_sickness, income_unemployment, income_parental, income_pension, income_housing_allowance, "
         "income_child_allowance, income_maintenance, income_student, income_other. Got 'income_foo'."),
        (_set("provenance.rent", "robot"), "provenance.rent must be applicant, caseworker, system or "
         "registry:<name>. Got 'robot'."),
        (_set("provenance.rent", _DELETE), "provenance must declare the actor of every case-frame column. "
         "Missing: rent."),
        (_set("regions.municipality_codes.small.0", "123"),
         "regions.municipality_codes.small[0] must be a 4-digit municipality code. Got '123'."),
        (_set("benefit_months.first", "2027-01"),
         "benefit_months must have first <= last. Got first '2027-01', last '2026-12'."),
        (_set("bias_knobs.follows_plan_young_men.groups.applicant_age", {"min": 40, "max": 30}),
         "bias_knobs.follows_plan_young_men.groups.applicant_age must have min <= max. Got min 40, max 30."),
        (_set("bias_knobs.follows_plan_young_men.column", "sex"),
         "bias_knobs.follows_plan_young_men.column must be a boolean case-frame column (interpreter, able_to_work, "
         "registered_af, follows_plan, household_changed, registry_read_failed). Got 'sex'."),
    ],
)
def test_bad_population_spec_is_refused(raw: dict, tmp_path: Path, mutate, message: str) -> None:
    data = copy.deepcopy(raw)
    mutate(data)
    path = tmp_path / "population.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        synth.load_population_spec(path)
    assert str(err.value) == f"{path}: {message}"


def test_missing_or_broken_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError, match=re.escape(f"{missing}: no such population spec file.")):
        synth.load_population_spec(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(SpecError, match=re.escape(f"{broken}: not valid YAML at line 2")):
        synth.load_population_spec(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(SpecError, match=re.escape(f"{listed}: a population spec must be a mapping")):
        synth.load_population_spec(listed)


# --------------------------------------------------------------------------
# writing


def test_write_population_round_trip(tmp_path: Path) -> None:
    frame = synth.generate(SPEC, n=3000, seed=11, bias={"under_reported_income_paper": 0.5})
    out = synth.write_population(frame, tmp_path / "sub" / "pop.parquet")
    back = pd.read_parquet(out)
    pd.testing.assert_frame_equal(back, frame, check_like=False)
    out = synth.write_population(frame, tmp_path / "pop.csv")
    kinds = {"str": str, "int": "int64", "float": "float64", "bool": "bool"}
    back = pd.read_csv(out, dtype={c: kinds[k] for c, k in ASSISTANCE_COLUMNS.items()}, keep_default_na=False)
    back = back.astype({c: "str" for c, k in ASSISTANCE_COLUMNS.items() if k == "str"})
    pd.testing.assert_frame_equal(back, frame)
    assert frame.attrs["insyn_bias"]  # the caller's frame keeps its ground truth
    with pytest.raises(DataError) as err:
        synth.write_population(frame, tmp_path / "pop.xlsx")
    assert str(err.value) == f"{tmp_path / 'pop.xlsx'}: the output file must end in .parquet or .csv. Got '.xlsx'."


# --------------------------------------------------------------------------
# the law decides a realistic mix


def test_reference_engine_gives_a_mix_of_outcomes(model: synth.PopulationModel) -> None:
    from audit.norms import ReferenceEngine

    cases = synth.generate(model, n=20_000, seed=5)
    decisions = ReferenceEngine().decide(cases)
    outcome = decisions["outcome"].value_counts(normalize=True)
    reasons = decisions["reasons"].str.split(";")
    no_need = reasons.map(lambda r: "NO_NEED_INCOME_SUFFICIENT" in r).mean()
    labour = reasons.map(lambda r: "NOT_AVAILABLE_LABOUR_MARKET" in r).mean()
    assert 0.6 <= outcome["grant"] <= 0.9, outcome
    assert 0.02 <= outcome["partial"] <= 0.15, outcome
    assert 0.03 <= no_need <= 0.15 and 0.05 <= labour <= 0.2, (no_need, labour)


# --------------------------------------------------------------------------
# the shipped intake suite


@pytest.mark.parametrize("bias", [None, "all"])
def test_generated_population_passes_intake_suite(model: synth.PopulationModel, bias: str | None) -> None:
    from audit.checks import validate

    suite = ROOT / "checks" / "application.yaml"
    strengths = {k: 1.0 for k in model.bias_knobs} if bias == "all" else None
    for seed in (1, 2):
        frame = synth.generate(model, n=20_000, seed=seed, bias=strengths)
        report = validate(frame, [suite], step="intake")
        assert report.success, report


def test_bias_knobs_leave_the_latent_frame_untouched(model):
    """The knobs change the observed cases only: the latent (true) frame is the one drawn without any bias."""
    knobs = list(model.resolve_bias(None, source=model.source))
    plain = synth.generate_latent(model, n=3000, seed=SEED, bias={k: 0.0 for k in knobs})
    biased = synth.generate_latent(model, n=3000, seed=SEED, bias={k: 1.0 for k in knobs})
    pd.testing.assert_frame_equal(biased.latent, plain.latent)
    changed = sum(v["changed"] for v in biased.bias.values())
    assert changed > 0
    differ = sum(int((biased.cases[c] != biased.latent[c]).sum()) for c in biased.cases.columns)
    assert 0 < differ <= changed


def test_a_population_spec_is_read_once_and_again_when_the_file_changes(tmp_path: Path) -> None:
    """Chunks and study arms share one parsed spec; an edited file is read anew, a broken one refused each time."""
    path = tmp_path / "pop.yaml"
    data = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    first = synth.load_population_spec(path)
    assert synth.load_population_spec(path) is first  # cached: the model is frozen
    data["name"] = "edited population"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    edited = synth.load_population_spec(path)
    assert edited.name == "edited population" and first.name != edited.name
    path.write_text("name: [unclosed", encoding="utf-8")
    for _ in range(2):
        with pytest.raises(SpecError, match="not valid YAML"):
            synth.load_population_spec(path)
