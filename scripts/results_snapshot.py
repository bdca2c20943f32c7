"""Snapshot and compare the results.json of the demo and every example spec.

A refactoring must not change what an audit finds. This script runs every
spec in ``examples/`` (the demo among them) with its own seed, strips the run
metadata (run id, timestamps, timings, durations, absolute paths) and writes
one canonical JSON per spec; with ``--compare`` it compares two snapshot
folders and prints every difference.

Usage::

    python scripts/results_snapshot.py write SNAPDIR
    python scripts/results_snapshot.py compare OLD_SNAPDIR NEW_SNAPDIR

Exit status of ``compare``: 0 identical, 1 differences (listed).
Numbers are compared exactly, except floats, which may differ by at most
1e-9 relative (the last bits of a sum taken in another order); every
difference above that is listed.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
VOLATILE = {"run_id", "run_uuid", "started_at", "ended_at", "generated_at", "timings", "duration_s", "cases_per_s", "insyn_version", "run_dir"}
REL_TOL = 1e-9


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    if isinstance(value, str) and str(ROOT) in value:
        return value.replace(str(ROOT), "<root>")
    return value


def _specs() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*.yaml") if p.name not in {"personas.yaml"} and _is_audit(p))


def _is_audit(path: Path) -> bool:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return isinstance(data, dict) and "population" in data and "name" in data


def write(snapdir: Path) -> int:
    from audit import Audit

    snapdir.mkdir(parents=True, exist_ok=True)
    for spec in _specs():
        audit = Audit.from_yaml(spec)
        with tempfile.TemporaryDirectory() as out:
            result = audit.run(out=out, progress=None)
            data = json.loads((Path(result.run_dir) / "results.json").read_text(encoding="utf-8"))
        (snapdir / f"{spec.stem}.json").write_text(
            json.dumps(_strip(data), indent=1, sort_keys=True, ensure_ascii=False), encoding="utf-8"
        )
        print(f"wrote {snapdir / (spec.stem + '.json')} ({len(data.get('metrics', []))} metric rows)")
    return 0


def _diff(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append(f"{path}.{k}: only in new")
            elif k not in b:
                out.append(f"{path}.{k}: only in old")
            else:
                _diff(a[k], b[k], f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} items before, {len(b)} after")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _diff(x, y, f"{path}[{i}]", out)
    elif isinstance(a, float) and isinstance(b, float):
        if not (a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-300)):
            out.append(f"{path}: {a!r} before, {b!r} after")
    elif a != b:
        out.append(f"{path}: {a!r} before, {b!r} after")


def compare(old: Path, new: Path) -> int:
    problems: list[str] = []
    names = sorted({p.name for p in old.glob("*.json")} | {p.name for p in new.glob("*.json")})
    for name in names:
        if not (old / name).is_file() or not (new / name).is_file():
            problems.append(f"{name}: missing in {'old' if not (old / name).is_file() else 'new'}")
            continue
        found: list[str] = []
        _diff(_strip(json.loads((old / name).read_text())), _strip(json.loads((new / name).read_text())), name, found)
        problems.extend(found)
        print(f"{name}: {'identical' if not found else f'{len(found)} differences'}")
    for line in problems[:200]:
        print("  " + line)
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "write":
        return write(Path(argv[1]))
    if len(argv) == 3 and argv[0] == "compare":
        return compare(Path(argv[1]), Path(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
