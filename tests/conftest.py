"""Shared fixtures: the demo run (made once per session) and paths."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Pseudonym keys of the test run live in a temporary key file, never in the tester's ~/.config.
os.environ.setdefault("INSYN_PSEUDONYM_KEY_FILE", str(Path(tempfile.mkdtemp(prefix="insyn-key-")) / "pseudonym.key"))

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
OPENLINEAGE_SPEC = SHARED / "openlineage-spec"


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    """The demo audit (20,000 synthetic cases), run once into a temporary folder."""
    from audit import load_spec

    out = tmp_path_factory.mktemp("reports")
    audit = load_spec(ROOT / "examples" / "demo.yaml")
    return audit.run(out=out)


@pytest.fixture(scope="session")
def openlineage_spec() -> Path:
    """The OpenLineage JSON schemas in ../shared, or skip with the reason."""
    if not (OPENLINEAGE_SPEC / "OpenLineage.json").is_file():
        pytest.skip(f"OpenLineage schemas not found at {OPENLINEAGE_SPEC} (a clone outside CI)")
    return OPENLINEAGE_SPEC


@pytest.fixture
def small_rules_spec(tmp_path: Path):
    """A factory of small audit specs: ``n`` synthetic cases decided by the demo's rule set, in ``tmp_path``."""

    def make(name: str, *, n: int, seed: int = 1, sensitive: tuple[str, ...] = ("sex",),
             formats: tuple[str, ...] = ("json",)) -> Path:
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(
            f"name: {name}\nseed: {seed}\n"
            f"population: {{synthetic: {ROOT / 'datasets/sweden/population-2026.yaml'}, n: {n}}}\n"
            f"sensitive_features: [{', '.join(sensitive)}]\n"
            f"engine: {{kind: rules, path: {ROOT / 'examples/engines/municipal-rpa.yaml'}}}\n"
            f"statistics: {{min_group_size: 10, bootstrap: 0}}\nreport: {{formats: [{', '.join(formats)}]}}\n",
            encoding="utf-8",
        )
        return spec

    return make
