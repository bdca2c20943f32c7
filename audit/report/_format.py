"""Numbers as people read them: rates as percentages, amounts in kronor.

A report shows the same number to a politician and to an analyst, so every
number is formatted once, here, by the conventions of the report's language:
Swedish writes ``31,2 %`` and ``1 234 kr`` (decimal comma, a no-break space
between thousands and before the unit), English ``31.2%`` and ``SEK 1,234``.
An undefined value (JSON ``null``, NaN) is never shown as 0: it is a dash,
and the report says why next to it.

Each metric has a *kind* that decides how its values, intervals and
differences read:

``rate``
    a share between 0 and 1, shown as a percentage; differences in
    percentage points;
``amount``
    SEK per month;
``count``
    a whole number;
``ratio`` and ``number``
    a plain number (ratios with two decimals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from audit.report._messages import Catalogue

__all__ = ["DASH", "Formatter", "KINDS", "is_missing"]

DASH = "–"
"""What an undefined value looks like."""

KINDS: tuple[str, ...] = ("rate", "amount", "count", "ratio", "number")
"""The kinds of metric values."""

_NBSP = "\u00a0"


def is_missing(value: Any) -> bool:
    """True for ``None``, NaN, infinities and anything that is not a real number."""
    if value is None or isinstance(value, bool):
        return value is None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return True
    return math.isnan(f) or math.isinf(f)


@dataclass(frozen=True)
class Formatter:
    """Formats numbers by the conventions of a catalogue's language.

    Parameters
    ----------
    messages : Catalogue
        Supplies the language and the unit words (``unit.*``).
    """

    messages: Catalogue

    @property
    def language(self) -> str:
        """The language code."""
        return self.messages.language

    # ------------------------------------------------------------- basics
    def _group(self, text: str) -> str:
        """Swap separators for the language: ``1,234.5`` -> ``1 234,5`` in Swedish."""
        if self.language == "sv":
            return text.replace(",", _NBSP).replace(".", ",")
        return text

    def number(self, value: Any, *, digits: int = 2) -> str:
        """A number with ``digits`` decimals and thousands separators; a dash when missing."""
        if is_missing(value):
            return DASH
        f = float(value)
        text = f"{f:,.{digits}f}"
        if text.lstrip("-").strip("0.,") == "":
            text = text.lstrip("-")
        return self._group(text).replace("-", "−")

    def integer(self, value: Any) -> str:
        """A whole number with thousands separators; a dash when missing."""
        if is_missing(value):
            return DASH
        return self._group(f"{round(float(value)):,d}").replace("-", "−")

    def significant(self, value: Any, *, digits: int = 3) -> str:
        """A number with about ``digits`` significant digits."""
        if is_missing(value):
            return DASH
        f = float(value)
        if f == 0:
            return self.number(0, digits=0)
        magnitude = math.floor(math.log10(abs(f)))
        decimals = max(0, min(6, digits - 1 - magnitude))
        return self.number(f, digits=decimals)

    def percent(self, value: Any, *, digits: int = 1, unit: bool = True) -> str:
        """A share between 0 and 1 as a percentage (``0.312`` -> ``31.2%``)."""
        if is_missing(value):
            return DASH
        text = self.number(float(value) * 100, digits=digits)
        if not unit:
            return text
        return f"{text}{_NBSP}%" if self.language == "sv" else f"{text}%"

    def amount(self, value: Any) -> str:
        """SEK per month, whole kronor."""
        if is_missing(value):
            return DASH
        return self.messages.format("unit.sek", value=self.integer(value))

    def seconds(self, value: Any) -> str:
        """A duration in seconds."""
        if is_missing(value):
            return DASH
        f = float(value)
        return self.messages.format("unit.seconds", value=self.significant(f, digits=3 if f < 100 else 4))

    def p_value(self, value: Any) -> str:
        """A p-value: three decimals, ``< 0.001`` below that."""
        if is_missing(value):
            return DASH
        f = float(value)
        if f < 0.001:
            return f"<{_NBSP}{self.number(0.001, digits=3)}"
        return self.number(f, digits=3)

    # ---------------------------------------------------- metric values
    def value(self, value: Any, kind: str) -> str:
        """A metric value of the given kind (see the module docstring)."""
        if kind == "rate":
            return self.percent(value)
        if kind == "amount":
            return self.amount(value)
        if kind == "count":
            return self.integer(value)
        if kind == "ratio":
            return self.number(value, digits=2)
        if kind == "pp":
            return self.difference(value, "rate")
        return self.significant(value)

    def interval(self, low: Any, high: Any, kind: str) -> str:
        """An interval ``low–high`` in the unit of ``kind``; a dash when either bound is missing."""
        if is_missing(low) or is_missing(high):
            return DASH
        if kind == "rate":
            lo, hi = self.percent(low, unit=False), self.percent(high)
        elif kind == "amount":
            return self.messages.format("unit.sek", value=f"{self.integer(low)}{DASH}{self.integer(high)}")
        elif kind == "count":
            lo, hi = self.integer(low), self.integer(high)
        elif kind == "ratio":
            lo, hi = self.number(low, digits=2), self.number(high, digits=2)
        elif kind == "pp":
            return self.difference_interval(low, high, "rate")
        else:
            lo, hi = self.significant(low), self.significant(high)
        return f"{lo}{DASH}{hi}"

    def difference(self, value: Any, kind: str) -> str:
        """A signed difference between two values: percentage points for rates."""
        if is_missing(value):
            return DASH
        f = float(value)
        sign = "+" if f > 0 else ""
        if kind in ("rate", "pp"):
            return self.messages.format("unit.pp", value=sign + self.number(f * 100, digits=1))
        if kind == "amount":
            return self.messages.format("unit.sek", value=sign + self.integer(f))
        return sign + (self.number(f, digits=2) if kind in ("ratio", "count") else self.significant(f))

    def difference_interval(self, low: Any, high: Any, kind: str) -> str:
        """An interval of a difference, in the unit of :meth:`difference`."""
        if is_missing(low) or is_missing(high):
            return DASH
        if kind in ("rate", "pp"):
            return self.messages.format(
                "unit.pp",
                value=f"{self.number(float(low) * 100, digits=1)}{DASH}{self.number(float(high) * 100, digits=1)}",
            )
        if kind == "amount":
            return self.messages.format("unit.sek", value=f"{self.integer(low)}{DASH}{self.integer(high)}")
        return f"{self.significant(low)}{DASH}{self.significant(high)}"

    def ratio(self, value: Any) -> str:
        """A ratio between two groups (``1.63``)."""
        return self.number(value, digits=2)

    def ratio_interval(self, low: Any, high: Any) -> str:
        """An interval of a ratio."""
        if is_missing(low) or is_missing(high):
            return DASH
        return f"{self.number(low, digits=2)}{DASH}{self.number(high, digits=2)}"
