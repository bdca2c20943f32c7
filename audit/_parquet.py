"""How Insyn writes its case tables to Parquet: column statistics where a reader filters.

A Parquet file may carry, per column and row group, the smallest and the
largest value (column statistics), so that a reader such as DuckDB or
pyarrow's dataset skips row groups that cannot match a filter. Insyn's case
tables (``decisions.parquet``, ``journey.parquet``, a chunked run's parts)
are filtered by case id and by numbers (an amount, a step index), never
usefully by a label such as a status or a reason, whose every value occurs in
every row group. Computing the minimum and maximum of a million texts costs
about a quarter of writing the table, so statistics are written for
``case_id`` and for every column that is not text, and not for the other
text columns. What a reader gets back is the same table; only the footer
differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["STATISTICS_TEXT_COLUMNS", "statistics_columns", "write_frame", "write_table"]

STATISTICS_TEXT_COLUMNS = ("case_id",)
"""The text columns that keep their statistics (a reader looks a case up by its id)."""


def statistics_columns(schema: Any) -> list[str]:
    """The columns of a pyarrow schema that get statistics: ``case_id`` and every column that is not text.

    Parameters
    ----------
    schema : pyarrow.Schema

    Returns
    -------
    list of str
    """
    import pyarrow as pa

    def text(t: Any) -> bool:
        if pa.types.is_dictionary(t):
            t = t.value_type
        return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)

    return [f.name for f in schema if f.name in STATISTICS_TEXT_COLUMNS or not text(f.type)]


def write_table(table: Any, path: str | Path, **options: Any) -> None:
    """Write a pyarrow Table with :func:`statistics_columns` (``options`` go to ``pyarrow.parquet.write_table``)."""
    import pyarrow.parquet as pq

    pq.write_table(table, path, write_statistics=statistics_columns(table.schema), **options)


def write_frame(frame: pd.DataFrame, path: str | Path) -> None:
    """``DataFrame.to_parquet(path, index=False)`` with statistics for ``case_id`` and every column not of text."""
    keep = [str(c) for c, dtype in frame.dtypes.items()
            if c in STATISTICS_TEXT_COLUMNS or not _is_text(dtype)]
    frame.to_parquet(path, index=False, write_statistics=keep)


def _is_text(dtype: Any) -> bool:
    """Whether a pandas dtype holds text (``str``, ``object``, or a categorical of either)."""
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    return pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)
