"""Plain JSON values from numpy, pandas and path values.

Results, manifests, journey notes and lineage events are JSON. numpy and
pandas hand back their own scalar types (``np.float64``, ``np.bool_``,
``pd.Timestamp``, ``pd.NA``), which the standard library cannot serialise,
and JSON has no NaN. This is the one conversion every writer uses: NaN and
infinities become ``null`` (a reason for an undefined value travels in the
row's ``reason`` field), sets are sorted, tuples become lists.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["jsonable"]


def jsonable(obj: Any) -> Any:
    """Convert numpy, pandas and path values to JSON-safe Python values.

    Parameters
    ----------
    obj : object
        A value, or a nest of mappings, lists, tuples and sets of values.

    Returns
    -------
    object
        The same structure with plain ``dict``, ``list``, ``str``, ``int``,
        ``float``, ``bool`` and ``None``; NaN and infinities are ``None``.
    """
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj
        return [jsonable(v) for v in items]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return None if (math.isnan(f) or math.isinf(f)) else f
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (pd.Timestamp, datetime, date)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj
