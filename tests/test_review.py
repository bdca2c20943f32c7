"""Human review: recorded caseworker decisions and a caseworker model under the decision contract."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pytest

from audit.exceptions import DataError
from audit.review import OVERRIDE_WHY, REVIEW_COLUMNS, review
from audit.spec import AuditSpec

LABELS = ("grant", "partial", "deny", "refer")


def _spec(review_section: dict | None) -> AuditSpec:
    data = {"name": "review", "population": {"file": "cases.csv"}, "sensitive_features": ["sex"],
            "engine": {"kind": "reference"}}
    if review_section is not None:
        data["review"] = review_section
    return AuditSpec.from_dict(data)


def _cases() -> pd.DataFrame:
    return pd.DataFrame({
        "case_id": [f"c{i}" for i in range(8)],
        "sex": ["female", "male"] * 4,
        "rent": [5000.0, 6000.0, 7000.0, 8000.0, 9000.0, 10000.0, 11000.0, 12000.0],
        "caseworker": ["grant", None, "deny", "partial", None, "deny", "grant", None],
        "caseworker_amount": [900.0, np.nan, np.nan, 400.0, np.nan, np.nan, np.nan, np.nan],
    })


def _decisions() -> pd.DataFrame:
    """c0, c2, c4, c6 referred; c1, c3, c5 decided automatically; c7 an engine error."""
    return pd.DataFrame({
        "case_id": [f"c{i}" for i in range(8)],
        "outcome": ["refer", "grant", "refer", "grant", "refer", "deny", "refer", "error"],
        "amount": [np.nan, 100.0, np.nan, 200.0, np.nan, 0.0, np.nan, np.nan],
        "reasons": ["R1", "", "R2", "", "R3", "", "R4", ""],
        "status": ["ok"] * 7 + ["error"],
        "error_reason": [""] * 7 + ["the engine reported: boom"],
    })


@pytest.fixture
def caseworker_model() -> Iterator[Callable[[Callable[[pd.DataFrame], pd.DataFrame]], str]]:
    """Install a caseworker model as an importable module; yield a function that sets its body."""
    mod = types.ModuleType("insyn_test_caseworker_model")
    seen: list[pd.DataFrame] = []
    mod.seen = seen
    sys.modules[mod.__name__] = mod

    def install(body: Callable[[pd.DataFrame], pd.DataFrame]) -> str:
        def decide(cases: pd.DataFrame) -> pd.DataFrame:
            seen.append(cases.copy())
            return body(cases)

        mod.decide = decide
        return f"{mod.__name__}:decide"

    yield install
    del sys.modules[mod.__name__]


def test_without_review_every_case_keeps_the_engine_outcome() -> None:
    rev = review(_spec(None), _cases(), _decisions())
    assert rev.info == {"configured": False, "referred": 4}
    assert list(rev.frame.columns) == list(REVIEW_COLUMNS)
    assert rev.frame["final_outcome"].tolist() == _decisions()["outcome"].tolist()
    assert rev.frame["decided_by"].tolist() == ["engine"] * 7 + ["none"]
    assert rev.decided is None and not rev.frame["override"].any()


def test_recorded_decisions_resolve_referrals_and_override_automatic_ones() -> None:
    rev = review(_spec({"recorded": "caseworker", "amount": "caseworker_amount"}), _cases(), _decisions())
    f = rev.frame
    # referred c0 (grant 900), c2 (deny, no amount -> 0), c6 (grant, no amount -> NaN); c4 has no decision
    assert f["final_outcome"].tolist() == ["grant", "grant", "deny", "partial", "refer", "deny", "grant", "error"]
    assert f.loc[0, "final_amount"] == 900.0 and f.loc[2, "final_amount"] == 0.0 and np.isnan(f.loc[6, "final_amount"])
    # c3: the caseworker recorded partial (400) against the engine's automatic grant: an override
    assert f["override"].tolist() == [False, False, False, True, False, False, False, False]
    assert f.loc[3, "final_amount"] == 400.0
    # c5: the caseworker agrees with the engine's deny, so it is no override and the engine decided
    assert f["decided_by"].tolist() == ["caseworker", "engine", "caseworker", "caseworker", "engine", "engine",
                                        "caseworker", "none"]
    assert rev.info == {"configured": True, "referred": 4, "by": "recorded:caseworker", "resolved": 3,
                        "unresolved": 1, "overrides": 1}
    assert rev.decided["case_id"].tolist() == ["c0", "c2", "c3", "c6"]
    assert rev.decided.set_index("case_id").loc["c3", "why"] == OVERRIDE_WHY
    assert rev.decided.set_index("case_id").loc["c2", "why"] == "referred by the engine: R2"


def test_a_recorded_label_that_is_no_outcome_stops_the_run() -> None:
    cases = _cases().assign(caseworker=["grant", None, "maybe", None, None, None, None, None])
    with pytest.raises(DataError, match=r"^review: the caseworker decision 'maybe' \(from recorded:caseworker\) is "
                                        r"not an outcome label\. Expected one of deny, grant, partial\.$"):
        review(_spec({"recorded": "caseworker"}), cases, _decisions())


def test_a_missing_review_column_is_named() -> None:
    with pytest.raises(DataError, match=r"^review\.amount names 'paid', which is not a column of the case frame\."):
        review(_spec({"recorded": "caseworker", "amount": "paid"}), _cases(), _decisions())


def test_a_caseworker_model_decides_referred_cases_under_the_contract(caseworker_model) -> None:
    def body(cases: pd.DataFrame) -> pd.DataFrame:
        # c0 granted 750, c2 refused; c4 answered with a review label (the model may not refer again);
        # c6 left out of the answer
        out = {"c0": ("grant", 750.0), "c2": ("deny", np.nan), "c4": ("refer", np.nan)}
        rows = [(cid, *out[cid]) for cid in cases["case_id"] if cid in out]
        return pd.DataFrame(rows, columns=["case_id", "outcome", "amount"])

    target = caseworker_model(body)
    rev = review(_spec({"model": {"target": target}}), _cases(), _decisions())
    seen = sys.modules["insyn_test_caseworker_model"].seen
    # the model is asked about the referred cases only, and sees the whole case file
    assert len(seen) == 1 and seen[0]["case_id"].tolist() == ["c0", "c2", "c4", "c6"]
    assert {"sex", "rent", "caseworker"} <= set(seen[0].columns)
    f = rev.frame
    assert f["final_outcome"].tolist() == ["grant", "grant", "deny", "grant", "refer", "deny", "refer", "error"]
    assert f.loc[0, "final_amount"] == 750.0 and f.loc[2, "final_amount"] == 0.0
    assert f["decided_by"].tolist() == ["caseworker", "engine", "caseworker", "engine", "engine", "engine",
                                        "engine", "none"]
    # the two cases the model could not decide stay referred; they are counted, with their reasons
    assert rev.info == {"configured": True, "referred": 4, "by": f"model:{target}", "resolved": 2,
                        "unresolved": 2, "overrides": 0, "errors": 2}
    reasons = rev.failures.set_index("case_id")["reason"]
    assert sorted(reasons.index) == ["c4", "c6"]
    assert "unknown outcome label 'refer'" in reasons["c4"]
    assert reasons["c6"] == "the engine gave no answer for this case"


def test_a_crashing_caseworker_model_leaves_every_referral_unresolved(caseworker_model) -> None:
    def body(cases: pd.DataFrame) -> pd.DataFrame:
        raise RuntimeError("model file is corrupt")

    rev = review(_spec({"model": {"target": caseworker_model(body)}}), _cases(), _decisions())
    assert rev.info["resolved"] == 0 and rev.info["unresolved"] == 4 and rev.info["errors"] == 4
    assert rev.frame["final_outcome"].tolist() == _decisions()["outcome"].tolist()
    assert rev.failures["reason"].str.contains("model file is corrupt").all()
    assert rev.decided is None


def test_a_caseworker_model_is_not_asked_when_nothing_is_referred(caseworker_model) -> None:
    def body(cases: pd.DataFrame) -> pd.DataFrame:
        raise AssertionError("the model must not be called")

    decisions = _decisions().assign(outcome=["grant"] * 7 + ["error"])
    rev = review(_spec({"model": {"target": caseworker_model(body)}}), _cases(), decisions)
    assert rev.info["referred"] == 0 and rev.info["errors"] == 0 and rev.info["resolved"] == 0
    assert sys.modules["insyn_test_caseworker_model"].seen == []


def test_a_caseworker_model_may_answer_in_any_order_and_the_cases_may_come_in_another(caseworker_model) -> None:
    """Answers are matched by case id, not by position: a reversed answer over a shuffled case file."""
    def body(cases: pd.DataFrame) -> pd.DataFrame:
        out = {"c0": ("grant", 750.0), "c2": ("deny", np.nan), "c6": ("partial", 300.0)}
        rows = [(cid, *out[cid]) for cid in cases["case_id"] if cid in out]
        return pd.DataFrame(rows[::-1], columns=["case_id", "outcome", "amount"])

    target = caseworker_model(body)
    shuffled = _cases().iloc[[5, 2, 7, 0, 3, 6, 1, 4]].reset_index(drop=True)
    rev = review(_spec({"model": {"target": target}}), shuffled, _decisions())
    seen = sys.modules["insyn_test_caseworker_model"].seen
    assert seen[0]["case_id"].tolist() == ["c0", "c2", "c4", "c6"]  # in the decisions' order
    f = rev.frame
    assert f["final_outcome"].tolist() == ["grant", "grant", "deny", "grant", "refer", "deny", "partial", "error"]
    np.testing.assert_array_equal(f["final_amount"].to_numpy(),
                                  [750.0, 100.0, 0.0, 200.0, np.nan, 0.0, 300.0, np.nan])
    assert rev.info["resolved"] == 3 and rev.info["unresolved"] == 1 and rev.info["errors"] == 1
