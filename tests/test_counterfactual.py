"""Tests of audit.counterfactual and audit.synth.make_twins: twins, flips, proxies, personas, errors.

Expected values are computed independently of the module under test: by hand
(the arithmetic is in each docstring), by counting changed fields in the
twins, or with scipy on the same numbers.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from audit import counterfactual, synth
from audit._columns import ASSISTANCE_COLUMNS, INCOME_COLUMNS
from audit.checks import validate
from audit.counterfactual import DEFAULT_PERSONA, FLIP_METRICS, load_personas, run_counterfactual
from audit.engine import (
    HttpEngine,
    PythonEngine,
    RecordedEngine,
    RulesEngine,
    SklearnEngine,
    SubprocessEngine,
    run_engine,
)
from audit.exceptions import DataError, SpecError
from audit.metrics import COLUMNS
from audit.norms import ReferenceEngine
from audit.spec import CounterfactualSpec, StatisticsSpec, load_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_servers import InsynServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "datasets" / "sweden" / "population-2026.yaml"
SUITE = ROOT / "checks" / "application.yaml"
LABELS = ["grant", "partial", "deny", "refer"]
FAVOURABLE = ["grant", "partial"]
SENSITIVE = ["sex", "birth_region"]


# --------------------------------------------------------------------------
# engines (vectorised python engines; each documents what it reads)


def interpreter_engine(cases: pd.DataFrame) -> pd.DataFrame:
    """Refer every applicant who needs an interpreter; grant 6,000 SEK otherwise."""
    interp = cases["interpreter"].to_numpy(dtype=bool)
    return pd.DataFrame({"case_id": cases["case_id"].to_numpy(),
                         "outcome": np.where(interp, "refer", "grant"),
                         "amount": np.where(interp, np.nan, 6000.0),
                         "reasons": np.where(interp, "INTERPRETER_NEEDED", "")})


def blind_engine(cases: pd.DataFrame) -> pd.DataFrame:
    """Grant the need (5,220 + rent - income) when positive, else deny; reads only money columns."""
    need = 5220.0 + cases["rent"].to_numpy() - cases[list(INCOME_COLUMNS)].sum(axis=1).to_numpy()
    grant = need > 0
    return pd.DataFrame({"case_id": cases["case_id"].to_numpy(), "outcome": np.where(grant, "grant", "deny"),
                         "amount": np.where(grant, np.round(need), 0.0),
                         "reasons": np.where(grant, "", "NO_NEED_INCOME_SUFFICIENT")})


def sex_engine(cases: pd.DataFrame) -> pd.DataFrame:
    """Deny men (amount 0); grant women 5,000 + 100 x (age mod 7) SEK: a direct use of sex."""
    male = (cases["sex"] == "male").to_numpy()
    grant = 5000.0 + 100.0 * (cases["applicant_age"].to_numpy() % 7)
    return pd.DataFrame({"case_id": cases["case_id"].to_numpy(), "outcome": np.where(male, "deny", "grant"),
                         "amount": np.where(male, 0.0, grant), "reasons": np.where(male, "SEX", "")})


def old_paper_engine(cases: pd.DataFrame) -> pd.DataFrame:
    """Refer paper applications of applicants aged 60 or more; grant 4,000 SEK otherwise."""
    refer = ((cases["channel"] == "paper") & (cases["applicant_age"] >= 60)).to_numpy()
    return pd.DataFrame({"case_id": cases["case_id"].to_numpy(), "outcome": np.where(refer, "refer", "grant"),
                         "amount": np.where(refer, np.nan, 4000.0), "reasons": np.where(refer, "PAPER_60", "")})


# --------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    return synth.generate(SPEC, n=1200, seed=11)


def blind_features(frame: pd.DataFrame) -> list[str]:
    """Every column but the sensitive ones (what the runner gives an engine by default)."""
    return [c for c in frame.columns if c not in SENSITIVE]


def run(frame: pd.DataFrame, engine, attributes: list[str], *, features: list[str] | None = None, seed: int = 5,
        stats_spec: StatisticsSpec | None = None, reference_groups: dict[str, str] | None = None,
        **options) -> counterfactual.CounterfactualResult:
    """Decide the originals (as the runner does), then run the counterfactual section."""
    features = features if features is not None else blind_features(frame)
    base = run_engine(engine, frame[features], labels=LABELS, error_budget=1.0).decisions
    spec = CounterfactualSpec(attributes=attributes, **options)
    return run_counterfactual(
        frame, spec=spec, engine=engine, features=features, labels=LABELS, favourable=FAVOURABLE,
        sensitive_features=SENSITIVE, statistics=stats_spec or StatisticsSpec(), seed=seed, base_decisions=base,
        base_dir=ROOT / "examples", reference_groups=reference_groups,
    )


def row(result: counterfactual.CounterfactualResult, metric: str, attribute: str, group: str) -> pd.Series:
    m = result.metrics
    hit = m[(m["metric"] == metric) & (m["group"] == group) & m["attributes"].map(lambda a: a == [attribute])]
    assert len(hit) == 1, (metric, attribute, group)
    return hit.iloc[0]


def aligned_originals(frame: pd.DataFrame, twins: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("case_id").loc[twins["twin_of"].to_numpy()].reset_index()


def wilson(k: float, n: float, z: float = stats.norm.ppf(0.975)) -> tuple[float, float]:
    """Wilson score interval written out: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


# --------------------------------------------------------------------------
# twins


TWIN_ATTRIBUTES = ["birth_region", "sex", "interpreter", "channel", "applicant_age", "years_in_sweden"]


def test_twins_are_valid_cases_under_the_intake_suite(cases: pd.DataFrame) -> None:
    twins = pd.concat([synth.make_twins(cases, a, seed=3) for a in TWIN_ATTRIBUTES], ignore_index=True)
    assert twins["case_id"].is_unique and len(twins) > 4 * len(cases)
    report = validate(twins.drop(columns=["twin_of", "twin_group"]), [SUITE], step="intake")
    assert report.success, report


@pytest.mark.parametrize("attribute", [*TWIN_ATTRIBUTES, "municipality_code", "rent", "able_to_work"])
def test_only_the_attribute_and_its_tied_fields_change(cases: pd.DataFrame, attribute: str) -> None:
    twins = synth.make_twins(cases, attribute, seed=3)
    orig = aligned_originals(cases, twins)
    allowed = {attribute, *synth.TIED_FIELDS.get(attribute, ())}
    for column in cases.columns:
        if column == "case_id":
            continue
        same = twins[column].to_numpy() == orig[column].to_numpy()
        if column == attribute:
            assert not same.any(), f"{attribute}: every twin changes the attribute"
        elif column not in allowed:
            assert same.all(), f"{attribute}: {column} changed in {int((~same).sum())} twins"
        assert twins[column].dtype == cases[column].dtype, column
    assert twins.attrs["insyn_twins"]["tied_fields"] == [c for c in synth.TIED_FIELDS.get(attribute, ())]


def test_birth_region_twins_one_per_other_value_and_tied_fields_follow_the_generator(cases: pd.DataFrame) -> None:
    twins = synth.make_twins(cases, "birth_region", seed=3)
    orig = aligned_originals(cases, twins)
    assert len(twins) == 3 * len(cases)
    assert (twins.groupby("twin_of")["birth_region"].nunique() == 3).all()
    assert twins["twin_group"].tolist() == orig["birth_region"].tolist()
    native = twins["birth_region"] == "sweden"
    assert (twins.loc[native, "years_in_sweden"] == twins.loc[native, "applicant_age"]).all()
    assert (twins["years_in_sweden"] <= twins["applicant_age"]).all()
    # the tied fields do move: some twins change interpreter need, channel and years
    for field in ("years_in_sweden", "interpreter", "channel"):
        assert (twins[field].to_numpy() != orig[field].to_numpy()).any(), field
    # household and finances stay
    for field in ("adults", "child_ages", "rent", *INCOME_COLUMNS, "able_to_work"):
        assert (twins[field].to_numpy() == orig[field].to_numpy()).all(), field


def test_setting_each_case_to_its_own_value_returns_the_case(cases: pd.DataFrame) -> None:
    for attribute in ("birth_region", "applicant_age", "interpreter"):
        twins = synth.make_twins(cases, attribute, seed=9, to=cases[attribute].tolist())
        pd.testing.assert_frame_equal(twins.drop(columns=["case_id", "twin_of", "twin_group"]),
                                      cases.drop(columns=["case_id"]))


def test_interpreter_of_twins_born_outside_the_eu_matches_the_population_model_by_hand() -> None:
    """4,000 identical applicants of 40 born in Sweden, without interpreter, become born outside the EU.

    From datasets/sweden/population-2026.yaml: interpreter log-odds -6 + 4 (born abroad) + 1.5 (fewer than
    5 years in Sweden) + 0.4 (age - 40) / 10; years in Sweden of those born outside the EU in bands 0-2,
    3-4, 5-9, 10-19, 20-70 with shares 0.12, 0.16, 0.32, 0.26, 0.14; a draw above the age (41-70: 30 of the
    51 values of the last band) is redrawn uniformly in 0-40 (5 of 41 values below 5). So
    r = P(years < 5) = 0.28 + 0.14 x 30/51 x 5/41, and the new interpreter probability is
    q = r s(-0.5) + (1 - r) s(-2), s the logistic function. The original need was False with
    p0 = s(-6); keeping its uniform draw in [p0, 1), the twin needs an interpreter with probability
    (q - p0) / (1 - p0).
    """
    n = 4000
    frame = pd.DataFrame({
        "case_id": pd.array([f"h{i:05d}" for i in range(n)], dtype="str"),
        "applicant_age": np.full(n, 40, dtype=np.int64), "birth_region": pd.array(["sweden"] * n, dtype="str"),
        "years_in_sweden": np.full(n, 40, dtype=np.int64), "interpreter": np.zeros(n, dtype=bool),
        "adults": np.ones(n, dtype=np.int64), "child_ages": pd.array([""] * n, dtype="str"),
        "channel": pd.array(["digital"] * n, dtype="str"),
    })
    twins = synth.make_twins(frame, "birth_region", seed=2, to="outside_eu")
    s = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    r = 0.28 + 0.14 * 30 / 51 * 5 / 41
    q = r * s(-0.5) + (1 - r) * s(-2.0)
    expected = (q - s(-6.0)) / (1 - s(-6.0))
    observed = twins["interpreter"].mean()
    assert abs(observed - expected) < 4 * math.sqrt(expected * (1 - expected) / n), (observed, expected)
    recent = (twins["years_in_sweden"] < 5).mean()
    assert abs(recent - r) < 4 * math.sqrt(r * (1 - r) / n), (recent, r)
    # an applicant who already needs an interpreter keeps the need: the probability only rises
    kept = synth.make_twins(frame.assign(interpreter=True), "birth_region", seed=2, to="outside_eu")
    assert kept["interpreter"].all()


def test_numeric_twins_move_to_the_other_half_and_stay_possible(cases: pd.DataFrame) -> None:
    twins = synth.make_twins(cases, "applicant_age", seed=3)
    orig = aligned_originals(cases, twins)
    median = float(np.median(cases["applicant_age"]))
    low = orig["applicant_age"] <= median
    assert (twins.loc[low, "applicant_age"] > median).all() and (twins.loc[~low, "applicant_age"] <= median).all()
    assert set(twins["twin_group"]) == {f"<= {median:g}", f"> {median:g}"}
    assert set(twins["applicant_age"]) <= set(cases["applicant_age"])
    oldest = orig["child_ages"].str.split(";").map(lambda a: max((int(x) for x in a if x), default=-99))
    assert (twins["applicant_age"] >= oldest + 17).all()
    pension = twins["applicant_age"] >= 67
    assert not twins.loc[pension, "able_to_work"].any() and not twins.loc[pension, "registered_af"].any()
    skipped = twins.attrs["insyn_twins"]["skipped"]
    assert len(twins) + sum(skipped.values()) == len(cases)
    years = synth.make_twins(cases, "years_in_sweden", seed=3)
    native = int((cases["birth_region"] == "sweden").sum())
    assert years.attrs["insyn_twins"]["skipped"]["born in Sweden: years in Sweden equal the age"] == native


def test_make_twins_refuses_bad_input(cases: pd.DataFrame) -> None:
    with pytest.raises(DataError) as err:
        synth.make_twins(cases, "religion", seed=1)
    assert str(err.value).startswith("make_twins: attribute 'religion' is not a column of the cases. Columns: ")
    with pytest.raises(SpecError) as err:
        synth.make_twins(cases, "sex", seed=-1)
    assert str(err.value) == "make_twins: seed must be an integer >= 0. Got -1."
    with pytest.raises(DataError) as err:
        synth.make_twins(cases, "birth_region", seed=1, to="mars")
    assert str(err.value) == ("make_twins: to must hold values of birth_region (sweden, nordic, eu, outside_eu). "
                              "Got 'mars'.")
    with pytest.raises(DataError) as err:
        synth.make_twins(cases, "years_in_sweden", seed=1, to=200)
    first = cases["case_id"].iloc[0]
    assert str(err.value).startswith(f"make_twins: years_in_sweden = 200 is not possible for case {first!r}")


# --------------------------------------------------------------------------
# flips


def test_blind_engine_without_proxies_never_flips(cases: pd.DataFrame) -> None:
    result = run(cases, PythonEngine(blind_engine), ["birth_region", "sex", "interpreter"])
    flips = result.metrics[result.metrics["metric"] != "mean_amount_change"]
    assert (flips["value"] == 0).all() and not flips["suppressed"].any()
    changes = result.metrics[result.metrics["metric"] == "mean_amount_change"]
    assert (changes["value"] == 0).all()
    by_attr = {a["attribute"]: a for a in result.attributes}
    assert by_attr["sex"]["flips"] == 0 and by_attr["birth_region"]["flips_direct"] == 0
    assert by_attr["birth_region"]["decided_pairs"] == 3 * len(cases)
    assert row(result, "flip_rate", "birth_region", "all")["n"] == len(cases)
    assert result.codes.empty


def newcomer_engine(cases: pd.DataFrame) -> pd.DataFrame:
    """Grant 5,000 SEK, but cannot decide anyone with less than a year in Sweden (an error with a reason)."""
    out = interpreter_engine(cases).assign(outcome="grant", amount=5000.0, reasons="")
    out["error"] = np.where(cases["years_in_sweden"].to_numpy() < 1, "no rule for newly arrived", "")
    return out


def test_twins_the_engine_cannot_decide_are_counted_and_left_out(cases: pd.DataFrame) -> None:
    result = run(cases, PythonEngine(newcomer_engine), ["birth_region"])
    twins = synth.make_twins(cases, "birth_region", seed=5)
    orig = aligned_originals(cases, twins)
    twin_bad = (twins["years_in_sweden"] < 1).to_numpy()
    orig_bad = (orig["years_in_sweden"] < 1).to_numpy()
    info = result.attributes[0]
    assert info["twin_errors"] == int(twin_bad.sum()) > 0
    assert info["original_not_decided"] == int(orig_bad.sum())
    assert info["decided_pairs"] == int((~twin_bad & ~orig_bad).sum()) and info["flips"] == 0
    assert info["error_reasons"] == ["the engine reported: no rule for newly arrived"]
    assert f"{int(twin_bad.sum())} of {len(twins)} twins could not be decided" in info["sentence"]
    overall = row(result, "flip_rate", "birth_region", "all")
    decided_cases = pd.Series(~twin_bad & ~orig_bad).groupby(twins["twin_of"].to_numpy()).any()
    assert overall["n"] == int(decided_cases.sum()) and overall["value"] == 0


def test_proxy_flips_through_interpreter_equal_the_changed_interpreter_values(cases: pd.DataFrame) -> None:
    """The engine never sees birth region; its flips are exactly the twins whose interpreter need changed."""
    result = run(cases, PythonEngine(interpreter_engine), ["birth_region"], seed=5)
    twins = synth.make_twins(cases, "birth_region", seed=5)
    orig = aligned_originals(cases, twins)
    changed = pd.Series(twins["interpreter"].to_numpy() != orig["interpreter"].to_numpy())
    share = changed.groupby(twins["twin_of"].to_numpy()).mean()          # per case, share of twins that flip
    group = orig.groupby("case_id")["birth_region"].first().loc[share.index]
    assert changed.sum() > 0
    for label in ("sweden", "nordic", "eu", "outside_eu", "all"):
        part = share if label == "all" else share[group.to_numpy() == label]
        r = row(result, "flip_rate", "birth_region", label)
        assert r["n"] == len(part) and r["value"] == pytest.approx(part.mean(), abs=1e-12)
        lo, hi = wilson(part.sum(), len(part))
        assert (r["ci_low"], r["ci_high"]) == pytest.approx((lo, hi), abs=1e-12)
    # direction: granted originals that now need an interpreter are referred
    went_unfav = pd.Series(changed & ~orig["interpreter"].to_numpy()).groupby(twins["twin_of"].to_numpy()).mean()
    assert row(result, "flip_to_unfavourable", "birth_region", "all")["value"] == pytest.approx(went_unfav.mean())
    info = result.attributes[0]
    assert not info["engine_sees_attribute"] and "interpreter" in info["tied_fields_seen"]
    assert info["flips"] == int(changed.sum()) == info["flips_through_proxies"] and info["flips_direct"] == 0
    assert "flips through proxies" in info["sentence"]
    codes = result.codes[(result.codes["group"] == "all") & (result.codes["code"] == "INTERPRETER_NEEDED")].iloc[0]
    assert codes["added"] == int((changed & twins["interpreter"]).sum())
    assert codes["removed"] == int((changed & ~twins["interpreter"]).sum())
    # the reference group is the largest; sweden's flip rate is compared with it
    sweden = row(result, "flip_rate", "birth_region", "sweden")
    ref = row(result, "flip_rate", "birth_region", sweden["reference_group"])
    assert sweden["reference_group"] == group.value_counts().idxmax()
    z_p = stats.chi2_contingency([[sweden["count"], sweden["n"] - sweden["count"]],
                                  [ref["count"], ref["n"] - ref["count"]]], correction=False)[1]
    assert sweden["p_value"] == pytest.approx(z_p, rel=1e-9)
    assert sweden["difference"] == pytest.approx(sweden["value"] - ref["value"])


def test_direct_flips_for_an_engine_that_sees_sex(cases: pd.DataFrame) -> None:
    """Every sex twin flips; women's twins lose their whole grant, men's twins gain it."""
    features = [*blind_features(cases), "sex"]
    result = run(cases, PythonEngine(sex_engine), ["sex"], features=features, reference_groups={"sex": "male"})
    grant = 5000.0 + 100.0 * (cases["applicant_age"] % 7)
    women = cases["sex"] == "female"
    for group, sign, direction in (("female", -1, "flip_to_unfavourable"), ("male", 1, "flip_to_favourable")):
        members = women if group == "female" else ~women
        assert row(result, "flip_rate", "sex", group)["value"] == 1.0
        assert row(result, direction, "sex", group)["value"] == 1.0
        change = sign * grant[members].to_numpy()
        r = row(result, "mean_amount_change", "sex", group)
        assert r["n"] == members.sum() and r["value"] == pytest.approx(change.mean())
        lo, hi = stats.t.interval(0.95, len(change) - 1, loc=change.mean(), scale=stats.sem(change))
        assert (r["ci_low"], r["ci_high"]) == pytest.approx((lo, hi))
    female = row(result, "mean_amount_change", "sex", "female")
    welch = stats.ttest_ind(-grant[women], grant[~women], equal_var=False)
    assert female["reference_group"] == "male" and female["test"] == "Welch's t-test"
    assert female["p_value"] == pytest.approx(welch.pvalue)
    assert female["difference"] == pytest.approx(-grant[women].mean() - grant[~women].mean())
    info = result.attributes[0]
    assert info["engine_sees_attribute"] and info["flips"] == info["flips_direct"] == len(cases)
    assert info["sentence"].endswith("direct flips.")


def region_engine(cases: pd.DataFrame) -> pd.DataFrame:
    """Refer applicants born outside the EU and those who need an interpreter; grant 6,000 SEK otherwise."""
    refer = (cases["birth_region"] == "outside_eu").to_numpy() | cases["interpreter"].to_numpy(dtype=bool)
    return pd.DataFrame({"case_id": cases["case_id"].to_numpy(), "outcome": np.where(refer, "refer", "grant"),
                         "amount": np.where(refer, np.nan, 6000.0), "reasons": np.where(refer, "ROUTED", "")})


def test_flips_split_into_direct_ones_and_those_through_proxies(cases: pd.DataFrame) -> None:
    """With birth region B and interpreter need I, the engine refers when B is outside_eu or I.

    Original: refer(B0, I0); twin: refer(B1, I1); twin with the birth region alone: refer(B1, I0). A flip is
    direct when the birth region alone already changes the decision, through a proxy otherwise.
    """
    features = [*blind_features(cases), "birth_region"]
    result = run(cases, PythonEngine(region_engine), ["birth_region"], features=features)
    twins = synth.make_twins(cases, "birth_region", seed=5)
    orig = aligned_originals(cases, twins)
    b0, b1 = (orig["birth_region"] == "outside_eu").to_numpy(), (twins["birth_region"] == "outside_eu").to_numpy()
    i0, i1 = orig["interpreter"].to_numpy(), twins["interpreter"].to_numpy()
    flip = (b0 | i0) != (b1 | i1)
    direct = flip & ((b0 | i0) != (b1 | i0))
    info = result.attributes[0]
    assert info["engine_sees_attribute"] and info["flips"] == int(flip.sum())
    assert info["flips_direct"] == int(direct.sum()) > 0
    assert info["flips_through_proxies"] == int((flip & ~direct).sum()) > 0
    assert "direct flips" in info["sentence"] and "flips through proxies" in info["sentence"]


def test_values_by_hand_on_a_small_frame() -> None:
    """20 applicants; the engine refers paper applications of those aged 60 or more.

    10 apply digitally (4 of them 60+), 10 on paper (3 of them 60+). Changing the channel flips exactly the
    60+ applicants: digital 4/10 (all grant -> refer, unfavourable), paper 3/10 (refer -> grant,
    favourable), all 7/20. Wilson 95 % (z = 1.959964, z² = 3.841459): 4/10 -> centre (0.4 + 0.192073) /
    1.384146 = 0.427753, half 1.416010 x sqrt(0.024 + 0.009604) = 0.259573, so [0.168180, 0.687326];
    3/10 -> centre 0.355507, half 1.416010 x sqrt(0.021 + 0.009604) = 0.247715, so [0.107791, 0.603222];
    7/20 -> centre 0.374169, half 1.644164 x sqrt(0.011375 + 0.002401) = 0.192977, so [0.181192, 0.567146].
    Amounts change for no pair (a referred case has none), so the mean change is 0 over the 6 + 7 unflipped
    cases. Expected counts are small, so paper is compared with digital (the largest group, first on a tie)
    by Fisher's exact test on [[3, 7], [4, 6]]: p = 1.
    """
    ages = [25, 30, 35, 40, 45, 50, 60, 65, 70, 75] * 2
    channel = ["digital"] * 10 + ["paper"] * 10
    ages[16] = 55  # paper: 60, 65, 70, 75 minus one -> three aged 60 or more
    frame = pd.DataFrame({"case_id": pd.array([f"s{i:02d}" for i in range(20)], dtype="str"),
                          "channel": pd.array(channel, dtype="str"),
                          "applicant_age": np.array(ages, dtype=np.int64)})
    result = run(frame, PythonEngine(old_paper_engine), ["channel"], features=list(frame.columns))
    expected = {"digital": (4, 10, 0.168180, 0.687326), "paper": (3, 10, 0.107791, 0.603222),
                "all": (7, 20, 0.181192, 0.567146)}
    for group, (k, n, lo, hi) in expected.items():
        r = row(result, "flip_rate", "channel", group)
        assert (r["count"], r["n"], r["value"]) == (k, n, k / n)
        assert (r["ci_low"], r["ci_high"]) == pytest.approx((lo, hi), abs=1e-6)
    assert row(result, "flip_to_unfavourable", "channel", "digital")["value"] == 0.4
    assert row(result, "flip_to_favourable", "channel", "digital")["value"] == 0.0
    assert row(result, "flip_to_favourable", "channel", "paper")["value"] == 0.3
    paper = row(result, "flip_rate", "channel", "paper")
    assert paper["reference_group"] == "digital" and paper["test"] == "Fisher's exact test"
    assert paper["p_value"] == pytest.approx(stats.fisher_exact([[3, 7], [4, 6]]).pvalue) == pytest.approx(1.0)
    assert paper["difference"] == pytest.approx(-0.1)
    amount = row(result, "mean_amount_change", "channel", "digital")
    assert (amount["n"], amount["value"]) == (6, 0.0)
    # suppressed below min_group_size: both groups of 10, not the 20 cases together
    small = run(frame, PythonEngine(old_paper_engine), ["channel"], features=list(frame.columns),
                stats_spec=StatisticsSpec(min_group_size=11))
    digital = row(small, "flip_rate", "channel", "digital")
    assert digital["suppressed"] and math.isnan(digital["value"]) and math.isnan(digital["count"])
    assert digital["reason"] == "suppressed: the group has fewer than min_group_size 11 cases"  # issue 19
    assert row(small, "flip_rate", "channel", "all")["value"] == 0.35


def test_metric_rows_have_the_metrics_table_form(cases: pd.DataFrame) -> None:
    result = run(cases, PythonEngine(interpreter_engine), ["birth_region", "sex"])
    m = result.metrics
    assert list(m.columns) == list(COLUMNS)
    assert set(m["metric"]) == set(FLIP_METRICS)
    assert m["attributes"].map(len).eq(1).all()
    groups = m[m["attributes"].map(lambda a: a == ["sex"]) & (m["metric"] == "flip_rate")]["group"].tolist()
    assert groups == ["female", "male", "all"]
    tested = m["p_value"].notna()
    assert (m.loc[tested, "p_adjusted"] >= m.loc[tested, "p_value"]).all()
    data = json.loads(json.dumps(result.to_dict()))
    assert data["metrics"][0]["metric"] == "flip_rate" and data["metrics"][0]["attributes"] == ["birth_region"]
    schema = json.loads((ROOT / "audit" / "schemas" / "results.schema.json").read_text(encoding="utf-8"))
    metric_schema = {**schema["$defs"]["metric"], "$defs": schema["$defs"]}
    for record in data["metrics"]:
        jsonschema.validate(record, metric_schema)
    section = result.to_markdown()
    assert section.startswith("## Counterfactual twins") and "### birth_region" in section


def test_examples_are_anonymised_numbered_and_limited(cases: pd.DataFrame) -> None:
    result = run(cases, PythonEngine(interpreter_engine), ["birth_region", "interpreter"], examples=4)
    assert [e["example"] for e in result.examples] == list(range(1, 9))
    for e in result.examples:
        allowed = {e["attribute"], *synth.TIED_FIELDS[e["attribute"]]}
        assert e["attribute"] in e["changed"] and set(e["changed"]) <= allowed
        assert all(v["before"] != v["after"] for v in e["changed"].values())
        assert (e["before"]["outcome"], e["before"]["amount"]) != (e["after"]["outcome"], e["after"]["amount"])
        assert set(e) == {"example", "attribute", "changed", "before", "after"}
    text = json.dumps(result.to_dict()["examples"])
    assert not any(cid in text for cid in cases["case_id"])


def test_same_seed_same_result_other_seed_other_twins(cases: pd.DataFrame) -> None:
    engine = PythonEngine(interpreter_engine)
    a = run(cases, engine, ["birth_region", "applicant_age"], seed=21)
    b = run(cases, engine, ["birth_region", "applicant_age"], seed=21)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    assert a.examples == b.examples and a.attributes == b.attributes
    c = run(cases, engine, ["birth_region", "applicant_age"], seed=22)
    assert not a.metrics["value"].equals(c.metrics["value"])
    t1, t2 = (synth.make_twins(cases, "birth_region", seed=s) for s in (21, 22))
    assert not t1["years_in_sweden"].equals(t2["years_in_sweden"])


# --------------------------------------------------------------------------
# every engine kind


def test_recorded_engines_are_reported_not_silently_zero(cases: pd.DataFrame, tmp_path: Path) -> None:
    frame = cases.iloc[:200].assign(recorded_outcome=np.where(cases["interpreter"].iloc[:200], "refer", "grant"))
    frame["recorded_outcome"] = frame["recorded_outcome"].astype("str")
    log = tmp_path / "log.csv"
    frame[["case_id", "recorded_outcome"]].to_csv(log, index=False)
    for engine in (RecordedEngine(outcome="recorded_outcome"), RecordedEngine(outcome="recorded_outcome", path=log)):
        features = blind_features(frame) if engine.path is None else blind_features(cases)
        result = run(frame if engine.path is None else cases.iloc[:200], engine, ["birth_region", "sex"],
                     features=features, personas="examples/personas.yaml")
        flips = result.metrics[result.metrics["metric"] == "flip_rate"]
        shown = flips[~flips["suppressed"]]  # small birth regions of 200 cases are suppressed
        assert flips["value"].isna().all() and len(shown) >= 4
        assert shown["reason"].str.startswith("undefined: no twin pair of the group's").all()
        assert result.notes[0].startswith("Counterfactual tests need an engine that can decide new cases.")
        for info in result.attributes:
            assert info["decided_pairs"] == 0 and info["twin_errors"] == info["twins"] > 0
            assert "need an engine that can decide new cases" in info["sentence"]
        assert (result.personas["status"] == "error").all()


def test_every_engine_kind_decides_twins(cases: pd.DataFrame, tmp_path: Path) -> None:
    """Engines that never see sex or birth region: sex never flips; birth region flips only through proxies."""
    from sklearn.tree import DecisionTreeClassifier

    small = cases.iloc[:240].reset_index(drop=True)
    X = small[["interpreter", "rent"]].astype(float)
    tree = DecisionTreeClassifier(random_state=0).fit(X, (small["interpreter"] | (small["rent"] > 8000)).astype(int))
    with InsynServer() as server:
        engines = {
            "rules": RulesEngine(ROOT / "examples" / "engines" / "municipal-rpa.yaml"),
            "sklearn": SklearnEngine(tree, labels={1: "refer", 0: "grant"}, method="predict"),
            "http": HttpEngine(server.url, batch_size=500),
            "subprocess": SubprocessEngine([sys.executable, str(ROOT / "examples" / "engines"
                                                                 / "subprocess_engine.py")]),
            "reference": ReferenceEngine(),
        }
        results = {kind: run(small, engine, ["birth_region", "sex"]) for kind, engine in engines.items()}
    twins = synth.make_twins(small, "birth_region", seed=5)
    orig = aligned_originals(small, twins)
    tree_flips = int(((twins["interpreter"].to_numpy() != orig["interpreter"].to_numpy())
                      & (orig["rent"].to_numpy() <= 8000)).sum())
    for kind, result in results.items():
        info = {a["attribute"]: a for a in result.attributes}
        assert info["sex"]["flips"] == 0 and row(result, "flip_rate", "sex", "all")["value"] == 0, kind
        assert info["birth_region"]["decided_pairs"] == 3 * len(small), kind
        assert info["birth_region"]["flips_direct"] == 0, kind
    assert {a["attribute"]: a for a in results["sklearn"].attributes}["birth_region"]["flips"] == tree_flips > 0
    rpa = {a["attribute"]: a for a in results["rules"].attributes}["birth_region"]
    assert rpa["flips"] > 0 and rpa["flips_through_proxies"] == rpa["flips"]
    for kind in ("http", "subprocess", "reference"):  # their rules read neither interpreter nor channel
        assert {a["attribute"]: a for a in results[kind].attributes}["birth_region"]["flips"] == 0, kind


# --------------------------------------------------------------------------
# personas


def test_personas_load_vary_one_attribute_and_are_valid_cases() -> None:
    frame = load_personas(ROOT / "examples" / "personas.yaml")
    assert frame["case_id"].is_unique
    assert validate(frame, [SUITE], step="intake").success
    for _, variants in frame.groupby("persona", sort=False):
        base = variants.iloc[0]
        assert base["attribute"] == "(base)"
        for _, v in variants.iloc[1:].iterrows():
            differ = {c for c in ASSISTANCE_COLUMNS if c != "case_id" and v[c] != base[c]}
            tied = {"years_in_sweden"} if v["attribute"] == "applicant_age" else set()
            assert differ - tied == {v["attribute"]}, (v["persona"], v["attribute"], differ)
    first = frame.iloc[0]
    assert first["municipality_code"] == DEFAULT_PERSONA["municipality_code"] and first["applicant_age"] == 34
    assert first["years_in_sweden"] == 34  # defaults to the age: lived in Sweden all their life


def test_persona_table_is_decided_by_the_same_engine(cases: pd.DataFrame) -> None:
    result = run(cases.iloc[:100], PythonEngine(interpreter_engine), ["sex"], personas="examples/personas.yaml")
    table = result.personas
    assert list(table.columns) == ["persona", "attribute", "value", "outcome", "amount", "reasons", "status",
                                   "differs"]
    expected = load_personas(ROOT / "examples" / "personas.yaml")
    assert len(table) == len(expected)
    needs = expected["interpreter"].to_numpy()
    assert table["outcome"].tolist() == np.where(needs, "refer", "grant").tolist()
    base_needs = expected.groupby("persona")["interpreter"].transform("first").to_numpy()
    assert table["differs"].tolist() == (needs != base_needs).tolist()
    flipped = table[(table["attribute"] == "interpreter")]
    assert set(flipped["value"]) == {"true", "false"} and flipped["differs"].all()


# --------------------------------------------------------------------------
# spec errors


def test_attribute_errors_name_it(cases: pd.DataFrame) -> None:
    engine = PythonEngine(blind_engine)
    base = run_engine(engine, cases[blind_features(cases)], labels=LABELS).decisions
    common = dict(engine=engine, features=blind_features(cases), labels=LABELS, favourable=FAVOURABLE,
                  sensitive_features=SENSITIVE, statistics=StatisticsSpec(), seed=1, base_dir=ROOT / "examples",
                  source="examples/counterfactual.yaml")
    with pytest.raises(SpecError) as err:
        run_counterfactual(cases, spec=CounterfactualSpec(attributes=["sex", "religion"]), base_decisions=base,
                           **common)
    assert str(err.value) == (
        "examples/counterfactual.yaml: counterfactual.attributes names 'religion', which is not a column of the "
        f"case frame. Columns: {', '.join(cases.columns)}.")
    women = cases[cases["sex"] == "female"]
    with pytest.raises(SpecError) as err:
        run_counterfactual(women, spec=CounterfactualSpec(attributes=["sex"]), base_decisions=base, **common)
    assert str(err.value) == (
        "examples/counterfactual.yaml: counterfactual.attributes names 'sex', which has a single value ('female') "
        "in the case frame. Expected at least two values: a twin changes the attribute to another value.")
    with pytest.raises(SpecError) as err:
        run_counterfactual(cases, spec=CounterfactualSpec(attributes=["sex", "sex"]), base_decisions=base, **common)
    assert str(err.value) == ("examples/counterfactual.yaml: counterfactual.attributes must name each attribute "
                              "once. Got 'sex' twice.")
    with pytest.raises(SpecError) as err:
        run_counterfactual(cases, spec=CounterfactualSpec(attributes=["sex"], personas="nowhere.yaml"),
                           base_decisions=base, **common)
    assert str(err.value) == (
        "examples/counterfactual.yaml: counterfactual.personas names 'nowhere.yaml', which does not exist "
        f"(looked for {ROOT / 'examples' / 'nowhere.yaml'}). Expected a YAML list of personas.")
    with pytest.raises(DataError) as err:
        run_counterfactual(cases, spec=CounterfactualSpec(attributes=["sex"]), base_decisions=base.iloc[:0],
                           **common)
    assert str(err.value) == (f"examples/counterfactual.yaml: base_decisions holds a decision for none of the "
                              f"{len(cases)} cases. Expected the engine's decisions on the cases.")
    with pytest.raises(DataError) as err:
        run_counterfactual(cases, spec=CounterfactualSpec(attributes=["sex"]), base_decisions=base.drop(
            columns="status"), **common)
    assert str(err.value) == ("examples/counterfactual.yaml: base_decisions has no column 'status'. Expected "
                              "case_id, outcome, amount, reasons, status.")
    # cases quarantined before the engine have no base decision: left out, with a note, never silently
    result = run_counterfactual(cases, spec=CounterfactualSpec(attributes=["sex"]), base_decisions=base.iloc[3:],
                                **common)
    assert result.notes == ["3 cases had no decision of the engine (quarantined before it) and were left out of "
                            "the counterfactual tests."]
    assert result.attributes[0]["cases"] == len(cases) - 3


@pytest.mark.parametrize(("text", "message"), [
    ("name: one\n", "must be a non-empty list of personas. Got a dict."),
    ("- {name: a, colour: red}\n", "personas[0].colour is not a known key. Known keys: case, description, name, vary."),
    ("- {case: {sex: male}}\n", "personas[0].name is required: a short name for the persona. Got None."),
    ("- {name: a}\n- {name: a}\n", "personas[1].name must be unique. Got 'a' twice."),
    ("- {name: a, case: {religion: x}}\n", "personas[0].case.religion is not a column of the case frame."),
    ("- {name: a, vary: {birth_region: [eu, mars]}}\n",
     "personas[0].vary.birth_region[1] must be one of sweden, nordic, eu, outside_eu. Got 'mars'."),
    ("- {name: a, case: {rent: -5}}\n", "personas[0].case.rent must be a number >= 0 (SEK/month). Got -5."),
    ("- {name: a, case: {applicant_age: 30, years_in_sweden: 40}}\n",
     "personas[0].case: years_in_sweden (40) must be at most applicant_age (30)."),
    ("- {name: a, vary: {interpreter: 'yes'}}\n", "personas[0].vary.interpreter must be true or false. Got 'yes'."),
    ("- {name: a, vary: {applicant_age: [40, '5x']}}\n",
     "personas[0].vary.applicant_age[1] must be an integer between 18 and 110. Got '5x'."),
    ("- {name: a, case: {rent: abc}}\n", "personas[0].case.rent must be a number >= 0 (SEK/month). Got 'abc'."),
    ("- {name: a, case: {child_ages: '4;x'}}\n",
     "personas[0].case.child_ages must be children's ages 0-20 joined by ';' (\"\" for none). Got '4;x'."),
    ("- {name: a\n", "not valid YAML at line 2, column 1: expected ',' or '}', but got '<stream end>'."),
])
def test_malformed_personas_name_file_entry_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_personas(path, shown="p.yaml")
    assert str(err.value) == f"p.yaml: {message}"


# --------------------------------------------------------------------------
# the example spec and the public surface


def test_example_spec_loads_as_written() -> None:
    audit = load_spec(ROOT / "examples" / "counterfactual.yaml")
    assert audit.counterfactual is not None
    assert audit.counterfactual.attributes == ["birth_region", "sex", "interpreter"]
    assert audit.resolve(audit.counterfactual.personas) == (ROOT / "examples" / "personas.yaml").resolve()


def test_public_surface() -> None:
    assert counterfactual.__all__ == sorted(counterfactual.__all__)
    assert all(hasattr(counterfactual, name) for name in counterfactual.__all__)
    assert {"make_twins", "TIED_FIELDS"} <= set(synth.__all__) and synth.__all__ == sorted(synth.__all__)
