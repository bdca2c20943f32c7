"""Message catalogues: every word of a report, in Swedish and English.

A report is read by a municipal council, a union and a researcher, in
Swedish or in English (``report.language: sv | en``). No label is written in
a template or in code: each comes from a *message catalogue*, one YAML file
per language in ``audit/report/messages/``. A catalogue is a tree of keys;
its leaves are non-empty strings that may hold ``{placeholders}`` filled in
with :meth:`Catalogue.format`. Both catalogues have exactly the same keys and
the same placeholders per key (a test guards this), so a report never falls
back silently to another language or shows a bare key.

Some keys are looked up by the name of something that comes from data: a
metric (``metric.<name>.label``), a sensitive attribute
(``attribute.<name>``), a group value (``value.<attribute>.<value>``) or a
step of the data journey (``step.<name>``). For those, :meth:`Catalogue.get`
returns ``None`` when the catalogue has no entry, and the report shows the
name as it appears in the data.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


from audit._yaml import load_yaml
from audit.exceptions import DataError, SpecError

__all__ = ["Catalogue", "LANGUAGES", "load_catalogue", "placeholders"]

LANGUAGES: tuple[str, ...] = ("en", "sv")
"""Languages a report can be written in."""

_KEY = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_]+)*$")


def placeholders(text: str) -> frozenset[str]:
    """Return the names of the ``{placeholders}`` in a message."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)


def _flatten(tree: Any, prefix: str, out: dict[str, str], source: str) -> None:
    if not isinstance(tree, Mapping):
        raise DataError(
            f"{source}: {prefix or 'the catalogue'} must be a mapping of keys to messages. Got {type(tree).__name__}."
        )
    for key, value in tree.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            _flatten(value, full, out, source)
            continue
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{source}: {full} must be a non-empty string. Got {value!r}.")
        try:
            placeholders(value)
        except ValueError as exc:
            raise DataError(f"{source}: {full} has a malformed placeholder ({exc}). Got {value!r}.") from None
        out[full] = value


@dataclass(frozen=True)
class Catalogue:
    """The messages of one language.

    Attributes
    ----------
    language : str
        ``"en"`` or ``"sv"``.
    messages : Mapping[str, str]
        Dotted key (``"summary.title"``) to message.
    source : str
        The file the messages were read from, for error messages.
    """

    language: str
    messages: Mapping[str, str]
    source: str

    def __call__(self, key: str, /, **values: Any) -> str:
        """Return the message ``key`` with its placeholders filled in (see :meth:`format`)."""
        return self.format(key, **values)

    def format(self, key: str, /, **values: Any) -> str:
        """Return the message ``key`` with its placeholders filled in.

        Raises
        ------
        KeyError
            When the catalogue has no such key, or a placeholder has no value:
            a bug in the report, which the catalogue tests catch.
        """
        try:
            text = self.messages[key]
        except KeyError:
            raise KeyError(f"{self.source}: no message {key!r}.") from None
        if not values and not placeholders(text):
            return text
        try:
            return text.format_map(values)
        except KeyError as exc:
            raise KeyError(f"{self.source}: message {key!r} needs a value for {exc.args[0]!r}.") from None

    def get(self, key: str, /, **values: Any) -> str | None:
        """Return the message ``key`` formatted, or ``None`` when the catalogue has no such key."""
        return self.format(key, **values) if key in self.messages else None

    def __contains__(self, key: object) -> bool:
        return key in self.messages


@cache
def load_catalogue(language: str) -> Catalogue:
    """Load the message catalogue of a language.

    Parameters
    ----------
    language : str
        One of :data:`LANGUAGES`.

    Returns
    -------
    Catalogue

    Raises
    ------
    audit.exceptions.SpecError
        When the language is not one of :data:`LANGUAGES`.
    audit.exceptions.DataError
        When the catalogue file is missing or malformed.
    """
    if language not in LANGUAGES:
        raise SpecError(f"report.language must be one of {', '.join(LANGUAGES)}. Got {language!r}.")
    ref = resources.files("audit.report").joinpath("messages", f"{language}.yaml")
    source = f"audit/report/messages/{language}.yaml"
    try:
        text = ref.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{source}: the message catalogue is missing from the installation.") from None
    tree = load_yaml(text, source=source)
    flat: dict[str, str] = {}
    _flatten(tree, "", flat, source)
    bad = sorted(k for k in flat if not _KEY.match(k))
    if bad:
        raise DataError(f"{source}: {bad[0]!r} is not a valid key. Expected dotted snake_case names.")
    return Catalogue(language=language, messages=dict(flat), source=source)
