"""Print how fast this Python runs Python code, and where it is: ``<seconds> <executable>``.

``scripts/setup-env.sh`` runs it with each Python it finds and builds ``.venv`` on the fastest.
It exits with status 1 for a Python older than 3.11 (Insyn's ``requires-python``) or one that
cannot make a virtual environment (no ``venv`` or ``ensurepip``), so that one is passed over.
The timing is the best of five runs of a loop of dictionary updates and calls (a few hundredths
of a second each): what separates builds (profile-guided and link-time optimisation) is the interpreter's own speed.
"""

import os
import sys
import time

if sys.version_info < (3, 11):
    raise SystemExit(1)
try:
    import ensurepip  # noqa: F401 - the pip fallback makes the environment with `python -m venv`
    import venv  # noqa: F401
except ImportError:
    raise SystemExit(1) from None


def _loop() -> int:
    counts: dict[int, int] = {}
    for i in range(200_000):
        key = i % 997
        counts[key] = counts.get(key, 0) + len(str(key))
    return sum(counts.values())


def _best_of(runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        _loop()
        best = min(best, time.perf_counter() - start)
    return best


print(f"{_best_of(5):.4f} {os.path.realpath(sys.executable)}")
