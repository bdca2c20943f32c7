"""A caseworker model: a classifier trained on historical decisions inherits their bias.

A municipality that wants to automate more than an RPA rule set can decide
often trains a model on what its caseworkers decided before: "predict
whether this application would be refused". Caseworkers use discretion, and
discretion is where bias lives. If, in the historical record, eligible
applicants born outside the EU were refused more often (asked for more
documents, judged not to follow the plan, distrusted), a model trained on that
record learns to refuse them too. Removing birth region from its inputs does
not help: interpreter need, years in Sweden and paper applications carry much
of the same information.

This module makes that mechanism reproducible:

* :func:`historical_decisions` draws a seeded synthetic population
  (:func:`audit.synth.generate`), decides it under the law
  (:class:`audit.norms.ReferenceEngine`) and then lets a simulated caseworker
  refuse a share ``discretion_bias`` of the *eligible* applicants born
  outside the EU, plus a small symmetric error rate for everyone;
* :func:`train` fits a scikit-learn pipeline on the caseworker's decisions,
  with the sensitive features left out of its inputs;
* :func:`build_model` does both and saves the pipeline with joblib, for
  ``engine: {kind: sklearn, path: ..., labels: {1: deny, 0: grant}}``;
* :func:`review_referred` is the caseworker as a *review* model
  (``review: {model: {target: "engines.caseworker_model:review_referred"}}``):
  it decides the applications an engine routed to a caseworker, under the
  law (:class:`audit.norms.ReferenceEngine`), refusing a share
  ``discretion_bias`` of the eligible applicants of ``biased_group`` anyway
  (default 0: a caseworker who follows the law). The demo uses it so that
  its headline figures describe final decisions.

Run ``python examples/engines/caseworker_model.py model.joblib`` to write a
model (model files are built on demand, never committed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "CATEGORICAL",
    "FEATURES",
    "NUMERIC",
    "build_model",
    "historical_decisions",
    "review_referred",
    "train",
]

NUMERIC: tuple[str, ...] = (
    "applicant_age", "years_in_sweden", "adults", "other_adults", "children_preschool_lunch",
    "income_wages", "income_sickness", "income_unemployment", "income_parental", "income_pension",
    "income_housing_allowance", "income_child_allowance", "income_maintenance", "income_student",
    "income_other", "months_on_assistance", "rent", "electricity", "home_insurance", "work_travel",
    "union_fee", "akassa_fee", "medical", "childcare", "assets",
    "interpreter", "able_to_work", "registered_af", "follows_plan", "household_changed",
)
"""Numeric and true/false inputs of the model (true/false are read as 1/0)."""
CATEGORICAL: tuple[str, ...] = ("application_type", "channel")
"""Categorical inputs, one-hot encoded."""
FEATURES: tuple[str, ...] = NUMERIC + CATEGORICAL
"""Every input of the model. ``sex`` and ``birth_region`` are deliberately absent."""

_POPULATION = "datasets/sweden/population-2026.yaml"
_NOISE = 0.03  # share of decisions a caseworker gets wrong either way, whoever applies


def historical_decisions(
    n: int,
    *,
    seed: int,
    discretion_bias: float = 0.25,
    biased_group: str = "outside_eu",
) -> pd.DataFrame:
    """Simulate a record of caseworker decisions with a discretion bias.

    Parameters
    ----------
    n : int
        Number of historical applications.
    seed : int
        Seed of the population and of the caseworker's choices.
    discretion_bias : float, default 0.25
        Share of the eligible applicants of ``biased_group`` whom the
        caseworker refuses anyway.
    biased_group : str, default "outside_eu"
        The ``birth_region`` the caseworker is biased against.

    Returns
    -------
    pandas.DataFrame
        The case frame plus ``law_denied`` (the law's decision is ``deny``)
        and ``caseworker_denied`` (1 when the caseworker refused, else 0).
    """
    from audit.norms import ReferenceEngine
    from audit.spec import resolve_path
    from audit.synth import generate

    if not 0 <= discretion_bias <= 1:
        raise ValueError(f"The 'discretion_bias' option must be a number between 0 and 1. Got {discretion_bias!r}.")
    cases = generate(resolve_path(_POPULATION, None), n=n, seed=seed)
    law = ReferenceEngine().decide(cases)
    if (law["error"] != "").any():
        bad = law.loc[law["error"] != "", ["case_id", "error"]].iloc[0]
        raise ValueError(f"the reference engine could not decide case {bad['case_id']}: {bad['error']}")
    law_denied = (law["outcome"] == "deny").to_numpy()
    rng = np.random.default_rng([seed, 1])
    u_bias, u_noise = rng.random(n), rng.random(n)
    in_group = (cases["birth_region"] == biased_group).to_numpy()
    denied = law_denied.copy()
    denied |= ~law_denied & in_group & (u_bias < discretion_bias)  # discretion: eligible, refused anyway
    flip = u_noise < _NOISE
    denied = np.where(flip, ~denied, denied)
    return cases.assign(law_denied=law_denied, caseworker_denied=denied.astype(np.int64))


def train(decisions: pd.DataFrame, *, seed: int = 0):  # -> sklearn.pipeline.Pipeline
    """Fit a pipeline that predicts ``caseworker_denied`` from :data:`FEATURES`.

    Parameters
    ----------
    decisions : pandas.DataFrame
        Output of :func:`historical_decisions`.
    seed : int, default 0
        Seed of the gradient-boosting model (trained on one thread).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Fitted on a frame, so ``feature_names_in_`` lists its inputs;
        classes ``[0, 1]`` (1 = refused).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder
    from threadpoolctl import threadpool_limits

    prep = ColumnTransformer(
        [
            ("numeric", "passthrough", list(NUMERIC)),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(CATEGORICAL)),
        ]
    )
    model = Pipeline(
        [("prepare", prep), ("classify", HistGradientBoostingClassifier(max_iter=200, random_state=seed))]
    )
    X = decisions[list(FEATURES)].astype({c: "float64" for c in NUMERIC})
    # one OpenMP thread: on this little data more threads only add overhead, and on a busy
    # machine spinning threads can make training twenty times slower
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(X, decisions["caseworker_denied"].to_numpy())
    return model


def build_model(
    path: str | Path, *, n: int = 20_000, seed: int = 0, discretion_bias: float = 0.25
) -> Path:
    """Simulate a decision record, train the model on it and save it with joblib.

    Parameters
    ----------
    path : str or Path
        Where to write the model (``.joblib``).
    n, seed, discretion_bias
        See :func:`historical_decisions`.

    Returns
    -------
    Path
        The file written.
    """
    import joblib

    model = train(historical_decisions(n, seed=seed, discretion_bias=discretion_bias), seed=seed)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out)
    return out


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the caseworker model and save it with joblib.")
    parser.add_argument("path", help="where to write the model, e.g. caseworker.joblib")
    parser.add_argument("--n", type=int, default=20_000, help="historical decisions to simulate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--discretion-bias", type=float, default=0.25)
    args = parser.parse_args(argv)
    out = build_model(args.path, n=args.n, seed=args.seed, discretion_bias=args.discretion_bias)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())


def review_referred(
    cases: pd.DataFrame,
    *,
    discretion_bias: float = 0.0,
    biased_group: str = "outside_eu",
    seed: int = 0,
) -> pd.DataFrame:
    """Decide referred applications as a caseworker: the law, plus optional discretion.

    Parameters
    ----------
    cases : pandas.DataFrame
        The referred cases (the whole case file, sensitive columns included:
        a caseworker sees the applicant).
    discretion_bias : float, default 0.0
        Share of the eligible applicants of ``biased_group`` whom the
        caseworker refuses anyway; 0 is a caseworker who follows the law.
    biased_group : str, default "outside_eu"
        The ``birth_region`` the caseworker is biased against.
    seed : int, default 0
        Seed of the caseworker's choices; each case's draw depends on the
        seed and its ``case_id`` only, so the same case gets the same
        decision whatever else was referred.

    Returns
    -------
    pandas.DataFrame
        ``case_id``, ``outcome`` (``grant``, ``partial`` or ``deny``),
        ``amount`` and ``reasons`` (the law's, plus ``CASEWORKER_DISCRETION``
        where the caseworker refused an eligible applicant).
    """
    import hashlib

    from audit.norms import ReferenceEngine

    if not 0 <= discretion_bias <= 1:
        raise ValueError(f"The 'discretion_bias' option must be a number between 0 and 1. Got {discretion_bias!r}.")
    law = ReferenceEngine().decide(cases)
    # the columns' own arrays (.array), not a Python string per case (.to_numpy())
    out = pd.DataFrame({"case_id": cases["case_id"].astype("str").array,
                        "outcome": law["outcome"].astype("str").array,
                        "amount": law["amount"].astype("float64").to_numpy(),
                        "reasons": law["reasons"].astype("str").array})
    if discretion_bias > 0:
        u = np.array([int.from_bytes(hashlib.sha256(f"{seed}|{c}".encode()).digest()[:8], "big") / 2.0**64
                      for c in out["case_id"]])
        refused = ((out["outcome"] != "deny").to_numpy() & (cases["birth_region"] == biased_group).to_numpy()
                   & (u < discretion_bias))
        out.loc[refused, "outcome"] = "deny"
        out.loc[refused, "amount"] = 0.0
        out.loc[refused, "reasons"] = out.loc[refused, "reasons"].map(
            lambda r: f"{r};CASEWORKER_DISCRETION" if r else "CASEWORKER_DISCRETION")
    return out
