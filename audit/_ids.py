"""Case ids: which of many ids are among many others, without pandas' slow path for text.

Every case carries a ``case_id`` (text), and several steps ask, for each
case, whether its id is in another step's set of ids: did it pass intake,
was it given to the engine, does the decision log hold it. pandas 3 answers
``Series.isin`` on its Arrow-backed text by turning every allowed value into
a Python object, about ten seconds for a million against a million. Arrow's
hash-based ``is_in`` answers the same question in well under a second.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ids_in"]


def ids_in(ids: Any, allowed: Any) -> np.ndarray:
    """For each id, whether it is among ``allowed``, comparing both as text.

    Parameters
    ----------
    ids : array_like
        The ids to look up (a Series, Index, array or list); missing values
        are never found.
    allowed : array_like
        The ids to look in.

    Returns
    -------
    numpy.ndarray of bool
        One flag per id, in order.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    def text(values: Any) -> Any:
        series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
        return pa.array(series.astype("str"), type=pa.large_string(), from_pandas=True)

    looked = text(ids)
    found = pc.is_in(looked, value_set=text(allowed), skip_nulls=True)
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False)
