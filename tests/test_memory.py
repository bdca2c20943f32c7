"""The allocator settings a run applies to its process (audit._memory), checked in fresh processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys
import numpy as np, pyarrow as pa
from audit import _memory
before = pa.default_memory_pool().backend_name
_memory.tune()
_memory.tune()  # idempotent
arr = np.ones(4 << 20)  # a large array: numpy would advise huge pages for it
flag = np._core.multiarray._set_madvise_hugepage(True)  # returns the previous setting
print(json.dumps({"before": before, "after": pa.default_memory_pool().backend_name, "madvise": bool(flag)}))
"""


def _probe(**env: str) -> dict:
    base = {k: v for k, v in os.environ.items()
            if k not in ("ARROW_DEFAULT_MEMORY_POOL", "NUMPY_MADVISE_HUGEPAGE", "INSYN_TUNE_MEMORY")}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT,
                         env={**base, "PYTHONPATH": str(ROOT), **env}, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_tune_uses_the_c_allocator_and_no_huge_page_advice():
    got = _probe()
    assert got["before"] != "system"  # pyarrow's own default, so the test can tell a change
    assert got["after"] == "system"
    assert got["madvise"] is False


def test_tune_keeps_what_the_user_chose():
    got = _probe(ARROW_DEFAULT_MEMORY_POOL="jemalloc" if _has_jemalloc() else "mimalloc",
                 NUMPY_MADVISE_HUGEPAGE="1")
    assert got["after"] == got["before"] != "system"
    assert got["madvise"] is True


def test_tune_can_be_turned_off():
    got = _probe(INSYN_TUNE_MEMORY="0")
    assert got["after"] == got["before"] != "system"
    assert got["madvise"] is True


def _has_jemalloc() -> bool:
    import pyarrow as pa

    try:
        pa.jemalloc_memory_pool()
    except (NotImplementedError, pa.ArrowNotImplementedError):
        return False
    return True


def test_a_run_applies_the_settings(small_rules_spec, tmp_path):
    """``runner.run`` tunes its process before the first step."""
    code = f"""
import json, pyarrow as pa
from audit.audit import load_spec
from audit import runner
runner.run(load_spec({str(small_rules_spec('tuned', n=300))!r}))
print(json.dumps(pa.default_memory_pool().backend_name))
"""
    base = {k: v for k, v in os.environ.items() if k not in ("ARROW_DEFAULT_MEMORY_POOL", "INSYN_TUNE_MEMORY")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={**base, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == "system"


@pytest.mark.parametrize("pool", ["mimalloc", "system"])
def test_results_do_not_depend_on_the_allocator(pool, small_rules_spec, tmp_path):
    """The same audit under either pool writes the same decisions and metrics."""
    code = f"""
import json
from audit.audit import load_spec
r = load_spec({str(small_rules_spec('pools', n=3000))!r}).run(write=False)
print(json.dumps([r.metrics_frame().to_csv(index=False), r.decisions.to_csv(index=False)]))
"""
    base = {k: v for k, v in os.environ.items() if k not in ("ARROW_DEFAULT_MEMORY_POOL", "INSYN_TUNE_MEMORY")}
    outs = []
    for env in ({"ARROW_DEFAULT_MEMORY_POOL": pool, "INSYN_TUNE_MEMORY": "0"}, {}):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                             env={**base, "PYTHONPATH": str(ROOT), **env}, timeout=300)
        assert out.returncode == 0, out.stderr
        outs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert outs[0] == outs[1]


class _Node:
    itself: object = None


def _frozen_objects(_: object) -> int:
    import gc

    return gc.get_freeze_count()


def test_frozen_heap_hides_the_live_objects_from_the_collector_and_hands_them_back():
    """Inside the block the objects alive at its start are frozen, in forked workers too; after it, none are."""
    import gc

    from audit import _memory
    from audit._background import can_fork
    from audit.execution import open_executor

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    with _memory.frozen_heap():
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # the modules' objects
        if can_fork():
            with open_executor("processes", workers=1) as ex:
                [(key, seen)] = list(ex.imap(_frozen_objects, {"w": None}))
            assert seen > frozen // 2  # the worker keeps them out of sight (less the few it freed)
        node = _Node()
        node.itself = node  # a cycle made inside the block: still collected
        ref = weakref.ref(node)
        del node
        gc.collect()
        assert ref() is None
    assert gc.get_freeze_count() == 0
