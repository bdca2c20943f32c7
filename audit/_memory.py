"""How a run's process allocates memory: the allocator settings Insyn runs with.

An audit allocates and frees column-sized buffers at every step: pandas and
numpy take theirs from the C library's ``malloc``, pyarrow from its own
memory pool (``mimalloc`` by default). Two of the defaults cost a run time
in the operating system rather than in Insyn's own work:

* pyarrow's ``mimalloc`` pool returns freed chunk-sized buffers to the
  system and faults fresh pages in for the next step's; with the C
  library's allocator (``pyarrow.system_memory_pool``) both libraries share
  one heap. Measured on the 250,000-case chunk of the demo audit: about
  half the system time, 11 % of the wall time (``benchmarks/scale.py``).
* numpy asks the kernel for transparent huge pages on every large array
  (``madvise``); on a kernel whose huge-page ``defrag`` setting is
  ``madvise`` (the common default) a page fault in such an array may wait
  for the kernel to compact memory. numpy's own switch turns the request
  off (``NUMPY_MADVISE_HUGEPAGE=0`` does the same at numpy's import).

A third cost is Python's own: its cycle collector walks every object a
process holds at each full collection, the hundred thousand or so that the
imported modules and the spec are made of included, though they live as
long as the process does. A chunked run makes about one full collection per
chunk (some 0.06 s on the demo audit's 250,000-case chunk), and in a forked
worker the walk also writes to pages it shares with the parent, which the
kernel must then copy. :func:`frozen_heap` moves the objects alive when a
chunked run starts out of the collector's sight (``gc.freeze``, as the
Python documentation advises before a fork) and back when the run ends.

:func:`tune` applies the first two to the process it runs in, once: a run
(:func:`audit.runner.run`), a chunked run's parent
(:func:`audit.execution.run_chunked`) and a chunk's worker
(:func:`audit.execution.run_chunk`) call it. A setting the user made is
kept: ``ARROW_DEFAULT_MEMORY_POOL`` names pyarrow's pool,
``NUMPY_MADVISE_HUGEPAGE`` numpy's choice, and ``INSYN_TUNE_MEMORY=0``
leaves both libraries as they are. Results do not depend on the allocator.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["frozen_heap", "tune"]

_DONE = False


def tune() -> None:
    """Use the C library's allocator for pyarrow and no huge-page advice for numpy, unless the user chose.

    Idempotent; does nothing when ``INSYN_TUNE_MEMORY`` is ``0``.
    """
    global _DONE
    if _DONE:
        return
    _DONE = True
    if os.environ.get("INSYN_TUNE_MEMORY", "1").strip() == "0":
        return
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
    if "NUMPY_MADVISE_HUGEPAGE" not in os.environ:
        import numpy as np

        switch = getattr(getattr(np, "_core", None), "multiarray", None)
        setter = getattr(switch, "_set_madvise_hugepage", None)  # numpy's documented switch (numpy 1.20 notes)
        if setter is not None:
            setter(False)


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the objects alive now out of the cycle collector's walks while the block runs.

    The objects are not collected while frozen (``gc.freeze``); they are
    handed back to the collector (``gc.unfreeze``) when the block ends, so a
    long-lived process (a notebook, a study) loses nothing. Worker processes
    forked inside the block inherit the frozen objects and do not walk them
    either.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
