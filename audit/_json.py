"""Plain JSON values from numpy, pandas and path values.

Results, manifests, journey notes and lineage events are JSON. numpy and
pandas hand back their own scalar types (``np.float64``, ``np.bool_``,
``pd.Timestamp``, ``pd.NA``), which the standard library cannot serialise,
and JSON has no NaN. This is the one conversion every writer uses: NaN and
infinities become ``null`` (a reason for an undefined value travels in the
row's ``reason`` field), sets are sorted, tuples become lists. A value of
no known kind is returned unchanged, or passed to ``default`` (``str`` for
writers that must never fail, such as journey notes and check reports), in
the manner of :func:`json.dumps`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["jsonable"]


def jsonable(obj: Any, *, default: Callable[[Any], Any] | None = None) -> Any:
    """Convert numpy, pandas and path values to JSON-safe Python values.

    Parameters
    ----------
    obj : object
        A value, or a nest of mappings, lists, tuples and sets of values.
    default : callable, optional
        Called on a value of no known kind (not a mapping, sequence, set,
        number, bool, string, date, path or missing value); its answer is
        used in place of the value. Without it such a value is returned
        unchanged.

    Returns
    -------
    object
        The same structure with plain ``dict``, ``list``, ``str``, ``int``,
        ``float``, ``bool`` and ``None``; NaN and infinities are ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> jsonable({"n": np.int64(3), "rate": float("nan"), "groups": {"b", "a"}})
    {'n': 3, 'rate': None, 'groups': ['a', 'b']}
    >>> jsonable([object], default=lambda v: "object")
    ['object']
    """
    kind = type(obj)  # the plain kinds first: results hold tens of thousands of them
    if kind is str or kind is int or kind is bool or obj is None:
        return obj
    if kind is float:
        return obj if math.isfinite(obj) else None
    if kind is dict:
        return {str(k): jsonable(v, default=default) for k, v in obj.items()}
    if kind is list:
        return [jsonable(v, default=default) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v, default=default) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj
        return [jsonable(v, default=default) for v in items]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return None if (math.isnan(f) or math.isinf(f)) else f
    if isinstance(obj, np.ndarray):
        return [jsonable(v, default=default) for v in obj.tolist()]
    if isinstance(obj, (pd.Timestamp, datetime, date)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, (str, int)) or default is None:
        return obj
    return default(obj)
