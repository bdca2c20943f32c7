"""Escaping every string from data before it reaches a page.

A report, a dossier and a trend page show names that come from data: group
values, engine names, rule codes, file names. Any of them may hold markup
(``<script>``), Markdown syntax (``*``, ``|``, ``[link](...)``) or a personal
identity number (*personnummer*). Each page is rendered by a Jinja
environment whose ``finalize`` hook passes every value through one of the
functions here before it is written:

* HTML: personnummer-shaped text is masked (:data:`audit._privacy.PNR_PATTERN`
  and ``MASK``); Jinja's autoescaping then escapes markup;
* Markdown: the same masking, then every character that Markdown or a GitHub
  table reads as syntax is escaped, so that a value is always shown as text.

Values a renderer marks as safe (:class:`markupsafe.Markup`, built by the
renderer from escaped parts) pass unchanged.
"""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup

from audit._privacy import MASK, PNR_PATTERN

__all__ = ["finalize_html", "finalize_md", "mask", "md_escape"]

_MD_SPECIAL = str.maketrans(
    {
        "\\": "\\\\",
        "`": "\\`",
        "*": "\\*",
        "_": "\\_",
        "[": "\\[",
        "]": "\\]",
        "|": "\\|",
        "#": "\\#",
        ">": "&gt;",
        "\n": " ",
        "\r": " ",
    }
)

_MD_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_MD_TAG = re.compile(r"<(?=[A-Za-z/!?])")


def mask(text: str) -> str:
    """Replace personnummer-shaped text with the privacy mask."""
    return PNR_PATTERN.sub(MASK, text)


def finalize_html(value: Any) -> Any:
    """Mask personnummer-shaped text in every value from the view model (autoescaping follows)."""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return mask(value)


def md_escape(value: Any) -> str:
    """Escape text for Markdown: no emphasis, links, code, HTML, entities or table breaks."""
    text = _MD_ENTITY.sub("&amp;", mask(str(value)))
    return _MD_TAG.sub("&lt;", text.translate(_MD_SPECIAL))


def finalize_md(value: Any) -> Any:
    """The Markdown environment's ``finalize``: Markup passes, None is empty, all else is escaped."""
    if isinstance(value, Markup):
        return str(value)
    if value is None:
        return ""
    return md_escape(value)
