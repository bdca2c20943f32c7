"""A conformance suite for engine authors: does my engine keep the decision contract?

Before an engine is audited for bias, it has to be auditable at all. An
engine that answers for only some cases, changes its mind between two calls
on the same input, depends on the order of the rows or on how they were
batched, or quietly reads the applicant's sex or birth region although the
audit withheld them, makes every disparity measured on it unreliable.

:func:`check_engine` runs an engine on a small seeded synthetic population
and checks, in turn, that it:

``protocol``
    has a non-empty ``name`` and ``version`` and a ``decide`` method;
``contract``
    answers every case in the decision contract (one row per case, known
    outcome labels, amounts that are numbers >= 0, no engine errors);
``deterministic``
    gives the same answer twice for the same input;
``empty_frame``
    returns an empty decision frame for an empty input;
``row_order``
    decides each case the same whatever the order of the rows;
``batch_size``
    decides each case the same whether it comes in one batch or in three;
``withheld_columns``
    never reads the withheld sensitive columns: its decisions are the same
    whether those columns are absent, present with their true values, or
    present with shuffled values (and the engine does not list them in
    ``sees``).

Use it in an engine's own test suite::

    from audit.testing import check_engine
    check_engine(MyEngine()).raise_for_failures()
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from audit._columns import ALLOWED_VALUES, STATUS_ERROR
from audit._paths import resolve_path
from audit.engine import Engine, run_engine
from audit.exceptions import InsynError
from audit.synth import generate

__all__ = ["ConformanceCheck", "ConformanceReport", "check_engine"]

_DEFAULT_LABELS = ("grant", "partial", "deny", "refer")
_DEFAULT_POPULATION = "datasets/sweden/population-2026.yaml"
_COMPARED = ("outcome", "amount", "score", "reasons", "status", "error_reason")
_CHECK_NAMES = ("protocol", "contract", "deterministic", "empty_frame", "row_order", "batch_size", "withheld_columns")


@dataclass(frozen=True)
class ConformanceCheck:
    """The result of one conformance check.

    Attributes
    ----------
    name : str
        The check (see the module docstring).
    passed : bool
        True when the engine passed it.
    message : str
        What was found; for a failure, what was expected and what was given.
    """

    name: str
    passed: bool
    message: str


@dataclass(frozen=True)
class ConformanceReport:
    """The results of :func:`check_engine`, one :class:`ConformanceCheck` per check.

    Iterating yields the checks in order; ``report["row_order"]`` returns one.
    """

    engine_name: str
    engine_version: str
    n_cases: int
    checks: tuple[ConformanceCheck, ...]

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[ConformanceCheck, ...]:
        """The checks that failed."""
        return tuple(c for c in self.checks if not c.passed)

    def __iter__(self) -> Iterator[ConformanceCheck]:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)

    def __getitem__(self, name: str) -> ConformanceCheck:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check named {name!r}; checks: {', '.join(c.name for c in self.checks)}")

    def to_frame(self) -> pd.DataFrame:
        """Return the checks as a frame with columns ``check``, ``passed``, ``message``."""
        return pd.DataFrame(
            {
                "check": pd.Series([c.name for c in self.checks], dtype="str"),
                "passed": np.array([c.passed for c in self.checks], dtype=bool),
                "message": pd.Series([c.message for c in self.checks], dtype="str"),
            }
        )

    def __str__(self) -> str:
        head = f"Engine {self.engine_name!r} (version {self.engine_version}) on {self.n_cases} cases:"
        lines = [f"  [{'pass' if c.passed else 'FAIL'}] {c.name}: {c.message}" for c in self.checks]
        return "\n".join([head, *lines])

    def raise_for_failures(self) -> None:
        """Raise AssertionError listing every failed check; do nothing when all passed."""
        if self.passed:
            return
        lines = [f"- {c.name}: {c.message}" for c in self.failures]
        raise AssertionError(
            f"Engine {self.engine_name!r} failed {len(lines)} of {len(self.checks)} conformance checks:\n"
            + "\n".join(lines)
        )


def _default_cases(n: int, seed: int) -> pd.DataFrame:
    return generate(resolve_path(_DEFAULT_POPULATION, None), n=n, seed=seed)


def _by_case(decisions: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in _COMPARED if c in decisions.columns]
    return decisions.set_index("case_id")[cols]


def _differences(a: pd.DataFrame, b: pd.DataFrame) -> tuple[int, str]:
    """Count cases whose decisions differ (numbers equal within 1e-9, NaN equals NaN)."""
    x, y = _by_case(a), _by_case(b).reindex(_by_case(a).index)
    differ = np.zeros(len(x), dtype=bool)
    for col in x.columns:
        if col in ("amount", "score"):
            u, v = x[col].to_numpy(dtype=float), y[col].to_numpy(dtype=float)
            same = (np.isnan(u) & np.isnan(v)) | np.isclose(u, v, rtol=0, atol=1e-9)
        else:
            u, v = x[col].astype("str").fillna("\0"), y[col].astype("str").fillna("\0")
            same = (u == v).to_numpy()
        differ |= ~same
    if not differ.any():
        return 0, ""
    pos = int(np.flatnonzero(differ)[0])
    cid = x.index[pos]
    first = f"{x['outcome'].iloc[pos]} {x['amount'].iloc[pos]:g}"
    second = f"{y['outcome'].iloc[pos]} {y['amount'].iloc[pos]:g}"
    return int(differ.sum()), f"e.g. case {cid}: {first} -> {second}"


def _run(engine: Engine, cases: pd.DataFrame, labels: Sequence[str], **kw: Any) -> pd.DataFrame:
    return run_engine(engine, cases, labels=labels, error_budget=1.0, **kw).decisions


def _poisoned(
    cases: pd.DataFrame, base: pd.DataFrame, withheld: Sequence[str], rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (base plus true withheld values, base plus shuffled withheld values)."""
    n = len(base)
    true_cols: dict[str, Any] = {}
    for col in withheld:
        if col in cases.columns:
            true_cols[col] = cases[col].to_numpy()
        else:
            values = ALLOWED_VALUES.get(col, ("a", "b"))
            true_cols[col] = np.asarray([values[i % len(values)] for i in range(n)], dtype=object)
    with_true = base.assign(**{c: pd.Series(v, index=base.index) for c, v in true_cols.items()})
    shuffled: dict[str, Any] = {}
    for col, values in true_cols.items():
        choices = ALLOWED_VALUES.get(col) or tuple(pd.unique(pd.Series(values)).tolist())
        # move every case to another group where there is one, so that a column that is read shows it
        idx = pd.Index(choices).get_indexer(pd.Series(values).astype(object))
        shift = rng.integers(1, max(len(choices), 2), size=n)
        new = np.asarray(choices, dtype=object)[(np.where(idx < 0, 0, idx) + shift) % len(choices)]
        shuffled[col] = new
    with_shuffled = base.assign(**{c: pd.Series(v, index=base.index) for c, v in shuffled.items()})
    return with_true, with_shuffled


@dataclass(frozen=True)
class _Context:
    """What every check after ``contract`` needs."""

    engine: Engine
    cases: pd.DataFrame
    base: pd.DataFrame
    first: pd.DataFrame
    labels: tuple[str, ...]
    withheld: tuple[str, ...]
    rng: np.random.Generator


def _check_deterministic(c: _Context) -> tuple[bool, str]:
    k, example = _differences(c.first, _run(c.engine, c.base, c.labels))
    if k == 0:
        return True, "the same input gave the same decisions"
    return False, f"{k} of {len(c.base)} cases were decided differently on a second call ({example})"


def _check_empty_frame(c: _Context) -> tuple[bool, str]:
    try:
        empty = c.engine.decide(c.base.iloc[:0])
    except Exception as exc:
        return False, f"decide() raised {type(exc).__name__}: {exc} for an empty frame"
    if not isinstance(empty, pd.DataFrame):
        return False, f"decide() returned a {type(empty).__name__} for an empty frame; expected a DataFrame"
    if len(empty) or not {"case_id", "outcome"} <= set(empty.columns):
        shown = ", ".join(map(str, empty.columns)) or "none"
        return False, f"expected 0 rows with case_id and outcome columns. Got {len(empty)} row(s), columns {shown}"
    return True, "an empty frame gave an empty decision frame"


def _check_row_order(c: _Context) -> tuple[bool, str]:
    perm = c.rng.permutation(len(c.base))
    k, example = _differences(c.first, _run(c.engine, c.base.iloc[perm].reset_index(drop=True), c.labels))
    if k == 0:
        return True, "decisions do not depend on the order of the rows"
    return False, f"{k} of {len(c.base)} cases were decided differently after shuffling the rows ({example})"


def _check_batch_size(c: _Context) -> tuple[bool, str]:
    # three separate calls, so that engines that batch themselves (http) are covered too
    size = max(1, math.ceil(len(c.base) / 3))
    parts = [_run(c.engine, c.base.iloc[a:a + size], c.labels) for a in range(0, len(c.base), size)]
    k, example = _differences(c.first, pd.concat(parts, ignore_index=True) if parts else c.first)
    if k == 0:
        return True, f"one batch and batches of {size} give the same decisions"
    return False, f"{k} of {len(c.base)} cases were decided differently in batches of {size} ({example})"


def _check_withheld(c: _Context) -> tuple[bool, str]:
    sees = getattr(c.engine, "sees", None)
    declared = [col for col in c.withheld if sees is not None and col in sees]
    with_true, with_shuffled = _poisoned(c.cases, c.base, c.withheld, c.rng)
    k_true, ex_true = _differences(c.first, _run(c.engine, with_true, c.labels))
    k_shuf, ex_shuf = _differences(c.first, _run(c.engine, with_shuffled, c.labels))
    shown, n = ", ".join(c.withheld), len(c.base)
    problems = []
    if declared:
        problems.append(f"the engine declares that it reads {', '.join(declared)} (sees)")
    if k_true:
        problems.append(f"{k_true} of {n} decisions change when {shown} are present ({ex_true})")
    if k_shuf:
        problems.append(f"{k_shuf} of {n} decisions change when {shown} are shuffled ({ex_shuf})")
    if problems:
        return False, "; ".join(problems)
    return True, f"decisions are the same without, with and with shuffled {shown}"


def check_engine(
    engine: Engine,
    cases: pd.DataFrame | None = None,
    *,
    labels: Sequence[str] = _DEFAULT_LABELS,
    withheld: Sequence[str] = ("sex", "birth_region"),
    n: int = 200,
    seed: int = 0,
) -> ConformanceReport:
    """Run the conformance checks on an engine.

    Parameters
    ----------
    engine : Engine
        The engine to check.
    cases : pandas.DataFrame, optional
        Cases to decide (with ``case_id``). Default: ``n`` cases of the
        shipped synthetic population ``datasets/sweden/population-2026.yaml``
        with seed ``seed``.
    labels : sequence of str, default ("grant", "partial", "deny", "refer")
        The outcome labels the engine may use.
    withheld : sequence of str, default ("sex", "birth_region")
        Sensitive columns the engine must not read. They are removed from
        the input of every check except ``withheld_columns``.
    n : int, default 200
        Number of default cases.
    seed : int, default 0
        Seed of the default cases and of the shuffles.

    Returns
    -------
    ConformanceReport
        One result per check; call :meth:`ConformanceReport.raise_for_failures`
        in a test.
    """
    if cases is None:
        cases = _default_cases(n, seed)
    labels = tuple(labels)
    rng = np.random.default_rng(seed)
    base = cases.drop(columns=[c for c in withheld if c in cases.columns]).reset_index(drop=True)
    results: list[ConformanceCheck] = []

    def add(name: str, passed: bool, message: str) -> None:
        results.append(ConformanceCheck(name, bool(passed), message))

    name = getattr(engine, "name", None)
    version = getattr(engine, "version", None)
    problems = []
    if not isinstance(name, str) or not name:
        problems.append(f"name must be a non-empty string. Got {name!r}")
    if not isinstance(version, str) or not version:
        problems.append(f"version must be a non-empty string. Got {version!r}")
    if not callable(getattr(engine, "decide", None)):
        problems.append("decide(cases) is missing")
    add("protocol", not problems, "; ".join(problems) or "name, version and decide(cases) are present")
    shown_name, shown_version = str(name), str(version)
    if problems:
        for check in _CHECK_NAMES[1:]:
            add(check, False, "not run: the engine does not follow the protocol")
        return ConformanceReport(shown_name, shown_version, len(base), tuple(results))

    # contract
    try:
        erun = run_engine(engine, base, labels=labels, error_budget=1.0)
    except InsynError as exc:
        add("contract", False, f"run_engine stopped: {exc}")
        for check in _CHECK_NAMES[2:]:
            add(check, False, "not run: the engine could not decide the cases")
        return ConformanceReport(shown_name, shown_version, len(base), tuple(results))
    first = erun.decisions
    errs = first.loc[first["status"] == STATUS_ERROR, ["case_id", "error_reason"]]
    if len(errs) or len(erun.extra):
        shown = "; ".join(f"{cid}: {why}" for cid, why in errs.head(5).itertuples(index=False))
        extra = f"; {len(erun.extra)} extra row(s) for unknown case ids" if len(erun.extra) else ""
        add("contract", False, f"{len(errs)} of {len(base)} cases broke the contract{extra}. First: {shown or '-'}")
    else:
        add("contract", True, f"all {len(base)} cases answered in the contract")

    context = _Context(engine, cases.reset_index(drop=True), base, first, labels, tuple(withheld), rng)
    for check, func in (
        ("deterministic", _check_deterministic),
        ("empty_frame", _check_empty_frame),
        ("row_order", _check_row_order),
        ("batch_size", _check_batch_size),
        ("withheld_columns", _check_withheld),
    ):
        try:
            passed, message = func(context)
        except InsynError as exc:  # e.g. an engine that raises DataError on shuffled input
            passed, message = False, f"run_engine stopped: {exc}"
        add(check, passed, message)
    return ConformanceReport(shown_name, shown_version, len(base), tuple(results))
