"""The documentation is current and every link in it resolves.

docs/spec.md and audit/schemas/audit-spec.schema.json are generated from the
spec models (audit.reference); every relative link and anchor in README.md
and docs/*.md points at a file and heading that exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audit.reference import markdown_reference, schema_text

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation but - and _ removed, spaces to -."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = text.strip().lower()
    return "".join(c if (c.isalnum() or c in "-_") else ("-" if c == " " else "") for c in text)


def _anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for line in text.splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = _slug(m.group(1))
        n = seen.get(base, 0)
        out.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return out


def _links(page: Path) -> list[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return [m.group("target") for m in _LINK.finditer(text)]


def test_the_pages_are_found() -> None:
    names = {p.name for p in PAGES}
    assert {"README.md", "spec.md", "contracts.md", "interfaces.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in _links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...: not checked offline
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest}")
            continue
        if anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    assert broken == []


def test_no_page_points_at_design_md_or_outside_the_repository() -> None:
    shipped = [*PAGES, *(ROOT / "checks").glob("*.yaml"), *(ROOT / "examples").rglob("*.yaml"),
               *(ROOT / "datasets").rglob("*.md")]
    offenders = [str(p.relative_to(ROOT)) for p in shipped
                 if re.search(r"DESIGN\.md|/work/shared", p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_the_anchor_rule_matches_github() -> None:
    # cases checked against GitHub's rendering of headings
    assert _slug("Top level") == "top-level"
    assert _slug("population.derive.(column).bins") == "populationderivecolumnbins"
    assert _slug("checks.(step)") == "checksstep"
    assert _slug("`insyn check` output") == "insyn-check-output"
    page = ROOT / "docs" / "spec.md"
    assert {"top-level", "engine", "populationcells", "checksstep"} <= _anchors(page)


def test_the_spec_reference_and_schema_are_current() -> None:
    """Regenerate both from the models and compare with the committed files (python -m audit.reference)."""
    assert (ROOT / "docs" / "spec.md").read_text(encoding="utf-8") == markdown_reference("audit"), (
        "docs/spec.md is stale: run python -m audit.reference")
    assert (ROOT / "audit" / "schemas" / "audit-spec.schema.json").read_text(encoding="utf-8") == schema_text(
        "audit"), "audit/schemas/audit-spec.schema.json is stale: run python -m audit.reference"
