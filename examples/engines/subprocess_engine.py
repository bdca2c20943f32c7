"""A decision engine as a stand-alone program: cases on stdin, decisions on stdout.

This is what an engine in another language looks like to Insyn's
``subprocess`` adapter, written here with the Python standard library only
(no pandas, no Insyn) so that it reads like a port of a Java or R program::

    engine:
      kind: subprocess
      command: ["{python}", "engines/subprocess_engine.py", "--format", "jsonl"]
      format: jsonl

It reads every case (JSON lines or CSV with a header), applies the same
simplified screen as ``examples/engines/per_case_engine.py`` (refer failed
registry reads and first applications; need = norm + rent + electricity +
home insurance - income; deny when the need is not positive, else grant the
need rounded to whole SEK) and writes one decision per case in the same
format: ``case_id``, ``outcome``, ``amount``, ``reasons``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from typing import Any

ADULT_NORM = {1: 5220.0, 2: 8510.0}
OTHER_ADULT_NORM = 3940.0
CHILD_NORM = 3820.0
INCOME = (
    "income_wages", "income_sickness", "income_unemployment", "income_parental", "income_pension",
    "income_housing_allowance", "income_child_allowance", "income_maintenance", "income_student", "income_other",
)
COSTS = ("rent", "electricity", "home_insurance")
FIELDS = ("case_id", "outcome", "amount", "reasons")


def _flag(value: Any) -> bool:
    """Read a truth value from JSON (true/false) or CSV ("True"/"False")."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"true", "1", "yes"}


def decide(case: dict[str, Any]) -> dict[str, Any]:
    """Decide one case; values may be JSON-typed or CSV text."""
    if _flag(case["registry_read_failed"]):
        return {"case_id": case["case_id"], "outcome": "refer", "amount": None, "reasons": "REGISTRY_READ_FAILED"}
    if str(case["application_type"]) == "new":
        return {"case_id": case["case_id"], "outcome": "refer", "amount": None, "reasons": "NEW_APPLICATION"}
    ages = str(case.get("child_ages") or "")
    children = len([a for a in ages.split(";") if a.strip()])
    norm = ADULT_NORM[int(float(case["adults"]))] + OTHER_ADULT_NORM * int(float(case["other_adults"]))
    norm += CHILD_NORM * children
    need = norm + sum(float(case[c]) for c in COSTS) - sum(float(case[c]) for c in INCOME)
    if need <= 0:
        return {"case_id": case["case_id"], "outcome": "deny", "amount": 0.0, "reasons": "NO_NEED_INCOME_SUFFICIENT"}
    return {"case_id": case["case_id"], "outcome": "grant", "amount": float(math.floor(need + 0.5)), "reasons": ""}


def main(argv: list[str] | None = None) -> int:
    """Read cases from stdin, write decisions to stdout; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    args = parser.parse_args(argv)
    if args.format == "csv":
        reader = csv.DictReader(sys.stdin)
        writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for case in reader:
            out = decide(case)
            writer.writerow({**out, "amount": "" if out["amount"] is None else out["amount"]})
        return 0
    write = sys.stdout.write
    for line in sys.stdin:
        if line.strip():
            write(json.dumps(decide(json.loads(line))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
