"""Amount metrics say what they count (issue 25, point 4).

Decided cases only, with the cases awaiting a caseworker shown apart; a run
without amounts says so instead of 0 % or 100 %; every key figure explains
itself in one sentence; the demo's caseworker model decides referred cases.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit import Audit
from audit.report import render_html, render_markdown

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
from engines.caseworker_model import review_referred  # noqa: E402

POP = str(ROOT / "datasets/sweden/population-2026.yaml")


@pytest.fixture()
def no_amount_engine() -> str:
    """A classifier-like engine: grant or deny, never an amount."""
    mod = types.ModuleType("insyn_test_no_amounts")

    def decide(cases: pd.DataFrame) -> pd.DataFrame:
        deny = cases["assets"].to_numpy() > 10_000
        return pd.DataFrame({"case_id": cases["case_id"], "outcome": np.where(deny, "deny", "grant"),
                             "amount": np.nan})

    mod.decide = decide
    sys.modules[mod.__name__] = mod
    yield f"{mod.__name__}:decide"
    del sys.modules[mod.__name__]


def test_a_run_without_amounts_says_so_never_100_percent(tmp_path: Path, no_amount_engine: str) -> None:
    audit = Audit.from_dict({"name": "na", "seed": 3, "population": {"synthetic": POP, "n": 400},
                             "sensitive_features": ["sex"], "engine": {"kind": "python", "target": no_amount_engine},
                             "truth": {"reference": True}, "statistics": {"bootstrap": 0},
                             "report": {"formats": ["json"]}}, base_dir=tmp_path)
    result = audit.run(out=tmp_path)
    metrics = set(result.metrics_frame()["metric"])
    assert "wrongful_denial_rate" in metrics  # the truth was there
    assert not metrics & {"underpayment_rate", "mean_shortfall", "amount_ratio", "mean_amount"}
    html = render_html(result, language="en")
    assert "Amounts are not available" in html
    assert "Belopp saknas" in render_markdown(result, language="sv")


def test_key_figures_explain_themselves_and_count_decided_cases(tmp_path: Path) -> None:
    audit = Audit.from_dict({"name": "k", "seed": 4, "population": {"synthetic": POP, "n": 600},
                             "sensitive_features": ["sex"], "engine": {"kind": "rules",
                                                                      "path": str(ROOT / "examples/engines/municipal-rpa.yaml")},
                             "truth": {"reference": True}, "outcomes": {"favourable": ["grant", "partial"],
                                                                       "review": ["refer"], "positive": ["deny"]},
                             "statistics": {"bootstrap": 0}, "report": {"formats": ["json"]}}, base_dir=tmp_path)
    result = audit.run(out=tmp_path)
    m = result.metrics_frame()
    overall = m[m["attributes"].map(len) == 0].set_index("metric")
    referred = result.to_dict()["engine"]["review"]["referred"]
    assert referred > 0
    md = render_markdown(result, language="en")
    under = overall.loc["underpayment_rate"]
    # decided cases only: no referred (unresolved) case is in the denominator
    decisions = result.decisions
    decided_owed = ((decisions["final_outcome"] != "refer") & (decisions["truth_amount"] > 0)
                    & (decisions["status"] == "ok")).sum()
    assert under["n"] == decided_owed
    shortfall = overall.loc["mean_shortfall", "value"]
    assert (f"Of the {int(under['n']):,} decided applications owed money under the law, {under['value'] * 100:.1f}% "
            f"were paid less than the law's amount; mean shortfall SEK {shortfall:,.0f} per month.") in md
    assert f"{referred:,}".replace(",", "") in md.replace(",", "").replace("\u202f", "").replace("\u00a0", "")
    assert "still await a caseworker and are shown apart" in md
    assert "The engine routed" in md and "mean shortfall" in md


def test_review_referred_follows_the_law_and_its_discretion_is_seeded() -> None:
    from audit.norms import ReferenceEngine
    from audit.synth import generate, load_population_spec

    cases = generate(load_population_spec(POP), n=300, seed=9)
    law = ReferenceEngine().decide(cases)
    fair = review_referred(cases)
    assert fair["outcome"].tolist() == law["outcome"].astype(str).tolist()
    np.testing.assert_allclose(fair["amount"].to_numpy(), law["amount"].to_numpy())
    biased = review_referred(cases, discretion_bias=0.5, seed=1)
    changed = biased["outcome"].to_numpy() != fair["outcome"].to_numpy()
    assert changed.any() and (cases.loc[changed, "birth_region"] == "outside_eu").all()
    assert (biased.loc[changed, "outcome"] == "deny").all() and (biased.loc[changed, "amount"] == 0).all()
    # the same case gets the same decision whatever else is referred
    again = review_referred(cases.iloc[::2].reset_index(drop=True), discretion_bias=0.5, seed=1)
    assert again["outcome"].tolist() == biased["outcome"].iloc[::2].tolist()
    with pytest.raises(ValueError, match="discretion_bias"):
        review_referred(cases, discretion_bias=2)


def test_demo_spec_has_a_review_step_so_figures_describe_final_decisions() -> None:
    from audit.audit import load_spec

    spec = load_spec(ROOT / "examples/demo.yaml")
    assert spec.review is not None and spec.review.model.target == "engines.caseworker_model:review_referred"
