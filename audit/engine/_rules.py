"""Declarative rule sets: the municipal decision robot as a readable YAML file.

The RPA robots that decide Swedish social assistance (Trelleborg's "Ernst",
Nacka's "Yasemin" with about 200 rules) are, underneath the screen-scraping,
ordered rule lists: *if this is a new application, route it to a caseworker;
if the household changed, route it; otherwise pay the norm plus the housing
cost up to the municipal cap, minus income*. Research on these robots found
that the rules follow municipal guidelines more than the law, and that nobody
outside could read them. A rule set in this format can be read, diffed,
versioned and audited.

A rule file::

    name: municipal-rpa
    version: "2026.1"
    norms:                        # optional: compute the need with audit.norms
      guideline: ../../datasets/sweden/guidelines/some-municipality.yaml
    parameters: {max_auto_amount: 15000}
    codes: {NEW_APPLICATION: first application, a caseworker meets the applicant}
    derive: {children: count_items(child_ages)}
    rules:
      - name: new_application
        when: application_type == "new"
        outcome: refer
        reasons: [NEW_APPLICATION]
        stop: false               # keep collecting routing codes
      - name: routed
        when: outcome == "refer"
        stop: true
      - name: grant
        outcome: grant
        amount: need_amount

Rules run in order on every case that no earlier rule has *stopped*. A rule
whose ``when`` holds (default ``true``) sets the outcome, the amount and the
score it names, appends its reason codes, and stops the case when ``stop`` is
true (the default for a rule that sets an outcome). Expressions use the safe
language of :mod:`audit.engine._expr` and may read the case columns, the
parameters, the derived values, the norm columns (``norm_amount``,
``costs_applied``, ``costs_allowed``, ``costs_capped``, ``capped_items``,
``income_counted``, ``need_amount``, when ``norms`` is given) and the case's
current ``outcome`` (``""`` while undecided) and ``amount``. A case that no
rule decides, or whose condition is unknown because a value is missing, is
returned with an ``error`` reason rather than guessed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from audit._schema import coded_strings, text_values
from audit._yaml import load_yaml
from audit._columns import ASSISTANCE_COLUMNS, COST_COLUMNS, INCOME_COLUMNS
from audit.engine._expr import (
    NUMBER,
    TEXT,
    ExprError,
    names_in,
    Node,
    Val,
    column_value,
    evaluate,
    literal_value,
    parse,
    scalar_kind,
)
from audit._paths import display_path, resolve_path, sha256_file, sha256_files
from audit.engine._protocol import short_repr
from audit.exceptions import SpecError
from audit.norms import MunicipalGuideline, compute_need

__all__ = ["RulesEngine"]

_TOP_KEYS = ("name", "version", "description", "norms", "parameters", "codes", "derive", "rules")
_RULE_KEYS = ("name", "description", "when", "outcome", "amount", "score", "reasons", "stop")
_NORMS_KEYS = ("guideline",)
_STATE_NAMES = ("outcome", "amount")
NEED_COLUMNS: tuple[str, ...] = (
    "norm_amount",
    "costs_applied",
    "costs_allowed",
    "costs_capped",
    "capped_items",
    "income_counted",
    "need_amount",
)
"""Columns that :func:`audit.norms.compute_need` adds and rules may read."""

_NEED_INPUTS: tuple[str, ...] = (  # what audit.norms.compute_need reads
    "benefit_month",
    "adults",
    "other_adults",
    "child_ages",
    "children_preschool_lunch",
    *INCOME_COLUMNS,
    "months_on_assistance",
    *COST_COLUMNS,
)
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class _Expr:
    text: str
    tree: Node
    where: str  # e.g. "rules[2] (new_application).when"


@dataclass(frozen=True)
class _Rule:
    index: int
    name: str
    when: _Expr | None
    outcome: str | None
    amount: _Expr | None
    score: _Expr | None
    reasons: tuple[str, ...]
    stop: bool


class _Loader:
    """Validate a parsed rule file and build its rules; every error names file and key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> SpecError:
        return SpecError(f"{self.source}: {where}{': ' if where else ''}{message}")

    def expr(self, raw: Any, where: str) -> _Expr:
        if isinstance(raw, bool):
            text = "true" if raw else "false"
        elif isinstance(raw, (int, float)):
            text = repr(raw)
        elif isinstance(raw, str):
            text = raw
        else:
            raise self.fail(where, f"must be an expression (text, a number or true/false). Got {short_repr(raw)}.")
        try:
            tree = parse(text)
        except ExprError as exc:
            raise self.fail(where, _located(exc, text)) from None
        return _Expr(text, tree, where)

    def keys(self, data: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(
                    f"{where}.{key}" if where else str(key),
                    f"is not a known key. Known keys{' of ' + where if where else ''}: {', '.join(allowed)}.",
                )


def _located(exc: ExprError, text: str) -> str:
    where = f" at position {exc.pos + 1}" if exc.pos is not None else ""
    return f"{exc.message}{where} in `{text}`."


@dataclass(frozen=True)
class _RuleSet:
    name: str
    version: str | None
    description: str
    parameters: dict[str, Any]
    codes: dict[str, str]
    derive: tuple[tuple[str, _Expr], ...]
    rules: tuple[_Rule, ...]
    guideline: Path | None
    norms: bool
    source: str


def _load_ruleset(data: Any, *, source: str, base_dir: Path | None, options: Mapping[str, Any] | None) -> _RuleSet:
    ld = _Loader(source)
    if not isinstance(data, Mapping):
        raise ld.fail("", f"a rule file must be a mapping with a 'rules' list. Got {type(data).__name__}.")
    ld.keys(data, _TOP_KEYS, "")
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not name.strip():
        raise ld.fail("name", f"must be a non-empty text. Got {short_repr(name)}.")
    version = data.get("version")
    if version is not None and not isinstance(version, (str, int, float)):
        raise ld.fail("version", f"must be a text such as '2026.1'. Got {short_repr(version)}.")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ld.fail("description", f"must be text. Got {short_repr(description)}.")

    guideline: Path | None = None
    norms = data.get("norms")
    if norms is not None:
        if not isinstance(norms, Mapping):
            raise ld.fail("norms", f"must be a mapping (e.g. {{guideline: path}}). Got {short_repr(norms)}.")
        ld.keys(norms, _NORMS_KEYS, "norms")
        g = norms.get("guideline")
        if g is not None:
            if not isinstance(g, str):
                raise ld.fail("norms.guideline", f"must be a path. Got {short_repr(g)}.")
            guideline = resolve_path(g, base_dir)
            if not guideline.is_file():
                raise ld.fail(
                    "norms.guideline", f"no such guideline file {g!r} (looked in {display_path(guideline)})."
                )
    reserved = set(_STATE_NAMES) | set(ASSISTANCE_COLUMNS) | (set(NEED_COLUMNS) if norms is not None else set())

    params = data.get("parameters", {}) or {}
    if not isinstance(params, Mapping):
        raise ld.fail("parameters", f"must be a mapping of names to values. Got {short_repr(params)}.")
    parameters: dict[str, Any] = {}
    for key, value in params.items():
        where = f"parameters.{key}"
        if not isinstance(key, str) or not _IDENT.match(key):
            raise ld.fail(where, "a parameter name must start with a letter and hold letters, digits and '_'.")
        if key in reserved:
            raise ld.fail(where, f"{key!r} is already the name of a case column, a norm column or the case state.")
        if scalar_kind(value) is None:
            raise ld.fail(where, f"must be a number, a text or true/false. Got {short_repr(value)}.")
        parameters[key] = value
    for key, value in (options or {}).items():
        where = f"options.{key}"
        if key not in parameters:
            known = ", ".join(parameters) or "none"
            raise ld.fail(where, f"is not a parameter of this rule set. Parameters: {known}.")
        if scalar_kind(value) != scalar_kind(parameters[key]):
            raise ld.fail(
                where,
                f"must be a {scalar_kind(parameters[key])} like the parameter it overrides "
                f"({parameters[key]!r}). Got {short_repr(value)}.",
            )
        parameters[key] = value

    codes_raw = data.get("codes", {}) or {}
    if not isinstance(codes_raw, Mapping):
        raise ld.fail("codes", f"must be a mapping of reason codes to descriptions. Got {short_repr(codes_raw)}.")
    codes: dict[str, str] = {}
    for key, text in codes_raw.items():
        if not isinstance(key, str) or not _CODE.match(key):
            raise ld.fail(f"codes.{key}", "a reason code must be UPPER_SNAKE_CASE, e.g. NEW_APPLICATION.")
        codes[key] = str(text)

    derive_raw = data.get("derive", {}) or {}
    if not isinstance(derive_raw, Mapping):
        raise ld.fail("derive", f"must be a mapping of names to expressions. Got {short_repr(derive_raw)}.")
    derive: list[tuple[str, _Expr]] = []
    for key, raw in derive_raw.items():
        where = f"derive.{key}"
        if not isinstance(key, str) or not _IDENT.match(key):
            raise ld.fail(where, "a derived name must start with a letter and hold letters, digits and '_'.")
        if key in reserved or key in parameters:
            raise ld.fail(
                where, f"{key!r} is already the name of a case column, a parameter, a norm column or the case state."
            )
        derive.append((key, ld.expr(raw, where)))

    rules_raw = data.get("rules")
    if not isinstance(rules_raw, list) or not rules_raw:
        raise ld.fail("rules", f"must be a non-empty list of rules. Got {short_repr(rules_raw)}.")
    rules: list[_Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(rules_raw):
        head = f"rules[{i}]"
        if not isinstance(raw, Mapping):
            raise ld.fail(head, f"must be a mapping with name, when and actions. Got {short_repr(raw)}.")
        rname = raw.get("name")
        if not isinstance(rname, str) or not _IDENT.match(rname):
            raise ld.fail(
                f"{head}.name", f"every rule needs a name of letters, digits and '_'. Got {short_repr(rname)}."
            )
        head = f"rules[{i}] ({rname})"
        ld.keys(raw, _RULE_KEYS, head)
        if rname in seen:
            raise ld.fail(f"{head}.name", f"the name {rname!r} is used by an earlier rule; names must be unique.")
        seen.add(rname)
        when = ld.expr(raw["when"], f"{head}.when") if "when" in raw else None
        outcome = raw.get("outcome")
        if outcome is not None and (not isinstance(outcome, str) or not outcome or outcome == "error"):
            raise ld.fail(
                f"{head}.outcome", f"must be an outcome label such as grant or refer. Got {short_repr(outcome)}."
            )
        amount = ld.expr(raw["amount"], f"{head}.amount") if "amount" in raw else None
        score = ld.expr(raw["score"], f"{head}.score") if "score" in raw else None
        reasons_raw = raw.get("reasons", [])
        if isinstance(reasons_raw, str):
            reasons_raw = [reasons_raw]
        if not isinstance(reasons_raw, list):
            raise ld.fail(f"{head}.reasons", f"must be a list of reason codes. Got {short_repr(reasons_raw)}.")
        for code in reasons_raw:
            if not isinstance(code, str) or not _CODE.match(code):
                raise ld.fail(f"{head}.reasons", f"a reason code must be UPPER_SNAKE_CASE. Got {short_repr(code)}.")
            if codes and code not in codes:
                raise ld.fail(f"{head}.reasons", f"{code!r} is not declared under codes. Declared: {', '.join(codes)}.")
        stop = raw.get("stop", outcome is not None)
        if not isinstance(stop, bool):
            raise ld.fail(f"{head}.stop", f"must be true or false. Got {short_repr(stop)}.")
        if when is None and not stop and outcome is None and amount is None and score is None and not reasons_raw:
            raise ld.fail(head, "does nothing: give it an outcome, an amount, a score, reasons or stop: true.")
        rules.append(_Rule(i, rname, when, outcome, amount, score, tuple(reasons_raw), stop))

    return _RuleSet(
        name=name.strip(),
        version=None if version is None else str(version),
        description=description,
        parameters=parameters,
        codes=codes,
        derive=tuple(derive),
        rules=tuple(rules),
        guideline=guideline,
        norms=norms is not None,
        source=source,
    )


class RulesEngine:
    """A decision engine defined by a declarative YAML rule set.

    Parameters
    ----------
    path : str or Path
        The rule file (see the module docstring for its format).
    options : mapping, optional
        Values that override the rule set's ``parameters`` (e.g. a
        different ``max_auto_amount``); an unknown name is an error.
    name : str, optional
        Shown in reports instead of the rule set's own ``name``.

    Raises
    ------
    SpecError
        When the file is missing, is not valid YAML or a rule is invalid. The
        message names the file, the rule and the expression.

    Examples
    --------
    >>> engine = RulesEngine("examples/engines/municipal-rpa.yaml")   # doctest: +SKIP
    >>> engine.decide(cases)[["case_id", "outcome", "amount", "reasons"]]  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, *, options: Mapping[str, Any] | None = None, name: str | None = None) -> None:
        p = Path(path)
        shown = display_path(p)
        if not p.is_file():
            raise SpecError(f"{shown}: no such rule file. Expected a YAML rule set.")
        try:
            data = load_yaml(p.read_text(encoding="utf-8"), source=shown)  # duplicate keys, alias bombs: SpecError
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise SpecError(f"{shown}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}.") from None
        except UnicodeDecodeError as exc:
            raise SpecError(f"{shown}: a rule file must be UTF-8 text. Got a bad byte at {exc.start}.") from None
        ruleset = _load_ruleset(data, source=shown, base_dir=p.parent, options=options)
        files = [p] + ([ruleset.guideline] if ruleset.guideline is not None else [])
        dhash = sha256_file(p) if len(files) == 1 else sha256_files(files)
        self._init(ruleset, dhash, name)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        source: str = "<rules>",
        base_dir: str | Path | None = None,
        options: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> RulesEngine:
        """Build a rule engine from an already parsed rule set (e.g. in a test or notebook).

        ``source`` names the rule set in error messages; ``base_dir`` is where
        a relative ``norms.guideline`` path resolves.
        """
        ruleset = _load_ruleset(data, source=source, base_dir=Path(base_dir) if base_dir else None, options=options)
        canonical = json.dumps(data, sort_keys=True, default=str).encode("utf-8")
        self = cls.__new__(cls)
        self._init(ruleset, hashlib.sha256(canonical).hexdigest(), name)
        return self

    def _init(self, ruleset: _RuleSet, dhash: str, name: str | None) -> None:
        self._rs = ruleset
        self.name: str = name or ruleset.name
        self.definition_hash: str = dhash
        self.version: str = ruleset.version or f"sha256:{dhash[:12]}"
        self._guideline: Any = None
        if ruleset.guideline is not None:
            try:
                self._guideline = MunicipalGuideline.from_yaml(ruleset.guideline)
            except SpecError:
                raise
            except Exception as exc:  # a guideline the norms module cannot read
                raise SpecError(
                    f"{ruleset.source}: norms.guideline: cannot read {display_path(ruleset.guideline)}: {exc}"
                ) from None
        used: set[str] = set()
        for _, e in ruleset.derive:
            used |= names_in(e.tree)
        for r in ruleset.rules:
            for e in (r.when, r.amount, r.score):
                if e is not None:
                    used |= names_in(e.tree)
        internal = set(ruleset.parameters) | {k for k, _ in ruleset.derive} | set(_STATE_NAMES)
        if self.uses_norms:
            internal |= set(NEED_COLUMNS)
        columns = sorted(used - internal)
        if self.uses_norms:
            columns = sorted(set(columns) | set(_NEED_INPUTS))
        self.sees: tuple[str, ...] = tuple(columns)

    @property
    def uses_norms(self) -> bool:
        """True when the rule set computes the need with :mod:`audit.norms` (it has ``norms:``)."""
        return self._rs.norms

    @property
    def parameters(self) -> dict[str, Any]:
        """The rule set's parameters after ``options`` were applied."""
        return dict(self._rs.parameters)

    @property
    def codes(self) -> dict[str, str]:
        """The reason codes the rule set declares, with their descriptions."""
        return dict(self._rs.codes)

    @property
    def rules(self) -> tuple[str, ...]:
        """The names of the rules, in order."""
        return tuple(r.name for r in self._rs.rules)

    def __repr__(self) -> str:
        return f"RulesEngine(name={self.name!r}, version={self.version!r}, rules={len(self._rs.rules)})"

    # ------------------------------------------------------------------ decide
    def decide(self, cases: pd.DataFrame) -> pd.DataFrame:
        """Apply the rules to every case.

        Returns
        -------
        pandas.DataFrame
            ``case_id``, ``outcome``, ``amount``, ``score``, ``reasons``,
            ``rule`` (the rule that set the outcome) and ``error`` (why a
            case could not be decided, ``""`` otherwise).

        Raises
        ------
        SpecError
            When an expression names something that is neither a column of
            ``cases``, a parameter, a derived value nor a norm column, or
            applies an operator to the wrong kind of value.
        """
        n = len(cases)
        rs = self._rs
        if n == 0:
            return pd.DataFrame(
                {
                    "case_id": pd.Series([], dtype="str"),
                    "outcome": pd.Series([], dtype="str"),
                    "amount": pd.Series([], dtype=float),
                    "score": pd.Series([], dtype=float),
                    "reasons": pd.Series([], dtype="str"),
                    "rule": pd.Series([], dtype="str"),
                    "error": pd.Series([], dtype="str"),
                }
            )
        errors = np.full(n, "", dtype=object)
        env = _Env(self, cases)
        if self.uses_norms and n:
            env.load_norms(errors)
        for key, e in rs.derive:
            env.derived[key] = env.eval(e)
        outcome = np.full(n, "", dtype=object)  # what a rule's expression reads as `outcome`
        amount = np.full(n, np.nan)
        score = np.full(n, np.nan)
        # the text columns as codes: no Python string per case (labels[0] is "": none yet)
        outcome_code = np.zeros(n, dtype=np.int64)
        outcome_labels: list[str | None] = [None]  # a case without an outcome has none
        rule_code = np.zeros(n, dtype=np.int64)
        rule_labels = [""]
        reason_code = np.zeros(n, dtype=np.int64)
        reason_labels = [""]
        reason_index: dict[tuple[int, str], int] = {}  # (reasons so far, reasons added) -> code
        done = errors != ""
        env.state = {"outcome": outcome, "amount": amount}
        for r in rs.rules:
            active = ~done
            if not active.any():
                break
            if r.when is not None:
                cond = env.eval(r.when)
                if cond.kind != "truth value":
                    raise SpecError(
                        f"{rs.source}: {r.when.where}: a condition must be true or false. "
                        f"Got a {cond.kind} from `{r.when.text}`."
                    )
                unknown = active & ~cond.known
                if unknown.any():
                    for pos in np.flatnonzero(unknown):
                        errors[pos] = (
                            f"rules[{r.index}] ({r.name}): the condition `{r.when.text}` is unknown because "
                            f"{env.missing_names(r.when, pos)} missing"
                        )
                    done |= unknown
                    active &= ~unknown
                hit = active & cond.known & cond.data
            else:
                hit = active
            if not hit.any():
                continue
            if r.amount is not None:
                val = env.eval(r.amount)
                _need_number(val, r.amount, rs.source)
                missing = hit & ~val.known
                for pos in np.flatnonzero(missing):
                    errors[pos] = (
                        f"rules[{r.index}] ({r.name}): the amount `{r.amount.text}` is unknown because "
                        f"{env.missing_names(r.amount, pos)} missing"
                    )
                done |= missing
                hit &= ~missing
                amount[hit] = val.data[hit]
            if r.score is not None:
                val = env.eval(r.score)
                _need_number(val, r.score, rs.source)
                score[hit] = val.data[hit]
            if r.outcome is not None:
                outcome[hit] = r.outcome
                outcome_code[hit] = len(outcome_labels) if r.outcome != "" else 0
                outcome_labels.append(r.outcome)
                rule_code[hit] = len(rule_labels)
                rule_labels.append(r.name)
            if r.reasons:
                add = ";".join(r.reasons)
                rows = np.flatnonzero(hit)
                before, where = np.unique(reason_code[rows], return_inverse=True)
                after = np.empty(len(before), dtype=np.int64)
                for i, code in enumerate(before.tolist()):
                    key = (code, add)
                    if key not in reason_index:
                        reason_index[key] = len(reason_labels)
                        reason_labels.append(add if code == 0 else reason_labels[code] + ";" + add)
                    after[i] = reason_index[key]
                reason_code[rows] = after[where.ravel()]
            if r.stop:
                done |= hit
        undecided = (outcome == "") & (errors == "")
        if undecided.any():
            errors[undecided] = "no rule decided this case (add a last rule without 'when' to catch every case)"
        failed = errors != ""
        outcome_code[failed] = 0
        amount[failed] = np.nan
        error_code = np.zeros(n, dtype=np.int64)
        error_code[failed] = np.arange(1, int(failed.sum()) + 1)
        return pd.DataFrame(
            {
                "case_id": text_values(cases["case_id"]) if "case_id" in cases.columns else np.arange(n).astype(str),
                "outcome": coded_strings(outcome_code, outcome_labels),
                "amount": amount,
                "score": score,
                "reasons": coded_strings(reason_code, reason_labels),
                "rule": coded_strings(rule_code, rule_labels),
                "error": coded_strings(error_code, ["", *errors[failed].tolist()]),
            }
        )


def _need_number(val: Val, e: _Expr, source: str) -> None:
    if val.kind != NUMBER:
        raise SpecError(f"{source}: {e.where}: must give a number. Got a {val.kind} from `{e.text}`.")


class _Env:
    """Names an expression can read, looked up lazily and converted once."""

    def __init__(self, engine: RulesEngine, cases: pd.DataFrame) -> None:
        self.engine = engine
        self.rs = engine._rs
        self.cases = cases
        self.n = len(cases)
        self.derived: dict[str, Val] = {}
        self.norms: dict[str, Val] = {}
        self.state: dict[str, np.ndarray] = {}
        self._columns: dict[str, Val] = {}

    def load_norms(self, errors: np.ndarray) -> None:
        need = compute_need(self.cases, guideline=self.engine._guideline)
        if len(need) != self.n:
            raise SpecError(
                f"{self.rs.source}: norms: audit.norms.compute_need returned {len(need)} rows for {self.n} cases."
            )
        need = need.reset_index(drop=True)
        for col in need.columns:
            if col in {"error", "case_id"}:
                continue
            self.norms[str(col)] = column_value(need[col], str(col))
        if "error" in need.columns:
            err = need["error"].astype("str").fillna("").to_numpy(dtype=object)
            bad = err != ""
            errors[bad] = ["norm calculation failed: " + str(e) for e in err[bad]]

    def lookup(self, name: str, pos: int) -> Val:
        if name in self.state:
            data = self.state[name]
            if name == "outcome":
                return Val(TEXT, data, np.ones(self.n, dtype=bool))
            return Val(NUMBER, data, ~np.isnan(data))
        if name in self.rs.parameters:
            return literal_value(self.rs.parameters[name], self.n)
        if name in self.derived:
            return self.derived[name]
        if name in self.norms:
            return self.norms[name]
        if name in self._columns:
            return self._columns[name]
        if name in self.cases.columns:
            val = column_value(self.cases[name], name)
            self._columns[name] = val
            return val
        if name in NEED_COLUMNS and not self.engine.uses_norms:
            raise ExprError(f"{name!r} is a norm column; add 'norms:' to the rule set to compute it", pos)
        raise ExprError(
            f"unknown name {name!r}: not a column of the cases, a parameter, a derived value or a norm column", pos
        )

    def eval(self, e: _Expr) -> Val:
        try:
            return evaluate(e.tree, self.lookup, self.n)
        except ExprError as exc:
            raise SpecError(f"{self.rs.source}: {e.where}: {_located(exc, e.text)}") from None

    def missing_names(self, e: _Expr, pos: int) -> str:
        missing = []
        for name in sorted(names_in(e.tree)):
            try:
                val = self.lookup(name, 0)
            except ExprError:  # pragma: no cover - evaluated before, so every name resolves
                continue
            if not val.known[pos]:
                missing.append(name)
        if not missing:
            return "a value it reads is"
        return ", ".join(missing) + (" is" if len(missing) == 1 else " are")
