"""The cache of compiled report templates: used when it can be written, harmless when it cannot.

Each case runs in a fresh interpreter (the Jinja environments are built once
per process), renders a real report from a small run, and compares it with
the same report rendered without any cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from audit.audit import load_spec, run_audit

ROOT = Path(__file__).resolve().parents[1]

RENDER = """
import sys
from audit.report import render_html, render_markdown
from audit.result import AuditResult
result = AuditResult.load(sys.argv[1])
sys.stdout.write(render_markdown(result) + render_html(result))
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small run's folder, rendered again by every case (a run's own timings would differ)."""
    base = load_spec(ROOT / "examples" / "demo.yaml")
    spec = base.with_options(population={**base.to_dict()["population"], "n": 400}, report={"formats": ["json"]})
    return str(run_audit(spec, out=tmp_path_factory.mktemp("cache-run"), run_id="cache-test").run_dir)


def _render(cache: str, run: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INSYN_CACHE_DIR": cache}
    out = subprocess.run([sys.executable, "-c", RENDER, run], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_compiled_templates_are_cached_and_give_the_same_pages(tmp_path: Path, run_dir: str) -> None:
    cache = tmp_path / "cache"
    first = _render(str(cache), run_dir)
    cached = sorted(p.name for p in cache.rglob("*.cache"))
    assert any("html" in p.parent.name for p in cache.rglob("*.cache")) and len(cached) >= 2
    assert _render(str(cache), run_dir) == first  # the second process reads the compiled code


def test_a_cache_folder_that_cannot_be_made_only_costs_time(tmp_path: Path, run_dir: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    with_cache = _render(str(tmp_path / "cache"), run_dir)
    assert _render(str(blocker / "cache"), run_dir) == with_cache  # no folder can be made below a file: compiled each time
    assert not any(tmp_path.glob("a-file/*"))
