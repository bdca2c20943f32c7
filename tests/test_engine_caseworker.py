"""The caseworker-model example: a model trained on biased caseworker decisions inherits the bias.

The simulated caseworkers refuse a share of *eligible* applicants born outside
the EU. The model never sees birth region, yet on new (held-out) cases it
gives eligible applicants born abroad a much higher risk of refusal, and at
the example threshold refuses them several times as often; a model trained on
unbiased decisions of the same population shows no such gap.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

from audit.engine import SklearnEngine, UnsafeModelWarning, build_engine, run_engine
from audit.spec import EngineSpec
from audit.testing import check_engine

ROOT = Path(__file__).resolve().parents[1]
LABELS = ("grant", "partial", "deny", "refer")
BIAS = 0.25


def _example():
    path = ROOT / "examples" / "engines" / "caseworker_model.py"
    spec = importlib.util.spec_from_file_location("caseworker_model_example", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cm():
    return _example()


@pytest.fixture(scope="module")
def models(cm, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {
        "biased": cm.build_model(folder / "biased.joblib", n=20_000, seed=1, discretion_bias=BIAS),
        "fair": cm.build_model(folder / "fair.joblib", n=20_000, seed=1, discretion_bias=0.0),
    }


@pytest.fixture(scope="module")
def held_out(cm) -> pd.DataFrame:
    return cm.historical_decisions(8_000, seed=2, discretion_bias=BIAS)  # seed 2: cases the models never saw


def test_the_historical_record_carries_the_discretion_bias(cm) -> None:
    hist = cm.historical_decisions(20_000, seed=1, discretion_bias=BIAS)
    eligible = ~hist["law_denied"]
    rate = hist.loc[eligible].groupby("birth_region")["caseworker_denied"].mean()
    # eligible applicants are refused only by mistake (3 %), except those born outside the EU:
    # 3 % + 25 % x 97 % = 27.25 % expected
    assert abs(rate["sweden"] - 0.03) < 0.015 and abs(rate["eu"] - 0.03) < 0.03
    assert abs(rate["outside_eu"] - (0.03 + BIAS * 0.97)) < 0.02
    assert set(cm.FEATURES).isdisjoint({"sex", "birth_region"})


def _measure(path: Path, held_out: pd.DataFrame, threshold: float) -> pd.DataFrame:
    spec = EngineSpec(kind="sklearn", path=str(path), labels={1: "deny", 0: "grant"}, threshold=threshold)
    with pytest.warns(UnsafeModelWarning):
        engine = build_engine(spec, base_dir=ROOT)
    assert "birth_region" not in engine.sees and "sex" not in engine.sees
    inputs = held_out.drop(columns=["sex", "birth_region", "law_denied", "caseworker_denied"])
    d = run_engine(engine, inputs, labels=LABELS).decisions
    eligible = ~held_out["law_denied"].to_numpy()
    frame = pd.DataFrame({"region": held_out["birth_region"].to_numpy()[eligible],
                          "denied": (d["outcome"] == "deny").to_numpy()[eligible],
                          "score": d["score"].to_numpy()[eligible]})
    return frame.groupby("region")[["denied", "score"]].mean()


def test_the_model_inherits_the_bias_without_seeing_birth_region(models, held_out) -> None:
    biased = _measure(models["biased"], held_out, threshold=0.3)
    fair = _measure(models["fair"], held_out, threshold=0.3)
    # risk scores: the biased model learned roughly the caseworkers' 25-point gap, through proxies
    gap = biased.loc["outside_eu", "score"] - biased.loc["sweden", "score"]
    assert 0.10 < gap < 0.30
    assert abs(fair.loc["outside_eu", "score"] - fair.loc["sweden", "score"]) < 0.03
    # decisions at the threshold: eligible applicants born outside the EU are refused several times as often
    assert biased.loc["outside_eu", "denied"] > 3 * biased.loc["sweden", "denied"]
    assert biased.loc["outside_eu", "denied"] - biased.loc["sweden", "denied"] > 0.05
    fair_ratio = fair.loc["outside_eu", "denied"] / fair.loc["sweden", "denied"]
    assert 0.5 < fair_ratio < 2
    # the proxies do not stop at the group the caseworkers were biased against: EU-born pay too
    assert biased.loc["eu", "score"] - biased.loc["sweden", "score"] > 0.05


def test_the_model_passes_the_conformance_suite(models) -> None:
    with pytest.warns(UnsafeModelWarning):
        engine = SklearnEngine.from_file(models["biased"], labels={1: "deny", 0: "grant"}, threshold=0.3)
    check_engine(engine, n=120).raise_for_failures()


def test_discretion_bias_must_be_a_share(cm) -> None:
    with pytest.raises(ValueError, match=r"^The 'discretion_bias' option must be a number between 0 and 1. Got 1.5.$"):
        cm.historical_decisions(10, seed=0, discretion_bias=1.5)
