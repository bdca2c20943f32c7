"""The historical-population examples: each runs, and its figures match values computed here by hand.

The expected figures are computed straight from the raw files in
``datasets/examples/`` with plain pandas and scipy (reading the Swedish
labels and layouts without Insyn's loaders), never from Insyn's output.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from audit import load_spec
from audit._privacy import looks_like_personnummer
from audit.metrics import binary_metrics_from_counts, compare_decisions, measure_selection
from audit.population import load_population

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DATA = ROOT / "datasets" / "examples"
REGION = {"Sverige": "sweden", "Norden": "nordic", "EU": "eu", "Utanför EU": "outside_eu"}
SEX = {"Kvinna": "female", "Man": "male"}
DECISION = {"Bifall": "grant", "Delavslag": "partial", "Avslag": "deny", "Manuell handläggning": "refer"}


def _row(table: pd.DataFrame, metric: str, attributes: list[str], group: str) -> pd.Series:
    same = table["attributes"].map(lambda a: list(a) == attributes)
    hit = table[(table["metric"] == metric) & same & (table["group"] == group)]
    assert len(hit) == 1, (metric, attributes, group, len(hit))
    return hit.iloc[0]


def _wilson(k: int, n: int) -> tuple[float, float]:
    ci = stats.binomtest(int(k), int(n)).proportion_ci(method="wilson")
    return ci.low, ci.high


@pytest.fixture(scope="module")
def runs() -> dict[str, object]:
    """Each example run once (without writing a run folder), on first use."""
    cache: dict[str, object] = {}

    def run(name: str):
        if name not in cache:
            cache[name] = load_spec(EXAMPLES / f"{name}.yaml").run(write=False)
        return cache[name]

    return run  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# the decision log (Excel, Swedish labels)


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    """The raw sheet, read with pandas alone, with the final decision worked out by hand."""
    raw = pd.read_excel(DATA / "decision-log.xlsx", sheet_name="Beslut 2025", dtype=str, keep_default_na=False)
    out = pd.DataFrame({
        "sex": raw["Kön"].map(SEX),
        "birth_region": raw["Födelseregion"].map(REGION),
        "robot": raw["Beslut"].map(DECISION),
        "caseworker": raw["Handläggarbeslut"].map(DECISION),
        "correct": raw["Granskat beslut"].map(DECISION),
        "robot_amount": pd.to_numeric(raw["Belopp"].str.strip(), errors="coerce"),
    })
    out["final"] = out["caseworker"].where(out["robot"] == "refer", out["robot"])
    return out


def test_decision_log_loads_from_the_named_sheet(log: pd.DataFrame) -> None:
    pop = load_population(load_spec(EXAMPLES / "decision-log.yaml"))
    frame = pop.frame
    assert pop.source["sheet"] == "Beslut 2025"  # not the first sheet ("Läs mig")
    assert len(frame) == len(log) == 600
    assert frame["case_id"].is_unique and frame["case_id"].str.startswith("BES-").all()
    assert frame["robot_outcome"].value_counts().to_dict() == log["robot"].value_counts().to_dict()
    assert (frame["sex"].to_numpy() == log["sex"].to_numpy()).all()
    # the robot left amounts blank or as a lone space for referred cases: missing, never 0
    referred = frame["robot_outcome"] == "refer"
    assert frame.loc[referred, "robot_amount"].isna().all()
    assert frame.loc[~referred, "robot_amount"].notna().all()
    assert frame["interpreter"].dtype == bool
    assert frame.groupby("age_band", observed=True).size().sum() == 600


def test_decision_log_figures(runs, log: pd.DataFrame) -> None:
    table = runs("decision-log").metrics_frame()
    for region, part in log.groupby("birth_region"):
        k, n = int((part["robot"] == "refer").sum()), len(part)
        r = _row(table, "refer_rate", ["birth_region"], region)
        assert (r["count"], r["n"]) == (k, n)
        assert r["value"] == pytest.approx(k / n)
        assert (r["ci_low"], r["ci_high"]) == pytest.approx(_wilson(k, n))
        entitled = part[part["correct"].isin(["grant", "partial"])]
        k, n = int((entitled["final"] == "deny").sum()), len(entitled)
        r = _row(table, "wrongful_denial_rate", ["birth_region"], region)
        assert (r["count"], r["n"], r["value"]) == (k, n, pytest.approx(k / n))
    for sex, part in log.groupby("sex"):
        r = _row(table, "deny_rate", ["sex"], sex)
        assert r["value"] == pytest.approx((part["final"] == "deny").mean())
    # the built-in bias: more wrongful refusals for applicants born outside the EU than in Sweden
    rate = {g: (p.loc[p["correct"] != "deny", "final"] == "deny").mean() for g, p in log.groupby("birth_region")}
    r = _row(table, "wrongful_denial_rate", ["birth_region"], "outside_eu")
    assert r["reference_group"] == "sweden"
    assert r["difference"] == pytest.approx(rate["outside_eu"] - rate["sweden"])
    findings = runs("decision-log").findings_frame()
    f = findings[(findings["metric"] == "wrongful_denial_rate") & (findings["group"] == "outside_eu")
                 & findings["attributes"].map(lambda a: list(a) == ["birth_region"])].iloc[0]
    assert f["observed"] == pytest.approx(rate["outside_eu"] - rate["sweden"])
    assert f["status"] == ("FAIL" if rate["outside_eu"] - rate["sweden"] > 0.05 else "PASS")


# ---------------------------------------------------------------------------
# the aggregated table (percentages, suppressed cells)


@pytest.fixture(scope="module")
def confusion() -> pd.DataFrame:
    raw = pd.read_csv(DATA / "confusion.csv")
    part = raw[(raw["Dataset"] == "Pilot") & (raw["Model"] == "BR")].reset_index(drop=True)
    counts = np.round(part[["TP", "FP", "FN", "TN"]].to_numpy() / 100 * part[["group_size"]].to_numpy())
    return part.assign(tp=counts[:, 0], fp=counts[:, 1], fn=counts[:, 2], tn=counts[:, 3])


def test_aggregated_table_keeps_suppressed_cells(confusion: pd.DataFrame) -> None:
    pop = load_population(load_spec(EXAMPLES / "aggregated.yaml"))
    table = pop.aggregated
    assert len(table) == len(confusion) == 10
    assert table["attribute"].unique().tolist() == ["sex", "birth_region", "age_band"]
    np.testing.assert_array_equal(table[["tp", "fp", "fn", "tn"]].to_numpy(),
                                  confusion[["tp", "fp", "fn", "tn"]].to_numpy())
    assert int(table[["tp", "fp", "fn", "tn"]].isna().sum().sum()) == 3  # blank in the file, blank here
    metrics = binary_metrics_from_counts(table, alpha=0.05)
    for i, row in confusion.iterrows():
        fpr = metrics[(metrics["metric"] == "false_positive_rate") & (metrics["group"] == table["group"][i])]
        k, n = row["fp"], row["fp"] + row["tn"]
        assert fpr["value"].iloc[0] == pytest.approx(k / n)
        low = stats.beta.ppf(0.025, k, n - k + 1)
        high = stats.beta.ppf(0.975, k + 1, n - k)
        assert (fpr["exact_low"].iloc[0], fpr["exact_high"].iloc[0]) == pytest.approx((low, high))
    tpr = metrics[(metrics["metric"] == "true_positive_rate") & (metrics["group"] == "65+")].iloc[0]
    assert np.isnan(tpr["value"]) and tpr["reason"] == "cell suppressed at source"


def test_aggregated_figures(runs, confusion: pd.DataFrame) -> None:
    table = runs("aggregated").metrics_frame()
    names = {"Women": ("sex", "female"), "Men": ("sex", "male"), "Sweden": ("birth_region", "sweden"),
             "Nordic countries": ("birth_region", "nordic"), "EU": ("birth_region", "eu"),
             "Outside EU": ("birth_region", "outside_eu")}
    for _, row in confusion.iterrows():
        if row["Feature_Value_EN"] not in names:
            continue
        attribute, group = names[row["Feature_Value_EN"]]
        r = _row(table, "false_positive_rate", [attribute], group)
        assert r["value"] == pytest.approx(row["fp"] / (row["fp"] + row["tn"]))
        r = _row(table, "false_negative_rate", [attribute], group)
        if np.isnan(row["fn"]):
            assert np.isnan(r["value"]) and "suppressed at source" in r["reason"]
        else:
            assert r["value"] == pytest.approx(row["fn"] / (row["fn"] + row["tp"]))


# ---------------------------------------------------------------------------
# the selection audit (Swedish CSV export)


@pytest.fixture(scope="module")
def controls() -> pd.DataFrame:
    raw = pd.read_csv(DATA / "selection-audit.csv", sep=";", decimal=",", encoding="cp1252", dtype=str,
                      keep_default_na=False)
    return pd.DataFrame({
        "region": raw["Födelseregion"].map(REGION),
        "random": raw["Urval"] == "Slumpmässigt",
        "error": raw["Kontrollresultat"] == "Fel",
        "known": raw["Kontrollresultat"] != "",
    })


def _selection_by_hand(c: pd.DataFrame, population: int) -> pd.DataFrame:
    """The module docstring's method, written out with pandas."""
    sel, rnd = c[~c["random"]], c[c["random"]]
    g = pd.DataFrame({
        "s": sel.groupby("region").size(), "r": rnd.groupby("region").size(),
        "sp": sel[sel["error"]].groupby("region").size(), "sk": sel[sel["known"]].groupby("region").size(),
        "rp": rnd[rnd["error"]].groupby("region").size(), "rk": rnd[rnd["known"]].groupby("region").size(),
    }).fillna(0)
    out = pd.DataFrame(index=g.index)
    out["selection_ratio"] = (g["s"] / g["s"].sum()) / (g["r"] / g["r"].sum())
    out["base_rate"] = g["rp"] / g["rk"]
    out["hit_rate"] = g["sp"] / g["sk"]
    out["equal_burden"] = (g["s"] / g["s"].sum()) / (g["rp"] / g["rp"].sum())
    size = population * g["r"] / g["r"].sum()
    tp = g["s"] * out["hit_rate"]
    fp = g["s"] - tp
    fn = (size * out["base_rate"] - tp).clip(lower=0)
    tn = (size - g["s"] - fn).clip(lower=0)
    out["population_selection_rate"] = g["s"] / size
    out["population_false_positive_rate"] = fp / (fp + tn)
    out["population_false_negative_rate"] = fn / (fn + tp)
    return out


def test_selection_audit_direct(controls: pd.DataFrame) -> None:
    audit = load_spec(EXAMPLES / "selection-audit.yaml")
    frame = load_population(audit).frame.rename(columns={"control_result": "truth_outcome"})
    table = measure_selection(frame, selection=audit.selection, sensitive_features=audit.sensitive_features,
                              intersections=audit.intersections, statistics=audit.statistics, seed=audit.seed,
                              reference_groups=audit.reference_groups)
    expected = _selection_by_hand(controls, audit.selection.population_size)
    for metric in expected.columns:
        for region, value in expected[metric].items():
            assert _row(table, metric, ["birth_region"], region)["value"] == pytest.approx(value), (metric, region)
    # the built-in bias: born outside the EU, selected far beyond its share of errors
    r = _row(table, "equal_burden", ["birth_region"], "outside_eu")
    assert r["reference_group"] == "sweden" and r["ci_low"] > 1 and r["p_adjusted"] < 0.05


def test_selection_audit_figures(runs, controls: pd.DataFrame) -> None:
    audit = load_spec(EXAMPLES / "selection-audit.yaml")
    table = runs("selection-audit").metrics_frame()
    expected = _selection_by_hand(controls, audit.selection.population_size)
    for metric in expected.columns:
        for region, value in expected[metric].items():
            assert _row(table, metric, ["birth_region"], region)["value"] == pytest.approx(value), (metric, region)


# ---------------------------------------------------------------------------
# the engine comparison (Parquet)


@pytest.fixture(scope="module")
def decisions() -> pd.DataFrame:
    raw = pd.read_parquet(DATA / "compare.parquet")
    fav = ["grant", "partial"]
    old_fav, new_fav = raw["caseworker_outcome"].isin(fav), raw["robot_outcome"].isin(fav)
    new_amount = raw["robot_amount"].where(raw["robot_amount"].notna() | new_fav, 0.0)
    return raw.assign(old_fav=old_fav, new_fav=new_fav, change=new_amount - raw["caseworker_amount"])


def _compare_by_hand(d: pd.DataFrame, by: str) -> pd.DataFrame:
    g = d.groupby(by)
    return pd.DataFrame({
        "agreement": g.apply(lambda p: (p["robot_outcome"] == p["caseworker_outcome"]).mean()),
        "flip_to_unfavourable": g.apply(lambda p: (~p.loc[p["old_fav"], "new_fav"]).mean()),
        "flip_to_favourable": g.apply(lambda p: p.loc[~p["old_fav"], "new_fav"].mean()),
        "mean_amount_change": g["change"].mean(),
    })


def test_compare_direct(decisions: pd.DataFrame) -> None:
    audit = load_spec(EXAMPLES / "compare.yaml")
    frame = load_population(audit).frame.rename(columns={
        "robot_outcome": "outcome", "robot_amount": "amount",
        "caseworker_outcome": "compare_outcome", "caseworker_amount": "compare_amount"})
    table = compare_decisions(frame, sensitive_features=audit.sensitive_features, favourable=["grant", "partial"],
                              intersections=audit.intersections, statistics=audit.statistics, seed=audit.seed,
                              reference_groups=audit.reference_groups)
    for by in ("interpreter", "birth_region"):
        expected = _compare_by_hand(decisions, by)
        for metric in expected.columns:
            for group, value in expected[metric].items():
                assert _row(table, metric, [by], str(group))["value"] == pytest.approx(value), (metric, group)
    # the built-in bias: applicants who need an interpreter lose a favourable decision far more often
    r = _row(table, "flip_to_unfavourable", ["interpreter"], "True")
    assert r["reference_group"] == "False" and r["diff_ci_low"] > 0 and r["p_adjusted"] < 0.05
    change = decisions.loc[decisions["interpreter"], "change"]
    r = _row(table, "mean_amount_change", ["interpreter"], "True")
    low, high = stats.t.interval(0.95, len(change) - 1, loc=change.mean(), scale=stats.sem(change))
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((low, high))


def test_compare_figures(runs, decisions: pd.DataFrame) -> None:
    table = runs("compare").metrics_frame()
    expected = _compare_by_hand(decisions, "interpreter")
    for metric in expected.columns:
        for group, value in expected[metric].items():
            assert _row(table, metric, ["interpreter"], str(group))["value"] == pytest.approx(value), (metric, group)


# ---------------------------------------------------------------------------
# the data and its card


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_examples", DATA / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_the_example_data_is_what_the_seeded_script_makes(tmp_path: Path) -> None:
    _load_generator().main(["--out", str(tmp_path)])
    for name in ("confusion.csv", "selection-audit.csv"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "compare.parquet"),
                                  pd.read_parquet(DATA / "compare.parquet"))
    made = pd.read_excel(tmp_path / "decision-log.xlsx", sheet_name=None, dtype=str, keep_default_na=False)
    kept = pd.read_excel(DATA / "decision-log.xlsx", sheet_name=None, dtype=str, keep_default_na=False)
    assert list(made) == list(kept) == ["Läs mig", "Beslut 2025"]
    for sheet in made:
        pd.testing.assert_frame_equal(made[sheet], kept[sheet])


def test_no_personal_identity_numbers_and_a_complete_data_card() -> None:
    frames = {
        "decision-log.xlsx": pd.read_excel(DATA / "decision-log.xlsx", sheet_name="Beslut 2025", dtype=str),
        "confusion.csv": pd.read_csv(DATA / "confusion.csv", dtype=str),
        "selection-audit.csv": pd.read_csv(DATA / "selection-audit.csv", sep=";", encoding="cp1252", dtype=str),
        "compare.parquet": pd.read_parquet(DATA / "compare.parquet").astype(str),
    }
    card = (DATA / "README.md").read_text(encoding="utf-8")
    assert "CC0" in card
    for name, frame in frames.items():
        for col in frame.columns:
            assert not looks_like_personnummer(frame[col].dropna()).any(), (name, col)
            assert f"`{col}`" in card, f"README.md does not describe column {col!r} of {name}"
        assert f"`{name}`" in card
