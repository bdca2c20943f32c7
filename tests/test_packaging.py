"""Insyn installed anywhere: runtime dependencies are what the code imports, and a wheel works outside a clone."""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

USED_WITHOUT_IMPORT = {
    "openpyxl": ("audit/population.py", 'engine="openpyxl"'),
    # jsonschema's FormatChecker checks "date-time" only when rfc3339-validator is installed
    "rfc3339-validator": ("audit/evidence/_check.py", "format_checker=FormatChecker()"),
}
"""Runtime dependencies that the code uses through another library, with the file and text that show it."""


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!\[;~]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _imports() -> dict[str, set[str]]:
    """Top-level third-party module -> {"top", "lazy"}: where audit/ imports it."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "audit").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            where = "top" if node.col_offset == 0 else "lazy"
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("audit", "__future__"):
                    continue
                found.setdefault(top, set()).add(where)
    return found


def _distribution(module: str) -> str:
    dists = md.packages_distributions().get(module)
    assert dists, f"audit/ imports {module!r}, which no installed distribution provides"
    return dists[0].lower().replace("_", "-")


def test_runtime_dependencies_are_exactly_what_the_code_imports() -> None:
    runtime = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    extras = {k: {_name(r) for r in v} for k, v in PYPROJECT["project"]["optional-dependencies"].items()}
    imported = {_distribution(m): where for m, where in _imports().items()}
    missing = sorted(d for d, where in imported.items()
                     if d not in runtime and not (where == {"lazy"} and any(d in e for e in extras.values())))
    assert missing == [], f"imported but not declared (or an optional one imported at module level): {missing}"
    unused = sorted(runtime - set(imported) - set(USED_WITHOUT_IMPORT))
    assert unused == [], f"declared runtime dependencies that audit/ never imports: {unused}"
    for dist, (file, text) in USED_WITHOUT_IMPORT.items():
        assert dist in runtime and text in (ROOT / file).read_text(encoding="utf-8")
    # the heavy ones are where they are used, not in every installation
    assert {"matplotlib", "fairlearn", "scikit-learn"}.isdisjoint(runtime)
    assert "fairlearn" in extras["dev"] and "scikit-learn" in extras["sklearn"] and "joblib" in extras["sklearn"]


def test_every_extra_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for extra in PYPROJECT["project"]["optional-dependencies"]:
        assert f"insyn[{extra}]" in readme, extra


def test_the_makefile_installs_with_uv_and_falls_back_to_pip() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    setup = (ROOT / "scripts" / "setup-env.sh").read_text(encoding="utf-8")
    assert "scripts/setup-env.sh run" in makefile and "scripts/setup-env.sh dev" in makefile
    assert '"$UV" pip install' in setup and '-m pip install --disable-pip-version-check -e "$TARGET"' in setup
    assert "--quiet" not in makefile + setup and "-q " not in setup  # progress stays visible
    # bytecode at install: where PYTHONDONTWRITEBYTECODE is set, Python would compile every import at every start
    assert '"$UV" pip install --compile-bytecode' in setup and "-m compileall audit" in setup
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


# --------------------------------------------------------------------------
# a wheel in a fresh environment, outside any clone


def _fresh_env(tmp: Path) -> dict[str, str]:
    return {"PATH": f"{tmp / 'venv' / 'bin'}:/usr/bin:/bin", "HOME": str(tmp / "home"), "LANG": "C.UTF-8",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"}


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode in ok, f"{cmd}: exit {out.returncode}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.mark.slow
def test_a_wheel_works_in_a_fresh_environment_outside_a_clone(tmp_path: Path) -> None:
    """Build the wheel with hatchling, install it into a new virtual environment (its dependencies come
    from this environment's site-packages through a .pth file, nothing from a network), then use it from
    a folder that is not a clone: init, run the scaffold, run shipped examples by path and by name."""
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(dist)], cwd=ROOT,
         env={**os.environ, "PYTHONPATH": ""})
    (wheel,) = dist.glob("insyn-*.whl")
    _run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], cwd=tmp_path, env=dict(os.environ))
    python = tmp_path / "venv" / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}).stdout.strip())
    (site / "_deps_from_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    (tmp_path / "home").mkdir()
    env = _fresh_env(tmp_path)
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], cwd=tmp_path, env=env)
    outside = tmp_path / "somewhere"
    outside.mkdir()
    insyn = str(tmp_path / "venv" / "bin" / "insyn")

    where = _run([str(python), "-c", "import audit; print(audit.__file__)"], cwd=outside, env=env).stdout
    assert where.startswith(str(site)), where  # the wheel's copy, not a clone's

    # insyn init, then its example runs as written (with fewer cases, to be quick)
    _run([insyn, "init", "kommun-granskning"], cwd=outside, env=env)
    project = outside / "kommun-granskning"
    spec = project / "audit.yaml"
    assert spec.read_text(encoding="utf-8").splitlines()[0] == (
        "# yaml-language-server: $schema=schemas/audit-spec.schema.json")
    spec.write_text(spec.read_text(encoding="utf-8").replace("n: 5000", "n: 800"), encoding="utf-8")
    run = _run([insyn, "run", "audit.yaml", "--format", "json"], cwd=project, env=env, ok=(0, 1))
    summary = json.loads(run.stdout)
    run_dir = Path(summary["run_dir"])
    assert run_dir.is_relative_to(project / "reports" / "kommun-granskning")
    assert (run_dir / "report.html").is_file()
    checks = json.loads((run_dir / "checks.json").read_text(encoding="utf-8"))
    assert [c["gx_result"]["suite_name"] for c in checks] == ["intake", "engine_input", "decisions"]
    assert summary["exit_code"] == run.returncode

    # a shipped example by the path it has in a clone: found inside the wheel, and said so
    by_path = _run([insyn, "run", "examples/aggregated.yaml", "--out", "r"], cwd=outside, env=env, ok=(0, 1))
    assert "running the example shipped with Insyn" in " ".join(by_path.stderr.split())
    assert list((outside / "r" / "aggregated").iterdir())
    # ... and by name
    by_name = _run([insyn, "run", "--example", "aggregated", "--out", "r", "--format", "csv"], cwd=outside, env=env,
                   ok=(0, 1))
    assert by_name.stdout.splitlines()[0].startswith("metric,attributes,group,n,value")
    missing = _run([insyn, "run", "examples/nope.yaml"], cwd=outside, env=env, ok=(2,))
    assert "nor among the examples shipped with Insyn (aggregated," in " ".join(missing.stderr.split())
    # from Python too
    _run([str(python), "-c", "from audit import Audit; a = Audit.from_yaml('examples/demo.yaml'); "
          "assert a.population.n == 20000 and a.resolve(a.engine.path).is_file()"], cwd=outside, env=env)
    # the schema the wheel prints is the one in the repository
    schema = _run([insyn, "schema"], cwd=outside, env=env).stdout
    assert schema == (ROOT / "audit" / "schemas" / "audit-spec.schema.json").read_text(encoding="utf-8")
