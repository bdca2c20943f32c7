"""README's claims, run (issue 25, point 8): README and behaviour cannot drift apart.

The test reads README.md, extracts its fenced examples and runs them:

* the Python tour (``python`` block), executed as written in a scratch
  folder that links ``examples/``, ``datasets/`` and ``checks/``; its
  comments are claims (a DataFrame; PASS/FAIL/WARN/ERROR; the run folder);
* every ``insyn`` line of the command-line block: a synopsis line (with
  ``[...]``) must name only options that ``--help`` lists; the others run as
  written (placeholders ``<run_id>`` and ``<case_id>`` are taken from the
  run of the Python tour) and must exit 0;
* ``make demo``'s claim (largest disparities with intervals, the report's
  path) through ``insyn demo``;
* the error message of the ``text`` block, produced by the spec it names;
* the run folder's list of files;
* the monitoring block (``insyn monitor``, ``insyn history``) and the ALERT
  line that the March job mails, reproduced month by month.

A block the test does not know how to check fails the test, so a new README
example needs a check here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from audit import __version__

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"```([a-z]*)\n(.*?)```", re.S)
BLOCKS = [(lang, body) for lang, body in BLOCK.findall(README)]
KNOWN = {"sh", "python", "text", "bash", "", "cron", "ini", "yaml"}


def _insyn(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-m", "audit.cli", *args], cwd=cwd, capture_output=True, text=True,
                         env=env, timeout=900)
    if check:
        assert out.returncode == 0, (args, out.stdout[-2000:], out.stderr[-2000:])
    return out


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    for name in ("examples", "datasets", "checks"):
        (folder / name).symlink_to(ROOT / name)
    return folder


@pytest.fixture(scope="module")
def tour(scratch: Path) -> dict:
    """The Python tour, run as written; its namespace."""
    code = next(body for lang, body in BLOCKS if lang == "python")
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(scratch)
    try:
        lines = code.splitlines()
        exec(compile("\n".join(lines), "README.md (python)", "exec"), namespace)  # noqa: S102
    finally:
        os.chdir(cwd)
    return namespace


def test_every_block_is_of_a_kind_this_test_checks() -> None:
    assert {lang for lang, _ in BLOCKS} <= KNOWN, {lang for lang, _ in BLOCKS} - KNOWN


def test_python_tour_claims(tour: dict, scratch: Path) -> None:
    result = tour["result"]
    top = result.largest_disparities(5)
    assert isinstance(top, pd.DataFrame) and len(top) == 5                  # "a DataFrame"
    assert {f.status for f in result.findings} <= {"PASS", "FAIL", "WARN", "ERROR"}
    run_dir = Path(result.run_dir)
    assert run_dir.parent == (scratch / "reports" / "demo").resolve() or run_dir.parent.name == "demo"
    # "A run folder" lists exactly the files written (the demo writes every format)
    listed = re.search(r"`reports/<audit>/<run_id>/` holds (.*?)\.\n", README, re.S).group(1)
    names = set(re.findall(r"`([a-z_]+\.[a-z]+)`", listed))
    assert names == {p.name for p in run_dir.iterdir()}


def test_the_spec_error_message_of_the_readme(scratch: Path) -> None:
    from audit import Audit, SpecError

    expected = next(body for lang, body in BLOCKS if lang == "text").strip()
    text = (ROOT / "examples/demo.yaml").read_text(encoding="utf-8").replace("kind: rules", "kind: rpa")
    (scratch / "bad").mkdir(exist_ok=True)
    spec = scratch / "bad" / "demo.yaml"
    spec.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        Audit.from_yaml(spec)
    assert str(info.value).replace(str(spec), "examples/demo.yaml").startswith(expected)


@pytest.mark.slow
def test_command_line_block(tour: dict, scratch: Path) -> None:
    block = next(body for lang, body in BLOCKS if lang == "sh" and "insyn demo" in body)
    result = tour["result"]
    case_id = str(result.decisions["case_id"].iloc[0])
    ran = 0
    for line in block.strip().splitlines():
        args = shlex.split(line.split(" #")[0])
        assert args[0] == "insyn", line
        if any(a.startswith("[") for a in args):  # a synopsis: every option it names is real
            helptext = _insyn([args[1], "--help"], scratch).stdout
            for option in re.findall(r"--[a-z-]+", line):
                assert option in helptext, (option, line)
            continue
        args = [a.replace("reports/demo/<run_id>", str(result.run_dir)).replace("<case_id>", case_id)
                for a in args[1:]]
        out = _insyn(args, scratch, check=args[0] != "run")
        ran += 1
        if args[0] == "run":  # a run exits 1 when a finding breaks a limit (README's exit codes), else 0
            assert out.returncode in (0, 1) and "Traceback" not in out.stderr, (args, out.stderr[-2000:])
        if args == ["--version"]:
            assert __version__ in out.stdout
        if args[:2] == ["run", "--example"]:  # a demo run's claim: disparities with intervals, the report's path
            assert "Largest disparities" in out.stdout and "CI" in out.stdout
            assert re.search(r"reports/demo/[^/\s]+/report\.html", out.stdout.replace("\n", ""))
        if args[0] == "trace":
            assert case_id in out.stdout
    assert ran == sum("[" not in line for line in block.strip().splitlines()) >= 5


@pytest.mark.slow
def test_monitoring_block_and_the_alert_line(scratch: Path) -> None:
    from audit import audit
    from audit.monitor import run_monitor

    block = next(body for lang, body in BLOCKS if lang == "bash")
    commands = [shlex.split(c) for c in block.replace("\\\n", " ").strip().splitlines()]
    assert [c[:2] for c in commands] == [["insyn", "monitor"], ["insyn", "history"]]
    out = _insyn(commands[0][1:], scratch, check=False)
    assert out.returncode in (0, 1), out.stderr  # 1: an alert (see the exit codes)
    _insyn(commands[1][1:], scratch)
    assert (scratch / "trend.html").is_file() and (scratch / "trend.csv").is_file()
    # the March job's mail: 14 months of the old robot, then the stricter guideline
    alert_line = next(body for lang, body in BLOCKS if lang == "" and body.startswith("ALERT")).strip()
    base = audit.load_spec(ROOT / "examples" / "monitor.yaml")
    changed = base.with_options(engine={"kind": "rules", "path": "engines/municipal-rpa-2026-03.yaml"})
    periods = [f"{y}-{m:02d}" for y in (2025, 2026) for m in range(1, 13)][:15]
    hist = scratch / "alert-history"
    for i, period in enumerate(periods, start=1):
        res = run_monitor(base if i < 15 else changed, history=hist, period=period, write=False)
    assert alert_line in [a.line() for a in res.alerts], [a.line() for a in res.alerts]


def _options_named_are_real(line: str, helptext: str) -> None:
    for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", line.split("#")[0]):
        assert option in helptext, (option, line)


def test_chunked_and_benchmark_blocks_name_real_options(scratch: Path) -> None:
    """The chunked-run lines name options of ``insyn run``; the benchmark lines options of their scripts.

    They are checked, not run: one names a Dask cluster on another machine,
    and the benchmark takes many minutes.
    """
    chunked = next(body for lang, body in BLOCKS if lang == "sh" and "--chunk-size" in body)
    helptext = _insyn(["run", "--help"], scratch).stdout
    for line in chunked.strip().splitlines():
        assert shlex.split(line.split("#")[0])[:2] == ["insyn", "run"], line
        _options_named_are_real(line, helptext)
    for script in ("scale.py", "study.py"):
        bench = next(body for lang, body in BLOCKS if lang == "sh" and f"benchmarks/{script}" in body)
        out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--help"], capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
        assert out.returncode == 0, out.stderr
        for line in bench.strip().splitlines():
            _options_named_are_real(line, out.stdout)


@pytest.mark.slow
def test_evidence_block_runs_as_written(tour: dict, scratch: Path) -> None:
    """insyn verify, keygen, bundle and verify of the bundle, on the run of the Python tour: each exits 0."""
    block = next(body for lang, body in BLOCKS if lang == "sh" and "insyn verify" in body)
    run_dir = str(tour["result"].run_dir)
    (scratch / "keys").mkdir(exist_ok=True)
    ran = 0
    for line in block.strip().splitlines():
        args = [a.replace("reports/demo/<run_id>", run_dir) for a in shlex.split(line.split("#")[0])]
        assert args[0] == "insyn", line
        out = _insyn(args[1:], scratch)
        ran += 1
        assert "Traceback" not in out.stderr, out.stderr
    assert ran == 5 and (scratch / "demo.zip").is_file()


def test_yaml_blocks_are_valid_spec_sections() -> None:
    """Each YAML example is a valid part of a spec: audit sections validate, the study block matches its example."""
    import yaml

    from audit.spec import AuditSpec

    base = yaml.safe_load((ROOT / "examples" / "demo.yaml").read_text(encoding="utf-8"))
    study = yaml.safe_load((ROOT / "examples" / "study-power.yaml").read_text(encoding="utf-8"))
    blocks = [body for lang, body in BLOCKS if lang == "yaml"]
    assert blocks
    for body in blocks:
        fragment = yaml.safe_load(body)
        if fragment is None and all(line.startswith("#") for line in body.strip().splitlines()):
            continue  # a comment line only (the YAML language server's schema line)
        assert isinstance(fragment, dict), body
        if "factors" in fragment:  # the study block: what it shows is what examples/study-power.yaml holds
            for key, value in fragment.items():
                if key != "audit":
                    assert study[key] == value, (key, value, study[key])
            continue
        for key in fragment:
            assert key in AuditSpec.model_fields, key
        AuditSpec.model_validate({**base, **fragment})  # raises on an invalid section
