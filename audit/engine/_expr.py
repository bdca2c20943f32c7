"""A small, safe expression language for declarative decision rules.

Municipal rule sets are written by caseworkers and analysts, not programmers,
and an audit must be able to read every one of them. The conditions and
amounts of a rule set (``application_type == "renewal" and not
household_changed``, ``min(need_amount, 20000)``) are therefore written in a
deliberately small language, parsed here into a tree and evaluated on whole
columns at once. Nothing is ever handed to Python's ``eval``: there is no
attribute access, no indexing, no assignment and no way to call anything but
the handful of functions listed below, so a rule file cannot run code.

Grammar (lowest precedence first)::

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := sum [("==" | "!=" | "<" | "<=" | ">" | ">=") sum
                       | ["not"] "in" "[" literal ("," literal)* "]"]
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | atom
    atom       := NUMBER | STRING | "true" | "false" | NAME
                | NAME "(" [expr ("," expr)*] ")" | "(" expr ")"

Values have one of three kinds: number, text and truth value (bool). Each
operator accepts only its kinds (``rent > "abc"`` is an error, not False).
Missing values (NaN, None) follow SQL's three-valued logic: a comparison with
a missing value is *unknown*, ``unknown and false`` is false, ``unknown or
true`` is true, and a rule whose condition stays unknown cannot decide the
case, which then becomes an error with a reason instead of silently falling
through.

Functions: ``min(a, b, ...)``, ``max(a, b, ...)``, ``abs(x)``, ``round(x)``
(half away from zero), ``floor(x)``, ``ceil(x)``, ``count_items(text)`` (the
number of ``;``-separated items, e.g. ``count_items(child_ages)``),
``is_missing(x)`` and ``coalesce(x, fallback)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from audit._arrays import text_objects

__all__: list[str] = []

NUMBER, TEXT, BOOL = "number", "text", "truth value"


class ExprError(Exception):
    """A problem in an expression, at character ``pos`` (0-based)."""

    def __init__(self, message: str, pos: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


# ---------------------------------------------------------------------------
# tokens

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\+|-|\*|/|\(|\)|\[|\]|,)
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, name, op, keyword, end
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            hint = " (attribute access is not part of the rule language)" if ch == "." else ""
            if ch in "\"'":
                raise ExprError("a text value is not closed with a matching quote", pos)
            raise ExprError(f"unexpected character {ch!r}{hint}", pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            tok = m.group()
            if kind == "name" and tok in _KEYWORDS:
                kind = "keyword"
            elif kind == "name" and tok.startswith("_"):
                raise ExprError(f"names may not start with '_'. Got {tok!r}", pos)
            tokens.append(_Token(kind, tok, pos))
        pos = m.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


# ---------------------------------------------------------------------------
# tree


@dataclass(frozen=True)
class Node:
    pos: int


@dataclass(frozen=True)
class _Literal(Node):
    value: float | str | bool


@dataclass(frozen=True)
class _Name(Node):
    name: str


@dataclass(frozen=True)
class _Unary(Node):
    op: str  # "-" or "not"
    operand: Node


@dataclass(frozen=True)
class _Binary(Node):
    op: str  # + - * / == != < <= > >= and or
    left: Node
    right: Node


@dataclass(frozen=True)
class _In(Node):
    operand: Node
    items: tuple[_Literal, ...]
    negate: bool


@dataclass(frozen=True)
class _Call(Node):
    func: str
    args: tuple[Node, ...]


def names_in(node: Node) -> set[str]:
    """Return every name an expression reads."""
    if isinstance(node, _Name):
        return {node.name}
    if isinstance(node, _Unary):
        return names_in(node.operand)
    if isinstance(node, _Binary):
        return names_in(node.left) | names_in(node.right)
    if isinstance(node, _In):
        return names_in(node.operand)
    if isinstance(node, _Call):
        out: set[str] = set()
        for a in node.args:
            out |= names_in(a)
        return out
    return set()


class _Parser:
    """Recursive-descent parser for the grammar in the module docstring."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def _take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _at(self, kind: str, text: str | None = None) -> bool:
        t = self.tok
        return t.kind == kind and (text is None or t.text == text)

    def _expect_op(self, text: str, what: str) -> _Token:
        if not self._at("op", text):
            raise ExprError(f"expected {text!r} {what}, found {self._describe(self.tok)}", self.tok.pos)
        return self._take()

    @staticmethod
    def _describe(tok: _Token) -> str:
        return "the end of the expression" if tok.kind == "end" else repr(tok.text)

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ExprError("the expression is empty", 0)
        node = self._or()
        if self.tok.kind != "end":
            raise ExprError(
                f"unexpected {self._describe(self.tok)}; expected an operator or the end of the expression",
                self.tok.pos,
            )
        return node

    def _or(self) -> Node:
        node = self._and()
        while self._at("keyword", "or"):
            pos = self._take().pos
            node = _Binary(pos, "or", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._not()
        while self._at("keyword", "and"):
            pos = self._take().pos
            node = _Binary(pos, "and", node, self._not())
        return node

    def _not(self) -> Node:
        if self._at("keyword", "not"):
            pos = self._take().pos
            return _Unary(pos, "not", self._not())
        return self._comparison()

    def _comparison(self) -> Node:
        node = self._sum()
        t = self.tok
        if t.kind == "op" and t.text in {"==", "!=", "<", "<=", ">", ">="}:
            self._take()
            right = self._sum()
            nxt = self.tok
            if nxt.kind == "op" and nxt.text in {"==", "!=", "<", "<=", ">", ">="}:
                raise ExprError("comparisons cannot be chained; join them with 'and'", nxt.pos)
            return _Binary(t.pos, t.text, node, right)
        negate = False
        after = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else self.tokens[-1]
        if self._at("keyword", "not") and after.kind == "keyword" and after.text == "in":
            negate = True
            self._take()
        if self._at("keyword", "in"):
            pos = self._take().pos
            self._expect_op("[", "after 'in'")
            items = [self._list_item()]
            while self._at("op", ","):
                self._take()
                items.append(self._list_item())
            self._expect_op("]", "to close the list")
            return _In(pos, node, tuple(items), negate)
        return node

    def _list_item(self) -> _Literal:
        t = self.tok
        neg = False
        if t.kind == "op" and t.text == "-":
            neg = True
            self._take()
            t = self.tok
        atom = self._atom()
        if not isinstance(atom, _Literal) or (neg and isinstance(atom.value, (str, bool))):
            raise ExprError("a list after 'in' may hold only numbers, text or true/false", t.pos)
        if neg:
            return _Literal(atom.pos, -float(atom.value))
        return atom

    def _sum(self) -> Node:
        node = self._product()
        while self.tok.kind == "op" and self.tok.text in {"+", "-"}:
            t = self._take()
            node = _Binary(t.pos, t.text, node, self._product())
        return node

    def _product(self) -> Node:
        node = self._unary()
        while self.tok.kind == "op" and self.tok.text in {"*", "/"}:
            t = self._take()
            node = _Binary(t.pos, t.text, node, self._unary())
        return node

    def _unary(self) -> Node:
        if self._at("op", "-"):
            pos = self._take().pos
            return _Unary(pos, "-", self._unary())
        return self._atom()

    def _atom(self) -> Node:
        t = self._take()
        if t.kind == "number":
            try:
                return _Literal(t.pos, float(t.text.replace("_", "")))
            except ValueError:
                raise ExprError(f"{t.text!r} is not a number", t.pos) from None
        if t.kind == "string":
            body = t.text[1:-1]
            return _Literal(t.pos, re.sub(r"\\(.)", r"\1", body))
        if t.kind == "keyword" and t.text in {"true", "false"}:
            return _Literal(t.pos, t.text == "true")
        if t.kind == "name":
            if self._at("op", "("):
                return self._call(t)
            return _Name(t.pos, t.text)
        if t.kind == "op" and t.text == "(":
            node = self._or()
            self._expect_op(")", "to close '('")
            return node
        if t.kind == "end":
            raise ExprError("the expression ends too early; expected a value", t.pos)
        raise ExprError(f"unexpected {t.text!r}; expected a value", t.pos)

    def _call(self, name_tok: _Token) -> Node:
        func = name_tok.text
        if func not in _FUNCTIONS:
            raise ExprError(
                f"unknown function {func!r}; the rule language knows {', '.join(sorted(_FUNCTIONS))}",
                name_tok.pos,
            )
        self._take()  # "("
        args: list[Node] = []
        if not self._at("op", ")"):
            args.append(self._or())
            while self._at("op", ","):
                self._take()
                args.append(self._or())
        self._expect_op(")", f"to close the arguments of {func}()")
        lo, hi = _FUNCTIONS[func][0], _FUNCTIONS[func][1]
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
            raise ExprError(f"{func}() takes {want} argument(s). Got {len(args)}", name_tok.pos)
        return _Call(name_tok.pos, func, tuple(args))


def parse(text: str) -> Node:
    """Parse an expression; raise :class:`ExprError` with the position of the problem."""
    if not isinstance(text, str):
        raise ExprError(f"an expression must be text, a number or true/false. Got {type(text).__name__}")
    return _Parser(text).parse()


# ---------------------------------------------------------------------------
# values


@dataclass(frozen=True)
class Val:
    """A column of values of one kind; ``known`` is False where a value is missing."""

    kind: str
    data: np.ndarray
    known: np.ndarray


def _number(data: np.ndarray) -> Val:
    data = np.asarray(data, dtype=float)
    return Val(NUMBER, data, ~np.isnan(data))


def column_value(col: pd.Series, name: str) -> Val:
    """Turn a case-frame column into a value of the rule language."""
    dtype = col.dtype
    if pd.api.types.is_bool_dtype(dtype) and dtype != object:
        known = col.notna().to_numpy()
        return Val(BOOL, col.to_numpy(dtype=bool, na_value=False), known)
    if pd.api.types.is_numeric_dtype(dtype) and dtype != object:
        return _number(col.to_numpy(dtype=float, na_value=np.nan))
    if pd.api.types.is_string_dtype(dtype) and dtype != object:
        return Val(TEXT, text_objects(col), col.notna().to_numpy())
    inferred = pd.api.types.infer_dtype(col, skipna=True)
    if inferred in {"string", "empty"}:
        data = col.astype(object).where(col.notna(), None).to_numpy(dtype=object)
        return Val(TEXT, data, col.notna().to_numpy())
    if inferred == "boolean":
        known = col.notna().to_numpy()
        return Val(BOOL, col.fillna(False).to_numpy(dtype=bool), known)
    if inferred in {"integer", "floating", "mixed-integer-float", "decimal"}:
        return _number(pd.to_numeric(col).to_numpy(dtype=float))
    raise ExprError(f"column {name!r} holds {inferred} values; the rule language reads numbers, text and true/false")


def literal_value(value: float | str | bool, n: int) -> Val:
    """Broadcast a literal (or a rule-set parameter) to ``n`` rows."""
    if isinstance(value, bool):
        return Val(BOOL, np.full(n, value), np.ones(n, dtype=bool))
    if isinstance(value, (int, float)):
        return _number(np.full(n, float(value)))
    arr = np.empty(n, dtype=object)
    arr[:] = value
    return Val(TEXT, arr, np.ones(n, dtype=bool))


def _need(val: Val, kinds: tuple[str, ...], what: str, pos: int) -> None:
    if val.kind not in kinds:
        raise ExprError(f"{what} needs {' or '.join(kinds)} values. Got a {val.kind}", pos)


def _round(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _count_items(val: Val) -> Val:
    s = pd.Series(val.data, dtype="str")
    stripped = s.str.strip()
    counts = (stripped.str.count(";") + 1).astype(float)
    counts = counts.where(stripped != "", 0.0)
    out = np.where(val.known, counts.to_numpy(dtype=float, na_value=np.nan), np.nan)
    return _number(out)


# name -> (min args, max args or None, argument kinds, implementation)
_FUNCTIONS: dict[str, tuple[int, int | None, tuple[str, ...] | None, Callable[..., Val]]] = {
    "min": (2, None, (NUMBER,), lambda *a: _number(np.minimum.reduce([v.data for v in a]))),
    "max": (2, None, (NUMBER,), lambda *a: _number(np.maximum.reduce([v.data for v in a]))),
    "abs": (1, 1, (NUMBER,), lambda a: _number(np.abs(a.data))),
    "round": (1, 1, (NUMBER,), lambda a: _number(_round(a.data))),
    "floor": (1, 1, (NUMBER,), lambda a: _number(np.floor(a.data))),
    "ceil": (1, 1, (NUMBER,), lambda a: _number(np.ceil(a.data))),
    "count_items": (1, 1, (TEXT,), _count_items),
    "is_missing": (1, 1, None, lambda a: Val(BOOL, ~a.known, np.ones(len(a.known), dtype=bool))),
    "coalesce": (2, 2, None, None),  # type: ignore[dict-item]  # needs both kinds equal: handled below
}


# ---------------------------------------------------------------------------
# evaluation


def evaluate(node: Node, lookup: Callable[[str, int], Val], n: int) -> Val:
    """Evaluate an expression tree on ``n`` rows.

    Parameters
    ----------
    node : Node
        A tree from :func:`parse`.
    lookup : callable
        ``lookup(name, pos)`` returns the value of a name, or raises
        :class:`ExprError` for an unknown one.
    n : int
        Number of rows.
    """
    if isinstance(node, _Literal):
        return literal_value(node.value, n)
    if isinstance(node, _Name):
        return lookup(node.name, node.pos)
    if isinstance(node, _Unary):
        v = evaluate(node.operand, lookup, n)
        if node.op == "-":
            _need(v, (NUMBER,), "'-'", node.pos)
            return _number(-v.data)
        _need(v, (BOOL,), "'not'", node.pos)
        return Val(BOOL, ~v.data & v.known, v.known)
    if isinstance(node, _In):
        v = evaluate(node.operand, lookup, n)
        kinds = {literal_value(it.value, 0).kind for it in node.items}
        if len(kinds) > 1 or v.kind not in kinds:
            raise ExprError(
                f"'in' compares a {v.kind} with a list of {' and '.join(sorted(kinds))} values", node.pos
            )
        values = [it.value for it in node.items]
        if v.kind == NUMBER:
            hit = np.isin(v.data, np.asarray(values, dtype=float))
        else:
            hit = pd.Series(v.data, dtype=object).isin(values).to_numpy()
        hit = hit & v.known
        return Val(BOOL, (~hit if node.negate else hit) & v.known, v.known)
    if isinstance(node, _Call):
        return _call(node, lookup, n)
    if isinstance(node, _Binary):
        return _binary(node, lookup, n)
    raise AssertionError(f"unknown node {node!r}")  # pragma: no cover


def _call(node: _Call, lookup: Callable[[str, int], Val], n: int) -> Val:
    args = [evaluate(a, lookup, n) for a in node.args]
    _, _, kinds, impl = _FUNCTIONS[node.func]
    if node.func == "coalesce":
        if args[0].kind != args[1].kind:
            raise ExprError(
                f"coalesce() needs two values of one kind. Got a {args[0].kind} and a {args[1].kind}", node.pos
            )
        a, b = args
        data = np.where(a.known, a.data, b.data)
        return Val(a.kind, data, a.known | b.known) if a.kind != NUMBER else _number(data)
    if kinds is not None:
        for a in args:
            _need(a, kinds, f"{node.func}()", node.pos)
    return impl(*args)


def _binary(node: _Binary, lookup: Callable[[str, int], Val], n: int) -> Val:
    left = evaluate(node.left, lookup, n)
    right = evaluate(node.right, lookup, n)
    op = node.op
    if op in {"and", "or"}:
        _need(left, (BOOL,), f"'{op}'", node.pos)
        _need(right, (BOOL,), f"'{op}'", node.pos)
        lt, lf = left.known & left.data, left.known & ~left.data
        rt, rf = right.known & right.data, right.known & ~right.data
        if op == "and":
            true, false = lt & rt, lf | rf
        else:
            true, false = lt | rt, lf & rf
        return Val(BOOL, true, true | false)
    if op in {"+", "-", "*", "/"}:
        _need(left, (NUMBER,), f"'{op}'", node.pos)
        _need(right, (NUMBER,), f"'{op}'", node.pos)
        a, b = left.data, right.data
        if op == "+":
            return _number(a + b)
        if op == "-":
            return _number(a - b)
        if op == "*":
            return _number(a * b)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(b == 0, np.nan, a / np.where(b == 0, 1.0, b))
        return _number(out)
    # comparisons
    if left.kind != right.kind:
        raise ExprError(f"{op!r} compares a {left.kind} with a {right.kind}", node.pos)
    if op in {"<", "<=", ">", ">="}:
        _need(left, (NUMBER,), f"{op!r}", node.pos)
    known = left.known & right.known
    if left.kind == NUMBER:
        a, b = left.data, right.data
        with np.errstate(invalid="ignore"):
            res = {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    elif left.kind == TEXT:
        eq = np.asarray(left.data == right.data, dtype=bool)
        res = eq if op == "==" else ~eq
    else:
        eq = left.data == right.data
        res = eq if op == "==" else ~eq
    return Val(BOOL, res & known, known)


def value_to_series(val: Val) -> pd.Series:
    """Return a value as a pandas Series (numbers float, text str, truth values bool)."""
    if val.kind == NUMBER:
        return pd.Series(val.data, dtype=float)
    if val.kind == TEXT:
        return pd.Series(val.data, dtype="str")
    return pd.Series(val.data & val.known, dtype=bool)


def scalar_kind(value: Any) -> str | None:
    """Return the kind of a parameter value, or None when it is not a scalar the language reads."""
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, (int, float)):
        return NUMBER
    if isinstance(value, str):
        return TEXT
    return None
