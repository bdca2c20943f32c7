"""Findings as Python objects: one plain, frozen record per threshold and group.

A *finding* is one threshold of the audit spec judged for one group (see
:mod:`audit.metrics` for how they are evaluated): ``PASS``, ``FAIL``,
``WARN`` or ``ERROR``. In ``results.json`` a finding is a JSON object; in
Python, :attr:`audit.result.AuditResult.findings` holds :class:`Finding`
records in a :class:`Findings` tuple, which prints as a readable table in a
terminal and a notebook and turns into a DataFrame with
:meth:`Findings.to_frame`.

The fields of a finding agree with each other: ``severity`` is what the
finding *is* (``fail`` for FAIL and ERROR, ``warn`` for WARN, None for
PASS), and ``on_breach`` is what the threshold would make of a breach (its
``severity`` in the spec).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

__all__ = ["Finding", "Findings"]


@dataclass(frozen=True)
class Finding:
    """One threshold judged for one group.

    Attributes
    ----------
    name : str
        E.g. ``"refer_rate ratio >= 0.8 for birth_region=outside_eu vs sweden"``.
    status : {"PASS", "FAIL", "WARN", "ERROR"}
    severity : str or None
        ``fail`` (FAIL, ERROR), ``warn`` (WARN) or None (PASS).
    on_breach : str or None
        The threshold's severity in the spec: what a breach would be.
    metric, statistic, bound : str or None
        The metric, the bounded statistic (ratio, difference, value) and the
        bound as text.
    attributes : tuple of str or None
    group, reference_group : str or None
    observed, bound_min, bound_max, ci_low, ci_high, p_adjusted : float or None
    message : str
    extra : Mapping
        Any other keys of the finding as written in ``results.json``.
    """

    name: str
    status: str
    severity: str | None = None
    on_breach: str | None = None
    metric: str | None = None
    statistic: str | None = None
    attributes: tuple[str, ...] | None = None
    group: str | None = None
    reference_group: str | None = None
    observed: float | None = None
    bound: str | None = None
    bound_min: float | None = None
    bound_max: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_adjusted: float | None = None
    message: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """A finding from its ``results.json`` form (unknown keys go to ``extra``)."""
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        if known.get("attributes") is not None:
            known["attributes"] = tuple(known["attributes"])
        known.setdefault("name", "")
        known.setdefault("status", "ERROR")
        return cls(**known, extra={k: v for k, v in data.items() if k not in names})

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` form."""
        out = {name: getattr(self, name) for name in _FIELDS}  # flat values: no deep copy needed
        out["attributes"] = list(self.attributes) if self.attributes is not None else None
        return {**out, **dict(self.extra)}

    # mapping access, so that code written for the JSON form keeps working (one key read, not a whole dict)
    def __getitem__(self, key: str) -> Any:
        if key in self.extra:
            return self.extra[key]
        if key == "attributes":
            return list(self.attributes) if self.attributes is not None else None
        if key in _FIELDS:
            return getattr(self, key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of a field (or an ``extra`` key), or ``default``."""
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return key in self.extra or key in _FIELDS

    def keys(self) -> Iterator[str]:
        """The field names, as in ``results.json``."""
        return iter(self.to_dict())

    def __str__(self) -> str:
        return f"{self.status:<5} {self.name}: {self.message}"


_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Finding) if f.name != "extra")
"""The fields of a finding as ``results.json`` writes them (``extra`` keys are added to these)."""


class Findings(tuple):
    """The findings of a run: a tuple of :class:`Finding` that prints as a table."""

    __slots__ = ()

    def to_frame(self) -> pd.DataFrame:
        """The findings as a new DataFrame, one row per finding."""
        return pd.DataFrame([f.to_dict() for f in self])

    def __repr__(self) -> str:
        if not self:
            return "Findings(none)"
        frame = self.to_frame()[["status", "name", "observed", "p_adjusted"]]
        with pd.option_context("display.max_colwidth", 90, "display.width", 160):
            return f"Findings ({len(self)}):\n{frame.to_string(index=False)}"

    def _repr_html_(self) -> str:
        return self.to_frame().to_html(index=False, na_rep="–", escape=True)
