"""great-expectations is imported only when a suite is built or validated, never by ``import audit``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import sys
import audit
from audit.checks import CUSTOM_EXPECTATIONS
from audit.spec import load_spec
load_spec("examples/demo.yaml")
before = any(m.split(".")[0] == "great_expectations" for m in sys.modules)
from audit.checks import Suite, load_suite
load_suite("checks/application.yaml")  # a shipped suite, validated byte for byte: no great-expectations needed
shipped = "great_expectations" in sys.modules
Suite.from_dict({"name": "own", "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "x"}}]})
after = "great_expectations" in sys.modules and not shipped
import great_expectations.expectations.registry as r
registered = set(CUSTOM_EXPECTATIONS) <= set(r.list_registered_expectation_implementations())
print(before, after, registered)
"""


def test_import_audit_does_not_import_great_expectations() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["False", "True", "True"]
