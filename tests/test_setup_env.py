"""``scripts/setup-env.sh`` builds ``.venv`` on the fastest suitable Python it finds, unless told which.

The candidates are faked on ``PATH``: small shell scripts that answer ``scripts/python-speed.py``
as a Python would (``<seconds> <executable>``) or fail as an unsuitable one does. The real
``/usr/bin/python3`` and ``/usr/local/bin/python3`` take part too; the fakes are faster than any
real interpreter, so the choice among them is what the test sees.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fake(folder: Path, name: str, answer: str | None) -> None:
    script = folder / name
    body = f"printf '%s\\n' \"{answer}\"" if answer is not None else "exit 1"
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(0o755)


def _chosen(folder: Path, **env: str) -> str:
    out = subprocess.run(["sh", "scripts/setup-env.sh", "python"], cwd=ROOT, capture_output=True, text=True,
                         env={"PATH": f"{folder}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), **env},
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_fastest_suitable_python_is_chosen(tmp_path: Path) -> None:
    _fake(tmp_path, "python3", "0.000300 /opt/slow/bin/python3.11")
    _fake(tmp_path, "python3.12", "0.000100 /opt/fast/bin/python3.12")
    _fake(tmp_path, "python3.13", None)  # too old or without venv: passed over, though listed
    _fake(tmp_path, "python3.11", "0.000200 /opt/mid/bin/python3.11")
    assert _chosen(tmp_path) == "/opt/fast/bin/python3.12"


def test_one_interpreter_under_two_names_is_timed_once(tmp_path: Path) -> None:
    # the first answer for an executable counts: a second name for it cannot win with another timing
    _fake(tmp_path, "python3", "0.000200 /opt/a/bin/python3.11")
    _fake(tmp_path, "python3.11", "0.000050 /opt/a/bin/python3.11")
    _fake(tmp_path, "python3.12", "0.000100 /opt/b/bin/python3.12")
    assert _chosen(tmp_path) == "/opt/b/bin/python3.12"


def test_lines_printed_before_the_probe_answers_are_passed_over(tmp_path: Path) -> None:
    # a site hook (sitecustomize, a .pth file) may print; the probe's line is the last one
    _fake(tmp_path, "python3", "0.000300 /opt/slow/bin/python3.11")
    _fake(tmp_path, "python3.12", "site hook says hello\n0.000100 /opt/hooked/bin/python3.12")
    assert _chosen(tmp_path) == "/opt/hooked/bin/python3.12"


def test_a_python_named_by_the_user_is_kept(tmp_path: Path) -> None:
    _fake(tmp_path, "python3.12", "0.000100 /opt/fast/bin/python3.12")
    assert _chosen(tmp_path, PYTHON="/opt/mine/bin/python3") == "/opt/mine/bin/python3"


def test_the_makefile_leaves_the_choice_to_the_script() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^PYTHON \?=\s*$", makefile, flags=re.M), "an empty default: setup-env.sh chooses"
    assert "PYTHON=$(PYTHON) sh scripts/setup-env.sh" in makefile


def test_the_speed_probe_names_this_python_and_a_time() -> None:
    out = subprocess.run([sys.executable, "scripts/python-speed.py"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    secs, exe = out.stdout.strip().split(" ", 1)
    assert 0 < float(secs) < 5
    assert exe == os.path.realpath(sys.executable)


def test_an_unknown_level_is_refused_with_the_choices() -> None:
    out = subprocess.run(["sh", "scripts/setup-env.sh", "everything"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert "must be run, dev or python" in out.stderr and "'everything'" in out.stderr
