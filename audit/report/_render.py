"""The rendering machinery every page of Insyn shares: templates, escaping, masking, styles.

Every page Insyn writes (the report of a run, the notebook summary, the
Markdown report and the trend page of a monitoring history) is a Jinja
template filled in with a view model of plain data. Two rules hold for all
of them, and they are enforced here, once, rather than in each template:

* every string that comes from data is escaped: HTML by Jinja's
  autoescaping, Markdown by a ``finalize`` hook that neutralises emphasis,
  links, code, tables, entities and raw HTML;
* personnummer-shaped text (:data:`audit._privacy.PNR_PATTERN`) is masked in
  every value a template prints, before it is escaped, so that a personal
  identity number in a group name or a free-text field never reaches a page.

Styles are kept as files next to the templates (``style.css`` for the
report, ``trend.css`` for the trend page) and inlined, so that each page is
one self-contained file.
"""

from __future__ import annotations

import os
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import Environment, FileSystemBytecodeCache, PackageLoader, StrictUndefined
from markupsafe import Markup

from audit._privacy import MASK, PNR_PATTERN

__all__ = ["environment", "mask", "md_escape", "render_template", "stylesheet"]

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
_KINDS = ("html", "md")


def mask(text: str) -> str:
    """Replace every personnummer-shaped substring of ``text`` with the privacy mask.

    Parameters
    ----------
    text : str
        Any text bound for a page.

    Returns
    -------
    str
        The text with each match of :data:`audit._privacy.PNR_PATTERN`
        replaced by :data:`audit._privacy.MASK`.
    """
    return PNR_PATTERN.sub(MASK, text)


def _finalize_html(value: Any) -> Any:
    """Mask personnummer-shaped text in every value from the view model (escaping follows)."""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return mask(value)


def md_escape(value: Any) -> str:
    """Escape text for Markdown: no emphasis, links, code, HTML, entities or table breaks.

    Personnummer-shaped text is masked first.
    """
    text = _MD_ENTITY.sub("&amp;", mask(str(value)))
    return _MD_TAG.sub("&lt;", text.translate(_MD_SPECIAL))


def _finalize_md(value: Any) -> Any:
    if isinstance(value, Markup):
        return str(value)
    if value is None:
        return ""
    return md_escape(value)


class _TolerantBytecodeCache(FileSystemBytecodeCache):
    """Jinja's file cache of compiled templates, which a full or read-only disk slows down but never fails."""

    def dump_bytecode(self, bucket: Any) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass  # the template was compiled in memory; the next run compiles it again


def _bytecode_cache(kind: str) -> FileSystemBytecodeCache | None:
    """The cache of compiled templates: ``$INSYN_CACHE_DIR``, else ``$XDG_CACHE_HOME/insyn`` or ``~/.cache/insyn``.

    Compiling the report's templates costs more than half a second per run,
    more than rendering them. Jinja keys each cached template by its name and
    checks the source's checksum and the Python version before using it, so
    an edited template or another interpreter compiles afresh. One folder per
    Jinja version and page kind (the two kinds compile the same source
    differently). ``None`` (compile every time) when no folder can be made.
    """
    base = os.environ.get("INSYN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "insyn")
    folder = os.path.join(base, f"jinja-{jinja2.__version__}-{kind}")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return _TolerantBytecodeCache(folder)


@cache
def environment(kind: str) -> Environment:
    """The Jinja environment of a page kind: ``"html"`` (autoescaped) or ``"md"`` (Markdown-escaped).

    Both load the templates of :mod:`audit.report`, refuse undefined names
    (``StrictUndefined``) and mask personnummer-shaped text in every printed
    value.

    Raises
    ------
    ValueError
        When ``kind`` is neither ``"html"`` nor ``"md"``.
    """
    if kind not in _KINDS:
        raise ValueError(f"A page kind must be one of {', '.join(_KINDS)}. Got {kind!r}.")
    if kind == "html":
        return Environment(
            loader=PackageLoader("audit.report", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            finalize=_finalize_html,
            trim_blocks=False,
            lstrip_blocks=False,
            bytecode_cache=_bytecode_cache(kind),
        )
    return Environment(
        loader=PackageLoader("audit.report", "templates"),
        autoescape=False,
        undefined=StrictUndefined,
        finalize=_finalize_md,
        keep_trailing_newline=True,
        bytecode_cache=_bytecode_cache(kind),
    )


@cache
def stylesheet(name: str) -> Markup:
    """The text of a stylesheet in ``audit/report/templates/`` (``style.css``, ``trend.css``), ready to inline."""
    return Markup(resources.files("audit.report").joinpath("templates", name).read_text(encoding="utf-8"))


def render_template(kind: str, template: str, /, **context: Any) -> str:
    """Render one template of :mod:`audit.report` with a view model.

    Parameters
    ----------
    kind : {"html", "md"}
        Which environment (and so which escaping) to use.
    template : str
        The template's file name, e.g. ``"report.html.j2"``.
    **context
        The view model.

    Returns
    -------
    str
        The rendered page.
    """
    return environment(kind).get_template(template).render(**context)
