"""scikit-learn engines: a trained estimator or pipeline, loaded from a joblib file.

Decision support in social services increasingly means a trained model: one
that scores the risk that an application is wrong, or that predicts what a
caseworker would decide. Such a model learns from historical decisions, and
with them it learns whatever discretion, habit or bias those decisions
carried, even when the sensitive attributes themselves are not among its
inputs (interpreter need, years in Sweden or a paper application carry much
of the same information as birth region).

The ``sklearn`` adapter wraps a fitted estimator or pipeline. It predicts
with ``predict``, or with ``predict_proba`` and a threshold, and maps the
model's classes to outcome labels (``{1: deny, 0: grant}``). A classifier
decides the outcome only, so ``amount`` is NaN.

.. warning::
   Loading a joblib or pickle file runs code stored in that file. Load only
   models from a source you trust; :meth:`SklearnEngine.from_file` warns
   every time.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit._paths import display_path, sha256_file
from audit.engine._protocol import short_repr
from audit.exceptions import DataError, SpecError

__all__ = ["SklearnEngine", "UnsafeModelWarning"]


class UnsafeModelWarning(UserWarning):
    """Loading a model file unpickles it, which runs code stored in the file."""


class SklearnEngine:
    """A fitted scikit-learn estimator or pipeline as a decision engine.

    Parameters
    ----------
    model : estimator
        A fitted classifier (or pipeline ending in one).
    labels : mapping, optional
        Model class -> outcome label, e.g. ``{1: "deny", 0: "grant"}``. Keys
        are matched by their text form, so ``1`` and ``"1"`` are the same
        class. Default: the predicted classes are the labels themselves.
    threshold : float, default 0.5
        With ``predict_proba`` on a binary model: the probability of the
        ``score`` class at or above which that class is predicted.
    method : {"predict", "predict_proba"}, optional
        Default: ``predict_proba`` for a binary model that has it, else
        ``predict``.
    score : str, optional
        The class whose probability is reported as ``score`` and compared
        with ``threshold`` (default: the second of the two classes, as
        scikit-learn orders them).
    features : sequence of str, optional
        Columns passed to the model (default: ``model.feature_names_in_``;
        without it every column but ``case_id``).
    name, version : str, optional
        Shown in reports.
    definition_hash : str, optional
        SHA-256 of the model file (set by :meth:`from_file`).

    Raises
    ------
    SpecError
        When the model cannot predict, a class has no label, or the options
        do not fit the model.
    """

    def __init__(
        self,
        model: Any,
        *,
        labels: Mapping[Any, str] | None = None,
        threshold: float = 0.5,
        method: str | None = None,
        score: str | None = None,
        features: Sequence[str] | None = None,
        name: str | None = None,
        version: str | None = None,
        definition_hash: str | None = None,
    ) -> None:
        if not hasattr(model, "predict"):
            raise SpecError(f"The sklearn engine needs a fitted estimator with predict(). Got {short_repr(model)}.")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise SpecError(f"engine.threshold must be a number between 0 and 1. Got {short_repr(threshold)}.")
        classes = getattr(model, "classes_", None)
        if classes is None:
            raise SpecError(
                f"The sklearn engine needs a fitted classifier (with classes_). Got {type(model).__name__}."
            )
        self._classes = np.asarray(classes)
        self._class_text = [str(c) for c in self._classes]
        has_proba = hasattr(model, "predict_proba")
        binary = len(self._classes) == 2
        if method is None:
            method = "predict_proba" if has_proba and binary else "predict"
        if method not in {"predict", "predict_proba"}:
            raise SpecError(f"engine.method must be one of predict, predict_proba. Got {short_repr(method)}.")
        if method == "predict_proba" and not has_proba:
            raise SpecError(f"engine.method is predict_proba, but {type(model).__name__} has no predict_proba().")
        self._labels: dict[str, str] | None = None
        if labels is not None:
            self._labels = {str(k): str(v) for k, v in labels.items()}
            missing = [c for c in self._class_text if c not in self._labels]
            if missing:
                raise SpecError(
                    f"engine.labels has no outcome for model class {missing[0]!r}. "
                    f"Model classes: {', '.join(self._class_text)}; labels given for: {', '.join(self._labels)}."
                )
        if score is None:
            self._score_index = len(self._classes) - 1 if binary else None
        else:
            if str(score) not in self._class_text:
                raise SpecError(
                    f"engine.score must name a model class ({', '.join(self._class_text)}). Got {short_repr(score)}."
                )
            self._score_index = self._class_text.index(str(score))
        if features is None:
            names = getattr(model, "feature_names_in_", None)
            features = [str(c) for c in names] if names is not None else None
        self._features: list[str] | None = list(features) if features is not None else None
        self.model = model
        self.method: str = method
        self.threshold: float = float(threshold)
        self.name: str = name or type(model).__name__
        self.definition_hash: str | None = definition_hash
        self.version: str = version or (f"sha256:{definition_hash[:12]}" if definition_hash else "unversioned")
        self.sees: tuple[str, ...] | None = tuple(self._features) if self._features is not None else None

    @classmethod
    def from_file(cls, path: str | Path, **options: Any) -> SklearnEngine:
        """Load a model saved with ``joblib.dump`` and wrap it.

        Emits :class:`UnsafeModelWarning`: unpickling runs code from the file.

        Parameters
        ----------
        path : str or Path
            The joblib file.
        **options
            The keyword options of :class:`SklearnEngine`.
        """
        try:
            import joblib
            import sklearn  # noqa: F401  (unpickling a model needs scikit-learn)
        except ImportError as exc:
            raise SpecError(
                f"engine.kind sklearn needs scikit-learn and joblib ({exc.name} is not installed). "
                "Install them with: pip install 'insyn[sklearn]'."
            ) from None

        p = Path(path)
        shown = display_path(p)
        if not p.is_file():
            raise SpecError(f"{shown}: no such model file. Expected a fitted estimator saved with joblib.dump.")
        warnings.warn(
            f"Loading {shown} unpickles it, which runs code stored in the file. Load only models you trust.",
            UnsafeModelWarning,
            stacklevel=2,
        )
        digest = sha256_file(p)
        try:
            model = joblib.load(p)
        except Exception as exc:
            raise SpecError(f"{shown}: cannot load the model: {type(exc).__name__}: {exc}.") from None
        options.setdefault("name", p.stem)
        return cls(model, definition_hash=digest, **options)

    def __repr__(self) -> str:
        return f"SklearnEngine(name={self.name!r}, method={self.method!r}, threshold={self.threshold})"

    def _inputs(self, cases: pd.DataFrame) -> pd.DataFrame:
        if self._features is None:
            return cases.drop(columns=["case_id"], errors="ignore")
        missing = [c for c in self._features if c not in cases.columns]
        if missing:
            raise DataError(
                f"The model {self.name!r} needs the column(s) {', '.join(missing)}, which the cases lack. "
                "Add them to engine.features in the spec."
            )
        return cases[self._features]

    def decide(self, cases: pd.DataFrame) -> pd.DataFrame:
        """Predict every case and map the classes to outcome labels."""
        n = len(cases)
        ids = cases["case_id"].to_numpy() if "case_id" in cases.columns else np.arange(n).astype(str)
        score = np.full(n, np.nan)
        if n == 0:
            predicted = np.array([], dtype=object)
        else:
            X = self._inputs(cases)
            if self.method == "predict":
                predicted = np.asarray(self.model.predict(X))
                if self._score_index is not None and hasattr(self.model, "predict_proba"):
                    score = np.asarray(self.model.predict_proba(X))[:, self._score_index].astype(float)
            else:
                proba = np.asarray(self.model.predict_proba(X), dtype=float)
                if self._score_index is not None and len(self._classes) == 2:
                    p = proba[:, self._score_index]
                    other = 1 - self._score_index
                    predicted = np.where(p >= self.threshold, self._classes[self._score_index], self._classes[other])
                    score = p
                else:  # several classes: the most probable one
                    best = proba.argmax(axis=1)
                    predicted = self._classes[best]
                    score = proba[np.arange(n), best] if self._score_index is None else proba[:, self._score_index]
        text = pd.Series(predicted, dtype=object).map(str)
        outcome = text.map(self._labels) if self._labels is not None else text
        # a class without a label stays visible as its text so that the contract check can name it
        outcome = outcome.where(outcome.notna(), text)
        return pd.DataFrame(
            {
                "case_id": ids,
                "outcome": pd.array(outcome.to_numpy(dtype=object), dtype="str"),
                "amount": np.full(n, np.nan),
                "score": score,
                "reasons": pd.array([""] * n, dtype="str"),
            }
        )
